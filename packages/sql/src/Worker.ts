/**
 * Workers: many processes on many machines share one Postgres and execute the runs submitted to it.
 *
 * **Details**
 *
 * - `submit` stores a workflow version and a queued `pending` run, and notifies the workers.
 * - A worker claims queued runs that are unleased or whose lease expired (`SqlRunStore.claim`: the
 *   store's lease grant over the queue, `FOR UPDATE SKIP LOCKED`, so no two workers ever claim the
 *   same run) and executes each as the holder of its lease (`Lease.hold`): owner, expiry, and a
 *   generation incremented on every grant.
 * - Every write of an execution goes through the fenced store, so it commits only while the row
 *   still holds the worker's (owner, generation): a worker that lost its lease (paused too long,
 *   partitioned) cannot write, and starts no block either: before each start the engine checks the
 *   lease's expiry and renews past it. Its execution ends with `LeaseLost` (a typed failure), logged,
 *   and is abandoned.
 * - A heartbeat per execution renews its lease; a run whose lease was taken is interrupted at once.
 * - A claimed run that was already running (its worker died) is resumed from its journal:
 *   `Plan.resume` of its stored snapshot reuses every completed node and re-runs the rest; the run
 *   stays the same run (its machine goes `running → failed → running` in one write, which clears
 *   the branch count and failures of the lost execution), unless it stopped while compensating: then
 *   only its pending compensations run, and it ends failed. A run whose stored rows do not decode is
 *   marked failed with the reason (`CorruptRun`) and the worker goes on with other runs.
 * - A dormant run is claimed when it can wake: a sleeper is due, or a signal or approval it awaits
 *   was delivered (`signal`); the worker offers the waking event and executes its resume plan.
 * - A run another process asks to cancel (`RunStore.requestCancel`) starts no block after the next
 *   journal write or heartbeat acknowledged the request, and ends `cancelled`.
 * - `child` blocks queue their child runs for the workers (any worker executes them, and a crashed
 *   one is resumed like any run); a child that ends delivers its result to its parent and notifies,
 *   so a worker wakes the parent. A child whose worker stopped before delivering is found by a
 *   sweep every few polls.
 * - New work is noticed through LISTEN/NOTIFY on `channel`, with polling as the fallback; a
 *   listener lost with its connection is set up again.
 * - The worker's own statements (claiming, queueing and announcing runs, notifications, the sweep)
 *   go through the store's retry (`RunStore.retry` under `RunStore.RetryPolicy`): a transient fault
 *   (a serialization failure, a lost connection) costs a retry, never the worker or a run; a claim
 *   sent again after a lost connection takes again the runs its first attempt was granted.
 * - A store that stays unavailable past its retries (a retryable `RunStore.StoreUnavailable`)
 *   stops the execution: the run is left `running`, its lease released (or left to expire), and it
 *   is claimed and resumed from its journal like a run whose worker stopped; it is never marked
 *   failed. A store error that is not retryable (a constraint, a permission, a missing table) would
 *   stop it again at every claim, after its blocks ran again: the run is left as it is (`running`)
 *   and taken off the queue by a write fenced by the lease, then released, and an error names the
 *   way out once the fault is fixed: `requeue` (`ripple resume <run> --queue`) hands it back to the
 *   workers, `ripple resume <run>` (`Runs.resume`) continues it in its own process. If that write
 *   fails too, the lease is left to expire, and the run is claimed again then.
 * - Closing the worker's scope stops claiming, lets executions finish for `shutdownGraceMs`, then
 *   releases the leases of the rest (another worker resumes them at once) and stops them; their
 *   writes after the release are fenced out, so the runs are left exactly as journaled.
 *
 * @since 0.1.0
 */
import { Workflow } from "@ripple/core"
import { type Engine, Handler, Options as RuntimeOptions, type RunEvent, Runs, type RunStatus, type RunStore, Wake } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Os from "node:os"
import * as Database from "./Database.ts"
import * as ClaimLoop from "./internal/claimLoop.ts"
import { announce, notify, queue } from "./internal/queue.ts"
import * as Transact from "./internal/transact.ts"
import type { WorkerEnv } from "./internal/workerEnv.ts"
import * as WorkerExecution from "./internal/workerExecution.ts"
import { channel, SqlRunStore } from "./SqlRunStore.ts"

export { LeaseLost } from "./SqlRunStore.ts"

type Json = Workflow.Json

/**
 * The channel submitters notify and workers listen on (`SqlRunStore.channel`).
 *
 * @since 0.1.0
 */
export { channel }

/**
 * The stored run cannot be planned (its workflow or source is invalid for the engine).
 *
 * @since 0.1.0
 */
export const Unplannable = WorkerExecution.Unplannable

/**
 * The stored run cannot be planned (its workflow or source is invalid for the engine).
 *
 * @since 0.1.0
 */
export type Unplannable = WorkerExecution.Unplannable

/**
 * Worker options.
 *
 * @since 0.1.0
 */
export interface Options {
  /** This worker's identity in leases (default: host, pid and a random suffix). */
  readonly owner?: string | undefined
  /** Runs executed at once (default 16). */
  readonly concurrency?: number | undefined
  /** How long a lease lasts without a heartbeat (default 30 s). */
  readonly leaseMs?: number | undefined
  /** How often leases are extended (default a third of `leaseMs`). */
  readonly heartbeatMs?: number | undefined
  /**
   * How long before its lease's expiry an execution whose lease was not renewed stops (the
   * fencing margin, `Lease.Terms`; default a sixth of `leaseMs`); less than `leaseMs - heartbeatMs`.
   */
  readonly marginMs?: number | undefined
  /** How often to look for work when no notification arrives (default 1 s). */
  readonly pollMs?: number | undefined
  /** How long shutdown waits for executions before releasing them (default 5 s). */
  readonly shutdownGraceMs?: number | undefined
  /** Options of each execution. */
  readonly engine?: Engine.Options | undefined
  /** Receives every event of the executions (must not throw or block). */
  readonly publish?: ((event: RunEvent.RunEvent) => void) | undefined
}

/**
 * A running worker.
 *
 * @since 0.1.0
 */
export class Worker extends Context.Service<Worker, {
  readonly owner: string
  /** The runs this worker executes right now. */
  readonly active: Effect.Effect<ReadonlyArray<string>>
  /** Looks for work now instead of at the next poll. */
  readonly kick: Effect.Effect<void>
}>()("ripple/sql/Worker") {}

/**
 * Stores `workflow` and queues a pending run of it for the workers; returns the run id. Checked
 * first, as `Runs.start` does but for the handlers (`Runs.admit`): the workflow (`InvalidWorkflow`),
 * the input (`InvalidInput`: declared keys and types, what no store can hold,
 * `Workflow.maxValueBytes`; stored with its defaults), and `to` and `pins` (`PlanFailed`: an unknown
 * block, a pin no handler output could replace), and `limits` (`Options.InvalidOption`: one that is no cap); a refused run is never written. The workflow is
 * stored as every store reads it back (`Workflow.toStorable`: a `-0` is `0`). Its statements go
 * through the store's retries: a transient fault costs a retry, one that persists fails it with
 * `RunStore.StoreUnavailable`.
 *
 * @since 0.1.0
 */
export const submit = (
  workflow: Workflow.Workflow,
  input: { readonly [key: string]: Json } = {},
  options: {
    readonly trigger?: string | undefined
    readonly to?: string | undefined
    readonly pins?: { readonly [node: string]: Json } | undefined
    /** Caps the workflow is checked against (default `Workflow.defaultLimits`; give the workers' own). */
    readonly limits?: Partial<Workflow.Limits> | undefined
  } = {}
): Effect.Effect<
  string,
  Runs.InvalidWorkflow | Runs.InvalidInput | Runs.PlanFailed | RuntimeOptions.InvalidOption | RunStore.WorkflowNotFound | RunStore.StoreUnavailable,
  SqlRunStore | SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    const { limits, ...run } = options
    // Stored as every store reads it back (a -0 in params or a default is 0), so this process's
    // workers, which read the version from the store's cache, execute what any other one would.
    const admitted = yield* Runs.admit(workflow, input, { to: run.to, pins: run.pins, limits })
    return yield* queue(admitted.workflow, admitted.input, { ...run, pins: admitted.pins })
  })

/**
 * Keeps a signal for a run (idempotent while it is not consumed) and notifies the workers, which
 * wake the run if it awaits it; whether it was kept. A name or payload no store can hold is
 * refused with `Runs.InvalidPayload` (`Runs.storable`), as `Runs.signal` refuses it, and not kept.
 * A notification that fails past the retries is logged, not reported: the signal is kept, and a
 * worker's next poll wakes the run.
 *
 * @since 0.1.0
 */
export const signal = (
  runId: string,
  name: string,
  payload: Json = null
): Effect.Effect<boolean, Runs.InvalidPayload | RunStore.RunNotFound | RunStore.StoreUnavailable, SqlRunStore | Database.Database> =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore
    const at = yield* Clock.currentTimeMillis
    const request = yield* Runs.storable(runId, { name, payload })
    const kept = yield* store.deliver(runId, { kind: "signal", name: request.name, payload: request.payload, at })
    if (kept) yield* Effect.ignoreCause(notify(runId), { log: true, message: `notifying the workers of signal ${JSON.stringify(name)} failed` })
    return kept
  })

/**
 * Hands a run back to the workers: a run paused by a pause request is unpaused, a failed run
 * resumed (its failed nodes retry), a crashed one (running, pending: its process died, or a worker
 * stopped it for a store error that is not retryable) left as it is but for a pause asked of it,
 * which is overruled (as `Runs.resume` does); then it is
 * queued and announced, and a worker continues it from its journal. An unpaused or resumed run is
 * queued by the write that changes its status (`SqlRunStore.requeue`): a store outage leaves it as
 * it was (the call fails), never running with no worker to claim it. Returns the status it was
 * handed over in; any other run (paused at an approval, suspended, finished) is refused with
 * `IllegalTransition` and nothing is written. Retried like `submit`.
 *
 * @since 0.1.0
 */
export const requeue = (
  runId: string
): Effect.Effect<RunStatus.Status, RunStore.RunStoreError, SqlRunStore | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sqlStore = yield* SqlRunStore
    const { store } = sqlStore
    const run = yield* store.getRun(runId)
    const at = yield* Clock.currentTimeMillis
    const pause = Object.values(run.machine.context.dormant).find((reason) => reason._tag === "Pause")
    const event: RunStatus.Event | undefined = run.status === "paused" && pause !== undefined
      ? { type: "UNPAUSE", node: pause.node, payload: null }
      : run.status === "failed"
      ? { type: "RESUME" }
      : run.status === "running" || run.status === "pending"
      ? undefined
      // Refused by the machine (an approval or a signal awaits, or the run ended): nothing written.
      : { type: "RESUME" }
    if (event !== undefined) return (yield* sqlStore.requeue(runId, event, at)).to
    // A pause asked of a crashed run (it may have parked nodes) is overruled: it is handed back to go on.
    if (Wake.pauseAsked(run)) yield* Wake.overrule(store, runId, at)
    yield* announce(runId)
    return run.status
  })

// How long a worker's lease lasts without a heartbeat (`Options.leaseMs`).
const defaultLeaseMs = 30_000

const defaultOwner = () => `${Os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`

/**
 * Starts a worker in the current scope: it claims and executes runs until the scope closes. An
 * option out of range (a concurrency that is not a whole number of at least 1, a duration that is
 * not a finite positive number of milliseconds, a heartbeat no shorter than the lease) fails with
 * `Options.InvalidOption` naming it, before anything is claimed.
 *
 * @since 0.1.0
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  Worker["Service"],
  RuntimeOptions.InvalidOption,
  Scope.Scope | SqlRunStore | SqlClient.SqlClient | Database.Database | Handler.Handlers
> =>
  Effect.gen(function*() {
    yield* RuntimeOptions.check({
      concurrency: [options.concurrency, RuntimeOptions.count],
      leaseMs: [options.leaseMs, RuntimeOptions.duration],
      heartbeatMs: [options.heartbeatMs, RuntimeOptions.duration],
      marginMs: [options.marginMs, RuntimeOptions.grace],
      pollMs: [options.pollMs, RuntimeOptions.duration],
      shutdownGraceMs: [options.shutdownGraceMs, RuntimeOptions.grace],
      ...RuntimeOptions.engine(options.engine ?? {}, "engine.")
    }, { leaseMs: options.leaseMs, heartbeatMs: options.heartbeatMs, marginMs: options.marginMs, defaultLeaseMs })
    const owner = options.owner ?? defaultOwner()
    const { sql, transact } = yield* Transact.make
    const env: WorkerEnv = {
      sqlStore: yield* SqlRunStore,
      sql,
      transact,
      db: yield* Database.Database,
      handlers: yield* Handler.Handlers,
      owner,
      engine: options.engine ?? {},
      publish: options.publish ?? (() => {}),
      listening: options.publish === undefined ? () => false : undefined
    }
    const loop = yield* ClaimLoop.start(env, {
      concurrency: options.concurrency ?? 16,
      leaseMs: options.leaseMs ?? defaultLeaseMs,
      heartbeatMs: options.heartbeatMs,
      marginMs: options.marginMs,
      pollMs: options.pollMs ?? 1_000,
      shutdownGraceMs: options.shutdownGraceMs ?? 5_000
    })
    return Worker.of({ owner, ...loop })
  })

/**
 * A worker as a layer: it runs while the layer is alive.
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Worker, RuntimeOptions.InvalidOption, SqlRunStore | SqlClient.SqlClient | Database.Database | Handler.Handlers> =>
  Layer.effect(Worker, make(options))
