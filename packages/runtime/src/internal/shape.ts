/**
 * The static scope structure the scope interpreter walks (the top level, then each container's
 * body), computed once per workflow value: members of every scope in a stable topological order,
 * in-scope edges, enclosing containers and each container's exits.
 */
import { Fingerprint, NodeId, Reference, type Snapshot, Workflow } from "@ripple/core"
import { retries } from "./attempt.ts"

/** A loop or parallel of the workflow. */
export type Container =
  | { readonly kind: "loop"; readonly loop: Workflow.Loop; readonly definition: string }
  | { readonly kind: "parallel"; readonly parallel: Workflow.Parallel; readonly definition: string }

/** The static shape the interpreter walks, computed once per workflow value. */
export interface Shape {
  /** The blocks as the engine runs them: a disabled block with successors as its pass-through. */
  readonly blocks: ReadonlyMap<string, Workflow.Block>
  /** Disabled blocks without successors: skipped whenever they are reached. */
  readonly skipped: ReadonlySet<string>
  readonly definitions: ReadonlyMap<string, string>
  readonly containers: ReadonlyMap<string, Container>
  /** Members of each scope (`""`: the top level) in a stable topological order. */
  readonly members: ReadonlyMap<string, ReadonlyArray<string>>
  /** Incoming edges from the same scope. */
  readonly incoming: ReadonlyMap<string, ReadonlyArray<Workflow.Edge>>
  /** Enclosing containers of every id, outer to inner. */
  readonly chain: ReadonlyMap<string, ReadonlyArray<string>>
  /**
   * Members of a container with no edge to another member, by id (UTF-16 order): what an
   * iteration's output records, in this one key order whatever order they finished in, so a reused
   * body member and a re-run one give the same record.
   */
  readonly exits: ReadonlyMap<string, ReadonlyArray<string>>
  readonly errorEdge: ReadonlySet<string>
  /** Every member's position in its scope's `members`: where its record is in a scope instance's records. */
  readonly position: ReadonlyMap<string, number>
}

const shapes = new WeakMap<Workflow.Workflow, Shape>()

export const shapeOf = (workflow: Workflow.Workflow): Shape => {
  const cached = shapes.get(workflow)
  if (cached !== undefined) return cached
  const blocks = new Map(workflow.blocks.map((b) => [b.id, executed(workflow, b)] as const))
  const skipped = new Set(workflow.blocks.filter((b) => Workflow.isSkippedSink(workflow, b)).map((b) => b.id))
  // The definition is the block as written: toggling `disabled` is an edit.
  const definitions = new Map(workflow.blocks.map((b) => [b.id, Fingerprint.ofBlock(b)] as const))
  const containers = new Map<string, Container>()
  for (const loop of workflow.loops ?? []) {
    containers.set(loop.id, { kind: "loop", loop, definition: Fingerprint.ofContainer(loop, "loop") })
  }
  for (const parallel of workflow.parallels ?? []) {
    containers.set(parallel.id, { kind: "parallel", parallel, definition: Fingerprint.ofContainer(parallel, "parallel") })
  }
  for (const [id, c] of containers) definitions.set(id, c.definition)
  const parent = new Map<string, string>()
  for (const [id, c] of containers) for (const m of c.kind === "loop" ? c.loop.body : c.parallel.body) parent.set(m, id)
  const all = [...workflow.blocks.map((b) => b.id), ...containers.keys()]
  const chain = new Map<string, Array<string>>()
  for (const id of all) {
    const list: Array<string> = []
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) list.unshift(p)
    chain.set(id, list)
  }
  const incoming = new Map<string, Array<Workflow.Edge>>()
  const hasOutgoingInScope = new Set<string>()
  const errorEdge = new Set<string>()
  for (const edge of workflow.edges) {
    if (edge.handle === "error") errorEdge.add(edge.source)
    if ((parent.get(edge.source) ?? "") !== (parent.get(edge.target) ?? "")) continue
    const list = incoming.get(edge.target)
    if (list === undefined) incoming.set(edge.target, [edge])
    else list.push(edge)
    hasOutgoingInScope.add(edge.source)
  }
  const byScope = new Map<string, Array<string>>()
  for (const id of all) {
    const scope = parent.get(id) ?? ""
    const list = byScope.get(scope)
    if (list === undefined) byScope.set(scope, [id])
    else list.push(id)
  }
  const members = new Map<string, ReadonlyArray<string>>()
  const position = new Map<string, number>()
  for (const [scope, list] of byScope) {
    const order = ordered(list, incoming)
    members.set(scope, order)
    for (let i = 0; i < order.length; i++) position.set(order[i]!, i)
  }
  const exits = new Map<string, ReadonlyArray<string>>()
  for (const id of containers.keys()) exits.set(id, (members.get(id) ?? []).filter((m) => !hasOutgoingInScope.has(m)).sort())
  const shape: Shape = { blocks, skipped, definitions, containers, members, incoming, chain, exits, errorEdge, position }
  shapes.set(workflow, shape)
  return shape
}

/**
 * A scope's members (in `Shape.members` order) as a graph over their positions — in-scope edges
 * only, successors in CSR form — with what deciding a member needs, by position, so a scope
 * instance keeps its state in typed arrays and reads no map per member.
 */
export interface ScopeGraph {
  readonly members: ReadonlyArray<string>
  readonly indegree: Int32Array
  readonly outOffsets: Int32Array
  readonly outTargets: Int32Array
  /** Per CSR out-edge (aligned with `outTargets`): its handle. */
  readonly handles: ReadonlyArray<string | undefined>
  /** The block of each member; `undefined` for a container. */
  readonly blocks: ReadonlyArray<Workflow.Block | undefined>
  /** The node whose record settles each member: the block, or the container's end. */
  readonly ends: ReadonlyArray<NodeId.Node>
  /** The DAG ids of `ends` (their instance ids at the top level, path `[]`). */
  readonly topKeys: ReadonlyArray<string>
  /** The id `Plan.rerun` names each member by: the block, or the container's start. */
  readonly rerunIds: ReadonlyArray<string>
  readonly definitions: ReadonlyArray<string>
  /**
   * The fingerprints of blocks whose params hold no reference (their inputs are their params),
   * shared by all their instances: no fingerprint to compute and no object to make per start.
   */
  readonly staticFingerprints: ReadonlyArray<Snapshot.Fingerprints | undefined>
  /**
   * Per member with `staticFingerprints`, its inputs (its params). With `types` and
   * `singleAttempt`, what starting a block needs without reading the block (an object per block,
   * cold when its turn comes: a cache miss per node on a chain).
   */
  readonly staticInputs: ReadonlyArray<{ readonly [key: string]: Workflow.Json } | undefined>
  /** The type of each member's block (`undefined` for a container). */
  readonly types: ReadonlyArray<string | undefined>
  /** 1: a block whose handler is called once per start: not disabled, no retry policy of more than one attempt. */
  readonly singleAttempt: Uint8Array
  /** 1: a disabled block without successors, skipped whenever reached. */
  readonly skipped: Uint8Array
  /** 1: the member has an outgoing `"error"` edge (its failure does not fail the run). */
  readonly errorEdge: Uint8Array
  /** 1: a block the engine runs itself (`intrinsics.ts`: no handler, no permit). */
  readonly intrinsic: Uint8Array
}

/** The block types the engine runs itself (`intrinsics.ts`; `Engine.intrinsicTypes`). */
export const intrinsicTypes: ReadonlySet<string> = new Set(["approval", "wait", "sleep", "child"])

const graphs = new WeakMap<Shape, Map<string, ScopeGraph>>()
const emptyParams: { readonly [key: string]: Workflow.Json } = {}

/** The graph of one scope of a shape (`""`: the top level), once per shape and scope. */
export const scopeGraph = (shape: Shape, scope: string): ScopeGraph => {
  let byScope = graphs.get(shape)
  if (byScope === undefined) {
    byScope = new Map()
    graphs.set(shape, byScope)
  }
  const cached = byScope.get(scope)
  if (cached !== undefined) return cached
  const members = shape.members.get(scope) ?? []
  const position = new Map(members.map((id, i) => [id, i] as const))
  const n = members.length
  const indegree = new Int32Array(n)
  const outOffsets = new Int32Array(n + 1)
  for (let i = 0; i < n; i++) {
    for (const e of shape.incoming.get(members[i]!) ?? []) {
      indegree[i]!++
      outOffsets[position.get(e.source)! + 1]!++
    }
  }
  for (let i = 0; i < n; i++) outOffsets[i + 1]! += outOffsets[i]!
  const outTargets = new Int32Array(outOffsets[n]!)
  const handles: Array<string | undefined> = new Array(outOffsets[n]!)
  const fill = outOffsets.slice(0, n)
  for (let i = 0; i < n; i++) {
    for (const e of shape.incoming.get(members[i]!) ?? []) {
      const k = fill[position.get(e.source)!]!++
      outTargets[k] = i
      handles[k] = e.handle
    }
  }
  const blocks = members.map((id) => shape.blocks.get(id))
  const ends = members.map((id) => shape.containers.has(id) ? NodeId.end(id) : NodeId.block(id))
  const definitions = members.map((id) => shape.definitions.get(id)!)
  const skipped = new Uint8Array(n)
  const errorEdge = new Uint8Array(n)
  const intrinsic = new Uint8Array(n)
  const singleAttempt = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    if (shape.skipped.has(members[i]!)) skipped[i] = 1
    if (shape.errorEdge.has(members[i]!)) errorEdge[i] = 1
    const block = blocks[i]
    if (block === undefined) continue
    if (intrinsicTypes.has(block.type)) intrinsic[i] = 1
    if (block.disabled !== true && !retries(block)) singleAttempt[i] = 1
  }
  const staticFingerprints = blocks.map((block, i) => {
    if (block === undefined) return undefined
    const params = block.params ?? emptyParams
    return Reference.hasReferences(params) ? undefined : { definition: definitions[i]!, inputs: Fingerprint.hash(params) }
  })
  const graph: ScopeGraph = {
    members,
    indegree,
    outOffsets,
    outTargets,
    handles,
    blocks,
    ends,
    topKeys: ends.map(NodeId.format),
    rerunIds: members.map((id, i) => blocks[i] === undefined ? NodeId.format(NodeId.start(id)) : id),
    definitions,
    staticFingerprints,
    staticInputs: blocks.map((block, i) => staticFingerprints[i] === undefined ? undefined : block!.params ?? emptyParams),
    types: blocks.map((block) => block?.type),
    singleAttempt,
    skipped,
    errorEdge,
    intrinsic
  }
  byScope.set(scope, graph)
  return graph
}

/**
 * The type a pass-through runs as: no intrinsic (a disabled approval does not pause) and no
 * registered handler; `attempts` runs every disabled block as a pass-through whatever its type.
 */
export const passThroughType = "ripple:pass-through"

const executed = (workflow: Workflow.Workflow, block: Workflow.Block): Workflow.Block => {
  const pass = Workflow.passThrough(workflow, block)
  return pass === undefined ? block : { ...pass, type: passThroughType }
}

/** Kahn's algorithm over one scope, ties broken by declaration order (a binary heap of positions). */
const ordered = (list: ReadonlyArray<string>, incoming: ReadonlyMap<string, ReadonlyArray<Workflow.Edge>>) => {
  const n = list.length
  const position = new Map(list.map((id, i) => [id, i] as const))
  const indegree = new Int32Array(n)
  const outgoing: Array<Array<number>> = Array.from({ length: n }, () => [])
  for (let i = 0; i < n; i++) {
    for (const e of incoming.get(list[i]!) ?? []) {
      indegree[i]!++
      outgoing[position.get(e.source)!]!.push(i)
    }
  }
  const heap = new Int32Array(n)
  let size = 0
  const push = (x: number) => {
    let k = size++
    while (k > 0) {
      const p = (k - 1) >> 1
      if (heap[p]! <= x) break
      heap[k] = heap[p]!
      k = p
    }
    heap[k] = x
  }
  const pop = (): number => {
    const top = heap[0]!
    const last = heap[--size]!
    let k = 0
    for (;;) {
      let c = 2 * k + 1
      if (c >= size) break
      if (c + 1 < size && heap[c + 1]! < heap[c]!) c++
      if (heap[c]! >= last) break
      heap[k] = heap[c]!
      k = c
    }
    heap[k] = last
    return top
  }
  for (let i = 0; i < n; i++) if (indegree[i] === 0) push(i)
  const out: Array<string> = []
  while (size > 0) {
    const i = pop()
    out.push(list[i]!)
    for (const t of outgoing[i]!) if (--indegree[t]! === 0) push(t)
  }
  return out
}
