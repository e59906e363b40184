import { assert, describe, it } from "@effect/vitest"
import { Workflow } from "@ripple/core"
import { Arbitraries, Laws } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
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

describe("Plan.runFrom laws on the example workflows (the @ripple/core/testing recipe)", () => {
  const examples = ["content-pipeline", "support-triage"].map((name) => {
    const file = fileURLToPath(new URL(`../../examples/${name}.json`, import.meta.url))
    return Result.getOrThrow(Workflow.decode(JSON.parse(readFileSync(file, "utf8"))))
  })
  for (const workflow of examples) {
    it(workflow.id, () => {
      fc.assert(
        fc.property(Arbitraries.arbitraryScenario({}, fc.constant(workflow)), (scenario) => {
          const trial = Laws.trial(scenario)
          for (const [name, law] of Object.entries(Laws.all)) assert.deepStrictEqual(law(trial), [], name)
        }),
        runs
      )
    })
  }
})
