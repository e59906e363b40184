/**
 * Run-from beyond re-running (issue 16) on the engine: random workflows with disabled blocks (and
 * toggles of them), random targets and destinations; the engine must agree with the reference
 * executor (`Model`) and its plans with a from-scratch run, as the planner's laws say.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Arbitraries, Laws, Model } from "@ripple/core/testing"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fc from "fast-check"
import { assertFullRunIsModel, executedIn, runOnEngine, SEED, withModel } from "./model.ts"

const scenarios = fc.oneof(
  Arbitraries.arbitraryScenario({ disabled: true, maxMembers: 5 }),
  Arbitraries.arbitraryScenario({ disabled: true, destination: true, maxMembers: 5 }),
  Arbitraries.arbitraryScenario({ pins: true, destination: true, maxMembers: 5 })
)

describe("Engine with disabled blocks and destinations", () => {
  it.effect("a full run with disabled blocks equals the reference executor, instance by instance", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(Arbitraries.arbitraryWorkflow({ disabled: true, maxMembers: 5 }), (json) => assertFullRunIsModel(json as unknown as Workflow.Workflow)),
        { numRuns: 100 }
      )
    ))

  it.effect("runFrom (destinations with or without a target, pins) equals a full run with the same pins on what is observed and executes what the reference executor does", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(scenarios, fc.boolean(), async (scenario, keep) => {
          const { after, before, pins, to } = scenario
          // Half the runs to a destination name no target: only what changed re-runs.
          const target = keep || to === undefined ? scenario.target : undefined
          const trial = Laws.trial({ before, after, target, to, pins, seed: SEED })
          const input = Laws.inputFor(before)
          const outcome = await Effect.runPromise(withModel((current) =>
            Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const prior = yield* runOnEngine(current, runs.start(before, input), before)
              const run = yield* runOnEngine(current, runs.runFrom(after, { target, to, pins, run: prior.started.runId }), after)
              const fresh = yield* runOnEngine(current, runs.start(after, prior.snapshot.input, { pins }), after)
              return { run, fresh }
            }), { cutoff: false }))
          const law = Laws.soundness({
            ...trial,
            replay: { snapshot: outcome.run.snapshot, executed: executedIn(outcome.run.snapshot) },
            fresh: { snapshot: outcome.fresh.snapshot, executed: [] }
          })
          assert.deepStrictEqual(law, [])
          // The model lists a container whose start failed (items not an array) by its start alone;
          // the engine records its end failed too.
          const failedEnd = (key: string) => key.includes("#end") && outcome.run.snapshot.nodes[key]?.status === "failed"
          // A pinned instance is written, not executed: the engine records it completed all the same.
          const pinned = (key: string) => pins?.[key] !== undefined || pins?.[Model.nodeOfKey(key)] !== undefined
          assert.deepStrictEqual(
            executedIn(outcome.run.snapshot).filter((key) => !failedEnd(key) && !pinned(key)).sort(),
            [...new Set(trial.replay.executed)].filter((key) => !failedEnd(key)).sort()
          )
        }),
        { numRuns: 100 }
      )
    ))

  it.effect("a disabled approval does not pause, a disabled block needs no handler, and a disabled sink is skipped", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const workflow: Workflow.Workflow = {
        id: "disabled",
        blocks: [
          { id: "start", type: "trigger" },
          { id: "gate", type: "approval", disabled: true },
          { id: "paid", type: "paid-api", params: { prompt: "costly" }, disabled: true },
          { id: "done", type: "template", params: { template: "{{x}}", values: { x: { $ref: "blocks.paid.output.topic" } } } },
          { id: "audit", type: "paid-api", disabled: true }
        ],
        edges: [
          { source: "start", target: "gate" },
          { source: "gate", target: "paid" },
          { source: "paid", target: "done" },
          { source: "done", target: "audit" }
        ],
        inputs: { topic: { type: "string" } }
      }
      const started = yield* runs.start(workflow, { topic: "ripple" })
      assert.strictEqual(yield* runs.wait(started.runId), "completed")
      const nodes = (yield* RunStore.RunStore.use((store) => store.snapshot(started.runId))).nodes
      assert.deepStrictEqual(nodes["paid"]?.output, { topic: "ripple" })
      assert.deepStrictEqual(nodes["done"]?.output, "ripple")
      assert.strictEqual(nodes["audit"]?.status, "skipped")
    }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer({}))))))

  it.effect("a disabled block passes its input on without calling the handler its type has", () =>
    Effect.gen(function*() {
      let calls = 0
      const handlers = Handler.layer({
        "paid-api": () =>
          Effect.sync(() => {
            calls++
            return { charged: true }
          })
      })
      const workflow: Workflow.Workflow = {
        id: "disabled-handled",
        blocks: [
          { id: "start", type: "trigger" },
          { id: "paid", type: "paid-api", params: { prompt: "costly" }, disabled: true },
          { id: "done", type: "template", params: { template: "{{x}}", values: { x: { $ref: "blocks.paid.output.topic" } } } }
        ],
        edges: [{ source: "start", target: "paid" }, { source: "paid", target: "done" }],
        inputs: { topic: { type: "string" } }
      }
      const nodes = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const started = yield* runs.start(workflow, { topic: "ripple" })
        assert.strictEqual(yield* runs.wait(started.runId), "completed")
        return (yield* RunStore.RunStore.use((store) => store.snapshot(started.runId))).nodes
      }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(handlers))))
      assert.strictEqual(calls, 0)
      assert.deepStrictEqual(nodes["paid"]?.output, { topic: "ripple" })
      assert.deepStrictEqual(nodes["done"]?.output, "ripple")
    }))
})
