/**
 * A reference executor for property tests: it runs a workflow with every block modelled as a seeded
 * pure function of (definition fingerprint, resolved inputs) and writes the `Snapshot` a real engine
 * would write. It can also execute a `Plan` over a snapshot — running only the plan's re-run nodes
 * that get activated and reusing the hydrated state everywhere else — which is what the soundness
 * and minimality laws compare against a from-scratch run.
 *
 * **Semantics** (the contract the engine implements too)
 *
 * - A node with no incoming edge in its scope (top level or one container body) is active when its
 *   scope runs. Otherwise it is active when one incoming edge is live; it is `skipped` if none is.
 *   An edge is live when its source completed and either has no decision, the edge has no handle,
 *   or the handle equals the decision; an `"error"` edge is live only when its source failed.
 * - `router` blocks choose one of the distinct handles of their outgoing edges by the hash of their
 *   resolved inputs; `condition` blocks choose `"true"` or `"false"` the same way.
 * - A reference to a skipped block reads `null`; a reference that does not resolve fails the block.
 * - Loops run `count` iterations, one per `items` element, or (`while`) until the hash of the
 *   resolved `condition` says stop, bounded by `maxIterations`. Parallels run one branch per item
 *   or `count` branches. A container's output is the array of its iterations/branches, each the
 *   record `{ <exit id>: output }` of the body's exit nodes that completed, keys in id order.
 *
 * Built by hand because it is the executable specification of the run semantics, not a library
 * concern.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Fingerprint from "../Fingerprint.ts"
import * as NodeId from "../NodeId.ts"
import * as Reference from "../Reference.ts"
import type * as Snapshot from "../Snapshot.ts"
import type * as Workflow from "../Workflow.ts"

type Json = Workflow.Json
type Container = { readonly kind: "loop"; readonly loop: Workflow.Loop } | {
  readonly kind: "parallel"
  readonly parallel: Workflow.Parallel
}

/**
 * The static shape of a workflow the executor walks: scopes, their members and edges.
 *
 * @since 0.1.0
 */
export interface Structure {
  readonly workflow: Workflow.Workflow
  readonly blocks: ReadonlyMap<string, Workflow.Block>
  readonly containers: ReadonlyMap<string, Container>
  /** Immediate enclosing container of a block or container id. */
  readonly parent: ReadonlyMap<string, string>
  /** Members of each scope in workflow order; the top level is the key `""`. */
  readonly members: ReadonlyMap<string, ReadonlyArray<string>>
  readonly incoming: ReadonlyMap<string, ReadonlyArray<Workflow.Edge>>
  readonly outgoing: ReadonlyMap<string, ReadonlyArray<Workflow.Edge>>
}

/**
 * Indexes a (valid) workflow for execution.
 *
 * @since 0.1.0
 */
export const structure = (workflow: Workflow.Workflow): Structure => {
  const blocks = new Map(workflow.blocks.map((block) => [block.id, block] as const))
  const containers = new Map<string, Container>()
  for (const loop of workflow.loops ?? []) containers.set(loop.id, { kind: "loop", loop })
  for (const parallel of workflow.parallels ?? []) containers.set(parallel.id, { kind: "parallel", parallel })
  const parent = new Map<string, string>()
  for (const [id, container] of containers) {
    for (const member of bodyOf(container)) parent.set(member, id)
  }
  const members = new Map<string, Array<string>>()
  const add = (scope: string, id: string) => {
    const list = members.get(scope)
    if (list === undefined) members.set(scope, [id])
    else list.push(id)
  }
  for (const block of workflow.blocks) add(parent.get(block.id) ?? "", block.id)
  for (const id of containers.keys()) add(parent.get(id) ?? "", id)
  const incoming = new Map<string, Array<Workflow.Edge>>()
  const outgoing = new Map<string, Array<Workflow.Edge>>()
  for (const edge of workflow.edges) {
    incoming.set(edge.target, [...(incoming.get(edge.target) ?? []), edge])
    outgoing.set(edge.source, [...(outgoing.get(edge.source) ?? []), edge])
  }
  return { workflow, blocks, containers, parent, members, incoming, outgoing }
}

const bodyOf = (container: Container): ReadonlyArray<string> =>
  container.kind === "loop" ? container.loop.body : container.parallel.body

/** The enclosing containers of an id, outer to inner. */
const chainOf = (structure: Structure, id: string): Array<string> => {
  const chain: Array<string> = []
  for (let current = structure.parent.get(id); current !== undefined; current = structure.parent.get(current)) {
    chain.unshift(current)
  }
  return chain
}

/** Members of a scope in a stable topological order (Kahn, ties broken by workflow order). */
const ordered = (structure: Structure, scope: string): ReadonlyArray<string> => {
  const members = structure.members.get(scope) ?? []
  const position = new Map(members.map((id, i) => [id, i] as const))
  const indegree = new Map<string, number>(members.map((id) => [id, 0]))
  for (const id of members) {
    for (const edge of structure.incoming.get(id) ?? []) {
      if (position.has(edge.source)) indegree.set(id, indegree.get(id)! + 1)
    }
  }
  const ready = members.filter((id) => indegree.get(id) === 0)
  const out: Array<string> = []
  while (ready.length > 0) {
    ready.sort((a, b) => position.get(a)! - position.get(b)!)
    const id = ready.shift()!
    out.push(id)
    for (const edge of structure.outgoing.get(id) ?? []) {
      if (!indegree.has(edge.target)) continue
      const left = indegree.get(edge.target)! - 1
      indegree.set(edge.target, left)
      if (left === 0) ready.push(edge.target)
    }
  }
  return out
}

/**
 * How a plan is executed: which nodes re-run (and, for partially reset parallels, which branches);
 * everything else is copied from `state`.
 *
 * @since 0.1.0
 */
export interface Replay {
  readonly rerun: ReadonlySet<string>
  /** Parallels reset branch by branch: container id → the branches to re-run. */
  readonly branches: ReadonlyMap<string, ReadonlySet<number>>
  readonly state: Snapshot.Snapshot
}

/**
 * The outcome of an execution: the snapshot it leaves and the instances it actually executed, in
 * execution order (a reused instance is not executed).
 *
 * @since 0.1.0
 */
export interface Execution {
  readonly snapshot: Snapshot.Snapshot
  readonly executed: ReadonlyArray<string>
}

/**
 * Options of the executor: the seed of every block function and the run input.
 *
 * @since 0.1.0
 */
export interface Options {
  readonly seed?: number
  readonly input?: Readonly<Record<string, Json>>
}

const hashInt = (value: Json): number => Number.parseInt(Fingerprint.hash(value).slice(0, 8), 16)

/**
 * The output of a block: a seeded pure function of its definition fingerprint and resolved inputs.
 * Outputs carry a string (`value`), a number (`n`) and a list (`items`) so that references with
 * paths, `count` and `items` have something to read.
 *
 * @since 0.1.0
 */
export const blockOutput = (seed: number, definition: string, inputs: Json): Json => {
  const digest = Fingerprint.hash([seed, definition, inputs])
  const n = Number.parseInt(digest.slice(0, 2), 16) % 4
  return {
    value: digest,
    n,
    items: Array.from({ length: n }, (_, i) => digest.slice(i * 2, i * 2 + 4))
  }
}

/** `value` blocks output their resolved `value` param and `response` blocks their resolved inputs. */
const outputOf = (seed: number, block: Workflow.Block, definition: string, inputs: Json): Json => {
  if (block.type === "response") return inputs
  if (block.type === "value" && typeof inputs === "object" && inputs !== null && !Array.isArray(inputs)) {
    return (inputs as { readonly [key: string]: Json })["value"] ?? null
  }
  return blockOutput(seed, definition, inputs)
}

interface State {
  readonly nodes: Record<string, Snapshot.NodeRecord>
  readonly loops: Record<string, Snapshot.LoopScope>
  readonly parallels: Record<string, Snapshot.ParallelScope>
  readonly executed: Array<string>
}

interface Frame {
  /** Iteration/branch indices of the enclosing containers, outer to inner. */
  readonly path: ReadonlyArray<number>
  /** Enclosing containers, outer to inner (same length as `path`). */
  readonly containers: ReadonlyArray<string>
  /** Items of the enclosing containers that iterate over items. */
  readonly items: ReadonlyArray<Json | undefined>
  /** A kept branch of a parallel reset branch by branch: everything in it is copied. */
  readonly kept: boolean
}

const instanceOf = (node: NodeId.Node, path: ReadonlyArray<number>) => NodeId.formatInstance({ node, path })

const nodeOfId = (structure: Structure, id: string, side: "start" | "end"): NodeId.Node =>
  structure.containers.has(id) ? (side === "start" ? NodeId.start(id) : NodeId.end(id)) : NodeId.block(id)

/**
 * Executes a workflow from scratch, or replays a plan over a prior state.
 *
 * @since 0.1.0
 */
export const execute = (workflow: Workflow.Workflow, options: Options = {}, replay?: Replay): Execution => {
  const seed = options.seed ?? 0
  const input = replay?.state.input ?? options.input ?? {}
  const s = structure(workflow)
  const state: State = { nodes: {}, loops: {}, parallels: {}, executed: [] }
  const prior = replay?.state

  const reruns = (id: string): boolean => {
    if (replay === undefined) return true
    const node = nodeOfId(s, id, "start")
    return replay.rerun.has(NodeId.format(node))
  }

  const envFor = (frame: Frame, own?: { readonly loop: string; readonly index: number }): Reference.Environment => {
    const innermost = (kind: "loop" | "parallel"): number => {
      for (let i = frame.containers.length - 1; i >= 0; i--) {
        if (s.containers.get(frame.containers[i]!)?.kind === kind) return i
      }
      return -1
    }
    return {
      blockOutput: (id) => {
        const chain = chainOf(s, id)
        if (chain.some((c, i) => frame.containers[i] !== c)) {
          if (own === undefined || chain[chain.length - 1] !== own.loop) return undefined
        }
        const path = own !== undefined && chain[chain.length - 1] === own.loop
          ? [...frame.path.slice(0, chain.length - 1), own.index]
          : frame.path.slice(0, chain.length)
        const record = state.nodes[instanceOf(nodeOfId(s, id, "end"), path)]
        if (record === undefined) return undefined
        return record.status === "skipped" ? null : record.output
      },
      input: (key) => input[key],
      variable: (name) => workflow.variables?.[name],
      index: (scope) => {
        if (own !== undefined && scope === "loop") return own.index
        const i = innermost(scope)
        return i === -1 ? undefined : frame.path[i]
      },
      item: (scope) => {
        const i = innermost(scope)
        return i === -1 ? undefined : frame.items[i]
      }
    }
  }

  const live = (edge: Workflow.Edge, frame: Frame): boolean => {
    const record = state.nodes[instanceOf(nodeOfId(s, edge.source, "end"), frame.path)]
    if (record === undefined) return false
    if (edge.handle === "error") return record.status === "failed"
    if (record.status !== "completed") return false
    return record.decision === undefined || edge.handle === undefined || edge.handle === record.decision
  }

  const skip = (node: NodeId.Node, frame: Frame, definition: string) => {
    state.nodes[instanceOf(node, frame.path)] = { status: "skipped", attempt: 0, fingerprints: { definition } }
  }

  const copy = (key: string) => {
    const record = prior?.nodes[key]
    if (record !== undefined) state.nodes[key] = record
  }

  const runBlock = (block: Workflow.Block, frame: Frame, active: boolean) => {
    const node = NodeId.block(block.id)
    const key = instanceOf(node, frame.path)
    const definition = Fingerprint.ofBlock(block)
    if (!active) return skip(node, frame, definition)
    state.executed.push(key)
    const resolved = Reference.resolve(block.params ?? {}, envFor(frame))
    if (Result.isFailure(resolved)) {
      state.nodes[key] = {
        status: "failed",
        attempt: 1,
        fingerprints: { definition },
        error: { message: `unresolved ${resolved.failure.reference} (${resolved.failure.reason})` }
      }
      return
    }
    const inputs = resolved.success
    const inputsFingerprint = Fingerprint.hash(inputs)
    const output = outputOf(seed, block, definition, inputs)
    const decision = decide(block, inputs, definition)
    state.nodes[key] = {
      status: "completed",
      attempt: 1,
      inputs,
      output,
      fingerprints: { definition, inputs: inputsFingerprint, output: Fingerprint.hash(output) },
      ...(decision === undefined ? {} : { decision })
    }
  }

  const decide = (block: Workflow.Block, inputs: Json, definition: string): string | undefined => {
    if (block.type === "condition") return hashInt([definition, inputs]) % 2 === 0 ? "true" : "false"
    if (block.type !== "router") return undefined
    const handles = [...new Set((s.outgoing.get(block.id) ?? []).flatMap((e) => e.handle === undefined ? [] : [e.handle]))]
      .sort()
    return handles.length === 0 ? undefined : handles[hashInt([definition, inputs]) % handles.length]
  }

  const runScope = (scope: string, frame: Frame) => {
    for (const id of ordered(s, scope)) {
      const incoming = (s.incoming.get(id) ?? []).filter((edge) => (s.parent.get(edge.source) ?? "") === scope)
      const block = s.blocks.get(id)
      if (!frame.kept && reruns(id)) {
        const active = incoming.length === 0 || incoming.some((edge) => live(edge, frame))
        if (block !== undefined) runBlock(block, frame, active)
        else runContainer(id, frame, active)
      } else {
        reuse(id, frame)
      }
    }
  }

  const reuse = (id: string, frame: Frame) => {
    if (!s.containers.has(id)) return copy(instanceOf(NodeId.block(id), frame.path))
    const scopeKey = instanceOf(NodeId.block(id), frame.path)
    for (const key of [instanceOf(NodeId.start(id), frame.path), instanceOf(NodeId.end(id), frame.path)]) copy(key)
    const loop = prior?.loops[scopeKey]
    if (loop !== undefined) state.loops[scopeKey] = loop
    const parallel = prior?.parallels[scopeKey]
    if (parallel !== undefined) state.parallels[scopeKey] = parallel
    const count = loop?.iterations ?? parallel?.count ?? 0
    for (let i = 0; i < count; i++) {
      const body = { ...frame, path: [...frame.path, i], containers: [...frame.containers, id] }
      for (const member of s.members.get(id) ?? []) reuse(member, body)
    }
  }

  const runContainer = (id: string, frame: Frame, active: boolean) => {
    const container = s.containers.get(id)!
    const definition = container.kind === "loop"
      ? Fingerprint.ofContainer(container.loop, "loop")
      : Fingerprint.ofContainer(container.parallel, "parallel")
    const startKey = instanceOf(NodeId.start(id), frame.path)
    const endKey = instanceOf(NodeId.end(id), frame.path)
    const scopeKey = instanceOf(NodeId.block(id), frame.path)
    if (!active) {
      skip(NodeId.start(id), frame, definition)
      skip(NodeId.end(id), frame, definition)
      return
    }
    state.executed.push(startKey)
    const env = envFor(frame)
    const config: Record<string, Json> = {}
    const source = container.kind === "loop" ? container.loop : container.parallel
    if (source.count !== undefined) config["count"] = source.count
    if (source.items !== undefined) config["items"] = source.items
    const resolved = Reference.resolve(config, env)
    const fail = (message: string) => {
      const record: Snapshot.NodeRecord = { status: "failed", attempt: 1, fingerprints: { definition }, error: { message } }
      state.nodes[startKey] = record
      state.nodes[endKey] = record
    }
    if (Result.isFailure(resolved)) return fail(`unresolved ${resolved.failure.reference} (${resolved.failure.reason})`)
    const values = resolved.success as Record<string, Json>
    const items = Array.isArray(values["items"]) ? values["items"] : undefined
    const count = typeof values["count"] === "number" ? values["count"] : undefined
    if ((source.items !== undefined && items === undefined) || (source.count !== undefined && count === undefined)) {
      return fail("count must be a number and items an array")
    }
    const max = container.kind === "loop" ? container.loop.maxIterations ?? Number.POSITIVE_INFINITY : Infinity
    const planned = Math.min(items?.length ?? Math.max(0, Math.floor(count ?? 0)), max)
    state.nodes[startKey] = {
      status: "completed",
      attempt: 1,
      inputs: values,
      output: values,
      fingerprints: { definition, inputs: Fingerprint.hash(values), output: Fingerprint.hash(values) }
    }
    const exits = (s.members.get(id) ?? []).filter((member) =>
      !(s.outgoing.get(member) ?? []).some((edge) => s.parent.get(edge.target) === id)
    ).sort()
    const outputs: Array<Json> = []
    const partial = replay?.branches.get(id)
    const priorScope = prior?.parallels[scopeKey]
    const isWhile = container.kind === "loop" && container.loop.kind === "while"
    const bound = isWhile ? (container.loop.maxIterations ?? 1) : planned
    for (let i = 0; i < bound; i++) {
      const body: Frame = {
        path: [...frame.path, i],
        containers: [...frame.containers, id],
        items: [...frame.items, items?.[i]],
        kept: partial !== undefined && !partial.has(i)
      }
      if (!body.kept) runScope(id, body)
      else for (const member of s.members.get(id) ?? []) reuse(member, body)
      const record: Record<string, Json> = {}
      for (const exit of exits) {
        const r = state.nodes[instanceOf(nodeOfId(s, exit, "end"), body.path)]
        if (r?.status === "completed" && r.output !== undefined) record[exit] = r.output
      }
      outputs.push(body.kept ? priorScope?.outputs[i] ?? record : record)
      if (isWhile && container.kind === "loop") {
        const condition = Reference.resolve(container.loop.condition ?? null, envFor(frame, { loop: id, index: i }))
        const go = Result.isSuccess(condition) && hashInt([definition, condition.success, i]) % 3 !== 0
        if (!go) break
      }
    }
    if (container.kind === "loop") {
      state.loops[scopeKey] = { iterations: outputs.length, ...(items === undefined ? {} : { items }), outputs, done: true }
    } else {
      state.parallels[scopeKey] = { count: outputs.length, ...(items === undefined ? {} : { items }), outputs, done: true }
    }
    if (replay !== undefined && !replay.rerun.has(NodeId.format(NodeId.end(id)))) return copy(endKey)
    state.executed.push(endKey)
    state.nodes[endKey] = {
      status: "completed",
      attempt: 1,
      inputs: outputs,
      output: outputs,
      fingerprints: { definition, inputs: Fingerprint.hash(outputs), output: Fingerprint.hash(outputs) }
    }
  }

  runScope("", { path: [], containers: [], items: [], kept: false })
  const failed = Object.values(state.nodes).some((record) => record.status === "failed")
  return {
    snapshot: {
      schemaVersion: 1,
      workflow,
      input,
      status: failed ? "failed" : "completed",
      nodes: state.nodes,
      loops: state.loops,
      parallels: state.parallels,
      pending: [],
      waits: [],
      pauses: [],
      diagnostics: { messages: [], finalization: failed ? "failed" : "completed" }
    },
    executed: state.executed
  }
}
