/**
 * The run-from-block planner: given the current workflow, the snapshot of a prior run and a target
 * block, decide the smallest set of nodes to re-execute and the state the engine starts from.
 *
 * **Steps** (each exported and tested on its own; `runFrom` composes them)
 *
 * 1. `impact` — everything downstream of the target (all branches of routers and conditions).
 * 2. `diff` — walks down from the roots of the DAG (triggers included), not past the target, and
 *    marks a node changed when its definition differs from the snapshot's frozen workflow, it is
 *    new, its wiring (incoming edges, enclosing container, a router's routes) changed, it has no
 *    prior state, its resolved inputs hash differently, it is `volatile`, it failed or did not
 *    finish last time.
 * 3. `prune` — keeps the changed nodes that are ancestors of an observed output, plus the target.
 *    With a destination (`to`), the destination is the only observed output.
 * 4. `scope` — the downstream closure of those roots, restricted to ancestors of observed outputs
 *    (the target counts as observed), and how each container holding a scope node re-runs
 *    (`Reset`): a `count` / `forEach` loop or a parallel whose start is not in scope is entered (its
 *    end re-runs, its start record is reused) and re-runs *per instance*: a body node re-runs at
 *    the prior run's instances where it changed, or follows one that re-runs in the same iteration
 *    or branch (`Scope.instances`). No iteration can read another — a body reference reads its own
 *    iteration's instance of a body block, or a block before the container (references name DAG
 *    ancestors; the loop's own output follows its body) — so the reused instances are what a full
 *    run computes. A container restarts *whole* (every body node, a loop from iteration 0) when it
 *    is a `while` loop (its condition reads the previous iteration and decides whether the next
 *    runs), its start is in scope (its count or items may change), its end did not finish, or an
 *    enclosing instance restarts whole. A top-level parallel whose only change is its own
 *    `items`/`count` re-runs the branches whose item changed (all when the count changed).
 * 5. `hydrate` — the snapshot state of the reused nodes, and of re-run nodes at the instances where
 *    they do not re-run (pruned nodes and the other instances lose their records, decisions and
 *    pause metadata), and the start queue in stable topological order.
 *
 * **Gotchas**
 *
 * - A run from a block re-uses the prior run's input (`snapshot.input`), unless `input` gives another:
 *   then the nodes reading a changed key are re-resolved like those reading a changed variable.
 * - Resolved inputs are only re-resolved for nodes reading a workflow variable or run input key
 *   whose value changed: every other reference reads the run input (unchanged), a loop/parallel index or item (whose
 *   container is in scope when it changes) or the output of an unchanged ancestor, which is exactly
 *   what the prior run read. The specification planner in the tests re-hashes every input and the
 *   differential property checks both agree.
 * - A disabled block (`Workflow.passThrough`) re-runs like any other block and carries the extra
 *   reason `disabled`: it passes its input on (or, as a sink, is skipped) instead of executing.
 * - Without a snapshot, a run from a block plans over `Snapshot.empty(workflow)`: every node has no
 *   prior state, and what no observed output (or the destination) needs is pruned, exactly as with
 *   an empty snapshot passed explicitly.
 * - Nodes downstream of a change that no observed output depends on are `pruned`: not executed,
 *   and their prior records dropped so no stale output survives. A pruned node that failed last
 *   time is listed in `prunedFailed`: a full run would fail on it where the run-from may complete.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Dag from "./Dag.ts"
import * as Fingerprint from "./Fingerprint.ts"
import * as PlanView from "./internal/planView.ts"
import * as NodeId from "./NodeId.ts"
import * as Reference from "./Reference.ts"
import * as Snapshot from "./Snapshot.ts"
import * as Workflow from "./Workflow.ts"

type Json = Workflow.Json

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/**
 * Why a node re-runs (or would, if it were not pruned). A closed union; `_tag` is kebab-case.
 *
 * @since 0.1.0
 */
export type Reason =
  | { readonly _tag: "target" }
  | { readonly _tag: "definition-changed" }
  | { readonly _tag: "new-block" }
  | { readonly _tag: "wiring-changed" }
  | { readonly _tag: "missing-prior-state" }
  | { readonly _tag: "inputs-changed" }
  | { readonly _tag: "volatile" }
  | { readonly _tag: "failed-last-time" }
  | { readonly _tag: "incomplete" }
  | { readonly _tag: "downstream"; readonly root: string }
  | { readonly _tag: "container-reset"; readonly container: string }
  | { readonly _tag: "disabled" }
  | { readonly _tag: "pinned" }

/**
 * The tag of a `Reason`.
 *
 * @since 0.1.0
 */
export type ReasonTag = Reason["_tag"]

/**
 * Why a container restarts whole, or re-runs per instance.
 *
 * - `while-loop` (whole): its condition reads each iteration's body outputs and decides whether the
 *   next iteration runs, so no iteration can be reused once one re-runs.
 * - `start-changed` (whole): its own `count` / `items` / definition / body changed, or its start has
 *   no finished prior state: the instances themselves may differ.
 * - `upstream-re-runs` (whole): its start follows a node that re-runs, so its `count` / `items` are
 *   evaluated again and the number of instances may change.
 * - `unfinished` (whole): its end did not finish last time (failed, incomplete or missing).
 * - `enclosing-restart` (whole): an enclosing loop or parallel instance restarts whole.
 * - `resume` (whole): a resumed run restarts every container holding a node it re-runs.
 * - `independent-instances` (per instance): a `count` / `forEach` loop or a parallel whose start is
 *   unchanged; no instance reads another (a body reference reads its own iteration or branch, or
 *   what precedes the container), so each body node re-runs only in the instances where it, or
 *   something it follows there, re-runs.
 * - `items-changed` (per instance): a top-level parallel whose only change is its own `items` /
 *   `count`, with the same number of branches: the branches whose item changed re-run.
 *
 * @since 0.1.0
 */
export type RestartCase =
  | "while-loop"
  | "start-changed"
  | "upstream-re-runs"
  | "unfinished"
  | "enclosing-restart"
  | "resume"
  | "independent-instances"
  | "items-changed"

/**
 * How a container re-runs: `whole` (every body node of a re-run instance, a loop from iteration 0)
 * or `per-instance` (a body node instance re-runs only when it, or something it follows in that
 * instance, does; every other instance record is reused from the hydrated state), and why (`RestartCase`).
 * A parallel also lists the branches it re-runs (`all`, or some when only its items changed).
 *
 * @since 0.1.0
 */
export type Reset =
  | {
    readonly _tag: "loop"
    readonly container: string
    readonly restart: "whole" | "per-instance"
    readonly why: RestartCase
  }
  | {
    readonly _tag: "parallel"
    readonly container: string
    readonly branches: "all" | ReadonlyArray<number>
    readonly restart: "whole" | "per-instance"
    readonly why: RestartCase
  }

/**
 * A plan: what to re-run, what to reuse, where to start, and the state to start from.
 *
 * Node lists hold node ids (see `NodeId`) in stable topological order.
 *
 * @since 0.1.0
 */
export interface Plan {
  readonly mode: "full" | "run-from" | "resume"
  /** The workflow the planned run executes. */
  readonly workflow: Workflow.Workflow
  readonly target: string | undefined
  /** The destination (`Options.to`): the only observed output of the planned run, if any. */
  readonly to?: string | undefined
  /** The pinned outputs (`Options.pins`) the planned run writes instead of executing those blocks. */
  readonly pins?: Pins | undefined
  readonly rerun: ReadonlyArray<string>
  readonly reused: ReadonlyArray<string>
  /** Downstream of a change but not needed by any observed output: neither run nor reused. */
  readonly pruned: ReadonlyArray<string>
  /**
   * The instances of pruned nodes whose last known state is `failed`: failed records of the
   * snapshot (in plan order), then failures the snapshot's own run had pruned and that nothing has
   * run since (`Snapshot.pruned`), so a failure is not forgotten by pruning it twice.
   */
  readonly prunedFailed: ReadonlyArray<Snapshot.PrunedFailure>
  /** The ready queue: re-run nodes none of whose predecessors re-run. */
  readonly start: ReadonlyArray<string>
  readonly resets: ReadonlyArray<Reset>
  /**
   * Why each re-run or pruned node is affected: node id → its reasons, in plan order (a reused node
   * has no entry).
   *
   * **Details**
   *
   * A read-only view over the plan's typed arrays, not a stored map: `get` works out one node's
   * reasons when asked (microseconds at 10^6 nodes), iterating works them out node by node, and
   * nothing is kept, so a plan that is never explained does not pay for it.
   *
   * **Gotchas**
   *
   * Not a `Map`: `{ ...plan }` shares the view, `JSON.stringify` writes it as a record of every
   * entry (its `toJSON`), and deep equality (`assert.deepStrictEqual`) compares two views' entries.
   * Nodes with the same reasons may share one frozen list. Reading every entry of a 10^6-node plan
   * costs about what a full `diff` does (a run-from skips diffing much of what it re-runs).
   */
  readonly reasons: ReadonlyMap<string, ReadonlyArray<Reason>>
  /** The hydrated state: the snapshot the engine starts from (reused records only). */
  readonly state: Snapshot.Snapshot
}

/**
 * The target is not a block or container of the workflow.
 *
 * @since 0.1.0
 */
export class UnknownTarget extends Data.TaggedError("UnknownTarget")<{
  readonly target: string
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `unknown target "${this.target}": no block or container has this id`
  }
}

/**
 * The destination (`to`) is not a block or container of the workflow.
 *
 * @since 0.1.0
 */
export class UnknownDestination extends Data.TaggedError("UnknownDestination")<{
  readonly to: string
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `unknown destination "${this.to}": no block or container has this id`
  }
}

/**
 * The destination (`to`) does not depend on the target: a run to it would never run the target.
 *
 * @since 0.1.0
 */
export class DestinationNotDownstream extends Data.TaggedError("DestinationNotDownstream")<{
  readonly target: string
  readonly to: string
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `destination "${this.to}" does not depend on target "${this.target}"`
  }
}

/**
 * A run-from names neither a target nor a destination (`to`): nothing says where to re-run from or
 * what to run to.
 *
 * @since 0.1.0
 */
export class MissingTarget extends Data.TaggedError("MissingTarget")<{
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return "a run from a block needs a target, a destination (to), or both"
  }
}

/**
 * Pinned outputs: a block id (every instance) or a block instance (`<block>@<i>.<j>`) → its output.
 *
 * @since 0.1.0
 */
export type Pins = { readonly [node: string]: Json }

/**
 * A pin that cannot apply: not a block of the workflow, an instance path that does not match the
 * block's containers, or a disabled block (which outputs its input, or nothing).
 *
 * @since 0.1.0
 */
export class InvalidPin extends Data.TaggedError("InvalidPin")<{
  readonly pin: string
  readonly reason: string
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `cannot pin "${this.pin}": ${this.reason}`
  }
}

/**
 * The pin of one block instance: the instance's own pin, else the block's (`undefined`: none).
 *
 * @since 0.1.0
 */
export const pinOf = (pins: Pins | undefined, block: string, path: ReadonlyArray<number>): Json | undefined => {
  if (pins === undefined) return undefined
  if (path.length > 0) {
    const own = pins[NodeId.formatInstance({ node: NodeId.block(block), path })]
    if (own !== undefined) return own
  }
  return pins[block]
}

/** Whether a block has a pin on any of its instances. */
// A snapshot's record or scope by key, own members only: a block named `constructor` or
// `toString` that has no record must not find what every object inherits.
const own = <A>(records: { readonly [key: string]: A }, key: string): A | undefined =>
  Object.hasOwn(records, key) ? records[key] : undefined

const pinnedBlocks = (pins: Pins | undefined): ReadonlySet<string> =>
  new Set(Object.keys(pins ?? {}).map((key) => key.split("@")[0]!))

/**
 * The snapshot was taken from a run of a different workflow.
 *
 * @since 0.1.0
 */
export class SnapshotOfAnotherWorkflow extends Data.TaggedError("SnapshotOfAnotherWorkflow")<{
  readonly expected: string
  readonly found: string
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `the snapshot belongs to workflow "${this.found}", not "${this.expected}"`
  }
}

/**
 * The snapshot cannot be planned from (unknown schema version, malformed value).
 *
 * @since 0.1.0
 */
export class InvalidSnapshot extends Data.TaggedError("InvalidSnapshot")<{
  readonly cause: Snapshot.SnapshotError
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `invalid snapshot: ${this.cause.message}`
  }
}

/**
 * The workflow does not validate.
 *
 * @since 0.1.0
 */
export class InvalidWorkflow extends Data.TaggedError("InvalidWorkflow")<{
  readonly cause: Workflow.WorkflowError
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `invalid workflow: ${this.cause._tag} at ${JSON.stringify(this.path)}`
  }
}

/**
 * Everything planning can report.
 *
 * @since 0.1.0
 */
export type PlanError =
  | UnknownTarget
  | UnknownDestination
  | DestinationNotDownstream
  | MissingTarget
  | SnapshotOfAnotherWorkflow
  | InvalidSnapshot
  | InvalidWorkflow
  | InvalidPin

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

/**
 * What every step reads: the current workflow and its DAG, the snapshot, the target and the nodes
 * observed outputs depend on. Build it with `prepare`.
 *
 * @since 0.1.0
 */
export interface Input {
  readonly workflow: Workflow.Workflow
  readonly dag: Dag.Dag
  readonly snapshot: Snapshot.Snapshot | undefined
  /** The target's node index (a container's `#start`), or -1. */
  readonly target: number
  /** The destination's exit node index (a container's `#end`), or -1 (absent: -1). */
  readonly to?: number | undefined
  /** 1 for ancestors of observed outputs (only the destination, when given) or of the target (inclusive). */
  readonly wanted: Uint8Array
  /** The run input keys whose value differs from the snapshot's (`Options.input`). */
  readonly changedInputs?: ReadonlySet<string> | undefined
  /** The pinned outputs (`Options.pins`). */
  readonly pins?: Pins | undefined
}

/**
 * Options of `runFrom` and `prepare`.
 *
 * @since 0.1.0
 */
export interface Options {
  readonly workflow: Workflow.Workflow
  readonly snapshot?: Snapshot.Snapshot | undefined
  readonly target?: string | undefined
  /** A DAG already built from this workflow by `Dag.fromWorkflow` (skips re-validation). */
  readonly dag?: Dag.Dag | undefined
  /**
   * The run input of the re-run (default: the snapshot's). A node reading a key whose value changed
   * has its inputs resolved again, and re-runs with `inputs-changed` when they differ.
   */
  readonly input?: { readonly [key: string]: Json } | undefined
  /**
   * The destination: a block or container that becomes the only observed output (run to a block).
   * Everything it does not need is pruned; the target, if any, must be one of its ancestors.
   */
  readonly to?: string | undefined
  /**
   * Pinned outputs: a pinned block instance is not executed, its output is the pin. It re-runs
   * (its pin is written) when the pin differs from its prior output, reason `pinned`.
   */
  readonly pins?: Pins | undefined
}

/**
 * Validates the options and computes what every step reads.
 *
 * @since 0.1.0
 */
export const prepare = (options: Options): Result.Result<Input, PlanError> => {
  let dag = options.dag
  if (dag === undefined) {
    const built = Dag.fromWorkflow(options.workflow)
    if (Result.isFailure(built)) {
      return Result.fail(new InvalidWorkflow({ cause: built.failure, path: ["workflow", ...built.failure.path] }))
    }
    dag = built.success
  }
  let snapshot = options.snapshot
  let changedInputs: Set<string> | undefined
  if (snapshot !== undefined) {
    const version: unknown = snapshot.schemaVersion
    if (version !== Snapshot.schemaVersion) {
      const cause = new Snapshot.UnsupportedSchemaVersion({
        found: version,
        supported: [Snapshot.schemaVersion],
        path: ["schemaVersion"]
      })
      return Result.fail(new InvalidSnapshot({ cause, path: ["snapshot", "schemaVersion"] }))
    }
    if (
      typeof snapshot.workflow !== "object" || snapshot.workflow === null || !Array.isArray(snapshot.workflow.blocks) ||
      !Array.isArray(snapshot.workflow.edges)
    ) {
      const cause = new Snapshot.MalformedSnapshot({ reason: "missing frozen workflow", path: ["workflow"] })
      return Result.fail(new InvalidSnapshot({ cause, path: ["snapshot", "workflow"] }))
    }
    if (snapshot.workflow.id !== options.workflow.id) {
      return Result.fail(
        new SnapshotOfAnotherWorkflow({
          expected: options.workflow.id,
          found: snapshot.workflow.id,
          path: ["snapshot", "workflow", "id"]
        })
      )
    }
  }
  let target = -1
  if (options.target !== undefined) {
    const index = entryIndex(dag, options.target)
    if (index === undefined) return Result.fail(new UnknownTarget({ target: options.target, path: ["target"] }))
    target = index
  }
  let to = -1
  if (options.to !== undefined) {
    const index = entryIndex(dag, options.to)
    if (index === undefined) return Result.fail(new UnknownDestination({ to: options.to, path: ["to"] }))
    to = endOf(dag, index)
  }
  const invalid = checkPins(dag, options.pins)
  if (invalid !== undefined) return Result.fail(invalid)
  const wanted = wantedOf(dag, target, to)
  if (to >= 0 && target >= 0 && wanted[target] === 0) {
    return Result.fail(new DestinationNotDownstream({ target: options.target!, to: options.to!, path: ["to"] }))
  }
  if (snapshot !== undefined && options.input !== undefined) {
    changedInputs = changedKeys(snapshot.input, options.input)
    // What the re-run reads: hydrated and resolved with the new input.
    if (changedInputs.size > 0) snapshot = { ...snapshot, input: options.input }
  }
  return Result.succeed({ workflow: options.workflow, dag, snapshot, target, to, wanted, changedInputs, pins: options.pins })
}

const checkPins = (dag: Dag.Dag, pins: Pins | undefined): InvalidPin | undefined => {
  for (const key of Object.keys(pins ?? {})) {
    const fail = (reason: string) => new InvalidPin({ pin: key, reason, path: ["pins", key] })
    const parsed = NodeId.parseInstance(key)
    if (Result.isFailure(parsed) || parsed.success.node.kind !== "block") return fail("not a block id or block instance")
    const { node, path } = parsed.success
    const i = dag.index?.get(node.id)
    const block = i === undefined ? undefined : Dag.blockOf(dag, i)
    if (block === undefined) return fail("no block has this id")
    if (block.disabled === true) return fail("the block is disabled")
    if (block.type === "router" || block.type === "condition") return fail("a router or condition chooses a branch: pin what it leads to")
    const depth = Dag.chainOf(dag, i!).length
    if (path.length !== 0 && path.length !== depth) {
      return fail(`an instance of ${node.id} has ${depth} index${depth === 1 ? "" : "es"} (one per enclosing loop or parallel)`)
    }
  }
  return undefined
}

/** The node a block or container id enters the DAG at (a container's `#start`). */
const entryIndex = (dag: Dag.Dag, id: string): number | undefined =>
  id.includes("#") ? undefined : dag.index?.get(id) ?? dag.index?.get(`${id}#start`)

const changedKeys = (before: { readonly [key: string]: Json }, after: { readonly [key: string]: Json }): Set<string> => {
  const changed = new Set<string>()
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = before[key]
    const b = after[key]
    if (a === undefined || b === undefined || !jsonEqual(a, b)) changed.add(key)
  }
  return changed
}

/** Ancestors of the observed outputs (the destination alone, when given) and of the target's end. */
const wantedOf = (dag: Dag.Dag, target: number, to: number): Uint8Array => {
  // The target must be an ancestor of the destination (`prepare` checks): only the destination counts.
  if (to >= 0) return Dag.upstream(dag, [to])
  const workflow = dag.workflow
  const declared = (workflow?.outputs ?? []).length > 0 || (workflow?.blocks ?? []).some((b) => b.type === "response")
  // With plain sinks observed, every node is an ancestor of one (a finite DAG has no dead ends).
  if (!declared) return new Uint8Array(dag.size).fill(1)
  const observed = Array.from(Dag.observed(dag))
  if (target >= 0) observed.push(endOf(dag, target))
  return Dag.upstream(dag, observed)
}

/**
 * `wanted` grown to whole containers: a container runs as a unit (its sentinels and its whole body
 * for each instance), so one wanted node inside it, or its start, wants all of it. Without this a
 * resumed run-from observing a block inside a loop would leave the loop's end unwanted and never
 * finish the loop.
 */
const wholeContainers = (dag: Dag.Dag, wanted: Uint8Array): Uint8Array => {
  const out = wanted.slice()
  for (const entry of containerIndex(dag).values()) {
    const nodes = [entry.start, entry.end, ...entry.members]
    if (nodes.some((i) => wanted[i] === 1)) for (const i of nodes) out[i] = 1
  }
  return out
}

const endOf = (dag: Dag.Dag, i: number): number => {
  if (Dag.blockOf(dag, i) !== undefined) return i
  const node = Dag.nodeOf(dag, i)
  return node.kind === "start" ? dag.index!.get(`${node.id}#end`)! : i
}

// ---------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------

/**
 * Step 1: the nodes downstream of the target, target included (all zeros without a target).
 *
 * @since 0.1.0
 */
export const impact = (input: Input): Uint8Array =>
  input.target < 0 ? new Uint8Array(input.dag.size) : Dag.downstream(input.dag, [input.target])

/** Reason bits of `Diff.reasons` (one bit per change reason). */
const bits = {
  "definition-changed": 1,
  "new-block": 2,
  "wiring-changed": 4,
  "missing-prior-state": 8,
  "inputs-changed": 16,
  volatile: 32,
  "failed-last-time": 64,
  incomplete: 128,
  pinned: 256
} as const

/**
 * A change reason `diff` can find.
 *
 * @since 0.1.0
 */
export type ChangeTag = keyof typeof bits

const changeTags = Object.keys(bits) as ReadonlyArray<ChangeTag>

/**
 * The result of `diff`: per node index, a bit set of change reasons (0 = unchanged).
 *
 * @since 0.1.0
 */
export interface Diff {
  readonly reasons: Uint16Array
}

/**
 * The change reasons of one node of a `Diff`.
 *
 * @since 0.1.0
 */
export const changesOf = (diff: Diff, index: number): ReadonlyArray<ChangeTag> => {
  const set = diff.reasons[index]!
  return set === 0 ? [] : changeTags.filter((tag) => (set & bits[tag]) !== 0)
}

/** How many blocks `Prior.checkBlocks` checks at once (`diff`, and iterating `Plan.reasons`). */
const BATCH = 1024

/**
 * Step 2: the nodes whose prior state cannot be reused as it is, found by walking down from the
 * DAG's roots without walking past the target. Without a snapshot every node is
 * `missing-prior-state`.
 *
 * @since 0.1.0
 */
export const diff = (input: Input): Diff => {
  const { dag, snapshot, target } = input
  const n = dag.size
  const reasons = new Uint16Array(n)
  if (snapshot === undefined) return { reasons: reasons.fill(bits["missing-prior-state"]) }
  const prior = Prior.make(input.workflow, snapshot, input.changedInputs, input.pins)
  const roots: Array<number> = []
  for (let i = 0; i < n; i++) if (dag.inOffsets[i] === dag.inOffsets[i + 1]) roots.push(i)
  const visited = Dag.downstream(dag, roots, target < 0 ? undefined : { stopAt: (i) => i === target })
  // Blocks in batches (see `Prior.checkBlocks`).
  const batch = new Int32Array(Math.min(n, BATCH))
  const sets = new Int32Array(batch.length)
  let count = 0
  const flush = () => {
    prior.checkBlocks(batch, count, dag, sets)
    for (let b = 0; b < count; b++) reasons[batch[b]!] = sets[b]!
    count = 0
  }
  for (let i = 0; i < n; i++) {
    if (visited[i] === 0 || i === target) continue
    if (Dag.blockOf(dag, i) === undefined) {
      reasons[i] = prior.check(i, Dag.nodeOf(dag, i), dag)
      continue
    }
    batch[count++] = i
    if (count === batch.length) flush()
  }
  flush()
  return { reasons }
}

/**
 * Step 3: the roots of the restart — changed nodes some observed output depends on, plus the target.
 *
 * @since 0.1.0
 */
export const prune = (input: Input, changes: Diff): Uint8Array => {
  const roots = new Uint8Array(input.dag.size)
  for (let i = 0; i < roots.length; i++) {
    if (changes.reasons[i] !== 0 && input.wanted[i] === 1) roots[i] = 1
  }
  if (input.target >= 0) roots[input.target] = 1
  return roots
}

/**
 * The result of `scope`.
 *
 * @since 0.1.0
 */
export interface Scope {
  /** 1 for nodes that re-run. */
  readonly rerun: Uint8Array
  /** 1 for nodes downstream of a root that no observed output needs. */
  readonly pruned: Uint8Array
  /** Per node: the root it is downstream of, or -1; for container-reset nodes, -2 - container start. */
  readonly cause: Int32Array
  readonly resets: ReadonlyArray<Reset>
  /** Partially reset parallels: container id → branches to re-run. */
  readonly branches: ReadonlyMap<string, ReadonlyArray<number>>
  /**
   * Per re-run node inside a container: the instance paths (indices joined by `.`) of the prior
   * run at which it re-runs; `hydrate` keeps its records at the other ones. Absent: every instance.
   */
  readonly instances: ReadonlyMap<number, ReadonlySet<string>>
  /** The stable topological order of the DAG (computed once, reused by `hydrate` and the plan). */
  readonly order: Int32Array
  /**
   * Where each node's `cause` comes from: itself for a root, the predecessor whose cause it took
   * (`>= 0`), `-3 - start` for a node reached from a reset container's end (it takes that
   * container's cause), or -1 (none, or a container reset). Lets a plan find the cause a node
   * would have with more roots without sweeping again (see `reasonsOf`).
   */
  readonly link: Int32Array
}

/**
 * Step 4: the restart scope of the roots (see the module documentation for the container rules).
 *
 * @since 0.1.0
 */
export const scope = (input: Input, roots: Uint8Array, changes?: Diff): Scope =>
  scopeIn(input, roots, changes, Dag.topo(input.dag))

const scopeIn = (
  input: Input,
  roots: Uint8Array,
  changes: Diff | undefined,
  order: Int32Array,
  mode: "per-instance" | "resume" = "per-instance",
  prior?: Prior
): Scope => {
  const { dag, wanted } = input
  const { inOffsets, inSources } = dag
  const n = dag.size
  const containers = containerIndex(dag)
  // Only a parallel can re-run some of its branches.
  const branches = changes === undefined || containers.size === 0
    ? new Map<string, ReadonlyArray<number>>()
    : partialParallels(input, indicesOf(roots), changes)

  // Downstream closure, remembering which root reached each node first (topological sweep).
  const cause = new Int32Array(n).fill(-1)
  const link = new Int32Array(n).fill(-1)
  const mask = new Uint8Array(n)
  for (let k = 0; k < n; k++) {
    const i = order[k]!
    if (roots[i] === 1) {
      mask[i] = 1
      cause[i] = i
      link[i] = i
      continue
    }
    for (let p = inOffsets[i]!; p < inOffsets[i + 1]!; p++) {
      const j = inSources[p]!
      if (mask[j] === 1) {
        // A node of the sweep has a cause (a root) from here on: `j`'s is final.
        mask[i] = 1
        cause[i] = cause[j]!
        link[i] = j
        break
      }
    }
  }

  // Containers that restart whole, and why; the others holding a scope node re-run per instance.
  const whole = new Map<string, RestartCase>()
  const wholeCase = (c: string, entry: ContainerEntry, set: Uint8Array): RestartCase | undefined => {
    // A top-level parallel whose only change is its items re-runs the branches whose item changed.
    if (branches.has(c)) return undefined
    if (mode === "resume") return "resume"
    if (Dag.nodeOf(dag, entry.start).chain.some((outer) => whole.has(outer))) return "enclosing-restart"
    if ((Dag.nodeOf(dag, entry.start).definition as Workflow.Loop).kind === "while" && entry.kind === "loop") return "while-loop"
    if (set[entry.start] === 1) return roots[entry.start] === 1 ? "start-changed" : "upstream-re-runs"
    if (roots[entry.end] === 1) return "unfinished"
    return undefined
  }
  // Resets whole the containers holding a node of `set` that must restart whole (and enters the
  // others: their end joins the set), round by round: with `spread`, what a reset container's end
  // reaches joins the set too.
  const expand = (set: Uint8Array, spread: boolean) => {
    if (containers.size === 0) return
    const done = new Set<string>()
    let fresh = true
    while (fresh) {
      fresh = false
      const ends: Array<number> = []
      const add = (m: number, entry: ContainerEntry) => {
        if (set[m] === 1) return
        set[m] = 1
        fresh = true
        if (cause[m] === -1) cause[m] = -2 - entry.start
      }
      const visit = (c: string) => {
        if (done.has(c)) return
        const entry = containers.get(c)!
        const why = whole.get(c) ?? wholeCase(c, entry, set)
        if (why === undefined) {
          // Per instance: the container is entered (its end re-runs), its other members as they come.
          if (set[entry.end] === 0) ends.push(entry.end)
          add(entry.end, entry)
          return
        }
        done.add(c)
        whole.set(c, why)
        fresh = true
        ends.push(entry.end)
        for (const m of [entry.start, entry.end, ...entry.members]) add(m, entry)
      }
      for (let i = 0; i < n; i++) {
        if (set[i] === 0) continue
        for (const c of Dag.chainOf(dag, i)) visit(c)
        // A sentinel in scope decides its own container (a start re-evaluates its instances).
        if (Dag.blockOf(dag, i) === undefined) visit(Dag.nodeOf(dag, i).id)
      }
      if (spread) {
        for (const end of ends) {
          const start = dag.index!.get(`${Dag.nodeOf(dag, end).id}#start`)!
          const reached = Dag.downstream(dag, [end])
          for (let i = 0; i < n; i++) {
            if (reached[i] === 1 && set[i] === 0) {
              set[i] = 1
              fresh = true
              if (cause[i] === -1) {
                cause[i] = cause[start]! >= 0 ? cause[start]! : -2 - start
                link[i] = -3 - start
              }
            }
          }
        }
      }
    }
  }
  expand(mask, true)
  const rerun = new Uint8Array(n)
  let everyWanted = true
  for (let i = 0; i < n; i++) {
    if (wanted[i] === 0) everyWanted = false
    else if (mask[i] === 1) rerun[i] = 1
  }
  expand(rerun, false)
  // Pruned: downstream of a change (or of a root) but needed by no observed output. A node that an
  // observed output needs and that does not re-run is never downstream of a change: it is reused.
  // With every node wanted (no declared outputs), nothing is.
  const pruned = new Uint8Array(n)
  if (!everyWanted) {
    const unwanted: Array<number> = []
    if (changes !== undefined) for (let i = 0; i < n; i++) if (changes.reasons[i] !== 0 && roots[i] === 0) unwanted.push(i)
    const affected = unwanted.length === 0 ? mask : Dag.downstream(dag, unwanted)
    for (let i = 0; i < n; i++) {
      if ((affected[i] === 1 || mask[i] === 1) && rerun[i] === 0 && wanted[i] === 0) pruned[i] = 1
    }
    if (unwanted.length > 0) causesOfPruned(input, changes!, order, pruned, cause)
  }
  const resets: Array<Reset> = []
  for (const [c, entry] of containers) {
    if (rerun[entry.start] === 0 && rerun[entry.end] === 0) continue
    const partial = branches.get(c)
    const why: RestartCase = whole.get(c) ?? (partial !== undefined ? "items-changed" : "independent-instances")
    const restart = whole.has(c) ? "whole" : "per-instance"
    if (entry.kind === "loop") resets.push({ _tag: "loop", container: c, restart, why })
    else resets.push({ _tag: "parallel", container: c, branches: partial ?? "all", restart, why })
  }
  const instances = input.snapshot === undefined || containers.size === 0
    ? new Map<number, ReadonlySet<string>>()
    : instancesOf(input, { roots, mask, rerun, order, branches, whole, prior })
  return { rerun, pruned, cause, resets, branches, order, link, instances }
}

/**
 * The instances (of the prior run) at which each node inside a container re-runs, in topological
 * order: an instance re-runs when its node is the target, changed at that instance (a change of
 * definition, wiring or `volatile` holds at every instance), follows a re-run instance (in the
 * same iteration or branch; a container's end follows its body's exits in its instances; a body's
 * first members follow the start, every branch of a partial parallel whose item changed), or lies
 * in an instance of a container that restarts whole (every instance whose start re-runs; for a
 * `while` loop, every instance holding a changed node too).
 */
const instancesOf = (
  input: Input,
  planned: {
    readonly roots: Uint8Array
    readonly mask: Uint8Array
    readonly rerun: Uint8Array
    readonly order: Int32Array
    readonly branches: ReadonlyMap<string, ReadonlyArray<number>>
    readonly whole: ReadonlyMap<string, RestartCase>
    readonly prior: Prior | undefined
  }
): Map<number, ReadonlySet<string>> => {
  const { dag, snapshot, target } = input
  const { branches, mask, order, rerun, roots, whole } = planned
  const prior = planned.prior ?? Prior.make(input.workflow, snapshot!, input.changedInputs, input.pins)
  const keyOfPath = (path: ReadonlyArray<number>) => path.join(".")
  const inScope = (i: number) => mask[i] === 1 || rerun[i] === 1
  const pathsOf = (i: number) => Snapshot.instancePaths(snapshot!, Dag.chainOf(dag, i))
  // A changed node's own instances (`all`: every one).
  const own = new Map<number, ReadonlySet<string>>()
  const ownOf = (i: number): ReadonlySet<string> => {
    let found = own.get(i)
    if (found === undefined) {
      const paths = pathsOf(i)
      const changed = i === target ? { all: true, paths: new Set<string>() } : prior.changedInstances(i, dag)
      found = changed.all ? new Set(paths.map(keyOfPath)) : changed.paths
      own.set(i, found)
    }
    return found
  }
  // Instances of each `while` loop holding a changed node (at any depth).
  const touched = new Map<string, Set<string>>()
  for (let i = 0; i < dag.size; i++) {
    if (roots[i] === 0) continue
    const node = Dag.nodeOf(dag, i)
    const chain = Dag.chainOf(dag, i)
    const enclosing = Dag.blockOf(dag, i) === undefined ? [...chain, node.id] : chain
    for (let d = 0; d < enclosing.length; d++) {
      const c = enclosing[d]!
      if (whole.get(c) !== "while-loop") continue
      const set = touched.get(c) ?? new Set<string>()
      touched.set(c, set)
      for (const key of ownOf(i)) set.add(key.split(".").slice(0, d).join("."))
    }
  }
  const dirty = new Map<number, Set<string>>()
  const wholeAt = new Map<string, ReadonlySet<string>>()
  // The enclosing instances (paths without their last index) of a node's re-run instances.
  const parents = new Map<number, Set<string>>()
  const enclosingOf = (j: number, keys: ReadonlySet<string>): ReadonlySet<string> => {
    let found = parents.get(j)
    if (found === undefined) {
      found = new Set<string>()
      for (const key of keys) found.add(key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "")
      parents.set(j, found)
    }
    return found
  }
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!
    if (!inScope(i)) continue
    const chain = Dag.chainOf(dag, i)
    const block = Dag.blockOf(dag, i)
    const node = block === undefined ? Dag.nodeOf(dag, i) : undefined
    const out = new Set<string>()
    if (chain.length === 0) out.add("")
    else {
      const d = chain.length
      const preds: Array<number> = []
      for (let p = dag.inOffsets[i]!; p < dag.inOffsets[i + 1]!; p++) if (inScope(dag.inSources[p]!)) preds.push(dag.inSources[p]!)
      const mine = roots[i] === 1 ? ownOf(i) : undefined
      const partial = branches.get(chain[d - 1]!)
      for (const path of pathsOf(i)) {
        const key = keyOfPath(path)
        let hit = mine?.has(key) === true
        for (let c = 0; c < d && !hit; c++) if (wholeAt.get(chain[c]!)?.has(keyOfPath(path.slice(0, c))) === true) hit = true
        // The end of a container instance that restarts whole.
        if (node?.kind === "end" && wholeAt.get(node.id)?.has(key) === true) hit = true
        for (const j of preds) {
          if (hit) break
          const dj = Dag.chainOf(dag, j).length
          const from = dirty.get(j)
          if (from === undefined) continue
          if (dj === d) hit = from.has(key)
          // The container's start: its first members, in every branch (a partial parallel: those listed).
          else if (dj === d - 1) hit = from.has(keyOfPath(path.slice(0, -1))) && (partial === undefined || partial.includes(path[d - 1]!))
          // A container's end follows its body's exits: re-run when one re-runs in one of its iterations/branches.
          else if (dj === d + 1) hit = enclosingOf(j, from).has(key)
        }
        if (hit) out.add(key)
      }
    }
    if (node?.kind === "start" && whole.has(node.id)) {
      // The instances that restart whole: every one whose start re-runs, or (`while`) holds a change.
      const instances = new Set(out)
      const why = whole.get(node.id)!
      if (why === "resume") for (const path of pathsOf(i)) instances.add(keyOfPath(path))
      for (const key of touched.get(node.id) ?? []) instances.add(key)
      const end = dag.index!.get(`${node.id}#end`)!
      if (roots[end] === 1) for (const key of ownOf(end)) instances.add(key)
      for (const key of instances) out.add(key)
      wholeAt.set(node.id, instances)
    }
    dirty.set(i, out)
  }
  const instances = new Map<number, ReadonlySet<string>>()
  for (const [i, set] of dirty) if (rerun[i] === 1 && Dag.chainOf(dag, i).length > 0) instances.set(i, set)
  return instances
}

// A pruned node the roots' sweep did not reach is downstream of a change that no observed output
// needs: that change is its cause (a changed one is its own), as the sweep would have found it.
const causesOfPruned = (input: Input, changes: Diff, order: Int32Array, pruned: Uint8Array, cause: Int32Array) => {
  const { dag } = input
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!
    if (pruned[i] === 0 || cause[i] !== -1) continue
    if (changes.reasons[i] !== 0) {
      cause[i] = i
      continue
    }
    for (let p = dag.inOffsets[i]!; p < dag.inOffsets[i + 1]!; p++) {
      const j = dag.inSources[p]!
      if (pruned[j] === 1 && cause[j] !== -1) {
        cause[i] = cause[j]!
        break
      }
    }
  }
}

/**
 * The hydrated state and the start queue.
 *
 * @since 0.1.0
 */
export interface Hydrated {
  readonly state: Snapshot.Snapshot
  /** Node indices of the ready queue, in stable topological order. */
  readonly start: Int32Array
}

/**
 * Step 5: the prior state of the reused nodes only (records, container scopes, waits and pauses),
 * and the start queue. Partially reset parallels keep their scope and the records of the branches
 * that are not re-run.
 *
 * @since 0.1.0
 */
export const hydrate = (input: Input, planned: Pick<Scope, "rerun" | "pruned" | "branches" | "order" | "instances">): Hydrated => {
  const { dag, snapshot, workflow } = input
  const n = dag.size
  const { instances, order, pruned, rerun } = planned
  const { inOffsets, inSources } = dag
  const start: Array<number> = []
  for (let k = 0; k < n; k++) {
    const i = order[k]!
    if (rerun[i] === 0) continue
    let ready = true
    for (let p = inOffsets[i]!; p < inOffsets[i + 1]! && ready; p++) {
      if (rerun[inSources[p]!] === 1) ready = false
    }
    if (ready) start.push(i)
  }
  const startIds = start.map((i) => dag.ids![i]!)
  if (snapshot === undefined) {
    return { state: { ...Snapshot.empty(workflow), pending: startIds }, start: Int32Array.from(start) }
  }
  const nodes: Record<string, Snapshot.NodeRecord> = {}
  const loops: Record<string, Snapshot.LoopScope> = {}
  const parallels: Record<string, Snapshot.ParallelScope> = {}
  const kept = new Set<string>()
  for (let i = 0; i < n; i++) {
    if (pruned[i] === 1) continue
    // A re-run node keeps its records at the instances where it does not re-run (inside containers).
    const rerunAt = rerun[i] === 1 && instances.size > 0 ? instances.get(i) : undefined
    if (rerun[i] === 1 && rerunAt === undefined) continue
    const chain = Dag.chainOf(dag, i)
    const block = Dag.blockOf(dag, i)
    const node = block !== undefined ? { kind: "block" as const, id: block.id } : Dag.nodeOf(dag, i)
    const parsed: NodeId.Node = { kind: node.kind, id: node.id }
    for (const path of Snapshot.instancePaths(snapshot, chain)) {
      if (rerunAt !== undefined && rerunAt.has(path.join("."))) continue
      const key = path.length === 0 ? (block !== undefined ? block.id : dag.ids![i]!) : NodeId.formatInstance({ node: parsed, path })
      const record = own(snapshot.nodes, key)
      if (record === undefined) continue
      nodes[key] = record
      kept.add(key)
      if (node.kind === "start") {
        const scopeKey = NodeId.formatInstance({ node: NodeId.block(node.id), path })
        const loop = own(snapshot.loops, scopeKey)
        if (loop !== undefined) loops[scopeKey] = loop
        const parallel = own(snapshot.parallels, scopeKey)
        if (parallel !== undefined) parallels[scopeKey] = parallel
      }
    }
  }
  for (const c of planned.branches.keys()) {
    const parallel = own(snapshot.parallels, c)
    if (parallel !== undefined) parallels[c] = parallel
  }
  return {
    state: {
      schemaVersion: Snapshot.schemaVersion,
      workflow,
      ...(snapshot.trigger === undefined ? {} : { trigger: snapshot.trigger }),
      input: snapshot.input,
      status: "pending",
      nodes,
      loops,
      parallels,
      pending: startIds,
      waits: snapshot.waits.filter((wait) => kept.has(wait.node)),
      pauses: snapshot.pauses.filter((pause) => kept.has(pause.node)),
      diagnostics: { messages: [] }
    },
    start: Int32Array.from(start)
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/**
 * Plans a run of the current workflow from `target`, reusing the snapshot of a prior run, and/or
 * to the destination `to` (then only `to` is observed: what it does not need is pruned). Without
 * `target`, only what `diff` finds changed re-runs (with what depends on it, up to `to`); neither
 * `target` nor `to` is `MissingTarget`. Without a snapshot it plans over `Snapshot.empty(workflow)`:
 * every node `missing-prior-state`, and what no observed output needs is pruned.
 *
 * **Example**
 *
 * ```ts
 * const plan = Plan.runFrom({ workflow, snapshot, target: "summarize" })
 * if (Result.isSuccess(plan)) console.log(Plan.explain(plan.success))
 * const upTo = Plan.runFrom({ workflow, snapshot, to: "draft" })
 * ```
 *
 * @since 0.1.0
 */
export const runFrom = (
  options: Options & ({ readonly target: string } | { readonly to: string })
): Result.Result<Plan, PlanError> =>
  // The type asks for one of them; an untyped caller passing neither gets an error, not a guess.
  options.target === undefined && options.to === undefined
    ? Result.fail(new MissingTarget({ path: ["target"] }))
    : planOver(options, "run-from")

const planOver = (options: Options, mode: Plan["mode"]): Result.Result<Plan, PlanError> =>
  Result.map(prepare({ ...options, snapshot: options.snapshot ?? Snapshot.empty(options.workflow) }), (input) => {
    const order = Dag.topo(input.dag)
    const { changes, skipped, prior } = diffUpToScope(input, order)
    const planned = scopeIn(input, prune(input, changes), changes, order, "per-instance", prior)
    const failed = failedAmong(input, planned.pruned, order)
    return assemble(input, mode, planned, hydrate(input, planned), completing(input, changes, planned, skipped, prior), failed)
  })

/**
 * What a run of the plan records about pruning (`undefined`: nothing was pruned).
 *
 * @since 0.1.0
 */
export const pruneSummary = (plan: Plan): Snapshot.Pruned | undefined => {
  if (plan.pruned.length === 0) return undefined
  const ends = plan.pruned.filter((id) => {
    const parsed = NodeId.parse(id)
    return Result.isSuccess(parsed) && parsed.success.kind === "end"
  })
  return { count: plan.pruned.length, failed: plan.prunedFailed, ...(ends.length === 0 ? {} : { ends }) }
}

/** The pruned node instances whose last known state is `failed` (see `Plan.prunedFailed`). */
const failedAmong = (input: Input, pruned: Uint8Array, order: Int32Array): Array<Snapshot.PrunedFailure> => {
  const { dag, snapshot } = input
  const out: Array<Snapshot.PrunedFailure> = []
  if (snapshot === undefined) return out
  const failure = (node: string, run: string | undefined): Snapshot.PrunedFailure =>
    run === undefined ? { node } : { node, run }
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!
    if (pruned[i] === 0) continue
    for (const path of Snapshot.instancePaths(snapshot, Dag.chainOf(dag, i))) {
      const key = instanceKey(dag, i, path)
      const record = own(snapshot.nodes, key)
      if (record?.status === "failed") out.push(failure(key, record.reusedFrom ?? snapshot.runId))
    }
  }
  // The snapshot's run dropped the records of what it pruned: its own report is the last word on them.
  for (const entry of snapshot.pruned?.failed ?? []) {
    if (own(snapshot.nodes, entry.node) !== undefined) continue
    const parsed = NodeId.parseInstance(entry.node)
    if (Result.isFailure(parsed)) continue
    const i = dag.index!.get(NodeId.format(parsed.success.node))
    if (i !== undefined && pruned[i] === 1) out.push(entry)
  }
  return out
}

/**
 * `diff` without checking the top-level blocks that are downstream of a restart root anyway (they
 * re-run or are pruned whatever they hold, so comparing their definitions and looking up their
 * records is wasted on a large edit). Their reasons stay 0, which leaves `prune` / `scope` the same
 * re-run, pruned, reset and branch sets as the complete `diff` (a top-level block changes no
 * container decision and its downstream is already in scope), but not the same causes: `skipped`
 * marks those blocks, so that `completing` checks one only when a reason needs it.
 */
const diffUpToScope = (
  input: Input,
  order: Int32Array
): { readonly changes: Diff; readonly skipped: Uint8Array; readonly prior: Prior } => {
  const { dag, snapshot, target, wanted } = input
  const { inOffsets, inSources } = dag
  const n = dag.size
  const reasons = new Uint16Array(n)
  const prior = Prior.make(input.workflow, snapshot!, input.changedInputs, input.pins)
  // 1: reachable from a DAG root without walking past the target (what `diff` checks); 2: in scope.
  const state = new Uint8Array(n)
  const skipped = new Uint8Array(n)
  for (let k = 0; k < n; k++) {
    const i = order[k]!
    const first = inOffsets[i]!
    const end = inOffsets[i + 1]!
    let reached = first === end
    let scoped = false
    // Every predecessor, not only up to the first scoped one: `reached` must be what `diff` visits.
    for (let p = first; p < end; p++) {
      const j = inSources[p]!
      const s = state[j]!
      if ((s & 2) !== 0) scoped = true
      if ((s & 1) !== 0 && j !== target) reached = true
    }
    if (i === target) {
      state[i] = (reached ? 1 : 0) | 2
      continue
    }
    if (!reached) {
      if (scoped) state[i] = 2
      continue
    }
    const block = Dag.blockOf(dag, i)
    const chain = block === undefined ? undefined : Dag.chainOf(dag, i)
    if (scoped && chain !== undefined && chain.length === 0) {
      state[i] = 3
      skipped[i] = 1
      continue
    }
    const set = block !== undefined ? prior.checkBlock(i, block, chain!, dag) : prior.check(i, Dag.nodeOf(dag, i), dag)
    reasons[i] = set
    state[i] = 1 | (scoped || (set !== 0 && wanted[i] === 1) ? 2 : 0)
  }
  return { changes: { reasons }, skipped, prior }
}

/**
 * A plan that runs every node of a workflow from scratch; with `to`, only what the destination needs
 * (its ancestors, whole containers), the rest pruned; with `pins`, the pinned blocks write their
 * pins instead of executing.
 *
 * @since 0.1.0
 */
export const full = (
  workflow: Workflow.Workflow,
  options: { readonly dag?: Dag.Dag; readonly to?: string | undefined; readonly pins?: Pins | undefined } = {}
): Result.Result<Plan, PlanError> =>
  options.to === undefined
    ? Result.map(prepare({ workflow, dag: options.dag, pins: options.pins }), (input) => fullOf(input, "full"))
    : planOver({ workflow, dag: options.dag, to: options.to, pins: options.pins }, "full")

const fullOf = (input: Input, mode: Plan["mode"]): Plan => {
  const n = input.dag.size
  const rerun = new Uint8Array(n).fill(1)
  const planned: Scope = {
    rerun,
    pruned: new Uint8Array(n),
    cause: new Int32Array(n).fill(-1),
    resets: [...containerIndex(input.dag)].map(([container, entry]): Reset =>
      entry.kind === "loop"
        ? { _tag: "loop", container, restart: "whole", why: "start-changed" }
        : { _tag: "parallel", container, branches: "all", restart: "whole", why: "start-changed" }
    ),
    branches: new Map(),
    instances: new Map(),
    order: Dag.topo(input.dag),
    link: new Int32Array(n).fill(-1)
  }
  const changes: Diff = { reasons: new Uint16Array(n).fill(bits["missing-prior-state"]) }
  const everything: Input = { ...input, snapshot: undefined, wanted: rerun }
  return assemble(everything, mode, planned, hydrate(everything, planned), complete(changes, planned))
}

/**
 * Continues a crashed, suspended, paused or failed run of the snapshot's workflow: completed and
 * skipped nodes are reused; failed, incomplete and never-run nodes re-run with everything downstream
 * of them (a loop holding one restarts whole); waits and pauses of re-run nodes are kept, so a node
 * that was waiting for a signal keeps waiting for it.
 *
 * A run-from's run is resumed with its `target` (and a run to a block with its `to`): it wants what
 * the run-from wanted (the ancestors of the observed outputs and of the target, or of the
 * destination), so a node its plan pruned — it has no record — stays pruned instead of running as
 * never-run.
 *
 * @since 0.1.0
 */
export const resume = (
  workflow: Workflow.Workflow,
  snapshot: Snapshot.Snapshot,
  options: {
    readonly dag?: Dag.Dag
    readonly target?: string | undefined
    readonly to?: string | undefined
    readonly pins?: Pins | undefined
  } = {}
): Result.Result<Plan, PlanError> =>
  Result.map(prepare({ workflow, snapshot, dag: options.dag, target: options.target, to: options.to, pins: options.pins }), (prepared) => {
    // The target only narrows what is wanted: a resume never re-runs it for being the target.
    const input: Input = options.target === undefined && options.to === undefined
      ? { ...prepared, wanted: new Uint8Array(prepared.dag.size).fill(1) }
      : { ...prepared, target: -1, wanted: wholeContainers(prepared.dag, prepared.wanted) }
    const n = input.dag.size
    const reasons = new Uint16Array(n)
    // The container ends the run's own plan pruned have no record and never will: not missing.
    const prunedEnds = new Set<number>()
    for (const id of snapshot.pruned?.ends ?? []) {
      const i = input.dag.index!.get(id)
      if (i !== undefined) prunedEnds.add(i)
    }
    for (let i = 0; i < n; i++) {
      const chain = Dag.chainOf(input.dag, i)
      let found = false
      let set = 0
      for (const path of Snapshot.instancePaths(snapshot, chain)) {
        const record = own(snapshot.nodes, instanceKey(input.dag, i, path))
        if (record === undefined) continue
        found = true
        if (record.status === "failed") set |= bits["failed-last-time"]
        else if (!Snapshot.isReusable(record.status)) set |= bits.incomplete
      }
      if (!found && chain.length === 0 && !prunedEnds.has(i)) set |= bits["missing-prior-state"]
      reasons[i] = set
    }
    const changes: Diff = { reasons }
    const planned = scopeIn(input, prune(input, changes), changes, Dag.topo(input.dag), "resume")
    const hydrated = hydrate(input, planned)
    const rerunKeys = new Set<string>()
    for (const wait of snapshot.waits) rerunKeys.add(wait.node)
    for (const pause of snapshot.pauses) rerunKeys.add(pause.node)
    const state: Snapshot.Snapshot = {
      ...hydrated.state,
      ...(snapshot.runId === undefined ? {} : { runId: snapshot.runId }),
      status: snapshot.status,
      waits: snapshot.waits,
      pauses: snapshot.pauses,
      diagnostics: snapshot.diagnostics
    }
    return assemble(input, "resume", planned, { ...hydrated, state }, complete(changes, planned))
  })

/**
 * The change set and cause of each node as the complete `diff` and its `scope` find them: what a
 * node's reasons are made of.
 */
interface Explainer {
  readonly changeOf: (i: number) => number
  readonly causeOf: (i: number) => number
  /** The nodes `order[from, to)` of the plan are about to be explained: prepare them together. */
  readonly ahead: (from: number, to: number) => void
}

/** The explainer of a plan whose diff is complete (full, resume). */
const complete = (changes: Diff, planned: Scope): Explainer => ({
  changeOf: (i) => changes.reasons[i]!,
  causeOf: (i) => planned.cause[i]!,
  ahead: () => {}
})

/**
 * Numbers kept per node index, 0 = none: a `Map` while it holds few, then an `Int32Array`. Asking
 * for one node's reasons keeps a few answers, and allocating (zeroing) arrays of 10^6 entries for
 * them costs more than the answers; explaining every node keeps 10^6, for which only an array is
 * fast.
 */
class Memo {
  private few: Map<number, number> | undefined = new Map()
  private all: Int32Array | undefined

  constructor(private readonly size: number) {}

  get(i: number): number {
    return this.all !== undefined ? this.all[i]! : this.few!.get(i) ?? 0
  }

  set(i: number, value: number): void {
    if (this.all !== undefined) {
      this.all[i] = value
      return
    }
    this.few!.set(i, value)
    if (this.few!.size > 4096) {
      this.all = new Int32Array(this.size)
      for (const [k, v] of this.few!) this.all[k] = v
      this.few = undefined
    }
  }
}

/**
 * The explainer of a run-from plan, whose `diffUpToScope` skipped the top-level blocks already in
 * scope, node by node. A skipped block is checked when asked for. Its cause follows `Scope.link`
 * upwards: with the complete diff the links are the same (the same nodes are in scope, in the same
 * order), only a skipped block that changed and is wanted becomes a root of its own. Answers are
 * kept (in typed arrays, 0 = not yet known), so every node is resolved at most once.
 */
const completing = (input: Input, changes: Diff, planned: Scope, skipped: Uint8Array, prior: Prior): Explainer => {
  const { dag, wanted } = input
  const n = dag.size
  const checked = new Memo(n)
  const causes = new Memo(n)
  const changeOf = (i: number): number => {
    if (skipped[i] === 0) return changes.reasons[i]!
    let known = checked.get(i)
    if (known === 0) checked.set(i, known = 1 + prior.checkBlock(i, Dag.blockOf(dag, i)!, Dag.chainOf(dag, i), dag))
    return known - 1
  }
  // Checked in batches when the plan's entries are read in order (see `Prior.checkBlocks`).
  let batch: Int32Array | undefined
  let sets: Int32Array | undefined
  const ahead = (from: number, to: number): void => {
    if (batch === undefined || batch.length < to - from) {
      batch = new Int32Array(to - from)
      sets = new Int32Array(to - from)
    }
    let count = 0
    for (let k = from; k < to; k++) {
      const i = planned.order[k]!
      if (skipped[i] === 1 && checked.get(i) === 0) batch[count++] = i
    }
    prior.checkBlocks(batch, count, dag, sets!)
    for (let b = 0; b < count; b++) checked.set(batch[b]!, 1 + sets![b]!)
  }
  // A cause is stored as `cause + n + 2` (causes are at least -2 - (n - 1)), so 0 means unknown.
  // The nodes a lookup passes on its way up, in a buffer kept between lookups: `walk.length = 0`
  // would free its storage, and pushing then allocates it again (about 140 bytes per node when
  // every entry of a 10^6-node plan is read).
  const walk: Array<number> = []
  const causeOf = (i: number): number => {
    let depth = 0
    let k = i
    let cause: number
    let found = false
    for (;;) {
      const known = causes.get(k)
      if (known !== 0) {
        cause = known - n - 2
        found = true
        break
      }
      const link = planned.link[k]!
      if (link === -1) {
        cause = planned.cause[k]!
        break
      }
      if (link === k || (skipped[k] === 1 && wanted[k] === 1 && changeOf(k) !== 0)) {
        cause = k
        break
      }
      walk[depth++] = k
      k = link >= 0 ? link : -3 - link
    }
    if (!found) causes.set(k, cause + n + 2)
    for (let w = depth - 1; w >= 0; w--) {
      const node = walk[w]!
      const link = planned.link[node]!
      // Reached from a reset container's end: its cause, or the reset itself when it has none.
      if (link <= -3 && cause < 0) cause = -2 - (-3 - link)
      causes.set(node, cause + n + 2)
    }
    return cause
  }
  return { changeOf, causeOf, ahead }
}

const noReasons: ReadonlyArray<Reason> = Object.freeze([])

/**
 * Why one node of the plan re-runs or is pruned (`plan.reasons.get`); empty for a reused node or an
 * id the plan does not have.
 *
 * **Details**
 *
 * Reads the plan's typed arrays for that node only (microseconds at 10^6 nodes): engines and views
 * that look at some nodes use it rather than iterating `plan.reasons`.
 *
 * @since 0.1.0
 */
export const reasonsOf = (plan: Plan, nodeId: string): ReadonlyArray<Reason> => plan.reasons.get(nodeId) ?? noReasons

/**
 * `Plan.reasons`: the re-run and pruned nodes of `order` (the plan's), each explained by `at` when
 * read. Hand-written rather than a `Map`: a map of 10^6 string keys costs more than planning.
 */
class ReasonsView implements ReadonlyMap<string, ReadonlyArray<Reason>> {
  // Private fields, not properties: deep equality (chai's, vitest's) then compares two views by
  // their entries, as it compares two maps.
  readonly #ids: ReadonlyArray<string>
  readonly #index: ReadonlyMap<string, number>
  readonly #order: Int32Array
  /** The plan's `Scope.rerun` and `Scope.pruned`: a node has an entry when either is 1. */
  readonly #rerun: Uint8Array
  readonly #pruned: Uint8Array
  readonly #at: (i: number) => ReadonlyArray<Reason>
  readonly #ahead: (from: number, to: number) => void
  readonly #size: number

  constructor(
    ids: ReadonlyArray<string>,
    index: ReadonlyMap<string, number>,
    planned: Pick<Scope, "order" | "rerun" | "pruned">,
    at: (i: number) => ReadonlyArray<Reason>,
    ahead: (from: number, to: number) => void,
    size: number
  ) {
    this.#ids = ids
    this.#index = index
    this.#order = planned.order
    this.#rerun = planned.rerun
    this.#pruned = planned.pruned
    this.#at = at
    this.#ahead = ahead
    this.#size = size
  }

  get size(): number {
    return this.#size
  }

  get(nodeId: string): ReadonlyArray<Reason> | undefined {
    const i = this.#index.get(nodeId)
    return i === undefined || !this.#has(i) ? undefined : this.#at(i)
  }

  has(nodeId: string): boolean {
    const i = this.#index.get(nodeId)
    return i !== undefined && this.#has(i)
  }

  #has(i: number): boolean {
    return this.#rerun[i] === 1 || this.#pruned[i] === 1
  }

  entries(): MapIterator<[string, ReadonlyArray<Reason>]> {
    const ids = this.#ids
    const at = this.#at
    return new Walk(this.#order, this.#rerun, this.#pruned, (i): [string, ReadonlyArray<Reason>] => [ids[i]!, at(i)], this.#ahead)
  }

  keys(): MapIterator<string> {
    const ids = this.#ids
    return new Walk(this.#order, this.#rerun, this.#pruned, (i) => ids[i]!, () => {})
  }

  values(): MapIterator<ReadonlyArray<Reason>> {
    return new Walk(this.#order, this.#rerun, this.#pruned, this.#at, this.#ahead)
  }

  [Symbol.iterator](): MapIterator<[string, ReadonlyArray<Reason>]> {
    return this.entries()
  }

  forEach(f: (reasons: ReadonlyArray<Reason>, nodeId: string, map: ReadonlyMap<string, ReadonlyArray<Reason>>) => void): void {
    for (const [nodeId, reasons] of this.entries()) f(reasons, nodeId, this)
  }

  toJSON(): Record<string, ReadonlyArray<Reason>> {
    return Object.fromEntries(this.entries())
  }
}

/**
 * The iterator of `ReasonsView.entries`, `keys` and `values`: the nodes of `order` that re-run or
 * are pruned, each as `pick` gives it. A class rather than a generator (resumed once per entry):
 * at 10^6 nodes its `next` is what reading an already explained plan costs.
 */
class Walk<A> implements MapIterator<A> {
  // Inherited (see below) where the runtime has it, as for a generator.
  declare readonly [Symbol.dispose]: () => void
  #k = 0
  /** Where the nodes prepared by `ahead` end. */
  #until = 0

  constructor(
    private readonly order: Int32Array,
    private readonly rerun: Uint8Array,
    private readonly pruned: Uint8Array,
    private readonly pick: (i: number) => A,
    /** Called with each next `BATCH` positions of `order` before their first node is picked. */
    private readonly ahead: (from: number, to: number) => void
  ) {}

  next(): IteratorResult<A, undefined> {
    const { order, pruned, rerun } = this
    for (let k = this.#k; k < order.length; k++) {
      if (k === this.#until) this.ahead(k, this.#until = Math.min(k + BATCH, order.length))
      const i = order[k]!
      if (rerun[i] === 1 || pruned[i] === 1) {
        this.#k = k + 1
        return { done: false, value: this.pick(i) }
      }
    }
    this.#k = order.length
    return { done: true, value: undefined }
  }

  [Symbol.iterator](): this {
    return this
  }
}
// What a `Map`'s or a generator's iterator inherits: the iterator helpers (`map`, `toArray`, …) where
// the runtime has them.
Object.setPrototypeOf(Walk.prototype, Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())))

const assemble = (
  input: Input,
  mode: Plan["mode"],
  planned: Scope,
  hydrated: Hydrated,
  explainer: Explainer,
  prunedFailed: ReadonlyArray<Snapshot.PrunedFailure> = []
): Plan => {
  const { dag } = input
  const ids = dag.ids!
  const order = planned.order
  // Sized up front: at 10^6 nodes, growing the arrays by `push` cost three times as much.
  let reruns = 0
  let prunes = 0
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!
    if (planned.rerun[i] === 1) reruns++
    else if (planned.pruned[i] === 1) prunes++
  }
  const rerun = new Array<string>(reruns)
  const reused = new Array<string>(order.length - reruns - prunes)
  const pruned = new Array<string>(prunes)
  let r = 0
  let u = 0
  let p = 0
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!
    if (planned.rerun[i] === 1) rerun[r++] = ids[i]!
    else if (planned.pruned[i] === 1) pruned[p++] = ids[i]!
    else reused[u++] = ids[i]!
  }
  return {
    mode,
    workflow: input.workflow,
    target: input.target < 0 ? undefined : ids[input.target]!.replace(/#start$/u, ""),
    ...(input.to === undefined || input.to < 0 ? {} : { to: ids[input.to]!.replace(/#end$/u, "") }),
    ...(input.pins === undefined || Object.keys(input.pins).length === 0 ? {} : { pins: input.pins }),
    rerun,
    reused,
    pruned,
    prunedFailed,
    start: Array.from(hydrated.start, (i) => ids[i]!),
    resets: planned.resets,
    reasons: new ReasonsView(ids, dag.index!, planned, reasonsIn(input, planned, explainer), explainer.ahead, reruns + prunes),
    state: hydrated.state
  }
}

/** One frozen `Reason` per change tag (`Plan.reasons` lists share them). */
const changeReasons: ReadonlyArray<Reason> = changeTags.map((tag) => Object.freeze({ _tag: tag }))
const targetReason: Reason = Object.freeze({ _tag: "target" })
const disabledReason: Reason = Object.freeze({ _tag: "disabled" })
const pinnedReason: Reason = Object.freeze({ _tag: "pinned" })

/**
 * The reasons of node `i` of a plan. Lists are frozen and shared: at 10^6 nodes, a list per node
 * costs more than planning, and most nodes are explained by their change set and cause alone (one
 * list per pair of them, with one `downstream` / `container-reset` reason per root / container).
 */
const reasonsIn = (input: Input, planned: Scope, explainer: Explainer) => {
  const { dag } = input
  const ids = dag.ids!
  const n = dag.size
  const shared = new Map<number, ReadonlyArray<Reason>>()
  const resetOf = new Map<string, Reason>()
  const pinnedHere = pinnedBlocks(input.pins)
  const reset = (container: string): Reason => {
    let reason = resetOf.get(container)
    if (reason === undefined) resetOf.set(container, reason = Object.freeze({ _tag: "container-reset", container }))
    return reason
  }
  // Per cause (as `cause + n + 2`): 1 + the index in `causeLists` of the list of its reason alone,
  // the list of most nodes (downstream of a root, with no change of their own). Not in `shared`:
  // with a root per edited block, that map held 10^5 keys, and looking lists up in it was a tenth
  // of reading every entry of a 10^6-node plan.
  const causeIndex = new Memo(2 * n + 2)
  const causeLists: Array<ReadonlyArray<Reason>> = []
  const causeList = (cause: number): ReadonlyArray<Reason> => {
    let k = causeIndex.get(cause + n + 2)
    if (k === 0) {
      causeLists.push(Object.freeze([
        cause >= 0 ? Object.freeze({ _tag: "downstream", root: ids[cause]! }) : reset(Dag.nodeOf(dag, -2 - cause).id)
      ]))
      causeIndex.set(cause + n + 2, k = causeLists.length)
    }
    return causeLists[k - 1]!
  }
  // `downstream` of a root, `container-reset` of a reset container, or none (itself a root, or no cause).
  const causeReason = (i: number, cause: number): Reason | undefined =>
    cause === i || cause === -1 ? undefined : causeList(cause)[0]
  const listOf = (i: number, set: number, cause: number, extra: ReadonlyArray<Reason>): Array<Reason> => {
    const list: Array<Reason> = []
    if (i === input.target) list.push(targetReason)
    if (set !== 0) for (let t = 0; t < changeTags.length; t++) if ((set & bits[changeTags[t]!]) !== 0) list.push(changeReasons[t]!)
    const caused = causeReason(i, cause)
    if (caused !== undefined) list.push(caused)
    list.push(...extra)
    return list
  }
  return (i: number): ReadonlyArray<Reason> => {
    if (planned.rerun[i] === 0 && planned.pruned[i] === 0) return noReasons
    const set = explainer.changeOf(i)
    const cause = explainer.causeOf(i)
    const outside = planned.rerun[i] === 1 && input.wanted[i] === 0 && cause > -2
    const block = Dag.blockOf(dag, i)
    const disabled = block?.disabled === true
    const pinned = block !== undefined && pinnedHere.size > 0 && pinnedHere.has(block.id)
    if (i !== input.target && !outside && !disabled && !pinned) {
      if (set === 0 && cause !== i && cause !== -1) return causeList(cause)
      // Keyed by cause (at least -1 - n) and change set (9 bits); `cause === i` (a root) as -1.
      const key = ((cause === i ? -1 : cause) + n + 2) * 512 + set
      let list = shared.get(key)
      if (list === undefined) shared.set(key, list = Object.freeze(listOf(i, set, cause, noReasons)))
      return list
    }
    const extra: Array<Reason> = []
    if (outside) {
      // Needed by no observed output: it re-runs only because its loop or parallel restarts whole
      // (or, a container's end, because the container is entered to re-run some instances).
      const node = Dag.nodeOf(dag, i)
      const container = node.chain.find((c) => planned.rerun[dag.index!.get(`${c}#start`)!] === 1) ?? node.id
      extra.push(reset(container))
    }
    // It re-runs as a pass-through of its input (or is skipped, as a sink): its handler never runs.
    if (disabled) extra.push(disabledReason)
    // Its pin is written instead of executing it.
    if (pinned && (set & bits.pinned) === 0) extra.push(pinnedReason)
    return Object.freeze(listOf(i, set, cause, extra))
  }
}

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

/**
 * A text table of the plan: one row per node (topological order) with re-run / reused / pruned and
 * the reasons.
 *
 * @since 0.1.0
 */
export const explain = (plan: Plan): string => PlanView.explain(plan)

/**
 * The plan as plain JSON (without the hydrated state, which `Snapshot` already serializes).
 *
 * @since 0.1.0
 */
export const toJson = (plan: Plan): Json => PlanView.toJson(plan)

/**
 * A Mermaid flowchart of the plan, re-run / reused / pruned nodes styled apart.
 *
 * @since 0.1.0
 */
export const toMermaid = (plan: Plan): string => PlanView.toMermaid(plan, Dag.make(plan.workflow))

/**
 * A Graphviz DOT digraph of the plan, re-run / reused / pruned nodes styled apart.
 *
 * @since 0.1.0
 */
export const toDot = (plan: Plan): string => PlanView.toDot(plan, Dag.make(plan.workflow))

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

interface ContainerEntry {
  readonly kind: "loop" | "parallel"
  readonly start: number
  readonly end: number
  /** Every node inside the container, nested ones included. */
  readonly members: ReadonlyArray<number>
}

const containerIndex = (dag: Dag.Dag): Map<string, ContainerEntry> => {
  const out = new Map<string, { kind: "loop" | "parallel"; start: number; end: number; members: Array<number> }>()
  const workflow = dag.workflow
  // A DAG expanded from a workflow has sentinels only for its loops and parallels.
  if (workflow !== undefined && (workflow.loops ?? []).length === 0 && (workflow.parallels ?? []).length === 0) return out
  const n = dag.size
  for (let i = 0; i < n; i++) {
    if (Dag.blockOf(dag, i) !== undefined) continue
    const node = Dag.nodeOf(dag, i)
    if (node.kind !== "start") continue
    out.set(node.id, { kind: node.containerKind!, start: i, end: dag.index!.get(`${node.id}#end`)!, members: [] })
  }
  if (out.size === 0) return out
  for (let i = 0; i < n; i++) {
    for (const c of Dag.chainOf(dag, i)) out.get(c)!.members.push(i)
  }
  return out
}


/** The indices set to 1 in a mask, in increasing order. */
const indicesOf = (mask: Uint8Array): Array<number> => {
  const out: Array<number> = []
  for (let i = 0; i < mask.length; i++) if (mask[i] === 1) out.push(i)
  return out
}

const instanceKey = (dag: Dag.Dag, i: number, path: ReadonlyArray<number>): string => {
  if (path.length === 0) return dag.ids![i]!
  const node = Dag.nodeOf(dag, i)
  return NodeId.formatInstance({ node: { kind: node.kind, id: node.id }, path })
}

/** Top-level parallels whose only change is their own configuration: branches to re-run. */
const partialParallels = (
  input: Input,
  roots: ReadonlyArray<number>,
  changes: Diff
): Map<string, ReadonlyArray<number>> => {
  const out = new Map<string, ReadonlyArray<number>>()
  const { dag, snapshot } = input
  if (snapshot === undefined) return out
  const configOnly = bits["definition-changed"] | bits["inputs-changed"]
  for (const root of roots) {
    const node = Dag.nodeOf(dag, root)
    if (node.kind !== "start" || node.containerKind !== "parallel" || node.chain.length > 0) continue
    if (root === input.target || (changes.reasons[root]! & ~configOnly) !== 0) continue
    const end = dag.index!.get(`${node.id}#end`)!
    if ((changes.reasons[end]! & ~bits["definition-changed"]) !== 0) continue
    const before = (snapshot.workflow.parallels ?? []).find((p) => p.id === node.id)
    if (before === undefined || !sameBesidesConfig(before, node.definition as Workflow.Parallel)) continue
    const others = Dag.downstream(dag, roots.filter((r) => r !== root))
    if (others[root] === 1) continue
    let touched = false
    for (let i = 0; i < dag.size && !touched; i++) {
      if (others[i] === 1 && Dag.chainOf(dag, i).includes(node.id)) touched = true
    }
    if (touched) continue
    const prior = own(snapshot.parallels, node.id)
    const definition = node.definition as Workflow.Parallel
    const resolved = Reference.resolve(configOf(definition), snapshotEnvironment(input.workflow, snapshot))
    if (prior === undefined || Result.isFailure(resolved)) continue
    const config = resolved.success as Record<string, Json>
    const items = Array.isArray(config["items"]) ? config["items"] : undefined
    const count = items?.length ?? (typeof config["count"] === "number" ? Math.max(0, Math.floor(config["count"])) : -1)
    if (count !== prior.count) continue
    const branches: Array<number> = []
    if (items !== undefined) {
      for (let b = 0; b < count; b++) {
        if (Fingerprint.hash(items[b]!) !== Fingerprint.hash(prior.items?.[b] ?? null)) branches.push(b)
      }
    }
    out.set(node.id, branches)
  }
  return out
}

/** Two parallels that differ at most in their `count` / `items`. */
const sameBesidesConfig = (a: Workflow.Parallel, b: Workflow.Parallel): boolean => {
  const { count: _c1, items: _i1, name: _n1, ...restA } = a
  const { count: _c2, items: _i2, name: _n2, ...restB } = b
  return Fingerprint.ofContainer({ ...restA, body: a.body }, "parallel") === Fingerprint.ofContainer({ ...restB, body: b.body }, "parallel")
}

const configOf = (container: Workflow.Loop | Workflow.Parallel): Json => {
  const config: Record<string, Json> = {}
  if (container.count !== undefined) config["count"] = container.count
  if (container.items !== undefined) config["items"] = container.items
  return config
}

/** Top-level environment over a snapshot (block outputs of top-level nodes, input, variables). */
const snapshotEnvironment = (workflow: Workflow.Workflow, snapshot: Snapshot.Snapshot): Reference.Environment =>
  instanceEnvironment(workflow, snapshot, [], [], new Map())

const instanceEnvironment = (
  workflow: Workflow.Workflow,
  snapshot: Snapshot.Snapshot,
  chain: ReadonlyArray<string>,
  path: ReadonlyArray<number>,
  depthOf: ReadonlyMap<string, { readonly depth: number; readonly container: boolean }>
): Reference.Environment => {
  const kindOf = new Map<string, "loop" | "parallel">()
  for (const loop of workflow.loops ?? []) kindOf.set(loop.id, "loop")
  for (const parallel of workflow.parallels ?? []) kindOf.set(parallel.id, "parallel")
  const innermost = (scope: "loop" | "parallel") => {
    for (let i = chain.length - 1; i >= 0; i--) if (kindOf.get(chain[i]!) === scope) return i
    return -1
  }
  return {
    blockOutput: (id) => {
      const known = depthOf.get(id) ?? { depth: 0, container: kindOf.has(id) }
      const node = known.container ? NodeId.end(id) : NodeId.block(id)
      const record = own(snapshot.nodes, NodeId.formatInstance({ node, path: path.slice(0, known.depth) }))
      if (record === undefined) return undefined
      return record.status === "skipped" ? null : record.output
    },
    input: (key) => snapshot.input[key],
    variable: (name) => workflow.variables?.[name],
    index: (scope) => {
      const i = innermost(scope)
      return i === -1 ? undefined : path[i]
    },
    item: (scope) => {
      const i = innermost(scope)
      if (i === -1) return undefined
      const key = NodeId.formatInstance({ node: NodeId.block(chain[i]!), path: path.slice(0, i) })
      return (own(snapshot.loops, key)?.items ?? own(snapshot.parallels, key)?.items)?.[path[i]!]
    }
  }
}

/** The frozen workflow and the snapshot, indexed for `diff`. */
class Prior {
  static make(workflow: Workflow.Workflow, snapshot: Snapshot.Snapshot, changedInputs?: ReadonlySet<string>, pins?: Pins): Prior {
    return new Prior(workflow, snapshot, changedInputs ?? new Set(), pins)
  }

  private readonly pinned: ReadonlySet<string>

  private oldBlocks: Map<string, Workflow.Block> | undefined
  private readonly oldContainers: Map<string, string>
  private readonly newContainers: Map<string, string>
  /** Whether no edge or container body changed (`undefined`: not compared yet). */
  private sameWiring: boolean | undefined
  private oldWiring: Map<string, string> | undefined
  private newWiring: Map<string, string> | undefined
  /** Variables whose value changed (references to them must be re-resolved). */
  private readonly changedVariables: ReadonlySet<string>
  private depthOf: Map<string, { readonly depth: number; readonly container: boolean }> | undefined
  /** Scratch of `checkBlocks`: per block of a batch, the key of its record ("" when none is read). */
  private readonly batchKeys: Array<string> = []

  private constructor(
    private readonly workflow: Workflow.Workflow,
    private readonly snapshot: Snapshot.Snapshot,
    /** Run input keys whose value changed (references to them must be re-resolved). */
    private readonly changedInputs: ReadonlySet<string>,
    private readonly pins: Pins | undefined
  ) {
    this.pinned = pinnedBlocks(pins)
    const old = snapshot.workflow
    const fingerprints = (w: Workflow.Workflow) => {
      const out = new Map<string, string>()
      for (const loop of w.loops ?? []) out.set(loop.id, Fingerprint.ofContainer(loop, "loop"))
      for (const parallel of w.parallels ?? []) out.set(parallel.id, Fingerprint.ofContainer(parallel, "parallel"))
      return out
    }
    this.oldContainers = fingerprints(old)
    this.newContainers = fingerprints(workflow)
    const changed = new Set<string>()
    const oldVars = old.variables ?? {}
    const newVars = workflow.variables ?? {}
    for (const name of new Set([...Object.keys(oldVars), ...Object.keys(newVars)])) {
      const a = oldVars[name]
      const b = newVars[name]
      if (a === undefined || b === undefined || !jsonEqual(a, b)) changed.add(name)
    }
    this.changedVariables = changed
  }

  /**
   * Compared on first use: a run from a root checks no block before the target, and at 10^6 blocks
   * comparing every edge (1.5·10^6 pairs of objects and their id strings) is then wasted.
   */
  private get wiringSame(): boolean {
    return this.sameWiring ??= sameEdges(this.snapshot.workflow.edges, this.workflow.edges) && sameBodies(this.snapshot.workflow, this.workflow)
  }

  /** `check` of a block node, without building its node record (the hot path of `diff`). */
  checkBlock(i: number, block: Workflow.Block, chain: ReadonlyArray<string>, dag: Dag.Dag, at?: Set<string>): number {
    if (this.pinned.size > 0 && this.pinned.has(block.id)) return this.checkPinned(i, block, chain, dag, at)
    return this.checkUnpinned(i, block, chain, dag, at)
  }

  /**
   * Where a node changed: at every instance (`all`: its definition, wiring or `volatile`, or a new
   * block), else at the instance paths (indices joined by `.`) whose record is missing, failed or
   * unfinished, whose inputs resolve differently, or whose pin differs from the output.
   */
  changedInstances(i: number, dag: Dag.Dag): { readonly all: boolean; readonly paths: Set<string> } {
    const paths = new Set<string>()
    const block = Dag.blockOf(dag, i)
    const chain = Dag.chainOf(dag, i)
    const set = block !== undefined ? this.checkBlock(i, block, chain, dag, paths) : this.check(i, Dag.nodeOf(dag, i), dag, paths)
    if (chain.length === 0 && set !== 0) paths.add("")
    return { all: (set & everywhere) !== 0, paths }
  }

  /**
   * A block pinned on every instance (its id pinned) changes when its wiring does (whether it is
   * reached) or when a pin differs from the instance's prior output; its definition, inputs and
   * last outcome do not matter: it is not executed. Pinned on some instances only, it changes as
   * an unpinned block does, or when one of those pins differs.
   */
  private checkPinned(i: number, block: Workflow.Block, chain: ReadonlyArray<string>, dag: Dag.Dag, at?: Set<string>): number {
    const whole = this.pins![block.id] !== undefined
    let set = whole ? 0 : this.checkUnpinned(i, block, chain, dag, at)
    if (whole && !this.wiringSame && this.wiring(block.id, "new") !== this.wiring(block.id, "old")) set |= bits["wiring-changed"]
    for (const path of Snapshot.instancePaths(this.snapshot, chain)) {
      const pin = pinOf(this.pins, block.id, path)
      if (pin === undefined) continue
      const record = own(this.snapshot.nodes, path.length === 0 ? dag.ids![i]! : NodeId.formatInstance({ node: NodeId.block(block.id), path }))
      if (record?.status !== "completed" || record.output === undefined || !jsonEqual(record.output, pin)) {
        set |= bits.pinned
        at?.add(path.join("."))
      }
    }
    if (whole && this.oldBlock(block.id) === undefined) set |= bits.pinned
    return set
  }

  private checkUnpinned(i: number, block: Workflow.Block, chain: ReadonlyArray<string>, dag: Dag.Dag, at?: Set<string>): number {
    const set = this.definitionChanges(i, block)
    if (set === bits["new-block"]) return set
    const recheck = this.rechecks(block)
    // A node outside containers has one record, keyed by its id.
    if (chain.length === 0 && !recheck) return set | this.recordChanges(block.id)
    return this.checkInstances(i, "block", block.id, chain, recheck ? block.params : undefined, dag, set, at)
  }

  /**
   * `checkBlock` of the block nodes `nodes[0, count)`, into `sets`: the same answers, but for the
   * blocks outside containers in two passes, definitions first, then records. Reading every entry
   * of a 10^6-node plan's reasons (or diffing every block) checks 10^6 blocks, and each record
   * lookup in a snapshot of 10^6 nodes misses the cache: in a loop of their own the lookups cost
   * less than between definition comparisons (10^6 of both, on the bench:plan case: 280-300 ms
   * interleaved, 95 + 100 ms apart).
   */
  checkBlocks(nodes: Int32Array, count: number, dag: Dag.Dag, sets: Int32Array): void {
    const keys = this.batchKeys
    for (let b = 0; b < count; b++) {
      const i = nodes[b]!
      const block = Dag.blockOf(dag, i)!
      const chain = Dag.chainOf(dag, i)
      if (chain.length !== 0 || (this.pinned.size > 0 && this.pinned.has(block.id)) || this.rechecks(block)) {
        // Records per instance, a pin, or inputs to resolve again: checked as one block.
        sets[b] = this.checkBlock(i, block, chain, dag)
        keys[b] = ""
        continue
      }
      sets[b] = this.definitionChanges(i, block)
      // A new block has no record to look up.
      keys[b] = sets[b] === bits["new-block"] ? "" : block.id
    }
    for (let b = 0; b < count; b++) if (keys[b] !== "") sets[b]! |= this.recordChanges(keys[b]!)
  }

  /**
   * A block's changes seen in its definition and wiring (`new-block` alone when it has none before),
   * and those in the run input of a block that outputs it (`Workflow.outputsRunInput`): what reads
   * its output re-runs with it.
   */
  private definitionChanges(i: number, block: Workflow.Block): number {
    let set = 0
    const candidate = this.snapshot.workflow.blocks[i]
    const before = candidate !== undefined && candidate.id === block.id ? candidate : this.oldBlock(block.id)
    if (before === undefined) return bits["new-block"]
    if (before !== block && !sameBlock(before, block)) set |= bits["definition-changed"]
    if (this.changedInputs.size > 0 && Workflow.outputsRunInput(block)) set |= bits["inputs-changed"]
    // A disabled block passes its input on: it is not volatile and reads none of its own params.
    if (block.volatile === true && block.disabled !== true) set |= bits.volatile
    if (!this.wiringSame && this.wiring(block.id, "new") !== this.wiring(block.id, "old")) set |= bits["wiring-changed"]
    return set
  }

  /** Whether a block's params must be resolved again (they read a changed variable or run input). */
  private rechecks(block: Workflow.Block): boolean {
    return block.disabled !== true && block.params !== undefined && this.readsChanged(block.params)
  }

  /** The changes the record of a node outside containers shows (missing, failed, unfinished). */
  private recordChanges(key: string): number {
    const record = own(this.snapshot.nodes, key)
    return record === undefined ? bits["missing-prior-state"] : statusBits(record.status)
  }

  /** The change reasons of a sentinel node (`checkBlock` for block nodes). */
  check(i: number, node: Dag.NodeInfo, dag: Dag.Dag, at?: Set<string>): number {
    let set = 0
    const before = this.oldContainers.get(node.id)
    if (before === undefined) return bits["new-block"]
    if (before !== this.newContainers.get(node.id)) set |= bits["definition-changed"]
    if (node.kind !== "end" && !this.wiringSame && this.wiring(node.id, "new") !== this.wiring(node.id, "old")) {
      set |= bits["wiring-changed"]
    }
    const value = node.kind === "start" ? configOf(node.definition as Workflow.Loop | Workflow.Parallel) : undefined
    const recheck = value !== undefined && this.readsChanged(value)
    if (node.chain.length === 0 && !recheck) {
      const record = own(this.snapshot.nodes, dag.ids![i]!)
      return set | (record === undefined ? bits["missing-prior-state"] : statusBits(record.status))
    }
    return this.checkInstances(i, node.kind, node.id, node.chain, recheck ? value : undefined, dag, set, at)
  }

  /** Status (and, for `recheck`, resolved inputs) of every instance of a node. */
  private checkInstances(
    i: number,
    kind: NodeId.Kind,
    id: string,
    chain: ReadonlyArray<string>,
    recheck: Json | undefined,
    dag: Dag.Dag,
    set: number,
    at?: Set<string>
  ): number {
    for (const path of Snapshot.instancePaths(this.snapshot, chain)) {
      const key = path.length === 0 ? dag.ids![i]! : NodeId.formatInstance({ node: { kind, id }, path })
      const record = own(this.snapshot.nodes, key)
      if (record === undefined) {
        set |= bits["missing-prior-state"]
        at?.add(path.join("."))
        continue
      }
      const status = statusBits(record.status)
      set |= status
      if (status !== 0) at?.add(path.join("."))
      if (recheck !== undefined && record.status === "completed") {
        const env = instanceEnvironment(this.workflow, this.snapshot, chain, path, this.depths())
        const resolved = Reference.resolve(recheck, env)
        if (Result.isFailure(resolved) || Fingerprint.hash(resolved.success) !== record.fingerprints.inputs) {
          set |= bits["inputs-changed"]
          at?.add(path.join("."))
        }
      }
    }
    return set
  }

  // Whether `value` reads a variable or a run input key whose value changed.
  private readsChanged(value: Json): boolean {
    if ((this.changedVariables.size === 0 && this.changedInputs.size === 0) || !Reference.hasReferences(value)) return false
    return Reference.collect(value).some(({ reference }) =>
      reference._tag === "Variable"
        ? this.changedVariables.has(reference.name)
        : reference._tag === "Input" && this.changedInputs.has(reference.path[0])
    )
  }

  private depths() {
    if (this.depthOf === undefined) {
      const parent = new Map<string, string>()
      const containers = [...(this.workflow.loops ?? []), ...(this.workflow.parallels ?? [])]
      for (const c of containers) for (const m of c.body) parent.set(m, c.id)
      const ids = new Set(containers.map((c) => c.id))
      const depthOf = new Map<string, { depth: number; container: boolean }>()
      for (const id of [...parent.keys(), ...ids]) {
        let depth = 0
        for (let p = parent.get(id); p !== undefined; p = parent.get(p)) depth++
        depthOf.set(id, { depth, container: ids.has(id) })
      }
      this.depthOf = depthOf
    }
    return this.depthOf
  }

  private oldBlock(id: string): Workflow.Block | undefined {
    if (this.oldBlocks === undefined) {
      this.oldBlocks = new Map(this.snapshot.workflow.blocks.map((b) => [b.id, b] as const))
    }
    return this.oldBlocks.get(id)
  }

  private wiring(id: string, side: "old" | "new"): string {
    if (this.oldWiring === undefined || this.newWiring === undefined) {
      this.oldWiring = wiringOf(this.snapshot.workflow)
      this.newWiring = wiringOf(this.workflow)
    }
    return (side === "old" ? this.oldWiring : this.newWiring).get(id) ?? ""
  }
}

/** The reasons that hold at every instance of a node, whatever its records. */
const everywhere = bits["definition-changed"] | bits["new-block"] | bits["wiring-changed"] | bits.volatile

const statusBits = (status: Snapshot.NodeStatus): number =>
  status === "completed" || status === "skipped" ? 0 : status === "failed" ? bits["failed-last-time"] : bits.incomplete

/**
 * Per block or container id: enclosing container, sorted incoming (source, handle), a router's
 * routes, and for a disabled block whether it has successors (a pass-through, or a skipped sink).
 */
const wiringOf = (workflow: Workflow.Workflow): Map<string, string> => {
  const parent = new Map<string, string>()
  for (const c of [...(workflow.loops ?? []), ...(workflow.parallels ?? [])]) for (const m of c.body) parent.set(m, c.id)
  const incoming = new Map<string, Array<string>>()
  const routes = new Map<string, Set<string>>()
  const routers = new Set(workflow.blocks.filter((b) => b.type === "router").map((b) => b.id))
  const disabled = new Set(workflow.blocks.filter((b) => b.disabled === true).map((b) => b.id))
  const passing = new Set<string>()
  for (const edge of workflow.edges) {
    const list = incoming.get(edge.target)
    const entry = `${edge.source}|${edge.handle ?? ""}`
    if (list === undefined) incoming.set(edge.target, [entry])
    else list.push(entry)
    if (disabled.has(edge.source)) passing.add(edge.source)
    if (routers.has(edge.source)) {
      const set = routes.get(edge.source) ?? new Set<string>()
      set.add(edge.handle ?? "")
      routes.set(edge.source, set)
    }
  }
  const out = new Map<string, string>()
  const ids = [...workflow.blocks.map((b) => b.id), ...(workflow.loops ?? []).map((l) => l.id), ...(workflow.parallels ?? []).map((p) => p.id)]
  for (const id of ids) {
    const role = disabled.has(id) ? [passing.has(id) ? "pass" : "sink"] : []
    out.set(id, JSON.stringify([parent.get(id) ?? "", (incoming.get(id) ?? []).sort(), [...(routes.get(id) ?? [])].sort(), ...role]))
  }
  return out
}

const sameEdges = (a: ReadonlyArray<Workflow.Edge>, b: ReadonlyArray<Workflow.Edge>): boolean => {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    const y = b[i]!
    if (x !== y && (x.source !== y.source || x.target !== y.target || x.handle !== y.handle)) return false
  }
  return true
}

const sameBodies = (a: Workflow.Workflow, b: Workflow.Workflow): boolean => {
  const bodies = (w: Workflow.Workflow) =>
    JSON.stringify([...(w.loops ?? []), ...(w.parallels ?? [])].map((c) => [c.id, c.body]))
  return bodies(a) === bodies(b)
}

const sameBlock = (a: Workflow.Block, b: Workflow.Block): boolean =>
  a.type === b.type &&
  (a.volatile ?? false) === (b.volatile ?? false) &&
  (a.disabled ?? false) === (b.disabled ?? false) &&
  jsonEqual(a.params ?? {}, b.params ?? {}) &&
  jsonEqual((a.retry ?? null) as Json, (b.retry ?? null) as Json)

/**
 * JSON equality, object key order included (what equal `Fingerprint.hash` texts mean): a handler
 * sees params and variables as written, so reordered keys are a change.
 */
const jsonEqual = (a: Json, b: Json, depth = 0): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i]!, b[i]!, depth + 1)) return false
    return true
  }
  if (Array.isArray(b)) return false
  const x = a as Record<string, Json>
  const y = b as Record<string, Json>
  // `for…in` into a buffer kept per depth, not `Object.keys`: explaining a 10^6-block plan compares
  // 10^6 params, and the four key arrays of each doubled the time. A JSON value is a plain object,
  // so `for…in` walks exactly its own keys, in `Object.keys` order.
  const others = (keysAt[depth] ??= [])
  let count = 0
  for (const key in y) others[count++] = key
  let k = 0
  for (const key in x) {
    if (k === count || key !== others[k++] || !jsonEqual(x[key]!, y[key]!, depth + 1)) return false
  }
  return k === count
}

/** Per depth of `jsonEqual`: the keys of its second object (a buffer reused by every call). */
const keysAt: Array<Array<string>> = []
