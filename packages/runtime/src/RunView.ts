/**
 * What a stored run shows of its work: its observed outputs, and per node instance what it did
 * (status, resolved inputs, output, error, attempts, duration) and why (re-ran or reused).
 *
 * **Details**
 *
 * - `outputs` is the record a `child` block gets from a completed child run: `{ <block id>: output }`
 *   over the workflow's observed outputs (`Dag.observed`: `response` blocks, the declared `outputs`,
 *   or every sink), a container keyed by its id; `null` for one that has not completed.
 * - `nodes` reads the run's journal as its snapshot holds it (`RunStore.snapshot`) with the
 *   planner's reasons for its reused nodes (`RunStore.reasons`): pure, so every process (CLI,
 *   studio, a library user) shows a run the same way.
 * - Reasons of a re-executed node are not journaled: a node of a run-from is explained as the
 *   `target` or `in the re-run scope`, one of a full run as `full run`, a skipped one as
 *   `branch not taken`.
 *
 * @since 0.1.0
 */
import { Dag, NodeId, type Snapshot, type Workflow } from "@ripple/core"
import * as Result from "effect/Result"
import * as Compiled from "./internal/compiled.ts"
import type { Run } from "./RunStore.ts"

type Json = Workflow.Json

/**
 * A run's observed outputs by block (containers by their id); `null` for one not completed.
 *
 * @since 0.1.0
 */
export const outputs = (snapshot: Snapshot.Snapshot): { readonly [block: string]: Json } => {
  const dag = Compiled.dagOf(snapshot.workflow)
  const found: Record<string, Json> = {}
  for (const i of Dag.observed(dag)) {
    const id = Dag.idOf(dag, i)
    const record = snapshot.nodes[id]
    const parsed = NodeId.parse(id)
    found[Result.isSuccess(parsed) ? parsed.success.id : id] = record?.status === "completed" ? record.output ?? null : null
  }
  return found
}

/**
 * How a node instance came by its record in this run: executed here, copied from an earlier run
 * (`reused`), given its output by a pin of the run (`pinned`, not executed), or left out because
 * its branch was not taken (`skipped`).
 *
 * @since 0.1.0
 */
export type How = "executed" | "reused" | "pinned" | "skipped"

/**
 * One node instance of a run, as `ripple show --node` and the studio present it.
 *
 * @since 0.1.0
 */
export interface NodeView {
  /** The node instance id (`NodeId.formatInstance`: `block`, `loop#end`, `step@2.0`, ...). */
  readonly node: string
  /** The block (or container) the instance belongs to. */
  readonly block: string
  readonly status: Snapshot.NodeStatus
  /**
   * Journaled `running`, but the run is not executing any more (it ended, failed or went dormant):
   * its handler was stopped (a cancel, a crash) and never finished. A resume runs it again.
   */
  readonly interrupted: boolean
  readonly how: How
  /** The run the reused record was first produced by (`how` is `reused`). */
  readonly reusedFrom: string | undefined
  /** Why it re-ran or was reused: the planner's reasons, or what the run's mode implies. */
  readonly reasons: ReadonlyArray<string>
  /** Its params with every reference resolved, as it ran with them. */
  readonly inputs: Json | undefined
  readonly output: Json | undefined
  /** The handle a router or condition chose. */
  readonly decision: string | undefined
  readonly error: Snapshot.NodeError | undefined
  /** Attempts made (0 for a skipped node). */
  readonly attempts: number
  readonly startedAt: number | undefined
  readonly finishedAt: number | undefined
  /** How long it took in this run (`undefined` for a reused, skipped or unfinished one). */
  readonly durationMs: number | undefined
}

/**
 * The view of one node instance of `run` (with the planner's `reasons` for its reused nodes).
 *
 * @since 0.1.0
 */
export const node = (
  run: Pick<Run, "status" | "mode" | "sourceRun" | "target">,
  id: string,
  record: Snapshot.NodeRecord,
  reasons: { readonly [node: string]: ReadonlyArray<string> }
): NodeView => {
  // Own members only: a node named `constructor` or `toString` has no reasons an object inherits.
  const given = Object.hasOwn(reasons, id) ? reasons[id] : undefined
  // A record copied within its own run (a resume) is this run's execution, not a reuse.
  const reused = record.reusedFrom !== undefined && (given !== undefined || run.sourceRun !== undefined)
  const parsed = NodeId.parseInstance(id)
  // The journal marks a pinned completion (`RunStore.JournalEntry`): its reasons are ["pinned"].
  const pinned = !reused && record.status === "completed" && (given ?? []).includes("pinned")
  const how: How = record.status === "skipped" ? "skipped" : reused ? "reused" : pinned ? "pinned" : "executed"
  const why = given ??
    (how === "skipped"
      ? ["branch not taken"]
      : how === "reused"
      ? []
      : how === "pinned"
      ? ["pinned"]
      : run.mode === "full"
      ? ["full run"]
      : id === run.target
      ? ["target"]
      : ["in the re-run scope"])
  return {
    node: id,
    block: Result.isSuccess(parsed) ? parsed.success.node.id : id,
    status: record.status,
    interrupted: record.status === "running" && run.status !== "running" && run.status !== "pending",
    how,
    reusedFrom: reused ? record.reusedFrom : undefined,
    reasons: why,
    inputs: record.inputs,
    output: record.output,
    decision: record.decision,
    error: record.error,
    attempts: record.attempt,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    durationMs: how === "executed" && record.startedAt !== undefined && record.finishedAt !== undefined
      ? record.finishedAt - record.startedAt
      : undefined
  }
}

/**
 * Every node instance the run recorded, in execution order (reused ones keep their first run's
 * times; skipped ones have an end only).
 *
 * @since 0.1.0
 */
export const nodes = (
  run: Pick<Run, "status" | "mode" | "sourceRun" | "target" | "pins">,
  snapshot: Snapshot.Snapshot,
  reasons: { readonly [node: string]: ReadonlyArray<string> }
): ReadonlyArray<NodeView> => {
  const when = (record: Snapshot.NodeRecord) => record.startedAt ?? record.finishedAt ?? Number.MAX_SAFE_INTEGER
  return Object.entries(snapshot.nodes)
    .sort(([, a], [, b]) => when(a) - when(b))
    .map(([id, record]) => node(run, id, record, reasons))
}

/**
 * The instances of `id` among `views`: the node instance `id`, or every instance of the node or
 * block `id` (a block's iterations and branches; a container's start and end).
 *
 * @since 0.1.0
 */
export const select = (views: ReadonlyArray<NodeView>, id: string): ReadonlyArray<NodeView> =>
  views.filter((view) => view.node === id || view.block === id || view.node.split("@")[0] === id)

/**
 * Whether `id` names a node instance, a node or a block of the workflow (one that did not run
 * has no view yet, but is no typo). An instance's path must have one index per enclosing loop or
 * parallel.
 *
 * @since 0.1.0
 */
export const names = (workflow: Workflow.Workflow, id: string): boolean => {
  const parsed = NodeId.parseInstance(id)
  if (Result.isFailure(parsed)) return false
  const block = parsed.success.node.id
  const containers = [...(workflow.loops ?? []), ...(workflow.parallels ?? [])]
  if (!workflow.blocks.some((b) => b.id === block) && !containers.some((c) => c.id === block)) return false
  // An instance path has one index per enclosing loop or parallel (a container's own sentinels are
  // enclosed by the containers around it): `b@5` of a block in none can never have run.
  const path = parsed.success.path.length
  if (path === 0) return true
  const enclosing = new Map<string, string>()
  for (const container of containers) for (const member of container.body) enclosing.set(member, container.id)
  let depth = 0
  for (let at = enclosing.get(block); at !== undefined && depth <= containers.length; at = enclosing.get(at)) depth++
  return path === depth
}
