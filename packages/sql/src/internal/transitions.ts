/**
 * Machine writes: `transition` offers events to the run's persisted `RunStatus` machine and writes
 * the result with a compare-and-set on the row's revision (group-committed across runs), `requeue`
 * does so and queues the run for the workers in the same write, and `markFailed` fails a run
 * whatever its stored machine holds.
 */
import type { Snapshot } from "@ripple/core"
import { RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as GroupCommit from "./groupCommit.ts"
import { consumesCancel, consumesPause, CorruptRun, errorOfMachine, settled } from "./rows.ts"
import { holds, leaseLost, type Runs } from "./runs.ts"
import { type Db, json } from "./transact.ts"

type Lease = RunStore.Lease

interface MachineWrite {
  readonly revision: string
  /** Unique to this write: its committed first attempt is recognised by it (see `machineWriter`). */
  readonly token: string
  readonly lease: Lease | undefined
  readonly machine: RunStatus.Persisted
  readonly suspension: RunStatus.Suspension
  readonly at: number
  /** Written with the machine (`finish`). */
  readonly diagnostics: Snapshot.Diagnostics | undefined
  /** The run is queued for the workers, and they are notified, by this write (`requeue`). */
  readonly queued: boolean
}

// Accepted machines of many runs, each written if its row still has the revision it was computed
// from (and the lease, when fenced). Rows are locked in id order (as every multi-row writer
// here), and a run settling completed or failed becomes the latest of its (workflow, trigger) in
// the same statement: per (workflow, trigger) only the batch's latest-created run competes. A row
// already one revision on with this write's token is this write sent again after a lost
// connection (its first attempt committed): it counts as written, not as a lost race. (Not the
// machine: another writer's write from the same revision can hold exactly the same machine — two
// branches starting at once — and taking it for this one loses an update.)
//
// A write that queues its run (`requeue`) marks it queued and notifies the workers on `channel` in
// the same statement (the notification goes out when it commits): an outage between handing a run
// back and queueing it would leave it running with no worker to claim it. Only a batch holding
// such a write carries these clauses. (A CTE that only reads runs only when it is read: the final
// count makes the notifications happen. A write sent again after its first attempt committed is
// `replayed`: that attempt notified.)
//
// The writer of runs settling `cancelled` (`cancelling`) also asks every unfinished run below each
// of them (children, theirs, ...) to cancel, in the same statement: none is left running for a
// cancelled parent if the canceller stops now. It is a writer of its own so that a descendant is
// never also written by the batch (a row updated twice in one statement keeps one update only):
// a descendant in it settles `cancelled` itself, and any other writer's statement is another.
const machineWriter = ({ sql, transact }: Db, channel: string, cancelling: boolean) =>
  GroupCommit.make((batch: ReadonlyArray<{ readonly key: string; readonly request: MachineWrite }>) => {
    const requests = batch.map(({ key, request }) => ({
      id: key,
      revision: request.revision,
      token: request.token,
      owner: request.lease?.owner ?? null,
      gen: request.lease?.generation ?? null,
      status: request.machine.status,
      machine: request.machine,
      error: errorOfMachine(request.machine),
      wake_at: request.suspension.wakeAt,
      signals: request.suspension.signals,
      approvals: request.suspension.approvals,
      at: request.at,
      latest: settled.includes(request.machine.status),
      d: request.diagnostics !== undefined,
      ls_node: request.diagnostics?.lastStarted?.node ?? null,
      ls_at: request.diagnostics?.lastStarted?.at ?? null,
      lc_node: request.diagnostics?.lastCompleted?.node ?? null,
      lc_at: request.diagnostics?.lastCompleted?.at ?? null,
      fin: request.diagnostics?.finalization ?? null,
      msgs: request.diagnostics?.messages ?? null,
      queued: request.queued
    }))
    const queueing = requests.some((request) => request.queued)
    const askDescendants = sql`, below (id, at) AS (
          SELECT c.id, u.at FROM updated u JOIN ripple_runs c ON c.parent_run = u.id
          UNION
          SELECT c.id, b.at FROM below b JOIN ripple_runs c ON c.parent_run = b.id
        ), asked AS (
          UPDATE ripple_runs c SET cancel_requested_at = COALESCE(c.cancel_requested_at, below.at)
          FROM below WHERE c.id = below.id AND NOT (c.status = ANY (${consumesCancel}::text[]))
            AND NOT EXISTS (SELECT 1 FROM req WHERE req.id = c.id)
        )`
    return Effect.map(
      transact("transition", sql<{ readonly id: string }>`WITH RECURSIVE req AS (
          SELECT * FROM jsonb_to_recordset(${json(requests)}::jsonb) AS x(id text, revision bigint, token text, owner text, gen bigint,
            status text, machine jsonb, error text, wake_at double precision, signals jsonb, approvals jsonb,
            at double precision, latest boolean, d boolean, ls_node text, ls_at double precision, lc_node text,
            lc_at double precision, fin text, msgs jsonb, queued boolean)
        ), locked AS (
          SELECT r.id FROM ripple_runs r JOIN req ON req.id = r.id ORDER BY r.id FOR UPDATE OF r
        ), updated AS (
          UPDATE ripple_runs r SET status = req.status, machine = req.machine, revision = r.revision + 1,
            machine_token = req.token,
            updated_at = req.at, error = req.error, wake_at = req.wake_at,
            awaited_signals = ARRAY(SELECT jsonb_array_elements_text(req.signals)),
            awaited_approvals = ARRAY(SELECT jsonb_array_elements_text(req.approvals)),
            pause_requested_at = CASE WHEN req.status = ANY (${consumesPause}::text[]) THEN NULL ELSE r.pause_requested_at END,
            cancel_requested_at = CASE WHEN req.status = ANY (${consumesCancel}::text[]) THEN NULL ELSE r.cancel_requested_at END,
            last_started_node = CASE WHEN req.d AND req.ls_at >= COALESCE(r.last_started_at, '-Infinity')
              THEN req.ls_node ELSE r.last_started_node END,
            last_started_at = CASE WHEN req.d THEN GREATEST(r.last_started_at, req.ls_at) ELSE r.last_started_at END,
            last_completed_node = CASE WHEN req.d AND req.lc_at >= COALESCE(r.last_completed_at, '-Infinity')
              THEN req.lc_node ELSE r.last_completed_node END,
            last_completed_at = CASE WHEN req.d THEN GREATEST(r.last_completed_at, req.lc_at) ELSE r.last_completed_at END,
            finalization = CASE WHEN req.d THEN req.fin ELSE r.finalization END,
            messages = CASE WHEN req.d THEN req.msgs ELSE r.messages END${queueing ? sql`, queued = r.queued OR req.queued` : sql``}
          FROM req JOIN locked ON locked.id = req.id
          WHERE r.id = req.id AND r.revision = req.revision
            AND (req.owner IS NULL OR (r.lease_owner = req.owner AND r.lease_generation = req.gen))
          RETURNING r.id, r.workflow_id, CASE WHEN r.trigger IS NULL THEN '' ELSE '=' || r.trigger END AS trigger_key,
            r.created_at, r.seq, req.latest, req.at, req.queued
        )${cancelling ? askDescendants : sql``}${
      queueing ? sql`, announced AS (SELECT pg_notify(${channel}, id) FROM updated WHERE queued)` : sql``
    }, latest AS (
          INSERT INTO ripple_latest (workflow_id, trigger_key, run_id, created_at, seq)
          SELECT DISTINCT ON (workflow_id, trigger_key) workflow_id, trigger_key, id, created_at, seq
          FROM updated WHERE latest
          ORDER BY workflow_id, trigger_key, created_at DESC, seq DESC
          ON CONFLICT (workflow_id, trigger_key) DO UPDATE SET run_id = excluded.run_id, created_at = excluded.created_at,
            seq = excluded.seq
          WHERE (ripple_latest.created_at, ripple_latest.seq) <= (excluded.created_at, excluded.seq)
        ), replayed AS (
          SELECT r.id FROM ripple_runs r JOIN req ON req.id = r.id
          WHERE r.revision = req.revision + 1 AND r.machine_token = req.token
            AND (req.owner IS NULL OR (r.lease_owner = req.owner AND r.lease_generation = req.gen))
        )
        SELECT id FROM updated${
        queueing ? sql` WHERE (SELECT count(*) FROM announced) >= 0` : sql``
      } UNION ALL SELECT id FROM replayed`),
      (rows) => {
        const written = new Set(rows.map((row) => row.id))
        return batch.map(({ key }) => written.has(key))
      }
    )
  })

/** Offers events to a run's machine and writes the outcome (see `make`). */
export type Transitions = ReturnType<typeof make>

/** The machine writes of one store, over its run rows and their machine cache. */
export const make = (db: Db, { isCurrent, machines, readRun, remember }: Runs, channel: string) => {
  const { sql, transact } = db
  const writeMachines = machineWriter(db, channel, false)
  const writeCancels = machineWriter(db, channel, true)
  const writeMachine = (
    runId: string,
    revision: string,
    accepted: RunStatus.Snapshot,
    at: number,
    lease: Lease | undefined,
    diagnostics: Snapshot.Diagnostics | undefined,
    queued: boolean
  ) =>
    (RunStatus.status(accepted) === "cancelled" ? writeCancels : writeMachines)(runId, {
      revision,
      token: crypto.randomUUID(),
      lease,
      machine: RunStatus.persist(accepted),
      suspension: RunStatus.suspension(accepted),
      at,
      diagnostics,
      queued
    })

  const restoreOrDie = (runId: string, machine: unknown) => {
    const restored = RunStatus.restore(machine)
    return Result.isFailure(restored)
      ? Effect.die(new CorruptRun({ runId, reason: `run status: ${restored.failure.message}` }))
      : Effect.succeed(restored.success)
  }

  // Offers the events in order and writes the outcome once: all of them are accepted or nothing is
  // written (the run is queued with it when `queued`).
  const transitionAll = (lease: Lease | undefined, queued = false) =>
  (
    runId: string,
    events: ReadonlyArray<RunStatus.Event>,
    at: number,
    diagnostics?: Snapshot.Diagnostics
  ): Effect.Effect<
    { readonly from: RunStatus.Status; readonly to: RunStatus.Status },
    RunStore.RunNotFound | RunStore.IllegalTransition | RunStore.StoreUnavailable | RunStore.LeaseLost
  > =>
    Effect.gen(function*() {
      // Compare-and-set: a concurrent writer (or a stale cache) makes the update miss, and the
      // events are offered again to the machine as stored.
      let cached = machines.get(runId)
      // Whether `cached` was just read from the row rather than taken from the cache.
      let fresh = false
      for (;;) {
        if (cached === undefined) {
          const row = yield* readRun(runId)
          if (lease !== undefined && !holds(row, lease)) return yield* Effect.fail(leaseLost(lease))
          cached = { revision: String(row.revision), machine: row.machine }
          fresh = true
        }
        let machine = yield* restoreOrDie(runId, cached.machine)
        let refused: RunStore.IllegalTransition | undefined
        for (const event of events) {
          const applied = RunStore.applyEvent(runId, machine, event)
          if (Result.isFailure(applied)) {
            refused = applied.failure
            break
          }
          machine = applied.success
        }
        if (refused !== undefined) {
          // Refused by what may be a stale cache: refuse only what the stored machine refuses. Under
          // a lease, only what the row read holding it refuses: a lease another process took is
          // refused as lost (`LeaseLost`) whatever its holder made of the run since.
          if (fresh || (lease === undefined && (yield* isCurrent(runId, cached.revision)))) return yield* Effect.fail(refused)
          cached = undefined
          continue
        }
        if (yield* writeMachine(runId, cached.revision, machine, at, lease, diagnostics, queued)) {
          remember(runId, BigInt(cached.revision) + 1n, RunStatus.persist(machine))
          return { from: cached.machine.status, to: RunStatus.status(machine) }
        }
        machines.delete(runId)
        cached = undefined
      }
    })

  const transition = (lease: Lease | undefined) => (runId: string, event: RunStatus.Event, at: number) =>
    transitionAll(lease)(runId, [event], at)

  // Hands a run back to the workers: the event's outcome and the queueing are one write, so a
  // refused event queues nothing and a failed write leaves the run as it was.
  // Unfenced, so never refused for a lease.
  const requeue = (runId: string, event: RunStatus.Event, at: number) =>
    Effect.catchTag(transitionAll(undefined, true)(runId, [event], at), "LeaseLost", Effect.die)

  const markFailed = (lease: Lease, reason: string, at: number) =>
    Effect.gen(function*() {
      const failed = RunStatus.next(RunStatus.initial(), { type: "FAIL", error: reason })
      // A fresh machine failed with the reason: the stored one may be what is corrupt.
      const machine = failed._tag === "Accepted" ? RunStatus.persist(failed.snapshot) : undefined
      // Sent again after a lost connection, it finds its committed first attempt by its token
      // instead of appending the reason twice.
      const token = crypto.randomUUID()
      const rows = yield* transact("markFailed", sql<{ readonly id: string }>`WITH updated AS (
          UPDATE ripple_runs SET status = 'failed',
            machine = ${json(machine)}::jsonb, revision = revision + 1, machine_token = ${token}, error = ${reason},
            finalization = 'failed', messages = messages || ${json([reason])}::jsonb, updated_at = ${at},
            pause_requested_at = NULL, cancel_requested_at = NULL
          WHERE id = ${lease.runId} AND lease_owner = ${lease.owner} AND lease_generation = ${lease.generation}
            AND status NOT IN ('completed', 'cancelled') AND machine_token IS DISTINCT FROM ${token}
          RETURNING id
        ), replayed AS (
          SELECT id FROM ripple_runs WHERE id = ${lease.runId} AND lease_owner = ${lease.owner}
            AND lease_generation = ${lease.generation} AND machine_token = ${token}
        )
        SELECT id FROM updated UNION ALL SELECT id FROM replayed`)
      if (rows.length === 0) return yield* Effect.fail(leaseLost(lease))
    })

  return { transitionAll, transition, requeue, markFailed }
}
