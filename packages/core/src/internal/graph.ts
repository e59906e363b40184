/**
 * The expanded-DAG data structure and its integer algorithms, shared by `Dag` (public API) and
 * `Workflow.decode` (which needs cycles and ancestry to validate a workflow) so that neither public
 * module imports the other at run time.
 */
import * as NodeId from "../NodeId.ts"
import type * as Workflow from "../Workflow.ts"

/** What a node of the expanded DAG stands for. */
export interface NodeInfo {
  readonly kind: NodeId.Kind
  /** The block id (block nodes) or the container id (start/end sentinels). */
  readonly id: string
  /** Innermost enclosing loop (for a sentinel: enclosing its container, not the container itself). */
  readonly loop: string | undefined
  /** Innermost enclosing parallel (same convention as `loop`). */
  readonly parallel: string | undefined
  /** Enclosing containers, outer to inner (for a sentinel: excluding its own container). */
  readonly chain: ReadonlyArray<string>
  /** For a sentinel, whether its container is a loop or a parallel. */
  readonly containerKind: "loop" | "parallel" | undefined
  /** The block (block nodes) or the container (sentinels) this node comes from; absent for bare-edge DAGs. */
  readonly definition: Workflow.Block | Workflow.Loop | Workflow.Parallel | undefined
}

/** The expanded DAG: interned integer nodes, CSR adjacency in both directions. */
export interface Dag {
  readonly size: number
  readonly edgeCount: number
  /** `outTargets[outOffsets[i] .. outOffsets[i+1])` are the successors of node `i`. */
  readonly outOffsets: Int32Array
  readonly outTargets: Int32Array
  /** Per CSR out-edge: the index of the workflow edge it comes from, or -1 for a synthetic edge. */
  readonly outEdges: Int32Array
  readonly inOffsets: Int32Array
  readonly inSources: Int32Array
  /** Per CSR in-edge: the index of the workflow edge it comes from, or -1 for a synthetic edge. */
  readonly inEdges: Int32Array
  /** Node records and string ids; absent for DAGs built from bare integer edges. */
  readonly nodes: ReadonlyArray<NodeInfo> | undefined
  readonly ids: ReadonlyArray<string> | undefined
  readonly index: ReadonlyMap<string, number> | undefined
  readonly workflow: Workflow.Workflow | undefined
}

/** Builds both CSR directions from parallel edge arrays (counting sort; edge order kept per node). */
export const build = (
  size: number,
  sources: ArrayLike<number>,
  targets: ArrayLike<number>,
  edgeIds: ArrayLike<number> | undefined,
  extra: Pick<Dag, "nodes" | "ids" | "index" | "workflow">
): Dag => {
  const m = sources.length
  const outOffsets = new Int32Array(size + 1)
  const inOffsets = new Int32Array(size + 1)
  for (let e = 0; e < m; e++) {
    outOffsets[sources[e]! + 1]!++
    inOffsets[targets[e]! + 1]!++
  }
  for (let i = 0; i < size; i++) {
    outOffsets[i + 1]! += outOffsets[i]!
    inOffsets[i + 1]! += inOffsets[i]!
  }
  const outTargets = new Int32Array(m)
  const outEdges = new Int32Array(m)
  const inSources = new Int32Array(m)
  const inEdges = new Int32Array(m)
  const outCursor = outOffsets.slice(0, size)
  const inCursor = inOffsets.slice(0, size)
  for (let e = 0; e < m; e++) {
    const s = sources[e]!
    const t = targets[e]!
    const id = edgeIds === undefined ? e : edgeIds[e]!
    const o = outCursor[s]!++
    outTargets[o] = t
    outEdges[o] = id
    const p = inCursor[t]!++
    inSources[p] = s
    inEdges[p] = id
  }
  return { size, edgeCount: m, outOffsets, outTargets, outEdges, inOffsets, inSources, inEdges, ...extra }
}

/** Marks everything reachable from `roots` following out-edges (or in-edges); stopped nodes are marked, not expanded. */
export const reach = (
  dag: Dag,
  roots: Iterable<number>,
  forward: boolean,
  stopAt: ((i: number) => boolean) | undefined
): Uint8Array => {
  const offsets = forward ? dag.outOffsets : dag.inOffsets
  const adjacent = forward ? dag.outTargets : dag.inSources
  const marks = new Uint8Array(dag.size)
  const stack = new Int32Array(dag.size)
  let top = 0
  for (const root of roots) {
    if (marks[root] === 0) {
      marks[root] = 1
      stack[top++] = root
    }
  }
  while (top > 0) {
    const i = stack[--top]!
    if (stopAt !== undefined && stopAt(i)) continue
    const end = offsets[i + 1]!
    for (let k = offsets[i]!; k < end; k++) {
      const j = adjacent[k]!
      if (marks[j] === 0) {
        marks[j] = 1
        stack[top++] = j
      }
    }
  }
  return marks
}

/**
 * Kahn's algorithm; ready nodes leave in increasing index order (a binary min-heap), so the order
 * only depends on declaration order. Returns fewer than `size` nodes when the graph has a cycle.
 */
export const kahn = (dag: Dag): Int32Array => {
  const n = dag.size
  const indegree = new Int32Array(n)
  for (let i = 0; i < n; i++) indegree[i] = dag.inOffsets[i + 1]! - dag.inOffsets[i]!
  const heap = new Int32Array(n)
  let size = 0
  const push = (value: number) => {
    let k = size++
    while (k > 0) {
      const parent = (k - 1) >> 1
      const p = heap[parent]!
      if (p <= value) break
      heap[k] = p
      k = parent
    }
    heap[k] = value
  }
  const pop = (): number => {
    const top = heap[0]!
    const last = heap[--size]!
    let k = 0
    for (;;) {
      const left = 2 * k + 1
      if (left >= size) break
      const right = left + 1
      const child = right < size && heap[right]! < heap[left]! ? right : left
      if (heap[child]! >= last) break
      heap[k] = heap[child]!
      k = child
    }
    heap[k] = last
    return top
  }
  // Roots arrive in increasing order, so pushing them in order keeps the heap a sorted array (O(n)).
  for (let i = 0; i < n; i++) if (indegree[i] === 0) heap[size++] = i
  const order = new Int32Array(n)
  let count = 0
  const { outOffsets, outTargets } = dag
  while (size > 0) {
    const i = pop()
    order[count++] = i
    const end = outOffsets[i + 1]!
    for (let k = outOffsets[i]!; k < end; k++) {
      const j = outTargets[k]!
      if (--indegree[j]! === 0) push(j)
    }
  }
  return count === n ? order : order.slice(0, count)
}

/** A cycle among the nodes Kahn's algorithm left behind, as node indices with the first repeated last. */
export const findCycle = (dag: Dag, sorted: Int32Array): ReadonlyArray<number> => {
  const done = new Uint8Array(dag.size)
  for (const i of sorted) done[i] = 1
  let start = 0
  while (done[start] === 1) start++
  // Every node left over has a left-over predecessor, so walking predecessors must repeat a node.
  const seenAt = new Map<number, number>()
  const walk: Array<number> = []
  let i = start
  while (!seenAt.has(i)) {
    seenAt.set(i, walk.length)
    walk.push(i)
    let next = -1
    for (let k = dag.inOffsets[i]!; k < dag.inOffsets[i + 1]!; k++) {
      if (done[dag.inSources[k]!] === 0) {
        next = dag.inSources[k]!
        break
      }
    }
    i = next
  }
  const cycle = walk.slice(seenAt.get(i)!).reverse()
  cycle.push(cycle[0]!)
  return cycle
}

interface ContainerEntry {
  readonly kind: "loop" | "parallel"
  readonly body: ReadonlyArray<string>
  readonly definition: Workflow.Loop | Workflow.Parallel
}

/**
 * Expands a structurally valid workflow (unique ids, each member in at most one container, no
 * container inside itself, edges only between members of the same container) into a `Dag`.
 */
export const expand = (workflow: Workflow.Workflow): Dag => {
  const containers = new Map<string, ContainerEntry>()
  for (const loop of workflow.loops ?? []) containers.set(loop.id, { kind: "loop", body: loop.body, definition: loop })
  for (const parallel of workflow.parallels ?? []) {
    containers.set(parallel.id, { kind: "parallel", body: parallel.body, definition: parallel })
  }
  const parent = new Map<string, string>()
  for (const [id, entry] of containers) for (const member of entry.body) parent.set(member, id)
  const chains = new Map<string, ReadonlyArray<string>>()
  const chainOf = (id: string): ReadonlyArray<string> => {
    const known = chains.get(id)
    if (known !== undefined) return known
    const p = parent.get(id)
    const chain = p === undefined ? [] : [...chainOf(p), p]
    chains.set(id, chain)
    return chain
  }
  const innermost = (chain: ReadonlyArray<string>, kind: "loop" | "parallel"): string | undefined => {
    for (let k = chain.length - 1; k >= 0; k--) if (containers.get(chain[k]!)?.kind === kind) return chain[k]
    return undefined
  }
  const nodes: Array<NodeInfo> = []
  const ids: Array<string> = []
  const index = new Map<string, number>()
  const add = (kind: NodeId.Kind, id: string, definition: NodeInfo["definition"]) => {
    const chain = chainOf(id)
    const node: NodeInfo = {
      kind,
      id,
      loop: innermost(chain, "loop"),
      parallel: innermost(chain, "parallel"),
      chain,
      containerKind: kind === "block" ? undefined : containers.get(id)!.kind,
      definition
    }
    const formatted = NodeId.format({ kind, id })
    index.set(formatted, nodes.length)
    ids.push(formatted)
    nodes.push(node)
  }
  for (const block of workflow.blocks) add("block", block.id, block)
  for (const [id, entry] of containers) {
    add("start", id, entry.definition)
    add("end", id, entry.definition)
  }
  const entryOf = (id: string) => index.get(containers.has(id) ? `${id}#start` : id)!
  const exitOf = (id: string) => index.get(containers.has(id) ? `${id}#end` : id)!
  const sources: Array<number> = []
  const targets: Array<number> = []
  const edgeIds: Array<number> = []
  const hasIn = new Set<string>()
  const hasOut = new Set<string>()
  workflow.edges.forEach((edge, e) => {
    sources.push(exitOf(edge.source))
    targets.push(entryOf(edge.target))
    edgeIds.push(e)
    hasOut.add(edge.source)
    hasIn.add(edge.target)
  })
  for (const [id, entry] of containers) {
    const start = index.get(`${id}#start`)!
    const end = index.get(`${id}#end`)!
    for (const member of entry.body) {
      if (!hasIn.has(member)) {
        sources.push(start)
        targets.push(entryOf(member))
        edgeIds.push(-1)
      }
      if (!hasOut.has(member)) {
        sources.push(exitOf(member))
        targets.push(end)
        edgeIds.push(-1)
      }
    }
  }
  return build(nodes.length, sources, targets, edgeIds, { nodes, ids, index, workflow })
}
