/**
 * Stopping a run the command executes when the user asks (Ctrl-C, SIGTERM): no block starts any
 * more, running blocks finish (for a while), what finished is journaled and the run is left
 * paused, so `ripple resume` continues it.
 *
 * **Details**
 *
 * `Stop` is where the request comes from. The executable (`main.ts`) triggers it on the first signal
 * while a command listens (it follows a run it executes), and ends the process at once on the
 * second. An embedding program or a test provides its own (`make`).
 *
 * **Gotchas**
 *
 * The listener parks the run synchronously (`Runs.pause` sets the execution's pause flag before its
 * first await), so the engine sees it before its next block whatever the fibers around it do.
 *
 * @since 0.1.0
 */
import type { Runs, RunStore } from "@ripple/runtime"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

/**
 * A source of stop requests: `listen(f)` calls `f` when the user asks to stop (at once if they
 * did already) and returns what stops listening.
 *
 * @since 0.1.0
 */
export interface Signal {
  readonly listen: (onStop: () => void) => () => void
}

/**
 * Where the commands hear the user ask to stop (default: they never do).
 *
 * @since 0.1.0
 */
export const Stop = Context.Reference<Signal>("ripple/cli/Stop", { defaultValue: () => ({ listen: () => () => {} }) })

/**
 * A stop signal and its trigger: `stop()` calls every listener (once); `listening()` says whether
 * anyone listens now.
 *
 * @since 0.1.0
 */
export const make = (): { readonly signal: Signal; readonly stop: () => void; readonly listening: () => boolean } => {
  const listeners = new Set<() => void>()
  let stopped = false
  return {
    signal: {
      listen: (onStop) => {
        if (stopped) {
          onStop()
          return () => {}
        }
        listeners.add(onStop)
        return () => void listeners.delete(onStop)
      }
    },
    stop: () => {
      if (stopped) return
      stopped = true
      for (const listener of [...listeners]) listener()
      listeners.clear()
    },
    listening: () => listeners.size > 0
  }
}

/**
 * How long running blocks may take to finish once stopped before the command exits anyway (the
 * run is then left running, and `ripple resume` takes it over once its lease expires).
 *
 * @since 0.1.0
 */
export const graceMs = 10_000

/**
 * Parks a run executing here and its executing descendants (`Runs.pause`): nothing more starts,
 * running blocks finish, the runs end `paused`.
 *
 * @since 0.1.0
 */
export const park = (
  runs: Runs.Runs["Service"],
  store: RunStore.RunStore["Service"],
  runId: string
): Effect.Effect<void, RunStore.RunStoreError | Runs.InvalidOption> =>
  Effect.gen(function*() {
    // Started now, not scheduled: the pause flag is set before this returns (see the module's Gotchas).
    const parked = yield* Effect.forkChild(runs.pause(runId), { startImmediately: true })
    const children = yield* store.children(runId)
    yield* Effect.forEach(
      children.filter((child) => child.status === "running" || child.status === "pending"),
      (child) => park(runs, store, child.runId),
      { concurrency: "unbounded", discard: true }
    )
    yield* Fiber.join(parked)
  })
