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
 *   lease's expiry and renews past it. Its execution ends with `LeaseLost`, logged, and is abandoned.
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
 * - New work is noticed through LISTEN/NOTIFY on `channel`, with polling as the fallback.
 * - A store that stays unavailable past its retries (`RunStore.StoreUnavailable`) stops the
 *   execution: the run is left `running`, its lease released (or left to expire), and it is
 *   claimed and resumed from its journal like a run whose worker stopped; it is never marked failed.
 * - Closing the worker's scope stops claiming, lets executions finish for `shutdownGraceMs`, then
 *   releases the leases of the rest (another worker resumes them at once) and stops them; their
 *   writes after the release are fenced out, so the runs are left exactly as journaled.
 *
 * @since 0.1.0
 */
import { Workflow } from "@ripple/core"
import { Child, Engine, Handler, Lease, type RunEvent, Runs, RunStatus, RunStore, Wake } from "@ripple/runtime"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import * as Os from "node:os"
import * as Database from "./Database.ts"
import { storeUnavailable } from "./internal/errors.ts"
import { channel, type Claimed, CorruptRun, LeaseLost, SqlRunStore } from "./SqlRunStore.ts"

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
export class Unplannable extends Data.TaggedError("Unplannable")<{
  readonly runId: string
  readonly reason: string
}> {}

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
 * Stores `workflow` and queues a pending run of it for the workers; returns the run id.
 *
 * @since 0.1.0
 */
export const submit = (
  workflow: Workflow.Workflow,
  input: { readonly [key: string]: Json } = {},
  options: { readonly trigger?: string | undefined } = {}
): Effect.Effect<string, RunStore.WorkflowNotFound | RunStore.StoreUnavailable | SqlError, SqlRunStore | SqlClient.SqlClient> =>
  queue(workflow, input, options)

// Stores a queued pending run (a child run when `parentRun` is given) and notifies the workers.
const queue = (
  workflow: Workflow.Workflow,
  input: { readonly [key: string]: Json },
  options: { readonly trigger?: string | undefined; readonly parentRun?: string | undefined; readonly parentNode?: string | undefined }
): Effect.Effect<string, RunStore.WorkflowNotFound | RunStore.StoreUnavailable | SqlError, SqlRunStore | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore
    const version = yield* store.saveWorkflow(workflow)
    const at = yield* Clock.currentTimeMillis
    const run = yield* store.createRun({ version, mode: "full", input, at, ...options })
    yield* announce(run.id)
    return run.id
  })

// Marks a run queued for the workers and notifies them, in one statement (the notification goes
// out when it commits).
const announce = (runId: string): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`WITH queued AS (UPDATE ripple_runs SET queued = TRUE WHERE id = ${runId})
      SELECT pg_notify(${channel}, ${runId})`
  })

/**
 * Keeps a signal for a run (idempotent while it is not consumed) and notifies the workers, which
 * wake the run if it awaits it; whether it was kept.
 *
 * @since 0.1.0
 */
export const signal = (
  runId: string,
  name: string,
  payload: Json = null
): Effect.Effect<boolean, RunStore.RunNotFound | RunStore.StoreUnavailable | SqlError, SqlRunStore | Database.Database> =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore
    const db = yield* Database.Database
    const at = yield* Clock.currentTimeMillis
    const kept = yield* store.deliver(runId, { kind: "signal", name, payload, at })
    if (kept) yield* db.notify(channel, runId)
    return kept
  })

/**
 * Hands a run back to the workers: a run paused by a pause request is unpaused, a failed run
 * resumed (its failed nodes retry), a crashed one (running, pending) left as it is; then it is
 * queued and announced, and a worker continues it from its journal. Returns the status it was
 * handed over in; any other run (paused at an approval, suspended, finished) is refused with
 * `IllegalTransition` and nothing is written.
 *
 * @since 0.1.0
 */
export const requeue = (
  runId: string
): Effect.Effect<RunStatus.Status, RunStore.RunStoreError | SqlError, SqlRunStore | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore
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
    const status = event === undefined ? run.status : (yield* store.transition(runId, event, at)).to
    yield* announce(runId)
    return status
  })

const defaultOwner = () => `${Os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`

/**
 * Starts a worker in the current scope: it claims and executes runs until the scope closes.
 *
 * @since 0.1.0
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  Worker["Service"],
  SqlError,
  Scope.Scope | SqlRunStore | SqlClient.SqlClient | Database.Database | Handler.Handlers
> =>
  Effect.gen(function*() {
    const sqlStore = yield* SqlRunStore
    const sql = yield* SqlClient.SqlClient
    const db = yield* Database.Database
    const handlers = yield* Handler.Handlers
    const owner = options.owner ?? defaultOwner()
    const concurrency = Math.max(1, options.concurrency ?? 16)
    const leaseMs = options.leaseMs ?? 30_000
    const leaseTerms = Lease.terms({ ttlMs: leaseMs, heartbeatMs: options.heartbeatMs })
    const pollMs = options.pollMs ?? 1_000
    const graceMs = options.shutdownGraceMs ?? 5_000
    const publish = options.publish ?? (() => {})
    const executing = new Map<string, { readonly lease: RunStore.Lease; readonly fiber: Fiber.Fiber<void> }>()
    let stopping = false
    let wake: (() => void) | undefined
    const kick = () => {
      const resume = wake
      wake = undefined
      resume?.()
    }

    // A `child` block's run: queued for the workers (any of them executes it) and linked to its
    // parent; the child a node instance started before, and that can still succeed, is reused.
    const spawnFor = (parentRun: string, store: RunStore.RunStore["Service"]): Engine.Spawn =>
      Child.spawner(store, parentRun, (child, input, node) =>
        Effect.gen(function*() {
          const unsupported = Engine.check(child, handlers)
          if (unsupported !== undefined) return Result.fail(`child run not started: ${unsupported.message}`)
          const inputs = Workflow.inputsFor(child, input)
          if (Result.isFailure(inputs)) {
            return Result.fail(`child run not started: ${new Runs.InvalidInput({ workflowId: child.id, cause: inputs.failure }).message}`)
          }
          const queued = queue(child, inputs.success, { parentRun, parentNode: node }).pipe(
            Effect.catchTag("SqlError", (error) => Effect.fail(storeUnavailable(error, "announce"))),
            // The child's version was saved just before: it cannot be missing.
            Effect.catchTag("WorkflowNotFound", Effect.die)
          )
          return Result.succeed(yield* queued)
        }).pipe(Effect.provideService(SqlRunStore, sqlStore), Effect.provideService(SqlClient.SqlClient, sql)))

    // A child run that ended tells its parent, and the workers, one of which wakes the parent.
    const notifyParent = (runId: string) =>
      Effect.ignore(Effect.flatMap(
        Child.deliverToParent(sqlStore.store, runId),
        (parent) => parent === undefined ? Effect.void : db.notify(channel, parent)
      ))

    // Children that ended without their parent hearing of it: their worker stopped between the
    // child's last write and the delivery. Rare, so looked for every few polls.
    const unheard = Effect.gen(function*() {
      const prefix = Engine.childSignal("")
      const rows = yield* sql<{ readonly id: string }>`SELECT c.id FROM ripple_runs p
        JOIN ripple_runs c ON c.parent_run = p.id
        WHERE p.status = 'suspended' AND c.status IN ('completed', 'failed', 'cancelled')
          AND ${prefix} || c.id = ANY (p.awaited_signals)
          AND NOT EXISTS (SELECT 1 FROM ripple_deliveries d
            WHERE d.run_id = p.id AND d.kind = 'signal' AND d.name = ${prefix} || c.id)`
      yield* Effect.forEach(rows, (row) => notifyParent(row.id), { discard: true })
    })

    // A release that fails only leaves the lease to expire.
    const release = (lease: RunStore.Lease) => sqlStore.store.release(lease)

    const failWith = (lease: RunStore.Lease, reason: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.ignore(sqlStore.markFailed(lease, reason, at)))

    // Moves a claimed run to where an execution can take it: a pending run as it is; a run whose
    // worker stopped restarts its branches (FAIL then RESUME: the lost execution's branch count and
    // failures go, completed nodes stay); a dormant run is woken. `false`: nothing to execute.
    const prepare = (claimed: Claimed, lease: RunStore.Lease, store: RunStore.RunStore["Service"]) =>
      Effect.gen(function*() {
        const at = yield* Clock.currentTimeMillis
        if (claimed.status === "running") {
          // Stopped while compensating: only the compensation goes on, so the failures stay.
          const log = yield* store.compensations(claimed.id)
          if (log.length > 0 && Engine.compensating(log, yield* store.getRun(claimed.id))) return true
          yield* sqlStore.transitionAll(lease, [
            { type: "FAIL", error: "the worker executing this run stopped; resuming" },
            { type: "RESUME" }
          ], at)
          return true
        }
        if (claimed.status === "suspended" || claimed.status === "paused") {
          const decision = Wake.decide(yield* store.getRun(claimed.id), yield* store.deliveries(claimed.id), at, { owner, worker: true })
          if (decision._tag !== "Wake") return false
          yield* store.transition(claimed.id, decision.event, at)
        }
        return true
      })

    const plan = (claimed: Claimed, store: RunStore.RunStore["Service"]) =>
      Effect.gen(function*() {
        const snapshot = claimed.status === "pending" ? undefined : yield* sqlStore.checkedSnapshot(claimed.id)
        const planned = yield* Wake.plan(store, {
          id: claimed.id,
          status: claimed.status,
          version: claimed.version,
          mode: claimed.mode,
          sourceRun: claimed.source_run ?? undefined,
          target: claimed.target ?? undefined
        }, snapshot)
        if (Result.isFailure(planned)) return yield* Effect.fail(new Unplannable({ runId: claimed.id, reason: planned.failure.message }))
        return planned.success
      })

    const execute = (claimed: Claimed, fenced: RunStore.RunStore["Service"], control: Engine.Control) =>
      Effect.gen(function*() {
        const lease = claimed.lease
        // Checked before anything is written: a corrupt run is failed, not half-woken.
        if (claimed.status !== "pending") yield* sqlStore.checkedSnapshot(claimed.id)
        if (!(yield* prepare(claimed, lease, fenced))) return
        const prepared = yield* plan(claimed, fenced)
        const unsupported = Engine.check(prepared.plan.workflow, handlers)
        if (unsupported !== undefined) return yield* Effect.fail(new Unplannable({ runId: claimed.id, reason: unsupported.message }))
        yield* Engine.execute(
          {
            runId: claimed.id,
            mode: prepared.mode,
            plan: prepared.plan,
            input: claimed.input,
            sourceRun: prepared.sourceRun,
            source: prepared.source,
            publish,
            control,
            spawn: spawnFor(claimed.id, fenced)
          },
          options.engine ?? {}
        ).pipe(Effect.provideService(RunStore.RunStore, fenced))
      })

    // Whatever ends an execution, the run is left consistent: finished, failed with the reason,
    // (lease lost) untouched by this worker, or (the store failed past its retries) left running
    // for the next claim to resume: a run fails only because of its blocks.
    const settle = (lease: RunStore.Lease, exit: Exit.Exit<unknown, unknown>) => {
      if (Exit.isSuccess(exit)) return release(lease)
      const cause = exit.cause
      const lost = Cause.findDefect(cause)
      if (Result.isSuccess(lost) && lost.success instanceof LeaseLost) return Effect.void
      if (Cause.hasInterruptsOnly(cause)) return release(lease)
      const unavailable = Cause.findError(cause)
      if (Result.isSuccess(unavailable) && RunStore.isStoreUnavailable(unavailable.success)) {
        return Effect.andThen(
          Effect.logWarning(`run ${lease.runId}: stopped, left running to be resumed: ${unavailable.success.message}`),
          release(lease)
        )
      }
      const error = Cause.squash(cause)
      const reason = error instanceof CorruptRun || error instanceof Unplannable
        ? error.message
        : `worker ${owner} failed executing the run: ${error instanceof Error ? error.message : String(error)}`
      return Effect.andThen(failWith(lease, reason), release(lease))
    }

    const start = (claimed: Claimed) =>
      Effect.gen(function*() {
        const lease = claimed.lease
        sqlStore.prime(claimed.id, claimed.revision, claimed.machine)
        const fiber = yield* Lease.hold(sqlStore.store, lease, leaseTerms, (fenced, control) => execute(claimed, fenced, control)).pipe(
          // Only a child run has a parent to tell (one read fewer per run for the others).
          Effect.onExit((exit) => Effect.andThen(settle(lease, exit), claimed.parent_run === null ? Effect.void : notifyParent(claimed.id))),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => {
            executing.delete(claimed.id)
            kick()
          })),
          Effect.forkDetach
        )
        executing.set(claimed.id, { lease, fiber })
      })

    const sweepMs = pollMs * 5
    let swept = 0
    const loop = Effect.gen(function*() {
      while (!stopping) {
        if (Date.now() - swept >= sweepMs) {
          swept = Date.now()
          yield* Effect.catchCause(unheard, (cause) => Effect.logWarning("looking for unheard child runs failed", cause))
        }
        const free = concurrency - executing.size
        if (free > 0) {
          const at = yield* Clock.currentTimeMillis
          const claimed = yield* Effect.catchCause(sqlStore.claim(owner, { ttlMs: leaseMs, at }, free), (cause) =>
            Effect.as(Effect.logWarning("claiming runs failed", cause), [] as ReadonlyArray<Claimed>))
          for (const run of claimed) yield* start(run)
          // A full batch suggests more work is waiting.
          if (claimed.length === free) continue
        }
        yield* Effect.raceFirst(
          Effect.sleep(pollMs),
          Effect.callback<void>((resume) => {
            wake = () => resume(Effect.void)
          })
        )
      }
    })

    const notifications = yield* Effect.catchCause(
      db.listen(channel),
      (cause) => Effect.as(Effect.logWarning("LISTEN failed; polling only", cause), Stream.empty)
    )
    yield* Stream.runForEach(notifications, () => Effect.sync(kick)).pipe(Effect.ignore, Effect.forkScoped)
    yield* Effect.forkScoped(loop)

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        stopping = true
        kick()
        const fibers = () => [...executing.values()].map((e) => e.fiber)
        yield* Effect.timeoutOrElse(Fiber.awaitAll(fibers()), {
          duration: graceMs,
          orElse: () => Effect.void
        })
        // Released first, then stopped: whatever the interrupted executions still try to write is fenced out.
        const left = [...executing.values()]
        yield* Effect.forEach(left, (e) => release(e.lease), { discard: true })
        yield* Fiber.interruptAll(left.map((e) => e.fiber))
        if (left.length > 0) yield* Effect.ignore(db.notify(channel, "released"))
      })
    )

    return Worker.of({
      owner,
      active: Effect.sync(() => [...executing.keys()]),
      kick: Effect.sync(kick)
    })
  })

/**
 * A worker as a layer: it runs while the layer is alive.
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Worker, SqlError, SqlRunStore | SqlClient.SqlClient | Database.Database | Handler.Handlers> =>
  Layer.effect(Worker, make(options))
