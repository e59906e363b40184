/**
 * A worker's execution of one claimed run: moved to where it can be executed (woken, or restarted
 * after its worker stopped), planned from its stored snapshot, executed under its lease, and
 * settled: finished, failed with the reason, untouched (lease lost), left running for the next
 * claim (a retryable store error past the store's retries, or the lease ran out unrenewed:
 * `Lease.LeaseExpired`), or left as it is and taken off the workers' queue for `ripple resume` (a
 * store error that is not retryable).
 */
import { Engine, type Handler, Lease, RunStore, Wake } from "@ripple/runtime"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import { CorruptRun } from "./rows.ts"
import type { Claimed } from "./leases.ts"
import { dequeue } from "./queue.ts"
import type { WorkerEnv } from "./workerEnv.ts"

/**
 * The stored run cannot be planned (its workflow or source is invalid for the engine).
 *
 * @since 0.1.0
 */
export class Unplannable extends Data.TaggedError("Unplannable")<{
  readonly runId: string
  readonly reason: string
}> {}

/** What a worker does with a claimed run it holds the lease of. */
export interface Execution {
  /** Executes the run with the fenced store under `control` (from `Lease.hold`). */
  readonly execute: (
    claimed: Claimed,
    fenced: RunStore.RunStore["Service"],
    control: Engine.Control
  ) => Effect.Effect<void, unknown, Handler.Handlers>
  /** Leaves the run consistent whatever ended its execution, and releases the lease where it may. */
  readonly settle: (lease: RunStore.Lease, exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
  /** Releases a lease (a release that fails only leaves it to expire). */
  readonly release: (lease: RunStore.Lease) => Effect.Effect<void>
}

// A store error running again cannot fix (a constraint, a permission, a missing table) would stop
// the run again at every claim, after executing again the blocks whose writes it refused: the run
// is left as it is (never failed: the fault is the store's) and taken off the queue under the
// worker's lease, for an operator to hand back once the fault is fixed. If that write fails too,
// the lease is left to expire rather than released: the run is claimed again no sooner than that.
const stop = (env: WorkerEnv, lease: RunStore.Lease, error: RunStore.StoreUnavailable): Effect.Effect<void> => {
  const runId = lease.runId
  const stopped = `run ${runId}: stopped by a store error running again cannot fix (${error.message})`
  return Effect.matchEffect(dequeue(env, lease), {
    onSuccess: (status) => {
      const here = `\`ripple resume ${runId}\` continues it in its own process`
      const wayOut = status === "running" || status === "pending"
        ? `\`ripple resume ${runId} --queue\` (\`Worker.requeue\`) hands it back to the workers, or ${here}`
        : here
      return Effect.andThen(
        Effect.logError(`${stopped}; left ${status} and off the workers' queue, so no worker takes it again. Once the fault is fixed, ${wayOut}`),
        // A release that fails only leaves the lease to expire.
        env.sqlStore.store.release(lease)
      )
    },
    onFailure: (failure) =>
      Effect.logError(
        failure._tag === "LeaseLost"
          ? `${stopped}; its lease was taken meanwhile: the run is its new holder's`
          : `${stopped}; taking it off the workers' queue failed too (${failure.message}): its lease is left to expire, then a worker claims it again`
      )
  })
}

/** How one worker executes and settles a claimed run. */
export const make = (
  env: WorkerEnv,
  spawnFor: (parentRun: string, store: RunStore.RunStore["Service"]) => Engine.Spawn
): Execution => {
  const { handlers, owner, sqlStore } = env
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
        const run = yield* store.getRun(claimed.id)
        if (run.cancelRequestedAt !== undefined) {
          // Asked to cancel while dormant by a process that went away before it could end the run
          // (or asked of its parent): ended here, nothing starts.
          const changed = yield* store.finish(claimed.id, { type: "CANCEL" }, {
            ...run.diagnostics,
            finalization: "cancelled",
            messages: [...run.diagnostics.messages, `cancelled while ${run.status}, on a recorded request`]
          }, at)
          env.publish({ _tag: "StatusChanged", runId: claimed.id, from: changed.from, to: changed.to, at })
          env.publish({ _tag: "RunFinished", runId: claimed.id, status: changed.to, at })
          return false
        }
        const decision = Wake.decide(run, yield* store.deliveries(claimed.id), at, { owner, worker: true })
        if (decision._tag !== "Wake") {
          // The claim takes a dormant run only for what wakes it (`Wake.event`), and nobody else
          // consumes a delivery or moves a run under this lease: this is a disagreement between the
          // claim and `Wake.event`, and the next claim would take the run again.
          yield* Effect.logWarning(`run ${claimed.id}: claimed ${claimed.status}, but nothing wakes it (${decision._tag})`)
          return false
        }
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
        target: claimed.target ?? undefined,
        to: claimed.destination ?? undefined,
        pins: claimed.pins ?? undefined
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
          publish: env.publish,
          listening: env.listening,
          control,
          spawn: spawnFor(claimed.id, fenced)
        },
        env.engine
      ).pipe(
        // `Worker.make` checked the engine's options when it was built.
        Effect.catchTag("InvalidOption", Effect.die),
        Effect.provideService(RunStore.RunStore, fenced)
      )
    })

  // Whatever ends an execution, the run is left consistent: finished, failed with the reason,
  // (lease lost) untouched by this worker, (a retryable store error past the store's retries) left
  // running for the next claim to resume, or (a store error that is not retryable) stopped for
  // `ripple resume`: a run fails only because of its blocks.
  const settle = (lease: RunStore.Lease, exit: Exit.Exit<unknown, unknown>) => {
    if (Exit.isSuccess(exit)) return release(lease)
    const cause = exit.cause
    const lost = Cause.findError(cause)
    if (Result.isSuccess(lost) && lost.success instanceof RunStore.LeaseLost) return Effect.void
    if (Cause.hasInterruptsOnly(cause)) return release(lease)
    const unavailable = Cause.findError(cause)
    if (Result.isSuccess(unavailable) && RunStore.isStoreUnavailable(unavailable.success) && !unavailable.success.isRetryable) {
      return stop(env, lease, unavailable.success)
    }
    // The store failed past its retries, or the lease ran out unrenewed and the worker fenced
    // itself: released (if the store answers; else it expires) and claimed again like any queued run.
    if (Result.isSuccess(unavailable) && (RunStore.isStoreUnavailable(unavailable.success) || unavailable.success instanceof Lease.LeaseExpired)) {
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

  return { execute, settle, release }
}
