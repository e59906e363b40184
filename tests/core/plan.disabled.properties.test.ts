import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, Plan } from "@ripple/core"
import { Arbitraries, Laws, Model, Spec } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"

// Each run plays a prior run, a plan, its execution and a from-scratch run with the model: a few
// milliseconds, like plan.laws.test.ts.
const runs = { numRuns: 300 }

const sorted = (values: Iterable<string>) => [...values].sort()

// Workflows with disabled blocks (pass-throughs and skipped sinks), a block disabled or enabled by
// the edit besides the others, with and without a destination.
const scenarios = fc.oneof(
  Arbitraries.arbitraryScenario({ disabled: true }),
  Arbitraries.arbitraryScenario({ disabled: true, destination: true })
)

describe("Plan.runFrom laws with disabled blocks", () => {
  for (const [name, law] of Object.entries(Laws.all)) {
    it(name, () => {
      fc.assert(fc.property(scenarios, (scenario) => assert.deepStrictEqual(law(Laws.trial(scenario)), [])), runs)
    })
  }

  it("agrees with the specification planner", () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        const prior = Model.execute(s.before, { seed: s.seed ?? 0, input: Laws.inputFor(s.before), fingerprint: Fingerprint.hash })
        const plan = Result.getOrThrow(Plan.runFrom({ workflow: s.after, snapshot: prior.snapshot, target: s.target, to: s.to }))
        const spec = Spec.specPlan(s.after, prior.snapshot, s.target, s.to)
        assert.deepStrictEqual(sorted(plan.rerun), sorted(spec.rerun), "rerun")
        assert.deepStrictEqual(sorted(plan.pruned), sorted(spec.pruned), "pruned")
      }),
      runs
    )
  })
})
