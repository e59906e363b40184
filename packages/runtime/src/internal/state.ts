/**
 * The scope interpreter's execution state and the operations that settle node instances in it:
 * records (the live run state references resolve against: per scope instance, an array by member
 * position, so nothing builds or hashes an instance id to find one — instance ids are made for the
 * journal, events and the plan's and source's snapshots only), what is blocked behind a dormant node,
 * the journal writer, and completing, failing, skipping and parking a node instance. Every function
 * takes the state of one execution (`State`); the interpreter, the containers and the intrinsics
 * share them.
 */
import { Dag, Fingerprint, NodeId, type Plan, Reference, type Snapshot, type Workflow } from "@ripple/core"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type * as Handler from "../Handler.ts"
import type { Mode, RunEvent } from "../RunEvent.ts"
import type * as RunStatus from "../RunStatus.ts"
import type { IllegalTransition, JournalEntry, LeaseLost, RunNotFound, RunStore, StoreUnavailable } from "../RunStore.ts"
import * as Compiled from "./compiled.ts"
import { acknowledge, type Control } from "./control.ts"
import { noteLast, type Outcome } from "./finishing.ts"
import { isObject } from "./json.ts"
import * as Immediate from "./immediate.ts"
import * as JournalWriter from "./journalWriter.ts"
import * as Pacing from "./pacing.ts"
import * as Pool from "./pool.ts"
import { childOf, pauseBranch, register } from "./parking.ts"
import { Attempts, completedEntry, completedFingerprints, failedEntry, type Fields as SettledFields, runFailure, skippedEntry } from "./settling.ts"
import { type Shape, shapeOf } from "./shape.ts"

type Json = Workflow.Json
type Params = { readonly [key: string]: Json }

/** Decides whether a `while` loop runs another iteration, from its resolved condition. */
export type LoopCondition = (input: {
  readonly loop: Workflow.Loop
  readonly definition: string
  readonly condition: Json
  readonly iteration: number
}) => boolean

/** Starts a child run for a `child` node instance: its run id, or why it could not start. */
export type Spawn = (request: {
  readonly node: string
  readonly workflow: Json
  readonly input: Json
}) => Effect.Effect<Result.Result<string, string>, StoreUnavailable>

/** Everything the interpreter needs from the engine. */
export interface Setup {
  readonly runId: string
  readonly mode: Mode
  readonly plan: Plan.Plan
  readonly input: Params
  readonly sourceRun: string | undefined
  /** Run-from: the snapshot planned against (cutoff). Resume: the run's own snapshot (completed nodes are kept). */
  readonly source: Snapshot.Snapshot | undefined
  readonly publish: (event: RunEvent) => void
  /** Whether the events of single nodes are read now (`Engine.Execution.listening`). */
  readonly listening: () => boolean
  readonly control: Control
  /** Branches dormant in the run's machine when the execution began: they stay dormant. */
  readonly dormant: ReadonlySet<string>
  /**
   * A pause request's branch was among them (the run was woken by something else: an approval, a
   * signal, a timer): the pause holds, and the nodes it parks now join that branch.
   */
  readonly paused: boolean
  readonly store: RunStore["Service"]
  readonly handlers: Handler.Handlers["Service"]
  readonly clock: Clock.Clock
  readonly concurrency: number
  readonly tracing: boolean
  readonly cutoff: boolean
  readonly loopCondition: LoopCondition
  /** Caps on what data may expand the run to (`forEach` / `collection` items, referenced counts). */
  readonly limits: Workflow.Limits
  readonly outcome: Outcome
  /** Starts the child run of a `child` node instance (absent: `child` blocks fail). */
  readonly spawn: Spawn | undefined
}

/**
 * The records of one scope instance, by member position (`ScopeGraph.members`): each member's
 * block, or its container's end.
 */
export type Records = Array<Snapshot.NodeRecord | undefined>

/** Where a scope instance runs: the enclosing containers' iterations/branches, outer to inner. */
export interface Frame {
  readonly path: ReadonlyArray<number>
  readonly containers: ReadonlyArray<string>
  readonly items: ReadonlyArray<Json | undefined>
  /** A kept branch of a parallel reset branch by branch: everything in it is reused. */
  readonly kept: boolean
  /** The records of the top level, then of each enclosing scope instance, the last this one's. */
  readonly records: ReadonlyArray<Records>
}

/**
 * A node instance being settled: its instance id, its DAG id, and where its record goes (its scope
 * instance's records and its member position; none for a container's start, which nothing reads back).
 */
export interface Place {
  readonly key: string
  readonly node: string
  readonly records: Records | undefined
  readonly pos: number
  /** The source's records of the same scope instance (`State.priors`), if any. */
  readonly prior: Records | undefined
}

/** The store failures that fail an execution (`LeaseLost`: it stopped, the run is another execution's). */
export type StoreError = RunNotFound | IllegalTransition | StoreUnavailable | LeaseLost

/** What a settled node instance records besides its status. */
export type Fields = SettledFields

/** One execution of the scope interpreter. */
export interface State {
  readonly setup: Setup
  readonly shape: Shape
  /** The run's handler permits (`Setup.concurrency`), shared by its scope instances. */
  readonly permits: Pool.Permits
  /**
   * The live run state, per scope instance (`instanceKey`): the plan's records, then every instance
   * this execution settles.
   */
  readonly instances: Map<string, Records>
  /**
   * The source snapshot's records (`Setup.source`), per scope instance of this workflow like
   * `instances`: what cutoff, resume and the run-from differences compare with.
   */
  readonly priors: ReadonlyMap<string, Records> | undefined
  /** Instances dormant, or behind a dormant one: what depends on them is not decided. */
  readonly blocked: Set<string>
  readonly rerun: ReadonlySet<string>
  /** Parallels the plan resets branch by branch: the branches it resets. */
  readonly partial: ReadonlyMap<string, ReadonlySet<number>>
  readonly waits: ReadonlyMap<string, Snapshot.Wait>
  /** Instances registered with the machine as dormant branches. */
  readonly registered: Set<string>
  /** Deliveries this execution consumed. */
  readonly taken: Set<string>
  /** Run-from: the nodes (DAG ids) of which an instance settled otherwise than in the source. */
  readonly differed: Set<string>
  readonly upstream: Map<string, ReadonlyArray<string>>
  readonly writer: JournalWriter.Writer<StoreError>
  /** The pools of the scope instances running now: what `Guard.halt` interrupts. */
  readonly pools: Set<{ halt(): void }>
  /** Forks a unit of a scope instance with the execution's services (the same for every instance). */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  readonly pacer: Pacing.Pacer
  readonly attempts: Attempts
  /** Body node instances the containers of this execution asked for, against `limits.maxNodes`. */
  expanded: number
  /** Whether a pause request parked a node already (the first stands for the paused branch). */
  pauseBranch: boolean
}

// Once per plan value: a full plan is cached per workflow value, so a workflow started again builds no set.
const rerunSets = new WeakMap<Plan.Plan, ReadonlySet<string>>()
const rerunSet = (plan: Plan.Plan): ReadonlySet<string> => {
  let set = rerunSets.get(plan)
  if (set === undefined) {
    set = new Set(plan.rerun)
    rerunSets.set(plan, set)
  }
  return set
}

/** The state of a new execution; its journal writer's fibers live in `writerScope`. */
export const make = (setup: Setup, writerScope: Scope.Scope): Effect.Effect<State> =>
  Effect.gen(function*() {
    const plan = setup.plan
    const partial = new Map<string, ReadonlySet<number>>()
    for (const reset of plan.resets) {
      if (reset._tag === "parallel" && reset.branches !== "all") partial.set(reset.container, new Set(reset.branches))
    }
    const shape = shapeOf(plan.workflow)
    const now = Immediate.of<StoreError>(setup.store.journal)
    return {
      setup,
      shape,
      permits: new Pool.Permits(setup.concurrency),
      instances: hydrate(plan.state.nodes, shape),
      priors: setup.source === undefined ? undefined : hydrate(setup.source.nodes, shape),
      blocked: new Set(),
      rerun: rerunSet(plan),
      partial,
      waits: new Map(plan.state.waits.map((w) => [w.node, w] as const)),
      registered: new Set(setup.dormant),
      taken: new Set(),
      differed: new Set(),
      upstream: new Map(),
      writer: yield* JournalWriter.make(
        (entries) => setup.store.journal(setup.runId, entries),
        acknowledge(setup.control),
        writerScope,
        now === undefined ? undefined : (entries) => now(setup.runId, entries)
      ),
      pools: new Set(),
      fork: Effect.runForkWith(yield* Effect.context<never>()),
      pacer: Pacing.make(),
      attempts: new Attempts(setup.handlers, setup.control, setup.clock, setup.publish, setup.runId, setup.tracing),
      expanded: 0,
      pauseBranch: setup.paused
    }
  })

/** The key of the scope instance of `scope` (`""`: the top level) at `path`. */
export const instanceKey = (scope: string, path: ReadonlyArray<number>): string => path.length === 0 ? scope : `${scope}@${path.join(".")}`

/** The records of the scope instance of `scope` at `path` (empty until something settles in it). */
export const recordsOf = (s: State, scope: string, path: ReadonlyArray<number>): Records => instanceIn(s.instances, s.shape, scope, path)

const instanceIn = (instances: Map<string, Records>, shape: Shape, scope: string, path: ReadonlyArray<number>): Records => {
  const key = instanceKey(scope, path)
  let records = instances.get(key)
  if (records === undefined) {
    records = new Array((shape.members.get(scope) ?? []).length)
    instances.set(key, records)
  }
  return records
}

// A snapshot's records in the scope instances of this workflow (the one place instance ids are
// parsed). A container's start is not kept: nothing reads it back (what a kept start gave, and a
// source start's items, are read from the snapshot itself).
const hydrate = (nodes: Snapshot.Snapshot["nodes"], shape: Shape): Map<string, Records> => {
  const instances = new Map<string, Records>()
  instanceIn(instances, shape, "", [])
  for (const key in nodes) {
    const parsed = NodeId.parseInstance(key)
    if (Result.isFailure(parsed) || parsed.success.node.kind === "start") continue
    const { node, path } = parsed.success
    const pos = shape.position.get(node.id)
    const chain = shape.chain.get(node.id)
    if (pos === undefined || chain === undefined || (node.kind === "end") !== shape.containers.has(node.id)) continue
    instanceIn(instances, shape, chain.length === 0 ? "" : chain[chain.length - 1]!, path)[pos] = nodes[key]
  }
  return instances
}

/** The frame of the top level. */
export const topFrame = (s: State): Frame => ({ path: [], containers: [], items: [], kept: false, records: [s.instances.get("")!] })

/** The source's records of the scope instance `frame` of `scope`, if any. */
export const priorsOf = (s: State, scope: string, frame: Frame): Records | undefined => s.priors?.get(instanceKey(scope, frame.path))

/** Where the record of member `id` of the scope instance `frame` goes (a block, or a container's end). */
export const placeOf = (s: State, frame: Frame, id: string): Place => {
  const node = endOf(s, id)
  return {
    key: keyOf(node, frame.path),
    node: NodeId.format(node),
    records: frame.records[frame.records.length - 1],
    pos: s.shape.position.get(id)!,
    prior: priorsOf(s, frame.containers[frame.containers.length - 1] ?? "", frame)
  }
}

/** Where a container's start goes (its record is not kept: see `Place`). */
export const startPlace = (frame: Frame, id: string): Place => {
  const node = NodeId.start(id)
  return { key: keyOf(node, frame.path), node: NodeId.format(node), records: undefined, pos: -1, prior: undefined }
}

/** The time on the execution's clock. */
export const now = (s: State): number => s.setup.clock.currentTimeMillisUnsafe()

/** The instance id of `node` at `path`. */
export const keyOf = (node: NodeId.Node, path: ReadonlyArray<number>): string => NodeId.formatInstance({ node, path })

/** The node that settles member `id`: a block, or a container's end. */
export const endOf = (s: State, id: string): NodeId.Node => s.shape.containers.has(id) ? NodeId.end(id) : NodeId.block(id)

/**
 * Published after what is queued before it (completions are announced once durable), so events
 * keep their order.
 */
export const announce = (s: State, event: RunEvent): Effect.Effect<void> => s.writer.later([], () => s.setup.publish(event))

/** References resolve against the live records, in `frame` (and, for a `while` condition, in the loop's own iteration). */
export const envFor = (s: State, frame: Frame, own?: { readonly loop: string; readonly index: number }): Reference.Environment => {
  const { shape } = s
  const innermost = (kind: "loop" | "parallel"): number => {
    for (let i = frame.containers.length - 1; i >= 0; i--) {
      if (shape.containers.get(frame.containers[i]!)?.kind === kind) return i
    }
    return -1
  }
  return {
    blockOutput: (id) => {
      const chain = shape.chain.get(id)
      if (chain === undefined) return undefined
      const ownLoop = own !== undefined && chain[chain.length - 1] === own.loop
      if (chain.some((c, i) => frame.containers[i] !== c) && !ownLoop) return undefined
      const records = ownLoop
        ? s.instances.get(instanceKey(own.loop, [...frame.path.slice(0, chain.length - 1), own.index]))
        : frame.records[chain.length]
      const record = records?.[shape.position.get(id)!]
      if (record === undefined) return undefined
      return record.status === "skipped" ? null : record.output
    },
    input: (key) => s.setup.input[key],
    variable: (name) => s.setup.plan.workflow.variables?.[name],
    index: (scope) => {
      if (own !== undefined && scope === "loop") return own.index
      const i = innermost(scope)
      return i === -1 ? undefined : frame.path[i]
    },
    item: (scope) => {
      const i = innermost(scope)
      return i === -1 ? undefined : frame.items[i]
    }
  }
}

/** What a handler sees of its innermost enclosing loop or parallel. */
export const scopeFor = (s: State, frame: Frame, kind: "loop" | "parallel"): Handler.Scope | undefined => {
  for (let i = frame.containers.length - 1; i >= 0; i--) {
    if (s.shape.containers.get(frame.containers[i]!)?.kind === kind) return { index: frame.path[i]!, item: frame.items[i] ?? null }
  }
  return undefined
}

/** Records a settled instance; in run-from, notes its node when it settled otherwise than in the source. */
export const settle = (s: State, place: Place, record: Snapshot.NodeRecord): void => {
  if (place.records !== undefined) place.records[place.pos] = record
  if (s.setup.mode !== "run-from") return
  const prior = place.records === undefined ? s.setup.source?.nodes[place.key] : place.prior?.[place.pos]
  if (
    prior !== undefined && prior.status === record.status && prior.decision === record.decision &&
    prior.fingerprints.output === record.fingerprints.output
  ) return
  s.differed.add(place.node)
}

/** Whether a node upstream of block `id` differed; every one of them has settled when `id` starts. */
export const upstreamDiffered = (s: State, id: string): boolean => {
  let ids = s.upstream.get(id)
  if (ids === undefined) {
    const dag = Compiled.dagOf(s.setup.plan.workflow)
    const marks = Dag.upstream(dag, [Dag.indexOf(dag, id)!])
    ids = Array.from({ length: dag.size }, (_, i) => Dag.idOf(dag, i)).filter((other, i) => marks[i] === 1 && other !== id)
    s.upstream.set(id, ids)
  }
  return ids.some((other) => s.differed.has(other))
}

/**
 * What node instances settled synchronously leave to write: journal entries, the events to publish
 * once they are durable, and the run failures to send the machine after them.
 */
export interface Batch {
  entries: Array<JournalEntry>
  events: Array<RunEvent>
  failures: Array<Extract<RunStatus.Event, { type: "NODE_FAILED" }>>
}

/** An empty batch. */
export const batch = (): Batch => ({ entries: [], events: [], failures: [] })

/** Publishes a batch's events (once its entries are durable). */
export const publishAll = (s: State, events: ReadonlyArray<RunEvent>): void => {
  for (let i = 0; i < events.length; i++) s.setup.publish(events[i]!)
}

/** Skips an instance into `b` (no live incoming edge). */
export const skipInto = (s: State, b: Batch, place: Place, definition: string, at: number = now(s)): void => {
  settle(s, place, { status: "skipped", attempt: 0, fingerprints: { definition }, finishedAt: at })
  b.entries.push(skippedEntry(place.key, definition, at))
  if (s.setup.listening()) b.events.push({ _tag: "NodeSkipped", runId: s.setup.runId, node: place.key, at })
}

/** Fails an instance into `b`; one without an `"error"` edge (`errorEdge`) fails the run (`NODE_FAILED`). */
export const failInto = (
  s: State,
  b: Batch,
  place: Place,
  errorEdge: boolean,
  error: Snapshot.NodeError,
  fields: Fields,
  at: number = now(s)
): void => {
  const key = place.key
  settle(s, place, { status: "failed", attempt: fields.attempt, fingerprints: fields.fingerprints, error })
  b.entries.push(failedEntry(key, fields.attempt, fields.inputs, fields.fingerprints, error, fields.startedAt, at))
  b.events.push({ _tag: "NodeFailed", runId: s.setup.runId, node: key, attempt: fields.attempt, error, at })
  if (!errorEdge) b.failures.push(runFailure(s.setup.outcome, key, error, at))
}

/**
 * Completes an instance into `b` (the caller notes the run's last completed node: once per batch);
 * `fingerprints`: its `completedFingerprints`, when the caller has them already.
 */
export const completeInto = (
  s: State,
  b: Batch,
  place: Place,
  output: Json,
  decision: string | undefined,
  fields: Fields & { readonly inputs: Json },
  at: number = now(s),
  fingerprints: Snapshot.Fingerprints = completedFingerprints(fields.fingerprints, output)
): void => {
  const key = place.key
  const entry = completedEntry(key, fields.attempt, fields.inputs, fingerprints, output, decision, fields.startedAt, at)
  const { attempt, inputs } = fields
  // Two literal shapes rather than a spread: this runs once per completed block.
  settle(
    s,
    place,
    decision === undefined
      ? { status: "completed", attempt, inputs, output, fingerprints }
      : { status: "completed", attempt, inputs, output, fingerprints, decision }
  )
  b.entries.push(entry)
  if (s.setup.listening()) b.events.push({ _tag: "NodeCompleted", runId: s.setup.runId, node: key, attempt: fields.attempt, decision, at })
}

/** Skips an instance (no live incoming edge); its entry goes out with the next write. */
export const skip = (s: State, place: Place, definition: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const b = batch()
    skipInto(s, b, place, definition)
    return s.writer.later(b.entries, () => publishAll(s, b.events))
  })

/** Fails an instance; one without an `"error"` edge fails the run (`NODE_FAILED`). */
export const failed = (
  s: State,
  place: Place,
  id: string,
  error: Snapshot.NodeError,
  fields: Fields,
  before: ReadonlyArray<JournalEntry> = []
): Effect.Effect<void, StoreError> =>
  Effect.suspend(() => {
    const b: Batch = { entries: [...before], events: [], failures: [] }
    failInto(s, b, place, s.shape.errorEdge.has(id), error, fields)
    return Effect.andThen(s.writer.write(b.entries), Effect.suspend(() => {
      publishAll(s, b.events)
      return sendFailures(s, b.failures)
    }))
  })

/** Sends the run's machine the failures of a batch (once its entries are durable). */
export const sendFailures = (s: State, failures: Batch["failures"]): Effect.Effect<void, StoreError> =>
  failures.length === 0
    ? Effect.void
    : Effect.forEach(failures, (f) => s.setup.store.transition(s.setup.runId, f, f.at), { discard: true })

/** Completes an instance; its entry goes out with the next write (see `JournalWriter`). */
export const completed = (
  s: State,
  place: Place,
  output: Json,
  decision: string | undefined,
  fields: Fields & { readonly inputs: Json },
  before: ReadonlyArray<JournalEntry> = []
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const b: Batch = { entries: [...before], events: [], failures: [] }
    const at = now(s)
    completeInto(s, b, place, output, decision, fields, at)
    s.setup.outcome.lastCompleted = noteLast(s.setup.outcome.lastCompleted, place.key, at)
    return s.writer.later(b.entries, () => publishAll(s, b.events))
  })

/** How an instance goes dormant. */
export type Dormancy =
  | { readonly _tag: "Paused"; readonly reason: string; readonly branch: RunStatus.DormantReason | undefined }
  | { readonly _tag: "Waiting"; readonly wait: Extract<JournalEntry, { _tag: "Waiting" }>["wait"]; readonly branch: RunStatus.DormantReason }

/** Parks an instance: journaled dormant, registered as a dormant branch, blocking what depends on it. */
export const park = (s: State, place: Place, inputs: Json, fingerprints: Snapshot.Fingerprints, dormancy: Dormancy): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const key = place.key
    s.blocked.add(key)
    // A node still dormant in the machine already has its record and its branch.
    if (s.setup.dormant.has(key)) return
    const at = now(s)
    const record: Snapshot.NodeRecord = { status: dormancy._tag === "Paused" ? "paused" : "waiting", attempt: 1, inputs, fingerprints, startedAt: at }
    if (place.records !== undefined) place.records[place.pos] = record
    yield* s.writer.write([
      dormancy._tag === "Paused"
        ? { _tag: "Paused", node: key, inputs, fingerprints, reason: dormancy.reason, at }
        : { _tag: "Waiting", node: key, inputs, fingerprints, wait: dormancy.wait, at }
    ])
    const child = dormancy._tag === "Waiting" && dormancy.wait.kind === "signal" ? childOf(dormancy.wait.signal) : undefined
    const reason = dormancy._tag === "Paused" ? dormancy.reason : child !== undefined ? `child run ${child}` : dormancy.wait.kind
    s.setup.publish({ _tag: "NodeDormant", runId: s.setup.runId, node: key, reason, at })
    if (dormancy.branch !== undefined && !s.registered.has(key)) {
      s.registered.add(key)
      yield* register(s.setup.store, s.setup.runId, key, dormancy.branch, now(s))
    }
  })

/** Parked by a pause request; the first parked node stands for the run's paused branch. */
export const parkPaused = (s: State, place: Place, inputs: Json, fingerprints: Snapshot.Fingerprints): Effect.Effect<void, StoreError> => {
  const first = !s.pauseBranch
  s.pauseBranch = true
  return park(s, place, inputs, fingerprints, {
    _tag: "Paused",
    reason: "paused",
    branch: first ? pauseBranch(place.key) : undefined
  })
}

/** An unconsumed delivery this execution has not taken yet, taken now. */
export const take = (s: State, kind: "signal" | "approval", name: string) =>
  Effect.map(s.setup.store.deliveries(s.setup.runId), (all) => {
    const found = all.find((d) => d.kind === kind && d.name === name && !s.taken.has(`${kind} ${name} ${d.at}`))
    if (found !== undefined) s.taken.add(`${kind} ${name} ${found.at}`)
    return found
  })

/**
 * Whether a prior record of block `id` stands for its instance in `frame`. A handler sees its
 * iteration (`ctx.loop` / `ctx.parallel`) besides its params, so a prior record counts only if it
 * was computed in the same context: the same enclosing containers (ids and kinds, outer to inner)
 * in the source's workflow, the innermost loop and the innermost parallel (what `ctx.loop` and
 * `ctx.parallel` are) giving it the same item, or none in both; the indices are the instance
 * key's path. An outer container's item is invisible to the handler (what the block reads of it
 * is in its resolved inputs), so it is not compared. The prior items are read from the source's
 * container starts (their inputs are the resolved `items`), so stored input fingerprints stay
 * what `Model` writes.
 */
export const sameContext = (s: State, id: string, frame: Frame): boolean => {
  const source = s.setup.source
  const sourceShape = source === undefined ? undefined : shapeOf(source.workflow)
  const before = sourceShape?.chain.get(id)
  if (source === undefined || before === undefined || before.length !== frame.containers.length) return false
  let seenLoop = false
  let seenParallel = false
  for (let d = frame.containers.length - 1; d >= 0; d--) {
    const container = frame.containers[d]!
    const kind = s.shape.containers.get(container)?.kind
    if (before[d] !== container || sourceShape!.containers.get(container)?.kind !== kind) return false
    // Shadowed by an inner container of its kind: the handler cannot see its item.
    if (kind === "loop" ? seenLoop : seenParallel) continue
    if (kind === "loop") seenLoop = true
    else seenParallel = true
    const start = source.nodes[keyOf(NodeId.start(container), frame.path.slice(0, d))]
    const items = isObject(start?.inputs) ? start.inputs["items"] : undefined
    const prior = Array.isArray(items) ? items[frame.path[d]!] : undefined
    const item = frame.items[d]
    // Key order included: the handler sees the item as it is.
    if (prior === undefined || item === undefined ? prior !== item : Fingerprint.hash(prior) !== Fingerprint.hash(item)) return false
  }
  return true
}
