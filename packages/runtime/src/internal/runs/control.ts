/**
 * Control commands on a stored run (`pause`, `unpause`, `resume`, `handling`): the request is
 * recorded; the run is executed here only under its lease, and otherwise its owner (the process
 * holding the lease, or the workers for a queued run) is notified and continues it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Runs from "../../Runs.ts"
import type * as RunStatus from "../../RunStatus.ts"
import { IllegalTransition, type RunNotFound, type RunStoreError, type StoreUnavailable } from "../../RunStore.ts"
import * as Wake from "../../Wake.ts"
import * as Children from "./children.ts"
import type { PlanFailed } from "./errors.ts"
import * as Execute from "./execute.ts"
import * as Follow from "./follow.ts"
import { ownOrOwner, releasing, type State, unfenced } from "./state.ts"
import * as Waking from "./wake.ts"

/**
 * Records a pause request (see `Runs.pause`): a run executing here is parked from its very next
 * node and waited for; otherwise its current status.
 *
 * @since 0.1.0
 */
export const pause = (state: State, runId: string): Effect.Effect<RunStatus.Status, RunStoreError> =>
  Effect.gen(function*() {
    // Executing here: parked from the very next node, without waiting for a journal acknowledgement.
    const control = state.controls.get(runId)
    if (control !== undefined) control.pauseRequested = true
    const at = yield* Clock.currentTimeMillis
    const requested = yield* state.store.requestPause(runId, at)
    if (!requested || control === undefined) return (yield* state.store.getRun(runId)).status
    return yield* Follow.wait(state, runId)
  })

/**
 * Unpauses a run paused by `pause` (see `Runs.unpause`) and executes it here under its lease, or
 * tells the process that holds it (or the workers). A run asked to pause that has not settled
 * `paused` yet keeps the unpause, which wakes it once it settles.
 *
 * @since 0.1.0
 */
export const unpause = (state: State, runId: string): Effect.Effect<RunStatus.Status, RunStoreError | PlanFailed> =>
  Effect.gen(function*() {
    const { store } = state
    const run = yield* store.getRun(runId)
    const pause = Object.values(run.machine.context.dormant).find((r) => r._tag === "Pause")
    const at = yield* Clock.currentTimeMillis
    if (run.status !== "paused") {
      // Nothing to lift: refused, nothing written.
      if (!Wake.pauseAsked(run)) return yield* Effect.fail(new IllegalTransition({ runId, from: run.status, event: "UNPAUSE", reason: "not-allowed" }))
      yield* Wake.overrule(store, runId, at)
      return yield* Waking.settle(state, runId)
    }
    const event: RunStatus.Event = { type: "UNPAUSE", node: pause?.node ?? "", payload: null }
    // Executed here only under the lease; a process that holds it (or the workers) is told.
    const taken = Wake.ownerOf(run, state.self, at) === undefined ? yield* ownOrOwner(state, runId) : undefined
    const owned = taken?._tag === "Owned"
      ? yield* Effect.catchTag(
        releasing(state, taken.lease, store.fenced(taken.lease).transition(runId, event, at)),
        // Taken by another process before the event was written (this one stalled past the
        // lease): it is told, like an owner that held it first.
        "LeaseLost",
        () => Effect.succeed(undefined)
      )
      : undefined
    if (taken?._tag !== "Owned" || owned === undefined) {
      const changed = yield* unfenced(store.transition(runId, event, at))
      state.publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
      yield* store.notify(runId)
      return changed.to
    }
    state.publish({ _tag: "StatusChanged", runId, from: owned.from, to: owned.to, at })
    yield* Execute.resumeRun(state, runId, taken.lease)
    return owned.to
  })

/**
 * Continues a failed or crashed run (see `Runs.resume`), with its crashed descendants; a run
 * another process owns is only moved on and its owner notified.
 *
 * @since 0.1.0
 */
export const resume = (state: State, runId: string): Effect.Effect<Runs.Started | Runs.Delegated, RunStoreError | PlanFailed> =>
  Effect.gen(function*() {
    const { store } = state
    let run = yield* store.getRun(runId)
    const here = state.executing.has(runId)
    // Another process's lease on a run left running: a dead owner's until it expires, a live one's
    // as long as it renews it. Looked at until either: a renewal (or a new holder) shows the owner
    // alive, and it keeps the run; or the clock has passed the expiry, not only its duration (a timer
    // may end a little before the clock reads its deadline), and the run is taken over here. A live
    // owner renews every heartbeat (on these terms: its own are not stored), so the run is looked at
    // when the next renewal is due and at the expiry, not more often: nothing shows before.
    let renewed = false
    if (!here && run.queued !== true && (run.status === "running" || run.status === "pending")) {
      const { heartbeatMs, ttlMs } = state.leaseTerms
      for (;;) {
        const held = run.lease
        const at = yield* Clock.currentTimeMillis
        if (held === undefined || held.owner === state.owner || held.expiresAt <= at) break
        // Renewed (or granted) a lease's length before it expires; renewed again every heartbeat.
        const since = held.expiresAt - ttlMs
        const due = since + heartbeatMs * (Math.floor((at - since) / heartbeatMs) + 1)
        yield* Effect.sleep(Duration.millis(Math.min(due, held.expiresAt) - at))
        run = yield* store.getRun(runId)
        if (run.lease?.owner !== held.owner || run.lease.expiresAt !== held.expiresAt) {
          renewed = run.lease !== undefined
          break
        }
      }
    }
    // A pause asked of it before it crashed (a process stopped by a second Ctrl-C parks what it
    // reached) is overruled: whoever resumes it now wants it to go on.
    if (!here && (run.status === "running" || run.status === "pending") && Wake.pauseAsked(run)) {
      yield* Wake.overrule(store, runId, yield* Clock.currentTimeMillis)
    }
    const elsewhere = here ? undefined : Wake.ownerOf(run, state.self, yield* Clock.currentTimeMillis)
    // Executed here only under the lease; a process that took it first is the owner.
    const taken = here || elsewhere !== undefined ? undefined : yield* ownOrOwner(state, runId)
    let lease = taken?._tag === "Owned" ? taken.lease : undefined
    let other = elsewhere ?? (taken?._tag === "Held" ? taken.owner : undefined)
    // A running (or never started) run not executing here crashed: it continues as it is.
    if ((run.status !== "running" && run.status !== "pending") || here) {
      const at = yield* Clock.currentTimeMillis
      const resumed = (to: typeof store) => to.transition(runId, { type: "RESUME" }, at)
      let changed = lease === undefined
        ? yield* unfenced(resumed(store))
        : yield* Effect.catchTag(releasing(state, lease, resumed(store.fenced(lease))), "LeaseLost", () => Effect.succeed(undefined))
      if (changed === undefined) {
        // Taken by another process before RESUME was written (this one stalled past the lease):
        // written for it, as for an owner that held it first.
        lease = undefined
        other = (yield* store.getRun(runId)).lease?.owner
        changed = yield* unfenced(resumed(store))
      }
      state.publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
    }
    // Not taken here: another owner's, or this layer's own execution of it (which takes the RESUME).
    if (lease === undefined) {
      yield* store.notify(runId)
      const owner = other ?? state.owner
      // It keeps the run: it renewed its lease meanwhile, or holds a queued run (whose lease, should
      // that worker die, another worker takes over).
      const keeps = (renewed || run.queued === true) && Wake.holder(run, yield* Clock.currentTimeMillis) === owner
      return keeps ? { runId, owner, held: true } : { runId, owner }
    }
    const started = yield* Execute.resumeRun(state, runId, lease)
    yield* Children.resumeCrashed(state, runId)
    return started
  })

/**
 * Who executes the run now: this process, another one (its owner), or nobody.
 *
 * @since 0.1.0
 */
export const handling = (state: State, runId: string): Effect.Effect<Runs.Handling, RunNotFound | StoreUnavailable> =>
  Effect.gen(function*() {
    const run = yield* state.store.getRun(runId)
    if (state.executing.has(runId)) return { _tag: "Here" } as const
    const owner = Wake.ownerOf(run, state.self, yield* Clock.currentTimeMillis)
    return owner === undefined ? { _tag: "Idle", status: run.status } as const : { _tag: "Owner", owner } as const
  })
