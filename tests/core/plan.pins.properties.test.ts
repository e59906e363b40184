import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, Plan } from "@ripple/core"
import { Arbitraries, Laws, Model } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { agreesWithSpec, everyLaw } from "../helpers/planLaws.ts"

// Each run plays a prior run, a plan, its execution and a from-scratch run with the model: a few
// milliseconds, like plan.laws.test.ts.
const runs = { numRuns: 1000 }

const scenarios = fc.oneof(
  Arbitraries.arbitraryScenario({ pins: true }),
  Arbitraries.arbitraryScenario({ pins: true, disabled: true, destination: true })
)

describe("Plan.runFrom laws with pinned outputs (the full run has the same pins)", () => {
  everyLaw(scenarios, runs)
  agreesWithSpec(scenarios, runs)

  it("a pin equal to the prior output changes nothing; a different one re-runs the block (reason pinned) and what needs it", () => {
    fc.assert(
      fc.property(Arbitraries.arbitraryScenario(), fc.nat(), (s, pick) => {
        const workflow = s.before
        const prior = Model.execute(workflow, { seed: s.seed ?? 0, input: Laws.inputFor(workflow), fingerprint: Fingerprint.hash })
        const top = Model.structure(workflow)
        const candidates = workflow.blocks.filter((b) =>
          Model.chainOf(top, b.id).length === 0 && b.volatile !== true && b.type !== "router" && b.type !== "condition" &&
          prior.snapshot.nodes[b.id]?.status === "completed" &&
          Object.values(prior.snapshot.nodes).every((r) => r.status === "completed" || r.status === "skipped")
        )
        fc.pre(candidates.length > 0)
        const block = candidates[pick % candidates.length]!.id
        const same = prior.snapshot.nodes[block]!.output!
        const volatile = workflow.blocks.some((b) => b.volatile === true)
        fc.pre(!volatile)
        const kept = Result.getOrThrow(Plan.runFrom({ workflow, snapshot: prior.snapshot, to: block, pins: { [block]: same } }))
        assert.deepStrictEqual(kept.rerun, [])
        const changed = Result.getOrThrow(Plan.runFrom({ workflow, snapshot: prior.snapshot, to: block, pins: { [block]: { pinned: same } } }))
        assert.deepStrictEqual(changed.rerun, [block])
        assert.deepStrictEqual(changed.reasons.get(block), [{ _tag: "pinned" }])
      }),
      runs
    )
  })
})
