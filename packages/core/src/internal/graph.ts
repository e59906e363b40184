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

/** The CSR arrays of a DAG. */
type Adjacency = Pick<Dag, "size" | "edgeCount" | "outOffsets" | "outTargets" | "outEdges" | "inOffsets" | "inSources" | "inEdges">

/**
 * Where the records of a workflow DAG's nodes come from, without one object per node: node `i` is
 * block `i` for `i < blocks.length`, then container `c` has its start at `blocks.length + 2c` and
 * its end right after. Only the enclosing container of each node is stored; chains and innermost
 * loop/parallel are per container, shared by all its direct members.
 */
interface Layout {
  readonly blocks: ReadonlyArray<Workflow.Block>
  readonly containers: ReadonlyArray<ContainerEntry>
  /** Per node: the ordinal of its innermost enclosing container, or -1 (absent when there are no containers). */
  readonly parent: Int32Array | undefined
  /** Per container: the chain of a direct member (outer to inner, the container last), and its innermost loop/parallel. */
  readonly insideChain: ReadonlyArray<ReadonlyArray<string>>
  readonly insideLoop: ReadonlyArray<string | undefined>
  readonly insideParallel: ReadonlyArray<string | undefined>
}

/**
 * A DAG built by `expand` or `build`. Node records and the id array are materialized on first read
 * of `nodes` / `ids` (most callers only need `index`, the CSR arrays and single records via
 * `nodeAt`), which keeps expanding 10^6 blocks from allocating 10^6 records up front.
 */
class LazyDag implements Dag {
  private materializedNodes: ReadonlyArray<NodeInfo> | undefined
  private materializedIds: ReadonlyArray<string> | undefined
  /** The edge ids of both directions; `undefined` until read when every edge is synthetic. */
  private edgesOut: Int32Array | undefined
  private edgesIn: Int32Array | undefined

  readonly size: number
  readonly edgeCount: number
  readonly outOffsets: Int32Array
  readonly outTargets: Int32Array
  readonly inOffsets: Int32Array
  readonly inSources: Int32Array

  /**
   * An empty DAG that lives as long as the module, so that V8 keeps this class's hidden class: the
   * JIT specializes the graph algorithms on it, and a garbage collection that finds no instance
   * alive drops it, and their optimized code with it. A program that builds a DAG, drops it and
   * builds another (`bench:dag` between repetitions, a server between requests) then ran them
   * unoptimized again after every collection: topo at 10^4 nodes took 5-13 ms a call instead of 0.8.
   */
  static readonly retained: Dag = new LazyDag(
    { size: 0, edgeCount: 0, outOffsets: new Int32Array(1), outTargets: new Int32Array(0), outEdges: undefined, inOffsets: new Int32Array(1), inSources: new Int32Array(0), inEdges: undefined },
    undefined,
    undefined,
    undefined
  )

  constructor(
    adjacency: Sorted,
    readonly index: ReadonlyMap<string, number> | undefined,
    readonly workflow: Workflow.Workflow | undefined,
    readonly layout: Layout | undefined
  ) {
    this.size = adjacency.size
    this.edgeCount = adjacency.edgeCount
    this.outOffsets = adjacency.outOffsets
    this.outTargets = adjacency.outTargets
    this.edgesOut = adjacency.outEdges
    this.inOffsets = adjacency.inOffsets
    this.inSources = adjacency.inSources
    this.edgesIn = adjacency.inEdges
  }

  get outEdges(): Int32Array {
    return this.edgesOut ?? this.synthetic()
  }

  get inEdges(): Int32Array {
    return this.edgesIn ?? this.synthetic()
  }

  /** Both directions share one array of -1s, made on first read (bare-edge DAGs rarely ask). */
  private synthetic(): Int32Array {
    const edges = new Int32Array(this.edgeCount).fill(-1)
    this.edgesOut = edges
    this.edgesIn = edges
    return edges
  }

  get nodes(): ReadonlyArray<NodeInfo> | undefined {
    const layout = this.layout
    if (layout === undefined || this.materializedNodes !== undefined) return this.materializedNodes
    const nodes = new Array<NodeInfo>(this.size)
    for (let i = 0; i < this.size; i++) nodes[i] = recordOf(layout, i)
    this.materializedNodes = nodes
    return nodes
  }

  get ids(): ReadonlyArray<string> | undefined {
    const layout = this.layout
    if (layout === undefined || this.materializedIds !== undefined) return this.materializedIds
    const ids = new Array<string>(this.size)
    const blocks = layout.blocks
    for (let i = 0; i < blocks.length; i++) ids[i] = blocks[i]!.id
    for (let c = 0; c < layout.containers.length; c++) {
      const id = layout.containers[c]!.definition.id
      ids[blocks.length + 2 * c] = NodeId.format({ kind: "start", id })
      ids[blocks.length + 2 * c + 1] = NodeId.format({ kind: "end", id })
    }
    this.materializedIds = ids
    return ids
  }
}

const recordOf = (layout: Layout, i: number): NodeInfo => {
  const p = layout.parent === undefined ? -1 : layout.parent[i]!
  const chain = p < 0 ? noChain : layout.insideChain[p]!
  const loop = p < 0 ? undefined : layout.insideLoop[p]
  const parallel = p < 0 ? undefined : layout.insideParallel[p]
  const b = layout.blocks.length
  if (i < b) {
    const block = layout.blocks[i]!
    return { kind: "block", id: block.id, loop, parallel, chain, containerKind: undefined, definition: block }
  }
  const entry = layout.containers[(i - b) >> 1]!
  const kind = ((i - b) & 1) === 0 ? "start" : "end"
  return { kind, id: entry.definition.id, loop, parallel, chain, containerKind: entry.kind, definition: entry.definition }
}

/** The record of node `i` of a DAG built from a workflow, without materializing all of them; `undefined` for bare-edge DAGs. */
export const nodeAt = (dag: Dag, i: number): NodeInfo | undefined => {
  if (dag instanceof LazyDag) {
    const layout = dag.layout
    return layout === undefined ? undefined : recordOf(layout, i)
  }
  return dag.nodes?.[i]
}

/** The enclosing containers of node `i` (outer to inner), as in `NodeInfo.chain`; empty for bare-edge DAGs. */
export const chainAt = (dag: Dag, i: number): ReadonlyArray<string> => {
  if (dag instanceof LazyDag) {
    const layout = dag.layout
    if (layout?.parent === undefined) return noChain
    const p = layout.parent[i]!
    return p < 0 ? noChain : layout.insideChain[p]!
  }
  return dag.nodes?.[i]?.chain ?? noChain
}

/** The block behind node `i`, or `undefined` for sentinels and bare-edge DAGs. */
export const blockAt = (dag: Dag, i: number): Workflow.Block | undefined => {
  if (dag instanceof LazyDag) return dag.layout?.blocks[i]
  const node = dag.nodes?.[i]
  return node?.kind === "block" ? (node.definition as Workflow.Block | undefined) : undefined
}

/**
 * Builds both CSR directions from parallel edge arrays (a bucketed counting sort, see `adjacencyOf`;
 * edge order kept per node).
 * Without `edgeIds` every edge is synthetic (-1): the arrays of -1s are only made if read.
 */
export const build = (
  size: number,
  sources: ArrayLike<number>,
  targets: ArrayLike<number>,
  edgeIds: ArrayLike<number> | undefined
): Dag => new LazyDag(adjacencyOf(size, sources, targets, edgeIds), undefined, undefined, undefined)

/** The CSR arrays, where `outEdges` / `inEdges` are `undefined` when every edge is synthetic. */
interface Sorted extends Omit<Adjacency, "outEdges" | "inEdges"> {
  readonly outEdges: Int32Array | undefined
  readonly inEdges: Int32Array | undefined
}

/** Nodes per bucket: a bucket's counters (16 KB) stay in L1, its edges in L2. */
const BUCKET_BITS = 12
const BUCKET_SIZE = 1 << BUCKET_BITS
const BUCKET_MASK = BUCKET_SIZE - 1

/**
 * Both CSR directions, each with its edges grouped by node (stable: edge order kept per node).
 *
 * A plain counting sort writes every edge to a random place of a 12 MB array and bumps a random
 * counter of a 4 MB one, which at 10^6 nodes is one cache miss each. Instead, edges are first
 * distributed into buckets of 2^12 consecutive nodes (a few hundred sequential write streams),
 * straight into the output range their bucket will occupy, with the low bits of their key; then
 * `sortBuckets` sorts each bucket in cache.
 *
 * Both directions are counted in one pass over the edges and, up to 2^20 nodes, distributed in one:
 * at 10^6 nodes the edge arrays (24 MB) come from memory, and reading them once instead of twice
 * took counting and distributing from 1 to 0.58-0.77 of their time (0.87-0.89 at 10^5; the whole
 * build about 0.93 at 10^6 and 0.97 at 10^5, measured on a loaded machine). Up to 2^20 nodes the
 * low bits of each edge's key ride in the spare high bits of its value (`value << BUCKET_BITS`);
 * above, they go to an array of their own, which fresh costs a page fault per 4 KB at first touch:
 * the two directions then take turns with one such array.
 */
const adjacencyOf = (
  size: number,
  sources: ArrayLike<number>,
  targets: ArrayLike<number>,
  edgeIds: ArrayLike<number> | undefined
): Sorted => {
  const m = sources.length
  const buckets = (size >> BUCKET_BITS) + 1
  const outStart = new Int32Array(buckets + 1)
  const inStart = new Int32Array(buckets + 1)
  for (let e = 0; e < m; e++) {
    outStart[(sources[e]! >> BUCKET_BITS) + 1]!++
    inStart[(targets[e]! >> BUCKET_BITS) + 1]!++
  }
  const outWidest = accumulate(outStart)
  const inWidest = accumulate(inStart)
  const outTargets = new Int32Array(m)
  const inSources = new Int32Array(m)
  const outEdges = edgeIds === undefined ? undefined : new Int32Array(m)
  const inEdges = edgeIds === undefined ? undefined : new Int32Array(m)
  if (size <= 1 << (32 - BUCKET_BITS)) {
    const outCursor = outStart.slice(0, buckets)
    const inCursor = inStart.slice(0, buckets)
    // One copy of the loop with edge ids and one without rather than testing per edge: V8 did not
    // hoist such tests, and the copies made the whole build about 35% faster at 10^5 and 10^6 nodes.
    if (outEdges === undefined || inEdges === undefined) {
      for (let e = 0; e < m; e++) {
        const source = sources[e]!
        const target = targets[e]!
        outTargets[outCursor[source >> BUCKET_BITS]!++] = (target << BUCKET_BITS) | (source & BUCKET_MASK)
        inSources[inCursor[target >> BUCKET_BITS]!++] = (source << BUCKET_BITS) | (target & BUCKET_MASK)
      }
    } else {
      for (let e = 0; e < m; e++) {
        const source = sources[e]!
        const target = targets[e]!
        const id = edgeIds![e]!
        const out = outCursor[source >> BUCKET_BITS]!++
        outTargets[out] = (target << BUCKET_BITS) | (source & BUCKET_MASK)
        outEdges[out] = id
        const into = inCursor[target >> BUCKET_BITS]!++
        inSources[into] = (source << BUCKET_BITS) | (target & BUCKET_MASK)
        inEdges[into] = id
      }
    }
    const outOffsets = sortBuckets(size, outStart, outWidest, outTargets, outEdges, undefined)
    const inOffsets = sortBuckets(size, inStart, inWidest, inSources, inEdges, undefined)
    return { size, edgeCount: m, outOffsets, outTargets, outEdges, inOffsets, inSources, inEdges }
  }
  const low = new Uint16Array(m)
  distribute(sources, targets, edgeIds, outStart, outTargets, outEdges, low)
  const outOffsets = sortBuckets(size, outStart, outWidest, outTargets, outEdges, low)
  distribute(targets, sources, edgeIds, inStart, inSources, inEdges, low)
  const inOffsets = sortBuckets(size, inStart, inWidest, inSources, inEdges, low)
  return { size, edgeCount: m, outOffsets, outTargets, outEdges, inOffsets, inSources, inEdges }
}

/** Turns per-bucket counts (`start[b + 1]` for bucket `b`) into bucket starts; returns the largest count. */
const accumulate = (start: Int32Array): number => {
  let widest = 0
  for (let b = 1; b < start.length; b++) {
    widest = Math.max(widest, start[b]!)
    start[b]! += start[b - 1]!
  }
  return widest
}

/** One direction's edges into their buckets (`start`), the low bits of their keys into `low`. */
const distribute = (
  keys: ArrayLike<number>,
  values: ArrayLike<number>,
  ids: ArrayLike<number> | undefined,
  start: Int32Array,
  out: Int32Array,
  outIds: Int32Array | undefined,
  low: Uint16Array
): void => {
  const cursor = start.slice(0, start.length - 1)
  for (let e = 0; e < keys.length; e++) {
    const key = keys[e]!
    const at = cursor[key >> BUCKET_BITS]!++
    low[at] = key & BUCKET_MASK
    out[at] = values[e]!
    if (outIds !== undefined) outIds[at] = ids![e]!
  }
}

/**
 * Sorts each bucket `out[start[b] .. start[b + 1])` (at most `widest` edges) by the low bits of its
 * keys (in `low`, or below each value when `low` is undefined), in place and stable: the bucket is
 * copied aside and counting-sorted back, with its counters, its copy and its slice of `out` in
 * cache. Returns the CSR offsets (size + 1).
 */
const sortBuckets = (
  size: number,
  start: Int32Array,
  widest: number,
  out: Int32Array,
  outIds: Int32Array | undefined,
  low: Uint16Array | undefined
): Int32Array => {
  const buckets = start.length - 1
  const offsets = new Int32Array(size + 1)
  const local = new Int32Array(BUCKET_SIZE)
  const copy = new Int32Array(widest)
  const copyIds = outIds === undefined ? undefined : new Int32Array(widest)
  for (let b = 0; b < buckets; b++) {
    const first = b << BUCKET_BITS
    const from = start[b]!
    const to = start[b + 1]!
    // Per node of the bucket: its count, then where its next edge goes.
    local.fill(0)
    if (low === undefined) for (let e = from; e < to; e++) local[out[e]! & BUCKET_MASK]!++
    else for (let e = from; e < to; e++) local[low[e]!]!++
    const nodes = Math.min(size - first, BUCKET_SIZE)
    let end = from
    for (let i = 0; i < nodes; i++) {
      const count = local[i]!
      local[i] = end
      end += count
      offsets[first + i + 1] = end
    }
    copy.set(out.subarray(from, to))
    if (copyIds !== undefined) copyIds.set(outIds!.subarray(from, to))
    if (low === undefined) {
      if (copyIds === undefined) {
        for (let e = from; e < to; e++) {
          const value = copy[e - from]!
          out[local[value & BUCKET_MASK]!++] = value >>> BUCKET_BITS
        }
      } else {
        for (let e = from; e < to; e++) {
          const value = copy[e - from]!
          const at = local[value & BUCKET_MASK]!++
          out[at] = value >>> BUCKET_BITS
          outIds![at] = copyIds[e - from]!
        }
      }
    } else {
      for (let e = from; e < to; e++) {
        const at = local[low[e]!]!++
        out[at] = copy[e - from]!
        if (copyIds !== undefined) outIds![at] = copyIds[e - from]!
      }
    }
  }
  return offsets
}

/**
 * The first size of a stack or heap that may hold every node but usually holds a few: `new
 * Int32Array(size)` is zeroed, and when the allocator hands back memory a DAG just freed, zeroing
 * 4 MB (10^6 nodes) took longer than the whole traversal.
 */
const initialCapacity = 1024

/** `array` copied into one twice as long, at most `limit`. */
const grown = (array: Int32Array, limit: number): Int32Array<ArrayBuffer> => {
  const next = new Int32Array(Math.min(limit, 2 * array.length))
  next.set(array)
  return next
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
  let stack = new Int32Array(Math.min(dag.size, initialCapacity))
  let top = 0
  for (const root of roots) {
    if (marks[root] === 0) {
      marks[root] = 1
      if (top === stack.length) stack = grown(stack, dag.size)
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
        if (top === stack.length) stack = grown(stack, dag.size)
        stack[top++] = j
      }
    }
  }
  return marks
}

/**
 * Kahn's algorithm; ready nodes leave in increasing index order, so the order only depends on
 * declaration order. Returns fewer than `size` nodes when the graph has a cycle.
 *
 * **Details**
 *
 * The lowest ready index is found without a priority queue over all ready nodes. Popping it moves
 * a sweep position up the indices; a node made ready above the sweep waits in a bitset that the
 * sweep scans once, forward, while one made ready below it (most of them in a random DAG: 73% at
 * 10^6 nodes) is lower than everything in the bitset and goes to a binary heap, which is drained
 * before the sweep moves on and so stays small (a handful of nodes; the longest drain at 10^6 was
 * 1,648). In-degrees are counted down in the same word as the node's CSR row start when both fit
 * (fewer than 2^24 edges, in-degrees below 256): making a node ready then fetches the cache line
 * that says where its row is, one miss fewer per node on the chain of pops.
 */
export const kahn = (dag: Dag): Int32Array => {
  const n = dag.size
  if (inIndexOrder(dag)) {
    const order = new Int32Array(n)
    for (let i = 0; i < n; i++) order[i] = i
    return order
  }
  const { inOffsets, outOffsets } = dag
  const above = new Int32Array((n >>> 5) + 1)
  if (outOffsets[n]! < 2 ** (32 - COUNT_BITS)) {
    // One pass for the packed words and the bitset of the nodes ready at the start.
    const state = new Int32Array(n + 1)
    let most = 0
    let bits = 0
    for (let i = 0; i < n; i++) {
      const degree = inOffsets[i + 1]! - inOffsets[i]!
      most |= degree
      state[i] = (outOffsets[i]! << COUNT_BITS) | degree
      bits |= ((degree - 1) >>> 31) << (i & 31)
      if ((i & 31) === 31) {
        above[i >>> 5] = bits
        bits = 0
      }
    }
    if (most <= COUNT_MASK) {
      above[n >>> 5] = bits
      state[n] = outOffsets[n]! << COUNT_BITS
      return kahnPacked(dag, state, above)
    }
  }
  // (Setting again the bits that a packing given up has set changes nothing.)
  const indegree = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    indegree[i] = inOffsets[i + 1]! - inOffsets[i]!
    if (indegree[i] === 0) above[i >>> 5]! |= 1 << (i & 31)
  }
  return kahnApart(dag, indegree, above)
}

/** Bits of a packed word of `kahn` that count a node's in-degree down, below its row start. */
const COUNT_BITS = 8
const COUNT_MASK = (1 << COUNT_BITS) - 1

/**
 * Whether every edge goes from a lower to a higher index: then the index order is the topological
 * order `kahn` returns (the lowest ready index is always the next one), found in one sequential
 * pass. Workflows written top-down, without containers (whose sentinels come last), are so.
 */
const inIndexOrder = (dag: Dag): boolean => {
  const { size, outOffsets, outTargets } = dag
  for (let i = 0; i < size; i++) {
    const end = outOffsets[i + 1]!
    for (let k = outOffsets[i]!; k < end; k++) if (outTargets[k]! <= i) return false
  }
  return true
}

/**
 * The walk of `kahn` over packed words: node `i`'s row is `outTargets[state[i] >>> COUNT_BITS ..
 * state[i + 1] >>> COUNT_BITS)` and its remaining in-degree `state[i] & COUNT_MASK`. `above` has
 * the nodes ready at the start.
 *
 * `kahnApart` is the same walk over the other layout. One walk for both, with the shift and mask as
 * arguments, was about 10% slower at 10^5 and 10^6 nodes: as constants the JIT folds them in. (The
 * ready set as a class with `take` / `add` methods was 1.3-3x slower.)
 */
const kahnPacked = (dag: Dag, state: Int32Array, above: Int32Array): Int32Array => {
  const n = dag.size
  const outTargets = dag.outTargets
  const edges = outTargets.length
  let heap = new Int32Array(Math.min(n, initialCapacity))
  let size = 0
  const order = new Int32Array(n)
  let count = 0
  let sweep = -1
  let word = 0
  let touched = prefetched
  for (;;) {
    let i: number
    if (size > 0) {
      i = popLowest(heap, size--)
    } else {
      i = nextSet(above, word)
      if (i < 0) break
      word = i >>> 5
      sweep = i
    }
    order[count++] = i
    const end = state[i + 1]! >>> COUNT_BITS
    for (let k = state[i]! >>> COUNT_BITS; k < end; k++) {
      const j = outTargets[k]!
      const left = state[j]! - 1
      state[j] = left
      if ((left & COUNT_MASK) !== 0) continue
      if (j > sweep) {
        above[j >>> 5]! |= 1 << (j & 31)
      } else {
        if (size === heap.length) heap = grown(heap, n)
        push(heap, size++, j)
        const row = left >>> COUNT_BITS
        if (row < edges) touched ^= outTargets[row]!
      }
    }
  }
  prefetched = touched
  return count === n ? order : order.slice(0, count)
}

/** The walk of `kahn` with rows from `outOffsets` and in-degrees apart (too many edges, or in-degrees, to pack). */
const kahnApart = (dag: Dag, indegree: Int32Array, above: Int32Array): Int32Array => {
  const n = dag.size
  const { outOffsets, outTargets } = dag
  const edges = outTargets.length
  let heap = new Int32Array(Math.min(n, initialCapacity))
  let size = 0
  const order = new Int32Array(n)
  let count = 0
  let sweep = -1
  let word = 0
  let touched = prefetched
  for (;;) {
    let i: number
    if (size > 0) {
      i = popLowest(heap, size--)
    } else {
      i = nextSet(above, word)
      if (i < 0) break
      word = i >>> 5
      sweep = i
    }
    order[count++] = i
    const end = outOffsets[i + 1]!
    for (let k = outOffsets[i]!; k < end; k++) {
      const j = outTargets[k]!
      if (--indegree[j]! !== 0) continue
      if (j > sweep) {
        above[j >>> 5]! |= 1 << (j & 31)
      } else {
        if (size === heap.length) heap = grown(heap, n)
        push(heap, size++, j)
        const row = outOffsets[j]!
        if (row < edges) touched ^= outTargets[row]!
      }
    }
  }
  prefetched = touched
  return count === n ? order : order.slice(0, count)
}

/** Takes the lowest of the binary min-heap `heap[0 .. size)`; the heap is then `heap[0 .. size - 1)`. */
const popLowest = (heap: Int32Array, size: number): number => {
  const lowest = heap[0]!
  // Sift the last element down from the root.
  const last = heap[size - 1]!
  const rest = size - 1
  let at = 0
  for (let child = 1; child < rest; child = 2 * at + 1) {
    if (child + 1 < rest && heap[child + 1]! < heap[child]!) child++
    if (heap[child]! >= last) break
    heap[at] = heap[child]!
    at = child
  }
  heap[at] = last
  return lowest
}

/** Adds `j` to the binary min-heap `heap[0 .. size)`, which has room for it. */
const push = (heap: Int32Array, size: number, j: number): void => {
  let at = size
  while (at > 0 && heap[(at - 1) >> 1]! > j) {
    heap[at] = heap[(at - 1) >> 1]!
    at = (at - 1) >> 1
  }
  heap[at] = j
}

/** Clears and returns the lowest set bit of `bits` at or after word `from`, or -1 when none is left. */
const nextSet = (bits: Int32Array, from: number): number => {
  let word = from
  while (word < bits.length && bits[word] === 0) word++
  if (word === bits.length) return -1
  const value = bits[word]!
  bits[word] = value & (value - 1)
  return (word << 5) | (31 - Math.clz32(value & -value))
}

/**
 * Where the walks of `kahn` put the words they read ahead, so that the JIT cannot drop those reads.
 *
 * Popping the lowest ready index makes the walk a chain (the next node is often one its predecessor
 * just made ready, at a random index), so each step waits for the row of the node before it.
 * Reading a node's first target when it goes to the heap starts that miss before the pop that needs
 * it; JavaScript has no prefetch instruction, and this load serves as one. A node made ready above
 * the sweep (one in eight) is not read ahead: it waits for the sweep to reach it (at 10^6 nodes,
 * 113,000 pops at the median, 17,000 for the quickest tenth), long enough for a row read ahead to
 * have left the cache, and the sweep then meets the rows in index order.
 */
let prefetched = 0

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
  readonly definition: Workflow.Loop | Workflow.Parallel
}

const noChain: ReadonlyArray<string> = Object.freeze([])

/**
 * Expands a structurally valid workflow (unique ids, each member in at most one container, no
 * container inside itself, edges only between members of the same container) into a `Dag`.
 */
export const expand = (workflow: Workflow.Workflow): Dag => {
  const blocks = workflow.blocks
  const b = blocks.length
  const containers: Array<ContainerEntry> = []
  const ordinal = new Map<string, number>()
  for (const loop of workflow.loops ?? []) {
    ordinal.set(loop.id, containers.length)
    containers.push({ kind: "loop", definition: loop })
  }
  for (const parallel of workflow.parallels ?? []) {
    ordinal.set(parallel.id, containers.length)
    containers.push({ kind: "parallel", definition: parallel })
  }
  const size = b + 2 * containers.length
  const index = new Map<string, number>()
  for (let i = 0; i < b; i++) index.set(blocks[i]!.id, i)
  for (let c = 0; c < containers.length; c++) {
    const id = containers[c]!.definition.id
    index.set(NodeId.format({ kind: "start", id }), b + 2 * c)
    index.set(NodeId.format({ kind: "end", id }), b + 2 * c + 1)
  }
  // A member or edge endpoint is a block id (entry and exit: its node) or a container id (entry: its
  // start, exit: its end, the next node); block nodes come first, so `>= b` tells them apart.
  const entryOf = (id: string): number => {
    const block = index.get(id)
    return block !== undefined ? block : b + 2 * ordinal.get(id)!
  }
  let parent: Int32Array | undefined
  let members = 0
  if (containers.length > 0) {
    parent = new Int32Array(size).fill(-1)
    for (let c = 0; c < containers.length; c++) {
      const body = containers[c]!.definition.body
      members += body.length
      for (const member of body) {
        const first = entryOf(member)
        parent[first] = c
        if (first >= b) parent[first + 1] = c
      }
    }
  }
  const insideChain = new Array<ReadonlyArray<string>>(containers.length)
  const insideLoop = new Array<string | undefined>(containers.length)
  const insideParallel = new Array<string | undefined>(containers.length)
  const settle = (c: number): void => {
    if (insideChain[c] !== undefined) return
    const { kind, definition } = containers[c]!
    const p = parent![b + 2 * c]!
    if (p >= 0) settle(p)
    insideChain[c] = p < 0 ? [definition.id] : [...insideChain[p]!, definition.id]
    insideLoop[c] = kind === "loop" ? definition.id : p < 0 ? undefined : insideLoop[p]
    insideParallel[c] = kind === "parallel" ? definition.id : p < 0 ? undefined : insideParallel[p]
  }
  for (let c = 0; c < containers.length; c++) settle(c)
  const edges = workflow.edges
  const capacity = edges.length + 2 * members
  const sources = new Int32Array(capacity)
  const targets = new Int32Array(capacity)
  const edgeIds = new Int32Array(capacity)
  const hasIn = new Uint8Array(size)
  const hasOut = new Uint8Array(size)
  let m = 0
  for (let e = 0; e < edges.length; e++) {
    const edge = edges[e]!
    const source = entryOf(edge.source)
    const s = source >= b ? source + 1 : source
    const t = entryOf(edge.target)
    sources[m] = s
    targets[m] = t
    edgeIds[m++] = e
    hasOut[s] = 1
    hasIn[t] = 1
  }
  for (let c = 0; c < containers.length; c++) {
    const start = b + 2 * c
    const end = start + 1
    for (const member of containers[c]!.definition.body) {
      const first = entryOf(member)
      const last = first >= b ? first + 1 : first
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
  const adjacency = adjacencyOf(size, sources.subarray(0, m), targets.subarray(0, m), edgeIds.subarray(0, m))
  return new LazyDag(adjacency, index, workflow, { blocks, containers, parent, insideChain, insideLoop, insideParallel })
}
