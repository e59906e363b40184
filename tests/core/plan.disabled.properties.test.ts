import { describe } from "@effect/vitest"
import { Arbitraries } from "@ripple/core/testing"
import * as fc from "fast-check"
import { agreesWithSpec, everyLaw } from "../helpers/planLaws.ts"

// Each run plays a prior run, a plan, its execution and a from-scratch run with the model: a few
// milliseconds, like plan.laws.test.ts.
const runs = { numRuns: 1000 }

// Workflows with disabled blocks (pass-throughs and skipped sinks), a block disabled or enabled by
// the edit besides the others, with and without a destination.
const scenarios = fc.oneof(
  Arbitraries.arbitraryScenario({ disabled: true }),
  Arbitraries.arbitraryScenario({ disabled: true, destination: true })
)

describe("Plan.runFrom laws with disabled blocks", () => {
  everyLaw(scenarios, runs)
  agreesWithSpec(scenarios, runs)
})
