/**
 * Every value round-trips (DESIGN.md, "Values round-trip"): a handler output (and the inputs that
 * read it) larger than the wire client's default message limit (16 MiB) reads back from PGlite and
 * PostgreSQL alike, and a snapshot is read a node per row, so its size is not bounded by what one
 * row (one wire message) may hold; writes whose values add up to more than one `jsonb` parameter
 * holds (256 MiB) are split: five 52 MiB outputs completing together.
 *
 * Each size is only a little over the limit it crosses: the time these tests take grows with it.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"

const mib = 1024 * 1024
// Over 16 MiB of JSON text as one output, and again as the inputs of the block that reads it.
const big = "x".repeat(17 * mib)

// Under `Workflow.maxValueBytes`; five of them are more than 256 MiB (260 MiB).
const large = "x".repeat(52 * mib)

const handlers = Handler.layer({
  large: () => Effect.succeed(large),
  big: () => Effect.succeed({ text: big }),
  size: (ctx) => Effect.succeed((ctx.inputs["v"] as { readonly text: string }).text.length)
})

const workflow: Workflow.Workflow = {
  id: "big-values",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "b", type: "big" },
    { id: "s", type: "size", params: { v: { $ref: "blocks.b.output" } } }
  ],
  edges: [{ source: "start", target: "b" }, { source: "b", target: "s" }]
}

const five = ["a", "b", "c", "d", "e"]

const wide: Workflow.Workflow = {
  id: "wide-values",
  blocks: [{ id: "start", type: "trigger" }, ...five.map((id) => ({ id, type: "large" }))],
  edges: five.map((id) => ({ source: "start", target: id }))
}

/** Five large outputs of one run, written together and read back. */
const manyLarge = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const run = yield* runs.start(wide, {})
  assert.strictEqual(yield* runs.wait(run.runId), "completed")
  const fresh = yield* SqlRunStore.make
  const snapshot = yield* fresh.store.snapshot(run.runId)
  for (const id of five) assert.isTrue(snapshot.nodes[id]?.output === large, id)
})

const stored = (database: typeof TestDatabase.layer) =>
  Runs.layer().pipe(Layer.provideMerge(Layer.merge(SqlRunStore.layer, handlers)), Layer.provideMerge(database))

/** A run of `workflow`, its snapshot read back by a fresh store: `b`'s output and what `s` saw of it. */
const roundTrip = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const run = yield* runs.start(workflow, {})
  assert.strictEqual(yield* runs.wait(run.runId), "completed")
  const fresh = yield* SqlRunStore.make
  const snapshot = yield* fresh.store.snapshot(run.runId)
  const output = snapshot.nodes["b"]?.output as { readonly text: string }
  assert.strictEqual(output.text.length, big.length)
  assert.isTrue(output.text === big)
  assert.isTrue((snapshot.nodes["s"]?.inputs as { readonly v: { readonly text: string } }).v.text === big)
  assert.strictEqual(snapshot.nodes["s"]?.output, big.length)
})

layer(TestDatabase.shared("postgres"), { excludeTestServices: true })("big snapshots on postgres", (it) => {
  it.effect("a snapshot larger than one message reads back: no row holds two nodes' values", () =>
    // 30 MiB holds `b`'s row and `s`'s row, each about 17 MiB, but not both in one.
    roundTrip.pipe(Effect.provide(stored(TestDatabase.layerWith({ maxMessageSize: 30 * mib })))), { timeout: 120_000 })
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`big values on ${backend}`, (it) => {
    it.effect("an output over 16 MiB reads back whole, in the snapshot and through a fresh store", () =>
      roundTrip.pipe(Effect.provide(stored(TestDatabase.layer))), { timeout: 120_000 })
    it.effect("values adding up to more than 256 MiB in one write are written and read back", () =>
      manyLarge.pipe(Effect.provide(stored(TestDatabase.layer))), { timeout: 300_000 })
  })
}
