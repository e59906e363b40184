/**
 * Following runs: waiting for a run executing here to stop (`wait`), following a run tree to its
 * end — the child runs a run awaits and the parents a child wakes — (`follow`), and waiting,
 * bounded, for another process to take a delegated request (`handover`).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Child from "../../Child.ts"
import * as Engine from "../../Engine.ts"
import type * as Runs from "../../Runs.ts"
import type * as RunStatus from "../../RunStatus.ts"
import { changes, type RunStoreError } from "../../RunStore.ts"
import * as Wake from "../../Wake.ts"
import * as Children from "./children.ts"
import type { State } from "./state.ts"

/**
 * Waits until the run stops executing here (finished, or dormant) and returns its status; the
 * stored status of a run not executing here.
 *
 * @since 0.1.0
 */
export const wait = (state: State, runId: string): Effect.Effect<RunStatus.Status, RunStoreError> => {
  const stored = Effect.map(state.store.getRun(runId), (run) => run.status)
  // Looked up under the waking lock: a run being woken is either not woken yet or executing,
  // never stored as running with its execution not forked yet.
  type Found =
    | { readonly _tag: "Stored"; readonly status: RunStatus.Status }
    | { readonly _tag: "Executing"; readonly fiber: Fiber.Fiber<RunStatus.Status, RunStoreError> }
  const lookup = state.settling.withPermit(Effect.suspend((): Effect.Effect<Found, RunStoreError> => {
    const fiber = state.executing.get(runId)
    return fiber === undefined
      ? Effect.map(stored, (status) => ({ _tag: "Stored", status }))
      : Effect.succeed({ _tag: "Executing", fiber })
  }))
  return Effect.flatMap(lookup, (found) =>
    found._tag === "Stored"
      ? Effect.succeed(found.status)
      // A cancelled execution ends interrupted; its status is in the store.
      : Effect.catchCause(Fiber.join(found.fiber), (cause) => Cause.hasInterruptsOnly(cause) ? stored : Effect.failCause(cause)))
}

// Waits for a run executing here to stop; while it is suspended on child runs only, waits for
// them and for the run to wake and stop again.
const followTree = (state: State, runId: string): Effect.Effect<RunStatus.Status, RunStoreError> =>
  Effect.gen(function*() {
    const { store } = state
    for (;;) {
      const status = yield* wait(state, runId)
      if (status !== "suspended") return status
      const run = yield* store.getRun(runId)
      const awaitedSignals = Object.values(run.machine.context.dormant).flatMap((r) => r._tag === "Signal" ? [r.signal] : [])
      const awaited = (yield* store.children(runId)).filter((c) => awaitedSignals.includes(Engine.childSignal(c.runId)))
      if (awaited.length === 0) return status
      const open = awaited.filter((c) => !Child.ended.includes(c.status))
      if (open.length > 0) {
        const ends = yield* Effect.forEach(open, (c) => followTree(state, c.runId))
        // A child that stopped without ending (it awaits something else) holds the run.
        if (ends.some((end) => !Child.ended.includes(end))) return status
        continue
      }
      // Every awaited child ended: their results wake the run (delivered now if their
      // executions have not yet; delivering twice changes nothing).
      for (const child of awaited) yield* Effect.ignore(Children.notifyParent(state, child.runId))
      const after = yield* store.getRun(runId)
      if (!state.executing.has(runId) && after.updatedAt === run.updatedAt) return after.status
    }
  })

/**
 * Follows a run executing here to its end (see `Runs.follow`), then the parents it woke as a child.
 *
 * @since 0.1.0
 */
export const follow = (state: State, runId: string): Effect.Effect<Runs.Followed, RunStoreError> =>
  Effect.gen(function*() {
    const status = yield* followTree(state, runId)
    const ancestors: Array<Runs.Followed["ancestors"][number]> = []
    // A child run that ended here woke its parent here: follow the parent (and its parent).
    for (let current = runId, ended = status; Child.ended.includes(ended);) {
      const parent = (yield* state.store.getRun(current)).parentRun
      if (parent === undefined) break
      ended = yield* followTree(state, parent)
      ancestors.push({ runId: parent, status: ended })
      current = parent
    }
    return { status, ancestors }
  })

/**
 * Waits, bounded, for the owner of a delegated request to take it and the run to stop executing
 * (see `Runs.handover`).
 *
 * @since 0.1.0
 */
export const handover = (state: State, ...[runId, options]: Parameters<Runs.Runs["Service"]["handover"]>) =>
  Effect.scoped(Effect.gen(function*() {
    // Subscribed before the first read, so a change between a read and the wait is not missed.
    const next = yield* changes(state.store, runId)
    const start = yield* Clock.currentTimeMillis
    const deadline = start + Duration.toMillis(options.timeout)
    let owner: string | undefined
    let taken = false
    let reported = start
    for (;;) {
      const run = yield* state.store.getRun(runId)
      const now = yield* Clock.currentTimeMillis
      const held = Wake.holder(run, now)
      if (held !== undefined) owner = held
      taken ||= owner !== undefined || options.taken(run)
      const stopped = held === undefined && run.status !== "running" && run.status !== "pending"
      if ((taken && stopped) || now >= deadline) {
        return { taken, owner: taken ? owner ?? Wake.workers : undefined, run } satisfies Runs.Handover
      }
      if (now - reported >= 5_000) {
        reported = now
        yield* options.onWaiting(now - start, taken)
      }
      // At the deadline at the latest.
      yield* Effect.raceFirst(next, Effect.sleep(Duration.millis(deadline - now)))
    }
  }))
