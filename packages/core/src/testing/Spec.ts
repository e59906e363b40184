/**
 * The specification planner: which nodes a run from a block must re-run, may reuse and prunes,
 * written from the definitions of DESIGN.md (impact, diff, prune, scope) and the documented rules of
 * `Plan`, with plain Maps and Sets over string ids, for clarity rather than speed. It shares no code
 * with the implementation: it expands the workflow itself, resolves references against the
 * snapshot with `Model`'s helpers and compares resolved inputs with the recorded ones as JSON
 * text (key order included: a handler can observe it), never through a fingerprint. It is the oracle `Plan.runFrom` is compared with
 * and the baseline `bench:plan` measures against.
 *
 * **Rules**
 *
 * - The expanded DAG: a node per block and two sentinels per container (`<id>#start`,
 *   `<id>#end`); an edge `a → b` joins the exit of `a` (a block, or a container's end) to the entry
 *   of `b` (a block, or a container's start); a container's start precedes the body members no
 *   body edge enters, and its end follows those no body edge leaves.
 * - Observed outputs: `response` blocks; if none, the declared `outputs`; if none, the sinks. The
 *   target (its exit, for a container) counts as observed. A destination (`to`) replaces them all:
 *   its exit is the only observed output.
 * - Diff, from the DAG's roots down, not past the target: a node is changed when it is new, its
 *   definition (type, params, `volatile`, `retry`; a container's kind, source, bounds and body
 *   set) differs from the frozen workflow's, its wiring differs (enclosing container, incoming
 *   edges with their handles, a router's route handles, whether a disabled block has successors), it is `volatile`, or at one of its
 *   recorded instances it has no record, failed, did not finish, or (completed, not an end) its
 *   params resolved against the snapshot differ from the recorded inputs.
 * - A disabled block (`disabled: true`) is part of the definition; it is never volatile; with
 *   successors its resolved inputs are `{ value: <output of its one incoming edge's source> }`, as
 *   a sink it is skipped and reads nothing.
 * - A block pinned as a whole (`pins[id]`) is changed only when its wiring changed or a pin differs
 *   from an instance's prior completed output (`pinned`); pinned on some instances (`id@i`), it is
 *   changed as any block is, or when one of those pins differs.
 * - Prune: the changed nodes that are ancestors of an observed output, and the target, are roots.
 * - Scope: the roots' downstream closure restricted to ancestors of observed outputs. A container
 *   holding a node of the closure restarts whole (every member re-runs, and what its end reaches)
 *   when it is a `while` loop (its condition reads the previous iteration), its start is in the
 *   closure (its instances are evaluated again), its end is a root (it did not finish), or an
 *   enclosing container restarts whole — except a top-level parallel whose only change is its own
 *   `count` / `items` (no other root reaches it or its body): it re-runs the branches whose item
 *   changed, all when its count changed. Any other container is entered (its end re-runs) and re-runs
 *   per instance: a `count` / `forEach` body cannot read another iteration (a body reference reads
 *   its own iteration, or what precedes the loop) and parallel branches are independent.
 * - Instances (of the prior run): a re-run node re-runs at an instance when it is the target, it
 *   changed there (a new block, or a changed definition, wiring or `volatile`, changes it at every
 *   instance), an instance it follows re-runs (same iteration or branch; a body's first members
 *   follow their container's start, in the listed branches of a branch-reset parallel; an end
 *   re-runs where anything inside its container re-runs), or it lies in an instance of a whole-restarting
 *   container that restarts (its start re-runs there, its end is a root changed there, or — a
 *   `while` loop — a root inside it changed there, or is the target). Every other prior record of a
 *   re-run node is kept.
 * - Pruned: downstream of a change or of the target, but not re-run. Reused: everything else.
 *
 * @since 0.1.0
 */
import type * as Snapshot from "../Snapshot.ts"
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
  /** Containers that restart whole (the others that re-run are entered and re-run per instance). */
  readonly whole: ReadonlySet<string>
  /** The instance ids of the prior run whose records the run keeps (reused, not re-executed). */
  readonly kept: ReadonlySet<string>
}

interface Graph {
  readonly nodes: ReadonlyArray<string>
  readonly succ: ReadonlyMap<string, ReadonlySet<string>>
  readonly pred: ReadonlyMap<string, ReadonlySet<string>>
  /** The workflow id a node belongs to (a sentinel's container). */
  readonly owner: ReadonlyMap<string, string>
  /** Enclosing containers of a node, outer to inner (a sentinel excludes its own container). */
  readonly chain: ReadonlyMap<string, ReadonlyArray<string>>
}

const expand = (s: Model.Structure): Graph => {
  const nodes: Array<string> = []
  const owner = new Map<string, string>()
  const chain = new Map<string, ReadonlyArray<string>>()
  const add = (node: string, id: string) => {
    nodes.push(node)
    owner.set(node, id)
    chain.set(node, Model.chainOf(s, id))
  }
  for (const id of s.blocks.keys()) add(id, id)
  for (const id of s.containers.keys()) {
    add(`${id}#start`, id)
    add(`${id}#end`, id)
  }
  const succ = new Map(nodes.map((n) => [n, new Set<string>()]))
  const pred = new Map(nodes.map((n) => [n, new Set<string>()]))
  const link = (from: string, to: string) => {
    succ.get(from)!.add(to)
    pred.get(to)!.add(from)
  }
  for (const edge of s.workflow.edges) link(Model.exitNode(s, edge.source), Model.entryNode(s, edge.target))
  for (const [id, c] of s.containers) {
    for (const member of c.def.body) {
      if ((s.incoming.get(member) ?? []).length === 0) link(`${id}#start`, Model.entryNode(s, member))
      if ((s.outgoing.get(member) ?? []).length === 0) link(Model.exitNode(s, member), `${id}#end`)
    }
  }
  return { nodes, succ, pred, owner, chain }
}

/** Everything reachable from `from` (inclusive), not expanding `stop`. */
const reach = (from: Iterable<string>, next: ReadonlyMap<string, ReadonlySet<string>>, stop?: string): Set<string> => {
  const seen = new Set<string>()
  const stack = [...from]
  while (stack.length > 0) {
    const n = stack.pop()!
    if (seen.has(n)) continue
    seen.add(n)
    if (n !== stop) for (const m of next.get(n) ?? []) stack.push(m)
  }
  return seen
}

/**
 * The expanded DAG's nodes (blocks and container sentinels) downstream of `from`, inclusive, by
 * the rules above: what a change at `from` can reach.
 *
 * @since 0.1.0
 */
export const downstreamOf = (workflow: Workflow.Workflow, from: string): ReadonlySet<string> =>
  reach([from], expand(Model.structure(workflow)).succ)

/**
 * The containers enclosing a node of the expanded DAG, outer to inner (a sentinel's own container
 * included last).
 *
 * @since 0.1.0
 */
export const enclosingOf = (workflow: Workflow.Workflow, node: string): ReadonlyArray<string> => {
  const s = Model.structure(workflow)
  const hash = node.lastIndexOf("#")
  const own = hash > 0 && s.containers.has(node.slice(0, hash)) ? node.slice(0, hash) : undefined
  return own === undefined ? Model.chainOf(s, node) : [...Model.chainOf(s, own), own]
}

/**
 * The observed outputs: response blocks, else declared outputs, else sinks.
 *
 * @since 0.1.0
 */
export const observedOf = (workflow: Workflow.Workflow): Set<string> => {
  const s = Model.structure(workflow)
  const responses = workflow.blocks.filter((b) => b.type === "response").map((b) => b.id)
  if (responses.length > 0) return new Set(responses)
  if (workflow.outputs !== undefined && workflow.outputs.length > 0) {
    return new Set(workflow.outputs.map((id) => Model.exitNode(s, id)))
  }
  const g = expand(s)
  return new Set(g.nodes.filter((n) => g.succ.get(n)!.size === 0))
}

/**
 * The nodes an observed output or the target depends on: their ancestors, inclusive (node ids).
 * With a destination `to`, it is the only observed output, and the target is not added (a run to a
 * block needs only what the destination reads).
 *
 * @since 0.1.0
 */
export const neededBy = (workflow: Workflow.Workflow, target?: string, to?: string): Set<string> => {
  const s = Model.structure(workflow)
  if (to !== undefined) return reach([Model.exitNode(s, to)], expand(s).pred)
  const observed = observedOf(workflow)
  if (target !== undefined) observed.add(Model.exitNode(s, target))
  return reach(observed, expand(s).pred)
}

/** What a block's or container's behaviour depends on, as canonical text. */
const definitionText = (s: Model.Structure, id: string): string | undefined => {
  const block = s.blocks.get(id)
  if (block !== undefined) {
    return Model.canonical({
      type: block.type,
      params: block.params ?? {},
      volatile: block.volatile ?? false,
      retry: block.retry ?? null,
      disabled: block.disabled ?? false
    })
  }
  const c = s.containers.get(id)
  if (c === undefined) return undefined
  const def = c.def as Partial<Workflow.Loop & Workflow.Parallel>
  return Model.canonical({
    container: c.kind,
    kind: def.kind!,
    count: def.count ?? null,
    items: def.items ?? null,
    condition: def.condition ?? null,
    maxIterations: def.maxIterations ?? null,
    concurrency: def.concurrency ?? null,
    body: [...def.body!].sort()
  })
}

const wiringText = (s: Model.Structure, id: string): string => {
  const incoming = (s.incoming.get(id) ?? []).map((e) => `${e.source}|${e.handle ?? ""}`).sort()
  const routes = s.blocks.get(id)?.type === "router"
    ? [...new Set((s.outgoing.get(id) ?? []).map((e) => e.handle ?? ""))].sort()
    : []
  // A disabled block passes its input on when it has successors, and is skipped when it has none.
  const role = s.blocks.get(id)?.disabled === true ? [(s.outgoing.get(id) ?? []).length > 0 ? "pass" : "sink"] : []
  return JSON.stringify([s.parent.get(id) ?? "", incoming, routes, ...role])
}

/** Instance paths of a node inside `chain`, from the snapshot's loop and parallel scopes. */
const pathsIn = (snapshot: Snapshot.Snapshot, chain: ReadonlyArray<string>): Array<Array<number>> => {
  let paths: Array<Array<number>> = [[]]
  for (const c of chain) {
    const next: Array<Array<number>> = []
    for (const path of paths) {
      const key = Model.instanceKey(c, path)
      const count = snapshot.loops[key]?.iterations ?? snapshot.parallels[key]?.count ?? 0
      for (let i = 0; i < count; i++) next.push([...path, i])
    }
    paths = next
  }
  return paths
}

/**
 * Resolves a value as the prior run would have at one instance: against the snapshot's records,
 * its input, the current variables and the recorded items; `undefined` when it does not resolve.
 */
const resolveOnSnapshot = (
  s: Model.Structure,
  snapshot: Snapshot.Snapshot,
  chain: ReadonlyArray<string>,
  path: ReadonlyArray<number>,
  value: Json
): Json | undefined => {
  const innermost = (kind: "loop" | "parallel") => {
    for (let d = chain.length - 1; d >= 0; d--) if (s.containers.get(chain[d]!)!.kind === kind) return d
    return -1
  }
  const variables = s.workflow.variables ?? {}
  const resolved = Model.resolve(value, {
    block: (id) => {
      const record = snapshot.nodes[Model.instanceKey(Model.exitNode(s, id), path.slice(0, Model.chainOf(s, id).length))]
      if (record?.status === "skipped") return { value: null }
      return record?.status === "completed" && record.output !== undefined ? { value: record.output } : undefined
    },
    input: (key) => (Object.hasOwn(snapshot.input, key) ? snapshot.input[key] : undefined),
    variable: (name) => (Object.hasOwn(variables, name) ? variables[name] : undefined),
    index: (kind) => {
      const d = innermost(kind)
      return d === -1 ? undefined : path[d]
    },
    item: (kind) => {
      const d = innermost(kind)
      if (d === -1) return undefined
      const key = Model.instanceKey(chain[d]!, path.slice(0, d))
      return (snapshot.loops[key]?.items ?? snapshot.parallels[key]?.items)?.[path[d]!]
    }
  })
  return resolved.ok ? resolved.value : undefined
}

const configOf = (def: Workflow.Loop | Workflow.Parallel): Json => {
  const config: Record<string, Json> = {}
  if (def.count !== undefined) config["count"] = def.count
  if (def.items !== undefined) config["items"] = def.items
  return config
}

/** Per changed node: the instance paths (`.`-joined) where it changed, or `all`. */
type Where = Map<string, Set<string> | "all">

const at = (where: Where | undefined, node: string, path: ReadonlyArray<number>) => {
  if (where === undefined) return
  const found = where.get(node)
  if (found === "all") return
  if (found === undefined) where.set(node, new Set([path.join(".")]))
  else found.add(path.join("."))
}

const diffNode = (
  s: Model.Structure,
  old: Model.Structure,
  g: Graph,
  snapshot: Snapshot.Snapshot,
  node: string,
  where?: Where
): Set<string> => {
  const id = g.owner.get(node)!
  const isEnd = node.endsWith("#end")
  const existed = s.blocks.has(id) ? old.blocks.has(id) : old.containers.has(id)
  if (!existed) return new Set(["new-block"])
  const reasons = new Set<string>()
  if (definitionText(s, id) !== definitionText(old, id)) reasons.add("definition-changed")
  if (!isEnd && wiringText(s, id) !== wiringText(old, id)) reasons.add("wiring-changed")
  // A disabled block passes its one input's output on: not volatile, its own params unread.
  const disabled = s.blocks.get(id)?.disabled === true
  if (s.blocks.get(id)?.volatile === true && !disabled) reasons.add("volatile")
  const chain = g.chain.get(node)!
  for (const path of pathsIn(snapshot, chain)) {
    const record = snapshot.nodes[Model.instanceKey(node, path)]
    if (record === undefined) {
      reasons.add("missing-prior-state")
      at(where, node, path)
      continue
    }
    if (record.status === "failed") reasons.add("failed-last-time")
    else if (record.status !== "completed" && record.status !== "skipped") reasons.add("incomplete")
    if (record.status !== "completed" && record.status !== "skipped") at(where, node, path)
    if (record.status !== "completed" || isEnd) continue
    const block = s.blocks.get(id)
    // A disabled sink reads nothing (it is skipped).
    if (disabled && (s.outgoing.get(id) ?? []).length === 0) continue
    const value = block === undefined
      ? configOf(s.containers.get(id)!.def)
      : disabled
      ? { value: { $ref: `blocks.${s.incoming.get(id)![0]!.source}.output` } }
      : block.params ?? {}
    const resolved = resolveOnSnapshot(s, snapshot, chain, path, value)
    if (resolved === undefined || record.inputs === undefined || !Model.identical(resolved, record.inputs)) {
      reasons.add("inputs-changed")
      at(where, node, path)
    }
  }
  if (["new-block", "definition-changed", "wiring-changed", "volatile"].some((r) => reasons.has(r))) where?.set(node, "all")
  return reasons
}

/**
 * The reasons of a pinned block (`undefined` when it has no pin): pinned as a whole, only whether
 * it is reached (its wiring) and whether a pin differs from the instance's prior completed output
 * count; pinned on some instances, what counts for any block, and those pins.
 */
const diffPinned = (
  s: Model.Structure,
  old: Model.Structure,
  g: Graph,
  snapshot: Snapshot.Snapshot,
  node: string,
  pins: Readonly<Record<string, Json>>,
  where: Where
): Set<string> | undefined => {
  const id = g.owner.get(node)!
  if (!s.blocks.has(id) || !Object.keys(pins).some((key) => key === id || key.startsWith(`${id}@`))) return undefined
  const whole = Object.hasOwn(pins, id)
  const reasons = whole ? new Set<string>() : diffNode(s, old, g, snapshot, node, where)
  if (whole && !old.blocks.has(id)) reasons.add("pinned")
  if (whole && old.blocks.has(id) && wiringText(s, id) !== wiringText(old, id)) {
    reasons.add("wiring-changed")
    where.set(node, "all")
  }
  for (const path of pathsIn(snapshot, g.chain.get(node)!)) {
    const pin = pins[Model.instanceKey(id, path)] ?? pins[id]
    if (pin === undefined) continue
    const record = snapshot.nodes[Model.instanceKey(node, path)]
    if (record?.status !== "completed" || record.output === undefined || !Model.identical(record.output, pin)) {
      reasons.add("pinned")
      at(where, node, path)
    }
  }
  return reasons
}

/** Branches of a top-level parallel whose only change is its own count/items, or undefined. */
const branchesOf = (
  s: Model.Structure,
  old: Model.Structure,
  g: Graph,
  snapshot: Snapshot.Snapshot,
  changed: ReadonlyMap<string, ReadonlySet<string>>,
  roots: ReadonlySet<string>,
  id: string
): Set<number> | undefined => {
  const c = s.containers.get(id)!
  const before = old.containers.get(id)
  if (c.kind !== "parallel" || before?.kind !== "parallel" || g.chain.get(`${id}#start`)!.length > 0) return undefined
  const only = (node: string, allowed: ReadonlyArray<string>) => [...(changed.get(node) ?? [])].every((r) => allowed.includes(r))
  if (!only(`${id}#start`, ["definition-changed", "inputs-changed"]) || !only(`${id}#end`, ["definition-changed"])) return undefined
  const strip = (def: Workflow.Parallel) => Model.canonical({ kind: def.kind, concurrency: def.concurrency ?? null, body: [...def.body].sort() })
  if (strip(before.def) !== strip(c.def)) return undefined
  const others = reach([...roots].filter((r) => r !== `${id}#start`), g.succ)
  if (others.has(`${id}#start`) || g.nodes.some((n) => others.has(n) && g.chain.get(n)!.includes(id))) return undefined
  const prior = snapshot.parallels[id]
  const config = resolveOnSnapshot(s, snapshot, [], [], configOf(c.def)) as { readonly [k: string]: Json } | undefined
  if (prior === undefined || config === undefined) return undefined
  const items = Array.isArray(config["items"]) ? config["items"] : undefined
  const count = items !== undefined ? items.length : typeof config["count"] === "number" ? Math.max(0, Math.floor(config["count"])) : -1
  if (count !== prior.count) return undefined
  const out = new Set<number>()
  if (items !== undefined) {
    for (let b = 0; b < count; b++) if (!Model.identical(items[b]!, prior.items?.[b] ?? null)) out.add(b)
  }
  return out
}

/**
 * Plans a run from `target` (or, without a snapshot, over no prior state: every node changed) by the
 * definitions, observing only the destination `to` when given.
 *
 * @since 0.1.0
 */
export const specPlan = (
  workflow: Workflow.Workflow,
  snapshot: Snapshot.Snapshot | undefined,
  target: string | undefined,
  to?: string,
  pins: Readonly<Record<string, Json>> = {}
): SpecPlan => {
  const s = Model.structure(workflow)
  const g = expand(s)
  const targetNode = target === undefined ? undefined : Model.entryNode(s, target)
  const wanted = neededBy(workflow, target, to)

  const changed = new Map<string, Set<string>>()
  const where: Where = new Map()
  if (snapshot === undefined) {
    for (const n of g.nodes) changed.set(n, new Set(["missing-prior-state"]))
  } else {
    const old = Model.structure(snapshot.workflow)
    const sources = g.nodes.filter((n) => g.pred.get(n)!.size === 0)
    for (const n of reach(sources, g.succ, targetNode)) {
      if (n === targetNode) continue
      const reasons = diffPinned(s, old, g, snapshot, n, pins, where) ?? diffNode(s, old, g, snapshot, n, where)
      if (reasons.size > 0) changed.set(n, reasons)
    }
  }
  const roots = new Set([...changed.keys()].filter((n) => wanted.has(n)))
  if (targetNode !== undefined) roots.add(targetNode)

  const branches = new Map<string, Set<number>>()
  if (snapshot !== undefined) {
    const old = Model.structure(snapshot.workflow)
    for (const root of roots) {
      if (!root.endsWith("#start") || root === targetNode) continue
      const id = g.owner.get(root)!
      const reset = branchesOf(s, old, g, snapshot, changed, roots, id)
      if (reset !== undefined) branches.set(id, reset)
    }
  }

  const closure = reach(roots, g.succ)
  // Containers restarting whole (with their end's downstream), round by round; the others entered.
  const whole = new Set<string>()
  const restartsWhole = (c: string, set: ReadonlySet<string>) => {
    if (branches.has(c)) return false
    const def = s.containers.get(c)!
    return (def.kind === "loop" && (def.def as Workflow.Loop).kind === "while") || set.has(`${c}#start`) ||
      roots.has(`${c}#end`) || Model.chainOf(s, c).some((outer) => whole.has(outer))
  }
  const inside = (m: string, c: string) => g.owner.get(m) === c || g.chain.get(m)!.includes(c)
  const grow = (set: Set<string>, spread: boolean) => {
    for (let grew = true; grew;) {
      grew = false
      for (const n of [...set]) {
        const own = n.includes("#") ? [g.owner.get(n)!] : []
        for (const c of [...g.chain.get(n)!, ...own]) {
          if (whole.has(c) || restartsWhole(c, set)) {
            whole.add(c)
            for (const m of g.nodes) {
              if (inside(m, c) && !set.has(m)) {
                set.add(m)
                grew = true
              }
            }
            if (spread) {
              for (const m of reach([`${c}#end`], g.succ)) {
                if (!set.has(m)) {
                  set.add(m)
                  grew = true
                }
              }
            }
          } else if (!set.has(`${c}#end`)) {
            set.add(`${c}#end`)
            grew = true
          }
        }
      }
    }
  }
  grow(closure, true)
  const rerun = new Set([...closure].filter((n) => wanted.has(n)))
  grow(rerun, false)
  const affected = reach([...changed.keys(), ...(targetNode === undefined ? [] : [targetNode])], g.succ)
  const pruned = new Set([...affected].filter((n) => !rerun.has(n)))
  const reused = new Set(g.nodes.filter((n) => !rerun.has(n) && !pruned.has(n)))
  const start = new Set([...rerun].filter((n) => ![...g.pred.get(n)!].some((p) => rerun.has(p))))
  const kept = snapshot === undefined ? new Set<string>() : keptOf(s, g, snapshot, { rerun, pruned, roots, where, whole, branches, targetNode })
  const restarted = new Set([...whole].filter((c) => rerun.has(`${c}#start`) || rerun.has(`${c}#end`)))
  return { rerun, reused, pruned, start, changed, branches, whole: restarted, kept }
}

/** The instances of the prior run a plan keeps: every record of a node neither pruned nor re-run at it. */
const keptOf = (
  s: Model.Structure,
  g: Graph,
  snapshot: Snapshot.Snapshot,
  plan: {
    readonly rerun: ReadonlySet<string>
    readonly pruned: ReadonlySet<string>
    readonly roots: ReadonlySet<string>
    readonly where: Where
    readonly whole: ReadonlySet<string>
    readonly branches: ReadonlyMap<string, ReadonlySet<number>>
    readonly targetNode: string | undefined
  }
): Set<string> => {
  const { rerun, pruned, roots, where, whole, branches, targetNode } = plan
  const pathsOf = (n: string) => pathsIn(snapshot, g.chain.get(n)!)
  const changedAt = (n: string, path: ReadonlyArray<number>) => {
    if (n === targetNode) return true
    const w = where.get(n)
    return roots.has(n) && (w === "all" || w?.has(path.join(".")) === true)
  }
  const isPrefix = (q: ReadonlyArray<number>, p: ReadonlyArray<number>) => q.every((x, k) => p[k] === x)
  // Instances (node, path) that re-run, as a fixpoint.
  const runs = new Set<string>()
  const has = (n: string, path: ReadonlyArray<number>) => runs.has(Model.instanceKey(n, path))
  // A whole-restarting container's instance restarts: its start re-runs there, its end changed
  // there, or (a `while` loop) a node inside changed there.
  const restarts = (c: string, q: ReadonlyArray<number>) => {
    if (!whole.has(c)) return false
    if (has(`${c}#start`, q) || changedAt(`${c}#end`, q)) return true
    const def = s.containers.get(c)!
    if (!(def.kind === "loop" && (def.def as Workflow.Loop).kind === "while")) return false
    return g.nodes.some((m) =>
      (g.chain.get(m)!.includes(c) || m === `${c}#start` || m === `${c}#end`) && roots.has(m) &&
      pathsOf(m).some((p) => isPrefix(q, p) && changedAt(m, p))
    )
  }
  for (let grew = true; grew;) {
    grew = false
    for (const n of rerun) {
      const chain = g.chain.get(n)!
      for (const path of pathsOf(n)) {
        const key = Model.instanceKey(n, path)
        if (runs.has(key)) continue
        const own = n.includes("#") ? g.owner.get(n)! : undefined
        const containers = own === undefined ? chain : [...chain, own]
        let hit = chain.length === 0 || changedAt(n, path) ||
          containers.some((c, d) => restarts(c, d < chain.length ? path.slice(0, d) : path))
        for (const m of g.pred.get(n)!) {
          if (hit) break
          const depth = g.chain.get(m)!.length
          if (depth === chain.length) hit = has(m, path)
          else if (depth < chain.length) {
            const partial = branches.get(chain[chain.length - 1]!)
            hit = has(m, path.slice(0, -1)) && (partial === undefined || partial.has(path[path.length - 1]!))
          }
        }
        // A container instance is entered when anything inside it re-runs there: its end re-runs.
        if (!hit && n.endsWith("#end")) {
          hit = [...rerun].some((m) => g.chain.get(m)!.includes(own!) && pathsOf(m).some((p) => isPrefix(path, p) && has(m, p)))
        }
        if (hit) {
          runs.add(key)
          grew = true
        }
      }
    }
  }
  const kept = new Set<string>()
  for (const n of g.nodes) {
    if (pruned.has(n)) continue
    for (const path of pathsOf(n)) {
      const key = Model.instanceKey(n, path)
      if (snapshot.nodes[key] !== undefined && !runs.has(key) && !(rerun.has(n) && g.chain.get(n)!.length === 0)) kept.add(key)
    }
  }
  return kept
}
