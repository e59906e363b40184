/**
 * @ripple/core — the pure planning core of Ripple.
 */
export * as Workflow from "./Workflow.ts"
export * as Snapshot from "./Snapshot.ts"
