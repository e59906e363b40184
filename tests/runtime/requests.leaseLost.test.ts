/**
 * Wake, unpause and resume losing the lease they just took: each takes the lease of a run nobody
 * executes, and another process, its clock ahead past that lease's expiry, takes the lease before
 * the request's first fenced write (tests/helpers/leaseTaken.ts). The write is refused
 * (`LeaseLost`) and the request goes on as for a run another process owns: it is answered (no
 * failure, no defect), recorded for the new owner, which is told, and nothing is executed here.
 * The new owner crashes, and once its lease expired unrenewed the run is taken up here and
 * completes, each block started once (but the one that failed); or, for the wake, it wakes the run
 * itself and completes it. On the memory store, PGlite and the real server; time is a `TestClock`.
 */
import { assert, it, layer } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import * as TestDatabase from "../helpers/database.ts"
import { ahead, type Here, here, leaseMs, other, waiting } from "../helpers/leaseTaken.ts"
import { until } from "../helpers/timerOutage.ts"

/** The request took the lease and lost it: the run is the other process's, which was told, and nothing started here since `started`. */
const leftToOther = (process: Here, runId: string, notified: number, started: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    assert.isFalse(process.taking.steal, "the lease was taken from the request")
    assert.strictEqual((yield* process.store.getRun(runId)).lease?.owner, other)
    assert.isAbove(process.taking.notified, notified, "the new owner was told")
    assert.deepStrictEqual(process.started, started, "nothing started here")
  })

/** Resumes the run here once the other process's lease expired (it crashed) and waits for its end. */
const takenOverHere = (process: Here, runId: string) =>
  Effect.gen(function*() {
    const resuming = yield* Effect.forkChild(process.runs.resume(runId))
    yield* until(Effect.sync(() => resuming.pollUnsafe() !== undefined), 3 * leaseMs, "the resume did not end")
    assert.notProperty(yield* Fiber.join(resuming), "owner", "executed here")
    return yield* process.runs.wait(runId)
  })

/** A request, made of a run of `waiting` suspended on `go` (its `count` block `failing` fails once), that loses its lease. */
interface Scenario {
  readonly title: string
  readonly failing?: string
  readonly body: (process: Here, runId: string) => Effect.Effect<void, unknown, RunStore.RunStore | Scope.Scope>
}

const scenarios: ReadonlyArray<Scenario> = [
  {
    title: "a signal whose wake lost the lease it took before it wrote is kept for the new owner, and the run wakes once that lease expired",
    body: (process, runId) =>
      Effect.gen(function*() {
        const { runs, store, taking } = process
        taking.steal = true
        const notified = taking.notified
        assert.isTrue(yield* runs.signal(runId, "go", { ok: true }), "the signal was accepted")
        yield* leftToOther(process, runId, notified, ["a"])
        assert.strictEqual((yield* store.getRun(runId)).status, "suspended", "not woken here")
        assert.deepStrictEqual((yield* store.deliveries(runId)).map((d) => d.name), ["go"], "kept for its owner")

        yield* TestClock.adjust(2 * leaseMs)
        assert.strictEqual(yield* runs.wake(runId), "running")
        assert.strictEqual(yield* runs.wait(runId), "completed")
        assert.deepStrictEqual(process.started, ["a", "b"])
        assert.deepStrictEqual((yield* store.snapshot(runId)).nodes["w"]?.output, { ok: true })
      })
  },
  {
    title: "a signal whose wake lost the lease it took to another process waking the run is kept for it, and that process completes the run, nothing executed here",
    body: (process, runId) =>
      Effect.gen(function*() {
        const { runs, taking } = process
        const owner = yield* here({ owner: other })
        const clock = yield* ahead(leaseMs)
        taking.by = () => owner.runs.wake(runId).pipe(Effect.provideService(Clock.Clock, clock))
        taking.steal = true
        const notified = taking.notified
        assert.isTrue(yield* runs.signal(runId, "go", { ok: true }), "the signal was accepted")
        assert.isFalse(taking.steal, "the lease was taken from the request")
        assert.isAbove(taking.notified, notified, "the new owner was told")
        assert.strictEqual(yield* owner.runs.wait(runId), "completed")
        assert.deepStrictEqual(process.started, ["a"], "nothing executed here")
        assert.deepStrictEqual(owner.started, ["b"], "the rest executed by the new owner")
        assert.deepStrictEqual((yield* process.store.snapshot(runId)).nodes["w"]?.output, { ok: true })
      })
  },
  {
    title: "an unpause that lost the lease it took before it wrote unpauses the run for the new owner, and the run is taken over once that lease expired",
    body: (process, runId) =>
      Effect.gen(function*() {
        const { runs, taking } = process
        // Asked while suspended: it parks `b` once the signal wakes it.
        assert.strictEqual(yield* runs.pause(runId), "suspended")
        assert.isTrue(yield* runs.signal(runId, "go", { ok: true }))
        assert.strictEqual(yield* runs.wait(runId), "paused")

        taking.steal = true
        const notified = taking.notified
        assert.strictEqual(yield* runs.unpause(runId), "running")
        yield* leftToOther(process, runId, notified, ["a"])

        assert.strictEqual(yield* takenOverHere(process, runId), "completed")
        assert.deepStrictEqual(process.started, ["a", "b"])
      })
  },
  {
    title: "a resume that lost the lease it took before it wrote resumes the run for the new owner, and the run is taken over once that lease expired",
    failing: "b",
    body: (process, runId) =>
      Effect.gen(function*() {
        const { runs, store, taking } = process
        assert.isTrue(yield* runs.signal(runId, "go", { ok: true }))
        assert.strictEqual(yield* runs.wait(runId), "failed")

        taking.steal = true
        const notified = taking.notified
        assert.deepStrictEqual(yield* runs.resume(runId), { runId, owner: other }, "delegated to the new owner")
        assert.strictEqual((yield* store.getRun(runId)).status, "running")
        yield* leftToOther(process, runId, notified, ["a", "b"])

        assert.strictEqual(yield* takenOverHere(process, runId), "completed")
        assert.deepStrictEqual(process.started, ["a", "b", "b"], "only the failed block again")
      })
  }
]

const scenario = ({ body, failing }: Scenario) =>
  Effect.gen(function*() {
    const process = yield* here({ failing })
    const { runId } = yield* process.runs.start(waiting)
    assert.strictEqual(yield* process.runs.wait(runId), "suspended")
    yield* body(process, runId)
  }).pipe(Effect.scoped, Effect.provide(TestClock.layer()))

for (const s of scenarios) it.effect(`${s.title}, memory store`, () => Effect.provide(scenario(s), RunStore.layerMemory))

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`requests losing their lease on ${backend}`, (it) => {
    for (const s of scenarios) it.effect(s.title, () => Effect.provide(scenario(s), Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)))
  })
}
