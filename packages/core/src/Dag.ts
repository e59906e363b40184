/**
 * The expanded DAG of a workflow, with interned integer nodes and CSR adjacency in both directions.
 *
 * **Expansion**
 *
 * - Every block is a node (id: the block id).
 * - Every loop or parallel `C` becomes two sentinel nodes, `C#start` and `C#end`: edges into `C` go
 *   to `C#start`, edges out of `C` leave from `C#end`.
 * - Body members with no incoming edge (from inside the body, the only place they can come from)
 *   get an edge from `C#start`; members with no outgoing edge get an edge to `C#end`. A nested
 *   container is a member like a block, through its own sentinels.
 * - Each node records its kind, block or container id, innermost enclosing loop and parallel, and
 *   the chain of enclosing containers (outer to inner); see `NodeInfo`.
 *
 * **Indices**
 *
 * Node indices follow declaration order: blocks in file order, then for each loop and then each
 * parallel, its `#start` and `#end`. Hot paths take and return integer indices and typed arrays;
 * string ids (see `NodeId`) live at the boundary (`indexOf`, `idOf`).
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Graph from "./internal/graph.ts"
import * as Workflow from "./Workflow.ts"

/**
 * What a node stands for: kind, block/container id, enclosing loop/parallel and container chain.
 *
 * @since 0.1.0
 */
export type NodeInfo = Graph.NodeInfo

/**
 * An expanded DAG (read-only; build it with `make`, `fromWorkflow` or `fromEdges`). Its `nodes` and
 * `ids` arrays are materialized on first read, so building a DAG allocates no per-node object.
 *
 * @since 0.1.0
 */
export type Dag = Graph.Dag

/**
 * Expands a validated workflow (from `Workflow.decode`) into its DAG.
 *
 * **Gotchas**
 *
 * The workflow must be valid; `make` does not check it (use `fromWorkflow` for unchecked input).
 *
 * @since 0.1.0
 */
export const make = (workflow: Workflow.Workflow): Dag => Graph.expand(workflow)

/**
 * Decodes, validates and expands a workflow file.
 *
 * @since 0.1.0
 */
export const fromWorkflow = (input: unknown): Result.Result<Dag, Workflow.WorkflowError> =>
  Result.map(Workflow.decode(input), make)

/**
 * A DAG over nodes `0 .. size-1` from parallel edge arrays, without a workflow (benchmarks,
 * graph-level tests). Node `i` is a block node whose id is `String(i)`; no edge has a workflow edge
 * behind it (`successorEdges` / `predecessorEdges` are all -1).
 *
 * **Gotchas**
 *
 * The edges are not checked for cycles; `topo` of a cyclic graph returns only the acyclic prefix.
 *
 * @since 0.1.0
 */
export const fromEdges = (size: number, sources: ArrayLike<number>, targets: ArrayLike<number>): Dag =>
  Graph.build(size, sources, targets, undefined)

/**
 * The number of nodes.
 *
 * @since 0.1.0
 */
export const size = (dag: Dag): number => dag.size

/**
 * The index of a node id (see `NodeId.format`), or `undefined` when the DAG has no such node.
 *
 * @since 0.1.0
 */
export const indexOf = (dag: Dag, nodeId: string): number | undefined => {
  if (dag.index !== undefined) return dag.index.get(nodeId)
  const i = Number(nodeId)
  return Number.isInteger(i) && i >= 0 && i < dag.size && String(i) === nodeId ? i : undefined
}

/**
 * The node id of an index.
 *
 * @since 0.1.0
 */
export const idOf = (dag: Dag, index: number): string => dag.ids?.[index] ?? String(index)

/**
 * The node record of an index.
 *
 * **Details**
 *
 * Built on demand: unlike `dag.nodes`, which materializes the records of all nodes on first read
 * (and keeps them), this allocates one short-lived record, so hot paths over large DAGs should
 * prefer it (or `chainOf` / `blockOf`) to `dag.nodes`.
 *
 * @since 0.1.0
 */
export const nodeOf = (dag: Dag, index: number): NodeInfo =>
  Graph.nodeAt(dag, index) ?? {
    kind: "block",
    id: String(index),
    loop: undefined,
    parallel: undefined,
    chain: [],
    containerKind: undefined,
    definition: undefined
  }

/**
 * The enclosing containers of a node, outer to inner (`nodeOf(dag, index).chain` without building
 * the record; empty for `fromEdges` DAGs).
 *
 * @since 0.1.0
 */
export const chainOf = (dag: Dag, index: number): ReadonlyArray<string> => Graph.chainAt(dag, index)

/**
 * The block behind a node, or `undefined` for sentinels and `fromEdges` DAGs.
 *
 * @since 0.1.0
 */
export const blockOf = (dag: Dag, index: number): Workflow.Block | undefined => Graph.blockAt(dag, index)

/**
 * The direct successors of a node (a view into the CSR array: do not mutate).
 *
 * @since 0.1.0
 */
export const successors = (dag: Dag, index: number): Int32Array =>
  dag.outTargets.subarray(dag.outOffsets[index]!, dag.outOffsets[index + 1]!)

/**
 * The direct predecessors of a node (a view into the CSR array: do not mutate).
 *
 * @since 0.1.0
 */
export const predecessors = (dag: Dag, index: number): Int32Array =>
  dag.inSources.subarray(dag.inOffsets[index]!, dag.inOffsets[index + 1]!)

/**
 * Parallel to `successors`: the index of the workflow edge behind each out-edge, or -1 for the
 * synthetic edges of the expansion (sentinel to entry member, exit member to sentinel).
 *
 * @since 0.1.0
 */
export const successorEdges = (dag: Dag, index: number): Int32Array =>
  dag.outEdges.subarray(dag.outOffsets[index]!, dag.outOffsets[index + 1]!)

/**
 * Parallel to `predecessors`: the index of the workflow edge behind each in-edge, or -1.
 *
 * @since 0.1.0
 */
export const predecessorEdges = (dag: Dag, index: number): Int32Array =>
  dag.inEdges.subarray(dag.inOffsets[index]!, dag.inOffsets[index + 1]!)

/**
 * The handle (router route, condition branch, ...) of a workflow edge, by its index as returned by
 * `successorEdges` / `predecessorEdges`; `undefined` for unhandled or synthetic edges.
 *
 * @since 0.1.0
 */
export const handleOf = (dag: Dag, edge: number): string | undefined =>
  edge < 0 ? undefined : dag.workflow?.edges[edge]?.handle

/**
 * Options of `downstream` / `upstream`.
 *
 * @since 0.1.0
 */
export interface ReachOptions {
  /** A node for which this returns true is marked but not walked past (roots included). */
  readonly stopAt?: ((index: number) => boolean) | undefined
}

/**
 * Marks (1) every node reachable from `roots` along edges, roots included.
 *
 * @since 0.1.0
 */
export const downstream = (dag: Dag, roots: Iterable<number>, options?: ReachOptions): Uint8Array =>
  Graph.reach(dag, roots, true, options?.stopAt)

/**
 * Marks (1) every node from which one of `roots` is reachable, roots included.
 *
 * @since 0.1.0
 */
export const upstream = (dag: Dag, roots: Iterable<number>, options?: ReachOptions): Uint8Array =>
  Graph.reach(dag, roots, false, options?.stopAt)

/**
 * A topological order of all nodes (Kahn's algorithm). Stable: among ready nodes the lowest index,
 * i.e. the earliest declared, comes first, so the order depends only on the workflow.
 *
 * @since 0.1.0
 */
export const topo = (dag: Dag): Int32Array => Graph.kahn(dag)

/**
 * The nodes without successors, in index order.
 *
 * @since 0.1.0
 */
export const sinks = (dag: Dag): Int32Array => {
  const out: Array<number> = []
  for (let i = 0; i < dag.size; i++) if (dag.outOffsets[i] === dag.outOffsets[i + 1]) out.push(i)
  return Int32Array.from(out)
}

/**
 * The observed outputs: blocks of type `response`; if none, the declared `outputs` (a container's
 * output is its `#end` node); if none, the sinks. In index order.
 *
 * @since 0.1.0
 */
export const observed = (dag: Dag): Int32Array => {
  const responses = blocksOfType(dag, "response")
  if (responses.length > 0) return responses
  const declared = dag.workflow?.outputs ?? []
  if (declared.length > 0) {
    const out = new Set<number>()
    for (const id of declared) {
      const i = dag.index?.get(`${id}#end`) ?? dag.index?.get(id)
      if (i !== undefined) out.add(i)
    }
    return Int32Array.from([...out].sort((a, b) => a - b))
  }
  return sinks(dag)
}

/**
 * The nodes of blocks of type `trigger` (where a run starts), in index order.
 *
 * @since 0.1.0
 */
export const triggers = (dag: Dag): Int32Array => blocksOfType(dag, "trigger")

const blocksOfType = (dag: Dag, type: string): Int32Array => {
  const out: Array<number> = []
  for (let i = 0; i < dag.size; i++) {
    const block = Graph.blockAt(dag, i)
    if (block === undefined) break
    if (block.type === type) out.push(i)
  }
  return Int32Array.from(out)
}
