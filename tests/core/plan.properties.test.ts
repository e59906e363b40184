import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, Plan } from "@ripple/core"
import type { Workflow } from "@ripple/core"
import { Edits, Laws, Model } from "@ripple/core/testing"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryScenario, targetsOf } from "../helpers/scenario.ts"
import { specPlan } from "../helpers/specPlanner.ts"

const runs = { numRuns: 1000 }

const planOf = (workflow: Workflow.Workflow, snapshot: Model.Execution["snapshot"], target: string): Plan.Plan => {
  const planned = Plan.runFrom({ workflow, snapshot, target })
  if (Result.isFailure(planned)) throw new Error(planned.failure.message)
  return planned.success
}

const sorted = (values: Iterable<string>) => [...values].sort()

const branchesOf = (plan: Plan.Plan) =>
  Object.fromEntries(
    plan.resets.flatMap((r) => (r._tag === "parallel" && r.branches !== "all" ? [[r.container, [...r.branches]]] : []))
  )

/** Deep copy with every object's keys in reverse order. */
// Reverses the keys of the workflow's structure, not of the values it holds: params, variables,
// items and conditions reach handlers as they are written, key order included.
const reverseKeys = (json: object): object =>
  Object.fromEntries(Object.keys(json).reverse().map((k) => [k, (json as Record<string, unknown>)[k]]))

const reverseStructure = (w: Workflow.Workflow): Workflow.Workflow => ({
  ...reverseKeys({
    ...w,
    blocks: w.blocks.map(reverseKeys),
    edges: w.edges.map(reverseKeys),
    loops: (w.loops ?? []).map(reverseKeys),
    parallels: (w.parallels ?? []).map(reverseKeys)
  })
}) as Workflow.Workflow

const shuffled = <A>(values: ReadonlyArray<A>, seed: number): Array<A> => {
  const out = [...values]
  let state = seed + 1
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2147483648
    const j = state % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

describe("Plan.runFrom properties", () => {
  it("agrees with the specification planner (rerun, reused, pruned, start, kept instances, whole restarts, branch resets)", () => {
    fc.assert(
      fc.property(arbitraryScenario(), (s) => {
        const prior = Model.execute(s.before, { seed: s.seed ?? 0, input: Laws.inputFor(s.before), fingerprint: Fingerprint.hash })
        const plan = planOf(s.after, prior.snapshot, s.target)
        const spec = specPlan(s.after, prior.snapshot, s.target)
        assert.deepStrictEqual(sorted(plan.rerun), sorted(spec.rerun), "rerun")
        assert.deepStrictEqual(sorted(plan.pruned), sorted(spec.pruned), "pruned")
        assert.deepStrictEqual(sorted(plan.reused), sorted(spec.reused), "reused")
        assert.deepStrictEqual(sorted(plan.start), sorted(spec.start), "start")
        assert.deepStrictEqual(sorted(Object.keys(plan.state.nodes)), sorted(spec.kept), "kept instances")
        assert.deepStrictEqual(sorted(plan.resets.filter((r) => r.restart === "whole").map((r) => r.container)), sorted(spec.whole), "whole restarts")
        assert.deepStrictEqual(
          branchesOf(plan),
          Object.fromEntries([...spec.branches].map(([c, b]) => [c, [...b].sort((x, y) => x - y)]))
        )
      }),
      runs
    )
  })

  it("is monotone in the change set: more edits never re-run fewer of the nodes both plans know", () => {
    fc.assert(
      fc.property(
        arbitraryScenario({ kinds: ["params", "volatile", "variable"], maxEdits: 4 }),
        fc.nat(),
        (s, cut) => {
          fc.pre(s.edits.every((e) => e._tag !== "volatile" || e.value))
          const prior = Model.execute(s.before, { seed: s.seed ?? 0, input: Laws.inputFor(s.before), fingerprint: Fingerprint.hash })
          const fewer = Edits.apply(s.before, s.edits.slice(0, cut % (s.edits.length + 1)))
          const small = new Set(planOf(fewer, prior.snapshot, s.target).rerun)
          const large = new Set(planOf(s.after, prior.snapshot, s.target).rerun)
          for (const id of small) assert.isTrue(large.has(id), `${id} re-runs with fewer edits only`)
        }
      ),
      runs
    )
  })

  it("is deterministic under shuffled blocks, edges, containers and object keys", () => {
    fc.assert(
      fc.property(arbitraryScenario(), fc.nat(), (s, seed) => {
        const prior = Model.execute(s.before, { seed: s.seed ?? 0, input: Laws.inputFor(s.before), fingerprint: Fingerprint.hash })
        const plan = planOf(s.after, prior.snapshot, s.target)
        const shuffle = (w: Workflow.Workflow) =>
          reverseStructure({
            ...w,
            blocks: shuffled(w.blocks, seed),
            edges: shuffled(w.edges, seed + 1),
            loops: shuffled(w.loops ?? [], seed + 2),
            parallels: shuffled(w.parallels ?? [], seed + 3)
          })
        const snapshot = { ...prior.snapshot, workflow: shuffle(prior.snapshot.workflow) }
        const other = planOf(shuffle(s.after), snapshot, s.target)
        assert.deepStrictEqual(sorted(other.rerun), sorted(plan.rerun))
        assert.deepStrictEqual(sorted(other.reused), sorted(plan.reused))
        assert.deepStrictEqual(sorted(other.pruned), sorted(plan.pruned))
        assert.deepStrictEqual(sorted(other.start), sorted(plan.start))
        assert.deepStrictEqual(branchesOf(other), branchesOf(plan))
        const tags = (p: Plan.Plan) =>
          Object.fromEntries(Array.from(p.reasons, ([id, rs]) => [id, sorted(new Set(rs.map((r) => r._tag)))]))
        assert.deepStrictEqual(tags(other), tags(plan))
        assert.deepStrictEqual(Object.keys(other.state.nodes).sort(), Object.keys(plan.state.nodes).sort())
      }),
      runs
    )
  })

  it("full plans re-run every node and agree with a from-scratch run", () => {
    fc.assert(
      fc.property(arbitraryScenario({ maxEdits: 1 }), (s) => {
        const planned = Plan.full(s.after)
        assert.isTrue(Result.isSuccess(planned))
        if (Result.isFailure(planned)) return
        const plan = planned.success
        assert.deepStrictEqual(plan.reused, [])
        assert.strictEqual(plan.rerun.length, plan.rerun.length + plan.pruned.length)
        for (const id of plan.rerun) assert.deepStrictEqual(plan.reasons.get(id), [{ _tag: "missing-prior-state" }])
        const input = Laws.inputFor(s.after)
        const replay = Model.execute(s.after, { fingerprint: Fingerprint.hash }, Laws.replayOf({ ...plan, state: { ...plan.state, input } }))
        const fresh = Model.execute(s.after, { input, fingerprint: Fingerprint.hash })
        assert.deepStrictEqual(replay.snapshot.nodes, fresh.snapshot.nodes)
      }),
      runs
    )
  })

  it("resume after a crash re-runs only unfinished work and completes like a from-scratch run", () => {
    fc.assert(
      fc.property(arbitraryScenario({ maxEdits: 1 }), fc.nat(), (s, cut) => {
        const input = Laws.inputFor(s.after)
        const fresh = Model.execute(s.after, { input, fingerprint: Fingerprint.hash })
        // Crash just before a top-level node starts: everything executed from then on is lost, and
        // so are the scopes of containers that had not finished.
        const executedTop = fresh.executed.filter((k) => !k.includes("@"))
        const stop = executedTop[cut % (executedTop.length + 1)]
        const lost = new Set(stop === undefined ? [] : fresh.executed.slice(fresh.executed.indexOf(stop)))
        const nodes = Object.fromEntries(Object.entries(fresh.snapshot.nodes).filter(([k]) => !lost.has(k)))
        if (stop !== undefined) nodes[stop] = { status: "running", attempt: 1, fingerprints: { definition: "crashed" } }
        const finished = <A>(scopes: Record<string, A>) =>
          Object.fromEntries(Object.entries(scopes).filter(([k]) => nodes[k.replace(/(@|$)/u, "#end$1")]?.status === "completed"))
        const crashed = {
          ...fresh.snapshot,
          status: "running" as const,
          nodes,
          loops: finished(fresh.snapshot.loops),
          parallels: finished(fresh.snapshot.parallels)
        }
        const planned = Plan.resume(s.after, crashed)
        assert.isTrue(Result.isSuccess(planned))
        if (Result.isFailure(planned)) return
        const plan = planned.success
        for (const id of plan.reused) {
          const record = crashed.nodes[id]
          if (record !== undefined) assert.isTrue(record.status === "completed" || record.status === "skipped", id)
        }
        if (stop !== undefined) assert.include(plan.rerun, stop)
        const replay = Model.execute(s.after, { fingerprint: Fingerprint.hash }, Laws.replayOf(plan))
        for (const [key, record] of Object.entries(fresh.snapshot.nodes)) {
          assert.deepStrictEqual(replay.snapshot.nodes[key]?.output, record.output, key)
          assert.strictEqual(replay.snapshot.nodes[key]?.status, record.status, key)
        }
      }),
      runs
    )
  })

  it("plans only for targets that exist", () => {
    fc.assert(
      fc.property(arbitraryScenario({ maxEdits: 1 }), fc.string(), (s, target) => {
        fc.pre(!targetsOf(s.after).includes(target))
        const planned = Plan.runFrom({ workflow: s.after, target })
        assert.isTrue(Result.isFailure(planned) && planned.failure._tag === "UnknownTarget")
      }),
      runs
    )
  })
})
