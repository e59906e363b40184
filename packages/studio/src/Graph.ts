/**
 * The picture of a workflow the studio draws: the nodes and edges of its expanded DAG, the
 * containers as nested boxes, and what each node shows for a run (`paint`) or a plan (`planned`).
 *
 * **Details**
 *
 * - Nodes are the expanded DAG's (`Dag.make`): blocks, and a start and an end sentinel per loop or
 *   parallel, which sit inside their container's box. A node's state for a run aggregates its
 *   instances (iterations, branches) so that what needs a look wins: failed, then waiting or
 *   sleeping, then running, then executed, cutoff, reused, skipped.
 * - Pure: the server computes it once per request; the browser only lays it out (dagre) and draws.
 *
 * @since 0.1.0
 */
import { Dag, type Workflow } from "@ripple/core"
import type { RunStatus, RunStore, RunView } from "@ripple/runtime"

type Json = Workflow.Json

/**
 * A node of the drawn graph.
 *
 * @since 0.1.0
 */
export interface Node {
  /** The node id (`NodeId.format`: `block`, `loop#start`, `loop#end`). */
  readonly id: string
  readonly kind: "block" | "start" | "end"
  /** The block type (blocks), or `loop` / `parallel` (sentinels). */
  readonly type: string
  /** The block's or container's name, else its id. */
  readonly label: string
  /** The innermost box it is drawn in (for a sentinel: its own container). */
  readonly container: string | undefined
}

/**
 * A container box: a loop or parallel, inside its enclosing container.
 *
 * @since 0.1.0
 */
export interface Container {
  readonly id: string
  readonly kind: "loop" | "parallel"
  readonly label: string
  readonly parent: string | undefined
}

/**
 * An edge of the drawn graph (`handle`: the router route or condition branch it is taken on).
 *
 * @since 0.1.0
 */
export interface Edge {
  readonly source: string
  readonly target: string
  readonly handle: string | undefined
}

/**
 * The drawn graph of a workflow.
 *
 * @since 0.1.0
 */
export interface Graph {
  readonly nodes: ReadonlyArray<Node>
  readonly edges: ReadonlyArray<Edge>
  readonly containers: ReadonlyArray<Container>
}

/**
 * The graph of a workflow's expanded DAG.
 *
 * @since 0.1.0
 */
export const of = (workflow: Workflow.Workflow): Graph => {
  const dag = Dag.make(workflow)
  const nodes: Array<Node> = []
  const edges: Array<Edge> = []
  for (let i = 0; i < Dag.size(dag); i++) {
    const info = Dag.nodeOf(dag, i)
    const id = Dag.idOf(dag, i)
    const block = Dag.blockOf(dag, i)
    const sentinel = info.kind !== "block"
    nodes.push({
      id,
      kind: info.kind,
      type: block?.type ?? info.containerKind ?? "block",
      label: sentinel ? `${info.kind === "start" ? "▶" : "■"} ${info.id}` : block?.name ?? info.id,
      container: sentinel ? info.id : info.chain[info.chain.length - 1]
    })
    const targets = Dag.successors(dag, i)
    const via = Dag.successorEdges(dag, i)
    for (let k = 0; k < targets.length; k++) {
      edges.push({ source: id, target: Dag.idOf(dag, targets[k]!), handle: Dag.handleOf(dag, via[k]!) })
    }
  }
  const parentOf = new Map(nodes.filter((n) => n.kind === "start").map((n) => {
    const chain = Dag.chainOf(dag, Dag.indexOf(dag, n.id)!)
    return [n.container!, chain[chain.length - 1]] as const
  }))
  const containers = [
    ...(workflow.loops ?? []).map((c) => ({ id: c.id, kind: "loop" as const, label: c.name ?? c.id })),
    ...(workflow.parallels ?? []).map((c) => ({ id: c.id, kind: "parallel" as const, label: c.name ?? c.id }))
  ].map((c): Container => ({ ...c, parent: parentOf.get(c.id) }))
  return { nodes, edges, containers }
}

/**
 * What a node shows for a run.
 *
 * - `executed`, `reused` (copied from an earlier run), `cutoff` (re-executed upstream produced the
 *   same output, so it was reused), `skipped` (branch not taken), `failed`;
 * - `waiting` (an approval, a signal or a pause), `sleeping` (a durable timer), `running`;
 * - `pruned`: a finished run-from that recorded nothing for it (its plan pruned it); `pending`: not
 *   reached (yet).
 *
 * @since 0.1.0
 */
export type State =
  | "executed"
  | "reused"
  | "cutoff"
  | "pruned"
  | "skipped"
  | "failed"
  | "waiting"
  | "sleeping"
  | "running"
  | "interrupted"
  | "pending"

/**
 * The states in the order an aggregate picks them: the first one any instance has wins.
 *
 * @since 0.1.0
 */
export const precedence: ReadonlyArray<State> = [
  "failed",
  "waiting",
  "sleeping",
  "running",
  "interrupted",
  "executed",
  "cutoff",
  "reused",
  "skipped",
  "pruned",
  "pending"
]

const instanceState = (view: RunView.NodeView, sleeping: ReadonlySet<string>): State => {
  switch (view.status) {
    case "failed":
      return "failed"
    case "paused":
      return "waiting"
    case "waiting":
      return sleeping.has(view.node) ? "sleeping" : "waiting"
    case "running":
      // Journaled running in a run nobody executes: its handler was stopped (`RunView.NodeView.interrupted`).
      return view.interrupted ? "interrupted" : "running"
    case "skipped":
      return "skipped"
    case "completed":
      return view.how === "executed" ? "executed" : view.reasons.includes("cutoff") ? "cutoff" : "reused"
  }
}

const finished: ReadonlySet<RunStatus.Status> = new Set(["completed", "failed", "cancelled"])

/**
 * The state of every node of `graph` in a run, from its node views (`Runs.nodes`) and what it is
 * dormant on.
 *
 * @since 0.1.0
 */
export const paint = (
  graph: Graph,
  run: Pick<RunStore.Run, "status" | "mode" | "pruned">,
  views: ReadonlyArray<RunView.NodeView>,
  suspension: RunStatus.Suspension
): { readonly [node: string]: State } => {
  const sleeping = new Set(suspension.branches.flatMap((b) => (b.reason._tag === "Sleep" ? [b.reason.node] : [])))
  const byNode = new Map<string, Array<State>>()
  for (const view of views) {
    const node = view.node.split("@")[0]!
    const states = byNode.get(node) ?? []
    states.push(instanceState(view, sleeping))
    byNode.set(node, states)
  }
  const unrecorded: State = finished.has(run.status) && run.mode === "run-from" && (run.pruned?.count ?? 0) > 0 ? "pruned" : "pending"
  const painted: Record<string, State> = {}
  for (const node of graph.nodes) {
    const states = byNode.get(node.id)
    painted[node.id] = states === undefined ? unrecorded : precedence.find((state) => states.includes(state))!
  }
  return painted
}

/**
 * What a node shows in a plan: `rerun`, `reused` or `pruned`.
 *
 * @since 0.1.0
 */
export type Planned = "rerun" | "reused" | "pruned"

/**
 * A plan as the studio draws it: each node's part in it, the counts, and the planner's reasons
 * (`Plan.toJson`, as `ripple plan --format json` prints it).
 *
 * @since 0.1.0
 */
export interface PlanView {
  readonly states: { readonly [node: string]: Planned }
  readonly counts: { readonly [K in Planned]: number }
  readonly plan: Json
}

/**
 * The plan view of a plan.
 *
 * @since 0.1.0
 */
export const planned = (json: Json): PlanView => {
  const document = json as { readonly rerun: ReadonlyArray<string>; readonly reused: ReadonlyArray<string>; readonly pruned: ReadonlyArray<string> }
  const states: Record<string, Planned> = {}
  const parts = ["rerun", "reused", "pruned"] as const
  for (const part of parts) for (const node of document[part]) states[node] = part
  return {
    states,
    counts: { rerun: document.rerun.length, reused: document.reused.length, pruned: document.pruned.length },
    plan: json
  }
}
