/**
 * Executing runs here: every execution is a fiber owned by the layer, under the run's lease
 * (released once it ends), and stays the run's executor until the run parks with nothing kept to
 * wake it. A stored run (woken, resumed) is executed with `Wake.plan`.
 *
 * **Details**
 *
 * An execution that stopped because of the store, not of its blocks, left the run `running`: its
 * holder fenced itself (`Lease.LeaseExpired`: the lease ran out unrenewed, the store unavailable or
 * too slow), or a write or renewal failed with a retryable `StoreUnavailable` past the store's
 * retries before the lease's deadline. The same fiber, still the run's executor here, takes the
 * lease again as soon as the store answers (it lets go of the stopped one first, or waits for it
 * to expire), and executes the run from its journal (`Wake.plan`) under the new generation, so
 * that a write of the stopped execution that reaches the store late is refused. If another process
 * holds the lease by then and renews it, the run is its own: the execution here ends with the
 * run's stored status. A run that is no longer `running` (another process took it over and ended
 * it) is let go. An execution refused a write or renewal with `LeaseLost` (another process took
 * the lease: its clock ran ahead, or this one stalled past the lease) ends the same way, with the
 * run's stored status, leaving the run to its new holder. A store error that is not retryable (a
 * constraint, a bad value) would only fail again: the execution ends with it, the run left
 * `running` for `resume`.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Engine from "../../Engine.ts"
import type { Handlers } from "../../Handler.ts"
import * as Lease from "../../Lease.ts"
import type * as Runs from "../../Runs.ts"
import type * as RunStatus from "../../RunStatus.ts"
import { isStoreUnavailable, type Lease as StoreLease, type LeaseLost, RunStore, type RunStoreError, type StoreUnavailable } from "../../RunStore.ts"
import * as Wake from "../../Wake.ts"
import * as Children from "./children.ts"
import { PlanFailed } from "./errors.ts"
import { release, releasing, type State } from "./state.ts"
import * as Waking from "./wake.ts"

/**
 * What an execution needs but its control (the engine's view of pause and cancel requests).
 *
 * @since 0.1.0
 */
export type Execution = Omit<Engine.Execution, "control">

/**
 * Forks the execution of a run under `lease`, in the layer's scope. Closing the layer interrupts
 * executions without cancelling them: their runs stay resumable. A child run that ends wakes its
 * parent.
 *
 * @since 0.1.0
 */
export const fork = (state: State, execution: Execution, lease: StoreLease) =>
  Effect.gen(function*() {
    const { controls, executing, leased, store } = state
    const control: Engine.Control = { pauseRequested: false, cancelOnInterrupt: false }
    const runId = execution.runId
    let fiber: Fiber.Fiber<RunStatus.Status, RunStoreError> | undefined
    // The lease held now: a new generation each time the execution is taken up again after a fence.
    let held = lease
    const forget = () => {
      // A later executor of the same run (woken after this one let go) is not this one's to forget.
      if (executing.get(runId) !== fiber) return
      executing.delete(runId)
      controls.delete(runId)
    }
    const execute = (execution: Execution, lease: StoreLease): Effect.Effect<RunStatus.Status, RunStoreError, Handlers> =>
      Lease.hold(
        store,
        lease,
        state.leaseTerms,
        (fenced) => executeHere(state, execution, control, forget, lease).pipe(Effect.provideService(RunStore, fenced)),
        control
      ).pipe(
        Effect.catchIf(stoppedByTheStore, (stopped) =>
          Effect.flatMap(retaken(state, stopped, lease), (again) => {
            held = again.lease
            if (again._tag === "Gone") {
              forget()
              return Effect.succeed(again.status)
            }
            return execute(again.execution, again.lease)
          })),
        // The lease changed hands (`Lease.hold` logged it): the run is another process's now.
        Effect.catchTag("LeaseLost", () => Effect.andThen(Effect.sync(forget), Effect.map(store.getRun(runId), (run) => run.status)))
      )
    const released = Effect.suspend(() => release(state, held)).pipe(Effect.andThen(Effect.sync(() => {
      if (leased.get(runId)?.fiber === fiber) leased.delete(runId)
    })))
    fiber = yield* Effect.forkIn(
      Effect.ensuring(execute(execution, lease), released).pipe(
        Effect.provideContext(state.context),
        Effect.ensuring(Effect.sync(forget)),
        // Whatever ended the execution: a child its owner cancelled on a recorded request ends in
        // an interruption, and its parent, awaiting it, is told all the same.
        Effect.onExit(() => Effect.forkIn(Effect.ignore(Effect.suspend(() => Children.notifyParent(state, runId))), state.scope))
      ),
      state.scope
    )
    executing.set(runId, fiber)
    leased.set(runId, { fiber, released })
    controls.set(runId, control)
    state.announcing.add(runId)
  })

/** Whether an execution ended because of the store, to be taken up again once it answers (see the module documentation). */
const stoppedByTheStore = (error: RunStoreError | LeaseLost | Lease.LeaseExpired): error is Lease.LeaseExpired | StoreUnavailable =>
  error instanceof Lease.LeaseExpired || (isStoreUnavailable(error) && error.isRetryable)

/**
 * What an execution that stopped because of the store goes on with: the run under a new lease, or
 * nothing (`Gone`); `lease` is the last one taken, which the execution releases when it ends.
 */
type Retaken =
  | { readonly _tag: "Again"; readonly lease: StoreLease; readonly execution: Execution }
  | { readonly _tag: "Gone"; readonly lease: StoreLease; readonly status: RunStatus.Status }

// Takes again the lease of a run whose execution here stopped under `stopped` (see the module
// documentation), trying every heartbeat while the store is unavailable.
const retaken = (state: State, stopped: Lease.LeaseExpired | StoreUnavailable, lease: StoreLease): Effect.Effect<Retaken, RunStoreError> => {
  const { store } = state
  const runId = lease.runId
  let last: StoreLease = stopped._tag === "LeaseExpired" ? stopped : lease
  const attempt = Effect.gen(function*() {
    // Still this layer's, unless another process took it: let go of at once rather than waited out.
    yield* release(state, last)
    const taken = yield* Effect.result(Lease.take(store, runId, state.owner, state.leaseTerms.ttlMs, { waitExpiry: true }))
    if (Result.isFailure(taken)) {
      if (taken.failure._tag !== "LeaseHeld") return yield* Effect.fail(taken.failure)
      return { _tag: "Gone", lease: last, status: (yield* store.getRun(runId)).status } as const
    }
    last = taken.success
    state.letGo.delete(runId)
    const run = yield* store.getRun(runId)
    if (run.status !== "running" && run.status !== "pending") return { _tag: "Gone", lease: last, status: run.status } as const
    const stored = yield* storedExecution(state, runId)
    if (Result.isFailure(stored)) {
      yield* Effect.logWarning(`run ${runId}: taken up again after the store stopped its execution, but cannot be planned: ${stored.failure._tag}`)
      return { _tag: "Gone", lease: last, status: run.status } as const
    }
    yield* Effect.logInfo(`run ${runId}: lease taken again (generation ${last.generation}); executing it from its journal`)
    return { _tag: "Again", lease: last, execution: stored.success } as const
  })
  // A store that failed past its retries is given a heartbeat before the run is executed again:
  // one that fails the same write each time (a fault that outlasts the retries but not the
  // outage) would otherwise have the run executed again as fast as the store answers.
  const retried = Effect.retry(
    Effect.tapError(attempt, (error) => isStoreUnavailable(error) ? Effect.logWarning(`run ${runId}: taking its lease again failed; trying again`, error) : Effect.void),
    { schedule: Schedule.spaced(Duration.millis(state.leaseTerms.heartbeatMs)), while: isStoreUnavailable }
  )
  return stopped._tag === "LeaseExpired" ? retried : Effect.andThen(Effect.sleep(state.leaseTerms.heartbeatMs), retried)
}

// Executes the run, and again each time it parks on something already kept for it (a delivery
// recorded while it was running, a due sleeper): the executor takes it itself. It lets go of the
// run (`forget`) under the settling lock, in the same step that found nothing to take, so a
// delivery recorded after that step finds no executor here and wakes the run (`Waking.settle`): no
// wake-up is lost between the two.
const executeHere = (
  state: State,
  first: Execution,
  control: Engine.Control,
  forget: () => void,
  lease: StoreLease
): Effect.Effect<RunStatus.Status, RunStoreError | LeaseLost, RunStore | Handlers> =>
  Effect.gen(function*() {
    const runId = first.runId
    let execution = first
    for (;;) {
      // `Runs.layer` checked the engine's options when it was built.
      const status = yield* Engine.execute({ ...execution, control, spawn: Children.spawnFor(state, runId) }, state.engineOptions).pipe(
        Effect.catchTag("InvalidOption", Effect.die)
      )
      const next = yield* state.settling.withPermit(Effect.gen(function*() {
        // Only a dormant run wakes: one the execution left otherwise is let go without reading it back.
        const woken = Wake.canWake(status) ? yield* Waking.wakeLocked(state, yield* state.store.getRun(runId), lease) : undefined
        if (woken === undefined) {
          forget()
          return undefined
        }
        // Unpaused (asked for before it settled): the pause it parked for is over.
        if (woken.event.type === "UNPAUSE") control.pauseRequested = false
        state.announcing.add(runId)
        return yield* storedExecution(state, runId)
      }))
      if (next === undefined) return status
      if (Result.isFailure(next)) {
        // Woken (the event offered) but not plannable: left running, as a crashed run, for `resume` to report.
        forget()
        yield* Effect.logWarning(`run ${runId}: woken but cannot be planned: ${next.failure._tag}`)
        return "running"
      }
      execution = next.success
    }
  })

// What executes a stored run now (`Wake.plan`), with the run's input.
const storedExecution = (state: State, runId: string) =>
  Effect.gen(function*() {
    const run = yield* state.store.getRun(runId)
    const stored = yield* Wake.plan(state.store, run)
    return Result.map(stored, ({ mode, plan, source, sourceRun }): Execution => ({
      runId,
      mode,
      plan,
      input: run.input,
      sourceRun,
      source,
      publish: state.publish,
      listening: state.listening
    }))
  })

/**
 * Executes a stored run under `lease` (taken before its waking event was written); the lease is
 * released if the run cannot be planned.
 *
 * @since 0.1.0
 */
export const resumeRun = (state: State, runId: string, lease: StoreLease): Effect.Effect<Runs.Started, RunStoreError | PlanFailed> =>
  releasing(
    state,
    lease,
    Effect.gen(function*() {
      const stored = yield* storedExecution(state, runId)
      if (Result.isFailure(stored)) {
        const workflowId = (yield* state.store.getRun(runId)).workflowId
        return yield* Effect.fail(new PlanFailed({ workflowId, cause: stored.failure }))
      }
      yield* fork(state, stored.success, lease)
      return { runId, mode: stored.success.mode, plan: stored.success.plan }
    })
  )
