/**
 * Leases: `acquire` (one run), `claim` (the workers' queue), `renew` and `release`, over the lease
 * columns of the run row (owner, generation, expiry in epoch ms on the callers' clocks).
 */
import type { Workflow } from "@ripple/core"
import { type RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as GroupCommit from "./groupCommit.ts"
import { asJson, wakingDelivery } from "./rows.ts"
import { leaseLost, type Runs } from "./runs.ts"
import { type Db, json } from "./transact.ts"

type Json = Workflow.Json
type Lease = RunStore.Lease

// Marks the grants of one `acquire` or `claim` call, so the call sent again knows them.
const newToken = (): string => globalThis.crypto.randomUUID()

/**
 * A run `claim` took the lease of, as its row was when claimed.
 *
 * @since 0.1.0
 */
export interface Claimed {
  readonly lease: Lease
  readonly id: string
  readonly status: RunStatus.Status
  readonly version: string
  readonly mode: RunStore.Run["mode"]
  readonly source_run: string | null
  readonly target: string | null
  readonly destination: string | null
  readonly pins: { readonly [node: string]: Json } | null
  readonly input: { readonly [key: string]: Json }
  readonly parent_run: string | null
  readonly revision: number | bigint | string
  readonly machine: RunStatus.Persisted
}

/** The lease statements of one store. */
export const make = ({ sql, transact }: Db, { readRun }: Runs) => {
  // A lease can be granted on a row nobody holds or whose holder's lease expired by `at`; granting
  // it is the next generation, marked with the granting call's token. Shared by `acquire` and
  // `claim`, the two ways a lease is taken (both update `ripple_runs r`).
  const grantable = (at: number) => sql`(r.lease_owner IS NULL OR r.lease_expires_at <= ${at})`
  const grant = (owner: string, terms: RunStore.LeaseTerms, token: string) =>
    sql`lease_owner = ${owner}, lease_expires_at = ${terms.at + terms.ttlMs}, lease_generation = r.lease_generation + 1,
      lease_token = ${token}`

  // One conditional update: a concurrent acquire waits for this one's row lock, then re-checks the
  // condition against the row this one wrote and grants nothing. The holder is read from the
  // statement's snapshot, so a refusal after a race (snapshot older than the winner) reads it again.
  // Sent again after a lost connection whose first attempt committed, it finds the lease its token
  // granted and returns it as granted (same owner and generation) instead of refusing it as held.
  const acquire = (
    runId: string,
    owner: string,
    terms: RunStore.LeaseTerms
  ): Effect.Effect<Lease, RunStore.RunNotFound | RunStore.LeaseHeld | RunStore.StoreUnavailable> =>
    Effect.gen(function*() {
      const expiresAt = terms.at + terms.ttlMs
      const token = newToken()
      for (;;) {
        const rows = yield* transact("acquire", sql<{
          readonly generation: number | bigint | string | null
          readonly lease_owner: string | null
          readonly lease_expires_at: number | null
        }>`WITH taken AS (
            UPDATE ripple_runs r SET ${grant(owner, terms, token)}
            WHERE r.id = ${runId} AND ${grantable(terms.at)}
            RETURNING r.lease_generation
          )
          SELECT COALESCE((SELECT lease_generation FROM taken),
              CASE WHEN lease_owner = ${owner} AND lease_token = ${token} THEN lease_generation END) AS generation,
            ${sql.literal(asJson("lease_owner", "lease_owner"))}, lease_expires_at
          FROM ripple_runs WHERE id = ${runId}`)
        const row = rows[0]
        if (row === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
        if (row.generation !== null) return { runId, owner, generation: Number(row.generation), expiresAt }
        if (row.lease_owner !== null && row.lease_expires_at !== null && Number(row.lease_expires_at) > terms.at) {
          return yield* Effect.fail(new RunStore.LeaseHeld({ runId, owner: row.lease_owner, expiresAt: Number(row.lease_expires_at) }))
        }
      }
    })

  // Runs with work, each found through its own index. The lease and status conditions are repeated
  // on the locked row, so a row claimed by another worker since this statement's snapshot is
  // re-checked and left alone. Sent again after a lost connection whose first attempt committed, it
  // takes again the rows its token was granted (nobody heard of that grant, so nobody executes them).
  const claim = (owner: string, terms: RunStore.LeaseTerms, limit: number) =>
    Effect.suspend(() => {
      const token = newToken()
      return Effect.map(
        transact("claim", sql<Omit<Claimed, "lease"> & { readonly lease_generation: number | bigint | string }>`WITH candidates AS (
            SELECT id, seq FROM ripple_runs WHERE queued AND status IN ('pending', 'running')
            UNION
            SELECT id, seq FROM ripple_runs WHERE queued AND status = 'suspended' AND wake_at <= ${terms.at}
            UNION
            SELECT id, seq FROM ripple_runs WHERE queued AND cancel_requested_at IS NOT NULL AND status IN ('suspended', 'paused')
            UNION
            SELECT r.id, r.seq FROM ripple_deliveries d JOIN ripple_runs r ON r.id = d.run_id
            WHERE d.consumed_at IS NULL AND r.queued AND r.status IN ('suspended', 'paused')
              AND ${sql.literal(wakingDelivery)}
          ), locked AS (
            SELECT r.id FROM ripple_runs r JOIN candidates c ON c.id = r.id
            WHERE r.queued AND r.status IN ('pending', 'running', 'suspended', 'paused')
              AND (${grantable(terms.at)} OR (r.lease_owner = ${owner} AND r.lease_token = ${token}))
            ORDER BY c.seq LIMIT ${limit}
            FOR UPDATE OF r SKIP LOCKED
          )
          UPDATE ripple_runs r SET ${grant(owner, terms, token)}
          FROM locked WHERE r.id = locked.id
          RETURNING r.id, r.status, r.lease_generation, r.version, r.mode, r.source_run, r.target, r.destination, r.pins, r.input,
            r.parent_run,
            r.revision, r.machine`),
        (rows) =>
          rows.map(({ lease_generation, ...row }): Claimed => ({
            ...row,
            lease: { runId: row.id, owner, generation: Number(lease_generation), expiresAt: terms.at + terms.ttlMs }
          }))
      )
    })

  const renew = (
    lease: Lease,
    terms: RunStore.LeaseTerms
  ): Effect.Effect<RunStore.Renewal, RunStore.RunNotFound | RunStore.LeaseLost | RunStore.StoreUnavailable> =>
    Effect.gen(function*() {
      const expiresAt = terms.at + terms.ttlMs
      const rows = yield* transact("renew", sql<{ readonly pause: boolean; readonly cancel: boolean }>`UPDATE ripple_runs
        SET lease_expires_at = ${expiresAt}
        WHERE id = ${lease.runId} AND lease_owner = ${lease.owner} AND lease_generation = ${lease.generation}
        RETURNING pause_requested_at IS NOT NULL AS pause, cancel_requested_at IS NOT NULL OR status = 'cancelled' AS cancel`)
      const row = rows[0]
      if (row === undefined) {
        yield* readRun(lease.runId)
        return yield* Effect.fail(leaseLost(lease))
      }
      return { lease: { ...lease, expiresAt }, ack: { pauseRequested: row.pause, cancelRequested: row.cancel } }
    })

  // Leases released while a release is in flight go out together (rows locked in id order, like
  // every multi-row writer, so releases never deadlock with journal writes).
  const releases = GroupCommit.make((batch: ReadonlyArray<{ readonly key: string; readonly request: Lease }>) =>
    Effect.as(
      transact("release", sql`WITH req AS (
          SELECT * FROM jsonb_to_recordset(${json(batch.map((b) => b.request))}::jsonb)
            AS x("runId" text, owner text, generation bigint)
        ), locked AS (
          SELECT r.id FROM ripple_runs r JOIN req ON req."runId" = r.id
          WHERE r.lease_owner = req.owner AND r.lease_generation = req.generation
          ORDER BY r.id FOR UPDATE OF r
        )
        UPDATE ripple_runs r SET lease_owner = NULL, lease_expires_at = NULL FROM locked WHERE r.id = locked.id`),
      batch.map(() => undefined)
    ))
  // A release that fails only leaves the lease to expire.
  const release = (lease: Lease) =>
    Effect.ignoreCause(releases(lease.runId, lease), { log: true, message: "releasing a lease failed" })

  return { acquire, claim, renew, release }
}
