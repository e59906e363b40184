/**
 * `RunStatus` declares only events the runtime sends (issue 13): every event the machine declares is
 * offered by `Runs` and the engine to the store they execute over, across a run's lifecycle —
 * recorded by a store wrapper, not read from the sources.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, RunStatus, Runs, RunStore } from "@ripple/runtime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"

type Json = Workflow.Json

/** `base`, recording the type of every event offered to it or to its fenced views. */
const recording = (base: RunStore.Port, sent: Set<string>): RunStore.Port => ({
  ...base,
  fenced: (lease) => recording(base.fenced(lease), sent),
  transition: (runId, event, at) => Effect.suspend(() => (sent.add(event.type), base.transition(runId, event, at))),
  finish: (runId, event, diagnostics, at) => Effect.suspend(() => (sent.add(event.type), base.finish(runId, event, diagnostics, at)))
})

const one = (block: Workflow.Block): Workflow.Workflow => ({ id: block.id, blocks: [block], edges: [] })

const chain = (id: string, types: ReadonlyArray<string>): Workflow.Workflow => ({
  id,
  blocks: types.map((type, i) => ({ id: `s${i}`, type })),
  edges: types.slice(1).map((_, i) => ({ source: `s${i}`, target: `s${i + 1}` }))
})

/** Waits until the run settled in `status` (a woken run executes in the layer's fibers). */
const settled = (runs: Runs.Runs["Service"], runId: string, status: RunStatus.Status) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100 && (yield* runs.wait(runId)) !== status; i++) yield* Effect.yieldNow
    assert.strictEqual(yield* runs.wait(runId), status)
  })

describe("RunStatus events", () => {
  it.effect("every event the machine declares is sent by the runtime over a run's lifecycle", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const sent = new Set<string>()
      const open = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      let compensations = 0
      const handlers: Record<string, Handler.Handler> = {
        gate: () => Effect.andThen(Deferred.succeed(entered, undefined), Effect.as(Deferred.await(open), 1)),
        step: (ctx) => Effect.succeed(ctx.node),
        boom: () => Effect.fail(BlockError.permanent("boom"))
      }
      // The first compensation kills the process (every write after it dies), the next ones succeed.
      let crashed = false
      const compensate = {
        step: () =>
          Effect.suspend(() => {
            if (++compensations > 1) return Effect.void
            crashed = true
            return Effect.die("process crashed")
          })
      }
      const dying = (base: RunStore.Port): RunStore.Port => ({
        ...base,
        fenced: (lease) => dying(base.fenced(lease)),
        journal: (runId, entries) => Effect.suspend(() => crashed ? Effect.die("crashed") : base.journal(runId, entries)),
        transition: (runId, event, at) => Effect.suspend(() => crashed ? Effect.die("crashed") : base.transition(runId, event, at)),
        finish: (runId, event, d, at) => Effect.suspend(() => crashed ? Effect.die("crashed") : base.finish(runId, event, d, at)),
        compensated: (runId, node, outcome, at) =>
          Effect.suspend(() => crashed ? Effect.die("crashed") : base.compensated(runId, node, outcome, at))
      })
      const processOver = (port: RunStore.Port) =>
        Runs.layer({ concurrency: 1 }).pipe(
          Layer.provideMerge(Layer.succeed(RunStore.RunStore, RunStore.RunStore.of(recording(port, sent)))),
          Layer.provideMerge(Handler.layer(handlers, { compensate }))
        )

      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        // A signal wait, a durable sleep and an approval: dormant, then woken.
        const waiting = yield* runs.start(one({ id: "w", type: "wait", params: { signal: "go" } }))
        yield* settled(runs, waiting.runId, "suspended")
        assert.isTrue(yield* runs.signal(waiting.runId, "go", null))
        yield* settled(runs, waiting.runId, "completed")
        const sleeping = yield* runs.start(one({ id: "s", type: "sleep", params: { ms: 1_000 } }))
        yield* settled(runs, sleeping.runId, "suspended")
        yield* TestClock.adjust(1_000)
        yield* settled(runs, sleeping.runId, "completed")
        const approving = yield* runs.start(one({ id: "a", type: "approval" }))
        yield* settled(runs, approving.runId, "paused")
        assert.isTrue(yield* runs.approve(approving.runId, "a", { ok: true } as Json))
        yield* settled(runs, approving.runId, "completed")
        // Paused at the next node boundary, then unpaused.
        const pausing = yield* runs.start(chain("pausing", ["gate", "step"]))
        yield* Deferred.await(entered)
        const pause = yield* Effect.forkChild(runs.pause(pausing.runId))
        for (let i = 0; i < 100 && (yield* store.getRun(pausing.runId)).pauseRequestedAt === undefined; i++) yield* Effect.yieldNow
        yield* Deferred.succeed(open, undefined)
        assert.strictEqual(yield* Fiber.join(pause), "paused")
        yield* runs.unpause(pausing.runId)
        yield* settled(runs, pausing.runId, "completed")
        // A failing block, resumed on purpose (it fails again); a dormant run cancelled.
        const failing = yield* runs.start(one({ id: "b", type: "boom" }))
        yield* settled(runs, failing.runId, "failed")
        yield* runs.resume(failing.runId)
        yield* settled(runs, failing.runId, "failed")
        const cancelling = yield* runs.start(one({ id: "w", type: "wait", params: { signal: "never" } }))
        yield* settled(runs, cancelling.runId, "suspended")
        assert.strictEqual((yield* runs.cancel(cancelling.runId)).status, "cancelled")
      }).pipe(Effect.provide(processOver(store)))

      // A process dies while compensating a failed run; a worker taking it over resets the machine
      // (`FAIL`, then `RESUME`, as `@ripple/sql`'s Worker does); the compensation resumed here ends
      // the run failed with `FAIL`, since its machine no longer holds the failure.
      const runId = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(chain("saga", ["step", "step", "boom"]))
        yield* Effect.exit(runs.wait(runId))
        return runId
      }).pipe(Effect.provide(processOver(dying(store))))
      assert.isTrue(crashed)
      assert.strictEqual((yield* store.getRun(runId)).status, "running")
      sent.delete("FAIL")
      yield* store.transition(runId, { type: "FAIL", error: "the worker executing this run stopped; resuming" }, 0)
      yield* store.transition(runId, { type: "RESUME" }, 0)
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        yield* runs.resume(runId)
        yield* settled(runs, runId, "failed")
      }).pipe(Effect.provide(processOver(store)))
      assert.strictEqual(compensations, 3)

      const declared = [...new Set(RunStatus.transitions.map((t) => t.event))].sort()
      assert.deepStrictEqual([...sent].sort(), declared)
    }))
})
