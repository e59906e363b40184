/**
 * Executing runs here: every execution is a fiber owned by the layer, under the run's lease
 * (released once it ends), and stays the run's executor until the run parks with nothing kept to
 * wake it. A stored run (woken, resumed) is executed with `Wake.plan`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Engine from "../../Engine.ts"
import type { Handlers } from "../../Handler.ts"
import * as Lease from "../../Lease.ts"
import type * as Runs from "../../Runs.ts"
import type * as RunStatus from "../../RunStatus.ts"
import { type Lease as StoreLease, RunStore, type RunStoreError } from "../../RunStore.ts"
import * as Wake from "../../Wake.ts"
import * as Children from "./children.ts"
import { PlanFailed } from "./errors.ts"
import { releasing, type State } from "./state.ts"
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
    const forget = () => {
      // A later executor of the same run (woken after this one let go) is not this one's to forget.
      if (executing.get(runId) !== fiber) return
      executing.delete(runId)
      controls.delete(runId)
    }
    const execute = Lease.hold(
      store,
      lease,
      state.leaseTerms,
      (fenced) => executeHere(state, execution, control, forget, lease).pipe(Effect.provideService(RunStore, fenced)),
      control
    )
    const released = Effect.andThen(store.release(lease), Effect.sync(() => {
      if (leased.get(runId)?.fiber === fiber) leased.delete(runId)
    }))
    fiber = yield* Effect.forkIn(
      Effect.ensuring(execute, released).pipe(
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
): Effect.Effect<RunStatus.Status, RunStoreError, RunStore | Handlers> =>
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
