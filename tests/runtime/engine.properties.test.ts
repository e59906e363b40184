import { assert, describe, it } from "@effect/vitest"
import { Snapshot, type Workflow } from "@ripple/core"
import { Edits, Laws, Model } from "@ripple/core/testing"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryWorkflow } from "../arbitraries/workflow.ts"
import { essence, executedIn, modelHandlers, runOnEngine, SEED, withModel } from "./model.ts"

const noContainers = arbitraryWorkflow({ containers: false, maxMembers: 7 })

const scenario = noContainers.chain((before) =>
  fc.record({
    before: fc.constant(before as unknown as Workflow.Workflow),
    edits: Edits.arbitraryEdits({ kinds: ["params", "volatile", "add", "remove", "variable"] }),
    pick: fc.nat()
  }).map(({ before, edits, pick }) => {
    const after = Edits.apply(before, edits)
    const targets = after.blocks.map((b) => b.id)
    return { before, after, target: targets[pick % targets.length]! }
  })
)

describe("Engine properties", () => {
  it.effect("a full run equals the reference executor, node by node", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(noContainers, async (json) => {
          const workflow = json as unknown as Workflow.Workflow
          const input = Laws.inputFor(workflow)
          const expected = Model.execute(workflow, { seed: SEED, input }).snapshot
          const { snapshot } = await Effect.runPromise(withModel((current) =>
            runOnEngine(current, Effect.flatMap(Runs.Runs, (runs) => runs.start(workflow, input)), workflow)
          ))
          assert.isTrue(Result.isSuccess(Snapshot.decode(snapshot)))
          const ids = new Set([...Object.keys(expected.nodes), ...Object.keys(snapshot.nodes)])
          for (const id of ids) assert.strictEqual(essence(snapshot.nodes[id]), essence(expected.nodes[id]), id)
        }),
        { numRuns: 150 }
      )
    ))

  it.effect("runFrom without cutoff after random edits equals a full run of the edit on observed outputs and executes the plan's re-run set", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(scenario, async ({ after, before, target }) => {
          const trial = Laws.trial({ before, after, target, seed: SEED })
          const input = Laws.inputFor(before)
          const outcome = await Effect.runPromise(withModel((current) =>
            Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const prior = yield* runOnEngine(current, runs.start(before, input), before)
              const incremental = yield* runOnEngine(current, runs.runFrom(after, { target, run: prior.started.runId }), after)
              const fresh = yield* runOnEngine(current, runs.start(after, prior.snapshot.input), after)
              return { incremental, fresh }
            }), { cutoff: false }
          ))
          const { fresh, incremental } = outcome
          const plan = incremental.started.plan
          assert.deepStrictEqual([...plan.rerun].sort(), [...trial.plan.rerun].sort())
          // Executes exactly the activated part of the plan's re-run set, as the reference executor does.
          const executed = executedIn(incremental.snapshot)
          const rerun = new Set(plan.rerun)
          for (const id of executed) assert.isTrue(rerun.has(id), `${id} executed but not in the re-run set`)
          assert.deepStrictEqual(executed, [...new Set(trial.replay.executed)].sort())
          for (const id of plan.reused) assert.isDefined(incremental.snapshot.nodes[id]?.reusedFrom, id)
          // Observed outputs (and the target's ancestors) equal a from-scratch run of the edited workflow.
          for (const law of [Laws.soundness]) assert.deepStrictEqual(law({ ...trial, replay: { snapshot: incremental.snapshot, executed }, fresh: { snapshot: fresh.snapshot, executed: [] } }), [])
        }),
        { numRuns: 120 }
      )
    ))

  /** Model handlers whose every call waits for the fast-check scheduler, counting calls in flight. */
  const scheduled = (s: fc.Scheduler) => {
    const counters = { active: 0, peak: 0, started: 0 }
    const handlers: Record<string, Handler.Handler> = {}
    for (const [type, inner] of Object.entries(modelHandlers())) {
      handlers[type] = (ctx) =>
        Effect.gen(function*() {
          counters.started++
          counters.active++
          counters.peak = Math.max(counters.peak, counters.active)
          yield* Effect.promise(() => s.schedule(Promise.resolve(ctx.node)))
          return yield* inner(ctx)
        }).pipe(Effect.ensuring(Effect.sync(() => counters.active--)))
    }
    return { counters, handlers }
  }

  const runtimeFor = (handlers: Record<string, Handler.Handler>, concurrency: number) =>
    ManagedRuntime.make(
      Runs.layer({ concurrency }).pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers)))
    )

  const wider = arbitraryWorkflow({ containers: false, maxMembers: 12 })

  it.effect("the concurrency bound is never exceeded, whatever the interleaving", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(wider, fc.integer({ min: 1, max: 4 }), fc.scheduler(), async (json, bound, s) => {
          const workflow = json as unknown as Workflow.Workflow
          const { counters, handlers } = scheduled(s)
          const runtime = runtimeFor(handlers, bound)
          const done = runtime.runPromise(Effect.gen(function*() {
            const runs = yield* Runs.Runs
            const { runId } = yield* runs.start(workflow, Laws.inputFor(workflow))
            return yield* runs.wait(runId)
          }))
          const status = await s.waitFor(done)
          await runtime.dispose()
          assert.include(["completed", "failed"], status)
          assert.isAtMost(counters.peak, bound)
          assert.strictEqual(counters.active, 0)
        }),
        { numRuns: 150 }
      )
    ))

  it.effect("after cancellation no handler is running and none starts", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(wider, fc.integer({ min: 1, max: 4 }), fc.nat({ max: 8 }), fc.scheduler(), async (json, bound, steps, s) => {
          const workflow = json as unknown as Workflow.Workflow
          const { counters, handlers } = scheduled(s)
          const runtime = runtimeFor(handlers, bound)
          const runId = await runtime.runPromise(Effect.flatMap(Runs.Runs, (runs) => runs.start(workflow, Laws.inputFor(workflow))).pipe(
            Effect.map((started) => started.runId)
          ))
          for (let i = 0; i < steps && s.count() > 0; i++) await s.waitOne()
          const cancelled = await runtime.runPromise(Effect.flatMap(Runs.Runs, (runs) => Effect.result(runs.cancel(runId))))
          const startedAtCancel = counters.started
          assert.strictEqual(counters.active, 0)
          await s.waitAll()
          await new Promise((resolve) => setTimeout(resolve, 0))
          assert.strictEqual(counters.started, startedAtCancel)
          const run = await runtime.runPromise(Effect.flatMap(RunStore.RunStore, (store) => store.getRun(runId)))
          // A run that finished before the cancel keeps its outcome; otherwise it is cancelled.
          assert.strictEqual(run.status === "cancelled", Result.isSuccess(cancelled))
          if (Result.isSuccess(cancelled)) {
            const snapshot = await runtime.runPromise(Effect.flatMap(RunStore.RunStore, (store) => store.snapshot(runId)))
            assert.strictEqual(snapshot.diagnostics.finalization, "cancelled")
          }
          await runtime.dispose()
        }),
        { numRuns: 150 }
      )
    ))
})
