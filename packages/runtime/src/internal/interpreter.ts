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
import { NodeId, type Snapshot, type Workflow } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Builtins from "../Builtins.ts"
import type { JournalEntry } from "../RunStore.ts"
import { errorOf, NodeContext, storable } from "./attempt.ts"
import { runContainer } from "./containers.ts"
import { beforeStart } from "./control.ts"
import { reuseReasons, runs } from "./edges.ts"
import { intrinsic } from "./intrinsics.ts"
import { answered, runGraph } from "./pool.ts"
import { cutoffAllowed, decisionOf, inputsFingerprint, outputOf, resolveInputs, startedEntry, unresolvedFields } from "./settling.ts"
import { scopeGraph } from "./shape.ts"
import { isObject } from "./json.ts"
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
 * blocked). Store failures fail it; interruption interrupts every handler.
 */
export const run = (setup: Setup): Effect.Effect<void, State.StoreError> =>
  Effect.gen(function*() {
    // Completions, skips and scopes are queued (`later`) and go out with the next start, or shortly
    // after; starts and dormancy wait for their write.
    const writerScope = yield* Scope.make()
    const s = yield* State.make(setup, writerScope)
    yield* reuse(s)
    yield* runScope(s, "", { path: [], containers: [], items: [], kept: false }).pipe(
      Effect.andThen(s.writer.flush),
      // Interrupted (cancel, shutdown): what finished is still journaled.
      Effect.onInterrupt(() => Effect.ignore(s.writer.flush)),
      Effect.ensuring(Scope.close(writerScope, Exit.void))
    )
  })

// Reused records are written once, up front, unless the plan continues this very run (its journal has them).
const unchangedInstance: ReadonlyArray<string> = ["unchanged"]

const reuse = (s: State.State): Effect.Effect<void> => {
  const { mode, plan, publish, runId } = s.setup
  const producer = s.setup.sourceRun ?? plan.state.runId
  if (mode === "resume" && producer === runId) return Effect.void
  const entries: Array<JournalEntry> = []
  const at = State.now(s)
  for (const [node, record] of s.records) {
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
 * Runs every member of a scope instance, each once its in-scope predecessors are done, on the
 * engine's scheduling core (`pool.ts`): successors are released only by a member that ended, so an
 * interrupted one (a cancel) does not start them while the interruption reaches the others.
 */
const runScope = (s: State.State, scope: string, frame: Frame): Effect.Effect<void, State.StoreError> =>
  Effect.suspend(() => {
    const graph = scopeGraph(s.shape, scope)
    const { members } = graph
    if (members.length === 1) return runMember(s, members[0]!, frame)
    return runGraph(graph, (i) => runMember(s, members[i]!, frame))
  })

/** Decides a member whose in-scope predecessors are done: blocked, reused, skipped or run. */
const runMember = (s: State.State, id: string, frame: Frame): Effect.Effect<void, State.StoreError> => {
  const incoming = s.shape.incoming.get(id) ?? []
  if (incoming.some((e) => s.blocked.has(State.keyOf(State.endOf(s, e.source), frame.path)))) {
    s.blocked.add(State.keyOf(State.endOf(s, id), frame.path))
    return Effect.void
  }
  const container = s.shape.containers.has(id)
  // A container the plan enters to re-run some of its body instances re-runs its end only.
  if (frame.kept || !(s.rerun.has(container ? `${id}#start` : id) || (container && s.rerun.has(`${id}#end`)))) return Effect.void
  // A re-run member the plan kept at this instance (its record; a container's end) is reused here.
  if (s.setup.plan.state.nodes[State.keyOf(State.endOf(s, id), frame.path)] !== undefined) return Effect.void
  let live = 0
  for (const e of incoming) if (State.live(s, e, frame)) live++
  const active = runs(incoming.length, live) && !s.shape.skipped.has(id)
  const block = s.shape.blocks.get(id)
  return block !== undefined ? runBlock(s, block, frame, active) : runContainer(s, id, frame, active, runScope)
}

/** A block instance whose inputs resolved, about to be reused, parked, run by the engine or by its handler. */
interface Resolved {
  readonly block: Workflow.Block
  readonly frame: Frame
  readonly key: string
  readonly inputs: Params
  readonly fingerprints: Snapshot.Fingerprints
  readonly startedAt: number
  readonly prior: Snapshot.NodeRecord | undefined
}

const runBlock = (s: State.State, block: Workflow.Block, frame: Frame, active: boolean): Effect.Effect<void, State.StoreError> =>
  Effect.gen(function*() {
    const { control, runId } = s.setup
    const id = block.id
    const key = State.keyOf(NodeId.block(id), frame.path)
    const definition = s.shape.definitions.get(id)!
    if (!active) return yield* State.skip(s, key, definition)
    const startedAt = State.now(s)
    const resolved = resolveInputs(block.params ?? {}, State.envFor(s, frame))
    if (Result.isFailure(resolved)) {
      yield* State.announce(s, { _tag: "NodeStarted", runId, node: key, attempt: 1, at: startedAt })
      return yield* State.failed(s, key, id, resolved.failure, unresolvedFields(definition, startedAt))
    }
    const inputs = resolved.success
    const fingerprints: Snapshot.Fingerprints = { definition, inputs: inputsFingerprint(inputs) }
    const r: Resolved = { block, frame, key, inputs, fingerprints, startedAt, prior: s.setup.source?.nodes[key] }
    const reused = reusePrior(s, r)
    if (reused !== undefined) return yield* reused
    const starting = beforeStart(control, startedAt)
    if (starting !== undefined) yield* starting
    if (control.pauseRequested) return yield* State.parkPaused(s, key, inputs, fingerprints)
    const byEngine = intrinsic(s, block.type, { key, id, inputs, fingerprints, fields: { attempt: 1, inputs, fingerprints, startedAt } })
    if (byEngine !== undefined) return yield* byEngine
    yield* s.semaphore.withPermit(runHandler(s, r))
    const turn = s.pacer.settled(1)
    if (turn !== undefined) yield* turn
  })

/**
 * A resume never executes a node the run already completed with these inputs; early cutoff reuses
 * a run-from node nothing it reads changed for. `undefined`: neither applies, the node runs.
 */
const reusePrior = (s: State.State, r: Resolved): Effect.Effect<void> | undefined => {
  const { mode, plan, publish, runId } = s.setup
  const { block, key, prior } = r
  const id = block.id
  const same = prior !== undefined && prior.status === "completed" && prior.fingerprints.definition === r.fingerprints.definition &&
    prior.fingerprints.inputs === r.fingerprints.inputs && State.sameContext(s, id, r.frame)
  if (!same) return undefined
  if (mode === "resume" && !s.setup.dormant.has(key)) {
    s.records.set(key, prior)
    publish({ _tag: "NodeReused", runId, node: key, from: prior.reusedFrom ?? runId, reasons: ["completed"], at: r.startedAt })
    return Effect.void
  }
  if (
    mode === "run-from" && s.setup.cutoff && block.volatile !== true && id !== plan.target &&
    cutoffAllowed(plan.reasons[id] ?? []) && !(answering.has(block.type) && State.upstreamDiffered(s, id))
  ) {
    s.records.set(key, prior)
    const from = s.setup.sourceRun ?? s.setup.source?.runId
    return s.writer.later([{ _tag: "Reused", node: key, from, record: prior, reasons: ["cutoff"] }], () =>
      publish({ _tag: "NodeReused", runId, node: key, from: prior.reusedFrom ?? from, reasons: ["cutoff"], at: r.startedAt }))
  }
  return undefined
}

/** Starts a block's handler once it holds a permit: journaled started, every attempt, then settled. */
const runHandler = (s: State.State, r: Resolved): Effect.Effect<void, State.StoreError> =>
  Effect.gen(function*() {
    const { control, handlers, input, mode, outcome, publish, runId } = s.setup
    const { block, fingerprints, inputs, key, prior } = r
    // Waiting for a permit can outlast a pause request.
    if (control.pauseRequested) return yield* State.parkPaused(s, key, inputs, fingerprints)
    const at = State.now(s)
    const permitted = beforeStart(control, at)
    if (permitted !== undefined) yield* permitted
    const ctx = new NodeContext(
      -1,
      inputs,
      block.params ?? {},
      block,
      input,
      runId,
      key,
      fingerprints.inputs ?? "",
      at,
      State.scopeFor(s, r.frame, "loop"),
      State.scopeFor(s, r.frame, "parallel")
    )
    s.records.set(key, { status: "running", attempt: 1, inputs, fingerprints, startedAt: at })
    yield* s.writer.write([startedEntry(key, inputs, fingerprints, at)])
    // The write that started it may have brought a cancel, or taken long enough for the lease to need renewing.
    const started = beforeStart(control, State.now(s))
    if (started !== undefined) yield* started
    // The write that started it brought a pause back: parked instead (the `Paused` entry replaces the start).
    if (control.pauseRequested) return yield* State.parkPaused(s, key, inputs, fingerprints)
    publish({ _tag: "NodeStarted", runId, node: key, attempt: 1, at })
    outcome.lastStarted = { node: key, at }
    const attempted = s.attempts.of(ctx)
    // A handler that answered when called (an Exit) has nothing left to run or interrupt.
    const exit = storable(
      ctx,
      answered(attempted) ?? (yield* Effect.exit(attempted.pipe(Effect.onInterrupt(() => Effect.sync(() => ctx.controller?.abort())))))
    )
    const done = { attempt: Math.max(1, ctx.attempt), inputs, fingerprints, startedAt: at }
    if (Exit.isFailure(exit)) return yield* State.failed(s, key, block.id, errorOf(exit.cause), done)
    let output = outputOf(exit.value)
    const decision = decisionOf(exit.value)
    // A per-type equality says the new output means the old one: keep the old, so what reads it is unchanged.
    const equals = handlers.equality(block.type)
    if (
      mode === "run-from" && equals !== undefined && prior?.status === "completed" && prior.output !== undefined &&
      prior.fingerprints.definition === fingerprints.definition && equals(prior.output, output)
    ) {
      output = prior.output
    }
    yield* State.completed(s, key, output, decision, done)
  })
