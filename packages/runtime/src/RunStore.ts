/**
 * The persistence port of the engine: frozen workflow versions, runs, their status (validated by
 * `RunStatus`), the per-node journal and diagnostics. `layerMemory` keeps everything in memory;
 * every store (the Postgres one in `@ripple/sql` included) must pass `tests/helpers/runStoreContract.ts`.
 *
 * **Details**
 *
 * - Workflow versions are content-addressed: the version of a workflow is `Fingerprint.hash` of its
 *   encoded JSON, so saving the same workflow twice stores it once, and a run always reads back the
 *   exact version it started with.
 * - `journal` takes a batch of entries for one run and applies them in order, so the engine writes
 *   the completions of a wave and the starts of the next one in one call (one round trip, one
 *   transaction in SQL). Later entries for a node replace earlier ones.
 * - `transition` offers a `RunStatus` event to the run's persisted machine; an event the machine
 *   rejects (or a status change `RunStatus.isAllowed` refuses) fails with `IllegalTransition` and
 *   writes nothing.
 * - Long-lived runs (issue 6) added, and only added: the journal entries `Waiting` / `Paused` (a
 *   node instance dormant on a signal, a timer or an approval: they make the snapshot's `waits` and
 *   `pauses`), `Scope` (a loop or parallel instance: the snapshot's `loops` / `parallels`) and
 *   `Consumed` (a delivery taken by the node that awaited it, atomically with that node's write);
 *   the operations `deliver` / `deliveries` (signals and approval decisions kept until a node takes
 *   them, so one that arrives before the run suspends is not lost) and `wakeable` (the runs a
 *   worker should wake now).
 * - Child workflows (issue 9) added, and only added: `parentRun` / `parentNode` on runs and
 *   `children`.
 * - Saga compensation (issue 9) added, and only added: a per-run compensation log
 *   (`planCompensations`, `compensated`, `compensations`), so a crash during compensation resumes
 *   with the compensations not yet journaled.
 * - `finish` (a performance addition) writes the final transition and the diagnostics together,
 *   one round trip where `setDiagnostics` and `transition` took two.
 * - Pruning (issue 14) added, and only added: `pruned` on `NewRun`, `Run` and the snapshot, what a
 *   run-from's plan pruned and which pruned nodes failed last time, written once at `createRun`.
 * - Queued creation added, and only added: `queued` on `NewRun`, so a run handed to workers is
 *   queued by the write that creates it (an outage between creating and queueing it left a
 *   pending run no worker claims).
 * - Pause requests (issue 8): `requestPause` records one on the run, `journal` acknowledges every
 *   write with whether one is pending (`JournalAck`), so the process executing a run, wherever it
 *   is, sees a pause asked for from any other process at its next node boundary without an extra
 *   round trip. A request is consumed when the run settles `paused` (or ends). An unpause asked
 *   for before the run settled (a node parked while others still run) is kept as an `unpause`
 *   delivery, which wakes the run once it settles `paused`; a newer pause request drops it.
 * - Leases (issue 13, "one owner"): whoever executes a run holds its lease, taken with `acquire`
 *   (the one operation every execution path goes through: `Runs`, workers, child runs) and kept
 *   with `renew`; `fenced(lease)` is the store whose every execution write (journal, machine,
 *   diagnostics, compensation log) also requires the lease, so a process that lost it cannot
 *   write (`LeaseLost`, a typed failure). `requestCancel` records a cancel request; like a pause
 *   request, every journal write (and every renewal) acknowledges it, so the executing process
 *   stops before its next block.
 * - Store faults (issue 13): every operation may fail with `StoreUnavailable`, whose reason
 *   (serialization failure, deadlock, connection lost, admin shutdown, database busy, or any other
 *   failure) says whether running it again may succeed. A store retries the retryable ones itself
 *   (`retry` under `RetryPolicy`, on the effect `Clock`); an execution that still gets one stops
 *   and leaves its run resumable. The memory store never fails.
 *
 * @since 0.1.0
 */
import { Fingerprint, type Plan, Snapshot, Workflow } from "@ripple/core"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Mode } from "./RunEvent.ts"
import * as MemoryStore from "./internal/memoryStore.ts"
import * as RunStatus from "./RunStatus.ts"

/** Any JSON value. */
type Json = Workflow.Json

/**
 * No run with this id.
 *
 * @since 0.1.0
 */
export class RunNotFound extends Data.TaggedError("RunNotFound")<{ readonly runId: string }> {}

/**
 * No stored workflow with this version.
 *
 * @since 0.1.0
 */
export class WorkflowNotFound extends Data.TaggedError("WorkflowNotFound")<{ readonly version: string }> {}

/**
 * `RunStatus` refused the event in the run's current status; nothing was written.
 *
 * @since 0.1.0
 */
export class IllegalTransition extends Data.TaggedError("IllegalTransition")<{
  readonly runId: string
  readonly from: RunStatus.Status
  readonly event: RunStatus.EventType
  readonly reason: RunStatus.Rejection | "not-allowed"
}> {}

/** What every reason of `StoreUnavailable` carries: the driver's message, SQLSTATE and original error. */
interface ReasonFields {
  readonly message: string
  /** The SQLSTATE (or driver code) the database reported, when it reported one. */
  readonly code?: string | undefined
  readonly cause?: unknown
}

/**
 * The transaction lost a serialization conflict (SQLSTATE 40001): it was rolled back, and running
 * it again may succeed.
 *
 * @since 0.1.0
 */
export class SerializationFailure extends Data.TaggedError("SerializationFailure")<ReasonFields> {
  /** Whether running the transaction again may succeed. */
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The transaction was chosen as a deadlock victim (SQLSTATE 40P01) and rolled back.
 *
 * @since 0.1.0
 */
export class Deadlock extends Data.TaggedError("Deadlock")<ReasonFields> {
  /** Whether running the transaction again may succeed. */
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The connection failed (SQLSTATE class 08, or the socket closed). A write in flight may or may not
 * have committed: only a write that is safe to apply twice may be sent again.
 *
 * @since 0.1.0
 */
export class ConnectionLost extends Data.TaggedError("ConnectionLost")<ReasonFields> {
  /** Whether running the transaction again may succeed. */
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The server is shutting down or restarting (SQLSTATE 57P01, 57P02, 57P03): the statement was
 * aborted, and a new connection may succeed once the server is back.
 *
 * @since 0.1.0
 */
export class AdminShutdown extends Data.TaggedError("AdminShutdown")<ReasonFields> {
  /** Whether running the transaction again may succeed. */
  get isRetryable(): boolean {
    return true
  }
}

/**
 * The database is busy: a lock was not available (55P03), too many connections (53300), or
 * embedded PGlite's filesystem reported `EBUSY`.
 *
 * @since 0.1.0
 */
export class DatabaseBusy extends Data.TaggedError("DatabaseBusy")<ReasonFields> {
  /** Whether running the transaction again may succeed. */
  get isRetryable(): boolean {
    return true
  }
}

/**
 * Any other failure of the database (a constraint, a syntax error, a missing table, ...): running
 * it again would fail the same way.
 *
 * @since 0.1.0
 */
export class StoreFailure extends Data.TaggedError("StoreFailure")<ReasonFields> {
  /** Whether running the transaction again may succeed. */
  get isRetryable(): boolean {
    return false
  }
}

/**
 * Why the store could not be reached or refused a transaction.
 *
 * @since 0.1.0
 */
export type StoreUnavailableReason =
  | SerializationFailure
  | Deadlock
  | ConnectionLost
  | AdminShutdown
  | DatabaseBusy
  | StoreFailure

/**
 * The store failed an operation for a reason of the database, not of the run: the run's state is
 * what the store held before the operation (or, for `ConnectionLost`, possibly after it).
 *
 * **Details**
 *
 * Retryable reasons are retried by the store (`retry`, with `RetryPolicy`); an execution that still
 * gets this error stops and leaves its run resumable (`running`), never `failed`: a run fails only
 * because of its blocks. The process executing it takes it up again once the store answers (`Runs`
 * takes the lease again a heartbeat later; a `Worker` releases the run and claims it again). A
 * reason that is not retryable stops the execution for `Runs.resume` (a `Worker` also takes the
 * run off its queue, so no worker claims it again).
 *
 * @since 0.1.0
 */
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{
  readonly reason: StoreUnavailableReason
  /** The store operation that failed (`journal`, `transition`, ...). */
  readonly operation: string
}> {
  override get message(): string {
    return `store unavailable (${this.reason._tag}${this.reason.code === undefined ? "" : ` ${this.reason.code}`}) in ${this.operation}: ${this.reason.message}`
  }

  /** Whether running the operation again may succeed. */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}

/**
 * Whether a value is a `StoreUnavailable`.
 *
 * @since 0.1.0
 */
export const isStoreUnavailable = (u: unknown): u is StoreUnavailable => u instanceof StoreUnavailable

/**
 * How a store retries a retryable `StoreUnavailable`: exponential backoff from 20 ms, doubling,
 * each delay capped at 1 s and jittered (×0.8 to ×1.2), at most 8 retries (about 3.5 s in all),
 * slept on the effect `Clock`.
 *
 * @since 0.1.0
 */
export const defaultRetryPolicy: Schedule.Schedule<unknown, StoreUnavailable> = Schedule.exponential("20 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(1)))),
  Schedule.jittered,
  Schedule.upTo({ times: 8 })
)

/**
 * Subscribes to the changes another process makes to run `runId` and returns `next`, which waits
 * for the next one: the store's notification (`watch`) or, at the latest, `fallbackMs` later (a
 * lost notification only costs that); where the store cannot notify, a poll interval of `pollMs`.
 *
 * **Example** (Waiting for a run to leave `running`)
 *
 * ```ts
 * const stopped = (store: RunStore["Service"], runId: string) =>
 *   Effect.scoped(Effect.gen(function*() {
 *     const next = yield* RunStore.changes(store, runId) // subscribed before the first read
 *     while ((yield* store.getRun(runId)).status === "running") yield* next
 *   }))
 * ```
 *
 * @since 0.1.0
 */
export const changes = (
  store: RunStore["Service"],
  runId: string,
  intervals: { readonly pollMs?: number | undefined; readonly fallbackMs?: number | undefined } = {}
): Effect.Effect<Effect.Effect<void>, never, Scope.Scope> => {
  const watch = store.watch
  if (watch === undefined) return Effect.succeed(Effect.sleep(Duration.millis(intervals.pollMs ?? 100)))
  const fallback = Effect.sleep(Duration.millis(intervals.fallbackMs ?? 1_000))
  return Effect.map(watch(runId), (next) => Effect.raceFirst(next, fallback))
}

/**
 * The retry policy stores read when they are built (default `defaultRetryPolicy`); tests provide a
 * shorter one.
 *
 * @since 0.1.0
 */
export const RetryPolicy = Context.Reference<Schedule.Schedule<unknown, StoreUnavailable>>("ripple/runtime/RunStore/RetryPolicy", {
  defaultValue: () => defaultRetryPolicy
})

/**
 * Runs one store transaction, running it again on a retryable `StoreUnavailable` under `policy`;
 * other errors, and the last one when the policy gives up, are returned as they are.
 *
 * **Gotchas**
 *
 * `effect` must be a whole transaction: what a failed attempt wrote was rolled back. After
 * `ConnectionLost` the attempt may have committed, so it is sent again only when `replayable`
 * (applying it twice leaves what applying it once does).
 *
 * @since 0.1.0
 */
export const retry = <A, E, R>(
  effect: Effect.Effect<A, E | StoreUnavailable, R>,
  options: { readonly policy: Schedule.Schedule<unknown, StoreUnavailable>; readonly replayable: boolean }
): Effect.Effect<A, E | StoreUnavailable, R> =>
  Effect.retry(effect, {
    schedule: options.policy as Schedule.Schedule<unknown, E | StoreUnavailable>,
    while: (error) =>
      isStoreUnavailable(error) && error.isRetryable && (options.replayable || error.reason._tag !== "ConnectionLost")
  })

/**
 * `acquire` was refused: another owner holds the run's lease until `expiresAt` (or `owner` itself
 * does: an owner never executes a run twice).
 *
 * @since 0.1.0
 */
export class LeaseHeld extends Data.TaggedError("LeaseHeld")<{
  readonly runId: string
  readonly owner: string
  readonly expiresAt: number
}> {
  override get message() {
    return `run ${this.runId} is held by ${this.owner} until ${new Date(this.expiresAt).toISOString()}`
  }
}

/**
 * The lease was taken by another owner, taken again by its owner (a newer generation) or released:
 * the write or renewal was refused, writing nothing. A fenced write fails with it, typed: a write of
 * an execution that stopped (its connection lost with the write in flight) may reach the store after
 * the lease changed hands, and an execution meeting it has stopped — the run is someone else's —
 * without having failed or crashed.
 *
 * @since 0.1.0
 */
export class LeaseLost extends Data.TaggedError("LeaseLost")<{
  readonly runId: string
  readonly owner: string
  readonly generation: number
}> {
  override get message() {
    return `run ${this.runId}: lease of ${this.owner} (generation ${this.generation}) was lost`
  }
}

/**
 * Every error of the store but its lease's (`LeaseHeld` from `acquire`, `LeaseLost` from `renew`
 * and a fenced store's writes).
 *
 * @since 0.1.0
 */
export type RunStoreError = RunNotFound | WorkflowNotFound | IllegalTransition | StoreUnavailable

/**
 * A stored run.
 *
 * @since 0.1.0
 */
export interface Run {
  readonly id: string
  readonly workflowId: string
  /** The frozen workflow version the run executes. */
  readonly version: string
  readonly mode: Mode
  /** The run whose snapshot a run-from or resume plan was made from. */
  readonly sourceRun: string | undefined
  readonly target: string | undefined
  /** The destination of a run to a block: the only observed output its plan kept. */
  readonly to?: string | undefined
  /** The pinned outputs the run writes instead of executing those blocks (`Plan.Pins`). */
  readonly pins?: Plan.Pins | undefined
  readonly trigger: string | undefined
  readonly input: { readonly [key: string]: Json }
  readonly status: RunStatus.Status
  /** The persisted `RunStatus` machine (status and context). */
  readonly machine: RunStatus.Persisted
  readonly diagnostics: Snapshot.Diagnostics
  readonly createdAt: number
  readonly updatedAt: number
  /** A child run (a `child` block's run): the run that started it. */
  readonly parentRun?: string | undefined
  /** A child run: the `child` node instance of the parent run that awaits it. */
  readonly parentNode?: string | undefined
  /** When a pause was requested (`requestPause`) that the run has not settled `paused` for yet. */
  readonly pauseRequestedAt?: number | undefined
  /** When a cancel was requested (`requestCancel`) that the run has not ended for yet. */
  readonly cancelRequestedAt?: number | undefined
  /**
   * What the run's plan pruned, as `createRun` recorded it (`undefined`: nothing). Its `failed`
   * nodes would have failed a full run: a run-from can complete without them.
   */
  readonly pruned?: Snapshot.Pruned | undefined
  /** The run is handed to workers (submitted or requeued to them): only a worker executes it. */
  readonly queued?: boolean | undefined
  /**
   * The run's lease while someone holds it (not released): its owner and expiry, which may have
   * passed (compare it with your `Clock`, as `acquire` does).
   */
  readonly lease?: { readonly owner: string; readonly expiresAt: number } | undefined
}

/**
 * What a `journal` write (and a lease renewal) reports back: whether a pause was requested for the
 * run (the engine parks every node reaching its start from then on), and whether a cancel was
 * requested or the run is cancelled already (the engine starts nothing more and ends the run
 * `cancelled`). A fenced write is acknowledged only while its lease is held: that it returned at
 * all says the lease was still valid when it committed.
 *
 * @since 0.1.0
 */
export interface JournalAck {
  readonly pauseRequested: boolean
  readonly cancelRequested: boolean
}

/**
 * A run's lease: the process executing the run (`owner`), the generation it was granted at (a
 * fencing token: every grant increments it, so a stale holder's writes are refused), and when it
 * expires unless renewed (epoch ms on the clock of whoever took or renewed it).
 *
 * @since 0.1.0
 */
export interface Lease {
  readonly runId: string
  readonly owner: string
  readonly generation: number
  readonly expiresAt: number
}

/**
 * How long a lease is taken or renewed for (`ttlMs`), from `at` (the caller's `Clock`).
 *
 * @since 0.1.0
 */
export interface LeaseTerms {
  readonly ttlMs: number
  readonly at: number
}

/**
 * What `renew` returns: the lease with its new expiry and the run's requests as of the renewal.
 *
 * @since 0.1.0
 */
export interface Renewal {
  readonly lease: Lease
  readonly ack: JournalAck
}

/**
 * The statuses a pause can be requested in: a pending or running run pauses at its next node
 * boundary, a suspended one when it wakes.
 *
 * @since 0.1.0
 */
export const pausable: ReadonlyArray<RunStatus.Status> = ["pending", "running", "suspended"]

/**
 * The statuses that consume a pause request: honoured (`paused`) or moot (the run ended).
 *
 * @since 0.1.0
 */
export const consumesPause: ReadonlyArray<RunStatus.Status> = ["paused", "completed", "failed", "cancelled"]

/**
 * The statuses that consume a cancel request (the execution it was meant to stop ended); a request
 * is recorded only in any other status.
 *
 * @since 0.1.0
 */
export const consumesCancel: ReadonlyArray<RunStatus.Status> = ["completed", "failed", "cancelled"]

/**
 * A child run of a run, as `RunStore.children` lists it.
 *
 * @since 0.1.0
 */
export interface Child {
  readonly runId: string
  /** The parent's `child` node instance that started it. */
  readonly node: string
  readonly status: RunStatus.Status
}

/**
 * What `createRun` needs.
 *
 * @since 0.1.0
 */
export interface NewRun {
  readonly version: string
  readonly mode: Mode
  readonly sourceRun?: string | undefined
  readonly target?: string | undefined
  /** The destination of a run to a block (`Plan.Plan.to`), planned again with it on resume. */
  readonly to?: string | undefined
  /** The pinned outputs of the run (`Plan.Plan.pins`), applied again on resume. */
  readonly pins?: Plan.Pins | undefined
  readonly trigger?: string | undefined
  readonly input: { readonly [key: string]: Json }
  readonly at: number
  /** A child run: its parent run and the parent's node instance that awaits it. */
  readonly parentRun?: string | undefined
  readonly parentNode?: string | undefined
  /** What the plan pruned (`Plan.pruneSummary`): kept with the run and in its snapshot. */
  readonly pruned?: Snapshot.Pruned | undefined
  /**
   * The run is handed to workers from its first row (`Run.queued`): created queued or not at all,
   * never left pending with no worker to claim it. A SQL store also notifies the workers.
   */
  readonly queued?: boolean | undefined
}

/**
 * One journal write for one node instance.
 *
 * - `Started`: an attempt began (status `running`).
 * - `Completed`: the node produced `output` (and `decision` for routers and conditions).
 * - `Failed`: the last attempt failed with `error`.
 * - `Skipped`: no incoming edge was taken.
 * - `Reused`: the node's `record` from run `from` is kept, with the planner's `reasons`; the stored
 *   record's `reusedFrom` names the run that executed it (`record.reusedFrom`, else `from`, else
 *   none when the record came from a snapshot that belongs to no stored run). The
 *   record travels with the entry so any store can write it; a SQL store may instead copy the row
 *   of run `from` server-side.
 *
 * @since 0.1.0
 */
export type JournalEntry =
  | {
    readonly _tag: "Started"
    readonly node: string
    readonly attempt: number
    readonly inputs: Json | undefined
    readonly fingerprints: Snapshot.Fingerprints
    readonly at: number
  }
  | {
    readonly _tag: "Completed"
    readonly node: string
    readonly attempt: number
    readonly inputs: Json
    readonly output: Json
    readonly decision: string | undefined
    readonly fingerprints: Snapshot.Fingerprints
    readonly startedAt: number
    readonly at: number
    /**
     * The output is a pin of the run (`Plan.Pins`), not what a handler returned: every store keeps
     * it as the node's reasons, `["pinned"]` (`reasons`).
     */
    readonly pinned?: true | undefined
  }
  | {
    readonly _tag: "Failed"
    readonly node: string
    readonly attempt: number
    readonly inputs: Json | undefined
    readonly error: Snapshot.NodeError
    readonly fingerprints: Snapshot.Fingerprints
    readonly startedAt: number
    readonly at: number
  }
  | {
    readonly _tag: "Skipped"
    readonly node: string
    readonly fingerprints: Snapshot.Fingerprints
    readonly at: number
  }
  | {
    readonly _tag: "Reused"
    readonly node: string
    readonly from: string | undefined
    readonly record: Snapshot.NodeRecord
    readonly reasons: ReadonlyArray<string>
  }
  | {
    readonly _tag: "Waiting"
    readonly node: string
    readonly inputs: Json
    readonly fingerprints: Snapshot.Fingerprints
    /** A `signal` wait names its signal; a `timer` wait its wake time. */
    readonly wait: { readonly kind: "signal"; readonly signal: string } | { readonly kind: "timer"; readonly wakeAt: number }
    readonly at: number
  }
  | {
    readonly _tag: "Paused"
    readonly node: string
    readonly inputs: Json | undefined
    readonly fingerprints: Snapshot.Fingerprints
    readonly reason: string
    readonly at: number
  }
  | {
    readonly _tag: "Consumed"
    /** The oldest unconsumed delivery of this kind and name is consumed. */
    readonly kind: DeliveryKind
    readonly name: string
  }
  | {
    readonly _tag: "Scope"
    /** The container instance id (`"loop"`, `"inner@3"`). */
    readonly scope: string
    readonly scopeOf: { readonly _tag: "loop"; readonly loop: Snapshot.LoopScope } | { readonly _tag: "parallel"; readonly parallel: Snapshot.ParallelScope }
  }

/**
 * What a delivery carries: a signal for `wait` blocks (by signal name), an approval decision for
 * an `approval` node instance (by node instance id), or an unpause asked for before the run
 * settled `paused` (name `""`, payload `null`; see `requestPause`).
 *
 * @since 0.1.0
 */
export type DeliveryKind = "signal" | "approval" | "unpause"

/**
 * A signal or approval decision kept for a run until the node awaiting it takes it, or an unpause
 * kept until a newer pause request drops it.
 *
 * @since 0.1.0
 */
export interface Delivery {
  readonly kind: DeliveryKind
  readonly name: string
  readonly payload: Json
  readonly at: number
}

/**
 * A dormant run a worker may wake now: a sleeper is due, or a delivery it awaits is kept.
 *
 * @since 0.1.0
 */
export interface Wakeable {
  readonly runId: string
  readonly status: RunStatus.Status
  /** The earliest sleep deadline of the run (`null`: no sleeper). */
  readonly wakeAt: number | null
}

/**
 * One step of a run's compensation log: the node instance whose compensation runs, in log order
 * (the reverse of completion order), `pending` until its compensation finished.
 *
 * @since 0.1.0
 */
export interface CompensationEntry {
  readonly node: string
  readonly status: "pending" | "completed" | "failed"
  /** Why a `failed` compensation failed. */
  readonly error: string | undefined
  /** When the entry was planned (`pending`) or finished. */
  readonly at: number
}

type NodeEntry = Exclude<JournalEntry, { readonly _tag: "Reused" | "Consumed" | "Scope" }>

/**
 * The operations of the persistence port (`RunStore`'s service).
 *
 * @since 0.1.0
 */
export interface Port {
  /** Stores a frozen workflow version (idempotent) and returns its version. */
  readonly saveWorkflow: (workflow: Workflow.Workflow) => Effect.Effect<string, StoreUnavailable>
  /** The frozen workflow of a version, exactly as saved. */
  readonly loadWorkflow: (version: string) => Effect.Effect<Workflow.Workflow, WorkflowNotFound | StoreUnavailable>
  /** Creates a `pending` run of a saved workflow version and returns it with its new id. */
  readonly createRun: (run: NewRun) => Effect.Effect<Run, WorkflowNotFound | StoreUnavailable>
  /** A run as last written (status, persisted machine, diagnostics, ...). */
  readonly getRun: (runId: string) => Effect.Effect<Run, RunNotFound | StoreUnavailable>
  /** Offers a `RunStatus` event; returns the status before and after. */
  readonly transition: (
    runId: string,
    event: RunStatus.Event,
    at: number
  ) => Effect.Effect<{ readonly from: RunStatus.Status; readonly to: RunStatus.Status }, RunNotFound | IllegalTransition | StoreUnavailable | LeaseLost>
  /** Applies a batch of node writes in order, atomically; acknowledges with the run's pause request. */
  readonly journal: (
    runId: string,
    entries: ReadonlyArray<JournalEntry>
  ) => Effect.Effect<JournalAck, RunNotFound | StoreUnavailable | LeaseLost>
  /**
   * Asks a `pausable` run to pause, from any process: whether the request was recorded (`false`,
   * nothing written: the run is paused already or ended). Asking again keeps the first request.
   * A kept `unpause` delivery is dropped with it: the newer request wins.
   */
  readonly requestPause: (runId: string, at: number) => Effect.Effect<boolean, RunNotFound | StoreUnavailable>
  /**
   * Withdraws a pause request the run has not settled `paused` for (a later `resume` of a crashed
   * run wins over it); nothing to withdraw is not an error.
   */
  readonly withdrawPause: (runId: string) => Effect.Effect<void, RunNotFound | StoreUnavailable>
  /**
   * Asks a run to cancel, from any process: whether the request was recorded (`false`, nothing
   * written: the run ended). The process executing the run sees it with its next journal write or
   * lease renewal and starts no block after that; cancelling a run nobody executes is the caller's
   * job (take the lease, then `finish` it with `CANCEL`). Every unfinished run below it (children,
   * theirs, ...) is asked too, in the same write; so is every one below a run when the run settles
   * `cancelled` (`transition`, `finish`), whoever ends it: no child is left running for a cancelled
   * parent when the process that cancelled it stops before it followed the run tree down.
   */
  readonly requestCancel: (runId: string, at: number) => Effect.Effect<boolean, RunNotFound | StoreUnavailable>
  /**
   * Takes the run's lease for `owner`: the one way to become the process that executes a run. It
   * is granted when nobody holds it or the holder's lease expired by `terms.at` (expiry is compared
   * on the callers' clocks), with the next generation; otherwise refused with `LeaseHeld`, naming
   * the holder and its expiry. At most one holder at a time: concurrent acquires grant one lease.
   */
  readonly acquire: (runId: string, owner: string, terms: LeaseTerms) => Effect.Effect<Lease, RunNotFound | LeaseHeld | StoreUnavailable>
  /**
   * Extends a lease still held (same owner and generation, expired or not, as long as nobody took
   * it since) to `terms.at + terms.ttlMs`, and reports the run's requests; `LeaseLost` otherwise.
   */
  readonly renew: (lease: Lease, terms: LeaseTerms) => Effect.Effect<Renewal, RunNotFound | LeaseLost | StoreUnavailable>
  /** Gives a lease up if it is still held (anyone may acquire the run at once); otherwise does nothing. */
  readonly release: (lease: Lease) => Effect.Effect<void>
  /**
   * This store for the holder of `lease`: every write of an execution (`journal`, `transition`,
   * `finish`, `setDiagnostics`, `planCompensations`, `compensated`) also requires that the lease is
   * still held (the same owner and generation), and fails with `LeaseLost` otherwise, writing
   * nothing. Reads and requests are as unfenced; an unfenced store never fails with `LeaseLost`.
   */
  readonly fenced: (lease: Lease) => Port
  /** The planner's reasons for every reused node of a run, and `["pinned"]` for every pinned one. */
  readonly reasons: (runId: string) => Effect.Effect<{ readonly [node: string]: ReadonlyArray<string> }, RunNotFound | StoreUnavailable>
  /** Replaces the run's diagnostics. */
  readonly setDiagnostics: (runId: string, diagnostics: Snapshot.Diagnostics, at: number) => Effect.Effect<void, RunNotFound | StoreUnavailable | LeaseLost>
  /**
   * Offers the event that ends an execution and writes the run's diagnostics with it, in one write:
   * `setDiagnostics` then `transition`, with nothing written if the machine refuses the event (a
   * run is never finalized without its diagnostics, and a refused event leaves them as they were).
   */
  readonly finish: (
    runId: string,
    event: RunStatus.Event,
    diagnostics: Snapshot.Diagnostics,
    at: number
  ) => Effect.Effect<{ readonly from: RunStatus.Status; readonly to: RunStatus.Status }, RunNotFound | IllegalTransition | StoreUnavailable | LeaseLost>
  /** The run's snapshot: frozen workflow, input, status, node records, diagnostics. */
  readonly snapshot: (runId: string) => Effect.Effect<Snapshot.Snapshot, RunNotFound | WorkflowNotFound | StoreUnavailable>
  /**
   * The snapshot of the most recently created run of `workflowId` started by `trigger` (`undefined`:
   * runs that named no trigger) that finished, as `completed` or `failed`.
   */
  readonly latestSnapshot: (
    workflowId: string,
    trigger?: string | undefined
  ) => Effect.Effect<Option.Option<Snapshot.Snapshot>, WorkflowNotFound | StoreUnavailable>
  /**
   * Keeps a delivery for a run unless an unconsumed one of the same kind and name is kept already
   * (then nothing changes): whether it was kept. Checking that a run awaits it is the caller's job.
   */
  readonly deliver: (runId: string, delivery: Delivery) => Effect.Effect<boolean, RunNotFound | StoreUnavailable>
  /** The unconsumed deliveries of a run, oldest first. */
  readonly deliveries: (runId: string) => Effect.Effect<ReadonlyArray<Delivery>, RunNotFound | StoreUnavailable>
  /**
   * Suspended or paused runs that can leave that status now: a sleeper due at `now`, or an
   * awaited signal / approval kept (`RunStatus.suspension` of the stored machine against `deliveries`).
   */
  readonly wakeable: (now: number) => Effect.Effect<ReadonlyArray<Wakeable>, StoreUnavailable>
  /** Appends `nodes` (in this order) to the run's compensation log as `pending`; nodes already logged are left as they are. */
  readonly planCompensations: (runId: string, nodes: ReadonlyArray<string>, at: number) => Effect.Effect<void, RunNotFound | StoreUnavailable | LeaseLost>
  /** Records how a logged compensation ended. */
  readonly compensated: (
    runId: string,
    node: string,
    outcome: { readonly status: "completed" | "failed"; readonly error?: string | undefined },
    at: number
  ) => Effect.Effect<void, RunNotFound | StoreUnavailable | LeaseLost>
  /** The child runs a run started (`child` blocks), oldest first. */
  readonly children: (runId: string) => Effect.Effect<ReadonlyArray<Child>, RunNotFound | StoreUnavailable>
  /** The run's compensation log, in log order (empty: nothing was compensated). */
  readonly compensations: (runId: string) => Effect.Effect<ReadonlyArray<CompensationEntry>, RunNotFound | StoreUnavailable>
  /**
   * Tells the processes that may own the run (workers listening on the store) that a request for
   * it was recorded (a delivery, an unpause, a resume, a cancel), so its owner acts on it now
   * rather than at its next poll. Never fails (a lost notification only delays the owner until its
   * next poll). The memory store has no other process to tell.
   */
  readonly notify: (runId: string) => Effect.Effect<void>
  /**
   * Where the store can tell that another process changed a run (its status, machine or lease
   * holder): subscribes, and returns `next`, which completes at the first such change of `runId`
   * since the subscription or the previous `next`. Absent where the store cannot tell (the memory
   * store): callers poll.
   *
   * **Gotchas**
   *
   * A notification may be lost (a dropped connection): wait on `next` with a poll as fallback.
   */
  readonly watch?: ((runId: string) => Effect.Effect<Effect.Effect<void>, never, Scope.Scope>) | undefined
}

/**
 * The persistence port.
 *
 * @since 0.1.0
 */
export class RunStore extends Context.Service<RunStore, Port>()("ripple/runtime/RunStore") {}

/**
 * The version (content address) of a workflow.
 *
 * @since 0.1.0
 */
export const versionOf = (workflow: Workflow.Workflow): string => {
  let version = versions.get(workflow)
  if (version === undefined) {
    version = Fingerprint.hash(Workflow.encode(workflow))
    versions.set(workflow, version)
  }
  return version
}

// Workflow values are immutable, so a version computed once per value stays right.
const versions = new WeakMap<Workflow.Workflow, string>()

/**
 * The node record a journal entry writes (`Reused` entries are resolved by the store).
 *
 * @since 0.1.0
 */
export const recordOf = (entry: NodeEntry): Snapshot.NodeRecord => {
  // Literal shapes, no spreads: a store calls this once per journaled entry.
  switch (entry._tag) {
    case "Started":
      return entry.inputs === undefined
        ? { status: "running", fingerprints: entry.fingerprints, attempt: entry.attempt, startedAt: entry.at }
        : { status: "running", inputs: entry.inputs, fingerprints: entry.fingerprints, attempt: entry.attempt, startedAt: entry.at }
    case "Completed": {
      const { attempt, decision, fingerprints, inputs, output, startedAt } = entry
      return decision === undefined
        ? { status: "completed", inputs, output, fingerprints, attempt, startedAt, finishedAt: entry.at }
        : { status: "completed", inputs, output, fingerprints, attempt, startedAt, finishedAt: entry.at, decision }
    }
    case "Failed": {
      const { attempt, error, fingerprints, startedAt } = entry
      return entry.inputs === undefined
        ? { status: "failed", fingerprints, attempt, startedAt, finishedAt: entry.at, error }
        : { status: "failed", inputs: entry.inputs, fingerprints, attempt, startedAt, finishedAt: entry.at, error }
    }
    case "Skipped":
      return { status: "skipped", fingerprints: entry.fingerprints, attempt: 0, finishedAt: entry.at }
    case "Waiting":
      return { status: "waiting", inputs: entry.inputs, fingerprints: entry.fingerprints, attempt: 1, startedAt: entry.at }
    case "Paused":
      return entry.inputs === undefined
        ? { status: "paused", fingerprints: entry.fingerprints, attempt: 1, startedAt: entry.at }
        : { status: "paused", inputs: entry.inputs, fingerprints: entry.fingerprints, attempt: 1, startedAt: entry.at }
  }
}

/**
 * The snapshot `waits` / `pauses` item a `Waiting` or `Paused` entry writes.
 *
 * @since 0.1.0
 */
export const dormancyOf = (
  entry: Extract<JournalEntry, { readonly _tag: "Waiting" | "Paused" }>
): { readonly wait: Snapshot.Wait } | { readonly pause: Snapshot.Pause } =>
  entry._tag === "Paused"
    ? { pause: { node: entry.node, reason: entry.reason, since: entry.at } }
    : {
      wait: entry.wait.kind === "signal"
        ? { node: entry.node, kind: "signal", signal: entry.wait.signal, since: entry.at }
        : { node: entry.node, kind: "timer", wakeAt: entry.wait.wakeAt, since: entry.at }
    }

/**
 * Offers a `RunStatus` event to a restored machine: the accepted snapshot, or why not.
 *
 * @since 0.1.0
 */
export const applyEvent = (
  runId: string,
  machine: RunStatus.Snapshot,
  event: RunStatus.Event
): Result.Result<RunStatus.Snapshot, IllegalTransition> => {
  const from = RunStatus.status(machine)
  const next = RunStatus.next(machine, event)
  if (next._tag === "Rejected") {
    return Result.fail(new IllegalTransition({ runId, from, event: event.type, reason: next.reason }))
  }
  if (next.status !== from && !RunStatus.isAllowed(from, next.status)) {
    return Result.fail(new IllegalTransition({ runId, from, event: event.type, reason: "not-allowed" }))
  }
  return Result.succeed(next.snapshot)
}

/**
 * An in-memory store (tests, benchmarks, embedding without durability). Run ids are `run-1`,
 * `run-2`, ... per layer instance.
 *
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<RunStore["Service"]> = Effect.sync(() => RunStore.of(MemoryStore.make()))

/**
 * The in-memory store as a layer (a fresh, empty store per build).
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<RunStore> = Layer.effect(RunStore, makeMemory)
