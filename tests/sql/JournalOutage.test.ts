/**
 * An execution of `Runs` whose journal write fails past the store's retries before its lease's
 * deadline (the database refusing every statement a few seconds) is taken up again by its process
 * once the database is back, and completes as a run without faults (the scenario:
 * tests/helpers/journalOutage.ts; on the memory store: tests/runtime/runs.outage.test.ts). A
 * `Worker` in the same case lets go of the run (its lease expires if the release is refused too),
 * which stays queued, and claims it again.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler } from "@ripple/runtime"
import { Migrations, SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import * as JournalOutage from "../helpers/journalOutage.ts"
import * as LosingConnection from "../helpers/losingConnection.ts"
import { waitFor } from "../helpers/workerProcess.ts"

/** One block, whose first call makes the database refuse statements (its own completion's included). */
const refusing: Workflow.Workflow = { id: "journal-outage-worker", blocks: [{ id: "only", type: "refusing" }], edges: [] }

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`a journal write during an outage on ${backend}`, (it) => {
    it.effect("a journal write refused past the retries: the run is taken up again and completes once the database is back", () =>
      Effect.gen(function*() {
        yield* Migrations.run
        const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
        const store = LosingConnection.store(losing)
        return yield* JournalOutage.runTakenUpAfterOutage(store, {
          begin: Effect.sync(() => losing.refuse(() => true, Infinity)),
          end: Effect.sync(() => losing.refuse(() => false, 0)),
          failed: losing.lost,
          total: true
        })
      }).pipe(Effect.provide(TestDatabase.layer)))

    // Every statement for a while (the release refused too: the lease expires), or only the journal's
    // (the release goes through: the run is queued again at once, where failing it would go through too).
    for (
      const [what, matches, times] of [
        ["every statement", () => true, 20],
        ["the journal's statements", (sql: string) => sql.includes("ripple_journal"), 4]
      ] as const
    ) {
      it.effect(`under a Worker, ${what} refused: the run is let go of, not failed, claimed again and completed once the database is back`, () =>
        Effect.gen(function*() {
          yield* Migrations.run
          const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
          let calls = 0
          const handlers = Handler.layer({
            refusing: () =>
              Effect.sync(() => {
                if (++calls === 1) losing.refuse(matches, times)
                return "done"
              })
          })
          const sqlStore = yield* LosingConnection.sqlStore(losing)
          // What the test reads goes around the refusing client.
          const { store } = yield* SqlRunStore.make
          const runId = yield* Worker.submit(refusing).pipe(Effect.provideService(SqlRunStore.SqlRunStore, sqlStore))
          yield* Effect.scoped(Effect.gen(function*() {
            yield* Worker.make({ leaseMs: 2_000, heartbeatMs: 100, pollMs: 50, shutdownGraceMs: 200 }).pipe(
              Effect.provideService(SqlRunStore.SqlRunStore, sqlStore),
              Effect.provideService(SqlClient.SqlClient, losing.client),
              Effect.provide(handlers)
            )
            yield* waitFor(Effect.map(store.getRun(runId), (run) => run.status !== "running" && run.status !== "pending"), "the run to end", 30_000)
          }))
          assert.isAtLeast(losing.lost(), 4, "the completion's write was refused past the retries")
          const snapshot = yield* store.snapshot(runId)
          assert.strictEqual(snapshot.status, "completed")
          assert.strictEqual(snapshot.nodes["only"]?.output, "done")
          assert.strictEqual(calls, 2, "executed again once claimed again")
        }).pipe(Effect.provide(TestDatabase.layer)))
    }
  })
}
