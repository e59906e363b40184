/**
 * Scenarios for the planner properties: a random valid workflow, random edits of it, a random
 * target among the blocks and containers of the edited workflow, and a seed for the block functions.
 */
import { Workflow } from "@ripple/core"
import { Edits, type Laws } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryWorkflow, type WorkflowOptions } from "../arbitraries/workflow.ts"

/** A scenario plus the edits that produced `after` from `before`. */
export interface EditedScenario extends Laws.Scenario {
  readonly edits: ReadonlyArray<Edits.Edit>
}

/** Blocks and containers: the possible targets. */
export const targetsOf = (workflow: Workflow.Workflow): ReadonlyArray<string> => [
  ...workflow.blocks.map((b) => b.id),
  ...(workflow.loops ?? []).map((l) => l.id),
  ...(workflow.parallels ?? []).map((p) => p.id)
]

/** Options of `arbitraryScenario`. */
export interface ScenarioOptions extends WorkflowOptions {
  readonly kinds?: ReadonlyArray<Edits.Kind>
  readonly maxEdits?: number
}

/** Random scenarios whose edited workflow is valid. */
export const arbitraryScenario = (options: ScenarioOptions = {}): fc.Arbitrary<EditedScenario> => {
  const { kinds, maxEdits, ...workflowOptions } = options
  const edits = Edits.arbitraryEdits({ ...(kinds === undefined ? {} : { kinds }), maxLength: maxEdits ?? 3 })
  return fc
    // The workflow goes last: fast-check 4.10 clones a tuple holding an fc.gen() value (as the workflow
    // arbitrary is) only up to its last cloneable element, dropping what follows.
    .tuple(edits, fc.nat({ max: 1000 }), fc.nat({ max: 3 }), arbitraryWorkflow(workflowOptions))
    .map(([drawn, pick, seed, json]) => {
      const before = JSON.parse(JSON.stringify(json)) as Workflow.Workflow
      const after = Edits.apply(before, drawn)
      const targets = targetsOf(after)
      return { before, after, edits: drawn, target: targets[pick % targets.length]!, seed }
    })
    .filter((scenario) => Result.isSuccess(Workflow.decode(scenario.after)))
}
