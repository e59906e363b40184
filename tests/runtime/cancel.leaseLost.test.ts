/**
 * A cancel whose lease is taken from it before it writes: `Runs.cancel` of a run nobody executes
 * takes the run's lease to end it, and another process, its clock ahead past that lease's expiry,
 * takes the lease before the cancel is written (tests/helpers/leaseTaken.ts). The write is refused
 * (`LeaseLost`, typed) and the cancel goes on as for a run another process owns: the request is
 * recorded for that owner, and once its lease expired unrenewed (it crashed) the run is cancelled
 * here. On the memory store, PGlite and the real server; time is a `TestClock`.
 */
import { assert, it, layer } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import * as TestDatabase from "../helpers/database.ts"
import { here, leaseMs, other, waiting } from "../helpers/leaseTaken.ts"
import { until } from "../helpers/timerOutage.ts"

const title = "a cancel whose lease another process took before it wrote is refused, typed, and asks the new owner, then cancels the run once that lease expired"

const cancelledAfterAll = Effect.gen(function*() {
  const { runs, started, store, taking } = yield* here({ cancelPollMs: 1_000 })
  const { runId } = yield* runs.start(waiting)
  assert.strictEqual(yield* runs.wait(runId), "suspended")
  assert.isUndefined((yield* store.getRun(runId)).lease, "nobody executes it")

  taking.steal = true
  const cancelling = yield* Effect.forkChild(runs.cancel(runId))
  yield* until(Effect.sync(() => cancelling.pollUnsafe() !== undefined), 3 * leaseMs, "the cancel did not end")
  assert.deepStrictEqual(yield* Fiber.join(cancelling), { _tag: "Expired", owner: other, status: "cancelled" })
  assert.isFalse(taking.steal, "the lease was taken from the cancel")
  const run = yield* store.getRun(runId)
  assert.strictEqual(run.status, "cancelled")
  assert.isUndefined(run.lease, "the lease taken to end it is released")
  assert.deepStrictEqual(started, ["a"], "nothing started after the request")
}).pipe(Effect.scoped, Effect.provide(TestClock.layer()))

it.effect(`${title}, memory store`, () => Effect.provide(cancelledAfterAll, RunStore.layerMemory))

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`a cancel losing its lease on ${backend}`, (it) => {
    it.effect(title, () => Effect.provide(cancelledAfterAll, Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)))
  })
}
