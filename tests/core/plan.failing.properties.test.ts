import { describe } from "@effect/vitest"
import { Arbitraries } from "@ripple/core/testing"
import * as fc from "fast-check"
import { agreesWithSpec, everyLaw } from "../helpers/planLaws.ts"

// Prior runs that failed somewhere (`fail` blocks): a failed node is changed (`failed-last-time`) and
// what follows it re-runs. The other core property files never generate a failure, so a planner
// taking a failed record for a finished one broke only the comparison with the specification there;
// here it breaks soundness too. Each run plays a prior run, a plan, its execution and a from-scratch
// run with the model, with and without a destination.
describe("Plan.runFrom laws over prior runs that failed", () => {
  const scenarios = fc.boolean().chain((destination) => Arbitraries.arbitraryScenario({ failing: true, destination }))
  everyLaw(scenarios, { numRuns: 1000 })
  agreesWithSpec(scenarios, { numRuns: 1000 }, { targetless: true })
})
