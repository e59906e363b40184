/**
 * Key order is part of a value (issue 14, item 1): a container's record has one order whatever
 * order its body finished in, built-ins render values canonically, and the planner's diff and
 * early cutoff compare values as a handler sees them, key order included. The law each case
 * checks: a run-from over a prior run renders what a full run of the edited workflow renders.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

type Json = Workflow.Json

// Sees key order: what a user's handler can do with `Object.keys` or `JSON.stringify`.
const handlers: Readonly<Record<string, Handler.Handler>> = {
  keys: (ctx) => Effect.succeed(JSON.stringify(ctx.inputs["of"] ?? null))
}

const layer = Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers)))

/** Every completed node's output as JSON text (key order included), by node. */
const outputs = (runId: string) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const snapshot = yield* store.snapshot(runId)
    const out: Record<string, string> = {}
    for (const node of Object.keys(snapshot.nodes).sort()) {
      const record = snapshot.nodes[node]!
      if (record.status === "completed") out[node] = JSON.stringify(record.output)
    }
    return out
  })

/** The outputs of `runFrom(after)` over a full run of `before`, and of a full run of `after`. */
const runFromAndFull = (before: Workflow.Workflow, after: Workflow.Workflow, target: string) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const first = yield* runs.start(before)
    assert.strictEqual(yield* runs.wait(first.runId), "completed")
    const again = yield* runs.runFrom(after, { target, run: first.runId })
    assert.strictEqual(yield* runs.wait(again.runId), "completed")
    const full = yield* runs.start(after)
    assert.strictEqual(yield* runs.wait(full.runId), "completed")
    return { runFrom: yield* outputs(again.runId), full: yield* outputs(full.runId) }
  })

const looped = (added: boolean): Workflow.Workflow => ({
  id: "wf",
  blocks: [
    { id: "b11", type: "value", params: { value: 0 } },
    { id: "b12", type: "value", params: { value: 886 } },
    ...(added ? [{ id: "b13", type: "value", params: { value: 1 } }] : []),
    { id: "t", type: "template", params: { template: "{{x}}", values: { x: { $ref: "blocks.L9.output" } } } }
  ],
  // b13 → b11 puts b11 after b12 in the body's topological order.
  edges: [{ source: "L9", target: "t" }, ...(added ? [{ source: "b13", target: "b11" }] : [])],
  loops: [{ id: "L9", kind: "count", count: 3, body: added ? ["b11", "b12", "b13"] : ["b11", "b12"] }]
})

const valued = (value: Json): Workflow.Workflow => ({
  id: "wf",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "v", type: "value", params: { value } },
    { id: "t", type: "template", params: { template: "{{x}}", values: { x: { $ref: "blocks.v.output" } } } },
    { id: "k", type: "keys", params: { of: { $ref: "blocks.v.output" } } }
  ],
  edges: [{ source: "start", target: "v" }, { source: "v", target: "t" }, { source: "v", target: "k" }]
})

describe("Key order of values", () => {
  it.effect("a loop's iteration record has one key order: run-from after adding a body block equals a full run", () =>
    Effect.gen(function*() {
      const { full, runFrom } = yield* runFromAndFull(looped(false), looped(true), "b12")
      assert.deepStrictEqual(runFrom, full)
      assert.strictEqual(full["t"], JSON.stringify("[{\"b11\":0,\"b12\":886},{\"b11\":0,\"b12\":886},{\"b11\":0,\"b12\":886}]"))
    }).pipe(Effect.provide(layer)))

  it.effect("a parallel's branch record has the same key order as a loop's", () =>
    Effect.gen(function*() {
      const parallel = (w: Workflow.Workflow): Workflow.Workflow => {
        const { loops, ...rest } = w
        return { ...rest, parallels: loops!.map(({ body, id }) => ({ id, kind: "count" as const, count: 2, body })) }
      }
      const { full, runFrom } = yield* runFromAndFull(parallel(looped(false)), parallel(looped(true)), "b12")
      assert.deepStrictEqual(runFrom, full)
      assert.strictEqual(full["t"], JSON.stringify("[{\"b11\":0,\"b12\":886},{\"b11\":0,\"b12\":886}]"))
    }).pipe(Effect.provide(layer)))

  it.effect("reordered keys of a value param: a template renders the same text, a handler that sees key order re-runs", () =>
    Effect.gen(function*() {
      for (const target of ["v", "start"]) {
        const { full, runFrom } = yield* runFromAndFull(valued({ b: 1, a: [2, { d: 3, c: 4 }] }), valued({ a: [2, { c: 4, d: 3 }], b: 1 }), target)
        assert.deepStrictEqual(runFrom, full, `target ${target}`)
        assert.strictEqual(full["t"], JSON.stringify("{\"a\":[2,{\"c\":4,\"d\":3}],\"b\":1}"))
        assert.strictEqual(full["k"], JSON.stringify("{\"a\":[2,{\"c\":4,\"d\":3}],\"b\":1}"))
      }
    }).pipe(Effect.provide(layer)))
})
