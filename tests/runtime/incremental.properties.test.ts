/**
 * Incremental = full, on the engine: random workflows (containers whose body blocks finish in an
 * order that varies from case to case, objects rendered by templates, failing blocks),
 * 1–3 random edits of every kind and a random target; `Runs.runFrom` over the prior run is compared
 * with a from-scratch run of the edited workflow, and every full run with the reference executor
 * (`Model`), on the memory store and on PGlite.
 *
 * Some cases turn top-level `fn` blocks into approvals (the same ids before and after the edits, so
 * an edit upstream of one makes the run-from pause on it again). An autopilot approves every paused
 * node at once, without waiting between approvals, with the output the model gives an approval
 * (`Model.custom`, as if answered at once). Only cases whose full runs the model completes get
 * approvals: a failed run keeps its pending approvals pending (Failed > Paused), where the model
 * answers them.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { type Plan, type Snapshot, Workflow } from "@ripple/core"
import { Arbitraries, Laws, Model, Spec } from "@ripple/core/testing"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as fc from "fast-check"
import * as TestDatabase from "../helpers/database.ts"
import { modelHandlers, SEED } from "./model.ts"

/** A scenario and a salt that varies the order in which concurrently running blocks finish. */
interface Case extends Arbitraries.EditedScenario {
  readonly salt: number
}

/**
 * Top-level `fn`, `value` and `template` blocks of the same type in both workflows, by id (a
 * container body member would have a loop/parallel context; the model answers an approval from its
 * params and inputs whatever type it had).
 */
const approvable = (before: Workflow.Workflow, after: Workflow.Workflow): Array<string> => {
  const nested = new Set([...(after.loops ?? []), ...(after.parallels ?? []), ...(before.loops ?? []), ...(before.parallels ?? [])].flatMap((c) => c.body))
  const plain = (w: Workflow.Workflow) =>
    new Map(w.blocks.filter((b) => ["fn", "value", "template"].includes(b.type) && !nested.has(b.id)).map((b) => [b.id, b.type]))
  const inBefore = plain(before)
  return [...plain(after)].flatMap(([id, type]) => inBefore.get(id) === type ? [id] : [])
}

/** The blocks of `ids` turned into approvals (params kept: they are the approval's inputs). */
const approving = (workflow: Workflow.Workflow, ids: ReadonlySet<string>): Workflow.Workflow => ({
  ...workflow,
  blocks: workflow.blocks.map((b) => ids.has(b.id) ? { ...b, type: "approval" } : b)
})

const completesInModel = (workflow: Workflow.Workflow) =>
  Result.isSuccess(Workflow.decode(workflow)) &&
  Model.execute(workflow, { seed: SEED, input: Laws.inputFor(workflow) }).snapshot.status === "completed"

const cases = fc.tuple(Arbitraries.arbitraryScenario({ maxMembers: 5, failing: true }), fc.nat(), fc.nat()).map(
  ([scenario, salt, mask]): Case => {
    // Each candidate with odds 3 in 4: often several, so that several approvals are paused at once.
    const ids = new Set(approvable(scenario.before, scenario.after).filter((_, i) => (mask >> (2 * i % 30)) % 4 !== 0))
    if (ids.size === 0) return { ...scenario, salt }
    const before = approving(scenario.before, ids)
    const after = approving(scenario.after, ids)
    return completesInModel(before) && completesInModel(after) ? { ...scenario, before, after, salt } : { ...scenario, salt }
  }
)

/** Calls per (run, node instance), and the salt of the case being played. */
interface Probe {
  salt: number
  readonly calls: Map<string, number>
}

/**
 * The model handlers, each yielding a salted number of times first so that concurrent blocks (the
 * branches of a parallel, independent blocks of a body) finish in an order that varies by case.
 */
const probed = (probe: Probe): Record<string, Handler.Handler> => {
  const out: Record<string, Handler.Handler> = {}
  for (const [type, inner] of Object.entries(modelHandlers())) {
    out[type] = (ctx) =>
      Effect.gen(function*() {
        const key = `${ctx.runId} ${ctx.node}`
        probe.calls.set(key, (probe.calls.get(key) ?? 0) + 1)
        const yields = Number.parseInt(Model.digest(`${probe.salt} ${ctx.node}`).slice(0, 2), 16) % 6
        for (let i = 0; i < yields; i++) yield* Effect.yieldNow
        return yield* inner(ctx)
      })
  }
  return out
}

/** A case played on the engine: the three runs' snapshots and ids, and the run-from's plan. */
interface Played {
  readonly prior: Snapshot.Snapshot
  readonly again: Snapshot.Snapshot
  readonly fresh: Snapshot.Snapshot
  readonly plan: Plan.Plan
  readonly runs: { readonly prior: string; readonly again: string; readonly fresh: string }
}

/**
 * Waits for the run to stop; while it is paused, approves every paused node at once (without
 * waiting between approvals) with the model's output for it, and waits again.
 */
const autopilot = (runId: string) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    for (let round = 0;; round++) {
      const status = yield* runs.wait(runId)
      if (status !== "paused" || round === 20) return status
      const snapshot = yield* store.snapshot(runId)
      for (const [node, record] of Object.entries(snapshot.nodes)) {
        if (record.status !== "paused") continue
        const block = snapshot.workflow.blocks.find((b) => b.id === Model.nodeOfKey(node))!
        const output = Model.custom(SEED, block, record.inputs ?? {}, { loop: undefined, parallel: undefined })
        assert.isTrue(yield* runs.approve(runId, node, output), `approve ${node}`)
      }
    }
  })

const play = (c: Case) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const prior = yield* runs.start(c.before, Laws.inputFor(c.before))
    yield* autopilot(prior.runId)
    const again = yield* runs.runFrom(c.after, { target: c.target, run: prior.runId })
    yield* autopilot(again.runId)
    const fresh = yield* runs.start(c.after, (yield* store.snapshot(prior.runId)).input)
    yield* autopilot(fresh.runId)
    return {
      prior: yield* store.snapshot(prior.runId),
      again: yield* store.snapshot(again.runId),
      fresh: yield* store.snapshot(fresh.runId),
      plan: again.plan,
      runs: { prior: prior.runId, again: again.runId, fresh: fresh.runId }
    } satisfies Played
  })

const describeRecord = (r: Snapshot.NodeRecord | undefined) =>
  r === undefined ? "absent" : `${r.status}/${r.decision ?? "-"}/${JSON.stringify(r.output)}`

const same = (a: Snapshot.NodeRecord | undefined, b: Snapshot.NodeRecord | undefined) =>
  a !== undefined && b !== undefined && a.status === b.status && a.decision === b.decision && Model.identical(a.output, b.output)

/** The failed instances no `"error"` edge handles: what makes a run fail. */
const unhandledFailures = (snapshot: Snapshot.Snapshot): Array<string> =>
  Object.entries(snapshot.nodes).flatMap(([key, r]) => {
    if (r.status !== "failed") return []
    const id = Model.nodeOfKey(key).split("#")[0]
    return snapshot.workflow.edges.some((e) => e.source === id && e.handle === "error") ? [] : [key]
  })

/** Every law of one played case; the list of violations. */
const laws = (c: Case, p: Played, probe: Probe): Array<string> => {
  const out: Array<string> = []
  const needed = Spec.neededBy(c.after, c.target)
  // Soundness: on every instance an observed output (or the target) depends on, the run-from leaves
  // the status, decision and output (exactly, key order included) of a from-scratch run.
  const keys = new Set([...Object.keys(p.again.nodes), ...Object.keys(p.fresh.nodes)])
  for (const key of keys) {
    if (!needed.has(Model.nodeOfKey(key))) continue
    if (!same(p.again.nodes[key], p.fresh.nodes[key])) {
      out.push(`soundness: ${key} run-from ${describeRecord(p.again.nodes[key])} vs full ${describeRecord(p.fresh.nodes[key])}`)
    }
  }
  // Status: the same, except that a full run may fail where the run-from completes when every
  // failure of the full run is in a node no observed output needs (pruned or not affected).
  if (p.again.status !== p.fresh.status) {
    const excused = p.fresh.status === "failed" && p.again.status === "completed" &&
      unhandledFailures(p.fresh).every((key) => !needed.has(Model.nodeOfKey(key)))
    if (!excused) out.push(`status: run-from ${p.again.status} vs full ${p.fresh.status}`)
  }
  // Minimality: what the run-from executed is in the plan's re-run set, each instance at most once,
  // and never an instance of the prior run the specification reuses (inside a container, an
  // instance whose inputs did not change and whose container does not restart whole).
  const rerun = new Set(p.plan.rerun)
  const kept = Spec.specPlan(c.after, p.prior, c.target).kept
  for (const [key, r] of Object.entries(p.again.nodes)) {
    const executed = r.reusedFrom === undefined && (r.status === "completed" || r.status === "failed")
    if (executed && !rerun.has(Model.nodeOfKey(key))) out.push(`minimality: ${key} executed but not in the plan's re-run set`)
    if (executed && kept.has(key)) out.push(`minimality: ${key} executed although the specification reuses it`)
  }
  for (const [key, n] of probe.calls) {
    if (!key.startsWith(`${p.runs.again} `)) continue
    const instance = key.slice(p.runs.again.length + 1)
    if (n > 1) out.push(`minimality: ${instance} executed ${n} times`)
    if (!rerun.has(Model.nodeOfKey(instance))) out.push(`minimality: ${instance} called but not in the plan's re-run set`)
    if (kept.has(instance)) out.push(`minimality: ${instance} called although the specification reuses it`)
  }
  // The reference executor: every full run is the model's, instance by instance.
  {
    for (const [workflow, snapshot] of [[c.before, p.prior], [c.after, p.fresh]] as const) {
      const expected = Model.execute(workflow, { seed: SEED, input: snapshot.input }).snapshot
      if (expected.status !== snapshot.status) out.push(`model: ${workflow === c.before ? "prior" : "full"} run ${snapshot.status} vs model ${expected.status}`)
      for (const key of new Set([...Object.keys(expected.nodes), ...Object.keys(snapshot.nodes)])) {
        if (!same(snapshot.nodes[key], expected.nodes[key])) {
          out.push(`model: ${key} engine ${describeRecord(snapshot.nodes[key])} vs model ${describeRecord(expected.nodes[key])}`)
        }
      }
    }
  }
  return out
}

type Run = <A>(effect: Effect.Effect<A, unknown, Runs.Runs | RunStore.RunStore>) => Promise<A>

const property = (run: Run, probe: Probe, numRuns: number) =>
  fc.assert(
    fc.asyncProperty(cases, async (c) => {
      probe.salt = c.salt
      probe.calls.clear()
      const played = await run(play(c))
      assert.deepStrictEqual(laws(c, played, probe), [])
    }),
    { numRuns }
  )

const runsLayer = (probe: Probe) => Runs.layer({ concurrency: 4 }).pipe(Layer.provideMerge(Handler.layer(probed(probe))))

describe("run-from equals a full run on the engine (memory store)", () => {
  it.effect("soundness, status with pruned failures, minimality, and full runs equal the reference executor", () =>
    Effect.promise(async () => {
      const probe: Probe = { salt: 0, calls: new Map() }
      const runtime = ManagedRuntime.make(runsLayer(probe).pipe(Layer.provideMerge(RunStore.layerMemory)))
      try {
        await property((effect) => runtime.runPromise(effect), probe, 1000)
      } finally {
        await runtime.dispose()
      }
    }), { timeout: 600_000 })
})

layer(TestDatabase.shared("pglite"), { excludeTestServices: true })("run-from equals a full run on the engine (PGlite)", (it) => {
  it.effect("soundness, status with pruned failures, minimality, and full runs equal the reference executor", () =>
    Effect.gen(function*() {
      const probe: Probe = { salt: 0, calls: new Map() }
      // One database for every case: runs are told apart by id.
      const context = yield* Layer.build(runsLayer(probe).pipe(Layer.provideMerge(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))))
      yield* Effect.promise(() => property((effect) => Effect.runPromiseWith(context)(effect), probe, 100))
    }).pipe(Effect.scoped), { timeout: 600_000 })
})
