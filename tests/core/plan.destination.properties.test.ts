import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, Plan, Snapshot } from "@ripple/core"
import { Arbitraries, Laws, Model, Spec } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { agreesWithSpec, everyLaw } from "../helpers/planLaws.ts"

// Each run plays a prior run, a plan, its execution and a from-scratch run with the model: a few
// milliseconds, like plan.laws.test.ts.
const runs = { numRuns: 1000 }

const sorted = (values: Iterable<string>) => [...values].sort()

describe("Plan.runFrom to a block (random workflows, edits, targets and destinations)", () => {
  const scenarios = Arbitraries.arbitraryScenario({ destination: true })
  everyLaw(scenarios, runs)
  agreesWithSpec(scenarios, runs, { targetless: true })

  it("refuses a destination exactly when it does not depend on the target", () => {
    fc.assert(
      fc.property(Arbitraries.arbitraryScenario(), fc.nat(), (s, pick) => {
        const targets = Arbitraries.targetsOf(s.after)
        const to = targets[pick % targets.length]!
        const planned = Plan.runFrom({ workflow: s.after, target: s.target, to })
        const depends = Spec.neededBy(s.after, undefined, to).has(Model.entryNode(Model.structure(s.after), s.target))
        assert.strictEqual(Result.isSuccess(planned), depends)
        if (Result.isFailure(planned)) assert.strictEqual(planned.failure._tag, "DestinationNotDownstream")
      }),
      runs
    )
  })
})

describe("Plan.runFrom without a snapshot (one rule with Snapshot.empty)", () => {
  it("plans as over Snapshot.empty, as the specification does, and executes only what is observed", () => {
    fc.assert(
      fc.property(Arbitraries.arbitraryScenario({ destination: true }), fc.boolean(), (s, toBlock) => {
        const to = toBlock ? s.to : undefined
        const plan = Result.getOrThrow(Plan.runFrom({ workflow: s.after, target: s.target, to }))
        const overEmpty = Result.getOrThrow(Plan.runFrom({ workflow: s.after, snapshot: Snapshot.empty(s.after), target: s.target, to }))
        assert.deepStrictEqual([plan.rerun, plan.reused, plan.pruned], [overEmpty.rerun, overEmpty.reused, overEmpty.pruned])
        const spec = Spec.specPlan(s.after, undefined, s.target, to)
        assert.deepStrictEqual(sorted(plan.rerun), sorted(spec.rerun), "rerun")
        assert.deepStrictEqual(sorted(plan.pruned), sorted(spec.pruned), "pruned")
        // Executing it over nothing leaves, on what is observed, what a full run leaves.
        const options = { seed: s.seed ?? 0, fingerprint: Fingerprint.hash }
        const input = Laws.inputFor(s.after)
        const replay = Model.execute(s.after, options, Laws.replayOf({ ...plan, state: { ...plan.state, input } }))
        const fresh = Model.execute(s.after, { ...options, input })
        const needed = Spec.neededBy(s.after, s.target, to)
        for (const [key, record] of Object.entries(fresh.snapshot.nodes)) {
          if (!needed.has(Model.nodeOfKey(key))) continue
          const replayed = replay.snapshot.nodes[key]
          assert.deepStrictEqual([replayed?.status, replayed?.decision], [record.status, record.decision], key)
          assert.isTrue(Model.identical(replayed?.output, record.output), key)
        }
      }),
      runs
    )
  })
})
