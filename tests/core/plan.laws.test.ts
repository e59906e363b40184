import { assert, describe, it } from "@effect/vitest"
import { Laws } from "@ripple/core/testing"
import * as fc from "fast-check"
import { arbitraryScenario } from "../helpers/scenario.ts"

const runs = { numRuns: 1000 }

describe("Plan.runFrom laws (random workflows, edits and targets)", () => {
  for (const [name, law] of Object.entries(Laws.all)) {
    it(name, () => {
      fc.assert(
        fc.property(arbitraryScenario(), (scenario) => {
          assert.deepStrictEqual(law(Laws.trial(scenario)), [])
        }),
        runs
      )
    })
  }
})
