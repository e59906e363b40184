/**
 * The run semantics' rules about edges, skips and references (see `Engine`'s module
 * documentation), written once for every part of the engine that decides a node.
 */
import type { Plan, Snapshot } from "@ripple/core"

/**
 * Whether an edge out of a settled node is live: its source completed and made no decision, the
 * edge has no handle, or the handle is the decision; an `"error"` edge is live only when its source
 * failed. A source not settled (or skipped) makes no edge live.
 */
export const isLive = (status: Snapshot.NodeStatus | undefined, decision: string | undefined, handle: string | undefined): boolean => {
  if (handle === "error") return status === "failed"
  if (status !== "completed") return false
  return decision === undefined || handle === undefined || handle === decision
}

/**
 * Whether a node whose incoming edges are all decided runs: it has none, or at least one is live.
 * Otherwise it is skipped, and its own outgoing edges are decided not live (skipping spreads).
 */
export const runs = (incoming: number, live: number): boolean => incoming === 0 || live > 0

/** The error of a node with a reference that does not resolve: it fails without its handler being called. */
export const unresolved = (failure: { readonly reference: string; readonly reason: string }): Snapshot.NodeError => ({
  message: `unresolved ${failure.reference} (${failure.reason})`,
  retryable: false
})

const unchanged: ReadonlyArray<string> = ["unchanged"]

/**
 * Why the plan reuses node `id`: the planner's reasons; a node it reuses without comment is reused
 * because nothing it depends on changed (`unchanged`).
 */
export const reuseReasons = (plan: Plan.Plan, id: string): ReadonlyArray<string> => {
  const explained = plan.reasons.get(id)
  return explained === undefined || explained.length === 0 ? unchanged : explained.map((r) => r._tag)
}
