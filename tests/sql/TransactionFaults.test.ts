/**
 * A connection lost inside a transaction of the store (a snapshot read is one repeatable-read
 * transaction) loses its ROLLBACK too, which effect/sql reports as a defect, not a failure: the
 * store retries it like any lost connection, so reading a snapshot (the first thing `Runs.signal`
 * and `approve` do, and a worker's claim of a dormant or crashed run) never dies of it.
 * (tests/sql/BackendTerminated.test.ts terminates the backend for real in the middle of one.)
 */
import { assert, layer } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import { Migrations, SqlRunStore } from "@ripple/sql"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import * as LosingConnection from "../helpers/losingConnection.ts"
import { chain } from "./fixtures/chain.ts"

// The store over a client that loses its connection after chosen statements, and a run in it.
const setup = Effect.gen(function*() {
  yield* Migrations.run
  const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
  const { store: lossy } = yield* SqlRunStore.make.pipe(
    Effect.provideService(SqlClient.SqlClient, losing.client),
    Effect.provideService(RunStore.RetryPolicy, Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 3 })))
  )
  const { store } = yield* SqlRunStore.make
  const version = yield* store.saveWorkflow(chain("transaction-faults", 2))
  const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
  return { losing, lossy, runId: run.id }
})

// The snapshot's first read, then the ROLLBACK it causes: both lose the connection, as when the
// backend is terminated in between.
const snapshotThenRollback = (sql: string) => sql.startsWith("SELECT r.*") || sql === "ROLLBACK"

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`transactions losing their connection on ${backend}`, (it) => {
    it.effect("a snapshot read whose connection is lost mid-transaction, its ROLLBACK too, is retried: the snapshot reads back", () =>
      Effect.gen(function*() {
        const { losing, lossy, runId } = yield* setup
        losing.loseAfter(snapshotThenRollback, 2)
        const read = yield* Effect.exit(lossy.snapshot(runId))
        assert.strictEqual(losing.lost(), 2, "the read and its ROLLBACK were reported lost")
        assert.isTrue(Exit.isSuccess(read), `the read did not succeed: ${Exit.isFailure(read) ? Cause.pretty(read.cause) : ""}`)
        if (Exit.isSuccess(read)) assert.strictEqual(read.value.status, "pending")
      }).pipe(Effect.provide(TestDatabase.layer)))

    it.effect("one lost on every attempt fails the read with StoreUnavailable (ConnectionLost), not a defect", () =>
      Effect.gen(function*() {
        const { losing, lossy, runId } = yield* setup
        losing.loseAfter(snapshotThenRollback, 8)
        const read = yield* Effect.exit(lossy.snapshot(runId))
        assert.strictEqual(losing.lost(), 8, "four attempts, each read and its ROLLBACK")
        assert.isTrue(Exit.isFailure(read), "the read succeeded")
        if (Exit.isFailure(read)) {
          assert.isFalse(Cause.hasDies(read.cause), Cause.pretty(read.cause))
          const error = Cause.findErrorOption(read.cause)
          assert.isTrue(Option.isSome(error) && RunStore.isStoreUnavailable(error.value) && error.value.reason._tag === "ConnectionLost")
        }
      }).pipe(Effect.provide(TestDatabase.layer)))
  })
}
