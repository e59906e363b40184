/**
 * `RunStore.retry` under `RunStore.defaultRetryPolicy`, on the `TestClock`: retryable store errors
 * are retried with jittered exponential backoff and then given up on; others are not retried.
 */
import { assert, it } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"

const unavailable = (reason: RunStore.StoreUnavailableReason) => new RunStore.StoreUnavailable({ reason, operation: "journal" })
const serialization = unavailable(new RunStore.SerializationFailure({ message: "could not serialize access", code: "40001" }))

// An operation that fails with `error` on its first `failures` attempts, counting them.
const flaky = (error: RunStore.StoreUnavailable, failures: number) => {
  const counter = { attempts: 0 }
  const effect = Effect.suspend(() => ++counter.attempts <= failures ? Effect.fail(error) : Effect.succeed("written"))
  return { counter, effect }
}

const retried = <A>(effect: Effect.Effect<A, RunStore.StoreUnavailable>, replayable = true) =>
  RunStore.retry(effect, { policy: RunStore.defaultRetryPolicy, replayable })

// Delays are 20 ms · 2^(n-1), capped at 1 s, each jittered by ×0.8 to ×1.2; eight of them.
const delays = [20, 40, 80, 160, 320, 640, 1000, 1000]
const total = delays.reduce((a, b) => a + b, 0)

it.effect("a retryable error is retried after a backoff on the Clock, and the retry's result is returned", () =>
  Effect.gen(function*() {
    const { counter, effect } = flaky(serialization, 2)
    const fiber = yield* Effect.forkChild(retried(effect))
    yield* Effect.yieldNow
    assert.strictEqual(counter.attempts, 1)
    yield* TestClock.adjust(0.8 * delays[0]! - 1)
    assert.strictEqual(counter.attempts, 1, "no retry before the shortest first delay")
    yield* TestClock.adjust(1.2 * delays[0]! - 0.8 * delays[0]! + 2)
    assert.strictEqual(counter.attempts, 2, "retried by the longest first delay")
    yield* TestClock.adjust(1.2 * delays[1]! + 1)
    assert.strictEqual(yield* Fiber.join(fiber), "written")
    assert.strictEqual(counter.attempts, 3)
  }))

it.effect("a fault that outlasts the policy is given up on after eight retries, with the last error", () =>
  Effect.gen(function*() {
    const { counter, effect } = flaky(serialization, Number.POSITIVE_INFINITY)
    const fiber = yield* Effect.forkChild(Effect.exit(retried(effect)))
    yield* TestClock.adjust(0.8 * total - 1)
    assert.isUndefined(fiber.pollUnsafe(), "still retrying before the shortest total backoff")
    assert.isBelow(counter.attempts, 9)
    yield* TestClock.adjust(0.4 * total + 2)
    const exit = yield* Fiber.join(fiber)
    assert.strictEqual(counter.attempts, 9, "the first attempt and eight retries")
    assert.deepStrictEqual(exit, Exit.fail(serialization))
    yield* TestClock.adjust(60_000)
    assert.strictEqual(counter.attempts, 9, "nothing more once given up")
  }))

it.effect("a non-retryable error is returned at once, not retried", () =>
  Effect.gen(function*() {
    const failure = unavailable(new RunStore.StoreFailure({ message: "relation does not exist", code: "42P01" }))
    assert.isFalse(failure.isRetryable)
    const { counter, effect } = flaky(failure, 1)
    const fiber = yield* Effect.forkChild(Effect.exit(retried(effect)))
    yield* TestClock.adjust(60_000)
    const exit = yield* Fiber.join(fiber)
    assert.strictEqual(counter.attempts, 1)
    assert.isTrue(Exit.isFailure(exit))
  }))

it.effect("a lost connection is retried only for a write that is safe to send twice", () =>
  Effect.gen(function*() {
    const lost = unavailable(new RunStore.ConnectionLost({ message: "Connection closed" }))
    assert.isTrue(lost.isRetryable)
    const replayable = flaky(lost, 1)
    const once = flaky(lost, 1)
    const fibers = yield* Effect.forEach(
      [retried(replayable.effect, true), retried(once.effect, false)],
      (e) => Effect.forkChild(Effect.exit(e))
    )
    yield* TestClock.adjust(60_000)
    const [sent, refused] = yield* Fiber.joinAll(fibers)
    assert.deepStrictEqual(sent, Exit.succeed("written"))
    assert.strictEqual(replayable.counter.attempts, 2)
    assert.isTrue(Exit.isFailure(refused!))
    assert.strictEqual(once.counter.attempts, 1)
  }))

it.effect("every retryable reason is retried; only StoreFailure is not", () =>
  Effect.gen(function*() {
    const reasons: ReadonlyArray<RunStore.StoreUnavailableReason> = [
      new RunStore.SerializationFailure({ message: "m", code: "40001" }),
      new RunStore.Deadlock({ message: "m", code: "40P01" }),
      new RunStore.ConnectionLost({ message: "m" }),
      new RunStore.AdminShutdown({ message: "m", code: "57P01" }),
      new RunStore.DatabaseBusy({ message: "m", code: "55P03" }),
      new RunStore.StoreFailure({ message: "m", code: "23514" })
    ]
    assert.deepStrictEqual(reasons.map((r) => unavailable(r).isRetryable), [true, true, true, true, true, false])
  }))
