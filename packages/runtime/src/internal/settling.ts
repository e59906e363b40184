/**
 * Preparing and settling a block instance: its inputs resolved and fingerprinted, its handler's
 * output told apart from its decision, the journal entries of its start and of how it settled,
 * and what a failure no `"error"` edge catches does to the run. Plain functions over plain values:
 * the interpreter keeps its own state and decides when each entry is written.
 */
import { Fingerprint, type Plan, Reference, type Snapshot, Workflow } from "@ripple/core"
import type * as Clock from "effect/Clock"
import type * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type * as BlockError from "../BlockError.ts"
import * as Handler from "../Handler.ts"
import type { RunEvent } from "../RunEvent.ts"
import type * as RunStatus from "../RunStatus.ts"
import type { JournalEntry, LeaseLost, StoreUnavailable } from "../RunStore.ts"
import { attempts, call, type NodeContext, outputFingerprint } from "./attempt.ts"
import { confirmed, type Control } from "./control.ts"
import { unresolved } from "./edges.ts"
import type { Outcome } from "./finishing.ts"

type Json = Workflow.Json
type Params = { readonly [key: string]: Json }

/**
 * Resolves the params of a block instance in `env`: its inputs, or the error it fails with (its
 * handler is not called) when a reference does not resolve or the inputs are larger than
 * `Workflow.maxValueBytes` (references can repeat a value that fits: every store would hold the
 * node's record but PostgreSQL, past 256 MiB, not). Their fingerprint is `inputsFingerprint` of
 * them (a scheduler may know it beforehand: params without references are their own inputs).
 */
export const resolveInputs = (
  block: Workflow.Block,
  params: Params,
  env: Reference.Environment
): Result.Result<Params, Snapshot.NodeError> => {
  const resolved = Reference.resolve(params, env) as Result.Result<Params, Reference.Unresolved>
  if (Result.isFailure(resolved)) return Result.fail(unresolved(resolved.failure))
  const large = Workflow.oversized(resolved.success)
  return large === undefined ? resolved : Result.fail({ message: `${block.type} block ${block.id}: inputs ${large.message}`, retryable: false })
}

/** The fingerprint of a block instance's resolved inputs. */
export const inputsFingerprint = (inputs: Params): string => Fingerprint.hash(inputs)

// A block is a deterministic function of its definition, its resolved inputs and the item its
// handler reads: these reasons make it something else (or say it must execute), so they forbid
// cutoff. Every other reason — downstream, container-reset, wiring-changed (incoming edges, a
// router's routes), inputs-changed, failed-last-time, incomplete, missing-prior-state — is the
// planner's per-block forecast; the instance's own prior record, compared when it is reached, is
// what decides.
const noCutoff: ReadonlySet<Plan.ReasonTag> = new Set(["target", "definition-changed", "new-block", "volatile", "pinned", "disabled"])

/**
 * Whether early cutoff may reuse a re-run block instance's prior record, given its block's plan
 * reasons, once the instance is reached with the definition, resolved inputs and visible context
 * (`ctx.loop` / `ctx.parallel`) of that record: none of its reasons makes it a different function.
 */
export const cutoffAllowed = (reasons: ReadonlyArray<Plan.Reason>): boolean => {
  for (const reason of reasons) if (noCutoff.has(reason._tag)) return false
  return true
}

/** What a settled node instance records besides its status. */
export interface Fields {
  readonly attempt: number
  readonly inputs: Json | undefined
  readonly fingerprints: Snapshot.Fingerprints
  readonly startedAt: number
}

/** What a node instance that failed before its handler was called records besides its error. */
export const unresolvedFields = (definition: string, at: number): Fields => ({
  attempt: 1,
  inputs: undefined,
  fingerprints: { definition },
  startedAt: at
})

/**
 * A block instance's handler attempts, as one execution runs them: each retry is announced as a
 * start of the instance, once the store confirmed that the run was not cancelled and its lease is
 * held (`confirmed`: no journal write acknowledges a retry).
 */
export class Attempts {
  constructor(
    private readonly handlers: Handler.Handlers["Service"],
    private readonly control: Control,
    private readonly clock: Clock.Clock,
    private readonly publish: (event: RunEvent) => void,
    private readonly runId: string,
    private readonly tracing: boolean
  ) {}

  private readonly beforeRetry = () => confirmed(this.control)
  private readonly retrying = (ctx: NodeContext) =>
    this.publish({ _tag: "NodeStarted", runId: this.runId, node: ctx.node, attempt: ctx.attempt + 1, at: this.clock.currentTimeMillisUnsafe() })

  /**
   * Every attempt of the instance (the first handler call happens now, see `attempts`), of a block
   * of type `type`; `singleAttempt`: the block is not disabled and retries nothing
   * (`ScopeGraph.singleAttempt`), so its one call is all there is and the block need not be read.
   */
  of(
    ctx: NodeContext,
    type: string = ctx.block.type,
    singleAttempt = false
  ): Effect.Effect<Handler.Output, BlockError.BlockError | StoreUnavailable | LeaseLost> {
    const handler = this.handlers.get(type)
    if (singleAttempt && handler !== undefined && !this.tracing) return call(handler, ctx)
    return attempts(handler, ctx, this.tracing, this.retrying, this.beforeRetry)
  }
}

/** The output a handler's result stores (a `Decision`'s output). */
export const outputOf = (value: Handler.Output): Json => Handler.isDecision(value) ? value.output : value

/** The branch a handler's result decided (a `Decision`'s handle), if any. */
export const decisionOf = (value: Handler.Output): string | undefined => Handler.isDecision(value) ? value.handle : undefined

/** The journal entry of a block instance whose first attempt starts. */
export const startedEntry = (node: string, inputs: Json, fingerprints: Snapshot.Fingerprints, at: number): JournalEntry => ({
  _tag: "Started",
  node,
  attempt: 1,
  inputs,
  fingerprints,
  at
})

/** The fingerprints of a completed instance: those it started with, and its output's. */
export const completedFingerprints = (fingerprints: Snapshot.Fingerprints, output: Json): Snapshot.Fingerprints =>
  fingerprints.inputs === undefined
    ? { definition: fingerprints.definition, output: outputFingerprint(output) }
    : { definition: fingerprints.definition, inputs: fingerprints.inputs, output: outputFingerprint(output) }

/** The journal entry of a completed instance, with its `completedFingerprints`. */
export const completedEntry = (
  node: string,
  attempt: number,
  inputs: Json,
  fingerprints: Snapshot.Fingerprints,
  output: Json,
  decision: string | undefined,
  startedAt: number,
  at: number
): Extract<JournalEntry, { _tag: "Completed" }> => ({
  _tag: "Completed",
  node,
  attempt,
  inputs,
  output,
  decision,
  fingerprints,
  startedAt,
  at
})

/** The journal entry of a failed instance. */
export const failedEntry = (
  node: string,
  attempt: number,
  inputs: Json | undefined,
  fingerprints: Snapshot.Fingerprints,
  error: Snapshot.NodeError,
  startedAt: number,
  at: number
): Extract<JournalEntry, { _tag: "Failed" }> => ({ _tag: "Failed", node, attempt, inputs, error, fingerprints, startedAt, at })

/** The journal entry of a skipped instance (no live incoming edge). */
export const skippedEntry = (node: string, definition: string, at: number): JournalEntry => ({
  _tag: "Skipped",
  node,
  fingerprints: { definition },
  at
})

/**
 * A failure no `"error"` edge catches fails the run: counted in `outcome`, and the `NODE_FAILED`
 * event its machine is sent (when is the scheduler's choice).
 */
export const runFailure = (
  outcome: Outcome,
  node: string,
  error: Snapshot.NodeError,
  at: number
): Extract<RunStatus.Event, { type: "NODE_FAILED" }> => {
  outcome.failures++
  outcome.messages.push(`${node} failed: ${error.message}`)
  return { type: "NODE_FAILED", node, at, error: error.message }
}
