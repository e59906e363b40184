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
 *   enclosing container. A loop the plan restarts whole restarts from iteration 0; a parallel reset
 *   branch by branch re-runs only those branches and reuses the others; a container the plan only
 *   enters (`Plan.Reset` `per-instance`) reuses its start's count / items and every body instance
 *   whose record the plan's state keeps, and runs the others.
 * - `approval` blocks pause their branch (`paused`, reason: their `reason` param) until
 *   `Runs.approve` / `Runs.reject`; `wait` blocks (`{ signal }`) suspend it until `Runs.signal`;
 *   `sleep` blocks (`{ ms }` or `{ until }`) suspend it until the wake time on the effect `Clock`.
 *   A dormant node blocks what depends on it; everything else runs on, and the run settles by the
 *   `RunStatus` priority. A pause request parks every node reaching its start: asked for in this
 *   process through `Execution.control`, or from any process through `RunStore.requestPause`,
 *   which every journal write acknowledges (no extra round trip). What runs when it comes finishes.
 *   The pause holds until the unpause: a run paused by one and woken for something else (an
 *   approval, a signal) parks every node reaching its start again, the woken one too (what woke it
 *   stays kept for it).
 * - Before each block starts, and again once the write that journals its start returns, the engine
 *   checks `Execution.control`: a cancel request (`RunStore.requestCancel`, acknowledged by journal
 *   writes and lease renewals) ends the execution like an interruption (`cancelled`), and a lease
 *   past its deadline (its last known expiry less the holder's margin) is renewed first (a lost one
 *   ends it with `LeaseLost`, writing nothing, as does any write of a fenced store refused because
 *   the lease changed hands: the execution stopped, it did not fail). A holder whose lease reaches
 *   its deadline unrenewed fences itself (`Lease.hold`): its running handlers are interrupted at
 *   once, nothing starts any more, and the run is left `running`, nothing written.
 *   A start that no journal write acknowledges — a retry after its backoff, a compensation, a child
 *   run — renews a held lease first whatever its expiry, so a cancel recorded by another process
 *   since the last write is seen before it (one store round trip each).
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
 * - Early cutoff (mode `run-from`, `Options.cutoff`, default on): a re-run block instance that is
 *   not the target, not `volatile`, pinned or disabled, whose definition is unchanged and whose
 *   resolved inputs hash as in its own record of the source snapshot, computed in the same
 *   context — the same enclosing loops and parallels (ids and kinds), the innermost loop and the
 *   innermost parallel giving it the same item, or none in both (a handler reads `ctx.loop` /
 *   `ctx.parallel`) — is reused from it (reason `cutoff`, per instance) instead of executed,
 *   whatever else made its block re-run: something upstream, changed incoming edges or routes,
 *   another instance that failed, an outer container's item. Resume applies the same context check. An `approval` or `wait` is never cut off once a node upstream
 *   of it settled otherwise than in the source (status, decision or output): it asks again, since
 *   what was approved or answered is not what reaches it now.
 *
 * **Structure and performance**
 *
 * The run semantics above are written once, in modules every execution uses: edge liveness, skip
 * propagation and unresolved references (`internal/edges.ts`), the checks before any start —
 * cancel, pause, lease (`internal/control.ts`) — dormancy and parking (`internal/parking.ts`),
 * the intrinsic blocks (`internal/intrinsics.ts`), containers (`internal/containers.ts`), how an
 * execution ends (`internal/finishing.ts`) and saga compensation (`internal/saga.ts`). One
 * interpreter (`internal/interpreter.ts`) executes every run — full, run-from, resume, containers,
 * dormancy — on one scheduling core (`internal/pool.ts`: units forked from plain JavaScript,
 * completions observed by callback). It runs each scope instance (the top level, a container
 * body's iteration or branch) in waves over its scope graph (`internal/shape.ts`'s `scopeGraph`,
 * integer indices, successors released by counting), its state in typed arrays: every ready member
 * is decided synchronously, what the last wave settled and this wave's starts go out in one
 * journal call (`internal/journalWriter.ts`), and handlers, containers and intrinsic blocks run as
 * units of the pool — only handlers as fibers (forked with `Effect.runForkWith`, completion
 * observed by callback, no Deferred per node; none for a handler whose effect is already an
 * `Exit`). Writes made by concurrent scope instances while a call is in flight share the next; a
 * store whose writes are synchronous (the memory store) has its call made at once, with no fiber
 * step (`internal/immediate.ts`).
 *
 * A node starts only once what it reads is durable, a node's settlement is published
 * (`NodeCompleted`, `NodeFailed`, `NodeSkipped`) only once the write that carries it returned (what a
 * process announced before it died is in the journal, and a resume does not run it again), spans
 * are created only with `tracing: true`, and the execution yields to
 * the event loop every `blocksPerYield` (`internal/pacing.ts`) settled blocks, so an interruption
 * (a Ctrl-C) is observed even when every handler is synchronous.
 *
 * @since 0.1.0
 */
import { type Plan, type Snapshot, Workflow } from "@ripple/core"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Handler from "./Handler.ts"
import * as Compiled from "./internal/compiled.ts"
import * as ControlM from "./internal/control.ts"
import { cancelsOnInterrupt } from "./internal/control.ts"
import * as Finishing from "./internal/finishing.ts"
import { finishRun, resumeCompensation, settling } from "./internal/finishing.ts"
import * as Interpreter from "./internal/interpreter.ts"
import * as OptionChecks from "./Options.ts"
import * as Parking from "./internal/parking.ts"
import * as Pins from "./internal/pins.ts"
import * as Saga from "./internal/saga.ts"
import * as Shape from "./internal/shape.ts"
import type { Mode, RunEvent } from "./RunEvent.ts"
import * as RunStatus from "./RunStatus.ts"
import { type CompensationEntry, type LeaseLost, type Run, RunStore, type RunStoreError } from "./RunStore.ts"

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
 * checked against its deadline before each start, and renewed with the store past it; a retry, a
 * compensation or a child run renews it first in any case; once its holder fenced itself, nothing
 * starts.
 *
 * @since 0.1.0
 */
export type Control = ControlM.Control

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
export const intrinsicTypes: ReadonlySet<string> = Shape.intrinsicTypes

/**
 * Checks that the engine can execute a workflow: a handler for every block type that is not
 * intrinsic, of the blocks that are not disabled (a disabled block passes its input on or is
 * skipped, and never calls its handler; the first problem found).
 *
 * @since 0.1.0
 */
export const check = (workflow: Workflow.Workflow, handlers: Handler.Handlers["Service"]): EngineError | undefined => {
  // Per type first: a workflow whose every type has a handler (the usual case) needs no walk of its blocks.
  if (Compiled.typesOf(workflow).every((type) => intrinsicTypes.has(type) || handlers.get(type) !== undefined)) return undefined
  for (let b = 0; b < workflow.blocks.length; b++) {
    const block = workflow.blocks[b]!
    // A disabled block never calls its handler.
    if (block.disabled !== true && !intrinsicTypes.has(block.type) && handlers.get(block.type) === undefined) return new UnknownBlockType({ block: block.id, type: block.type, path: ["blocks", b, "type"] })
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
   * Whether anything reads the events of single nodes now (`NodeStarted`, `NodeCompleted`,
   * `NodeSkipped`): while it returns false they are not made (two per block of every execution).
   * Default: always. Run events and the other node events are published whatever it says.
   */
  readonly listening?: (() => boolean) | undefined
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
export const childSignal: (childRun: string) => string = Parking.childSignal

/**
 * Executes a run: `pending → running → completed | failed | paused | suspended`, or `cancelled`
 * when interrupted; a resume continues a run already `running` (the caller moved it there). Returns
 * the status the execution left the run in. A run that is neither `pending` nor `running` when the
 * execution begins (cancelled or completed meanwhile, say) is left as it is: no block starts, and
 * its status is returned.
 *
 * An option out of range (a concurrency or a limit that is not a whole number of at least 1)
 * fails with `Options.InvalidOption` naming it, before anything is written.
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
): Effect.Effect<RunStatus.Status, RunStoreError | LeaseLost | OptionChecks.InvalidOption, RunStore | Handler.Handlers> =>
  Effect.andThen(OptionChecks.check(OptionChecks.engine(options)), executeChecked(execution, options))

const executeChecked = (execution: Execution, options: Options) =>
  Effect.gen(function*() {
    const base = yield* Handler.Handlers
    // Pinned block instances get their pin from the registry instead of their handler, and their
    // completions are journaled as pinned.
    const handlers = Pins.pinning(base, execution.plan.pins)
    const run = executing(execution, options, handlers)
    if (handlers === base) return yield* run
    const store = Pins.marking(yield* RunStore, execution.plan.pins)
    return yield* run.pipe(Effect.provideService(Handler.Handlers, handlers), Effect.provideService(RunStore, store))
  })

const executing = (execution: Execution, options: Options, handlers: Handler.Handlers["Service"]) =>
  Effect.gen(function*() {
    if (!Saga.compensates(execution.plan.workflow, handlers)) return yield* interpret(execution, options, undefined)
    if (execution.mode === "resume") {
      const store = yield* RunStore
      const log = yield* store.compensations(execution.runId)
      // A run that crashed while compensating goes on compensating; nothing else of it runs again.
      if (log.length > 0 && Finishing.compensating(log, yield* store.getRun(execution.runId))) {
        return yield* resumeCompensation(execution, options)
      }
    }
    const tracker = Saga.track(execution.publish)
    // The tracker reads every `NodeCompleted`: they are made whoever else listens.
    return yield* interpret({ ...execution, publish: tracker.publish, listening: undefined }, options, tracker.order)
  })

/**
 * Whether a run stopped while compensating (or after its last compensation, before it was marked
 * failed): a compensation is pending, or some were made and its machine still holds the failures
 * that started them. Such a run only finishes compensating when resumed. A failed run resumed on
 * purpose has had its failures cleared (`RESUME`): it retries its failed nodes instead.
 *
 * @since 0.1.0
 */
export const compensating: (log: ReadonlyArray<CompensationEntry>, run: Run) => boolean = Finishing.compensating

const always = () => true

const interpret = (
  execution: Execution,
  options: Options,
  order: ReadonlyArray<string> | undefined
): Effect.Effect<RunStatus.Status, RunStoreError | LeaseLost, RunStore | Handler.Handlers> =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const handlers = yield* Handler.Handlers
    const clock = yield* Clock.Clock
    const { mode, publish, runId } = execution
    const outcome: Finishing.Outcome = { failures: 0, messages: [], lastStarted: undefined, lastCompleted: undefined }
    const cancel = Effect.gen(function*() {
      outcome.messages.push("cancelled")
      return yield* finishRun(execution, options, outcome, "cancelled", { type: "CANCEL" }, undefined)
    })
    const body = Effect.gen(function*() {
      const at = clock.currentTimeMillisUnsafe()
      const start = store.transition(runId, { type: "START" }, at)
      // A full or run-from execution is of a run its caller created or claimed `pending`: it is
      // started without reading the run first. A resume, and a run the machine does not let start
      // (cancelled in between, or running already), is read and goes on from what its machine holds.
      let started = mode === "resume" ? undefined : yield* Effect.catchTag(start, "IllegalTransition", () => Effect.succeed(undefined))
      let dormant = new Set<string>()
      let paused = false
      const control = execution.control ?? { pauseRequested: false }
      if (started === undefined) {
        const run = yield* store.getRun(runId)
        if (run.status === "pending") started = yield* start
        // A run that is not running (cancelled, completed, or failed, suspended or paused without
        // the resume that moves it back) is not this execution's to go on with: no block starts,
        // nothing is written, and the caller learns the status it holds.
        else if (run.status !== "running") return run.status
        else {
          dormant = new Set(Object.keys(run.machine.context.dormant))
          // Paused by a pause request and woken for something else: what reaches its start parks.
          paused = Object.values(run.machine.context.dormant).some((reason) => reason._tag === "Pause")
          if (paused) control.pauseRequested = true
        }
      }
      publish({ _tag: "RunStarted", runId, mode, at })
      if (started !== undefined) publish({ _tag: "StatusChanged", runId, from: started.from, to: started.to, at })
      const ended = yield* Interpreter.run({
        runId,
        mode,
        plan: execution.plan,
        input: execution.input,
        sourceRun: execution.sourceRun,
        source: execution.source,
        publish,
        listening: execution.listening ?? always,
        control,
        dormant,
        paused,
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
      // A run this execution started (its machine holds nothing from before) in which nothing failed
      // and nothing went dormant completes: its machine need not be read back to know it.
      const finalization: Effect.Effect<Finishing.Finalization, RunStoreError, RunStore> = started !== undefined && ended && outcome.failures === 0
        ? Effect.succeed("completed")
        : settling(runId)
      return yield* Effect.uninterruptible(Effect.flatMap(
        finalization,
        (finalization) => finishRun(execution, options, outcome, finalization, { type: "ALL_BRANCHES_FINISHED" }, order)
      ))
    })
    return yield* body.pipe(Effect.onInterrupt(() => cancelsOnInterrupt(execution.control) ? Effect.ignore(cancel) : Effect.void))
  })
