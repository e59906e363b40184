/**
 * The scenario every store must pass for a sleeper's timer (the `Runs` layer's, on the effect
 * `Clock`) that fires while the store is unavailable past its retries: the timer tries again until
 * the store is back, and wakes the run then, which completes. A store outage at the wrong moment
 * never leaves a sleeper suspended (or woken and never executed) for good.
 *
 * The store is given as a layer with an `Outage` that makes it fail (the memory store through a
 * wrapper, a SQL store through its client: tests/runtime/timer.faults.test.ts,
 * tests/sql/TimerFaults.test.ts). Time is a `TestClock` moved on in steps, with real pauses between
 * them so a SQL store's I/O goes on.
 */
import { assert } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"

/** Makes a store unavailable and available again; counts the calls (or statements) it failed. */
export interface Outage {
  readonly begin: Effect.Effect<void>
  readonly end: Effect.Effect<void>
  readonly failed: () => number
  /**
   * Nothing reaches the store during the outage, so the run is still suspended when it ends; an
   * outage that only loses acknowledgements lets the wake's writes (and the run's) through.
   */
  readonly total: boolean
}

const nap: Workflow.Workflow = {
  id: "timer-faults",
  blocks: [{ id: "nap", type: "sleep", params: { ms: 1_000 } }, { id: "after", type: "value", params: { value: 1 } }],
  edges: [{ source: "nap", target: "after" }]
}

// A real pause: a SQL store's statements are I/O, which a yield does not wait for.
const breathe = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 2)))

const step = 100

/** Moves the test clock on by `ms`, a step at a time, with real pauses between the steps. */
export const pass = (ms: number) =>
  Effect.gen(function*() {
    for (let moved = 0; moved < ms; moved += step) {
      yield* TestClock.adjust(step)
      yield* breathe
    }
  })

/** Moves the test clock on until `check` holds (dies if it does not within `ms`). */
export const until = <E, R>(check: Effect.Effect<boolean, E, R>, ms: number, what: string) =>
  Effect.gen(function*() {
    for (let moved = 0; !(yield* check); moved += step) {
      if (moved > ms) return yield* Effect.die(new Error(`${what} within ${ms} ms of the test clock`))
      yield* TestClock.adjust(step)
      yield* breathe
    }
  })

/**
 * Starts a sleeper, makes the store unavailable before its timer fires and for 10 s of the test
 * clock after (its retries and the timer's next tries fail alike), then makes it available: the
 * run is completed (not woken during a total outage: woken after it).
 */
export const sleeperWokenAfterOutage = <E, R>(
  store: Layer.Layer<RunStore.RunStore, E, R>,
  outage: Outage
): Effect.Effect<void, unknown, R> =>
  Effect.gen(function*() {
    yield* TestClock.setTime(10_000)
    const runs = yield* Runs.Runs
    const { getRun } = yield* RunStore.RunStore
    const { runId } = yield* runs.start(nap)
    assert.strictEqual(yield* runs.wait(runId), "suspended")
    yield* outage.begin
    yield* pass(10_000)
    yield* outage.end
    assert.isAbove(outage.failed(), 0, "the timer fired during the outage")
    if (outage.total) assert.strictEqual((yield* getRun(runId)).status, "suspended", "not woken while the store was down")
    yield* until(Effect.map(getRun(runId), (run) => run.status === "completed"), 60_000, "the run did not complete")
  }).pipe(
    Effect.provide(Runs.layer().pipe(Layer.provideMerge(store), Layer.provideMerge(Handler.layer({})))),
    Effect.provide(TestClock.layer())
  )
