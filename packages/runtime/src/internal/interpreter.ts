/**
 * The engine's scope interpreter: every workflow shape and every plan mode. It walks scopes (the
 * top level, then each container body per iteration or branch, `containers.ts`) the way
 * `@ripple/core/testing`'s `Model` does, but concurrently: a member of a scope starts when its
 * in-scope predecessors are done, loop iterations run one after the other, parallel branches at
 * once (at most the parallel's `concurrency`), and every handler call holds one permit of the run's
 * concurrency bound.
 *
 * Dormancy: `approval`, `wait`, `sleep` and `child` nodes that cannot complete now
 * (`intrinsics.ts`) and, once a pause is requested, every node reaching its start are journaled
 * `paused` / `waiting`, registered with `RunStatus` as a dormant branch (`BRANCH_STARTED` +
 * `BRANCH_DORMANT`, one per node instance), and *block* what depends on them: a member with a
 * blocked predecessor is not decided, a container with a blocked body instance does not end.
 * `Plan.resume` re-runs them later.
 *
 * Built by hand: it is the engine itself.
 */
import { NodeId, type Plan, type Reference, type Snapshot, Workflow } from "@ripple/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type * as BlockError from "../BlockError.ts"
import * as Builtins from "../Builtins.ts"
import type * as Handler from "../Handler.ts"
import type { RunEvent } from "../RunEvent.ts"
import type { JournalEntry } from "../RunStore.ts"
import { errorOf, NodeContext, outputFingerprint, type Shared, storable, storeFailure } from "./attempt.ts"
import { runContainer } from "./containers.ts"
import { beforeStart, beforeStartOn } from "./control.ts"
import { isLive, reuseReasons, runs } from "./edges.ts"
import { noteLast } from "./finishing.ts"
import { intrinsic } from "./intrinsics.ts"
import { isObject } from "./json.ts"
import { Pool } from "./pool.ts"
import { completedFingerprints, cutoffAllowed, decisionOf, inputsFingerprint, outputOf, resolveInputs, startedEntry, unresolvedFields } from "./settling.ts"
import { type ScopeGraph, scopeGraph } from "./shape.ts"
import * as State from "./state.ts"

type Json = Workflow.Json
type Params = { readonly [key: string]: Json }
type Frame = State.Frame

/** Decides whether a `while` loop runs another iteration, from its resolved condition. */
export type LoopCondition = State.LoopCondition

/** Everything the interpreter needs from the engine. */
export type Setup = State.Setup

/** Starts a child run for a `child` node instance: its run id, or why it could not start. */
export type Spawn = State.Spawn

/**
 * The default `while` semantics: a `{ left, op, right }` condition (the `condition` block's
 * operators) holds when the comparison is true; any other value holds when it is `true`.
 */
export const defaultLoopCondition: LoopCondition = ({ condition }) => {
  if (isObject(condition) && typeof condition["op"] === "string" && (Builtins.operators as ReadonlyArray<string>).includes(condition["op"])) {
    return Builtins.compare(condition["left"], condition["op"] as Builtins.Operator, condition["right"]) === true
  }
  return condition === true
}

// Blocks that stand for a person or a system answering what reached them: cut off only while
// nothing upstream of them came out differently, or they would pass on what nobody saw.
const answering: ReadonlySet<string> = new Set(["approval", "wait"])

/**
 * Runs the plan from its hydrated state; resolves when nothing more can run (every scope ended or
 * blocked), with whether every scope ended (nothing was left blocked behind a dormant node). Store
 * failures fail it; interruption interrupts every handler.
 */
export const run = (setup: Setup): Effect.Effect<boolean, State.StoreError> =>
  Effect.gen(function*() {
    // Completions, skips and scopes are queued (`later`) and go out with the next start, or shortly
    // after; starts and dormancy wait for their write.
    const writerScope = yield* Scope.make()
    const s = yield* State.make(setup, writerScope)
    // A holder that fences itself stops the handlers at once, not once a drive's write returns.
    const guard = setup.control.lease
    const halt = () => {
      for (const pool of s.pools) pool.halt()
    }
    if (guard !== undefined) guard.halt = halt
    yield* reuse(s)
    yield* runScope(s, "", State.topFrame(s)).pipe(
      Effect.andThen(s.writer.flush),
      // Interrupted (cancel, shutdown): what finished is still journaled.
      Effect.onInterrupt(() => Effect.ignore(s.writer.flush)),
      Effect.ensuring(Effect.sync(() => {
        if (guard?.halt === halt) guard.halt = undefined
      })),
      Effect.ensuring(Scope.close(writerScope, Exit.void))
    )
    return s.blocked.size === 0
  })

// Reused records are written once, up front, unless the plan continues this very run (its journal has them).
const unchangedInstance: ReadonlyArray<string> = ["unchanged"]

const reuse = (s: State.State): Effect.Effect<void> => {
  const { mode, plan, publish, runId } = s.setup
  const producer = s.setup.sourceRun ?? plan.state.runId
  if (mode === "resume" && producer === runId) return Effect.void
  const entries: Array<JournalEntry> = []
  const at = State.now(s)
  const nodes = plan.state.nodes
  for (const node in nodes) {
    const record = nodes[node]!
    const id = NodeId.parseInstance(node)
    const nodeId = Result.isSuccess(id) ? NodeId.format(id.success.node) : ""
    // A kept instance of a block the plan re-runs elsewhere (per-instance reuse) is reused because
    // nothing changed for it: the block's own reasons are about its other instances.
    const reasons = s.rerun.has(nodeId) ? unchangedInstance : reuseReasons(plan, nodeId)
    entries.push({ _tag: "Reused", node, from: producer, record, reasons })
    publish({ _tag: "NodeReused", runId, node, from: record.reusedFrom ?? producer, reasons, at })
  }
  for (const [scope, loop] of Object.entries(plan.state.loops)) entries.push({ _tag: "Scope", scope, scopeOf: { _tag: "loop", loop } })
  for (const [scope, parallel] of Object.entries(plan.state.parallels)) {
    entries.push({ _tag: "Scope", scope, scopeOf: { _tag: "parallel", parallel } })
  }
  return entries.length > 0 ? s.writer.later(entries) : Effect.void
}

/**
 * Runs every member of a scope instance, each once its in-scope predecessors are done (`Instance`).
 * Units are not children of the driving fiber: the pool is stopped whatever ends the driver.
 */
const runScope = (s: State.State, scope: string, frame: Frame): Effect.Effect<void, State.StoreError> =>
  Effect.suspend(() => {
    const instance = new Instance(s, scopeGraph(s.shape, scope), frame, State.priorsOf(s, scope, frame), s.fork)
    // A journal call the drive made and saw fail is the writer's failure too (`Writer.flushNow`);
    // one made by the writer's own fiber wakes the drive if it waits (`Writer.watch`).
    const driven = Effect.onError(instance.drive, (cause) => Effect.sync(() => s.writer.failed(instance, cause)))
    const unwatch = s.writer.watch(() => instance.wake?.())
    s.pools.add(instance.pool)
    return Effect.ensuring(driven, Effect.suspend(() => {
      unwatch()
      s.pools.delete(instance.pool)
      return instance.pool.stop()
    }))
  })

/** A unit of a scope instance: a handler's attempts, or member `i` run as an effect (a container, an intrinsic block, a parking). */
type Unit = NodeContext | number
type UnitError = BlockError.BlockError | State.StoreError

// An interrupted handler's abort signal fires as it ends (whoever interrupted it).
const abortInterrupted = (unit: Unit, exit: Exit.Exit<unknown, UnitError>): void => {
  if (typeof unit !== "number" && unit.controller !== undefined && Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause)) {
    unit.controller.abort()
  }
}

const emptyParams: Params = {}

// Made here rather than in `flush`: a closure there would have every call of it (one per wave)
// allocate a context for what the closure reads, whether the closure is made or not.
const publishing = (s: State.State, events: ReadonlyArray<RunEvent>) => () => State.publishAll(s, events)
const noEntries: ReadonlyArray<JournalEntry> = []

// Which members of a scope the plan re-runs, once per plan value and scope (a full plan is cached
// per workflow value, and a parallel's branches share their body's flags).
const rerunFlags = new WeakMap<Plan.Plan, Map<ScopeGraph, Uint8Array>>()
const rerunOf = (plan: Plan.Plan, rerun: ReadonlySet<string>, g: ScopeGraph): Uint8Array => {
  let byScope = rerunFlags.get(plan)
  if (byScope === undefined) {
    byScope = new Map()
    rerunFlags.set(plan, byScope)
  }
  let flags = byScope.get(g)
  if (flags === undefined) {
    flags = new Uint8Array(g.members.length)
    for (let i = 0; i < flags.length; i++) {
      // A container the plan enters to re-run some of its body instances re-runs its end only.
      if (rerun.has(g.rerunIds[i]!) || (g.blocks[i] === undefined && rerun.has(NodeId.format(g.ends[i]!)))) flags[i] = 1
    }
    byScope.set(g, flags)
  }
  return flags
}

// Where each counter of a scope instance starts in its `counts`, in multiples of its member count.
const LIVE_IN = 1
const BLOCKED_IN = 2
const READY = 3

/**
 * One scope instance (the top level, one iteration of a loop, one branch of a parallel) in waves:
 * plain JavaScript over the scope graph's member positions, its state in typed arrays. Each wave
 * decides every ready member synchronously (`prepare`: blocked, reused, skipped, failed on an
 * unresolved reference, cut off, parked, or started), writes what the last wave settled together
 * with the starts of this one in one journal call, then launches the started handlers (and the
 * containers and intrinsic blocks, as effects) on the scheduling core and settles what ended.
 * Handlers hold one of the execution's permits while they run.
 */
class Instance {
  readonly n: number
  readonly keys: ReadonlyArray<string>
  /** This instance's records, by member position. */
  readonly records: State.Records
  /** Per member: 1 when the plan re-runs it. */
  readonly rerun: Uint8Array
  /** Where a member settles synchronously (`at`): one object, rewritten for each member. */
  private readonly here: { key: string; node: string; pos: number; readonly records: State.Records; readonly prior: State.Records | undefined }
  /** The handler settled last in the completions being settled (the diagnostics keep only the last). */
  lastCompleted: NodeContext | undefined = undefined
  /** A time read since the instance last waited, still good for the next wave (no clock read per wave). */
  known: number | undefined = undefined
  /**
   * The instance's counters in one array (a small typed array costs about 240 bytes: a parallel of
   * 10^4 branches makes 10^4 instances), `n` entries each, at these offsets:
   * - `0`: per member, in-scope predecessors not yet done;
   * - `n` (`LIVE_IN`): per member, live incoming edges so far;
   * - `2n` (`BLOCKED_IN`): per member, 1 once a predecessor is blocked behind a dormant node;
   * - `3n` (`READY`): members whose predecessors are done, in the order they became so (each
   *   once: `tail` of them); decided from `head` on.
   */
  readonly counts: Int32Array
  head = 0
  tail = 0
  /** Members done (settled, reused, blocked or not part of the plan). */
  done = 0
  b: State.Batch = State.batch()
  /**
   * The handlers this wave starts: the first `waveSize` (the array is kept from wave to wave; what
   * lies past `waveSize` is stale). Their `Started` entries go to the batch's entries.
   */
  readonly wave: Array<NodeContext> = []
  waveSize = 0
  /** Wakes the drive while it waits (`waiting`). */
  wake: (() => void) | undefined = undefined
  /** Members decided to run as effects, launched once what this wave settled is queued (their own writes and events go after it). */
  units: Array<number> = []
  unitEffects: Array<Effect.Effect<void, State.StoreError>> = []
  readonly pool: Pool<Unit, unknown, UnitError>
  /** Made when a member first resolves a reference (blocks without references need none). */
  private environment: Reference.Environment | undefined = undefined
  /** What the handler calls of this instance share (`NodeContext`). */
  readonly shared: Shared

  constructor(
    readonly s: State.State,
    readonly g: ScopeGraph,
    readonly frame: Frame,
    /** The source's records of this scope instance (cutoff, resume, equal outputs). */
    readonly prior: State.Records | undefined,
    fork: (effect: Effect.Effect<unknown, UnitError>) => Fiber.Fiber<unknown, UnitError>
  ) {
    const n = this.n = g.members.length
    this.keys = frame.path.length === 0 ? g.topKeys : g.ends.map((node) => State.keyOf(node, frame.path))
    this.records = frame.records[frame.records.length - 1]!
    this.rerun = rerunOf(s.setup.plan, s.rerun, g)
    this.here = { key: "", node: "", pos: 0, records: this.records, prior }
    this.counts = new Int32Array(4 * n)
    this.counts.set(g.indegree)
    this.pool = new Pool(fork, abortInterrupted)
    this.shared = {
      input: s.setup.input,
      runId: s.setup.runId,
      loop: State.scopeFor(s, frame, "loop"),
      parallel: State.scopeFor(s, frame, "parallel")
    }
  }

  /** Where member `i` settles. */
  place(i: number): State.Place {
    return { key: this.keys[i]!, node: this.g.topKeys[i]!, records: this.records, pos: i, prior: this.prior }
  }

  /**
   * `place(i)` for settling member `i` synchronously (`skipInto`, `failInto`, `completeInto` keep no
   * place): the same object each time, so settling allocates none.
   */
  at(i: number): State.Place {
    const here = this.here
    here.key = this.keys[i]!
    here.node = this.g.topKeys[i]!
    here.pos = i
    return here
  }

  /** Member `i` is done: its outgoing edges are decided, and successors left with none pending become ready. */
  release(i: number): void {
    this.done++
    const { handles, outOffsets, outTargets } = this.g
    const start = outOffsets[i]!
    const end = outOffsets[i + 1]!
    if (start === end) return
    const blocked = this.s.blocked.size > 0 && this.s.blocked.has(this.keys[i]!)
    const record = blocked ? undefined : this.records[i]
    const { counts, n } = this
    for (let k = start; k < end; k++) {
      const j = outTargets[k]!
      if (blocked) counts[BLOCKED_IN * n + j] = 1
      else if (record !== undefined && isLive(record.status, record.decision, handles[k])) counts[LIVE_IN * n + j]!++
      if (--counts[j]! === 0) counts[READY * n + this.tail++] = j
    }
  }

  /** Whether deciding member `i` may start a handler (which needs a permit). */
  mayRunHandler(i: number): boolean {
    return this.g.blocks[i] !== undefined && this.g.intrinsic[i] === 0
  }

  /** Decides every ready member it can: a member that may run a handler waits at the head of the queue for a permit. */
  prepare(at: number): void {
    const { permits } = this.s
    while (this.head < this.tail) {
      const i = this.counts[READY * this.n + this.head]!
      if (!permits.free() && this.mayRunHandler(i)) return
      this.head++
      this.decide(i, at)
    }
  }

  /** Member `i` runs as `effect`, launched with the wave's write. */
  unit(i: number, effect: Effect.Effect<void, State.StoreError>): void {
    this.units.push(i)
    this.unitEffects.push(effect)
  }

  /** Decides a member whose in-scope predecessors are done: blocked, reused, skipped, or run. */
  decide(i: number, at: number): void {
    const { frame, g, s } = this
    const key = this.keys[i]!
    if (this.counts[BLOCKED_IN * this.n + i] === 1) {
      s.blocked.add(key)
      return this.release(i)
    }
    if (frame.kept || this.rerun[i] === 0) return this.release(i)
    // A re-run member the plan kept at this instance (its record; a container's end) is reused here:
    // nothing else settles a member before it is decided.
    if (this.records[i] !== undefined) return this.release(i)
    const active = runs(g.indegree[i]!, this.counts[LIVE_IN * this.n + i]!) && g.skipped[i] === 0
    const block = g.blocks[i]
    if (block === undefined) return this.unit(i, runContainer(s, g.members[i]!, frame, active, runScope))
    if (!active) {
      State.skipInto(s, this.b, this.at(i), g.definitions[i]!, at)
      return this.release(i)
    }
    this.runBlock(i, block, key, at)
  }

  /** An active block member: failed on an unresolved reference, reused, parked, run by the engine or started. */
  runBlock(i: number, block: Workflow.Block, key: string, at: number): void {
    const { g, s } = this
    const { control, runId } = s.setup
    const definition = g.definitions[i]!
    let inputs = g.staticInputs[i]!
    let fingerprints = g.staticFingerprints[i]
    if (fingerprints === undefined) {
      const resolved = resolveInputs(block, block.params ?? emptyParams, this.environment ??= State.envFor(s, this.frame))
      if (Result.isFailure(resolved)) {
        this.b.events.push({ _tag: "NodeStarted", runId, node: key, attempt: 1, at })
        State.failInto(s, this.b, this.at(i), g.errorEdge[i] === 1, resolved.failure, unresolvedFields(definition, at), at)
        return this.release(i)
      }
      inputs = resolved.success
      fingerprints = { definition, inputs: inputsFingerprint(inputs) }
    }
    if (this.reusePrior(i, block, key, fingerprints, at)) return this.release(i)
    if (control.pauseRequested) return this.unit(i, State.parkPaused(s, this.place(i), inputs, fingerprints))
    if (g.intrinsic[i] === 1) {
      const started = { place: this.place(i), id: block.id, inputs, fingerprints, fields: { attempt: 1, inputs, fingerprints, startedAt: at } }
      return this.unit(i, intrinsic(s, block.type, started)!)
    }
    s.permits.take()
    this.wave[this.waveSize++] = new NodeContext(i, inputs, block, key, fingerprints, at, this.shared)
    this.b.entries.push(startedEntry(key, inputs, fingerprints, at))
  }

  /**
   * The fingerprint a block that outputs the run input (`Workflow.outputsRunInput`) outputs in this
   * run: its prior record is reusable only if it output this input.
   */
  private runInputFingerprint(): string {
    return this.inputOutput ??= outputFingerprint(this.s.setup.input)
  }

  private inputOutput: string | undefined = undefined

  /**
   * A resume never executes a node the run already completed with these inputs; early cutoff
   * reuses a run-from node nothing it reads changed for. Whether either applied.
   */
  reusePrior(i: number, block: Workflow.Block, key: string, fingerprints: Snapshot.Fingerprints, at: number): boolean {
    const { s } = this
    const { mode, plan, runId } = s.setup
    const prior = this.prior?.[i]
    if (prior === undefined) return false
    const id = block.id
    const same = prior.status === "completed" && prior.fingerprints.definition === fingerprints.definition &&
      prior.fingerprints.inputs === fingerprints.inputs && State.sameContext(s, id, this.frame)
    if (!same) return false
    if (mode === "resume" && !s.setup.dormant.has(key)) {
      this.records[i] = prior
      this.b.events.push({ _tag: "NodeReused", runId, node: key, from: prior.reusedFrom ?? runId, reasons: ["completed"], at })
      return true
    }
    if (
      mode === "run-from" && s.setup.cutoff && block.volatile !== true && id !== plan.target &&
      cutoffAllowed(plan.reasons.get(id) ?? []) && !(answering.has(block.type) && State.upstreamDiffered(s, id)) &&
      !(Workflow.outputsRunInput(block) && prior.fingerprints.output !== this.runInputFingerprint())
    ) {
      this.records[i] = prior
      const from = s.setup.sourceRun ?? s.setup.source?.runId
      this.b.entries.push({ _tag: "Reused", node: key, from, record: prior, reasons: ["cutoff"] })
      this.b.events.push({ _tag: "NodeReused", runId, node: key, from: prior.reusedFrom ?? from, reasons: ["cutoff"], at })
      return true
    }
    return false
  }

  /** Settles a unit that ended; the cause of a unit that failed the execution (a store failure), else `undefined`. */
  complete(unit: Unit, ended: Exit.Exit<unknown, UnitError>, at: number): Cause.Cause<State.StoreError> | undefined {
    if (typeof unit === "number") {
      if (Exit.isFailure(ended)) return ended.cause as Cause.Cause<State.StoreError>
      this.release(unit)
      return undefined
    }
    const { g, s } = this
    s.permits.release()
    // A retry that found the run cancelled (`confirmed`) stopped its attempt, or a holder that
    // fenced itself halted it: the execution stops with it, and the instance did not fail.
    if (
      Exit.isFailure(ended) && (s.setup.control.cancelRequested === true || s.setup.control.lease?.fenced === true) &&
      Cause.hasInterruptsOnly(ended.cause)
    ) {
      return ended.cause as Cause.Cause<State.StoreError>
    }
    // A retry whose lease renewal found the store unavailable past its retries, or the lease lost,
    // stopped its attempt: the execution stops with that store failure, and the instance did not fail.
    const fault = storeFailure(ended)
    if (fault !== undefined) return Cause.fail(fault)
    const i = unit.index
    const exit = storable(unit, ended as Exit.Exit<Handler.Output, BlockError.BlockError>)
    // The context is the settled fields; a block without a handler failed before any call.
    if (unit.attempt === 0) unit.attempt = 1
    if (Exit.isFailure(exit)) State.failInto(s, this.b, this.at(i), g.errorEdge[i] === 1, errorOf(exit.cause), unit, at)
    else {
      const output = this.equalOutput(unit, outputOf(exit.value))
      State.completeInto(s, this.b, this.at(i), output, decisionOf(exit.value), unit, at, this.completedFingerprints(unit, output))
      this.lastCompleted = unit
    }
    this.release(i)
    return undefined
  }

  /**
   * The fingerprints `ctx`'s instance completes with: those it started with, and its output's. A
   * member whose params hold no reference started with its scope graph's static fingerprints, read
   * from there rather than from `ctx.fingerprints` (an object per block, cold by then: a cache miss
   * per node on a chain).
   */
  completedFingerprints(ctx: NodeContext, output: Json): Snapshot.Fingerprints {
    return completedFingerprints(this.g.staticFingerprints[ctx.index] ?? ctx.fingerprints, output)
  }

  /** A per-type equality says a run-from's new output means the old one: the old is kept, so what reads it is unchanged. */
  equalOutput(ctx: NodeContext, output: Json): Json {
    const { s } = this
    if (s.setup.mode !== "run-from") return output
    const equals = s.setup.handlers.equality(ctx.block.type)
    const prior = equals === undefined ? undefined : this.prior?.[ctx.index]
    return prior?.status === "completed" && prior.output !== undefined &&
        prior.fingerprints.definition === this.g.definitions[ctx.index] && equals!(prior.output, output)
      ? prior.output
      : output
  }

  /**
   * Queues what was settled since the last write with the starts of this wave (their events are
   * published once durable), launches the members decided to run as effects, and returns the write:
   * one journal call that the starts wait for, followed by the run's new failures (`undefined`
   * when the store made the call at once and there are none). Without starts or failures the
   * entries go out with a later write.
   */
  flush(): Effect.Effect<void, State.StoreError> | undefined {
    const { b, s } = this
    let written: Effect.Effect<void, State.StoreError> | undefined
    if (b.entries.length > 0 || b.events.length > 0) {
      const events = b.events
      const starting = this.waveSize > 0
      s.writer.queue(b.entries, events.length === 0 ? undefined : publishing(s, events))
      // The writer took the entries and the callback the events: what it took is replaced, empty lists are kept.
      if (b.entries.length > 0) b.entries = []
      if (events.length > 0) b.events = []
      const failures = b.failures
      if (failures.length > 0) b.failures = []
      // Decided now: `drive` runs the write at once (or it was made already: see `Writer.flushNow`).
      if (!starting && failures.length === 0) written = s.writer.later(noEntries)
      else {
        const flushed = s.writer.flushNow(this)
        written = failures.length === 0
          ? flushed
          : flushed === undefined
          ? State.sendFailures(s, failures)
          : Effect.andThen(flushed, State.sendFailures(s, failures))
      }
    }
    if (this.units.length > 0) {
      const units = this.units
      const effects = this.unitEffects
      this.units = []
      this.unitEffects = []
      for (let k = 0; k < units.length; k++) this.pool.launch(units[k]!, effects[k]!)
    }
    return written
  }

  /** Starts the wave's handlers once their starts are durable, unless that write brought a cancel or a pause. */
  launch(): Effect.Effect<void, State.StoreError> | undefined {
    const size = this.waveSize
    this.waveSize = 0
    // The write that journaled the starts may have brought a cancel, or outlasted the lease.
    const started = beforeStartOn(this.s.setup.control, this.s.setup.clock)
    if (started === undefined) {
      this.go(this.wave, size)
      return undefined
    }
    const wave = this.wave.slice(0, size)
    return Effect.andThen(started, Effect.sync(() => this.go(wave, size)))
  }

  go(wave: ReadonlyArray<NodeContext>, size: number): void {
    const { s } = this
    const { control, outcome, publish, runId } = s.setup
    // Journaled as started when the write's acknowledgement brought a pause: parked instead (the `Paused` entry replaces the start).
    if (control.pauseRequested) {
      for (let k = 0; k < size; k++) {
        const ctx = wave[k]!
        s.permits.release()
        this.pool.launch(ctx.index, State.parkPaused(s, this.place(ctx.index), ctx.inputs, ctx.fingerprints))
      }
      return
    }
    const announce = s.setup.listening()
    const { singleAttempt, types } = this.g
    for (let k = 0; k < size; k++) {
      const ctx = wave[k]!
      if (announce) publish({ _tag: "NodeStarted", runId, node: ctx.node, attempt: 1, at: ctx.startedAt })
      this.pool.launch(ctx, s.attempts.of(ctx, types[ctx.index]!, singleAttempt[ctx.index] === 1))
    }
    const last = wave[size - 1]!
    outcome.lastStarted = noteLast(outcome.lastStarted, last.node, last.startedAt)
  }

  /**
   * Resumes once a unit ended, or a permit is free for the member waiting at the head of the queue.
   * Made on the first wait: an instance whose units all answered at once never waits.
   */
  get waiting(): Effect.Effect<void> {
    return this.waitingEffect ??= Effect.callback<void>((resume) => {
      let woken = false
      const wake = () => {
        if (woken) return
        woken = true
        this.wake = undefined
        resume(Effect.void)
      }
      this.wake = wake
      if (this.s.writer.failure() !== undefined) return wake()
      this.pool.notify(wake)
      if (this.head < this.tail) this.s.permits.notify(wake)
    })
  }

  private waitingEffect: Effect.Effect<void> | undefined = undefined

  /**
   * Waves until every member is done: decide what is ready, write, launch, wait for a unit, settle
   * what ended. Interruptible only where it waits (for a unit, a permit, or the pacer's turn), so a
   * journal call it makes is never cut short and needs no region of its own (`Writer.flushNow`).
   */
  readonly drive: Effect.Effect<void, State.StoreError> = Effect.uninterruptible(Effect.gen({ self: this }, function*() {
    const { n, pool, s } = this
    const { control } = s.setup
    for (let i = 0; i < n; i++) if (this.counts[i] === 0) this.counts[READY * n + this.tail++] = i
    for (;;) {
      const at = this.known ?? State.now(s)
      this.known = undefined
      const starting = beforeStart(control, at)
      if (starting !== undefined) yield* starting
      this.prepare(at)
      const written = this.flush()
      if (written !== undefined) yield* written
      if (this.waveSize > 0) {
        const launched = this.launch()
        if (launched !== undefined) yield* launched
      }
      if (this.done === n && pool.inflight === 0 && pool.ended === 0) return
      if (pool.ended === 0) {
        if (pool.inflight === 0 && this.head === this.tail) return yield* Effect.die(new Error("a scope instance stalled"))
        yield* Effect.interruptible(this.waiting)
        // A journal call made for queued entries failed while this instance waited: it stops.
        const broken = s.writer.failure()
        if (broken !== undefined) return yield* broken
      }
      const ended = pool.take()
      const settledAt = State.now(s)
      for (let k = 0; k < ended; k++) {
        const failure = this.complete(pool.unitAt(k), pool.exitAt(k), settledAt)
        if (failure !== undefined) return yield* Effect.failCause(failure)
      }
      if (this.lastCompleted !== undefined) {
        const { outcome } = s.setup
        outcome.lastCompleted = noteLast(outcome.lastCompleted, this.lastCompleted.node, settledAt)
        this.lastCompleted = undefined
      }
      const turn = s.pacer.settled(ended)
      // Nothing waited since `settledAt` was read unless the pacer yields: the next wave shares it.
      if (turn !== undefined) yield* Effect.interruptible(turn)
      else this.known = settledAt
    }
  }))
}
