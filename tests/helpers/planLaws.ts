/**
 * The planner's laws and its agreement with the specification planner, as `it` blocks over any
 * scenario arbitrary (destinations, disabled blocks and pins included): shared by the run-from
 * property files of issue 16.
 */
import { assert, it } from "@effect/vitest"
import { Fingerprint, Plan } from "@ripple/core"
import { type Arbitraries, Laws, Model, Spec } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"

const sorted = (values: Iterable<string>) => [...values].sort()

/** One `it` per law of `Laws.all`, each over `scenarios`. */
export const everyLaw = (scenarios: fc.Arbitrary<Arbitraries.EditedScenario>, runs: fc.Parameters<unknown>): void => {
  for (const [name, law] of Object.entries(Laws.all)) {
    it(name, () => {
      fc.assert(fc.property(scenarios, (scenario) => assert.deepStrictEqual(law(Laws.trial(scenario)), [])), runs)
    })
  }
}

/**
 * An `it` checking that the plan re-runs and prunes what `Spec.specPlan` does, over `scenarios`;
 * with `targetless`, half the plans drop the target (a run to the scenario's destination only).
 */
export const agreesWithSpec = (
  scenarios: fc.Arbitrary<Arbitraries.EditedScenario>,
  runs: fc.Parameters<unknown>,
  options: { readonly targetless?: boolean } = {}
): void => {
  it("agrees with the specification planner", () => {
    fc.assert(
      fc.property(scenarios, fc.boolean(), (s, keep) => {
        const target = keep || options.targetless !== true || s.to === undefined ? s.target : undefined
        const prior = Model.execute(s.before, { seed: s.seed ?? 0, input: Laws.inputFor(s.before), fingerprint: Fingerprint.hash })
        const planned = target === undefined
          ? Plan.runFrom({ workflow: s.after, snapshot: prior.snapshot, to: s.to!, pins: s.pins })
          : Plan.runFrom({ workflow: s.after, snapshot: prior.snapshot, target, to: s.to, pins: s.pins })
        const plan = Result.getOrThrow(planned)
        const spec = Spec.specPlan(s.after, prior.snapshot, target, s.to, s.pins)
        assert.deepStrictEqual(sorted(plan.rerun), sorted(spec.rerun), "rerun")
        assert.deepStrictEqual(sorted(plan.pruned), sorted(spec.pruned), "pruned")
        assert.deepStrictEqual(sorted(plan.start), sorted(spec.start), "start")
        assert.deepStrictEqual(sorted(Object.keys(plan.state.nodes)), sorted(spec.kept), "kept instances")
      }),
      runs
    )
  })
}
