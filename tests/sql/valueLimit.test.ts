/**
 * The largest value every store reads back (`Workflow.maxValueBytes`, 64 MiB of JSON): an output of
 * exactly that size completes and reads back whole on the memory store, PGlite and PostgreSQL; a
 * larger one fails its node with `ValueTooLarge` naming the node and the size, before it is
 * written; resolved inputs over it (a block reading a large output twice) fail the block the same
 * way before its handler runs; a signal payload over it is refused (`InvalidPayload`) and nothing
 * is delivered.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"

// A string's JSON text is its characters and two quotes: these are the limit and one byte over it.
const atLimit = "x".repeat(Workflow.maxValueBytes - 2)
const overLimit = "x".repeat(Workflow.maxValueBytes - 1)

// Half the limit: an output that fits, twice over the limit once a block reads it twice.
const half = "x".repeat(Workflow.maxValueBytes / 2)

const handlers = Handler.layer({
  atLimit: () => Effect.succeed(atLimit),
  overLimit: () => Effect.succeed(overLimit),
  half: () => Effect.succeed(half),
  // A small output, whatever its inputs: only the inputs can be too large.
  count: (ctx) => Effect.succeed(Object.keys(ctx.inputs).length)
})

/** `h → both`: `both` reads `h`'s output twice, so its resolved inputs are over the limit. */
const twice: Workflow.Workflow = {
  id: "limit-inputs",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "h", type: "half" },
    { id: "both", type: "count", params: { a: { $ref: "blocks.h.output" }, b: { $ref: "blocks.h.output" } } }
  ],
  edges: [{ source: "start", target: "h" }, { source: "h", target: "both" }]
}

const one = (block: Workflow.Block): Workflow.Workflow => ({
  id: `limit-${block.id}`,
  blocks: [{ id: "start", type: "trigger" }, block],
  edges: [{ source: "start", target: block.id }]
})

const scenario = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore

  const fits = yield* runs.start(one({ id: "fits", type: "atLimit" }), {})
  assert.strictEqual(yield* runs.wait(fits.runId), "completed")
  assert.isTrue((yield* store.snapshot(fits.runId)).nodes["fits"]?.output === atLimit)

  const big = yield* runs.start(one({ id: "big", type: "overLimit" }), {})
  assert.strictEqual(yield* runs.wait(big.runId), "failed")
  const record = (yield* store.snapshot(big.runId)).nodes["big"]
  assert.strictEqual(record?.status, "failed")
  assert.isFalse(record !== undefined && Object.hasOwn(record, "output"))
  const message = record?.error?.message ?? ""
  assert.include(message, "block big")
  assert.include(message, `${Workflow.maxValueBytes + 1} bytes`)
  assert.isFalse(record?.error?.retryable)

  // Resolved inputs are stored too (the node's record, what a run-from compares): over the limit,
  // the block fails before its handler runs and nothing of them is written.
  const read = yield* runs.start(twice, {})
  assert.strictEqual(yield* runs.wait(read.runId), "failed")
  const both = (yield* store.snapshot(read.runId)).nodes["both"]
  assert.strictEqual(both?.status, "failed")
  assert.isUndefined(both?.inputs)
  assert.isFalse(both !== undefined && Object.hasOwn(both, "output"))
  assert.include(both?.error?.message, "count block both: inputs")
  assert.include(both?.error?.message, `over the limit of ${Workflow.maxValueBytes} bytes`)
  assert.isFalse(both?.error?.retryable)

  const waiting = yield* runs.start(one({ id: "w", type: "wait", params: { signal: "go" } }), {})
  assert.strictEqual(yield* runs.wait(waiting.runId), "suspended")
  const refused = yield* Effect.flip(runs.signal(waiting.runId, "go", overLimit))
  assert.strictEqual(refused._tag, "InvalidPayload")
  assert.strictEqual(refused._tag === "InvalidPayload" ? refused.cause._tag : undefined, "ValueTooLarge")
  assert.deepStrictEqual(yield* store.deliveries(waiting.runId), [])
  assert.strictEqual((yield* store.getRun(waiting.runId)).status, "suspended")
})

describe("value limit in memory", () => {
  layer(Runs.layer().pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, handlers))))((it) => {
    it.effect("an output at the limit reads back, one byte over fails its node, an oversized payload is refused", () => scenario, {
      timeout: 120_000
    })
  })
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`value limit on ${backend}`, (it) => {
    it.effect("an output at the limit reads back, one byte over fails its node, an oversized payload is refused", () =>
      scenario.pipe(
        Effect.provide(
          Runs.layer().pipe(Layer.provideMerge(Layer.merge(SqlRunStore.layer, handlers)), Layer.provideMerge(TestDatabase.layer))
        )
      ), { timeout: 180_000 })
  })
}
