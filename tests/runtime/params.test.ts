/**
 * A custom handler's declared params schema (`Handler.layer`'s `params`) is checked by `Runs`
 * before anything is written, on start, run-from and plan, as `Workflow.decode` checks the
 * built-in types: literal values only, a value read through a reference is the handler's.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

const layer = Runs.layer().pipe(
  Layer.provideMerge(RunStore.layerMemory),
  Layer.provideMerge(Handler.layer(
    { shout: (ctx) => Effect.succeed(String(ctx.inputs["text"]).toUpperCase()) },
    { params: { shout: Schema.Struct({ text: Schema.String, times: Schema.optionalKey(Schema.Number) }) } }
  ))
)

const shout = (params: { readonly [key: string]: Workflow.Json }): Workflow.Workflow => ({
  id: "shout",
  inputs: { text: { type: "json" } },
  blocks: [{ id: "start", type: "trigger" }, { id: "loud", type: "shout", params }],
  edges: [{ source: "start", target: "loud" }]
})

describe("custom params schemas", () => {
  it.effect("start, runFrom and plan refuse literal params that do not fit, writing nothing", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      for (const [params, path] of [
        [{ times: 2 }, ["blocks", 1, "params", "text"]],
        [{ text: "hi", times: "twice" }, ["blocks", 1, "params", "times"]]
      ] as const) {
        const workflow = shout(params)
        const attempts: ReadonlyArray<Effect.Effect<unknown, Runs.RunsError>> = [
          runs.start(workflow, { text: "x" }),
          runs.runFrom(workflow, { target: "start", input: { text: "x" } }),
          runs.plan(workflow, { input: { text: "x" } })
        ]
        for (const refused of attempts) {
          const error = yield* Effect.flip(refused)
          assert.strictEqual(error._tag, "InvalidWorkflow")
          if (error._tag === "InvalidWorkflow") {
            assert.strictEqual(error.cause._tag, "InvalidParams")
            assert.deepStrictEqual(error.cause.path, path)
            assert.strictEqual((error.cause as Workflow.InvalidParams).block, "loud")
          }
        }
      }
      assert.strictEqual((yield* Effect.flip(store.getRun("run-1")))._tag, "RunNotFound")
      assert.strictEqual((yield* Effect.flip(store.loadWorkflow(RunStore.versionOf(shout({ times: 2 })))))._tag, "WorkflowNotFound")
    }).pipe(Effect.provide(layer)))

  it.effect("a param read through a reference is left to the handler; a disabled block is not checked", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(shout({ text: { $ref: "input.text" } }), { text: "hi" })
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.deepStrictEqual(yield* runs.outputs(runId), { loud: "HI" })
      const disabled: Workflow.Workflow = { ...shout({ times: "x" }), blocks: [{ id: "start", type: "trigger" }, { id: "loud", type: "shout", params: { times: "x" }, disabled: true }] }
      const skipped = yield* runs.start(disabled, { text: "hi" })
      assert.strictEqual(yield* runs.wait(skipped.runId), "completed")
    }).pipe(Effect.provide(layer)))
})
