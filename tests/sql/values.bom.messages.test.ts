/**
 * Messages and names read back as written (DESIGN.md, "Values round-trip"), like a signal's name
 * and a workflow id (values.bom.test.ts): a text column's value is decoded by the database client
 * on its own, and a UTF-8 decoder drops a leading byte order mark (U+FEFF), PGlite's always, the
 * PostgreSQL client's when the text also holds U+FFFD. A handler's compensation error, a block's
 * error, a rejection's reason, the run's diagnostics messages, the owner holding a run's lease (in
 * the run and in `LeaseHeld`) and a run's trigger start with one and read back whole from every
 * store. (Node ids cannot: U+FEFF is whitespace, reserved in ids.)
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

import * as TestDatabase from "../helpers/database.ts"

// A mark first (U+FFFD sends PostgreSQL's client to the decoder that drops it).
const marked = (text: string) => `\ufeff${text}\ufffd`
const owner = marked("owner")

// Released by the test once it has read the lease `hold`'s run is executing under.
let release = Deferred.makeUnsafe<void>()
const handlers = Handler.layer({
  ...Builtins.handlers,
  step: (ctx) => Effect.succeed(ctx.node),
  boom: () => Effect.fail(BlockError.permanent(marked("no truck"))),
  hold: () => Effect.as(Deferred.await(release), null)
}, {
  compensate: { step: () => Effect.fail(BlockError.permanent(marked("cannot undo"))) }
})

const saga: Workflow.Workflow = {
  id: "bom-saga",
  blocks: [{ id: "reserve", type: "step" }, { id: "ship", type: "boom" }],
  edges: [{ source: "reserve", target: "ship" }]
}

const review: Workflow.Workflow = { id: "bom-review", blocks: [{ id: "gate", type: "approval" }], edges: [] }

const held: Workflow.Workflow = { id: "bom-held", blocks: [{ id: "h", type: "hold" }], edges: [] }

// `reopen`: the store as another process opens it (nothing of the run cached).
const scenario = <E, R>(reopen: Effect.Effect<RunStore.RunStore["Service"], E, R>) => Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore

  const failed = (yield* runs.start(saga)).runId
  assert.strictEqual(yield* runs.wait(failed), "failed")
  const status = yield* runs.status(failed)
  assert.deepStrictEqual(status.compensations.map((c) => [c.node, c.status, c.error]), [["reserve", "failed", marked("cannot undo")]])
  const snapshot = yield* store.snapshot(failed)
  assert.strictEqual(snapshot.nodes["ship"]?.error?.message, marked("no truck"))
  assert.include(snapshot.diagnostics.messages, `compensation of reserve failed: ${marked("cannot undo")}`)

  const rejected = (yield* runs.start(review)).runId
  assert.strictEqual(yield* runs.wait(rejected), "paused")
  assert.isTrue(yield* runs.reject(rejected, "gate", marked("not now")))
  assert.strictEqual(yield* runs.wait(rejected), "failed")
  assert.include((yield* store.snapshot(rejected)).nodes["gate"]?.error?.message, marked("not now"))

  release = Deferred.makeUnsafe<void>()
  const running = (yield* runs.start(held)).runId
  let lease = (yield* store.getRun(running)).lease
  while (lease === undefined) {
    yield* Effect.yieldNow
    lease = (yield* store.getRun(running)).lease
  }
  assert.strictEqual(lease.owner, owner)
  const taken = yield* Effect.flip(store.acquire(running, "another", { ttlMs: 60_000, at: 0 }))
  assert.strictEqual(taken._tag === "LeaseHeld" ? taken.owner : taken._tag, owner)
  yield* Deferred.succeed(release, undefined)
  assert.strictEqual(yield* runs.wait(running), "completed")

  // A trigger (`Worker.submit` names one) reads back whole in the run and its snapshot.
  const trigger = marked("nightly")
  const version = yield* store.saveWorkflow(held)
  const created = yield* store.createRun({ version, mode: "full", trigger, input: {}, at: 0 })
  assert.strictEqual(created.trigger, trigger)
  assert.strictEqual((yield* store.getRun(created.id)).trigger, trigger)
  assert.strictEqual((yield* store.snapshot(created.id)).trigger, trigger)

  // The owner holding a lease writes under it from a store that reads the run afresh.
  const granted = yield* store.acquire(created.id, owner, { ttlMs: 60_000, at: 0 })
  const moved = yield* (yield* reopen).fenced(granted).transition(created.id, { type: "START" }, 1)
  assert.deepStrictEqual(moved, { from: "pending", to: "running" })
})

const currentStore = Effect.gen(function*() {
  return yield* RunStore.RunStore
})

const provided = <E, R>(store: Layer.Layer<RunStore.RunStore, E, R>) =>
  Effect.provide(Runs.layer({ owner }).pipe(Layer.provideMerge(Layer.merge(store, handlers))))

describe("marked messages in memory", () => {
  it.effect("a compensation error, a block error, a reason, a diagnostics message, a lease owner and a trigger starting with U+FEFF read back whole", () =>
    Effect.flatMap(currentStore, (store) => scenario(Effect.succeed(store))).pipe(provided(RunStore.layerMemory)))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`marked messages on ${backend}`, (it) => {
    it.effect("a compensation error, a block error, a reason, a diagnostics message, a lease owner and a trigger starting with U+FEFF read back whole", () =>
      scenario(Effect.provide(currentStore, Layer.fresh(SqlRunStore.layer))).pipe(provided(SqlRunStore.layer), Effect.provide(TestDatabase.layer)))
  })
}
