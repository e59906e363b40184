/**
 * Names read back as written (DESIGN.md, "Values round-trip"): a text column's value is decoded by
 * the database client on its own, and a UTF-8 decoder drops a leading byte order mark (U+FEFF):
 * PGlite's always, the PostgreSQL client's when the text also holds U+FFFD. JSON values never start
 * with one (their text starts with `"`, `{`, `[`, a digit or a literal), but a signal's name and a
 * workflow's id are text of their own: a signal named "\ufeffgo" was accepted and then never
 * delivered on PGlite and PostgreSQL (the name read back was "go"), while the memory store
 * delivered it; a run's workflow id read back without its mark (in the run and in `ripple runs`).
 * Both read back whole on every store.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { RunList, SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fc from "fast-check"
import { storableText } from "../arbitraries/json.ts"
import * as TestDatabase from "../helpers/database.ts"

// A mark first, then any text (U+FFFD sends PostgreSQL's client to the decoder that drops it).
const marked = fc.tuple(fc.constantFrom("", "\ufffd"), storableText).map(([replacement, text]) => `\ufeff${text}${replacement}`)

const waiting = (id: string, signal: string): Workflow.Workflow => ({
  id,
  blocks: [
    { id: "w", type: "wait", params: { signal } },
    { id: "c", type: "value", params: { value: { $ref: "blocks.w.output" } } }
  ],
  edges: [{ source: "w", target: "c" }]
})

const scenario = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore
  const ids: Array<string> = ["kept"]
  for (const [id, name] of fc.sample(fc.tuple(marked, marked), { numRuns: 6 })) {
    ids.push(id)
    const { runId } = yield* runs.start(waiting(id, name))
    assert.strictEqual(yield* runs.wait(runId), "suspended")
    assert.strictEqual((yield* store.getRun(runId)).workflowId, id)
    assert.isTrue(yield* runs.signal(runId, name, { got: name }))
    assert.strictEqual(yield* runs.wait(runId), "completed", JSON.stringify(name))
    assert.strictEqual(JSON.stringify((yield* store.snapshot(runId)).nodes["c"]?.output), JSON.stringify({ got: name }))
    assert.deepStrictEqual(yield* store.deliveries(runId), [])
  }
  // A delivery waiting to be taken keeps its name too.
  const name = "\ufeffgo\ufffd"
  const { runId } = yield* runs.start(waiting("kept", "other"))
  assert.strictEqual(yield* runs.wait(runId), "suspended")
  yield* store.deliver(runId, { kind: "signal", name, payload: null, at: 0 })
  assert.deepStrictEqual((yield* store.deliveries(runId)).map((d) => d.name), [name])
  return ids
})

const handlers = Handler.layer(Builtins.handlers)

describe("names in memory", () => {
  it.effect("a signal name and a workflow id starting with U+FEFF read back whole", () =>
    Effect.asVoid(scenario).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, handlers))))))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`names on ${backend}`, (it) => {
    it.effect("a signal name and a workflow id starting with U+FEFF read back whole, in the run list too", () =>
      Effect.gen(function*() {
        const ids = yield* scenario
        const listed = yield* RunList.list({})
        assert.deepStrictEqual(listed.map((run) => run.workflowId).sort(), [...ids].sort())
      }).pipe(
        Effect.provide(Runs.layer().pipe(Layer.provideMerge(Layer.merge(SqlRunStore.layer, handlers)), Layer.provideMerge(TestDatabase.layer)))
      ))
  })
}
