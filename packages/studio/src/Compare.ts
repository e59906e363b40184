/**
 * Two runs of one workflow side by side: which node instances differ in definition, resolved
 * inputs, output or status, compared through the fingerprints the journal keeps (the planner's
 * own measure of change), and what each node of the drawn graph shows for it.
 *
 * @since 0.1.0
 */
import type { Snapshot } from "@ripple/core"
import type * as Graph from "./Graph.ts"

/**
 * How a node instance of run `b` differs from the same instance of run `a`.
 *
 * @since 0.1.0
 */
export type Change = "definition" | "inputs" | "output" | "status"

/**
 * What a node of the graph shows: the strongest change of its instances (`added`: it ran only in
 * `b`; `removed`: only in `a`; `same`: no instance differs, or it ran in neither).
 *
 * @since 0.1.0
 */
export type Difference = "added" | "removed" | Change | "same"

/**
 * The differences in the order a node's aggregate picks them.
 *
 * @since 0.1.0
 */
export const precedence: ReadonlyArray<Difference> = ["added", "removed", "definition", "inputs", "output", "status", "same"]

/**
 * One node instance that differs.
 *
 * @since 0.1.0
 */
export interface NodeDiff {
  readonly node: string
  readonly difference: Difference
  /** Every change (empty for an added or removed instance). */
  readonly changes: ReadonlyArray<Change>
  readonly a: { readonly status: Snapshot.NodeStatus; readonly output: Snapshot.NodeRecord["output"] } | undefined
  readonly b: { readonly status: Snapshot.NodeStatus; readonly output: Snapshot.NodeRecord["output"] } | undefined
}

/**
 * The comparison: the differing instances (in `b`'s execution order, then those only in `a`) and
 * each graph node's difference.
 *
 * @since 0.1.0
 */
export interface Comparison {
  readonly nodes: ReadonlyArray<NodeDiff>
  readonly states: { readonly [node: string]: Difference }
}

const changesOf = (a: Snapshot.NodeRecord, b: Snapshot.NodeRecord): ReadonlyArray<Change> => [
  ...(a.fingerprints.definition !== b.fingerprints.definition ? ["definition" as const] : []),
  ...(a.fingerprints.inputs !== b.fingerprints.inputs ? ["inputs" as const] : []),
  ...(a.fingerprints.output !== b.fingerprints.output ? ["output" as const] : []),
  ...(a.status !== b.status ? ["status" as const] : [])
]

const side = (record: Snapshot.NodeRecord | undefined) => record === undefined ? undefined : { status: record.status, output: record.output }

/**
 * Compares run `b`'s snapshot with run `a`'s, drawn on `graph` (usually `b`'s workflow).
 *
 * @since 0.1.0
 */
export const compare = (graph: Graph.Graph, a: Snapshot.Snapshot, b: Snapshot.Snapshot): Comparison => {
  const when = (record: Snapshot.NodeRecord) => record.startedAt ?? record.finishedAt ?? Number.MAX_SAFE_INTEGER
  const ids = [
    ...Object.entries(b.nodes).sort(([, x], [, y]) => when(x) - when(y)).map(([id]) => id),
    ...Object.keys(a.nodes).filter((id) => b.nodes[id] === undefined)
  ]
  const nodes: Array<NodeDiff> = []
  const byNode = new Map<string, Array<Difference>>()
  for (const id of ids) {
    const before = a.nodes[id]
    const after = b.nodes[id]
    const changes = before !== undefined && after !== undefined ? changesOf(before, after) : []
    const difference: Difference = before === undefined ? "added" : after === undefined ? "removed" : changes[0] ?? "same"
    const node = id.split("@")[0]!
    byNode.set(node, [...(byNode.get(node) ?? []), difference])
    if (difference !== "same") nodes.push({ node: id, difference, changes, a: side(before), b: side(after) })
  }
  const states: Record<string, Difference> = {}
  for (const node of graph.nodes) {
    const differences = byNode.get(node.id) ?? ["same"]
    states[node.id] = precedence.find((d) => differences.includes(d))!
  }
  return { nodes, states }
}
