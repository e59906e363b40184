/**
 * A cancel whose lease is taken from it before it writes: `Runs.cancel` of a run nobody executes
 * takes the run's lease to end it, and another process, its clock ahead past that lease's expiry,
 * takes the lease before the cancel is written. The write is refused (`LeaseLost`, typed) and the
 * cancel goes on as for a run another process owns: the request is recorded for that owner, and
 * once its lease expired unrenewed (it crashed) the run is cancelled here. On the memory store,
 * PGlite and the real server; time is a `TestClock`.
 */
import { assert, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import * as TestDatabase from "../helpers/database.ts"
import { until } from "../helpers/timerOutage.ts"

/** `a → w → b`: suspended on the signal `go` after `a`. */
const waiting: Workflow.Workflow = {
  id: "cancel-lease-lost",
  blocks: [{ id: "a", type: "count" }, { id: "w", type: "wait", params: { signal: "go" } }, { id: "b", type: "count" }],
  edges: [{ source: "a", target: "w" }, { source: "w", target: "b" }]
}

const leaseMs = 30_000

/** `store`, where once `armed.steal` is set the next lease granted is taken at once by "another process", its clock at the lease's expiry. */
const stolen = (store: RunStore.RunStore["Service"], armed: { steal: boolean }): RunStore.RunStore["Service"] =>
  RunStore.RunStore.of({
    ...store,
    acquire: (runId, owner, terms) =>
      Effect.tap(store.acquire(runId, owner, terms), (lease) => {
        if (!armed.steal) return Effect.void
        armed.steal = false
        return store.acquire(runId, "another process", { ttlMs: leaseMs, at: lease.expiresAt })
      })
  })

const title = "a cancel whose lease another process took before it wrote is refused, typed, and asks the new owner, then cancels the run once that lease expired"

const cancelledAfterAll = Effect.gen(function*() {
  const armed = { steal: false }
  const started: Array<string> = []
  const store = yield* RunStore.RunStore
  const runs = yield* Effect.map(
    Layer.build(
      Runs.layer({ leaseMs, cancelPollMs: 1_000 }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, stolen(store, armed))),
        Layer.provideMerge(Handler.layer({ ...Builtins.handlers, count: (ctx) => Effect.sync(() => started.push(ctx.node)).pipe(Effect.as(1)) }))
      )
    ),
    (context) => Context.get(context, Runs.Runs)
  )
  const { runId } = yield* runs.start(waiting)
  assert.strictEqual(yield* runs.wait(runId), "suspended")
  assert.isUndefined((yield* store.getRun(runId)).lease, "nobody executes it")

  armed.steal = true
  const cancelling = yield* Effect.forkChild(runs.cancel(runId))
  yield* until(Effect.sync(() => cancelling.pollUnsafe() !== undefined), 3 * leaseMs, "the cancel did not end")
  assert.deepStrictEqual(yield* Fiber.join(cancelling), { _tag: "Expired", owner: "another process", status: "cancelled" })
  assert.isFalse(armed.steal, "the lease was taken from the cancel")
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
