/**
 * @ripple/core — the pure planning core of Ripple.
 */
export * as Dag from "./Dag.ts"
export * as Fingerprint from "./Fingerprint.ts"
export * as NodeId from "./NodeId.ts"
export * as Reference from "./Reference.ts"
export * as Workflow from "./Workflow.ts"
export * as Snapshot from "./Snapshot.ts"
export * as Params from "./Params.ts"
export * as Plan from "./Plan.ts"
