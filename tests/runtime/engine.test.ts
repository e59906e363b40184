import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const workflow = (
  blocks: ReadonlyArray<Workflow.Block>,
  edges: ReadonlyArray<Workflow.Edge>,
  extra: Partial<Workflow.Workflow> = {}
): Workflow.Workflow => ({ id: "wf", blocks, edges, ...extra })

const layer = (handlers: Readonly<Record<string, Handler.Handler>> = {}, options: Runs.Options = {}) =>
  Runs.layer(options).pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers)))

const runToEnd = (wf: Workflow.Workflow, input: Record<string, Workflow.Json> = {}) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const { runId } = yield* runs.start(wf, input)
    const status = yield* runs.wait(runId)
    const snapshot = yield* store.snapshot(runId)
    return { runId, status, snapshot }
  })

describe("Engine", () => {
  it.effect("runs a trigger → template → response chain", () =>
    Effect.gen(function*() {
      const wf = workflow(
        [
          { id: "start", type: "trigger" },
          { id: "greet", type: "template", params: { template: "Hi {{name}}", values: { name: { $ref: "input.name" } } } },
          { id: "out", type: "response", params: { value: { $ref: "blocks.greet.output" } } }
        ],
        [{ source: "start", target: "greet" }, { source: "greet", target: "out" }],
        { inputs: { name: { type: "string" } } }
      )
      const { snapshot, status } = yield* runToEnd(wf, { name: "Ada" })
      assert.strictEqual(status, "completed")
      assert.strictEqual(snapshot.nodes["out"]?.output, "Hi Ada")
      assert.deepStrictEqual(snapshot.nodes["start"]?.output, { name: "Ada" })
    }).pipe(Effect.provide(layer())))

  it.effect("a failing block fails the run", () =>
    Effect.gen(function*() {
      const wf = workflow([{ id: "boom", type: "fail", params: { message: "no" } }], [])
      const { snapshot, status } = yield* runToEnd(wf)
      assert.strictEqual(status, "failed")
      assert.strictEqual(snapshot.nodes["boom"]?.error?.message, "no")
    }).pipe(Effect.provide(layer())))
})
