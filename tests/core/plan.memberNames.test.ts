/**
 * A block's name never meets what every object inherits: a snapshot keys its node records by id,
 * and `nodes["constructor"]` of a snapshot without that record is `Object`, not "no record". A
 * block named `constructor`, `toString`, ... that has no prior record (its run was pruned to
 * another block, or failed before it) is planned exactly as the same block under a plain name:
 * `missing-prior-state`, not `incomplete`; and a failure its prior run pruned is still reported
 * when the plan prunes the block again (run to another block).
 */
import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, Plan, Snapshot, type Workflow } from "@ripple/core"
import * as Result from "effect/Result"
import * as fc from "fast-check"

const members = ["constructor", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf", "toLocaleString", "__defineGetter__", "__lookupSetter__"]

/** `start → <id>`, `start → a`: `a` is the target, `<id>` had no record in the prior run. */
const workflow = (id: string): Workflow.Workflow => ({
  id: "members",
  blocks: [{ id: "start", type: "trigger" }, { id, type: "value", params: { value: 1 } }, { id: "a", type: "value", params: { value: 2 } }],
  edges: [{ source: "start", target: id }, { source: "start", target: "a" }]
})

const completed = (block: Workflow.Block, output: Workflow.Json): Snapshot.NodeRecord => ({
  status: "completed",
  inputs: block.params ?? {},
  output,
  fingerprints: { definition: Fingerprint.ofBlock(block), inputs: Fingerprint.hash(block.params ?? {}), output: Fingerprint.hash(output) },
  attempt: 1
})

/** The prior run: `start` and `a` completed, `<id>` not run (and, with `failed`, reported as a pruned failure). */
const prior = (id: string, failed: boolean): Snapshot.Snapshot => {
  const w = workflow(id)
  return {
    ...Snapshot.empty(w),
    runId: "prior",
    status: "completed",
    nodes: { start: completed(w.blocks[0]!, {}), a: completed(w.blocks[2]!, 2) },
    ...(failed ? { pruned: { count: 1, failed: [{ node: id, run: "older" }] } } : {})
  }
}

const planned = (id: string, failed: boolean, to: boolean) => {
  const plan = Plan.runFrom({ workflow: workflow(id), snapshot: prior(id, failed), target: "a", ...(to ? { to: "a" } : {}) })
  if (Result.isFailure(plan)) return assert.fail(`${id}: does not plan (${plan.failure._tag})`)
  const rename = (node: string) => (node === id ? "<id>" : node)
  return JSON.stringify({
    rerun: plan.success.rerun.map(rename),
    reused: plan.success.reused.map(rename),
    reasons: [...plan.success.reasons].map(([node, reasons]) => [rename(node), reasons]),
    prunedFailed: plan.success.prunedFailed.map((f) => ({ ...f, node: rename(f.node) })),
    hydrated: Object.keys(plan.success.state.nodes).map(rename).sort()
  })
}

describe("Plan.runFrom: blocks named like Object members", () => {
  it("plans a block named constructor, toString, ... with no prior record as under a plain name", () => {
    fc.assert(fc.property(fc.constantFrom(...members), fc.boolean(), fc.boolean(), (id, failed, to) => {
      assert.strictEqual(planned(id, failed, to), planned("plain", failed, to), id)
    }), { numRuns: 40 })
    assert.include(planned("plain", false, false), "missing-prior-state")
    assert.include(planned("plain", true, true), "older")
  })
})
