/**
 * A lease statement whose connection drops after it committed is sent again and recognises its own
 * grant (issue 13): `acquire` returns the lease it was granted (same owner and generation) instead
 * of failing, and of leaving a lease its owner does not know it holds until it expires; a worker's
 * `claim` takes again the runs it was granted; `renew` extends the same lease.
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

const policy = Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 3 }))

const ttlMs = 60_000

// The store over a client that loses its connection after chosen statements, and a run in it.
const setup = Effect.gen(function*() {
  yield* Migrations.run
  const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
  const sqlStore = yield* SqlRunStore.make.pipe(
    Effect.provideService(SqlClient.SqlClient, losing.client),
    Effect.provideService(RunStore.RetryPolicy, policy)
  )
  const version = yield* sqlStore.store.saveWorkflow(chain("lease-replay", 1))
  const run = yield* sqlStore.store.createRun({ version, mode: "full", input: {}, at: 0 })
  return { losing, sqlStore, runId: run.id }
})

// The lease as the run row holds it.
const leaseRow = (runId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{
      readonly lease_owner: string | null
      readonly lease_generation: number | bigint | string
      readonly lease_expires_at: number | null
    }>`SELECT lease_owner, lease_generation, lease_expires_at FROM ripple_runs WHERE id = ${runId}`
    const row = rows[0]!
    return { owner: row.lease_owner, generation: Number(row.lease_generation), expiresAt: row.lease_expires_at === null ? null : Number(row.lease_expires_at) }
  })

const entry: RunStore.JournalEntry = { _tag: "Skipped", node: "b0", fingerprints: { definition: "d" }, at: 1 }

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`lease replay on ${backend}`, (it) => {
    it.effect("acquire whose connection dropped after it committed returns the lease it was granted", () =>
      Effect.gen(function*() {
        const { losing, runId, sqlStore } = yield* setup
        losing.loseAfter((sql) => sql.includes("WITH taken AS"))
        const lease = yield* sqlStore.store.acquire(runId, "owner-a", { ttlMs, at: 1_000 })
        assert.strictEqual(losing.lost(), 1, "the first attempt committed and was reported lost")
        assert.deepStrictEqual(yield* leaseRow(runId), { owner: "owner-a", generation: lease.generation, expiresAt: 1_000 + ttlMs })
        assert.deepStrictEqual(lease, { runId, owner: "owner-a", generation: 1, expiresAt: 1_000 + ttlMs })
        // The lease is usable: its writes are accepted.
        yield* sqlStore.fenced(lease).journal(runId, [entry])
        // And still exclusive: the same owner acquiring again (another execution) is refused.
        const again = yield* Effect.flip(sqlStore.store.acquire(runId, "owner-a", { ttlMs, at: 2_000 }))
        assert.strictEqual(again._tag, "LeaseHeld")
      }).pipe(Effect.provide(TestDatabase.layer)))

    it.effect("claim whose connection dropped after it committed takes again the runs it was granted", () =>
      Effect.gen(function*() {
        const { losing, runId, sqlStore } = yield* setup
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE ripple_runs SET queued = TRUE WHERE id = ${runId}`
        losing.loseAfter((statement) => statement.includes("SKIP LOCKED"))
        const claimed = yield* sqlStore.claim("worker-a", { ttlMs, at: 1_000 }, 10)
        assert.strictEqual(losing.lost(), 1, "the first attempt committed and was reported lost")
        assert.deepStrictEqual(claimed.map((c) => c.id), [runId])
        const row = yield* leaseRow(runId)
        assert.deepStrictEqual(claimed[0]!.lease, { runId, owner: "worker-a", generation: row.generation, expiresAt: 1_000 + ttlMs })
        assert.strictEqual(row.owner, "worker-a")
        yield* sqlStore.fenced(claimed[0]!.lease).journal(runId, [entry])
        // Claimed once: another claim finds nothing.
        assert.deepStrictEqual(yield* sqlStore.claim("worker-b", { ttlMs, at: 2_000 }, 10), [])
      }).pipe(Effect.provide(TestDatabase.layer)))

    it.effect("renew whose connection dropped after it committed extends the same lease", () =>
      Effect.gen(function*() {
        const { losing, runId, sqlStore } = yield* setup
        const lease = yield* sqlStore.store.acquire(runId, "owner-a", { ttlMs, at: 1_000 })
        losing.loseAfter((sql) => sql.includes("SET lease_expires_at"))
        const renewal = yield* sqlStore.store.renew(lease, { ttlMs, at: 5_000 })
        assert.strictEqual(losing.lost(), 1)
        assert.deepStrictEqual(renewal.lease, { ...lease, expiresAt: 5_000 + ttlMs })
        assert.deepStrictEqual(yield* leaseRow(runId), { owner: "owner-a", generation: lease.generation, expiresAt: 5_000 + ttlMs })
      }).pipe(Effect.provide(TestDatabase.layer)))
  })
}
