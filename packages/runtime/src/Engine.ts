/**
 * The engine: interprets a `Plan` (full, run-from or resume) for a run created in the `RunStore`,
 * running ready nodes as fibers under a concurrency bound, journaling every node and settling the
 * run's status through `RunStatus`.
 *
 * **Run semantics** (the same contract as `@ripple/core/testing`'s `Model`)
 *
 * - A re-run node with no incoming edge starts at once. Otherwise it waits until every incoming
 *   edge is decided, then runs if at least one is live and is `skipped` if none is; a skipped node
 *   decides its own outgoing edges as not live, so skipping spreads downstream, and a join waits
 *   only for branches that are live.
 * - An edge is live when its source completed and the source made no decision, the edge has no
 *   `handle`, or the handle equals the decision (`condition`: `"true"` / `"false"`; `router`: the
 *   chosen route). An edge with handle `"error"` is live only when its source failed.
 * - References resolve against the live run state and the reused records of the plan. A reference
 *   to a skipped block's output reads `null` (and a path into it does not resolve); a reference that
 *   does not resolve fails the referencing node without calling its handler.
 * - A failed node does not stop other branches: everything live still runs, and the run ends
 *   `failed` if a node failed that has no `"error"` edge to handle it.
 * - Each attempt of a block with `retry` is retried while its `BlockError` is retryable and
 *   attempts remain, after `initialDelayMs · backoffFactor^(n-1)` (capped at `maxDelayMs`), slept
 *   on the effect `Clock` (so `TestClock` drives it).
 * - Interrupting the execution (cancellation) interrupts every running handler, waits for them,
 *   starts nothing more, records diagnostics and moves the run to `cancelled`.
 *
 * - Loops run `count` iterations, one per `items` element (`forEach`), or (`while`) until their
 *   `condition` — resolved after each iteration against that iteration — stops holding (see
 *   `Options.loopCondition`), at most `maxIterations`; iterations run one after the other. Parallels
 *   run one branch per item or `count` branches, at most `concurrency` at once. A container's
 *   output is the array of its iterations/branches, each the record `{ <exit id>: output }` of the
 *   body's exit blocks that completed, keys in the UTF-16 order of the ids whatever order the blocks
 *   finished in (JavaScript lists integer-like keys first, ascending); `loop.index` / `loop.item` / `parallel.*` read the innermost
 *   enclosing container. A loop the plan resets restarts from iteration 0; a parallel reset branch
 *   by branch re-runs only those branches and reuses the others.
 * - `approval` blocks pause their branch (`paused`, reason: their `reason` param) until
 *   `Runs.approve` / `Runs.reject`; `wait` blocks (`{ signal }`) suspend it until `Runs.signal`;
 *   `sleep` blocks (`{ ms }` or `{ until }`) suspend it until the wake time on the effect `Clock`.
 *   A dormant node blocks what depends on it; everything else runs on, and the run settles by the
 *   `RunStatus` priority. A pause request parks every node reaching its start: asked for in this
 *   process through `Execution.control`, or from any process through `RunStore.requestPause`,
 *   which every journal write acknowledges (no extra round trip). What runs when it comes finishes.
 * - Before each block starts, and again once the write that journals its start returns, the engine
 *   checks `Execution.control`: a cancel request (`RunStore.requestCancel`, acknowledged by journal
 *   writes and lease renewals) ends the execution like an interruption (`cancelled`), and a lease
 *   past its last known expiry is renewed first (a lost one ends it with `LeaseLost`, writing nothing).
 * - `child` blocks (`{ workflow, input }`: `workflow` is the version id of a saved workflow or an
 *   inline workflow — inline ones may not hold `$ref`s, which the parent would resolve; save such a
 *   workflow and pass its version) start a child run through `Execution.spawn` (its own durable
 *   run, linked by `parentRun` / `parentNode`) and suspend their branch on the internal signal
 *   `childSignal(childRun)`, which `Runs` delivers when the child ends: a completed child's observed
 *   outputs (`{ <block id>: output }`) become the block's output; a failed or cancelled child fails
 *   the block. A resumed parent awaits the child it started, never a second one.
 * - Saga compensation: when a run settles `failed`, the `Handler.Compensation`s of the blocks this
 *   run completed run in reverse completion order, journaled in `RunStore.compensations` (a
 *   resume of a run that crashed while compensating only runs what is still pending); the report
 *   goes to the diagnostics messages and `Runs.status`. Reused records are never compensated.
 * - Resume (mode `resume`, `Plan.resume` over the run's own snapshot) never re-executes a node
 *   the run completed with the same inputs, even inside a loop the plan restarts.
 * - Early cutoff (mode `run-from`, `Options.cutoff`, default on): a re-run node that is not the
 *   target, not `volatile` and re-runs only because something upstream did, whose resolved inputs
 *   hash as in the source snapshot and that was computed in the same context — the same enclosing
 *   loops and parallels (ids and kinds) giving it the same item, or none in both (a handler reads
 *   `ctx.loop` / `ctx.parallel`) — is reused from it (reason `cutoff`) instead of executed. Resume
 *   applies the same context check. An `approval` or `wait` is never cut off once a node upstream
 *   of it settled otherwise than in the source (status, decision or output): it asks again, since
 *   what was approved or answered is not what reaches it now.
 *
 * **Performance**
 *
 * A full run of a workflow without containers, waits, sleeps or approvals takes the fast path: a
 * scheduler in plain JavaScript over integer node indices; only handlers run as fibers (forked
 * with `Effect.runForkWith`, completion observed by callback, no Deferred per node). The journal is
 * written once per wave: the completions of the last wave, the skips they caused and the starts of
 * the next wave go to the store in one `journal` call. Spans are created only with `tracing: true`.
 * Every other execution (run-from, resume, containers, dormancy) goes through the scope
 * interpreter (`internal/interpreter.ts`), whose journal writes coalesce the same way
 * (`internal/journalWriter.ts`): a completion goes out with the start of the node that reads it,
 * and writes made while a call is in flight share the next one. Either way a node starts only once
 * what it reads is durable, and `NodeCompleted` is published once the completion is.
 *
 * @since 0.1.0
 */
import { Fingerprint, type Plan, Reference, type Snapshot, Workflow } from "@ripple/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import type * as BlockError from "./BlockError.ts"
import * as Handler from "./Handler.ts"
import { attempts, errorOf, NodeContext, outputFingerprint, storable } from "./internal/attempt.ts"
import * as Compiled from "./internal/compiled.ts"
import * as Interpreter from "./internal/interpreter.ts"
import * as Pacing from "./internal/pacing.ts"
import * as Saga from "./internal/saga.ts"
import type { Mode, RunEvent } from "./RunEvent.ts"
import * as RunStatus from "./RunStatus.ts"
import { type CompensationEntry, type JournalEntry, type Run, RunStore, type RunStoreError } from "./RunStore.ts"

type Json = Workflow.Json

/**
 * A block's type has no registered handler.
 *
 * @since 0.1.0
 */
export class UnknownBlockType extends Data.TaggedError("UnknownBlockType")<{
  readonly block: string
  readonly type: string
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `block ${this.block}: no handler for type ${JSON.stringify(this.type)}`
  }
}

/**
 * Why a workflow cannot be executed by this engine.
 *
 * @since 0.1.0
 */
export type EngineError = UnknownBlockType

/**
 * Engine options.
 *
 * @since 0.1.0
 */
export interface Options {
  /** How many handlers may run at once (default 16). */
  readonly concurrency?: number | undefined
  /** Run each node in an `Effect.withSpan` with run and node attributes (default false). */
  readonly tracing?: boolean | undefined
  /** Early cutoff in run-from executions (default true). */
  readonly cutoff?: boolean | undefined
  /** How a `while` loop's resolved condition is read (default: `defaultLoopCondition`). */
  readonly loopCondition?: LoopCondition | undefined
  /** Caps on loop iterations, parallel branches and expanded nodes (default `Workflow.defaultLimits`, per field). */
  readonly limits?: Partial<Workflow.Limits> | undefined
}

/**
 * Decides whether a `while` loop runs another iteration from its resolved `condition`.
 *
 * @since 0.1.0
 */
export type LoopCondition = Interpreter.LoopCondition

/**
 * The default `while` semantics: a `{ left, op, right }` condition (the operators of `condition`
 * blocks) holds when the comparison is true; any other resolved value holds when it is `true`.
 *
 * @since 0.1.0
 */
export const defaultLoopCondition: LoopCondition = Interpreter.defaultLoopCondition

/**
 * A handle on an execution that asks it to pause: once `pauseRequested` is set (by the caller, or
 * by a journal acknowledgement of a stored request), every node reaching its start is parked
 * (`paused`) and the run settles `paused`. Once `cancelRequested` is set (a journal
 * acknowledgement or a lease renewal of a stored request), no block starts any more and the run
 * ends `cancelled`. With a `lease` (`Lease.hold`), a block starts only while the lease is held:
 * checked against its last known expiry before each start, and renewed with the store past it.
 *
 * @since 0.1.0
 */
export type Control = Interpreter.Control

// An interruption cancels the run unless the caller said it only means a shutdown (see `Control`).
const cancelsOnInterrupt = (execution: Execution): boolean => execution.control?.cancelOnInterrupt !== false

/**
 * The default concurrency bound.
 *
 * @since 0.1.0
 */
export const defaultConcurrency = 16

/**
 * Block types the engine itself implements (they need no handler): `approval`, `wait`, `sleep`,
 * `child`.
 *
 * @since 0.1.0
 */
export const intrinsicTypes: ReadonlySet<string> = new Set(["approval", "wait", "sleep", "child"])

// Whether a workflow can take the fast path: no container and no block that can go dormant.
const simple = new WeakMap<Workflow.Workflow, boolean>()
const isSimple = (workflow: Workflow.Workflow): boolean => {
  let known = simple.get(workflow)
  if (known === undefined) {
    known = (workflow.loops ?? []).length === 0 && (workflow.parallels ?? []).length === 0 &&
      !workflow.blocks.some((b) => intrinsicTypes.has(b.type))
    simple.set(workflow, known)
  }
  return known
}

/**
 * Checks that the engine can execute a workflow: a handler for every block type that is not
 * intrinsic (the first problem found).
 *
 * @since 0.1.0
 */
export const check = (workflow: Workflow.Workflow, handlers: Handler.Handlers["Service"]): EngineError | undefined => {
  for (let b = 0; b < workflow.blocks.length; b++) {
    const block = workflow.blocks[b]!
    if (!intrinsicTypes.has(block.type) && handlers.get(block.type) === undefined) return new UnknownBlockType({ block: block.id, type: block.type, path: ["blocks", b, "type"] })
  }
  return undefined
}

/**
 * What to execute: a run already created in the store (status `pending`) and its plan.
 *
 * @since 0.1.0
 */
export interface Execution {
  readonly runId: string
  readonly mode: Mode
  readonly plan: Plan.Plan
  /** The run input, declared defaults applied. */
  readonly input: { readonly [key: string]: Json }
  /** The run the plan's reused records come from (default: the run id of the plan's state). */
  readonly sourceRun: string | undefined
  /** Where events go; must not throw or block (the `Runs` facade publishes to a sliding PubSub). */
  readonly publish: (event: RunEvent) => void
  /**
   * Run-from: the snapshot the plan was made from (early cutoff reads it). Resume: the run's own
   * snapshot before resuming (its completed nodes are kept).
   */
  readonly source?: Snapshot.Snapshot | undefined
  /** Lets the caller pause the execution. */
  readonly control?: Control | undefined
  /** Starts the child runs of `child` blocks (the `Runs` facade provides it). */
  readonly spawn?: Spawn | undefined
}

/**
 * Starts the child run of a `child` node instance: its run id, or why it could not start.
 *
 * @since 0.1.0
 */
export type Spawn = Interpreter.Spawn

/**
 * The internal signal a finished child run is delivered to its parent as (payload: `{ status,
 * output, error }`).
 *
 * @since 0.1.0
 */
export const childSignal: (childRun: string) => string = Interpreter.childSignal

const unchanged: ReadonlyArray<string> = ["unchanged"]

// Node phases (0: not part of the plan's re-run set).
const WAITING = 1
const READY = 2
const RUNNING = 3
const DONE = 4

// Outcomes.
const NONE = 0
const COMPLETED = 1
const FAILED = 2
const SKIPPED = 3

/**
 * Executes a run: `pending → running → completed | failed | paused | suspended`, or `cancelled`
 * when interrupted; a resume continues a run already `running` (the caller moved it there). Returns
 * the status the execution left the run in.
 *
 * **Gotchas**
 *
 * Call `check` first: a block without a handler fails its node.
 *
 * @since 0.1.0
 */
export const execute = (
  execution: Execution,
  options: Options = {}
): Effect.Effect<RunStatus.Status, RunStoreError, RunStore | Handler.Handlers> =>
  Effect.gen(function*() {
    const handlers = yield* Handler.Handlers
    const path = execution.mode === "full" && execution.plan.mode === "full" && isSimple(execution.plan.workflow)
      ? executeFast
      : executeGeneral
    if (!Saga.compensates(execution.plan.workflow, handlers)) return yield* path(execution, options, undefined)
    if (execution.mode === "resume") {
      const store = yield* RunStore
      const log = yield* store.compensations(execution.runId)
      // A run that crashed while compensating goes on compensating; nothing else of it runs again.
      if (log.length > 0 && compensating(log, yield* store.getRun(execution.runId))) {
        return yield* resumeCompensation(execution, options)
      }
    }
    const tracker = Saga.track(execution.publish)
    return yield* path({ ...execution, publish: tracker.publish }, options, tracker.order)
  })

/**
 * Whether a run stopped while compensating (or after its last compensation, before it was marked
 * failed): a compensation is pending, or some were made and its machine still holds the failures
 * that started them. Such a run only finishes compensating when resumed. A failed run resumed on
 * purpose has had its failures cleared (`RESUME`): it retries its failed nodes instead.
 *
 * @since 0.1.0
 */
export const compensating = (log: ReadonlyArray<CompensationEntry>, run: Run): boolean =>
  log.some((c) => c.status === "pending") || (log.length > 0 && run.machine.context.failures.length > 0)

// Runs the saga compensations of a run that failed (`order`: this execution's completions).
const compensateFailed = (
  execution: Execution,
  options: Options,
  order: ReadonlyArray<string>,
  messages: Array<string>
) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const handlers = yield* Handler.Handlers
    const clock = yield* Clock.Clock
    yield* Saga.compensate({
      runId: execution.runId,
      mode: execution.mode,
      workflow: execution.plan.workflow,
      input: execution.input,
      handlers,
      store,
      clock,
      tracing: options.tracing === true,
      order,
      messages,
      control: execution.control ?? { pauseRequested: false }
    })
  })

// A run with pending compensations failed, whatever its machine says now: whoever resumed it may have
// reset the machine's failures (a worker taking over a crashed run does), so it ends failed either way.
const resumeCompensation = (execution: Execution, options: Options) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const at = yield* Clock.currentTimeMillis
    const run = yield* store.getRun(execution.runId)
    execution.publish({ _tag: "RunStarted", runId: execution.runId, mode: execution.mode, at })
    // The crashed execution may not have written its diagnostics: its failures are in the journal.
    const messages = run.diagnostics.messages.length > 0
      ? [...run.diagnostics.messages]
      : Object.entries(execution.source?.nodes ?? {}).flatMap(([node, record]) =>
        record.status === "failed" && record.error !== undefined ? [`${node} failed: ${record.error.message}`] : []
      )
    const outcome: Interpreter.Outcome = { failures: 0, messages, lastStarted: undefined, lastCompleted: undefined }
    return yield* Effect.uninterruptible(Effect.flatMap(
      settling(execution.runId),
      (settled) =>
        finishRun(
          execution,
          options,
          outcome,
          "failed",
          settled === "failed" ? { type: "ALL_BRANCHES_FINISHED" } : { type: "FAIL", error: messages[0] ?? "failed, then compensated after a crash" },
          []
        )
    ))
  })

type Finalization = NonNullable<Snapshot.Diagnostics["finalization"]>

// Records diagnostics, then offers the final event; shared by both paths.
const finishRun = (
  execution: Execution,
  options: Options,
  outcome: Interpreter.Outcome,
  finalization: Finalization,
  event: RunStatus.Event,
  order: ReadonlyArray<string> | undefined
) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    if (finalization === "failed" && order !== undefined) yield* compensateFailed(execution, options, order, outcome.messages)
    const at = yield* Clock.currentTimeMillis
    const { publish, runId } = execution
    const changed = yield* store.finish(runId, event, {
      ...(outcome.lastStarted === undefined ? {} : { lastStarted: outcome.lastStarted }),
      ...(outcome.lastCompleted === undefined ? {} : { lastCompleted: outcome.lastCompleted }),
      finalization,
      messages: outcome.messages
    }, at)
    if (changed.from !== changed.to) publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
    publish({ _tag: "RunFinished", runId, status: changed.to, at })
    return changed.to
  })

// What ALL_BRANCHES_FINISHED will settle the run in, read from its stored machine.
const settling = (runId: string) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const run = yield* store.getRun(runId)
    const restored = RunStatus.restore(run.machine)
    if (Result.isFailure(restored)) return yield* Effect.die(restored.failure)
    const next = RunStatus.next(restored.success, { type: "ALL_BRANCHES_FINISHED" })
    return next._tag === "Accepted" ? next.status as Finalization : "failed"
  })

const executeGeneral = (
  execution: Execution,
  options: Options,
  order: ReadonlyArray<string> | undefined
): Effect.Effect<RunStatus.Status, RunStoreError, RunStore | Handler.Handlers> =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const handlers = yield* Handler.Handlers
    const clock = yield* Clock.Clock
    const { mode, publish, runId } = execution
    const outcome: Interpreter.Outcome = { failures: 0, messages: [], lastStarted: undefined, lastCompleted: undefined }
    const cancel = Effect.gen(function*() {
      outcome.messages.push("cancelled")
      return yield* finishRun(execution, options, outcome, "cancelled", { type: "CANCEL" }, undefined)
    })
    const body = Effect.gen(function*() {
      const at = clock.currentTimeMillisUnsafe()
      const run = yield* store.getRun(runId)
      if (run.status === "pending") {
        const started = yield* store.transition(runId, { type: "START" }, at)
        publish({ _tag: "RunStarted", runId, mode, at })
        publish({ _tag: "StatusChanged", runId, from: started.from, to: started.to, at })
      } else {
        publish({ _tag: "RunStarted", runId, mode, at })
      }
      const dormant = run.status === "pending" ? new Set<string>() : new Set(Object.keys(run.machine.context.dormant))
      yield* Interpreter.run({
        runId,
        mode,
        plan: execution.plan,
        input: execution.input,
        sourceRun: execution.sourceRun,
        source: execution.source,
        publish,
        control: execution.control ?? { pauseRequested: false },
        dormant,
        store,
        handlers,
        clock,
        concurrency: Math.max(1, options.concurrency ?? defaultConcurrency),
        tracing: options.tracing === true,
        cutoff: options.cutoff !== false,
        loopCondition: options.loopCondition ?? Interpreter.defaultLoopCondition,
        limits: { ...Workflow.defaultLimits, ...options.limits },
        outcome,
        spawn: execution.spawn
      })
      return yield* Effect.uninterruptible(Effect.flatMap(
        settling(runId),
        (finalization) => finishRun(execution, options, outcome, finalization, { type: "ALL_BRANCHES_FINISHED" }, order)
      ))
    })
    return yield* body.pipe(Effect.onInterrupt(() => cancelsOnInterrupt(execution) ? Effect.ignore(cancel) : Effect.void))
  })

const executeFast = (
  execution: Execution,
  options: Options,
  order: ReadonlyArray<string> | undefined
): Effect.Effect<RunStatus.Status, RunStoreError, RunStore | Handler.Handlers> =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const handlers = yield* Handler.Handlers
    const clock = yield* Clock.Clock
    const services = yield* Effect.context<never>()
    const fork = Effect.runForkWith(services)
    const { input, mode, plan, publish, runId } = execution
    const workflow = plan.workflow
    const control: Control = execution.control ?? { pauseRequested: false }
    const concurrency = Math.max(1, options.concurrency ?? defaultConcurrency)
    const tracing = options.tracing === true
    const c = Compiled.compile(workflow)
    const { blocks, dag, definitions, handles, hasErrorEdge, ids, params, staticInputs } = c
    const n = dag.size
    const { outOffsets, outTargets, inOffsets } = dag
    const variables = workflow.variables ?? {}

    const phase = new Uint8Array(n)
    const outcome = new Uint8Array(n)
    const outputs: Array<Json | undefined> = new Array(n)
    const decisions: Array<string | undefined> = new Array(n)
    const pendingIn = new Int32Array(n)
    const liveIn = new Int32Array(n)
    const ready = new Int32Array(n)
    let readyHead = 0
    let readyTail = 0
    let buffer: Array<JournalEntry> = []
    let newFailures: Array<{ readonly node: string; readonly at: number; readonly error: string }> = []
    const messages: Array<string> = []
    let lastStarted: { node: string; at: number } | undefined
    let lastCompleted: { node: string; at: number } | undefined
    let unhandledFailures = 0

    const env: Reference.Environment = {
      blockOutput: (id) => {
        const i = dag.index!.get(id)
        if (i === undefined) return undefined
        const o = outcome[i]
        return o === COMPLETED ? outputs[i] : o === SKIPPED ? null : undefined
      },
      input: (key) => input[key],
      variable: (name) => variables[name],
      index: () => undefined,
      item: () => undefined
    }

    const isLive = (source: number, handle: string | undefined): boolean => {
      if (handle === "error") return outcome[source] === FAILED
      if (outcome[source] !== COMPLETED) return false
      const decision = decisions[source]
      return decision === undefined || handle === undefined || handle === decision
    }

    const skip = (i: number, at: number) => {
      phase[i] = DONE
      outcome[i] = SKIPPED
      buffer.push({ _tag: "Skipped", node: ids[i]!, fingerprints: { definition: definitions[i]! }, at })
      publish({ _tag: "NodeSkipped", runId, node: ids[i]!, at })
    }

    // Decides the outgoing edges of a settled node; nodes left with no pending edge become ready or
    // are skipped, and skips spread with an explicit stack (deep chains must not overflow).
    const stack = new Int32Array(n)
    const settle = (root: number, at: number) => {
      let top = 0
      stack[top++] = root
      while (top > 0) {
        const x = stack[--top]!
        for (let k = outOffsets[x]!; k < outOffsets[x + 1]!; k++) {
          const j = outTargets[k]!
          if (phase[j] !== WAITING) continue
          if (isLive(x, handles[k])) liveIn[j]!++
          if (--pendingIn[j]! === 0) {
            if (liveIn[j]! > 0) {
              phase[j] = READY
              ready[readyTail++] = j
            } else {
              skip(j, at)
              stack[top++] = j
            }
          }
        }
      }
    }

    type Completion = { readonly ctx: NodeContext; readonly exit: Exit.Exit<Handler.Output, BlockError.BlockError> }
    let completions: Array<Completion> = []
    let inflight = 0
    const running: Array<Fiber.Fiber<Handler.Output, BlockError.BlockError> | undefined> = new Array(n)
    let wake: (() => void) | undefined

    const fail = (ctx: NodeContext, error: Snapshot.NodeError, at: number) => {
      const i = ctx.index
      phase[i] = DONE
      outcome[i] = FAILED
      buffer.push({
        _tag: "Failed",
        node: ctx.node,
        attempt: ctx.attempt,
        inputs: ctx.inputs,
        error,
        fingerprints: { definition: definitions[i]!, inputs: ctx.inputsFingerprint },
        startedAt: ctx.startedAt,
        at
      })
      publish({ _tag: "NodeFailed", runId, node: ctx.node, attempt: ctx.attempt, error, at })
      if (hasErrorEdge[i] === 0) {
        unhandledFailures++
        messages.push(`${ctx.node} failed: ${error.message}`)
        newFailures.push({ node: ctx.node, at, error: error.message })
      }
      settle(i, at)
    }

    const complete = (completion: Completion, at: number) => {
      const ctx = completion.ctx
      const i = ctx.index
      const exit = storable(ctx, completion.exit)
      if (Exit.isFailure(exit)) return fail(ctx, errorOf(exit.cause), at)
      const value = exit.value
      let output: Json
      let decision: string | undefined
      if (value instanceof Handler.Decision) {
        output = value.output
        decision = value.handle
      } else {
        output = value
      }
      phase[i] = DONE
      outcome[i] = COMPLETED
      outputs[i] = output
      decisions[i] = decision
      buffer.push({
        _tag: "Completed",
        node: ctx.node,
        attempt: ctx.attempt,
        inputs: ctx.inputs,
        output,
        decision,
        fingerprints: { definition: definitions[i]!, inputs: ctx.inputsFingerprint, output: outputFingerprint(output) },
        startedAt: ctx.startedAt,
        at
      })
      publish({ _tag: "NodeCompleted", runId, node: ctx.node, attempt: ctx.attempt, decision, at })
      lastCompleted = { node: ctx.node, at }
      settle(i, at)
    }

    const observe = (ctx: NodeContext) => (exit: Exit.Exit<Handler.Output, BlockError.BlockError>) => {
      inflight--
      running[ctx.index] = undefined
      if (ctx.controller !== undefined && Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause)) ctx.controller.abort()
      completions.push({ ctx, exit })
      if (wake !== undefined) {
        const resume = wake
        wake = undefined
        resume()
      }
    }

    // A retry is a start of the block too: not after a cancel, nor without the lease.
    const beforeRetry = () => Interpreter.retryable(control, clock.currentTimeMillisUnsafe())
    const retrying = (ctx: NodeContext) =>
      publish({ _tag: "NodeStarted", runId, node: ctx.node, attempt: ctx.attempt + 1, at: clock.currentTimeMillisUnsafe() })

    const launch = (ctx: NodeContext) => {
      publish({ _tag: "NodeStarted", runId, node: ctx.node, attempt: 1, at: ctx.startedAt })
      lastStarted = { node: ctx.node, at: ctx.startedAt }
      const effect = attempts(handlers.get(ctx.block.type), ctx, tracing, retrying, beforeRetry)
      inflight++
      const fiber = fork(effect)
      running[ctx.index] = fiber
      fiber.addObserver(observe(ctx))
    }

    // Takes up to the free concurrency from the ready queue: resolves inputs, journals starts.
    const wave: Array<NodeContext> = []
    const parked: Array<number> = []
    const prepare = () => {
      const at = clock.currentTimeMillisUnsafe()
      // A pause request parks what would start; what runs finishes.
      if (control.pauseRequested) {
        while (readyHead < readyTail) parked.push(ready[readyHead++]!)
        return
      }
      while (readyHead < readyTail && inflight + wave.length < concurrency) {
        const i = ready[readyHead++]!
        const node = ids[i]!
        const p = params[i]!
        let inputs = p
        let fingerprint = staticInputs[i]
        if (fingerprint === undefined) {
          const resolved = Reference.resolve(p, env)
          if (Result.isFailure(resolved)) {
            const ctx = new NodeContext(i, p, p, blocks[i]!, input, runId, node, "", at)
            ctx.attempt = 1
            publish({ _tag: "NodeStarted", runId, node, attempt: 1, at })
            fail(ctx, { message: `unresolved ${resolved.failure.reference} (${resolved.failure.reason})`, retryable: false }, at)
            continue
          }
          inputs = resolved.success as { readonly [key: string]: Json }
          fingerprint = Fingerprint.hash(inputs)
        }
        phase[i] = RUNNING
        const ctx = new NodeContext(i, inputs, p, blocks[i]!, input, runId, node, fingerprint, at)
        buffer.push({
          _tag: "Started",
          node,
          attempt: 1,
          inputs,
          fingerprints: { definition: definitions[i]!, inputs: fingerprint },
          at
        })
        wave.push(ctx)
      }
    }

    const journal = Interpreter.acknowledged(store, runId, control)
    const pacer = Pacing.make()

    const flush = Effect.suspend(() => {
      const entries = buffer
      buffer = []
      const failures = newFailures
      newFailures = []
      const write = entries.length === 0 ? Effect.void : journal(entries)
      return failures.length === 0 ? write : Effect.andThen(
        write,
        Effect.forEach(failures, (f) => store.transition(runId, { type: "NODE_FAILED", ...f }, f.at), { discard: true })
      )
    })

    const statusChange = (from: RunStatus.Status, to: RunStatus.Status, at: number) => {
      if (from !== to) publish({ _tag: "StatusChanged", runId, from, to, at })
    }

    const finish = (finalization: NonNullable<Snapshot.Diagnostics["finalization"]>, event: RunStatus.Event) =>
      Effect.gen(function*() {
        if (finalization === "failed" && order !== undefined) yield* compensateFailed(execution, options, order, messages)
        const at = clock.currentTimeMillisUnsafe()
        const changed = yield* store.finish(runId, event, {
          ...(lastStarted === undefined ? {} : { lastStarted }),
          ...(lastCompleted === undefined ? {} : { lastCompleted }),
          finalization,
          messages
        }, at)
        statusChange(changed.from, changed.to, at)
        publish({ _tag: "RunFinished", runId, status: changed.to, at })
        return changed.to
      })

    const stopRunning = Effect.suspend(() =>
      Fiber.interruptAll(running.filter((f): f is Fiber.Fiber<Handler.Output, BlockError.BlockError> => f !== undefined))
    )

    const cancel = Effect.gen(function*() {
      yield* stopRunning
      messages.push("cancelled")
      return yield* finish("cancelled", { type: "CANCEL" })
    })

    const body = Effect.gen(function*() {
      const startedAt = clock.currentTimeMillisUnsafe()
      const started = yield* store.transition(runId, { type: "START" }, startedAt)
      publish({ _tag: "RunStarted", runId, mode, at: startedAt })
      statusChange(started.from, started.to, startedAt)

      // Hydrate: reused records decide their edges; re-run nodes wait for theirs.
      const rerun = new Uint8Array(n)
      for (const id of plan.rerun) {
        const i = dag.index!.get(id)
        if (i !== undefined) rerun[i] = 1
      }
      for (let i = 0; i < n; i++) {
        if (rerun[i] === 1) {
          phase[i] = WAITING
          pendingIn[i] = inOffsets[i + 1]! - inOffsets[i]!
        }
      }
      const reusedEntries: Array<JournalEntry> = []
      const source = execution.sourceRun ?? plan.state.runId
      for (const id of plan.reused) {
        const i = dag.index!.get(id)
        const record = plan.state.nodes[id]
        if (i === undefined || record === undefined) continue
        outcome[i] = record.status === "completed" ? COMPLETED : record.status === "skipped" ? SKIPPED : record.status === "failed" ? FAILED : NONE
        outputs[i] = record.output
        decisions[i] = record.decision
        // The planner explains re-runs; a node it reuses without comment is reused because nothing it depends on changed.
        const explained = (plan.reasons[id] ?? []).map((r) => r._tag)
        const reasons = explained.length === 0 ? unchanged : explained
        reusedEntries.push({ _tag: "Reused", node: id, from: source, record, reasons })
        publish({ _tag: "NodeReused", runId, node: id, from: record.reusedFrom ?? source, reasons, at: startedAt })
      }
      if (reusedEntries.length > 0) yield* journal(reusedEntries)
      for (let i = 0; i < n; i++) {
        if (rerun[i] === 1) continue
        phase[i] = DONE
        // Only the edges into re-run nodes matter; `settle` ignores the others.
        for (let k = outOffsets[i]!; k < outOffsets[i + 1]!; k++) {
          const j = outTargets[k]!
          if (rerun[j] === 0) continue
          if (isLive(i, handles[k])) liveIn[j]!++
          pendingIn[j]!--
        }
      }
      const order = plan.rerun
      for (const id of order) {
        const i = dag.index!.get(id)
        if (i === undefined || phase[i] !== WAITING || pendingIn[i] !== 0) continue
        if (liveIn[i]! > 0 || inOffsets[i + 1] === inOffsets[i]) {
          phase[i] = READY
          ready[readyTail++] = i
        } else {
          skip(i, startedAt)
          settle(i, startedAt)
        }
      }

      for (;;) {
        const starting = Interpreter.beforeStart(control, clock.currentTimeMillisUnsafe())
        if (starting !== undefined) yield* starting
        prepare()
        yield* flush
        if (wave.length > 0) {
          const launching = wave.splice(0, wave.length)
          // The write that journaled the starts may have brought a cancel, or outlasted the lease.
          const started = Interpreter.beforeStart(control, clock.currentTimeMillisUnsafe())
          if (started !== undefined) yield* started
          // Journaled as started when the write's acknowledgement brought a pause: parked instead (their `Paused` entries replace the starts).
          if (control.pauseRequested) for (const ctx of launching) parked.push(ctx.index)
          else for (const ctx of launching) launch(ctx)
        }
        if (completions.length === 0) {
          if (inflight === 0) break
          yield* Effect.callback<void>((resume) => {
            wake = () => resume(Effect.void)
          })
        }
        const done = completions
        completions = []
        const at = clock.currentTimeMillisUnsafe()
        for (const completion of done) complete(completion, at)
        const turn = pacer.settled(done.length)
        if (turn !== undefined) yield* turn
      }
      yield* flush
      // Once finalizing, a cancel must not overwrite the diagnostics of a run that just ended.
      if (parked.length > 0) {
        const at = clock.currentTimeMillisUnsafe()
        yield* journal(parked.map((i): JournalEntry => ({
          _tag: "Paused",
          node: ids[i]!,
          inputs: undefined,
          fingerprints: { definition: definitions[i]! },
          reason: "paused",
          at
        })))
        for (const i of parked) publish({ _tag: "NodeDormant", runId, node: ids[i]!, reason: "paused", at })
        yield* store.transition(runId, { type: "BRANCH_STARTED" }, at)
        yield* store.transition(runId, {
          type: "BRANCH_DORMANT",
          branch: ids[parked[0]!]!,
          reason: { _tag: "Pause", node: ids[parked[0]!]!, reason: "paused" }
        }, at)
      }
      const finalization = unhandledFailures > 0 ? "failed" : parked.length > 0 ? "paused" : "completed"
      return yield* Effect.uninterruptible(finish(finalization, { type: "ALL_BRANCHES_FINISHED" }))
    })

    // Handler fibers are not children of this one: whatever ends the execution (a store failure
    // included), none may outlive it.
    return yield* body.pipe(
      Effect.onInterrupt(() => cancelsOnInterrupt(execution) ? Effect.ignore(cancel) : Effect.void),
      Effect.ensuring(stopRunning)
    )
  })
