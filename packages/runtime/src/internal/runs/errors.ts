/**
 * The errors `Runs` reports besides the store's (re-exported by `Runs`).
 *
 * @since 0.1.0
 */
import type { Plan, Workflow } from "@ripple/core"
import * as Data from "effect/Data"

/**
 * The workflow is not valid (`Workflow.decode` refuses it: a cycle, a dangling edge, a bad reference, ...).
 *
 * @since 0.1.0
 */
export class InvalidWorkflow extends Data.TaggedError("InvalidWorkflow")<{
  readonly workflowId: string
  readonly cause: Workflow.WorkflowError
}> {
  override get message() {
    return `workflow ${this.workflowId}: ${this.cause._tag} at ${JSON.stringify(this.cause.path)}`
  }
}

/**
 * The run input does not match the workflow's declared inputs.
 *
 * @since 0.1.0
 */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{
  readonly workflowId: string
  readonly cause: Workflow.WorkflowError
}> {
  override get message() {
    return `workflow ${this.workflowId}: invalid input: ${this.cause._tag} at ${JSON.stringify(this.cause.path)}`
  }
}

/**
 * A signal or approval request holds what no store can hold (a NUL or a lone surrogate in its
 * payload, name or reason, or a payload over `Workflow.maxValueBytes`): refused before anything is
 * written, whatever the store.
 *
 * @since 0.1.0
 */
export class InvalidPayload extends Data.TaggedError("InvalidPayload")<{
  readonly runId: string
  readonly cause: Workflow.UnstorableValue | Workflow.ValueTooLarge
}> {
  override get message() {
    return `run ${this.runId}: ${this.cause.message}`
  }
}

/**
 * The planner refused the request (unknown target, snapshot of another workflow, ...).
 *
 * @since 0.1.0
 */
export class PlanFailed extends Data.TaggedError("PlanFailed")<{
  readonly workflowId: string
  readonly cause: Plan.PlanError
}> {
  override get message() {
    return `workflow ${this.workflowId}: cannot plan: ${this.cause._tag}`
  }
}

/**
 * The run has no node instance of that id, and its workflow no node or block of it
 * (`RunView.names`).
 *
 * @since 0.1.0
 */
export class NodeNotFound extends Data.TaggedError("NodeNotFound")<{
  readonly runId: string
  readonly node: string
}> {
  override get message() {
    return `run ${this.runId}: no node ${this.node}`
  }
}
