/**
 * A delivery statement whose connection drops after it committed is sent again and recognises its
 * committed first attempt by its token: `deliver` reports the delivery kept (not refused as a
 * duplicate of itself) and keeps it once, even when it was consumed before the second attempt; a
 * journal write that consumed a delivery consumes nothing more when sent again, though a delivery
 * of the same name was kept in between. (tests/sql/BackendTerminated.test.ts terminates the
 * backend for real, with the statement in flight.)
 */
import { assert, layer } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import { Migrations, SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import * as LosingConnection from "../helpers/losingConnection.ts"
import { chain } from "./fixtures/chain.ts"

// The store over a client that loses its connection after chosen statements, whose retry runs
// `between` (once) before the second attempt; the plain store; and a run in them.
const setup = Effect.gen(function*() {
  yield* Migrations.run
  const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
  let next: Effect.Effect<unknown, unknown> = Effect.void
  const policy = Schedule.spaced("1 millis").pipe(
    Schedule.upTo({ times: 3 }),
    Schedule.tap(() => {
      const run = next
      next = Effect.void
      return Effect.orDie(run)
    })
  )
  const { store: lossy } = yield* SqlRunStore.make.pipe(
    Effect.provideService(SqlClient.SqlClient, losing.client),
    Effect.provideService(RunStore.RetryPolicy, policy)
  )
  const { store } = yield* SqlRunStore.make
  const version = yield* store.saveWorkflow(chain("delivery-replay", 1))
  const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
  const between = (effect: Effect.Effect<unknown, unknown>) => {
    next = effect
  }
  return { losing, lossy, store, between, runId: run.id }
})

const go = (payload: string): RunStore.Delivery => ({ kind: "signal", name: "go", payload, at: 1 })
const consumeGo: RunStore.JournalEntry = { _tag: "Consumed", kind: "signal", name: "go" }

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`delivery replay on ${backend}`, (it) => {
    it.effect("deliver whose connection dropped after it committed reports the delivery kept, and keeps it once", () =>
      Effect.gen(function*() {
        const { losing, lossy, runId, store } = yield* setup
        losing.loseAfter((sql) => sql.includes("INSERT INTO ripple_deliveries"))
        assert.isTrue(yield* lossy.deliver(runId, go("a")))
        assert.strictEqual(losing.lost(), 1, "the first attempt committed and was reported lost")
        assert.deepStrictEqual(yield* store.deliveries(runId), [go("a")])
        // Still one kept per name: another delivery of it is refused.
        assert.isFalse(yield* store.deliver(runId, go("b")))
      }).pipe(Effect.provide(TestDatabase.layer)))

    it.effect("deliver sent again after its delivery was consumed reports it kept and keeps no second one", () =>
      Effect.gen(function*() {
        const { between, losing, lossy, runId, store } = yield* setup
        losing.loseAfter((sql) => sql.includes("INSERT INTO ripple_deliveries"))
        between(store.journal(runId, [consumeGo]))
        assert.isTrue(yield* lossy.deliver(runId, go("a")))
        assert.strictEqual(losing.lost(), 1)
        assert.deepStrictEqual(yield* store.deliveries(runId), [])
      }).pipe(Effect.provide(TestDatabase.layer)))

    it.effect("a journal write that consumed a delivery, sent again after its connection dropped, consumes no delivery kept since", () =>
      Effect.gen(function*() {
        const { between, losing, lossy, runId, store } = yield* setup
        assert.isTrue(yield* store.deliver(runId, go("a")))
        losing.loseAfter((sql) => sql.includes("consumed_by"))
        between(Effect.flatMap(store.deliver(runId, go("b")), (kept) => kept ? Effect.void : Effect.die("b refused")))
        yield* lossy.journal(runId, [consumeGo])
        assert.strictEqual(losing.lost(), 1, "the first attempt committed and was reported lost")
        assert.deepStrictEqual(yield* store.deliveries(runId), [go("b")])
      }).pipe(Effect.provide(TestDatabase.layer)))
  })
}
