/**
 * The wave scheduler: a full run of a workflow without containers, waits, sleeps, approvals or
 * child runs, in plain JavaScript over the compiled DAG's integer node indices; only handlers run
 * as fibers, on the scheduling core it shares with the scope interpreter (`pool.ts`: forked with
 * `Effect.runForkWith`, completion observed by callback, no Deferred per node, and no fiber at all
 * for a handler whose effect is already an `Exit`). The journal is written once per wave: the
 * completions of the last wave, the skips they caused and the starts of the next wave go to the
 * store in one `journal` call; a node starts only once what it reads is durable, and a settlement is
 * published only once its entry is. The run
 * semantics are the engine's (`edges.ts`, `control.ts`, `parking.ts`, `settling.ts`, `finishing.ts`), shared
 * with the scope interpreter.
 *
 * Built by hand: it is the engine's hot path (`bench:engine`).
 */
import type { Dag, Plan, Reference, Snapshot, Workflow } from "@ripple/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import type * as BlockError from "../BlockError.ts"
import type { Execution, Options } from "../Engine.ts"
import * as Handler from "../Handler.ts"
import type { RunEvent } from "../RunEvent.ts"
import type * as RunStatus from "../RunStatus.ts"
import { type JournalEntry, RunStore, type RunStoreError } from "../RunStore.ts"
import { errorOf, NodeContext, storable } from "./attempt.ts"
import * as Compiled from "./compiled.ts"
import { acknowledged, beforeStart, beforeStartOn, cancelsOnInterrupt, type Control } from "./control.ts"
import { isLive, reuseReasons, runs } from "./edges.ts"
import { type Finalization, finishRun, type Outcome } from "./finishing.ts"
import * as Pacing from "./pacing.ts"
import * as Pool from "./pool.ts"
import { pauseBranch, pausedEntry, register } from "./parking.ts"
import {
  Attempts,
  completedEntry,
  decisionOf,
  failedEntry,
  inputsFingerprint,
  outputOf,
  resolveInputs,
  runFailure,
  skippedEntry,
  startedEntry,
  unresolvedFields
} from "./settling.ts"

type Json = Workflow.Json
type Exited = Exit.Exit<Handler.Output, BlockError.BlockError>

// Node phases (0: not part of the plan's re-run set).
const WAITING = 1
const READY = 2
const RUNNING = 3
const DONE = 4

// Outcomes, and the statuses they stand for in the edge rule.
const NONE = 0
const COMPLETED = 1
const FAILED = 2
const SKIPPED = 3
const statusOf: ReadonlyArray<Snapshot.NodeStatus | undefined> = [undefined, "completed", "failed", "skipped"]
const outcomeOf = (status: Snapshot.NodeStatus): number =>
  status === "completed" ? COMPLETED : status === "skipped" ? SKIPPED : status === "failed" ? FAILED : NONE

type Completion = Pool.Completion<NodeContext, Handler.Output, BlockError.BlockError>

// An interrupted handler's abort signal fires as it ends (whoever interrupted it).
const abortInterrupted = (ctx: NodeContext, exit: Exited): void => {
  if (ctx.controller !== undefined && Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause)) ctx.controller.abort()
}

// A plan's re-run nodes as DAG indices in plan order, once per plan value (a full plan is cached
// per workflow value, so a workflow started again resolves no id).
const rerunOrders = new WeakMap<Plan.Plan, Int32Array>()
const rerunOrder = (plan: Plan.Plan, dag: Dag.Dag): Int32Array => {
  let order = rerunOrders.get(plan)
  if (order === undefined) {
    const indices: Array<number> = []
    for (const id of plan.rerun) {
      const i = dag.index!.get(id)
      if (i !== undefined) indices.push(i)
    }
    order = Int32Array.from(indices)
    rerunOrders.set(plan, order)
  }
  return order
}

/** One execution on the wave scheduler. */
class Waves {
  readonly c: Compiled.Compiled
  readonly n: number
  readonly control: Control
  readonly concurrency: number
  readonly tracing: boolean
  readonly phase: Uint8Array
  readonly outcome: Uint8Array
  readonly outputs: Array<Json | undefined>
  readonly decisions: Array<string | undefined>
  readonly pendingIn: Int32Array
  readonly liveIn: Int32Array
  readonly ready: Int32Array
  readonly stack: Int32Array
  readyHead = 0
  readyTail = 0
  buffer: Array<JournalEntry> = []
  /** Events of the entries in `buffer`, published once they are written. */
  events: Array<RunEvent> = []
  newFailures: Array<ReturnType<typeof runFailure>> = []
  readonly result: Outcome = { failures: 0, messages: [], lastStarted: undefined, lastCompleted: undefined }
  /** The last node completed in the batch being settled (the diagnostics keep only the last). */
  lastCompleted: NodeContext | undefined = undefined
  readonly pool: Pool.Pool<NodeContext, Handler.Output, BlockError.BlockError>
  wave: Array<NodeContext> = []
  /** A time read since the execution last waited, still good for the next start (no clock read per block). */
  known: number | undefined = undefined
  readonly parked: Array<number> = []
  readonly env: Reference.Environment
  readonly journal: (entries: ReadonlyArray<JournalEntry>) => Effect.Effect<void, RunStoreError>
  readonly pacer = Pacing.make()
  readonly attempts: Attempts

  constructor(
    readonly execution: Execution,
    readonly options: Options,
    readonly order: ReadonlyArray<string> | undefined,
    readonly store: RunStore["Service"],
    readonly handlers: Handler.Handlers["Service"],
    readonly clock: Clock.Clock,
    readonly fork: (effect: Effect.Effect<Handler.Output, BlockError.BlockError>) => Fiber.Fiber<Handler.Output, BlockError.BlockError>,
    concurrency: number
  ) {
    const workflow = execution.plan.workflow
    this.c = Compiled.compile(workflow)
    const n = this.n = this.c.dag.size
    this.control = execution.control ?? { pauseRequested: false }
    this.concurrency = concurrency
    this.tracing = options.tracing === true
    this.phase = new Uint8Array(n)
    this.outcome = new Uint8Array(n)
    this.outputs = new Array(n)
    this.decisions = new Array(n)
    this.pendingIn = new Int32Array(n)
    this.liveIn = new Int32Array(n)
    this.ready = new Int32Array(n)
    this.stack = new Int32Array(n)
    this.pool = new Pool.Pool(fork, abortInterrupted)
    const { dag } = this.c
    const variables = workflow.variables ?? {}
    const input = execution.input
    this.env = {
      blockOutput: (id) => {
        const i = dag.index!.get(id)
        if (i === undefined) return undefined
        const o = this.outcome[i]
        return o === COMPLETED ? this.outputs[i] : o === SKIPPED ? null : undefined
      },
      input: (key) => input[key],
      variable: (name) => variables[name],
      index: () => undefined,
      item: () => undefined
    }
    this.journal = acknowledged(store, execution.runId, this.control)
    this.attempts = new Attempts(handlers, this.control, clock, execution.publish, execution.runId, this.tracing)
  }

  now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  publish(event: RunEvent): void {
    this.execution.publish(event)
  }

  /** Publishes `event` once the write that carries its journal entry returns: what is announced is durable. */
  publishDurable(event: RunEvent): void {
    this.events.push(event)
  }

  live(source: number, k: number): boolean {
    return isLive(statusOf[this.outcome[source]!], this.decisions[source], this.c.handles[k])
  }

  skip(i: number, at: number): void {
    const node = this.c.ids[i]!
    this.done(i, SKIPPED)
    this.buffer.push(skippedEntry(node, this.c.definitions[i]!, at))
    this.publishDurable({ _tag: "NodeSkipped", runId: this.execution.runId, node, at })
  }

  /**
   * Decides the outgoing edges of a settled node; nodes left with no pending edge become ready or
   * are skipped, and skips spread with an explicit stack (deep chains must not overflow).
   */
  settle(root: number, at: number): void {
    const { outOffsets, outTargets } = this.c.dag
    const { phase, pendingIn, liveIn, stack } = this
    let top = 0
    stack[top++] = root
    while (top > 0) {
      const x = stack[--top]!
      for (let k = outOffsets[x]!; k < outOffsets[x + 1]!; k++) {
        const j = outTargets[k]!
        if (phase[j] !== WAITING) continue
        if (this.live(x, k)) liveIn[j]!++
        if (--pendingIn[j]! === 0) {
          if (runs(1, liveIn[j]!)) {
            phase[j] = READY
            this.ready[this.readyTail++] = j
          } else {
            this.skip(j, at)
            stack[top++] = j
          }
        }
      }
    }
  }

  /** A node settled with `outcome`. */
  done(i: number, outcome: number): void {
    this.phase[i] = DONE
    this.outcome[i] = outcome
  }

  /** Node `i` failed: its entry is queued, and a failure no `"error"` edge catches goes to the run's machine with the next flush. */
  fail(i: number, entry: ReturnType<typeof failedEntry>): void {
    const { node, attempt, error, at } = entry
    this.done(i, FAILED)
    this.buffer.push(entry)
    this.publishDurable({ _tag: "NodeFailed", runId: this.execution.runId, node, attempt, error, at })
    if (this.c.hasErrorEdge[i] === 0) this.newFailures.push(runFailure(this.result, node, error, at))
    this.settle(i, at)
  }

  complete(completion: Completion, at: number): void {
    const ctx = completion.unit
    const i = ctx.index
    const exit = storable(ctx, completion.exit)
    const fingerprints = ctx.fingerprints
    if (Exit.isFailure(exit)) {
      return this.fail(i, failedEntry(ctx.node, ctx.attempt, ctx.inputs, fingerprints, errorOf(exit.cause), ctx.startedAt, at))
    }
    const output = outputOf(exit.value)
    const decision = decisionOf(exit.value)
    this.done(i, COMPLETED)
    this.outputs[i] = output
    this.decisions[i] = decision
    this.buffer.push(completedEntry(ctx.node, ctx.attempt, ctx.inputs, fingerprints, output, decision, ctx.startedAt, at))
    this.publishDurable({ _tag: "NodeCompleted", runId: this.execution.runId, node: ctx.node, attempt: ctx.attempt, decision, at })
    this.lastCompleted = ctx
    this.settle(i, at)
  }


  launch(ctx: NodeContext): void {
    this.publish({ _tag: "NodeStarted", runId: this.execution.runId, node: ctx.node, attempt: 1, at: ctx.startedAt })
    this.pool.launch(ctx, this.attempts.of(ctx))
  }

  /** Takes up to the free concurrency from the ready queue: resolves inputs, journals starts. */
  prepare(at: number): void {
    const { blocks, ids, params, staticInputs, definitions } = this.c
    const { input, runId } = this.execution
    // A pause request parks what would start; what runs finishes.
    if (this.control.pauseRequested) {
      while (this.readyHead < this.readyTail) this.parked.push(this.ready[this.readyHead++]!)
      return
    }
    while (this.readyHead < this.readyTail && this.pool.inflight + this.wave.length < this.concurrency) {
      const i = this.ready[this.readyHead++]!
      const node = ids[i]!
      const p = params[i]!
      let inputs = p
      let fingerprint = staticInputs[i]
      if (fingerprint === undefined) {
        const resolved = resolveInputs(p, this.env)
        if (Result.isFailure(resolved)) {
          const fields = unresolvedFields(definitions[i]!, at)
          this.publishDurable({ _tag: "NodeStarted", runId, node, attempt: 1, at })
          this.fail(i, failedEntry(node, 1, fields.inputs, fields.fingerprints, resolved.failure, at, at))
          continue
        }
        inputs = resolved.success
        fingerprint = inputsFingerprint(inputs)
      }
      this.phase[i] = RUNNING
      const fingerprints = { definition: definitions[i]!, inputs: fingerprint }
      const ctx = new NodeContext(i, inputs, p, blocks[i]!, input, runId, node, fingerprints, at)
      this.buffer.push(startedEntry(node, inputs, fingerprints, at))
      this.wave.push(ctx)
    }
  }

  /** Writes what the last wave settled and the next one starts in one journal call, then the run's new failures. */
  flush(): Effect.Effect<void, RunStoreError> {
    const entries = this.buffer
    this.buffer = []
    const failures = this.newFailures
    if (failures.length > 0) this.newFailures = []
    const events = this.events
    if (events.length > 0) this.events = []
    const runId = this.execution.runId
    const journaled = entries.length === 0 ? Effect.void : this.journal(entries)
    const write = events.length === 0 ? journaled : Effect.map(journaled, () => {
      for (const event of events) this.publish(event)
    })
    return failures.length === 0 ? write : Effect.andThen(
      write,
      Effect.forEach(failures, (f) => this.store.transition(runId, f, f.at), { discard: true })
    )
  }

  finish(finalization: Finalization, event: RunStatus.Event): Effect.Effect<RunStatus.Status, RunStoreError, RunStore | Handler.Handlers> {
    return finishRun(this.execution, this.options, this.result, finalization, event, this.order)
  }

  /** Handler fibers are not children of the execution's fiber: whatever ends it, none may outlive it. */
  get stopRunning(): Effect.Effect<void> {
    return this.pool.stop
  }

  readonly cancel = Effect.suspend(() => {
    this.result.messages.push("cancelled")
    return Effect.andThen(this.stopRunning, this.finish("cancelled", { type: "CANCEL" }))
  })

  /** Reused records decide their edges; re-run nodes wait for theirs; those with none pending are queued. */
  hydrate(plan: Plan.Plan, startedAt: number): Effect.Effect<void, RunStoreError> {
    const { dag, handles } = this.c
    const { outOffsets, outTargets, inOffsets } = dag
    const { n, phase, pendingIn, liveIn } = this
    const order = rerunOrder(plan, dag)
    const rerun = new Uint8Array(n)
    for (let r = 0; r < order.length; r++) rerun[order[r]!] = 1
    for (let i = 0; i < n; i++) {
      if (rerun[i] === 1) {
        phase[i] = WAITING
        pendingIn[i] = inOffsets[i + 1]! - inOffsets[i]!
      }
    }
    const reused = this.reuse(plan, startedAt)
    for (let i = 0; i < n; i++) {
      if (rerun[i] === 1) continue
      phase[i] = DONE
      // Only the edges into re-run nodes matter; `settle` ignores the others.
      for (let k = outOffsets[i]!; k < outOffsets[i + 1]!; k++) {
        const j = outTargets[k]!
        if (rerun[j] === 0) continue
        if (isLive(statusOf[this.outcome[i]!], this.decisions[i], handles[k])) liveIn[j]!++
        pendingIn[j]!--
      }
    }
    for (let r = 0; r < order.length; r++) {
      const i = order[r]!
      if (phase[i] !== WAITING || pendingIn[i] !== 0) continue
      if (runs(inOffsets[i + 1]! - inOffsets[i]!, liveIn[i]!)) {
        phase[i] = READY
        this.ready[this.readyTail++] = i
      } else {
        this.skip(i, startedAt)
        this.settle(i, startedAt)
      }
    }
    return reused
  }

  // The plan's reused records: their outcomes, and their journal entries (written before anything starts).
  reuse(plan: Plan.Plan, startedAt: number): Effect.Effect<void, RunStoreError> {
    const { runId } = this.execution
    const entries: Array<JournalEntry> = []
    const source = this.execution.sourceRun ?? plan.state.runId
    for (const id of plan.reused) {
      const i = this.c.dag.index!.get(id)
      const record = plan.state.nodes[id]
      if (i === undefined || record === undefined) continue
      this.outcome[i] = outcomeOf(record.status)
      this.outputs[i] = record.output
      this.decisions[i] = record.decision
      const reasons = reuseReasons(plan, id)
      entries.push({ _tag: "Reused", node: id, from: source, record, reasons })
      this.publish({ _tag: "NodeReused", runId, node: id, from: record.reusedFrom ?? source, reasons, at: startedAt })
    }
    return entries.length > 0 ? this.journal(entries) : Effect.void
  }

  /** Waves until nothing runs: start what is ready, wait for a completion, settle what completed. */
  readonly waves: Effect.Effect<void, RunStoreError> = Effect.gen({ self: this }, function*() {
    const { control, clock } = this
    for (;;) {
      const at = this.known ?? this.now()
      this.known = undefined
      const starting = beforeStart(control, at)
      if (starting !== undefined) yield* starting
      this.prepare(at)
      yield* this.flush()
      if (this.wave.length > 0) {
        const launching = this.wave
        this.wave = []
        // The write that journaled the starts may have brought a cancel, or outlasted the lease.
        const started = beforeStartOn(control, clock)
        if (started !== undefined) yield* started
        // Journaled as started when the write's acknowledgement brought a pause: parked instead (their `Paused` entries replace the starts).
        if (control.pauseRequested) for (const ctx of launching) this.parked.push(ctx.index)
        else {
          for (const ctx of launching) this.launch(ctx)
          const last = launching[launching.length - 1]!
          this.result.lastStarted = { node: last.node, at: last.startedAt }
        }
      }
      if (this.pool.completions.length === 0) {
        if (this.pool.inflight === 0) break
        yield* this.pool.waiting
      }
      const done = this.pool.take()
      const settledAt = this.now()
      for (const completion of done) this.complete(completion, settledAt)
      if (this.lastCompleted !== undefined) {
        this.result.lastCompleted = { node: this.lastCompleted.node, at: settledAt }
        this.lastCompleted = undefined
      }
      const turn = this.pacer.settled(done.length)
      // Nothing waited since `settledAt` was read unless the pacer yields: the next starts share it.
      if (turn !== undefined) yield* turn
      else this.known = settledAt
    }
    yield* this.flush()
  })

  /** Journals the nodes a pause request parked; the first stands for the run's paused branch. */
  park(): Effect.Effect<void, RunStoreError> {
    const { parked } = this
    if (parked.length === 0) return Effect.void
    const { runId } = this.execution
    const { definitions, ids } = this.c
    const at = this.now()
    return Effect.andThen(
      this.journal(parked.map((i) => pausedEntry(ids[i]!, undefined, { definition: definitions[i]! }, at))),
      Effect.suspend(() => {
        for (const i of parked) this.publish({ _tag: "NodeDormant", runId, node: ids[i]!, reason: "paused", at })
        const first = ids[parked[0]!]!
        return register(this.store, runId, first, pauseBranch(first), at)
      })
    )
  }

  readonly body: Effect.Effect<RunStatus.Status, RunStoreError, RunStore | Handler.Handlers> = Effect.gen({ self: this }, function*() {
    const { mode, runId } = this.execution
    const startedAt = this.now()
    const started = yield* this.store.transition(runId, { type: "START" }, startedAt)
    this.publish({ _tag: "RunStarted", runId, mode, at: startedAt })
    if (started.from !== started.to) this.publish({ _tag: "StatusChanged", runId, from: started.from, to: started.to, at: startedAt })
    yield* this.hydrate(this.execution.plan, startedAt)
    yield* this.waves
    yield* this.park()
    // Once finalizing, a cancel must not overwrite the diagnostics of a run that just ended.
    const finalization = this.result.failures > 0 ? "failed" : this.parked.length > 0 ? "paused" : "completed"
    return yield* Effect.uninterruptible(this.finish(finalization, { type: "ALL_BRANCHES_FINISHED" }))
  })
}

/** Executes a full run of a workflow the wave scheduler takes (see the module documentation). */
export const execute = (
  execution: Execution,
  options: Options,
  order: ReadonlyArray<string> | undefined,
  concurrency: number
): Effect.Effect<RunStatus.Status, RunStoreError, RunStore | Handler.Handlers> =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const handlers = yield* Handler.Handlers
    const clock = yield* Clock.Clock
    const services = yield* Effect.context<never>()
    const waves = new Waves(execution, options, order, store, handlers, clock, Effect.runForkWith(services), concurrency)
    return yield* waves.body.pipe(
      Effect.onInterrupt(() => cancelsOnInterrupt(waves.control) ? Effect.ignore(waves.cancel) : Effect.void),
      Effect.ensuring(waves.stopRunning)
    )
  })
