/**
 * The engine's general interpreter: every workflow shape and every plan mode. It walks scopes (the
 * top level, then each container body per iteration or branch) the way `@ripple/core/testing`'s
 * `Model` does, but concurrently: a member of a scope starts when its in-scope predecessors are
 * done, loop iterations run one after the other, parallel branches at once (at most the parallel's
 * `concurrency`), and every handler call holds one permit of the run's concurrency bound.
 *
 * Dormancy: `approval`, `wait` and `sleep` nodes that cannot complete now (and, once a pause is
 * requested, every node reaching its start) are journaled `paused` / `waiting`, registered with
 * `RunStatus` as a dormant branch (`BRANCH_STARTED` + `BRANCH_DORMANT`, one per node instance), and
 * *block* what depends on them: a member with a blocked predecessor is not decided, a container with
 * a blocked body instance does not end. `Plan.resume` re-runs them later.
 *
 * Built by hand: it is the engine itself.
 */
import { Dag, Fingerprint, NodeId, type Plan, Reference, type Snapshot, Workflow } from "@ripple/core"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Builtins from "../Builtins.ts"
import * as Handler from "../Handler.ts"
import type { Mode, RunEvent } from "../RunEvent.ts"
import type * as RunStatus from "../RunStatus.ts"
import type { IllegalTransition, JournalEntry, RunNotFound, RunStore, StoreUnavailable } from "../RunStore.ts"
import { attempts, errorOf, NodeContext, outputFingerprint, storable } from "./attempt.ts"
import * as Compiled from "./compiled.ts"
import { isObject } from "./json.ts"
import * as JournalWriter from "./journalWriter.ts"
import * as Pacing from "./pacing.ts"

type Json = Workflow.Json
type Params = { readonly [key: string]: Json }

/** A loop or parallel of the workflow. */
type Container =
  | { readonly kind: "loop"; readonly loop: Workflow.Loop; readonly definition: string }
  | { readonly kind: "parallel"; readonly parallel: Workflow.Parallel; readonly definition: string }

/** The static shape the interpreter walks, computed once per workflow value. */
interface Shape {
  readonly blocks: ReadonlyMap<string, Workflow.Block>
  readonly definitions: ReadonlyMap<string, string>
  readonly containers: ReadonlyMap<string, Container>
  /** Members of each scope (`""`: the top level) in a stable topological order. */
  readonly members: ReadonlyMap<string, ReadonlyArray<string>>
  /** Incoming edges from the same scope. */
  readonly incoming: ReadonlyMap<string, ReadonlyArray<Workflow.Edge>>
  /** Enclosing containers of every id, outer to inner. */
  readonly chain: ReadonlyMap<string, ReadonlyArray<string>>
  /**
   * Members of a container with no edge to another member, by id (UTF-16 order): what an
   * iteration's output records, in this one key order whatever order they finished in, so a reused
   * body member and a re-run one give the same record.
   */
  readonly exits: ReadonlyMap<string, ReadonlyArray<string>>
  readonly errorEdge: ReadonlySet<string>
}

const shapes = new WeakMap<Workflow.Workflow, Shape>()

const shapeOf = (workflow: Workflow.Workflow): Shape => {
  const cached = shapes.get(workflow)
  if (cached !== undefined) return cached
  const blocks = new Map(workflow.blocks.map((b) => [b.id, b] as const))
  const definitions = new Map(workflow.blocks.map((b) => [b.id, Fingerprint.ofBlock(b)] as const))
  const containers = new Map<string, Container>()
  for (const loop of workflow.loops ?? []) {
    containers.set(loop.id, { kind: "loop", loop, definition: Fingerprint.ofContainer(loop, "loop") })
  }
  for (const parallel of workflow.parallels ?? []) {
    containers.set(parallel.id, { kind: "parallel", parallel, definition: Fingerprint.ofContainer(parallel, "parallel") })
  }
  for (const [id, c] of containers) definitions.set(id, c.definition)
  const parent = new Map<string, string>()
  for (const [id, c] of containers) for (const m of c.kind === "loop" ? c.loop.body : c.parallel.body) parent.set(m, id)
  const all = [...workflow.blocks.map((b) => b.id), ...containers.keys()]
  const chain = new Map<string, Array<string>>()
  for (const id of all) {
    const list: Array<string> = []
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) list.unshift(p)
    chain.set(id, list)
  }
  const incoming = new Map<string, Array<Workflow.Edge>>()
  const hasOutgoingInScope = new Set<string>()
  const errorEdge = new Set<string>()
  for (const edge of workflow.edges) {
    if (edge.handle === "error") errorEdge.add(edge.source)
    if ((parent.get(edge.source) ?? "") !== (parent.get(edge.target) ?? "")) continue
    incoming.set(edge.target, [...(incoming.get(edge.target) ?? []), edge])
    hasOutgoingInScope.add(edge.source)
  }
  const byScope = new Map<string, Array<string>>()
  for (const id of all) {
    const scope = parent.get(id) ?? ""
    byScope.set(scope, [...(byScope.get(scope) ?? []), id])
  }
  const members = new Map<string, ReadonlyArray<string>>()
  for (const [scope, list] of byScope) members.set(scope, ordered(list, incoming))
  const exits = new Map<string, ReadonlyArray<string>>()
  for (const id of containers.keys()) exits.set(id, (members.get(id) ?? []).filter((m) => !hasOutgoingInScope.has(m)).sort())
  const shape: Shape = { blocks, definitions, containers, members, incoming, chain, exits, errorEdge }
  shapes.set(workflow, shape)
  return shape
}

/** Kahn's algorithm over one scope, ties broken by declaration order. */
const ordered = (list: ReadonlyArray<string>, incoming: ReadonlyMap<string, ReadonlyArray<Workflow.Edge>>) => {
  const position = new Map(list.map((id, i) => [id, i] as const))
  const indegree = new Map(list.map((id) => [id, (incoming.get(id) ?? []).length] as const))
  const outgoing = new Map<string, Array<string>>()
  for (const id of list) for (const e of incoming.get(id) ?? []) outgoing.set(e.source, [...(outgoing.get(e.source) ?? []), id])
  const ready = list.filter((id) => indegree.get(id) === 0)
  const out: Array<string> = []
  while (ready.length > 0) {
    ready.sort((a, b) => position.get(a)! - position.get(b)!)
    const id = ready.shift()!
    out.push(id)
    for (const t of outgoing.get(id) ?? []) {
      const left = indegree.get(t)! - 1
      indegree.set(t, left)
      if (left === 0) ready.push(t)
    }
  }
  return out
}

/** Asks a running execution to park, or to stop, at the next node boundary. */
export interface Control {
  pauseRequested: boolean
  /** A cancel was requested (a journal acknowledgement or a lease renewal said so): no block starts any more. */
  cancelRequested?: boolean
  /**
   * What an interruption of the execution means. `true` (or no control at all): a cancel, and the
   * run ends `cancelled`. `false`: the process is going away (a layer or worker shutting down), so
   * the run is left as it is, `running`, and any later process resumes it like a crashed run.
   */
  cancelOnInterrupt?: boolean
  /** The lease the execution holds (`Lease.hold`); absent: an unleased execution (tests, benchmarks). */
  lease?: Guard
}

/** A held lease as the engine checks it: blocks start before `expiresAt`, or once `confirm` renewed it. */
export interface Guard {
  expiresAt: number
  /** Renews the lease (moving `expiresAt`, taking the run's requests); dies with `LeaseLost` if it was taken. */
  readonly confirm: Effect.Effect<void, StoreUnavailable>
}

/**
 * Journal writes of one execution that honour stored pause and cancel requests: every write is
 * acknowledged with the run's requests, so one asked for from another process is seen at the next
 * node boundary (shared by the fast path and the scope interpreter).
 */
export const acknowledged = (store: RunStore["Service"], runId: string, control: Control) =>
(entries: ReadonlyArray<JournalEntry>): Effect.Effect<void, RunNotFound | StoreUnavailable> =>
  Effect.map(store.journal(runId, entries), (ack) => {
    if (ack.pauseRequested) control.pauseRequested = true
    if (ack.cancelRequested) control.cancelRequested = true
  })

// A cancel request ends the execution as an interruption does: the engine's interruption handler
// ends the run `cancelled` (whatever the caller said interruptions mean).
const stop = (control: Control): Effect.Effect<never> =>
  Effect.suspend(() => {
    control.cancelOnInterrupt = true
    return Effect.interrupt
  })

/**
 * `beforeStart` for a retry of a handler, inside its attempt: a store that stays unavailable
 * there fails the attempt as a defect (the attempt has no channel for store errors).
 */
export const retryable = (control: Control, now: number): Effect.Effect<void> | undefined => {
  const check = beforeStart(control, now)
  return check === undefined ? undefined : Effect.orDie(check)
}

/**
 * What must happen before a block starts, checked again after the write that starts it: nothing
 * (`undefined`, the common case: two field reads), the end of the execution when a cancel was
 * requested, or a renewal of a lease past its expiry (which dies with `LeaseLost` if it was taken,
 * and may bring a cancel request).
 */
export const beforeStart = (control: Control, now: number): Effect.Effect<void, StoreUnavailable> | undefined => {
  if (control.cancelRequested === true) return stop(control)
  const lease = control.lease
  if (lease === undefined || now < lease.expiresAt) return undefined
  return Effect.andThen(lease.confirm, Effect.suspend(() => control.cancelRequested === true ? stop(control) : Effect.void))
}

/** Decides whether a `while` loop runs another iteration, from its resolved condition. */
export type LoopCondition = (input: {
  readonly loop: Workflow.Loop
  readonly definition: string
  readonly condition: Json
  readonly iteration: number
}) => boolean

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
  readonly control: Control
  /** Branches dormant in the run's machine when the execution began: they stay dormant. */
  readonly dormant: ReadonlySet<string>
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

/** Starts a child run for a `child` node instance: its run id, or why it could not start. */
export type Spawn = (request: {
  readonly node: string
  readonly workflow: Json
  readonly input: Json
}) => Effect.Effect<Result.Result<string, string>, StoreUnavailable>

/** The internal signal a child run's end is delivered as to its parent. */
export const childSignal = (childRun: string): string => `${childPrefix}${childRun}`

const childPrefix = "child "

/** What the engine needs to finalize the run; filled in as the execution goes (it survives an interruption). */
export interface Outcome {
  failures: number
  readonly messages: Array<string>
  lastStarted: { node: string; at: number } | undefined
  lastCompleted: { node: string; at: number } | undefined
}

interface Frame {
  readonly path: ReadonlyArray<number>
  readonly containers: ReadonlyArray<string>
  readonly items: ReadonlyArray<Json | undefined>
  /** A kept branch of a parallel reset branch by branch: everything in it is reused. */
  readonly kept: boolean
}

type StoreError = RunNotFound | IllegalTransition | StoreUnavailable

const cutoffReasons: ReadonlySet<string> = new Set(["downstream", "container-reset"])

// Blocks that stand for a person or a system answering what reached them: cut off only while
// nothing upstream of them came out differently, or they would pass on what nobody saw.
const answering: ReadonlySet<string> = new Set(["approval", "wait"])

/**
 * Runs the plan from its hydrated state; resolves when nothing more can run (every scope ended or
 * blocked). Store failures fail it; interruption interrupts every handler.
 */
export const run = (setup: Setup): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const { clock, control, handlers, input, mode, plan, publish, runId, source, store } = setup
    const workflow = plan.workflow
    const shape = shapeOf(workflow)
    // Body node instances the containers of this execution asked for, against `limits.maxNodes`.
    let expanded = 0
    const semaphore = yield* Semaphore.make(setup.concurrency)
    const records = new Map<string, Snapshot.NodeRecord>(Object.entries(plan.state.nodes))
    const blocked = new Set<string>()
    const rerun = new Set(plan.rerun)
    const partial = new Map<string, ReadonlySet<number>>()
    for (const reset of plan.resets) {
      if (reset._tag === "parallel" && reset.branches !== "all") partial.set(reset.container, new Set(reset.branches))
    }
    const waits = new Map(plan.state.waits.map((w) => [w.node, w] as const))
    const registered = new Set(setup.dormant)
    const taken = new Set<string>()
    const outcome = setup.outcome
    let pauseBranch = false
    const now = () => clock.currentTimeMillisUnsafe()
    // Completions, skips and scopes are queued (`later`) and go out with the next start, or shortly
    // after; starts and dormancy wait for their write.
    const writerScope = yield* Scope.make()
    const writer = yield* JournalWriter.make<StoreError>(acknowledged(store, runId, control), writerScope)
    const write = writer.write
    // Published after what is queued before it (completions are announced once durable), so events
    // keep their order.
    const announce = (event: RunEvent) => writer.later([], () => publish(event))
    const keyOf = (node: NodeId.Node, path: ReadonlyArray<number>) => NodeId.formatInstance({ node, path })
    // A retry is a start of the block too: not after a cancel, nor without the lease.
    const beforeRetry = () => retryable(control, now())
    const pacer = Pacing.make()
    const endOf = (id: string): NodeId.Node => shape.containers.has(id) ? NodeId.end(id) : NodeId.block(id)

    // Reused records are written once, up front, unless the plan continues this very run (its journal has them).
    const producer = setup.sourceRun ?? plan.state.runId
    if (mode !== "resume" || producer !== runId) {
      const entries: Array<JournalEntry> = []
      const at = now()
      for (const [node, record] of records) {
        const id = NodeId.parseInstance(node)
        const explained = Result.isSuccess(id) ? (plan.reasons[NodeId.format(id.success.node)] ?? []).map((r) => r._tag) : []
        const reasons = explained.length === 0 ? ["unchanged"] : explained
        entries.push({ _tag: "Reused", node, from: producer, record, reasons })
        publish({ _tag: "NodeReused", runId, node, from: record.reusedFrom ?? producer, reasons, at })
      }
      for (const [scope, loop] of Object.entries(plan.state.loops)) entries.push({ _tag: "Scope", scope, scopeOf: { _tag: "loop", loop } })
      for (const [scope, parallel] of Object.entries(plan.state.parallels)) {
        entries.push({ _tag: "Scope", scope, scopeOf: { _tag: "parallel", parallel } })
      }
      if (entries.length > 0) yield* writer.later(entries)
    }

    const envFor = (frame: Frame, own?: { readonly loop: string; readonly index: number }): Reference.Environment => {
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
          const path = ownLoop ? [...frame.path.slice(0, chain.length - 1), own.index] : frame.path.slice(0, chain.length)
          const record = records.get(keyOf(endOf(id), path))
          if (record === undefined) return undefined
          return record.status === "skipped" ? null : record.output
        },
        input: (key) => input[key],
        variable: (name) => workflow.variables?.[name],
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

    const scopeFor = (frame: Frame, kind: "loop" | "parallel"): Handler.Scope | undefined => {
      for (let i = frame.containers.length - 1; i >= 0; i--) {
        if (shape.containers.get(frame.containers[i]!)?.kind === kind) return { index: frame.path[i]!, item: frame.items[i] ?? null }
      }
      return undefined
    }

    const live = (edge: Workflow.Edge, frame: Frame): boolean => {
      const record = records.get(keyOf(endOf(edge.source), frame.path))
      if (record === undefined) return false
      if (edge.handle === "error") return record.status === "failed"
      if (record.status !== "completed") return false
      return record.decision === undefined || edge.handle === undefined || edge.handle === record.decision
    }

    // Run-from: the nodes (DAG ids) of which this execution settled an instance otherwise than the
    // source (status, decision or output).
    const differed = new Set<string>()
    const settle = (key: string, record: Snapshot.NodeRecord) => {
      records.set(key, record)
      if (mode !== "run-from") return
      const prior = source?.nodes[key]
      if (
        prior !== undefined && prior.status === record.status && prior.decision === record.decision &&
        prior.fingerprints.output === record.fingerprints.output
      ) return
      const instance = NodeId.parseInstance(key)
      if (Result.isSuccess(instance)) differed.add(NodeId.format(instance.success.node))
    }

    // Whether a node upstream of block `id` differed; every one of them has settled when `id` starts.
    const upstream = new Map<string, ReadonlyArray<string>>()
    const upstreamDiffered = (id: string): boolean => {
      let ids = upstream.get(id)
      if (ids === undefined) {
        const dag = Compiled.dagOf(workflow)
        const marks = Dag.upstream(dag, [Dag.indexOf(dag, id)!])
        ids = Array.from({ length: dag.size }, (_, i) => Dag.idOf(dag, i)).filter((other, i) => marks[i] === 1 && other !== id)
        upstream.set(id, ids)
      }
      return ids.some((other) => differed.has(other))
    }

    const skip = (key: string, definition: string) => {
      const at = now()
      settle(key, { status: "skipped", attempt: 0, fingerprints: { definition }, finishedAt: at })
      return writer.later([{ _tag: "Skipped", node: key, fingerprints: { definition }, at }], () =>
        publish({ _tag: "NodeSkipped", runId, node: key, at }))
    }

    const failed = (
      key: string,
      id: string,
      error: Snapshot.NodeError,
      fields: { readonly attempt: number; readonly inputs: Json | undefined; readonly fingerprints: Snapshot.Fingerprints; readonly startedAt: number },
      before: ReadonlyArray<JournalEntry> = []
    ) =>
      Effect.gen(function*() {
        const at = now()
        settle(key, { status: "failed", attempt: fields.attempt, fingerprints: fields.fingerprints, error })
        yield* write([...before, { _tag: "Failed", node: key, ...fields, error, at }])
        publish({ _tag: "NodeFailed", runId, node: key, attempt: fields.attempt, error, at })
        if (!shape.errorEdge.has(id)) {
          outcome.failures++
          outcome.messages.push(`${key} failed: ${error.message}`)
          yield* store.transition(runId, { type: "NODE_FAILED", node: key, at, error: error.message }, at)
        }
      })

    const completed = (
      key: string,
      output: Json,
      decision: string | undefined,
      fields: { readonly attempt: number; readonly inputs: Json; readonly fingerprints: Snapshot.Fingerprints; readonly startedAt: number },
      before: ReadonlyArray<JournalEntry> = []
    ) =>
      Effect.gen(function*() {
        const at = now()
        const fingerprints = { ...fields.fingerprints, output: outputFingerprint(output) }
        settle(key, {
          status: "completed",
          attempt: fields.attempt,
          inputs: fields.inputs,
          output,
          fingerprints,
          ...(decision === undefined ? {} : { decision })
        })
        yield* writer.later([...before, { _tag: "Completed", node: key, ...fields, output, decision, fingerprints, at }], () =>
          publish({ _tag: "NodeCompleted", runId, node: key, attempt: fields.attempt, decision, at }))
        outcome.lastCompleted = { node: key, at }
      })

    const register = (key: string, reason: RunStatus.DormantReason) =>
      Effect.gen(function*() {
        if (registered.has(key)) return
        registered.add(key)
        const at = now()
        yield* store.transition(runId, { type: "BRANCH_STARTED" }, at)
        yield* store.transition(runId, { type: "BRANCH_DORMANT", branch: key, reason }, at)
      })

    const park = (
      key: string,
      inputs: Json,
      fingerprints: Snapshot.Fingerprints,
      dormancy:
        | { readonly _tag: "Paused"; readonly reason: string; readonly branch: RunStatus.DormantReason | undefined }
        | { readonly _tag: "Waiting"; readonly wait: Extract<JournalEntry, { _tag: "Waiting" }>["wait"]; readonly branch: RunStatus.DormantReason }
    ) =>
      Effect.gen(function*() {
        blocked.add(key)
        // A node still dormant in the machine already has its record and its branch.
        if (setup.dormant.has(key)) return
        const at = now()
        records.set(key, { status: dormancy._tag === "Paused" ? "paused" : "waiting", attempt: 1, inputs, fingerprints, startedAt: at })
        yield* write([
          dormancy._tag === "Paused"
            ? { _tag: "Paused", node: key, inputs, fingerprints, reason: dormancy.reason, at }
            : { _tag: "Waiting", node: key, inputs, fingerprints, wait: dormancy.wait, at }
        ])
        const reason = dormancy._tag === "Paused"
          ? dormancy.reason
          : dormancy.wait.kind === "signal" && dormancy.wait.signal.startsWith(childPrefix)
          ? `child run ${dormancy.wait.signal.slice(childPrefix.length)}`
          : dormancy.wait.kind
        publish({ _tag: "NodeDormant", runId, node: key, reason, at })
        if (dormancy.branch !== undefined) yield* register(key, dormancy.branch)
      })

    // Parked by a pause request; the first parked node stands for the run's paused branch.
    const parkPaused = (key: string, inputs: Json, fingerprints: Snapshot.Fingerprints) => {
      const first = !pauseBranch
      pauseBranch = true
      return park(key, inputs, fingerprints, {
        _tag: "Paused",
        reason: "paused",
        branch: first ? { _tag: "Pause", node: key, reason: "paused" } : undefined
      })
    }

    /** An unconsumed delivery this execution has not taken yet, taken now. */
    const take = (kind: "signal" | "approval", name: string) =>
      Effect.map(store.deliveries(runId), (all) => {
        const found = all.find((d) => d.kind === kind && d.name === name && !taken.has(`${kind} ${name} ${d.at}`))
        if (found !== undefined) taken.add(`${kind} ${name} ${found.at}`)
        return found
      })

    // A handler sees its iteration (`ctx.loop` / `ctx.parallel`) besides its params, so a prior record
    // stands for this instance only if it was computed in the same context: the same enclosing
    // containers (ids and kinds, outer to inner) in the source's workflow, each giving it the same
    // item, or none in both; the indices are the instance key's path. The prior items are read from
    // the source's container starts (their inputs are the resolved `items`), so stored input
    // fingerprints stay what `Model` writes.
    const sourceShape = source === undefined ? undefined : shapeOf(source.workflow)
    const sameContext = (id: string, frame: Frame): boolean => {
      const before = sourceShape?.chain.get(id)
      if (source === undefined || before === undefined || before.length !== frame.containers.length) return false
      for (let d = 0; d < frame.containers.length; d++) {
        const container = frame.containers[d]!
        if (before[d] !== container || sourceShape!.containers.get(container)?.kind !== shape.containers.get(container)?.kind) return false
        const start = source.nodes[keyOf(NodeId.start(container), frame.path.slice(0, d))]
        const items = isObject(start?.inputs) ? start.inputs["items"] : undefined
        const prior = Array.isArray(items) ? items[frame.path[d]!] : undefined
        const item = frame.items[d]
        // Key order included: the handler sees the item as it is.
        if (prior === undefined || item === undefined ? prior !== item : Fingerprint.hash(prior) !== Fingerprint.hash(item)) return false
      }
      return true
    }

    const runBlock = (block: Workflow.Block, frame: Frame, active: boolean): Effect.Effect<void, StoreError> =>
      Effect.gen(function*() {
        const id = block.id
        const key = keyOf(NodeId.block(id), frame.path)
        const definition = shape.definitions.get(id)!
        if (!active) return yield* skip(key, definition)
        const params: Params = block.params ?? {}
        const startedAt = now()
        const resolved = Reference.resolve(params, envFor(frame))
        if (Result.isFailure(resolved)) {
          yield* announce({ _tag: "NodeStarted", runId, node: key, attempt: 1, at: startedAt })
          return yield* failed(key, id, { message: `unresolved ${resolved.failure.reference} (${resolved.failure.reason})`, retryable: false }, {
            attempt: 1,
            inputs: undefined,
            fingerprints: { definition },
            startedAt
          })
        }
        const inputs = resolved.success as Params
        const fingerprint = Fingerprint.hash(inputs)
        const fingerprints: Snapshot.Fingerprints = { definition, inputs: fingerprint }
        const prior = source?.nodes[key]
        const same = prior !== undefined && prior.status === "completed" && prior.fingerprints.definition === definition &&
          prior.fingerprints.inputs === fingerprint && sameContext(id, frame)
        // A resume never executes a node the run already completed with these inputs.
        if (mode === "resume" && same && !setup.dormant.has(key)) {
          records.set(key, prior)
          publish({ _tag: "NodeReused", runId, node: key, from: prior.reusedFrom ?? runId, reasons: ["completed"], at: startedAt })
          return
        }
        // Early cutoff: nothing this node reads changed, so its prior output still stands.
        if (
          mode === "run-from" && setup.cutoff && same && block.volatile !== true && id !== plan.target &&
          (plan.reasons[id] ?? []).every((r) => cutoffReasons.has(r._tag)) && !(answering.has(block.type) && upstreamDiffered(id))
        ) {
          records.set(key, prior)
          const from = setup.sourceRun ?? source?.runId
          return yield* writer.later([{ _tag: "Reused", node: key, from, record: prior, reasons: ["cutoff"] }], () =>
            publish({ _tag: "NodeReused", runId, node: key, from: prior.reusedFrom ?? from, reasons: ["cutoff"], at: startedAt }))
        }
        const starting = beforeStart(control, startedAt)
        if (starting !== undefined) yield* starting
        if (control.pauseRequested) return yield* parkPaused(key, inputs, fingerprints)
        const fields = { attempt: 1, inputs, fingerprints, startedAt }
        switch (block.type) {
          case "approval": {
            const decision = setup.dormant.has(key) ? undefined : yield* take("approval", key)
            if (decision !== undefined) {
              const consumed: JournalEntry = { _tag: "Consumed", kind: "approval", name: key }
              const payload = isObject(decision.payload) ? decision.payload : {}
              if (payload["approved"] === true) return yield* completed(key, payload["payload"] ?? null, undefined, fields, [consumed])
              const reason = typeof payload["reason"] === "string" ? payload["reason"] : "no reason given"
              return yield* failed(key, id, { message: `rejected: ${reason}`, retryable: false }, fields, [consumed])
            }
            const reason = typeof inputs["reason"] === "string" ? inputs["reason"] : "approval"
            return yield* park(key, inputs, fingerprints, { _tag: "Paused", reason, branch: { _tag: "Approval", node: key } })
          }
          case "wait": {
            const signal = inputs["signal"]
            if (typeof signal !== "string") {
              return yield* failed(key, id, { message: `wait block ${id}: param "signal" must be a string`, retryable: false }, fields)
            }
            const delivery = setup.dormant.has(key) ? undefined : yield* take("signal", signal)
            if (delivery !== undefined) {
              return yield* completed(key, delivery.payload, undefined, fields, [{ _tag: "Consumed", kind: "signal", name: signal }])
            }
            return yield* park(key, inputs, fingerprints, {
              _tag: "Waiting",
              wait: { kind: "signal", signal },
              branch: { _tag: "Signal", node: key, signal }
            })
          }
          case "child": {
            // The child started by an earlier execution of this run is awaited, never started twice.
            let signal = waits.get(key)?.signal
            if (signal === undefined) {
              if (setup.spawn === undefined) {
                return yield* failed(key, id, { message: `child block ${id}: child runs need the Runs service`, retryable: false }, fields)
              }
              const spawned = yield* setup.spawn({ node: key, workflow: inputs["workflow"] ?? null, input: inputs["input"] ?? {} })
              if (Result.isFailure(spawned)) {
                return yield* failed(key, id, { message: `child block ${id}: ${spawned.failure}`, retryable: false }, fields)
              }
              signal = childSignal(spawned.success)
            }
            const delivery = setup.dormant.has(key) ? undefined : yield* take("signal", signal)
            if (delivery !== undefined) {
              const consumed: JournalEntry = { _tag: "Consumed", kind: "signal", name: signal }
              const payload = isObject(delivery.payload) ? delivery.payload : {}
              if (payload["status"] === "completed") return yield* completed(key, payload["output"] ?? null, undefined, fields, [consumed])
              return yield* failed(key, id, {
                message: `child run ${signal.slice("child ".length)} ${String(payload["status"])}${typeof payload["error"] === "string" ? `: ${payload["error"]}` : ""}`,
                retryable: false
              }, fields, [consumed])
            }
            return yield* park(key, inputs, fingerprints, {
              _tag: "Waiting",
              wait: { kind: "signal", signal },
              branch: { _tag: "Signal", node: key, signal }
            })
          }
          case "sleep": {
            const until = inputs["until"]
            const ms = inputs["ms"]
            const wakeAt = waits.get(key)?.wakeAt ??
              (typeof until === "number" ? until : typeof until === "string" ? Date.parse(until) : typeof ms === "number" ? startedAt + ms : Number.NaN)
            if (!Number.isFinite(wakeAt)) {
              return yield* failed(key, id, { message: `sleep block ${id}: needs "ms" (a number) or "until" (epoch ms or an ISO date)`, retryable: false }, fields)
            }
            // A time read through a reference escapes decode's check; past the range of `Date` it could
            // be neither stored as a wake time nor shown.
            if (Math.abs(wakeAt) > Workflow.maxTime) {
              return yield* failed(key, id, { message: `sleep block ${id}: wakes at ${wakeAt}, past the last date (epoch ms ${Workflow.maxTime}, year 275760)`, retryable: false }, fields)
            }
            if (!setup.dormant.has(key) && startedAt >= wakeAt) return yield* completed(key, { wakeAt }, undefined, fields)
            return yield* park(key, inputs, fingerprints, {
              _tag: "Waiting",
              wait: { kind: "timer", wakeAt },
              branch: { _tag: "Sleep", node: key, until: wakeAt }
            })
          }
        }
        yield* semaphore.withPermit(Effect.gen(function*() {
          // Waiting for a permit can outlast a pause request.
          if (control.pauseRequested) return yield* parkPaused(key, inputs, fingerprints)
          const at = now()
          const permitted = beforeStart(control, at)
          if (permitted !== undefined) yield* permitted
          const ctx = new NodeContext(-1, inputs, params, block, input, runId, key, fingerprint, at, scopeFor(frame, "loop"), scopeFor(frame, "parallel"))
          records.set(key, { status: "running", attempt: 1, inputs, fingerprints, startedAt: at })
          yield* write([{ _tag: "Started", node: key, attempt: 1, inputs, fingerprints, at }])
          // The write that started it may have brought a cancel, or taken long enough for the lease to need renewing.
          const started = beforeStart(control, now())
          if (started !== undefined) yield* started
          // The write that started it brought a pause back: parked instead (the `Paused` entry replaces the start).
          if (control.pauseRequested) return yield* parkPaused(key, inputs, fingerprints)
          publish({ _tag: "NodeStarted", runId, node: key, attempt: 1, at })
          outcome.lastStarted = { node: key, at }
          const retrying = (c: NodeContext) => publish({ _tag: "NodeStarted", runId, node: key, attempt: c.attempt + 1, at: now() })
          const exit = storable(
            ctx,
            yield* Effect.exit(
              attempts(handlers.get(block.type), ctx, setup.tracing, retrying, beforeRetry).pipe(
                Effect.onInterrupt(() => Effect.sync(() => ctx.controller?.abort()))
              )
            )
          )
          const done = { attempt: Math.max(1, ctx.attempt), inputs, fingerprints, startedAt: at }
          if (Exit.isFailure(exit)) return yield* failed(key, id, errorOf(exit.cause), done)
          const value = exit.value
          let output = value instanceof Handler.Decision ? value.output : value
          const decision = value instanceof Handler.Decision ? value.handle : undefined
          // A per-type equality says the new output means the old one: keep the old, so what reads it is unchanged.
          const equals = handlers.equality(block.type)
          if (mode === "run-from" && equals !== undefined && prior?.status === "completed" && prior.output !== undefined &&
            prior.fingerprints.definition === definition && equals(prior.output, output)) {
            output = prior.output
          }
          yield* completed(key, output, decision, done)
        }))
        const turn = pacer.settled(1)
        if (turn !== undefined) yield* turn
      })

    const runMember = (id: string, frame: Frame): Effect.Effect<void, StoreError> => {
      const incoming = shape.incoming.get(id) ?? []
      if (incoming.some((e) => blocked.has(keyOf(endOf(e.source), frame.path)))) {
        blocked.add(keyOf(endOf(id), frame.path))
        return Effect.void
      }
      const container = shape.containers.has(id)
      if (frame.kept || !rerun.has(container ? `${id}#start` : id)) return Effect.void
      const active = incoming.length === 0 || incoming.some((e) => live(e, frame))
      const block = shape.blocks.get(id)
      return block !== undefined ? runBlock(block, frame, active) : runContainer(id, frame, active)
    }

    const runScope = (scope: string, frame: Frame): Effect.Effect<void, StoreError> =>
      Effect.suspend(() => {
        const members = shape.members.get(scope) ?? []
        if (members.length === 1) return runMember(members[0]!, frame)
        const done = new Map(members.map((m) => [m, Deferred.makeUnsafe<void>()] as const))
        return Effect.forEach(
          members,
          (id) =>
            // Successors are released only by a member that ended: an interrupted one (a cancel) must
            // not start them while the interruption reaches the fibers one by one.
            Effect.gen(function*() {
              for (const e of shape.incoming.get(id) ?? []) yield* Deferred.await(done.get(e.source)!)
              yield* runMember(id, frame)
              yield* Deferred.succeed(done.get(id)!, undefined)
            }),
          { concurrency: "unbounded", discard: true }
        )
      })

    const runContainer = (id: string, frame: Frame, active: boolean) =>
      Effect.gen(function*() {
        const container = shape.containers.get(id)!
        const definition = container.definition
        const startKey = keyOf(NodeId.start(id), frame.path)
        const endKey = keyOf(NodeId.end(id), frame.path)
        const scopeKey = keyOf(NodeId.block(id), frame.path)
        if (!active) {
          yield* skip(startKey, definition)
          return yield* skip(endKey, definition)
        }
        const config: Record<string, Json> = {}
        const spec = container.kind === "loop" ? container.loop : container.parallel
        if (spec.count !== undefined) config["count"] = spec.count
        if (spec.items !== undefined) config["items"] = spec.items
        const startedAt = now()
        yield* announce({ _tag: "NodeStarted", runId, node: startKey, attempt: 1, at: startedAt })
        const resolved = Reference.resolve(config, envFor(frame))
        const fail = (message: string) =>
          Effect.andThen(
            failed(startKey, id, { message, retryable: false }, { attempt: 1, inputs: undefined, fingerprints: { definition }, startedAt }),
            failed(endKey, id, { message, retryable: false }, { attempt: 1, inputs: undefined, fingerprints: { definition }, startedAt })
          )
        if (Result.isFailure(resolved)) return yield* fail(`unresolved ${resolved.failure.reference} (${resolved.failure.reason})`)
        const values = resolved.success as Record<string, Json>
        const items = Array.isArray(values["items"]) ? values["items"] : undefined
        const count = typeof values["count"] === "number" ? values["count"] : undefined
        if ((spec.items !== undefined && items === undefined) || (spec.count !== undefined && count === undefined)) {
          return yield* fail("count must be a number and items an array")
        }
        // Decode checked what the file states; what data decides is checked here, before any of it runs.
        const size = items?.length ?? Math.max(0, Math.floor(count ?? 0))
        const limit: keyof Workflow.Limits = container.kind === "loop" ? "maxIterations" : "maxBranches"
        const members = (container.kind === "loop" ? container.loop.body : container.parallel.body)
          .reduce((n, m) => n + (shape.containers.has(m) ? 2 : 1), 0)
        const exceeded: { readonly limit: keyof Workflow.Limits; readonly value: number; readonly max: number } | undefined =
          size > setup.limits[limit]
          ? { limit, value: size, max: setup.limits[limit] }
          : expanded + size * members > setup.limits.maxNodes
          ? { limit: "maxNodes", value: expanded + size * members, max: setup.limits.maxNodes }
          : undefined
        if (exceeded !== undefined) {
          return yield* fail(
            `${items !== undefined ? "items" : "count"} of ${id} asks for ${exceeded.value} ${
              exceeded.limit === "maxNodes" ? "expanded nodes" : limit === "maxIterations" ? "iterations" : "branches"
            }, over ${exceeded.limit} (${exceeded.max}); raise it with ${Workflow.limitVariables[exceeded.limit]} or the limits option`
          )
        }
        expanded += size * members
        const valuesFingerprint = Fingerprint.hash(values)
        yield* completed(startKey, values, undefined, {
          attempt: 1,
          inputs: values,
          fingerprints: { definition, inputs: valuesFingerprint },
          startedAt
        })
        const max = container.kind === "loop" ? container.loop.maxIterations ?? Number.POSITIVE_INFINITY : Number.POSITIVE_INFINITY
        const planned = Math.min(items?.length ?? Math.max(0, Math.floor(count ?? 0)), max)
        const exits = shape.exits.get(id) ?? []
        const bodyFrame = (i: number, kept: boolean): Frame => ({
          path: [...frame.path, i],
          containers: [...frame.containers, id],
          items: [...frame.items, items?.[i]],
          kept
        })
        const recordOf = (body: Frame): Record<string, Json> => {
          const record: Record<string, Json> = {}
          for (const exit of exits) {
            const r = records.get(keyOf(endOf(exit), body.path))
            if (r?.status === "completed" && r.output !== undefined) record[exit] = r.output
          }
          return record
        }
        const isBlocked = (body: Frame) => exits.some((exit) => blocked.has(keyOf(endOf(exit), body.path)))
        const outputs: Array<Json> = []
        let stuck = false
        if (container.kind === "loop") {
          const loop = container.loop
          const bound = loop.kind === "while" ? (loop.maxIterations ?? 1) : planned
          for (let i = 0; i < bound; i++) {
            const body = bodyFrame(i, false)
            yield* runScope(id, body)
            if (isBlocked(body)) {
              stuck = true
              break
            }
            outputs.push(recordOf(body))
            if (loop.kind === "while") {
              const condition = Reference.resolve(loop.condition ?? null, envFor(frame, { loop: id, index: i }))
              if (Result.isFailure(condition)) break
              if (!setup.loopCondition({ loop, definition, condition: condition.success, iteration: i })) break
            }
          }
          const scope: Snapshot.LoopScope = { iterations: outputs.length, ...(items === undefined ? {} : { items }), outputs, done: !stuck }
          yield* writer.later([{ _tag: "Scope", scope: scopeKey, scopeOf: { _tag: "loop", loop: scope } }])
        } else {
          const keptBranches = partial.get(id)
          const prior = plan.state.parallels[scopeKey]
          const branches = Array.from({ length: planned }, (_, i) => i)
          const results = yield* Effect.forEach(branches, (i) => {
            const body = bodyFrame(i, keptBranches !== undefined && !keptBranches.has(i))
            return Effect.map(body.kept ? Effect.void : runScope(id, body), (): Json | undefined =>
              isBlocked(body) ? undefined : body.kept ? prior?.outputs[i] ?? recordOf(body) : recordOf(body))
          }, { concurrency: container.parallel.concurrency ?? "unbounded" })
          for (const r of results) {
            if (r === undefined) stuck = true
            outputs.push(r ?? null)
          }
          const scope: Snapshot.ParallelScope = { count: outputs.length, ...(items === undefined ? {} : { items }), outputs, done: !stuck }
          yield* writer.later([{ _tag: "Scope", scope: scopeKey, scopeOf: { _tag: "parallel", parallel: scope } }])
        }
        if (stuck) {
          blocked.add(endKey)
          return
        }
        if (!rerun.has(`${id}#end`)) return
        const endedAt = now()
        yield* announce({ _tag: "NodeStarted", runId, node: endKey, attempt: 1, at: endedAt })
        yield* completed(endKey, outputs, undefined, {
          attempt: 1,
          inputs: outputs,
          fingerprints: { definition, inputs: Fingerprint.hash(outputs) },
          startedAt: endedAt
        })
      })

    yield* runScope("", { path: [], containers: [], items: [], kept: false }).pipe(
      Effect.andThen(writer.flush),
      // Interrupted (cancel, shutdown): what finished is still journaled.
      Effect.onInterrupt(() => Effect.ignore(writer.flush)),
      Effect.ensuring(Scope.close(writerScope, Exit.void))
    )
  })
