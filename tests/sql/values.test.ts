/**
 * Stores agree on values (issue 14 item 2, issue 15): a run on PGlite or PostgreSQL renders the
 * strings it renders in memory, and a run-from over a stored snapshot (whose reused outputs are read
 * back from the database) equals a full run in memory — `jsonb` would have reordered object keys.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"

type Json = Workflow.Json

const handlers = Handler.layer({
  // Sees key order, as any handler can (`JSON.stringify`, `Object.keys`).
  keys: (ctx) => Effect.succeed(JSON.stringify(ctx.inputs)),
  // Builds an object whose keys are not in sorted order.
  shuffle: (ctx) => Effect.succeed({ zulu: ctx.inputs["n"] ?? null, alpha: [{ y: 1, x: 2 }], "7": "seven", mike: {} })
})

const workflow = (template: string): Workflow.Workflow => ({
  id: "values",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "v", type: "value", params: { value: { zeta: 1, alpha: { y: 2, x: 3 }, "10": "ten" } } },
    { id: "o", type: "shuffle", params: { n: { $ref: "input.n" } } },
    { id: "b2", type: "value", params: { value: { q: 1, p: 2 } } },
    { id: "b1", type: "shuffle" },
    { id: "k", type: "keys", params: { v: { $ref: "blocks.v.output" }, o: { $ref: "blocks.o.output" }, l: { $ref: "blocks.L.output" } } },
    { id: "t", type: "template", params: { template, values: { v: { $ref: "blocks.v.output" }, l: { $ref: "blocks.L.output" } } } }
  ],
  edges: [
    { source: "start", target: "v" },
    { source: "start", target: "o" },
    { source: "v", target: "L" },
    { source: "o", target: "k" },
    { source: "L", target: "k" },
    { source: "L", target: "t" }
  ],
  loops: [{ id: "L", kind: "count", count: 2, body: ["b2", "b1"] }],
  inputs: { n: { type: "object" } }
})

const input: { readonly [key: string]: Json } = { n: { b: [1, { d: 2, c: 3 }], a: "\ud83d\ude00" } }
const before = workflow("{{v}} {{l}}")
const after = workflow("v={{v}} l={{l}}")

/** Every completed node's output as JSON text (key order included), by node. */
const outputsOf = (runId: string) =>
  Effect.gen(function*() {
    const snapshot = yield* (yield* RunStore.RunStore).snapshot(runId)
    const out: Record<string, string> = {}
    for (const node of Object.keys(snapshot.nodes).sort()) {
      const record = snapshot.nodes[node]!
      if (record.status === "completed") out[node] = JSON.stringify(record.output)
    }
    return out
  })

/** A full run of `before`, a run-from `k` of `after` over it, and a full run of `after`. */
const scenario = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const first = yield* runs.start(before, input)
  assert.strictEqual(yield* runs.wait(first.runId), "completed")
  const again = yield* runs.runFrom(after, { target: "k", run: first.runId })
  assert.strictEqual(yield* runs.wait(again.runId), "completed")
  const full = yield* runs.start(after, input)
  assert.strictEqual(yield* runs.wait(full.runId), "completed")
  const run = yield* (yield* RunStore.RunStore).getRun(first.runId)
  return {
    first: yield* outputsOf(first.runId),
    runFrom: yield* outputsOf(again.runId),
    full: yield* outputsOf(full.runId),
    input: JSON.stringify(run.input),
    version: run.version
  }
})

const memory = Runs.layer().pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, handlers)))

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`values on ${backend}`, (it) => {
    it.effect("a stored run renders what it renders in memory; run-from over it equals a full run in memory", () =>
      Effect.gen(function*() {
        const inMemory = yield* Effect.provide(scenario, memory)
        const stored = yield* scenario
        assert.deepStrictEqual(stored.first, inMemory.first)
        assert.deepStrictEqual(stored.runFrom, inMemory.full)
        assert.deepStrictEqual(stored.full, inMemory.full)
        assert.strictEqual(stored.input, JSON.stringify(input))
        // Another process reads the frozen workflow from the database, params in their order.
        const fresh = yield* SqlRunStore.make
        assert.strictEqual(JSON.stringify(yield* fresh.store.loadWorkflow(stored.version)), JSON.stringify(before))
      }).pipe(
        Effect.provide(
          Runs.layer().pipe(Layer.provideMerge(Layer.merge(SqlRunStore.layer, handlers)), Layer.provideMerge(TestDatabase.layer))
        )
      ))
  })
}
