/**
 * Law checkers for run-from-block plans. A `Trial` runs one scenario end to end with the reference
 * executor (`Model`): the prior run of `before`, the plan for `after` from `target`, the execution of
 * that plan over the prior snapshot, and a from-scratch run of `after`. Each law returns the list of
 * its violations (empty when it holds), so a property reads
 * `assert.deepStrictEqual(Laws.soundness(trial), [])`.
 *
 * **Example**
 *
 * ```ts
 * fc.assert(fc.property(Arbitraries.arbitraryScenario(), (scenario) => {
 *   const trial = Laws.trial(scenario)
 *   return Laws.soundness(trial).length === 0 && Laws.minimality(trial).length === 0
 * }))
 * ```
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Dag from "../Dag.ts"
import * as Fingerprint from "../Fingerprint.ts"
import * as Plan from "../Plan.ts"
import * as Reference from "../Reference.ts"
import * as Snapshot from "../Snapshot.ts"
import type * as Workflow from "../Workflow.ts"
import * as Model from "./Model.ts"
import * as Spec from "./Spec.ts"

/**
 * A scenario: a prior run of `before`, then a run of `after` from `target`.
 *
 * @since 0.1.0
 */
export interface Scenario {
  readonly before: Workflow.Workflow
  readonly after: Workflow.Workflow
  /** The block the run re-runs from; `undefined` with a destination: only what changed re-runs. */
  readonly target: string | undefined
  /** The destination (`Plan.Options.to`): the only observed output of the run, if given. */
  readonly to?: string | undefined
  /** Pinned outputs of the run (`Plan.Options.pins`); the from-scratch run has the same pins. */
  readonly pins?: Readonly<Record<string, Workflow.Json>> | undefined
  /** Seed of the block functions (default 0). */
  readonly seed?: number
}

/**
 * A scenario played out: prior run, plan, plan execution and from-scratch run.
 *
 * @since 0.1.0
 */
export interface Trial {
  readonly scenario: Scenario
  readonly prior: Model.Execution
  readonly plan: Plan.Plan
  readonly replay: Model.Execution
  readonly fresh: Model.Execution
  readonly dag: Dag.Dag
}

/**
 * A deterministic run input for a workflow's declared inputs (defaults first).
 *
 * @since 0.1.0
 */
export const inputFor = (workflow: Workflow.Workflow): Record<string, Workflow.Json> => {
  const out: Record<string, Workflow.Json> = {}
  for (const [key, declaration] of Object.entries(workflow.inputs ?? {})) {
    out[key] = declaration.default ?? sample[declaration.type]
  }
  return out
}
const sample = { string: "s", number: 1, boolean: true, object: { k: 1 }, array: [1, 2], json: { k: "v" } } as const

/**
 * What the executor needs to run a plan.
 *
 * @since 0.1.0
 */
export const replayOf = (plan: Plan.Plan): Model.Replay => {
  const branches = new Map<string, ReadonlySet<number>>()
  for (const reset of plan.resets) {
    if (reset._tag === "parallel" && reset.branches !== "all") branches.set(reset.container, new Set(reset.branches))
  }
  return { rerun: new Set(plan.rerun), branches, state: plan.state }
}

/**
 * Plays a scenario out. Throws if planning fails (scenarios are expected to be valid).
 *
 * @since 0.1.0
 */
export const trial = (scenario: Scenario): Trial => {
  // The snapshot format's hash, so the planner can compare the model's records with its own.
  const options = { seed: scenario.seed ?? 0, fingerprint: Fingerprint.hash }
  const prior = Model.execute(scenario.before, { ...options, input: inputFor(scenario.before) })
  const planned = planScenario(scenario, prior.snapshot)
  if (Result.isFailure(planned)) throw new Error(`planning failed: ${planned.failure.message}`)
  const plan = planned.success
  const pinned = scenario.pins === undefined ? options : { ...options, pins: scenario.pins }
  const replay = Model.execute(scenario.after, pinned, replayOf(plan))
  const fresh = Model.execute(scenario.after, { ...pinned, input: prior.snapshot.input })
  return { scenario, prior, plan, replay, fresh, dag: Dag.make(scenario.after) }
}

/** `Plan.runFrom` of the scenario's edit over `snapshot` (its target may be left out when it has a destination). */
const planScenario = (scenario: Scenario, snapshot: Snapshot.Snapshot) => {
  const options = { workflow: scenario.after, snapshot, to: scenario.to, pins: scenario.pins }
  return scenario.target === undefined
    ? Plan.runFrom({ ...options, to: scenario.to! })
    : Plan.runFrom({ ...options, target: scenario.target })
}

const nodeOfKey = (key: string): string => {
  const at = key.indexOf("@")
  return at === -1 ? key : key.slice(0, at)
}

/**
 * Ancestors (inclusive) of the observed outputs and of the target, or of the destination alone, by
 * the specification's reading.
 */
const wanted = (t: Trial): Uint8Array => {
  const needed = Spec.neededBy(t.scenario.after, t.scenario.target, t.scenario.to)
  const keep = new Uint8Array(t.dag.size)
  for (const id of needed) keep[t.dag.index!.get(id)!] = 1
  return keep
}

/** Same status, decision and output, the output compared exactly (key order included). */
const same = (a: Snapshot.NodeRecord | undefined, b: Snapshot.NodeRecord | undefined): boolean =>
  a !== undefined && b !== undefined && a.status === b.status && a.decision === b.decision &&
  Model.identical(a.output, b.output)

/**
 * Soundness: on every ancestor of an observed output (and of the target), executing the plan over
 * the prior snapshot leaves exactly the statuses, outputs and decisions of a from-scratch run.
 *
 * @since 0.1.0
 */
export const soundness = (t: Trial): ReadonlyArray<string> => {
  const keep = wanted(t)
  const out: Array<string> = []
  const keys = new Set([...Object.keys(t.replay.snapshot.nodes), ...Object.keys(t.fresh.snapshot.nodes)])
  for (const key of keys) {
    const node = t.dag.index!.get(nodeOfKey(key))
    if (node === undefined || keep[node] === 0) continue
    const a = t.replay.snapshot.nodes[key]
    const b = t.fresh.snapshot.nodes[key]
    if (!same(a, b)) {
      out.push(`${key}: plan run ${JSON.stringify(a?.status)}/${JSON.stringify(a?.decision)} vs fresh ${JSON.stringify(b?.status)}/${JSON.stringify(b?.decision)}${a?.status === b?.status ? " (outputs differ)" : ""}`)
    }
  }
  return out
}

const causes = new Set<Plan.ReasonTag>(["target", "downstream", "container-reset"])

/** The specification's plan of a trial's scenario. */
const specOf = (t: Trial): Spec.SpecPlan =>
  Spec.specPlan(t.scenario.after, t.prior.snapshot, t.scenario.target, t.scenario.to, t.scenario.pins)

/**
 * Minimality: every executed instance belongs to a re-run node, none runs twice, and none is an
 * instance of the prior run the specification keeps (inside a container, an instance re-runs only
 * when it, or what it follows there, changed, or its container restarts whole); every re-run node
 * is the target, changed, downstream of a re-run root, or reset with its container; and every
 * re-run node is an ancestor of an observed output or of the target, or reset with its container.
 *
 * @since 0.1.0
 */
export const minimality = (t: Trial): ReadonlyArray<string> => {
  const out: Array<string> = []
  const rerun = new Set(t.plan.rerun)
  const seen = new Set<string>()
  const kept = specOf(t).kept
  for (const key of t.replay.executed) {
    if (seen.has(key)) out.push(`${key} executed twice`)
    seen.add(key)
    if (!rerun.has(nodeOfKey(key))) out.push(`${key} executed but ${nodeOfKey(key)} is not in rerun`)
    if (kept.has(key)) out.push(`${key} executed although the specification reuses that instance`)
  }
  const keep = wanted(t)
  for (const id of t.plan.rerun) {
    const reasons = Plan.reasonsOf(t.plan, id)
    if (reasons.length === 0) out.push(`${id} re-runs without a reason`)
    for (const reason of reasons) {
      if (reason._tag === "downstream" && !rerun.has(reason.root) && !t.plan.pruned.includes(reason.root)) {
        out.push(`${id} is downstream of ${reason.root}, which is not affected`)
      }
      if (reason._tag === "container-reset" && !rerun.has(`${reason.container}#start`) && !rerun.has(`${reason.container}#end`)) {
        out.push(`${id} is reset with ${reason.container}, which does not re-run`)
      }
    }
    const reset = reasons.some((r) => r._tag === "container-reset")
    if (keep[t.dag.index!.get(id)!] === 0 && !reset) out.push(`${id} re-runs but no observed output needs it`)
  }
  return out
}

/**
 * Forward closure: every successor of a re-run node re-runs or is pruned.
 *
 * @since 0.1.0
 */
export const forwardClosure = (t: Trial): ReadonlyArray<string> => {
  const out: Array<string> = []
  const affected = new Set([...t.plan.rerun, ...t.plan.pruned])
  for (const id of t.plan.rerun) {
    for (const s of Dag.successors(t.dag, t.dag.index!.get(id)!)) {
      const next = t.dag.ids![s]!
      if (!affected.has(next)) out.push(`${next} follows re-run ${id} but is reused`)
    }
  }
  return out
}

/**
 * Per-instance soundness: every record the plan keeps inside a container, on a node an observed
 * output needs, is the record a from-scratch run leaves there (a reused instance is what a full run
 * computes); every container that re-runs has one reset naming how and why; a `while` loop never
 * re-runs per instance; and an instance of a container that restarts whole keeps no record inside
 * it and (a loop) executes from iteration 0.
 *
 * @since 0.1.0
 */
export const perInstanceSoundness = (t: Trial): ReadonlyArray<string> => {
  const out: Array<string> = []
  const keep = wanted(t)
  for (const [key, record] of Object.entries(t.plan.state.nodes)) {
    const node = t.dag.index!.get(nodeOfKey(key))
    if (!key.includes("@") || node === undefined || keep[node] === 0) continue
    if (!same(record, t.fresh.snapshot.nodes[key])) out.push(`${key} is reused but a full run leaves another record there`)
  }
  const rerun = new Set(t.plan.rerun)
  const executed = new Set(t.replay.executed)
  const resets = new Map(t.plan.resets.map((r) => [r.container, r] as const))
  for (const c of [...(t.scenario.after.loops ?? []), ...(t.scenario.after.parallels ?? [])]) {
    const runs = rerun.has(`${c.id}#start`) || rerun.has(`${c.id}#end`)
    const reset = resets.get(c.id)
    if (runs !== (reset !== undefined)) out.push(`${c.id} ${runs ? "re-runs without a reset" : "has a reset but does not re-run"}`)
    if (reset === undefined) continue
    if ((reset.restart === "whole") === (reset.why === "independent-instances" || reset.why === "items-changed")) {
      out.push(`${c.id} restarts ${reset.restart} for ${reset.why}`)
    }
    if ("kind" in c && c.kind === "while" && reset.restart !== "whole") out.push(`while loop ${c.id} re-runs per instance`)
    if (reset.restart !== "whole") continue
    const body = new Set(bodyNodes(t, c.id))
    for (const [key, scope] of Object.entries(reset._tag === "loop" ? t.replay.snapshot.loops : t.replay.snapshot.parallels)) {
      if (nodeOfKey(key) !== c.id) continue
      const at = key.indexOf("@")
      const prefix = at === -1 ? "" : `${key.slice(at + 1)}.`
      const started = `${c.id}#start${at === -1 ? "" : key.slice(at)}`
      if (!executed.has(started)) continue
      for (const kept of Object.keys(t.plan.state.nodes)) {
        if (body.has(nodeOfKey(kept)) && kept.slice(kept.indexOf("@") + 1).startsWith(prefix)) {
          out.push(`${kept} is kept inside ${key}, which restarts whole`)
        }
      }
      if (reset._tag !== "loop" || (scope as Snapshot.LoopScope).iterations === 0) continue
      const first = c.body.map((m) => `${t.dag.index!.has(m) ? m : `${m}#start`}@${prefix}0`)
      // A pinned instance reached holds its pin without being executed.
      const pinned = (k: string) => t.scenario.pins?.[k] !== undefined || t.scenario.pins?.[nodeOfKey(k)] !== undefined
      if (!first.some((k) => executed.has(k) || t.replay.snapshot.nodes[k]?.status === "skipped" || (pinned(k) && t.replay.snapshot.nodes[k] !== undefined))) {
        out.push(`loop instance ${key} restarts whole but iteration 0 was not executed`)
      }
    }
  }
  return out
}

const bodyNodes = (t: Trial, container: string): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < t.dag.size; i++) if (t.dag.nodes![i]!.chain.includes(container)) out.push(t.dag.ids![i]!)
  return out
}

/**
 * Parallel branch isolation: a parallel reset branch by branch executes body instances only in
 * those branches, and every other branch keeps its prior records.
 *
 * @since 0.1.0
 */
export const parallelIsolation = (t: Trial): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const reset of t.plan.resets) {
    if (reset._tag !== "parallel" || reset.branches === "all") continue
    const branches = new Set(reset.branches)
    const body = new Set(bodyNodes(t, reset.container))
    for (const key of t.replay.executed) {
      if (!body.has(nodeOfKey(key))) continue
      const branch = Number(key.slice(key.indexOf("@") + 1).split(".")[0])
      if (!branches.has(branch)) out.push(`${key} executed although branch ${branch} of ${reset.container} is not reset`)
    }
    for (const [key, record] of Object.entries(t.plan.state.nodes)) {
      if (!body.has(nodeOfKey(key))) continue
      if (t.replay.snapshot.nodes[key] !== record) out.push(`${key} of a kept branch was not reused`)
    }
  }
  return out
}

/**
 * No zombie outputs: the hydrated state holds no record that follows an executed instance (a node
 * downstream of it, in the same iteration or branch of every container they share), so a branch a
 * router or condition no longer takes cannot leave a stale output behind. The branches a parallel
 * reset branch by branch keeps follow its re-run start by design.
 *
 * @since 0.1.0
 */
export const noZombies = (t: Trial): ReadonlyArray<string> => {
  const out: Array<string> = []
  const partial = new Set(
    t.plan.resets.flatMap((r) => (r._tag === "parallel" && r.branches !== "all" ? [`${r.container}#start`] : []))
  )
  const pathOf = (key: string) => {
    const at = key.indexOf("@")
    return at === -1 ? [] : key.slice(at + 1).split(".")
  }
  const executed = t.replay.executed.filter((key) => !partial.has(nodeOfKey(key)))
  const downstream = new Map<string, Uint8Array>()
  for (const key of Object.keys(t.plan.state.nodes)) {
    const index = t.dag.index!.get(nodeOfKey(key))
    if (index === undefined) {
      out.push(`${key} is kept but no longer exists`)
      continue
    }
    const chain = Dag.chainOf(t.dag, index)
    for (const source of executed) {
      const node = nodeOfKey(source)
      let reached = downstream.get(node)
      if (reached === undefined) downstream.set(node, reached = Dag.downstream(t.dag, [t.dag.index!.get(node)!]))
      if (reached[index] === 0) continue
      const from = Dag.chainOf(t.dag, t.dag.index!.get(node)!)
      let shared = 0
      while (shared < chain.length && shared < from.length && chain[shared] === from[shared]) shared++
      const a = pathOf(key)
      const b = pathOf(source)
      if (a.slice(0, shared).every((x, k) => b[k] === x)) {
        out.push(`${key} is kept although it follows ${source}, which was executed`)
        break
      }
    }
  }
  return out
}

/**
 * Hydration completeness: every block reference of a re-run node, at each prior instance where it
 * re-runs (its record is not kept), reads a re-run node or a record kept at that instance.
 *
 * @since 0.1.0
 */
export const hydrationCompleteness = (t: Trial): ReadonlyArray<string> => {
  const out: Array<string> = []
  const rerun = new Set(t.plan.rerun)
  const kept = t.plan.state.nodes
  const s = Model.structure(t.scenario.after)
  const check = (owner: string, node: string, value: Workflow.Json) => {
    const chain = Model.chainOf(s, owner)
    const paths = chain.length === 0 ? [[]] : Snapshot.instancePaths(t.prior.snapshot, chain)
    for (const path of paths) {
      if (kept[Model.instanceKey(node, path)] !== undefined) continue
      for (const { reference } of Reference.collect(value)) {
        if (reference._tag !== "BlockOutput") continue
        const read = Model.exitNode(s, reference.block)
        const key = Model.instanceKey(read, path.slice(0, Model.chainOf(s, reference.block).length))
        if (!rerun.has(read) && kept[key] === undefined) out.push(`${Model.instanceKey(node, path)} reads ${key}, which is neither re-run nor kept`)
      }
    }
  }
  for (const block of t.scenario.after.blocks) {
    if (rerun.has(block.id) && block.params !== undefined) check(block.id, block.id, block.params)
  }
  for (const c of [...(t.scenario.after.loops ?? []), ...(t.scenario.after.parallels ?? [])]) {
    if (rerun.has(`${c.id}#start`)) check(c.id, `${c.id}#start`, [c.count ?? null, c.items ?? null])
  }
  return out
}

/**
 * Idempotence: planning again after executing the plan, with no edit, finds nothing changed
 * except volatile blocks and blocks that failed in that execution; everything else re-runs only
 * because it is the target, downstream of a root, or reset with its container.
 *
 * @since 0.1.0
 */
export const idempotence = (t: Trial): ReadonlyArray<string> => {
  const again = planScenario(t.scenario, t.replay.snapshot)
  if (Result.isFailure(again)) return [`re-planning failed: ${again.failure.message}`]
  const out: Array<string> = []
  for (const id of again.success.rerun) {
    for (const reason of Plan.reasonsOf(again.success, id)) {
      if (causes.has(reason._tag) || reason._tag === "volatile" || reason._tag === "disabled" || reason._tag === "pinned") continue
      if (reason._tag === "failed-last-time") continue
      out.push(`${id} is ${reason._tag} right after the planned run`)
    }
  }
  return out
}

/**
 * Destination: with `to`, every executed instance belongs to an ancestor of the destination (in the
 * expanded DAG, by the specification's reading), or to a container one of those ancestors enters
 * (a container restarting whole re-runs all of its body; one entered per instance, its end); nothing
 * else executes. Holds trivially without `to`.
 *
 * @since 0.1.0
 */
export const destination = (t: Trial): ReadonlyArray<string> => {
  if (t.scenario.to === undefined) return []
  const needed = Spec.neededBy(t.scenario.after, undefined, t.scenario.to)
  const containers = new Set([...needed].filter((n) => n.endsWith("#start")).map((n) => n.slice(0, -"#start".length)))
  const s = Model.structure(t.scenario.after)
  const out: Array<string> = []
  for (const key of t.replay.executed) {
    const node = nodeOfKey(key)
    if (needed.has(node)) continue
    const hash = node.indexOf("#")
    const enclosing = hash === -1 ? Model.chainOf(s, node) : [...Model.chainOf(s, node.slice(0, hash)), node.slice(0, hash)]
    if (!enclosing.some((c) => containers.has(c))) out.push(`${key} executed but ${t.scenario.to} does not need it`)
  }
  return out
}

/**
 * Pins never execute: no pinned block instance (pinned by its block id or by its own instance id)
 * is executed by the plan's run; each one reached holds its pin as output.
 *
 * @since 0.1.0
 */
export const pinsNeverExecute = (t: Trial): ReadonlyArray<string> => {
  const pins = t.scenario.pins ?? {}
  const pinOf = (key: string) => pins[key] ?? pins[nodeOfKey(key)]
  const out: Array<string> = []
  for (const key of t.replay.executed) if (pinOf(key) !== undefined) out.push(`${key} is pinned but executed`)
  for (const [key, record] of Object.entries(t.replay.snapshot.nodes)) {
    const pin = pinOf(key)
    if (pin !== undefined && record.status === "completed" && !Model.identical(record.output, pin)) {
      out.push(`${key} is pinned to ${JSON.stringify(pin)} but outputs ${JSON.stringify(record.output)}`)
    }
  }
  return out
}

/**
 * A block instance a run-from executed although its prior run computed it from exactly the same
 * thing, and why its block re-ran (the plan's reason tags, joined with `+`).
 *
 * @since 0.1.0
 */
export interface IdenticalRerun {
  readonly node: string
  readonly reasons: string
}

/**
 * The block instances a run-from executed (completed or failed in that run, not copied) that a
 * deterministic block cannot compute differently: not the target, not `volatile`, disabled or
 * pinned; the same type and params in `before` and `after`; the same enclosing containers (ids and
 * kinds); a completed prior record whose resolved inputs are exactly the ones it ran with (key
 * order included); and the same item from its innermost loop and innermost parallel — what a
 * handler reads besides its inputs. Early cutoff should have reused each of them.
 *
 * @since 0.1.0
 */
export const identicalReruns = (
  edit: Pick<Scenario, "before" | "after" | "pins">,
  plan: Plan.Plan,
  source: Snapshot.Snapshot,
  run: Snapshot.Snapshot
): ReadonlyArray<IdenticalRerun> => {
  const old = Model.structure(edit.before)
  const now = Model.structure(edit.after)
  const text = (value: Workflow.Json | undefined) => (value === undefined ? "undefined" : JSON.stringify(value))
  const definition = (b: Workflow.Block) => text({ type: b.type, params: b.params ?? null, volatile: b.volatile ?? false })
  const itemOf = (snapshot: Snapshot.Snapshot, chain: ReadonlyArray<string>, path: ReadonlyArray<number>, d: number) => {
    const key = Model.instanceKey(chain[d]!, path.slice(0, d))
    return text((snapshot.loops[key]?.items ?? snapshot.parallels[key]?.items)?.[path[d]!])
  }
  const out: Array<IdenticalRerun> = []
  for (const [key, record] of Object.entries(run.nodes)) {
    const id = Model.nodeOfKey(key)
    const block = now.blocks.get(id)
    const was = old.blocks.get(id)
    if (block === undefined || was === undefined || id === plan.target) continue
    if (record.reusedFrom !== undefined || (record.status !== "completed" && record.status !== "failed")) continue
    if (block.volatile === true || block.disabled === true || was.disabled === true) continue
    if (edit.pins !== undefined && (edit.pins[id] !== undefined || edit.pins[key] !== undefined)) continue
    const prior = source.nodes[key]
    if (prior?.status !== "completed" || definition(block) !== definition(was) || text(prior.inputs) !== text(record.inputs)) continue
    const chain = Model.chainOf(now, id)
    const before = Model.chainOf(old, id)
    const kindOf = (s: Model.Structure, c: string) => s.containers.get(c)!.kind
    if (chain.length !== before.length || chain.some((c, d) => c !== before[d] || kindOf(now, c) !== kindOf(old, c))) continue
    const path = key.includes("@") ? key.slice(key.indexOf("@") + 1).split(".").map(Number) : []
    const kinds = chain.map((c) => kindOf(now, c))
    const visible = [kinds.lastIndexOf("loop"), kinds.lastIndexOf("parallel")].filter((d) => d >= 0)
    if (visible.some((d) => itemOf(run, chain, path, d) !== itemOf(source, chain, path, d))) continue
    out.push({ node: key, reasons: Plan.reasonsOf(plan, id).map((r) => r._tag).join("+") })
  }
  return out
}

/**
 * Every law, by name.
 *
 * @since 0.1.0
 */
export const all: Readonly<Record<string, (t: Trial) => ReadonlyArray<string>>> = {
  soundness,
  minimality,
  forwardClosure,
  perInstanceSoundness,
  parallelIsolation,
  noZombies,
  hydrationCompleteness,
  idempotence,
  destination,
  pinsNeverExecute
}
