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
  /** Per CSR out-edge: the index of the workflow edge it comes from, or -1 for a synthetic edge (all edges of a bare-edge DAG). */
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

/**
 * Builds both CSR directions from parallel edge arrays (counting sort; edge order kept per node).
 * Without `edgeIds` every edge is synthetic (-1) and both directions share one array of -1s, which
 * saves two random writes per edge on bare-edge DAGs.
 */
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
  const inSources = new Int32Array(m)
  const outCursor = outOffsets.slice(0, size)
  const inCursor = inOffsets.slice(0, size)
  if (edgeIds === undefined) {
    for (let e = 0; e < m; e++) {
      const s = sources[e]!
      const t = targets[e]!
      outTargets[outCursor[s]!++] = t
      inSources[inCursor[t]!++] = s
    }
    const synthetic = new Int32Array(m).fill(-1)
    return { size, edgeCount: m, outOffsets, outTargets, outEdges: synthetic, inOffsets, inSources, inEdges: synthetic, ...extra }
  }
  const outEdges = new Int32Array(m)
  const inEdges = new Int32Array(m)
  for (let e = 0; e < m; e++) {
    const s = sources[e]!
    const t = targets[e]!
    const id = edgeIds[e]!
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
 * A set of integers in `[0, size)` with O(levels) insert and extract-min: a hierarchy of bitmaps
 * where bit `k` of a word at level `l+1` says whether word `k` of level `l` is non-zero. For 10^6
 * nodes that is 4 levels of one word each, much cheaper than a binary heap's sift over 20 levels.
 */
class MinBitset {
  private readonly levels: Array<Uint32Array> = []
  private count = 0

  constructor(size: number) {
    let words = Math.max(1, Math.ceil(size / 32))
    for (;;) {
      this.levels.push(new Uint32Array(words))
      if (words === 1) break
      words = Math.ceil(words / 32)
    }
  }

  get size(): number {
    return this.count
  }

  add(value: number): void {
    this.count++
    let v = value
    for (const level of this.levels) {
      const word = v >>> 5
      const before = level[word]!
      level[word] = before | (1 << (v & 31))
      if (before !== 0) return
      v = word
    }
  }

  /** Removes and returns the smallest element; the set must not be empty. */
  takeMin(): number {
    this.count--
    const levels = this.levels
    let word = 0
    for (let l = levels.length - 1; l >= 0; l--) {
      const bits = levels[l]![word]!
      word = (word << 5) | (31 - Math.clz32(bits & -bits))
    }
    const min = word
    let v = min
    for (const level of levels) {
      const index = v >>> 5
      const after = level[index]! & ~(1 << (v & 31))
      level[index] = after
      if (after !== 0) break
      v = index
    }
    return min
  }
}

/**
 * Kahn's algorithm; ready nodes leave in increasing index order, so the order only depends on
 * declaration order. Returns fewer than `size` nodes when the graph has a cycle.
 */
export const kahn = (dag: Dag): Int32Array => {
  const n = dag.size
  const { inOffsets, outOffsets, outTargets } = dag
  const indegree = new Int32Array(n)
  const ready = new MinBitset(n)
  for (let i = 0; i < n; i++) {
    indegree[i] = inOffsets[i + 1]! - inOffsets[i]!
    if (indegree[i] === 0) ready.add(i)
  }
  const order = new Int32Array(n)
  let count = 0
  while (ready.size > 0) {
    const i = ready.takeMin()
    order[count++] = i
    const end = outOffsets[i + 1]!
    for (let k = outOffsets[i]!; k < end; k++) {
      const j = outTargets[k]!
      if (--indegree[j]! === 0) ready.add(j)
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

const noChain: ReadonlyArray<string> = Object.freeze([])

/**
 * Expands a structurally valid workflow (unique ids, each member in at most one container, no
 * container inside itself, edges only between members of the same container) into a `Dag`.
 */
export const expand = (workflow: Workflow.Workflow): Dag => {
  const blocks = workflow.blocks
  const containers = new Map<string, ContainerEntry>()
  for (const loop of workflow.loops ?? []) containers.set(loop.id, { kind: "loop", body: loop.body, definition: loop })
  for (const parallel of workflow.parallels ?? []) {
    containers.set(parallel.id, { kind: "parallel", body: parallel.body, definition: parallel })
  }
  const parent = new Map<string, string>()
  for (const [id, entry] of containers) for (const member of entry.body) parent.set(member, id)
  const chains = new Map<string, ReadonlyArray<string>>()
  const chainOf = (id: string): ReadonlyArray<string> => {
    const p = parent.get(id)
    if (p === undefined) return noChain
    const known = chains.get(id)
    if (known !== undefined) return known
    const chain = [...chainOf(p), p]
    chains.set(id, chain)
    return chain
  }
  const innermost = (chain: ReadonlyArray<string>, kind: "loop" | "parallel"): string | undefined => {
    for (let k = chain.length - 1; k >= 0; k--) if (containers.get(chain[k]!)!.kind === kind) return chain[k]
    return undefined
  }
  const size = blocks.length + 2 * containers.size
  const nodes = new Array<NodeInfo>(size)
  const ids = new Array<string>(size)
  const index = new Map<string, number>()
  // Sentinels by container id; a block's node is found by its id in `index`.
  const starts = new Map<string, number>()
  const ends = new Map<string, number>()
  let next = 0
  const add = (kind: NodeId.Kind, id: string, definition: NodeInfo["definition"]) => {
    const chain = chainOf(id)
    const nested = chain.length > 0
    nodes[next] = {
      kind,
      id,
      loop: nested ? innermost(chain, "loop") : undefined,
      parallel: nested ? innermost(chain, "parallel") : undefined,
      chain,
      containerKind: kind === "block" ? undefined : containers.get(id)!.kind,
      definition
    }
    const formatted = kind === "block" ? id : NodeId.format({ kind, id })
    ids[next] = formatted
    index.set(formatted, next)
    return next++
  }
  for (const block of blocks) add("block", block.id, block)
  for (const [id, entry] of containers) {
    starts.set(id, add("start", id, entry.definition))
    ends.set(id, add("end", id, entry.definition))
  }
  const entryOf = (id: string): number => starts.get(id) ?? index.get(id)!
  const exitOf = (id: string): number => ends.get(id) ?? index.get(id)!
  let members = 0
  for (const entry of containers.values()) members += entry.body.length
  const edges = workflow.edges
  const capacity = edges.length + 2 * members
  const sources = new Int32Array(capacity)
  const targets = new Int32Array(capacity)
  const edgeIds = new Int32Array(capacity)
  const hasIn = new Uint8Array(size)
  const hasOut = new Uint8Array(size)
  let m = 0
  for (let e = 0; e < edges.length; e++) {
    const s = exitOf(edges[e]!.source)
    const t = entryOf(edges[e]!.target)
    sources[m] = s
    targets[m] = t
    edgeIds[m++] = e
    hasOut[s] = 1
    hasIn[t] = 1
  }
  for (const [id, entry] of containers) {
    const start = starts.get(id)!
    const end = ends.get(id)!
    for (const member of entry.body) {
      const first = entryOf(member)
      const last = exitOf(member)
      if (hasIn[first] === 0) {
        sources[m] = start
        targets[m] = first
        edgeIds[m++] = -1
      }
      if (hasOut[last] === 0) {
        sources[m] = last
        targets[m] = end
        edgeIds[m++] = -1
      }
    }
  }
  return build(size, sources.subarray(0, m), targets.subarray(0, m), edgeIds.subarray(0, m), {
    nodes,
    ids,
    index,
    workflow
  })
}
