/**
 * What a run reports while it executes, as published on `Runs.events`. Every event carries the run
 * id and a time in epoch milliseconds read from the effect `Clock`.
 *
 * **Gotchas**
 *
 * Events are best-effort notifications: they go through a sliding buffer, so a subscriber that
 * falls behind loses the oldest events instead of slowing the run. The durable record is the
 * `RunStore` journal.
 *
 * @since 0.1.0
 */
import type { Snapshot } from "@ripple/core"
import type * as RunStatus from "./RunStatus.ts"

/** How a run was planned. */
export type Mode = "full" | "run-from" | "resume"

/** The run began executing. */
export interface RunStarted {
  readonly _tag: "RunStarted"
  readonly runId: string
  readonly mode: Mode
  readonly at: number
}

/** An attempt of a node began. */
export interface NodeStarted {
  readonly _tag: "NodeStarted"
  readonly runId: string
  readonly node: string
  readonly attempt: number
  readonly at: number
}

/** A node produced its output (`decision` for routers and conditions). */
export interface NodeCompleted {
  readonly _tag: "NodeCompleted"
  readonly runId: string
  readonly node: string
  readonly attempt: number
  readonly decision: string | undefined
  readonly at: number
}

/** A node's prior result was kept instead of executing it, for these reasons. */
export interface NodeReused {
  readonly _tag: "NodeReused"
  readonly runId: string
  readonly node: string
  readonly from: string | undefined
  readonly reasons: ReadonlyArray<string>
  readonly at: number
}

/** A node failed after its last attempt. */
export interface NodeFailed {
  readonly _tag: "NodeFailed"
  readonly runId: string
  readonly node: string
  readonly attempt: number
  readonly error: Snapshot.NodeError
  readonly at: number
}

/** A node was not executed because none of its incoming edges was taken. */
export interface NodeSkipped {
  readonly _tag: "NodeSkipped"
  readonly runId: string
  readonly node: string
  readonly at: number
}

/**
 * A node instance went dormant: `reason` is `"signal"` or `"timer"` for a wait, `"child run <id>"`
 * for a `child` block awaiting its run, the pause reason (`"paused"`, an approval's reason) for a
 * paused node.
 */
export interface NodeDormant {
  readonly _tag: "NodeDormant"
  readonly runId: string
  readonly node: string
  readonly reason: string
  readonly at: number
}

/** The run's status changed (as accepted by `RunStatus`). */
export interface StatusChanged {
  readonly _tag: "StatusChanged"
  readonly runId: string
  readonly from: RunStatus.Status
  readonly to: RunStatus.Status
  readonly at: number
}

/**
 * The run stopped executing, in this status; always the last event of an execution (a suspended or
 * paused run that is woken executes again, from a new `RunStarted` in mode `resume`).
 */
export interface RunFinished {
  readonly _tag: "RunFinished"
  readonly runId: string
  readonly status: RunStatus.Status
  readonly at: number
}

/**
 * Any run event.
 *
 * @since 0.1.0
 */
export type RunEvent =
  | RunStarted
  | NodeStarted
  | NodeCompleted
  | NodeReused
  | NodeFailed
  | NodeSkipped
  | NodeDormant
  | StatusChanged
  | RunFinished

/**
 * Whether an event ends its run's stream.
 *
 * @since 0.1.0
 */
export const isFinal = (event: RunEvent): event is RunFinished => event._tag === "RunFinished"
