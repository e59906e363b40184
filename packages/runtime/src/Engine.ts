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
 * Loops and parallels are not executed yet: a workflow with a container is `UnsupportedWorkflow`.
 *
 * **Performance**
 *
 * The scheduler is plain JavaScript over integer node indices; only handlers run as fibers (forked
 * with `Effect.runForkWith`, completion observed by callback, no Deferred per node). The journal is
 * written once per wave: the completions of the last wave, the skips they caused and the starts of
 * the next wave go to the store in one `journal` call. Spans are created only with `tracing: true`.
 *
 * @since 0.1.0
 */
import { Fingerprint, type Plan, Reference, type Snapshot, type Workflow } from "@ripple/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as BlockError from "./BlockError.ts"
import * as Handler from "./Handler.ts"
import * as Compiled from "./internal/compiled.ts"
import type { Mode, RunEvent } from "./RunEvent.ts"
import type * as RunStatus from "./RunStatus.ts"
import { type JournalEntry, RunStore, type RunStoreError } from "./RunStore.ts"

type Json = Workflow.Json

/**
 * The workflow has a loop or parallel, which this engine does not execute yet.
 *
 * @since 0.1.0
 */
export class UnsupportedWorkflow extends Data.TaggedError("UnsupportedWorkflow")<{
  readonly workflowId: string
  readonly container: string
  readonly kind: "loop" | "parallel"
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `workflow ${this.workflowId}: ${this.kind} ${this.container} cannot be executed yet (containers are not supported by this engine)`
  }
}

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
export type EngineError = UnsupportedWorkflow | UnknownBlockType

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
}

/**
 * The default concurrency bound.
 *
 * @since 0.1.0
 */
export const defaultConcurrency = 16

/**
 * The first container of a workflow, as the error this engine reports for it.
 *
 * @since 0.1.0
 */
export const checkContainers = (workflow: Workflow.Workflow): UnsupportedWorkflow | undefined => {
  const loop = workflow.loops?.[0]
  if (loop !== undefined) return new UnsupportedWorkflow({ workflowId: workflow.id, container: loop.id, kind: "loop", path: ["loops", 0] })
  const parallel = workflow.parallels?.[0]
  if (parallel !== undefined) {
    return new UnsupportedWorkflow({ workflowId: workflow.id, container: parallel.id, kind: "parallel", path: ["parallels", 0] })
  }
  return undefined
}

/**
 * Checks that the engine can execute a workflow: no container, a handler for every block type
 * (the first problem found).
 *
 * @since 0.1.0
 */
export const check = (workflow: Workflow.Workflow, handlers: Handler.Handlers["Service"]): EngineError | undefined => {
  const unsupported = checkContainers(workflow)
  if (unsupported !== undefined) return unsupported
  for (let b = 0; b < workflow.blocks.length; b++) {
    const block = workflow.blocks[b]!
    if (handlers.get(block.type) === undefined) return new UnknownBlockType({ block: block.id, type: block.type, path: ["blocks", b, "type"] })
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
}

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

class NodeContext implements Handler.HandlerContext {
  attempt = 0
  controller: AbortController | undefined = undefined
  readonly loop = undefined
  readonly parallel = undefined
  constructor(
    readonly index: number,
    readonly inputs: { readonly [key: string]: Json },
    readonly params: { readonly [key: string]: Json },
    readonly block: Workflow.Block,
    readonly input: { readonly [key: string]: Json },
    readonly runId: string,
    readonly node: string,
    readonly inputsFingerprint: string,
    readonly startedAt: number
  ) {}
  get signal(): AbortSignal {
    this.controller ??= new AbortController()
    return this.controller.signal
  }
}

const unchanged: ReadonlyArray<string> = ["unchanged"]

const nullFingerprint = Fingerprint.hash(null)
// Many handlers (side effects, sinks) output null; its fingerprint is a constant.
const outputFingerprint = (output: Json): string => output === null ? nullFingerprint : Fingerprint.hash(output)

const retrySchedule = (policy: Workflow.RetryPolicy) => {
  const exponential = Schedule.exponential(Duration.millis(policy.initialDelayMs ?? 100), policy.backoffFactor ?? 2)
  const cap = policy.maxDelayMs
  return cap === undefined
    ? exponential
    : Schedule.modifyDelay(exponential, ({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(cap))))
}

const isRetryable = (error: BlockError.BlockError) => error.isRetryable

const errorOf = (cause: Cause.Cause<BlockError.BlockError>): Snapshot.NodeError => {
  const found = Cause.findError(cause)
  if (Result.isSuccess(found)) return { message: found.success.message, retryable: found.success.isRetryable }
  const defect = Cause.squash(cause)
  return { message: defect instanceof Error ? defect.message : String(defect), retryable: false }
}

const invoke = (handler: Handler.Handler, ctx: NodeContext): Effect.Effect<Handler.Output, BlockError.BlockError> => {
  ctx.attempt++
  try {
    return handler(ctx)
  } catch (defect) {
    return Effect.die(defect)
  }
}

/**
 * Executes a run: `pending → running → completed | failed`, or `cancelled` when interrupted.
 * Returns the final status.
 *
 * **Gotchas**
 *
 * Call `check` first: a block without a handler fails its node. A workflow with a container fails
 * with `UnsupportedWorkflow` before the run is touched.
 *
 * @since 0.1.0
 */
export const execute = (
  execution: Execution,
  options: Options = {}
): Effect.Effect<RunStatus.Status, RunStoreError | UnsupportedWorkflow, RunStore | Handler.Handlers> =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const handlers = yield* Handler.Handlers
    const clock = yield* Clock.Clock
    const services = yield* Effect.context<never>()
    const fork = Effect.runForkWith(services)
    const { input, mode, plan, publish, runId } = execution
    const workflow = plan.workflow
    const unsupported = checkContainers(workflow)
    if (unsupported !== undefined) return yield* Effect.fail(unsupported)
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

    const complete = ({ ctx, exit }: Completion, at: number) => {
      const i = ctx.index
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

    // Every attempt after the first is announced; the journal keeps the node `running` until it ends.
    const retried = (handler: Handler.Handler, ctx: NodeContext) => {
      if (ctx.attempt > 0) {
        publish({ _tag: "NodeStarted", runId, node: ctx.node, attempt: ctx.attempt + 1, at: clock.currentTimeMillisUnsafe() })
      }
      return invoke(handler, ctx)
    }

    const launch = (ctx: NodeContext) => {
      const block = ctx.block
      const handler = handlers.get(block.type)
      let effect: Effect.Effect<Handler.Output, BlockError.BlockError> = handler === undefined
        ? Effect.fail(BlockError.permanent(`no handler for block type ${JSON.stringify(block.type)}`))
        : block.retry === undefined || block.retry.maxAttempts <= 1
        ? invoke(handler, ctx)
        : Effect.retry(Effect.suspend(() => retried(handler, ctx)), {
          schedule: retrySchedule(block.retry),
          times: block.retry.maxAttempts - 1,
          while: isRetryable
        })
      if (tracing) {
        effect = Effect.withSpan(effect, `ripple.node ${ctx.node}`, {
          attributes: { "ripple.run_id": runId, "ripple.node_id": ctx.node, "ripple.block_type": block.type }
        })
      }
      inflight++
      const fiber = fork(effect)
      running[ctx.index] = fiber
      fiber.addObserver(observe(ctx))
    }

    // Takes up to the free concurrency from the ready queue: resolves inputs, journals starts.
    const wave: Array<NodeContext> = []
    const prepare = () => {
      const at = clock.currentTimeMillisUnsafe()
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
        publish({ _tag: "NodeStarted", runId, node, attempt: 1, at })
        lastStarted = { node, at }
        wave.push(ctx)
      }
    }

    const flush = Effect.suspend(() => {
      const entries = buffer
      buffer = []
      const failures = newFailures
      newFailures = []
      const write = entries.length === 0 ? Effect.void : store.journal(runId, entries)
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
        const at = clock.currentTimeMillisUnsafe()
        yield* store.setDiagnostics(runId, {
          ...(lastStarted === undefined ? {} : { lastStarted }),
          ...(lastCompleted === undefined ? {} : { lastCompleted }),
          finalization,
          messages
        }, at)
        const changed = yield* store.transition(runId, event, at)
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
      if (reusedEntries.length > 0) yield* store.journal(runId, reusedEntries)
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
        prepare()
        yield* flush
        if (wave.length > 0) {
          const launching = wave.splice(0, wave.length)
          for (const ctx of launching) launch(ctx)
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
      }
      yield* flush
      // Once finalizing, a cancel must not overwrite the diagnostics of a run that just ended.
      return yield* Effect.uninterruptible(finish(unhandledFailures > 0 ? "failed" : "completed", { type: "ALL_BRANCHES_FINISHED" }))
    })

    // Handler fibers are not children of this one: whatever ends the execution (a store failure
    // included), none may outlive it.
    return yield* body.pipe(Effect.onInterrupt(() => Effect.ignore(cancel)), Effect.ensuring(stopRunning))
  })
