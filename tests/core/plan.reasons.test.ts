/**
 * `Plan.reasonsOf` (issue 18): the reasons of one node, read from the plan's typed arrays, are the
 * ones the complete `diff` and its `scope` give (a run-from plan skips part of the diff to plan
 * faster and completes it node by node when asked), whatever order the nodes are asked in, and the
 * same as the `plan.reasons` record.
 */
import { assert, describe, it } from "@effect/vitest"
import { Dag, Fingerprint, Plan } from "@ripple/core"
import { Laws, Model } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryScenario } from "../helpers/scenario.ts"

const runs = { numRuns: 300 }

describe("Plan.reasonsOf", () => {
  it("gives each node the reasons of the complete diff and scope, in any order, as plan.reasons does", () => {
    fc.assert(
      fc.property(arbitraryScenario(), fc.nat(), (s, seed) => {
        const prior = Model.execute(s.before, { seed: s.seed ?? 0, input: Laws.inputFor(s.before), fingerprint: Fingerprint.hash })
        const options = { workflow: s.after, snapshot: prior.snapshot, target: s.target }
        const planned = Plan.runFrom(options)
        const other = Plan.runFrom(options)
        const prepared = Plan.prepare(options)
        if (Result.isFailure(planned) || Result.isFailure(other) || Result.isFailure(prepared)) return assert.fail("does not plan")
        const plan = planned.success
        const input = prepared.success
        const dag = input.dag
        const complete = Plan.diff(input)
        const scope = Plan.scope(input, Plan.prune(input, complete), complete)
        // Asked in a shuffled order, so a node's answer never depends on what was asked before.
        const ids = [...plan.rerun, ...plan.pruned, ...plan.reused]
        for (let k = ids.length - 1; k > 0; k--) {
          const j = (seed + k * 7919) % (k + 1)
          ;[ids[k], ids[j]] = [ids[j]!, ids[k]!]
        }
        for (const id of ids) {
          const reasons = Plan.reasonsOf(plan, id)
          assert.deepStrictEqual(reasons, other.success.reasons[id] ?? [], id)
          const i = Dag.indexOf(dag, id)!
          const tags = reasons.map((r) => r._tag)
          if (scope.rerun[i] === 0 && scope.pruned[i] === 0) {
            assert.deepStrictEqual(tags, [], id)
            continue
          }
          for (const tag of Plan.changesOf(complete, i)) assert.include(tags, tag, id)
          const cause = scope.cause[i]!
          if (cause >= 0 && cause !== i) assert.deepInclude(reasons, { _tag: "downstream", root: Dag.idOf(dag, cause) }, id)
          if (cause <= -2) assert.deepInclude(reasons, { _tag: "container-reset", container: Dag.nodeOf(dag, -2 - cause).id }, id)
          for (const reason of reasons) {
            if (reason._tag === "downstream") assert.strictEqual(reason.root, Dag.idOf(dag, cause), id)
          }
        }
        assert.deepStrictEqual(Plan.reasonsOf(plan, "no such node"), [])
      }),
      runs
    )
  })
})
