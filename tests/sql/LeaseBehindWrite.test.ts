/**
 * One owner when a journal write outlasts its lease (the real server; PGlite is one session, so
 * nothing waits there). A journal write holds its run's row `FOR SHARE` for its whole transaction,
 * so the lease statements of the run wait for it: a worker's `claim` skips the row (nobody takes a
 * run over in the middle of its owner's write, however long the write takes), and a renewal waits
 * and then extends the lease it fenced, which nobody could take meanwhile. Once the write committed
 * with the lease expired by the clock, a claim takes the run over, and the first holder's renewals
 * and writes are refused from then on: its committed write stays, the only one it made past expiry,
 * serialised before the takeover (the claim had to wait for its lock).
 *
 * The write is held open by a second session that locks the journal row it upserts, and every step
 * waits for a backend blocked by the previous one (`pg_blocking_pids`): no step depends on timing.
 */
import { assert, layer } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import { Migrations, SqlRunStore } from "@ripple/sql"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import { waitFor } from "../helpers/workerProcess.ts"
import { chain } from "./fixtures/chain.ts"

const ttlMs = 1_000
const fingerprints = { definition: "0000000000000001", inputs: "0000000000000002" }
const started = (node: string, at: number): RunStore.JournalEntry => ({ _tag: "Started", node, attempt: 1, inputs: {}, fingerprints, at })

// The backend a backend `pid` blocks, once there is one (this test's sessions only, whatever else
// the server runs meanwhile).
const blockedBy = (pid: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    let blocked: number | undefined
    yield* waitFor(
      Effect.map(
        Effect.orDie(sql<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity WHERE ${pid} = ANY(pg_blocking_pids(pid))`),
        (rows) => {
          blocked = rows[0] === undefined ? undefined : Number(rows[0].pid)
          return blocked !== undefined
        }
      ),
      `a session blocked by backend ${pid}`,
      30_000
    )
    return blocked!
  })

// Locks the run's journal rows in a transaction of its own (another pooled session) until `done`;
// the backend's pid once they are locked.
const holdJournal = (runId: string, done: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const locked = yield* Deferred.make<number>()
    yield* Effect.forkChild(Effect.orDie(sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT 1 FROM ripple_journal WHERE run_id = ${runId} FOR UPDATE`
      const [row] = yield* sql<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`
      yield* Deferred.succeed(locked, Number(row!.pid))
      yield* Deferred.await(done)
    }))))
    return yield* Deferred.await(locked)
  })

const failureTag = (exit: Exit.Exit<unknown, unknown>): string | undefined =>
  Exit.isSuccess(exit) ? undefined : (Result.getOrUndefined(Cause.findError(exit.cause)) as { readonly _tag?: string } | undefined)?._tag

layer(TestDatabase.shared("postgres"), { excludeTestServices: true })("postgres: a journal write that outlasts its lease", (it) => {
  it.effect("is taken over only after the write commits, and its holder writes and starts nothing more", () =>
    // The held write is let through however the test ends, so that a failed assertion does not leave it waiting.
    Effect.flatMap(Deferred.make<void>(), (done) => Effect.ensuring(Effect.gen(function*() {
      yield* Migrations.run
      const sql = yield* SqlClient.SqlClient
      const { claim, fenced, store } = yield* SqlRunStore.make
      const version = yield* store.saveWorkflow(chain("lease-behind-write", 2))
      const { id: runId } = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
      yield* sql`UPDATE ripple_runs SET queued = TRUE WHERE id = ${runId}`
      const lease = yield* store.acquire(runId, "owner-a", { ttlMs, at: 0 })
      yield* fenced(lease).journal(runId, [started("b0", 1)])

      // A's write of b0 starts under its lease, then waits (run row locked for share) while the clock passes its expiry.
      const holder = yield* holdJournal(runId, done)
      const writing = yield* Effect.forkChild(fenced(lease).journal(runId, [started("b0", 500)]))
      const writer = yield* blockedBy(holder)
      assert.deepStrictEqual(yield* claim("worker-b", { ttlMs, at: 5_000 }, 10), [], "no takeover in the middle of the write")
      // A's heartbeat, sent before the expiry, waits for the write.
      const renewing = yield* Effect.forkChild(store.renew(lease, { ttlMs, at: 600 }))
      yield* blockedBy(writer)

      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(writing)
      assert.strictEqual((yield* Fiber.join(renewing)).lease.expiresAt, 600 + ttlMs, "the renewal extends the lease it fenced")

      // Expired by the clock: a claim takes the run over, as the next generation.
      const [taken] = yield* claim("worker-b", { ttlMs, at: 5_000 }, 10)
      assert.deepStrictEqual(taken?.lease, { runId, owner: "worker-b", generation: lease.generation + 1, expiresAt: 5_000 + ttlMs })
      // A's confirmation before its next start fails, and so does any write of it.
      assert.strictEqual((yield* Effect.flip(store.renew(lease, { ttlMs, at: 5_001 })))._tag, "LeaseLost")
      assert.strictEqual(failureTag(yield* Effect.exit(fenced(lease).journal(runId, [started("b1", 5_002)]))), "LeaseLost")
      assert.strictEqual(
        failureTag(yield* Effect.exit(fenced(lease).setDiagnostics(runId, { messages: [] }, 5_003))),
        "LeaseLost"
      )
      // A's committed write is what B resumes from; B's writes are accepted.
      yield* fenced(taken!.lease).journal(runId, [started("b1", 5_004)])
      const rows = yield* sql<{ readonly node: string; readonly started_at: number }>`SELECT node, started_at FROM ripple_journal
        WHERE run_id = ${runId} ORDER BY node`
      assert.deepStrictEqual(rows.map((row) => [row.node, Number(row.started_at)]), [["b0", 500], ["b1", 5_004]])
    }), Deferred.succeed(done, undefined))).pipe(Effect.provide(TestDatabase.layer)))
})
