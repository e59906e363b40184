/**
 * The specification planner: the run-from-block rules of `Plan` written with plain Maps and Sets
 * over string ids, for clarity rather than speed. It expands the workflow itself (no `Dag`), checks
 * every node literally (every instance's resolved inputs are re-hashed), and is the oracle
 * `Plan.runFrom` is compared with and the baseline `bench:plan` measures against.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Fingerprint from "../Fingerprint.ts"
import * as NodeId from "../NodeId.ts"
import * as Reference from "../Reference.ts"
import * as Snapshot from "../Snapshot.ts"
import type * as Workflow from "../Workflow.ts"
import * as Model from "./Model.ts"

type Json = Workflow.Json

/**
 * What the specification decides; node ids throughout.
 *
 * @since 0.1.0
 */
export interface SpecPlan {
  readonly rerun: ReadonlySet<string>
  readonly reused: ReadonlySet<string>
  readonly pruned: ReadonlySet<string>
  readonly start: ReadonlySet<string>
  /** Changed nodes (found by the diff) with their reason tags. */
  readonly changed: ReadonlyMap<string, ReadonlySet<string>>
  /** Parallels reset branch by branch: container id → branches. */
  readonly branches: ReadonlyMap<string, ReadonlySet<number>>
}

interface Graph {
  readonly nodes: ReadonlyArray<string>
  readonly succ: ReadonlyMap<string, ReadonlySet<string>>
  readonly pred: ReadonlyMap<string, ReadonlySet<string>>
  /** Enclosing containers of a node, outer to inner (a sentinel excludes its own container). */
  readonly chain: ReadonlyMap<string, ReadonlyArray<string>>
}

const entry = (s: Model.Structure, id: string) => (s.containers.has(id) ? `${id}#start` : id)
const exit = (s: Model.Structure, id: string) => (s.containers.has(id) ? `${id}#end` : id)

const expand = (s: Model.Structure): Graph => {
  const nodes: Array<string> = []
  const chain = new Map<string, ReadonlyArray<string>>()
  const chainOf = (id: string): Array<string> => {
    const out: Array<string> = []
    for (let c = s.parent.get(id); c !== undefined; c = s.parent.get(c)) out.unshift(c)
    return out
  }
  for (const block of s.workflow.blocks) {
    nodes.push(block.id)
    chain.set(block.id, chainOf(block.id))
  }
  for (const id of s.containers.keys()) {
    for (const node of [`${id}#start`, `${id}#end`]) {
      nodes.push(node)
      chain.set(node, chainOf(id))
    }
  }
  const succ = new Map(nodes.map((n) => [n, new Set<string>()]))
  const pred = new Map(nodes.map((n) => [n, new Set<string>()]))
  const link = (from: string, to: string) => {
    succ.get(from)!.add(to)
    pred.get(to)!.add(from)
  }
  for (const edge of s.workflow.edges) link(exit(s, edge.source), entry(s, edge.target))
  for (const [id, container] of s.containers) {
    const body = container.kind === "loop" ? container.loop.body : container.parallel.body
    const inBody = new Set(body)
    for (const member of body) {
      if (!(s.incoming.get(member) ?? []).some((e) => inBody.has(e.source))) link(`${id}#start`, entry(s, member))
      if (!(s.outgoing.get(member) ?? []).some((e) => inBody.has(e.target))) link(exit(s, member), `${id}#end`)
    }
  }
  return { nodes, succ, pred, chain }
}

const reach = (from: Iterable<string>, next: ReadonlyMap<string, ReadonlySet<string>>, stop?: string): Set<string> => {
  const seen = new Set<string>()
  const stack = [...from]
  while (stack.length > 0) {
    const n = stack.pop()!
    if (seen.has(n)) continue
    seen.add(n)
    if (n === stop) continue
    for (const m of next.get(n) ?? []) stack.push(m)
  }
  return seen
}

/**
 * The observed outputs: response blocks, else declared outputs, else sinks.
 *
 * @since 0.1.0
 */
export const observedOf = (workflow: Workflow.Workflow): Set<string> => {
  const s = Model.structure(workflow)
  const g = expand(s)
  const responses = workflow.blocks.filter((b) => b.type === "response").map((b) => b.id)
  if (responses.length > 0) return new Set(responses)
  if (workflow.outputs !== undefined && workflow.outputs.length > 0) {
    return new Set(workflow.outputs.map((id) => exit(s, id)))
  }
  return new Set(g.nodes.filter((n) => g.succ.get(n)!.size === 0))
}

const wiring = (s: Model.Structure, id: string): string => {
  const incoming = (s.incoming.get(id) ?? []).map((e) => `${e.source}|${e.handle ?? ""}`).sort()
  const routes = s.blocks.get(id)?.type === "router"
    ? [...new Set((s.outgoing.get(id) ?? []).map((e) => e.handle ?? ""))].sort()
    : []
  return JSON.stringify([s.parent.get(id) ?? "", incoming, routes])
}


/** Resolves references as the prior run saw them: against the snapshot, at one instance. */
const snapshotEnv = (
  s: Model.Structure,
  snapshot: Snapshot.Snapshot,
  chain: ReadonlyArray<string>,
  path: ReadonlyArray<number>
): Reference.Environment => {
  const innermost = (kind: "loop" | "parallel") => {
    for (let i = chain.length - 1; i >= 0; i--) if (s.containers.get(chain[i]!)?.kind === kind) return i
    return -1
  }
  return {
    blockOutput: (id) => {
      let depth = 0
      for (let c = s.parent.get(id); c !== undefined; c = s.parent.get(c)) depth++
      const node = s.containers.has(id) ? NodeId.end(id) : NodeId.block(id)
      const record = snapshot.nodes[NodeId.formatInstance({ node, path: path.slice(0, depth) })]
      if (record === undefined) return undefined
      return record.status === "skipped" ? null : record.output
    },
    input: (key) => snapshot.input[key],
    variable: (name) => s.workflow.variables?.[name],
    index: (scope) => {
      const i = innermost(scope)
      return i === -1 ? undefined : path[i]
    },
    item: (scope) => {
      const i = innermost(scope)
      if (i === -1) return undefined
      const key = NodeId.formatInstance({ node: NodeId.block(chain[i]!), path: path.slice(0, i) })
      const items = snapshot.loops[key]?.items ?? snapshot.parallels[key]?.items
      return items?.[path[i]!]
    }
  }
}

const definitionOf = (s: Model.Structure, node: string): string | undefined => {
  const block = s.blocks.get(node)
  if (block !== undefined) return Fingerprint.ofBlock(block)
  const id = node.slice(0, node.indexOf("#"))
  const c = s.containers.get(id)
  if (c === undefined) return undefined
  return c.kind === "loop" ? Fingerprint.ofContainer(c.loop, "loop") : Fingerprint.ofContainer(c.parallel, "parallel")
}

const configOf = (s: Model.Structure, id: string): Json => {
  const c = s.containers.get(id)!
  const source = c.kind === "loop" ? c.loop : c.parallel
  const config: Record<string, Json> = {}
  if (source.count !== undefined) config["count"] = source.count
  if (source.items !== undefined) config["items"] = source.items
  return config
}

/**
 * The diff of one node against the snapshot: its reason tags (empty when unchanged). Definitions are
 * compared with the snapshot's frozen workflow; records give the status and resolved inputs.
 */
const diffNode = (
  s: Model.Structure,
  old: Model.Structure,
  g: Graph,
  snapshot: Snapshot.Snapshot,
  node: string
): Set<string> => {
  const reasons = new Set<string>()
  const isEnd = node.endsWith("#end")
  const id = node.includes("#") ? node.slice(0, node.indexOf("#")) : node
  const existed = s.blocks.has(id) ? old.blocks.has(id) : old.containers.has(id)
  if (!existed) return new Set(["new-block"])
  if (!isEnd && wiring(s, id) !== wiring(old, id)) reasons.add("wiring-changed")
  if (s.blocks.get(id)?.volatile === true) reasons.add("volatile")
  const chain = g.chain.get(node)!
  const definition = definitionOf(s, node)!
  if (definition !== definitionOf(old, node)) reasons.add("definition-changed")
  for (const path of Snapshot.instancePaths(snapshot, chain)) {
    const record = snapshot.nodes[NodeId.formatInstance({ node: NodeId.parse(node).pipe(Result.getOrThrow), path })]
    if (record === undefined) {
      reasons.add("missing-prior-state")
      continue
    }
    if (record.status === "failed") reasons.add("failed-last-time")
    else if (record.status !== "completed" && record.status !== "skipped") reasons.add("incomplete")
    if (record.status !== "completed" || isEnd) continue
    const value = s.blocks.has(id) ? s.blocks.get(id)!.params ?? {} : configOf(s, id)
    const resolved = Reference.resolve(value, snapshotEnv(s, snapshot, chain, path))
    if (Result.isFailure(resolved) || Fingerprint.hash(resolved.success) !== record.fingerprints.inputs) {
      reasons.add("inputs-changed")
    }
  }
  return reasons
}

/**
 * Plans a run from `target` (or, without a snapshot, a full run) by the literal rules.
 *
 * @since 0.1.0
 */
export const specPlan = (
  workflow: Workflow.Workflow,
  snapshot: Snapshot.Snapshot | undefined,
  target: string | undefined
): SpecPlan => {
  const s = Model.structure(workflow)
  const g = expand(s)
  const targetNode = target === undefined ? undefined : entry(s, target)
  const observed = observedOf(workflow)
  if (targetNode !== undefined) observed.add(s.containers.has(target!) ? `${target}#end` : targetNode)
  const wanted = reach(observed, g.pred)
  const changed = new Map<string, Set<string>>()
  if (snapshot === undefined) {
    for (const n of g.nodes) changed.set(n, new Set(["missing-prior-state"]))
  } else {
    const old = Model.structure(snapshot.workflow)
    const roots = g.nodes.filter((n) => g.pred.get(n)!.size === 0)
    for (const n of reach(roots, g.succ, targetNode)) {
      if (n === targetNode) continue
      const reasons = diffNode(s, old, g, snapshot, n)
      if (reasons.size > 0) changed.set(n, reasons)
    }
  }
  const roots = new Set([...changed.keys()].filter((n) => wanted.has(n)))
  if (targetNode !== undefined) roots.add(targetNode)

  // Containers: a loop with a scope node restarts whole; a top-level parallel whose only change is
  // its own configuration re-runs the branches whose item changed (all when the count changed).
  const bodyOf = (id: string): Set<string> => new Set(g.nodes.filter((n) => g.chain.get(n)!.includes(id)))
  const branches = new Map<string, Set<number>>()
  for (const root of roots) {
    if (!root.endsWith("#start") || snapshot === undefined) continue
    const id = root.slice(0, -"#start".length)
    const c = s.containers.get(id)!
    if (c.kind !== "parallel" || g.chain.get(root)!.length > 0) continue
    if (root === targetNode) continue
    const startReasons = [...(changed.get(root) ?? [])]
    const endReasons = [...(changed.get(`${id}#end`) ?? [])]
    if (!startReasons.every((r) => r === "definition-changed" || r === "inputs-changed")) continue
    if (!endReasons.every((r) => r === "definition-changed")) continue
    const before = (snapshot.workflow.parallels ?? []).find((p) => p.id === id)
    const strip = (p: Workflow.Parallel) => Fingerprint.ofContainer({ ...p, count: 0, items: [], name: "" }, "parallel")
    if (before === undefined || strip(before) !== strip(c.parallel)) continue
    const others = reach([...roots].filter((r) => r !== root), g.succ)
    const body = bodyOf(id)
    if (others.has(root) || [...body].some((n) => others.has(n))) continue
    const prior = snapshot.parallels[id]
    const resolved = Reference.resolve(configOf(s, id), snapshotEnv(s, snapshot, [], []))
    if (prior === undefined || Result.isFailure(resolved)) continue
    const config = resolved.success as Record<string, Json>
    const items = Array.isArray(config["items"]) ? config["items"] : undefined
    const count = items?.length ?? (typeof config["count"] === "number" ? Math.max(0, Math.floor(config["count"])) : -1)
    if (count !== prior.count) continue
    const reset = new Set<number>()
    for (let i = 0; i < count; i++) {
      if (items !== undefined && Fingerprint.hash(items[i]!) !== Fingerprint.hash(prior.items?.[i] ?? null)) reset.add(i)
    }
    branches.set(id, reset)
  }

  const mask = reach(roots, g.succ)
  const wholeReset = (set: Set<string>, within?: Set<string>) => {
    let grew = true
    while (grew) {
      grew = false
      for (const n of [...set]) {
        for (const c of g.chain.get(n)!) {
          const whole = [`${c}#start`, `${c}#end`, ...bodyOf(c)]
          if (branches.has(c) || whole.every((m) => set.has(m))) continue
          for (const m of whole) {
            if (!set.has(m)) {
              set.add(m)
              grew = true
            }
          }
          if (within === undefined) {
            for (const m of reach([`${c}#start`], g.succ)) set.add(m)
          }
        }
      }
    }
  }
  wholeReset(mask)
  const rerun = new Set([...mask].filter((n) => wanted.has(n)))
  wholeReset(rerun, wanted)
  const affected = reach([...changed.keys()], g.succ)
  for (const n of mask) affected.add(n)
  const pruned = new Set([...affected].filter((n) => !rerun.has(n) && !wanted.has(n)))
  const reused = new Set(g.nodes.filter((n) => !rerun.has(n) && !pruned.has(n)))
  const start = new Set([...rerun].filter((n) => ![...g.pred.get(n)!].some((p) => rerun.has(p))))
  return { rerun, reused, pruned, start, changed, branches }
}
