/**
 * A run from a block with a new run input (`Plan.Options.input`). DESIGN.md, diff: a node is changed
 * when "its resolved inputs (references resolved against the hydrated snapshot) hash differently from
 * the snapshot's" — the hydrated snapshot carries the new input, so a block reading a changed key
 * re-runs, and so does a trigger, whose output is the run input (and what reads that output). Checked by soundness alone (the specification planner takes no input): executing the plan
 * over the prior snapshot gives what a from-scratch run with the new input gives on every ancestor of
 * an observed output.
 */
import { assert, describe, it } from "@effect/vitest"
import { Dag, Fingerprint, Plan } from "@ripple/core"
import type { Workflow } from "@ripple/core"
import { Laws, Model } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryScenario } from "../helpers/scenario.ts"

const runs = { numRuns: 1000 }

// Another value of the same JSON type as `Laws.inputFor` gives (a declared default of any type too).
const another = (value: Workflow.Json): Workflow.Json =>
  typeof value === "string" ? `${value}'` :
  typeof value === "number" ? value + 1 :
  typeof value === "boolean" ? !value :
  Array.isArray(value) ? [...value, "more"] :
  value === null ? "set" :
  { ...value, changed: true }

describe("Plan.runFrom with a changed run input", () => {
  it("is sound: the blocks reading a changed key re-run, and the plan's run matches a from-scratch run", () => {
    let changedSome = 0
    fc.assert(
      fc.property(arbitraryScenario(), fc.nat(), (s, mask) => {
        const seed = s.seed ?? 0
        const before = Laws.inputFor(s.before)
        const prior = Model.execute(s.before, { seed, input: before, fingerprint: Fingerprint.hash })
        const keys = Object.keys(Laws.inputFor(s.after))
        const input = Object.fromEntries(keys.map((k, b) => {
          const old = before[k] ?? Laws.inputFor(s.after)[k]!
          return [k, ((mask >> (b % 30)) & 1) === 1 ? another(old) : old]
        }))
        if (keys.some((k) => !Model.identical(input[k], before[k]))) changedSome++
        const planned = Plan.runFrom({ workflow: s.after, snapshot: prior.snapshot, target: s.target, input })
        if (Result.isFailure(planned)) return assert.fail(planned.failure.message)
        const plan = planned.success
        const replay = Model.execute(s.after, { seed, fingerprint: Fingerprint.hash }, Laws.replayOf(plan))
        const fresh = Model.execute(s.after, { seed, input, fingerprint: Fingerprint.hash })
        const trial: Laws.Trial = { scenario: s, prior, plan, replay, fresh, dag: Dag.make(s.after) }
        assert.deepStrictEqual(Laws.soundness(trial), [])
      }),
      runs
    )
    // The property is about changed inputs: most runs must change one.
    assert.isAbove(changedSome, runs.numRuns / 4)
  })
})
