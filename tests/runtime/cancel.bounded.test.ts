/**
 * Cancel of a run another process executes waits for that owner, bounded by the lease it held when
 * asked: an owner that keeps renewing its lease without ending the run gets `Unanswered` (the
 * request stays recorded), one whose lease runs out gets its run cancelled here (`Expired`). The
 * owner here is a bare lease holder on the store: alive (renewing) or dead (not renewing), never
 * ending the run.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"

const workflow: Workflow.Workflow = { id: "held", blocks: [{ id: "a", type: "value", params: { value: 1 } }], edges: [] }

const leaseMs = 600

const layer = Runs.layer({ leaseMs, cancelPollMs: 20, owner: "canceller" }).pipe(
  Layer.provideMerge(RunStore.layerMemory),
  Layer.provideMerge(Handler.layerBuiltins)
)

/** A run whose lease `stuck` holds from time 0, renewed every third of it while `renewing` says so. */
const heldRun = (renewing: () => boolean) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const run = yield* store.createRun({ version: yield* store.saveWorkflow(workflow), mode: "full", input: {}, at: 0 })
    let lease = yield* store.acquire(run.id, "stuck", { ttlMs: leaseMs, at: 0 })
    const firstExpiry = lease.expiresAt
    yield* Effect.forkChild(Effect.forever(Effect.gen(function*() {
      yield* Effect.sleep(leaseMs / 3)
      if (renewing()) lease = (yield* store.renew(lease, { ttlMs: leaseMs, at: yield* Clock.currentTimeMillis })).lease
    })))
    return { store, runId: run.id, firstExpiry }
  })

/** Moves the test clock on in small steps until `fiber` is done. */
const untilDone = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(10)
    return yield* Fiber.join(fiber)
  })

describe("cancel of a run another process executes is bounded by the owner's lease", () => {
  it.effect("an owner that keeps its lease without ending the run: Unanswered once that lease ran out, the request stays recorded", () =>
    Effect.gen(function*() {
      let renewing = true
      const { firstExpiry, runId, store } = yield* heldRun(() => renewing)
      const runs = yield* Runs.Runs
      const cancelling = yield* Effect.forkChild(runs.cancel(runId))
      const cancellation = yield* untilDone(cancelling)
      assert.deepStrictEqual(cancellation, { _tag: "Unanswered", owner: "stuck", status: "pending", waitedUntil: firstExpiry })
      // Returned at the end of the lease held when asked, not before, and while the owner still renews.
      assert.isAtLeast(yield* Clock.currentTimeMillis, firstExpiry)
      const run = yield* store.getRun(runId)
      assert.strictEqual(run.lease?.owner, "stuck")
      assert.isAbove(run.lease!.expiresAt, firstExpiry)
      assert.isDefined(run.cancelRequestedAt)
      assert.strictEqual(run.status, "pending")
      renewing = false
    }).pipe(Effect.provide(layer)))

  it.effect("an owner whose lease runs out without an answer: the run is cancelled here, Expired names the owner", () =>
    Effect.gen(function*() {
      const { firstExpiry, runId, store } = yield* heldRun(() => false)
      const runs = yield* Runs.Runs
      const cancelling = yield* Effect.forkChild(runs.cancel(runId))
      assert.deepStrictEqual(yield* untilDone(cancelling), { _tag: "Expired", owner: "stuck", status: "cancelled" })
      assert.isAtLeast(yield* Clock.currentTimeMillis, firstExpiry)
      const run = yield* store.getRun(runId)
      assert.strictEqual(run.status, "cancelled")
      assert.isUndefined(run.cancelRequestedAt)
      assert.strictEqual(run.diagnostics.finalization, "cancelled")
    }).pipe(Effect.provide(layer)))

  it.effect("a run nobody executes is cancelled here at once", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* store.createRun({ version: yield* store.saveWorkflow(workflow), mode: "full", input: {}, at: 0 })
      const runs = yield* Runs.Runs
      assert.deepStrictEqual(yield* runs.cancel(run.id), { _tag: "Cancelled", status: "cancelled" })
    }).pipe(Effect.provide(layer)))
})
