import { Fingerprint, type Snapshot, Workflow } from "@ripple/core"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as BlockError from "../BlockError.ts"
import * as Handler from "../Handler.ts"
import { isStoreUnavailable, LeaseLost, type StoreUnavailable } from "../RunStore.ts"
import { asEffect } from "./handlerResult.ts"

type Json = Workflow.Json

/** What the handler calls of one scope instance share: one object per instance, not per node. */
export interface Shared {
  readonly input: { readonly [key: string]: Json }
  readonly runId: string
  readonly loop: Handler.Scope | undefined
  readonly parallel: Handler.Scope | undefined
}

const noParams: { readonly [key: string]: Json } = {}

/**
 * What a handler sees for one node instance; `attempt` counts the calls made so far. It is also
 * what the engine settles the instance with (`State.Fields`: attempt, inputs, fingerprints, start).
 * What every instance of its scope instance shares is read from `shared` (a wave of 10^3 handlers
 * makes 10^3 of these).
 */
export class NodeContext implements Handler.HandlerContext {
  attempt = 0
  controller: AbortController | undefined = undefined
  constructor(
    readonly index: number,
    readonly inputs: { readonly [key: string]: Json },
    readonly block: Workflow.Block,
    readonly node: string,
    readonly fingerprints: Snapshot.Fingerprints,
    readonly startedAt: number,
    private readonly shared: Shared
  ) {}
  get params(): { readonly [key: string]: Json } {
    return this.block.params ?? noParams
  }
  get input(): { readonly [key: string]: Json } {
    return this.shared.input
  }
  get runId(): string {
    return this.shared.runId
  }
  get loop(): Handler.Scope | undefined {
    return this.shared.loop
  }
  get parallel(): Handler.Scope | undefined {
    return this.shared.parallel
  }
  get signal(): AbortSignal {
    this.controller ??= new AbortController()
    return this.controller.signal
  }
}

const nullFingerprint = Fingerprint.hash(null)

/** The output fingerprint; many handlers (side effects, sinks) output null, whose fingerprint is a constant. */
export const outputFingerprint = (output: Json): string => output === null ? nullFingerprint : Fingerprint.hash(output)

// The policy's exponential backoff, capped by `maxDelayMs`, then lengthened to what the failed
// attempt's error asks for (`retryAfterMs`: a server's Retry-After outranks the policy's cap).
const retrySchedule = (policy: Workflow.RetryPolicy) => {
  const cap = policy.maxDelayMs === undefined ? undefined : Duration.millis(policy.maxDelayMs)
  return Schedule.modifyDelay(
    Schedule.exponential(Duration.millis(policy.initialDelayMs ?? 100), policy.backoffFactor ?? 2),
    ({ duration, input }) => {
      const capped = cap === undefined ? duration : Duration.min(duration, cap)
      const after = BlockError.isBlockError(input) ? input.retryAfterMs : undefined
      return Effect.succeed(after === undefined ? capped : Duration.max(capped, Duration.millis(after)))
    }
  )
}

// Only the block's own error is retried by its policy: a store failure of the lease check before a
// retry (retried by the store already) ends the attempts.
const isRetryable = (error: BlockError.BlockError | StoreUnavailable | LeaseLost) => BlockError.isBlockError(error) && error.isRetryable

const isPlainPrimitive = (output: unknown): boolean =>
  output === null || typeof output === "boolean" ||
  (typeof output === "number" && Number.isFinite(output) && !Object.is(output, -0)) ||
  (typeof output === "string" && Workflow.unstorable(output) === undefined)

/**
 * The exit of a node's attempts with its output (and decision) as every store holds it
 * (`Workflow.toStorable`: JSON data, copied, normalised as JSON normalises), else a permanent
 * failure naming the node and the JSON path (its cause the `Workflow.UnstorableValue`) or the
 * output's size (its cause the `Workflow.ValueTooLarge`, over `Workflow.maxValueBytes`): nothing
 * unstorable reaches any store, so the memory store refuses exactly what PostgreSQL cannot hold or
 * read back, and reads back what it reads back.
 * Checked on the exit rather than inside the handler's effect: one function call per node instead
 * of a continuation and a closure.
 */
export const storable = (
  ctx: NodeContext,
  exit: Exit.Exit<Handler.Output, BlockError.BlockError>
): Exit.Exit<Handler.Output, BlockError.BlockError> => {
  if (Exit.isFailure(exit)) return exit
  const output = exit.value
  const refused = (problem: Workflow.UnstorableValue | Workflow.ValueTooLarge) =>
    Exit.fail(BlockError.permanent(`${ctx.block.type} block ${ctx.block.id}: output ${problem.message}`, problem))
  // JSON primitives are stored as they are (the common case: no allocation); a string may still be too large.
  if (isPlainPrimitive(output)) {
    const large = typeof output === "string" ? Workflow.oversized(output) : undefined
    return large === undefined ? exit : refused(large)
  }
  const decision = Handler.isDecision(output) ? output : undefined
  const handle = decision === undefined
    ? undefined
    : typeof decision.handle === "string"
    ? Workflow.unstorable(decision.handle, ["decision"])
    : new Workflow.UnstorableValue({ reason: "a decision handle that is not a string", path: ["decision"] })
  const copied = handle === undefined ? Workflow.toStorable(decision === undefined ? output : decision.output) : Result.fail(handle)
  if (Result.isFailure(copied)) return refused(copied.failure)
  const large = Workflow.oversized(copied.success)
  if (large !== undefined) return refused(large)
  return Exit.succeed(decision === undefined ? copied.success : new Handler.Decision(decision.handle, copied.success))
}

/** The node error of a failed attempt (a defect becomes a non-retryable error). */
export const errorOf = (cause: Cause.Cause<BlockError.BlockError>): Snapshot.NodeError => {
  const found = Cause.findError(cause)
  if (Result.isSuccess(found)) return { message: found.success.message, retryable: found.success.isRetryable }
  const defect = Cause.squash(cause)
  return { message: defect instanceof Error ? defect.message : String(defect), retryable: false }
}

/**
 * The store failure the attempts ended with: the check before a retry (`beforeRetry`) found the
 * store unavailable past its retries, or the lease lost. The execution stops with it, and the block
 * (or compensation) did not fail. `undefined` for attempts that ended otherwise (a handler's defect
 * is its block's failure, whatever it dies with).
 */
export const storeFailure = (exit: Exit.Exit<unknown, unknown>): StoreUnavailable | LeaseLost | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const found = Cause.findError(exit.cause)
  return Result.isSuccess(found) && (isStoreUnavailable(found.success) || found.success instanceof LeaseLost) ? found.success : undefined
}

/** What a disabled block runs: its input's output (`Workflow.passThrough` puts it in `value`). */
const passOn: Handler.Handler = (ctx) => Effect.succeed(ctx.inputs["value"] ?? null)

/** One call of `handler` for `ctx` (counted in `ctx.attempt`); a throw is a defect of the attempt. */
export const call = (handler: Handler.Handler, ctx: NodeContext): Effect.Effect<Handler.Output, BlockError.BlockError> => {
  ctx.attempt++
  try {
    return asEffect(handler(ctx))
  } catch (defect) {
    return Effect.die(defect)
  }
}

/**
 * Whether a block's retry policy allows more than one attempt; `ScopeGraph.singleAttempt` (an
 * enabled block without one) calls the handler once, as `attempts` does.
 */
export const retries = (block: Workflow.Block): block is Workflow.Block & { readonly retry: Workflow.RetryPolicy } =>
  block.retry !== undefined && block.retry.maxAttempts > 1

/**
 * Every attempt of a node (the first handler call happens now, as the effect is built): the handler (missing: a permanent failure), retried by the block's
 * policy (each attempt after the first announced through `retrying`, after what `beforeRetry` returns
 * — the engine's check that the run was not cancelled and its lease is held, which fails with the
 * store's error when the store stays unavailable or the lease was lost: `storeFailure`), in a span
 * with `tracing`.
 * Its exit goes through `storable` before the engine records it.
 */
export const attempts = (
  handler: Handler.Handler | undefined,
  ctx: NodeContext,
  tracing: boolean,
  retrying: (ctx: NodeContext) => void,
  beforeRetry: () => Effect.Effect<void, StoreUnavailable | LeaseLost> | undefined
): Effect.Effect<Handler.Output, BlockError.BlockError | StoreUnavailable | LeaseLost> => {
  const block = ctx.block
  if (block.disabled === true) handler = passOn
  let effect: Effect.Effect<Handler.Output, BlockError.BlockError | StoreUnavailable | LeaseLost> = handler === undefined
    ? Effect.fail(BlockError.permanent(`no handler for block type ${JSON.stringify(block.type)}`))
    : !retries(block)
    ? call(handler, ctx)
    : Effect.retry(
      Effect.suspend(() => {
        if (ctx.attempt === 0) return call(handler, ctx)
        const retry = Effect.suspend(() => {
          retrying(ctx)
          return call(handler, ctx)
        })
        const check = beforeRetry()
        return check === undefined ? retry : Effect.andThen(check, retry)
      }),
      { schedule: retrySchedule(block.retry), times: block.retry.maxAttempts - 1, while: isRetryable }
    )
  if (tracing) {
    effect = Effect.withSpan(effect, `ripple.node ${ctx.node}`, {
      attributes: { "ripple.run_id": ctx.runId, "ripple.node_id": ctx.node, "ripple.block_type": block.type }
    })
  }
  return effect
}
