/**
 * Cancel of a run another process executes waits for that owner, bounded by the lease it held when
 * asked: an owner that keeps renewing its lease without ending the run gets `Unanswered` (the
 * request stays recorded), one whose lease runs out gets its run cancelled here (`Expired`). The
 * owner here is a bare lease holder on the store: alive (renewing) or dead (not renewing), never
 * ending the run. On the memory store (the test clock) and the SQL stores (the live clock).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import * as TestDatabase from "../helpers/database.ts"

const workflow: Workflow.Workflow = { id: "held", blocks: [{ id: "a", type: "value", params: { value: 1 } }], edges: [] }

// The owner's lease, renewed often: an owner alive on a loaded machine (PGlite serializes queries) keeps it.
const leaseMs = 1_500
const renewMs = 100

/** Moves time on: the test clock on the memory store, the live one on SQL stores. */
type Advance = (ms: number) => Effect.Effect<void>

const runsOver = <E, R>(store: Layer.Layer<RunStore.RunStore, E, R>) =>
  Runs.layer({ cancelPollMs: 20, owner: "canceller" }).pipe(
    Layer.provideMerge(store),
    Layer.provideMerge(Handler.layerBuiltins)
  )

/** A run whose lease `stuck` holds from now, renewed every `renewMs` while `renewing` says so. */
const heldRun = (renewing: () => boolean) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const at = yield* Clock.currentTimeMillis
    const run = yield* store.createRun({ version: yield* store.saveWorkflow(workflow), mode: "full", input: {}, at })
    let lease = yield* store.acquire(run.id, "stuck", { ttlMs: leaseMs, at })
    const firstExpiry = lease.expiresAt
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      yield* Effect.sleep(renewMs)
      if (renewing()) lease = (yield* store.renew(lease, { ttlMs: leaseMs, at: yield* Clock.currentTimeMillis })).lease
    })))
    return { store, runId: run.id, firstExpiry }
  })

/** Moves time on in small steps until `fiber` is done. */
const untilDone = <A, E>(fiber: Fiber.Fiber<A, E>, advance: Advance) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && fiber.pollUnsafe() === undefined; i++) yield* advance(10)
    return yield* Fiber.join(fiber)
  })

/** Registers a test whose body gets how to move time on. */
type Register = (name: string, body: (advance: Advance) => Effect.Effect<void, unknown, Runs.Runs | RunStore.RunStore>) => void

const boundedCancelTests = (test: Register) => {
  test("an owner that keeps its lease without ending the run: Unanswered once that lease ran out, the request stays recorded", (advance) =>
    Effect.gen(function*() {
      let renewing = true
      const { firstExpiry, runId, store } = yield* heldRun(() => renewing)
      const runs = yield* Runs.Runs
      const cancelling = yield* Effect.forkChild(runs.cancel(runId))
      const cancellation = yield* untilDone(cancelling, advance)
      assert.deepStrictEqual(cancellation, { _tag: "Unanswered", owner: "stuck", status: "pending", waitedUntil: firstExpiry })
      // Returned at the end of the lease held when asked, not before, and while the owner still renews.
      assert.isAtLeast(yield* Clock.currentTimeMillis, firstExpiry)
      const run = yield* store.getRun(runId)
      assert.strictEqual(run.lease?.owner, "stuck")
      assert.isAbove(run.lease!.expiresAt, firstExpiry)
      assert.isDefined(run.cancelRequestedAt)
      assert.strictEqual(run.status, "pending")
      renewing = false
    }).pipe(Effect.scoped))

  test("an owner whose lease runs out without an answer: the run is cancelled here, Expired names the owner", (advance) =>
    Effect.gen(function*() {
      const { firstExpiry, runId, store } = yield* heldRun(() => false)
      const runs = yield* Runs.Runs
      const cancelling = yield* Effect.forkChild(runs.cancel(runId))
      assert.deepStrictEqual(yield* untilDone(cancelling, advance), { _tag: "Expired", owner: "stuck", status: "cancelled" })
      assert.isAtLeast(yield* Clock.currentTimeMillis, firstExpiry)
      const run = yield* store.getRun(runId)
      assert.strictEqual(run.status, "cancelled")
      assert.isUndefined(run.cancelRequestedAt)
      assert.strictEqual(run.diagnostics.finalization, "cancelled")
    }).pipe(Effect.scoped))

  test("a run nobody executes is cancelled here at once", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const at = yield* Clock.currentTimeMillis
      const run = yield* store.createRun({ version: yield* store.saveWorkflow(workflow), mode: "full", input: {}, at })
      const runs = yield* Runs.Runs
      assert.deepStrictEqual(yield* runs.cancel(run.id), { _tag: "Cancelled", status: "cancelled" })
    }))
}

describe("bounded cancel, memory store", () => {
  boundedCancelTests((name, body) =>
    it.effect(name, () => Effect.provide(body((ms) => TestClock.adjust(ms)), runsOver(RunStore.layerMemory))))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`bounded cancel on ${backend}`, (it) => {
    boundedCancelTests((name, body) =>
      it.effect(name, () =>
        Effect.provide(body((ms) => Effect.sleep(ms)), runsOver(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)))))
  })
}
