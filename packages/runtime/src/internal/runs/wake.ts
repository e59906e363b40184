/**
 * Waking dormant runs: a run that can go on now (an awaited delivery is kept, a sleeper is due) is
 * woken and executed here under its lease, unless another process owns it (then it is told); a
 * sleeper not due yet gets a timer on the effect `Clock`. Wakers take the layer's settling lock one
 * at a time: two of them must not both offer the event that wakes the same run. A dormant run that
 * nothing wakes but that was asked to cancel, and that no other process owns, is cancelled.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as RunStatus from "../../RunStatus.ts"
import { isStoreUnavailable, type Lease as StoreLease, type Run, type RunStoreError } from "../../RunStore.ts"
import * as Wake from "../../Wake.ts"
import * as Cancel from "./cancel.ts"
import type { PlanFailed } from "./errors.ts"
import * as Execute from "./execute.ts"
import { ownOrOwner, releasing, type State, type Taken } from "./state.ts"

/**
 * Wakes the run if it can go on now and no execution here holds it; returns its status after. A
 * dormant run nothing wakes now, that nobody else owns (no live lease, not queued for workers),
 * whose cancel was recorded is cancelled (`Cancel.cancel`): its canceller went away before it
 * ended the run (or the request came from its parent's), and the run would otherwise wait, for
 * ever perhaps, for something to wake it. (A run something wakes ends cancelled anyway: its
 * execution sees the request before it starts a block.)
 *
 * @since 0.1.0
 */
export const settle = (state: State, runId: string): Effect.Effect<RunStatus.Status, RunStoreError | PlanFailed> =>
  Effect.flatMap(
    state.settling.withPermit(Effect.gen(function*() {
      const run = yield* state.store.getRun(runId)
      if (state.executing.has(runId)) return { status: run.status, cancel: false }
      const woken = yield* wakeLocked(state, run, undefined)
      if (woken === undefined) return { status: run.status, cancel: yield* orphanedCancel(state, run) }
      yield* Execute.resumeRun(state, runId, woken.lease)
      return { status: woken.status, cancel: false }
    })),
    // Outside the settling lock: cancelling tells a parent, which is settled in turn.
    ({ cancel, status }) => cancel ? Effect.map(Cancel.cancel(state, runId), (cancelled) => cancelled.status) : Effect.succeed(status)
  )

// A dormant run whose recorded cancel nobody else will act on: no other process holds its lease,
// and no worker queue holds it (a worker claims a queued one to end it).
const orphanedCancel = (state: State, run: Run) =>
  Effect.map(
    Clock.currentTimeMillis,
    (at) => Wake.canWake(run.status) && run.cancelRequestedAt !== undefined && Wake.ownerOf(run, state.self, at) === undefined
  )

// How often a sleeper's timer tries again while the store stays unavailable past its own retries.
const refireMs = 1_000

// One try of a sleeper's timer, its store outage logged.
const attempt = <A>(runId: string, effect: Effect.Effect<A, RunStoreError | PlanFailed>) =>
  Effect.tapError(
    effect,
    (error) => isStoreUnavailable(error) ? Effect.logWarning(`run ${runId}: waking it failed; trying again`, error) : Effect.void
  )

// A sleeper's timer firing: wakes the run, trying again every `refireMs` while the store stays
// unavailable (a timer given up on would leave the run suspended for good); any other error ends it.
const fire = (state: State, runId: string): Effect.Effect<void> =>
  Effect.ignore(Effect.catchIf(
    attempt(runId, Effect.suspend(() => settle(state, runId))),
    isStoreUnavailable,
    () => Effect.retry(Effect.delay(attempt(runId, rewake(state, runId)), Duration.millis(refireMs)), { while: isStoreUnavailable })
  ))

// The timer's try after a wake that failed. That wake may have written its event all the same (the
// connection lost after the commit, and each retry's too), leaving the run `running` with nobody
// executing it: executed here then, as the wake would have, unless another process owns it.
const rewake = (state: State, runId: string): Effect.Effect<RunStatus.Status, RunStoreError | PlanFailed> =>
  Effect.flatMap(settle(state, runId), (status) =>
    status !== "running" ? Effect.succeed(status) : state.settling.withPermit(Effect.gen(function*() {
      const run = yield* state.store.getRun(runId)
      if (run.status !== "running" || state.executing.has(runId)) return run.status
      if (Wake.ownerOf(run, state.self, yield* Clock.currentTimeMillis) !== undefined) return run.status
      const taken = yield* ownOrOwner(state, runId)
      if (taken._tag === "Owned") yield* Execute.resumeRun(state, runId, taken.lease)
      return run.status
    })))

/**
 * Under the settling lock, for a run no execution here holds (or the one holding `held`): offers
 * the event that wakes it now, under its lease (taken first unless `held`), and returns the status
 * it moved to with the lease to execute it under and the event; otherwise tells its owner (one that took the
 * lease first too, or took it before the event was written), or arms a timer for a sleeper, and
 * returns `undefined`.
 *
 * @since 0.1.0
 */
export const wakeLocked = (
  state: State,
  run: Run,
  held: StoreLease | undefined
): Effect.Effect<
  { readonly status: RunStatus.Status; readonly lease: StoreLease; readonly event: RunStatus.Event } | undefined,
  RunStoreError
> =>
  Effect.gen(function*() {
    const { store } = state
    const runId = run.id
    const at = yield* Clock.currentTimeMillis
    const decision = Wake.decide(run, yield* store.deliveries(runId), at, state.self)
    switch (decision._tag) {
      case "Stay":
        return undefined
      case "Owner":
        if (decision.event !== undefined) yield* store.notify(runId)
        return undefined
      case "Wake": {
        const taken: Taken = held === undefined ? yield* ownOrOwner(state, runId) : { _tag: "Owned", lease: held }
        if (taken._tag === "Held") {
          yield* store.notify(runId)
          return undefined
        }
        const transition = store.fenced(taken.lease).transition(runId, decision.event, at)
        // Refused for the lease (another process took it since: this one stalled past it): the
        // run is the new holder's, told like an owner that held it first.
        const changed = yield* Effect.catchTag(
          held === undefined ? releasing(state, taken.lease, transition) : transition,
          "LeaseLost",
          () => Effect.as(store.notify(runId), undefined)
        )
        if (changed === undefined) return undefined
        state.publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
        return { status: changed.to, lease: taken.lease, event: decision.event }
      }
      case "Sleep": {
        const timer = yield* Effect.forkIn(Effect.andThen(Effect.sleep(Duration.millis(decision.until - at)), fire(state, runId)), state.scope)
        const previous = state.timers.get(runId)
        state.timers.set(runId, timer)
        if (previous !== undefined) yield* Fiber.interrupt(previous)
        return undefined
      }
    }
  })
