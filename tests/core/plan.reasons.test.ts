/**
 * `Plan.reasonsOf` (issue 18): the reasons of one node, read from the plan's typed arrays, are what
 * iterating `plan.reasons` gives for it (and what its JSON says), whatever order the nodes are asked
 * in; the view's keys are the re-run and pruned nodes; and every reason is checked
 * against the specification planner (`Spec`, written from DESIGN.md's definitions and sharing no
 * code with `Plan`), not against the planner's own diff:
 * - a reused node has no reason; a re-run or pruned node has at least one;
 * - its change reasons are the ones the specification's diff finds for it (where the
 *   specification diffs: not past the target), but that `inputs-changed` may go unsaid beside
 *   another change;
 * - `target` names the target; `downstream` names a root of the specification's scope (a changed
 *   node or the target) that reaches the node; `container-reset` a container that encloses it and
 *   re-runs (whole, or entered for some of its instances); a node that is neither changed nor the target is re-run or pruned only for one
 *   of those.
 */
import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, Plan, Snapshot, type Workflow } from "@ripple/core"
import { Laws, Model, Spec } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryScenario } from "../helpers/scenario.ts"

const runs = { numRuns: 300 }

const structural = new Set(["target", "downstream", "container-reset"])

describe("Plan.reasonsOf", () => {
  it("gives each node the reasons the specification planner implies, in any order, as iterating plan.reasons does", () => {
    fc.assert(
      fc.property(arbitraryScenario(), fc.nat(), (s, seed) => {
        const prior = Model.execute(s.before, { seed: s.seed ?? 0, input: Laws.inputFor(s.before), fingerprint: Fingerprint.hash })
        const options = { workflow: s.after, snapshot: prior.snapshot, target: s.target }
        const planned = Plan.runFrom(options)
        const other = Plan.runFrom(options)
        if (Result.isFailure(planned) || Result.isFailure(other)) return assert.fail("does not plan")
        const plan = planned.success
        const spec = Spec.specPlan(s.after, prior.snapshot, s.target)
        const structure = Model.structure(s.after)
        const target = s.target === undefined ? undefined : Model.entryNode(structure, s.target)
        // Where the specification diffs: every node reachable from a source without passing the target.
        const beyondTarget = target === undefined ? new Set<string>() : new Set([...Spec.downstreamOf(s.after, target)].filter((n) => n !== target))
        const downstream = new Map<string, ReadonlySet<string>>()
        const reaches = (root: string, node: string) => {
          let set = downstream.get(root)
          if (set === undefined) downstream.set(root, set = Spec.downstreamOf(s.after, root))
          return set.has(node)
        }
        // The other plan's view read whole (iterated); this one's asked node by node.
        const all = new Map(other.success.reasons)
        assert.strictEqual(other.success.reasons.size, all.size)
        assert.deepStrictEqual([...all.keys()].sort(), [...plan.rerun, ...plan.pruned].sort())
        assert.deepStrictEqual(JSON.parse(JSON.stringify(other.success)).reasons, JSON.parse(JSON.stringify(Object.fromEntries(all))))
        // Asked in a shuffled order, so a node's answer never depends on what was asked before.
        const ids = [...plan.rerun, ...plan.pruned, ...plan.reused]
        for (let k = ids.length - 1; k > 0; k--) {
          const j = (seed + k * 7919) % (k + 1)
          ;[ids[k], ids[j]] = [ids[j]!, ids[k]!]
        }
        for (const id of ids) {
          const reasons = Plan.reasonsOf(plan, id)
          assert.deepStrictEqual(reasons, all.get(id) ?? [], id)
          assert.strictEqual(plan.reasons.has(id), all.has(id), id)
          if (spec.reused.has(id)) {
            assert.deepStrictEqual(reasons, [], `${id} is reused: no reason`)
            continue
          }
          assert.isAbove(reasons.length, 0, `${id} re-runs or is pruned: a reason`)
          const tags = new Set(reasons.map((r) => r._tag))
          const changes: Array<string> = [...tags].filter((tag) => !structural.has(tag)).sort()
          const expected = [...(spec.changed.get(id) ?? [])].sort()
          // The specification's, but that `inputs-changed` may go unsaid beside another change (a
          // block whose definition changed is not resolved again to say so); past the target,
          // where the specification may not diff, more.
          if (!beyondTarget.has(id)) for (const tag of changes) assert.include(expected, tag, `${id}: change reasons`)
          const unsaid = expected.filter((tag) => !changes.includes(tag))
          assert.isTrue(
            unsaid.length === 0 || (unsaid.length === 1 && unsaid[0] === "inputs-changed" && changes.length > 0),
            `${id}: change reasons [${changes}] for [${expected}]`
          )
          assert.strictEqual(tags.has("target"), id === target, `${id}: target`)
          for (const reason of reasons) {
            if (reason._tag === "downstream") {
              assert.notStrictEqual(reason.root, id, `${id}: downstream of itself`)
              assert.isTrue(spec.changed.has(reason.root) || reason.root === target, `${id}: root ${reason.root} is a change or the target`)
              assert.isTrue(reaches(reason.root, id), `${id}: root ${reason.root} reaches it`)
            }
            if (reason._tag === "container-reset") {
              assert.include(Spec.enclosingOf(s.after, id), reason.container, `${id}: enclosed by ${reason.container}`)
              // Restarting whole (its start re-runs) or entered to re-run some instances (its end re-runs).
              const c = reason.container
              assert.isTrue(spec.rerun.has(`${c}#start`) || spec.rerun.has(`${c}#end`), `${id}: ${c} re-runs`)
            }
          }
          if (changes.length === 0 && id !== target) {
            assert.isTrue(tags.has("downstream") || tags.has("container-reset"), `${id}: unchanged, so downstream or reset`)
          }
        }
        assert.deepStrictEqual(Plan.reasonsOf(plan, "no such node"), [])
      }),
      runs
    )
  })

  it("explains a run-from plan with thousands of roots as on a small one, read whole or node by node", () => {
    // A chain b0 -> b1 -> ... with every third block edited, run from a sink t of b0: past 4096
    // roots, checked blocks and causes, the explainer keeps its answers in arrays instead of maps;
    // they must not change.
    const n = 15_000
    const blocks: Array<Workflow.Block> = [{ id: "b0", type: "trigger" }, { id: "t", type: "fn" }]
    const edges: Array<Workflow.Edge> = [{ source: "b0", target: "t" }]
    for (let i = 1; i < n; i++) {
      blocks.push({ id: `b${i}`, type: "fn", params: { k: i } })
      edges.push({ source: `b${i - 1}`, target: `b${i}` })
    }
    const before: Workflow.Workflow = { id: "chain", blocks, edges }
    const nodes: Record<string, Snapshot.NodeRecord> = {}
    for (const block of blocks) {
      const fingerprints = { definition: Fingerprint.ofBlock(block), inputs: Fingerprint.hash({}), output: Fingerprint.hash({}) }
      nodes[block.id] = { status: "completed", attempt: 1, inputs: {}, output: {}, fingerprints }
    }
    const snapshot: Snapshot.Snapshot = { ...Snapshot.empty(before), status: "completed", nodes }
    const after: Workflow.Workflow = {
      ...before,
      blocks: blocks.map((b) => (b.params !== undefined && (b.params["k"] as number) % 3 === 1 ? { ...b, params: { ...b.params, edited: true } } : b))
    }
    // Each edited block is a root of its own; the two after it are downstream of it; b0 is reused.
    const expected = new Map<string, ReadonlyArray<Plan.Reason>>([["t", [{ _tag: "target" }]]])
    for (let i = 1; i < n; i++) {
      const root = i - ((i - 1) % 3)
      expected.set(`b${i}`, root === i ? [{ _tag: "definition-changed" }] : [{ _tag: "downstream", root: `b${root}` }])
    }
    const plan = () => Result.getOrThrow(Plan.runFrom({ workflow: after, snapshot, target: "t" }))
    assert.deepStrictEqual(new Map(plan().reasons), expected)
    const one = plan()
    for (let i = n - 1; i >= 0; i--) assert.deepStrictEqual(Plan.reasonsOf(one, `b${i}`), expected.get(`b${i}`) ?? [], `b${i}`)
  })

  it("plan.reasons is a map view: deep equality compares its entries", () => {
    const workflow: Workflow.Workflow = {
      id: "w",
      blocks: [{ id: "a", type: "trigger" }, { id: "b", type: "fn" }],
      edges: [{ source: "a", target: "b" }]
    }
    const all = Result.getOrThrow(Plan.full(workflow))
    const again = Result.getOrThrow(Plan.full(workflow))
    const toA = Result.getOrThrow(Plan.full(workflow, { to: "a" }))
    assert.deepStrictEqual(all.reasons, again.reasons)
    assert.deepStrictEqual([...all.reasons.keys()], ["a", "b"])
    assert.deepStrictEqual([...toA.reasons.keys()], ["a", "b"])
    // The same keys, but pruned, b is also downstream of a.
    assert.deepStrictEqual(toA.reasons.get("b"), [{ _tag: "missing-prior-state" }, { _tag: "downstream", root: "a" }])
    assert.notDeepEqual(all.reasons, toA.reasons)
    assert.notDeepEqual(all.reasons, new Map())
  })
})
