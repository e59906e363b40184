/**
 * Cancelling a run and its unfinished descendants. A run executing here is interrupted and ends
 * `cancelled` (unless that execution had lost the run's lease: then it is asked of the new owner
 * like any run another process executes); one nobody executes is cancelled here under its lease;
 * one another process executes is asked (`RunStore.requestCancel`, then `notify`) and waited for,
 * at most until the lease its owner held when asked has run out: the owner ends it (it checks the
 * request before each block), or its lease expires and it is cancelled here, or the owner keeps
 * renewing its lease without ending the run and the request stays recorded for it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Child from "../../Child.ts"
import type * as Runs from "../../Runs.ts"
import { consumesCancel, type Lease as StoreLease, type LeaseLost, type RunStoreError } from "../../RunStore.ts"
import * as Children from "./children.ts"
import { ownOrOwner, release, type State } from "./state.ts"

// Cancels a run nobody executes now, under `lease`, unless it ended meanwhile after the request
// (`requested`): its owner (`owner`, if one was seen) finished it first or honoured the request.
const cancelOwned = (
  state: State,
  runId: string,
  lease: StoreLease,
  requested: boolean,
  owner: string | undefined
): Effect.Effect<Runs.Cancellation, RunStoreError | LeaseLost> =>
  Effect.gen(function*() {
    const run = yield* state.store.getRun(runId)
    if (requested && (run.status === "cancelled" || (owner !== undefined && consumesCancel.includes(run.status)))) {
      return owner === undefined ? { _tag: "Cancelled", status: run.status } : { _tag: "Acknowledged", owner, status: run.status }
    }
    const at = yield* Clock.currentTimeMillis
    // Diagnostics travel with the event: a refused cancel leaves them as they were.
    const changed = yield* state.store.fenced(lease).finish(runId, { type: "CANCEL" }, {
      ...run.diagnostics,
      finalization: "cancelled",
      messages: [...run.diagnostics.messages, "cancelled while not executing"]
    }, at)
    state.publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
    state.publish({ _tag: "RunFinished", runId, status: changed.to, at })
    return owner === undefined ? { _tag: "Cancelled", status: changed.to } : { _tag: "Expired", owner, status: changed.to }
  })

// A run not executing here: asked to cancel, then cancelled here as soon as the lease can be taken
// (nobody executes it, or its owner's lease expired), or left to the owner, which ends it at its
// next block, journal write or renewal; looked at until then, or until the lease the owner held
// when first seen has run out.
const cancelElsewhere = (state: State, runId: string): Effect.Effect<Runs.Cancellation, RunStoreError> =>
  Effect.gen(function*() {
    const { store } = state
    const requested = yield* store.requestCancel(runId, yield* Clock.currentTimeMillis)
    if (requested) yield* store.notify(runId)
    let owner: { readonly owner: string; readonly until: number } | undefined
    for (;;) {
      // Read before the lease is asked for: a lease still held then, past the end of the one the
      // owner held when first seen, was renewed.
      const asked = yield* Clock.currentTimeMillis
      const taken = yield* ownOrOwner(state, runId)
      if (taken._tag === "Owned") {
        const cancelled = yield* Effect.ensuring(cancelOwned(state, runId, taken.lease, requested, owner?.owner), release(state, taken.lease)).pipe(
          // Taken by another process before the cancel was written (this one stalled past the
          // lease): asked of it, like any owner, from the next look on.
          Effect.catchTag("LeaseLost", () => Effect.succeed(undefined))
        )
        if (cancelled !== undefined) return cancelled
        continue
      }
      owner ??= { owner: taken.owner, until: taken.expiresAt }
      const run = yield* store.getRun(runId)
      if (consumesCancel.includes(run.status)) return { _tag: "Acknowledged", owner: taken.owner, status: run.status }
      if (asked >= owner.until) {
        return { _tag: "Unanswered", owner: taken.owner, status: run.status, waitedUntil: owner.until }
      }
      yield* Effect.sleep(Duration.millis(state.options.cancelPollMs ?? 50))
    }
  })

const cancelOne = (state: State, runId: string): Effect.Effect<Runs.Cancellation, RunStoreError> => {
  const timer = state.timers.get(runId)
  if (timer !== undefined) state.timers.delete(runId)
  const fiber = state.executing.get(runId)
  if (fiber === undefined) return Effect.andThen(timer === undefined ? Effect.void : Fiber.interrupt(timer), cancelElsewhere(state, runId))
  const control = state.controls.get(runId)
  if (control !== undefined) control.cancelOnInterrupt = true
  const held = state.leased.get(runId)
  // The run did not end here: an execution interrupted before its first step never saw it (still
  // pending), or one that had lost its lease to another process could not end it (another executes
  // it now). Asked like any run executing elsewhere, so the request is recorded for its owner.
  return Effect.andThen(
    Effect.andThen(Fiber.interrupt(fiber), held === undefined ? Effect.void : held.released),
    Effect.flatMap(
      state.store.getRun(runId),
      (run) => consumesCancel.includes(run.status) ? Effect.succeed({ _tag: "Cancelled", status: run.status } as const) : cancelElsewhere(state, runId)
    )
  )
}

/**
 * Cancels a run (see `Runs.cancel`) and its descendants that have not finished; a parent learns
 * its child's end. Reports how the run itself was cancelled.
 *
 * @since 0.1.0
 */
export const cancel = (state: State, runId: string): Effect.Effect<Runs.Cancellation, RunStoreError> =>
  Effect.gen(function*() {
    const cancellation = yield* cancelOne(state, runId)
    for (const child of yield* state.store.children(runId)) {
      if (!Child.ended.includes(child.status)) yield* Effect.ignore(cancel(state, child.runId))
    }
    yield* Effect.ignore(Children.notifyParent(state, runId))
    return cancellation
  })
