/**
 * The snapshot of a run: everything a prior run left behind, in the form the planner reads and the
 * engine writes (and persists as JSON).
 *
 * **Format (schema version 1)**
 *
 * - `workflow` is the *frozen* workflow the run executed — the planner diffs the current workflow
 *   against it, never against whatever the file says today.
 * - `nodes` is keyed by node *instance* id (see `NodeId`): `"fetch"` for a block outside
 *   containers, `"summarize@2"` for iteration/branch 2 of a body block, `"inner@1.0"` for nested
 *   containers (indices outer → inner), and `"loop#start"` / `"loop#end"` for container sentinels.
 *   A container's output (what `blocks.<container>.output` reads) is the `output` of its `#end`
 *   record; its resolved configuration (`count` / `items`) is the `inputs` of its `#start` record.
 * - `loops` / `parallels` are keyed by container *instance* id (`"loop"`, or `"inner@3"` inside an
 *   enclosing container) and record how many iterations or branches ran and what each produced.
 * - Times are numbers (milliseconds since the epoch) supplied by the engine: core has no clock.
 * - Every field is plain JSON, so `JSON.parse(JSON.stringify(snapshot))` decodes to an equal value.
 *
 * `decode` checks `schemaVersion` first: a snapshot written by a newer Ripple is a typed
 * `UnsupportedSchemaVersion` error, never a crash or a silent misread.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as NodeId from "./NodeId.ts"
import * as Workflow from "./Workflow.ts"

/**
 * The snapshot format version this build reads and writes.
 *
 * @since 0.1.0
 */
export const schemaVersion = 1 as const

/**
 * Status of one node instance: `completed` / `failed` / `skipped` (an untaken router or condition
 * branch) are final; `running` (crashed mid-flight), `waiting` (signal or timer) and `paused`
 * (approval) are incomplete and re-run or resumed by `Plan.resume`.
 *
 * @since 0.1.0
 */
export const NodeStatus = Schema.Literals(["completed", "failed", "skipped", "running", "waiting", "paused"])
/** @since 0.1.0 */
export type NodeStatus = typeof NodeStatus.Type

/**
 * The fingerprints of a node instance (16-hex-char hashes from `Fingerprint`): of its definition,
 * of its resolved inputs and of its output. The planner compares them instead of values.
 *
 * @since 0.1.0
 */
export const Fingerprints = Schema.Struct({
  definition: Schema.String,
  inputs: Schema.optionalKey(Schema.String),
  output: Schema.optionalKey(Schema.String)
})
/** @since 0.1.0 */
export type Fingerprints = typeof Fingerprints.Type

/**
 * Why a node instance failed (the last attempt's error).
 *
 * @since 0.1.0
 */
export const NodeError = Schema.Struct({
  message: Schema.String,
  retryable: Schema.optionalKey(Schema.Boolean)
})
/** @since 0.1.0 */
export type NodeError = typeof NodeError.Type

/**
 * What one node instance did in the run.
 *
 * @since 0.1.0
 */
export const NodeRecord = Schema.Struct({
  status: NodeStatus,
  /** Resolved inputs: the block's params with every reference replaced by its value. */
  inputs: Schema.optionalKey(Schema.Json),
  output: Schema.optionalKey(Schema.Json),
  fingerprints: Fingerprints,
  /** Attempts made so far (0 for a skipped node). */
  attempt: Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)),
  startedAt: Schema.optionalKey(Schema.Number),
  finishedAt: Schema.optionalKey(Schema.Number),
  /** The handle a router or condition chose (`"true"` / `"false"` for conditions). */
  decision: Schema.optionalKey(Schema.String),
  error: Schema.optionalKey(NodeError),
  /** Set when this record was copied from an earlier run instead of executed. */
  reusedFrom: Schema.optionalKey(Schema.String)
})
/** @since 0.1.0 */
export type NodeRecord = typeof NodeRecord.Type

/**
 * One loop instance: its iterations and what each produced (the record of the body's exit blocks).
 *
 * @since 0.1.0
 */
export const LoopScope = Schema.Struct({
  iterations: Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)),
  /** `forEach` loops: the items iterated over. */
  items: Schema.optionalKey(Schema.Array(Schema.Json)),
  outputs: Schema.Array(Schema.Json),
  /** False while the loop is still running (a crash or a wait inside its body). */
  done: Schema.Boolean
})
/** @since 0.1.0 */
export type LoopScope = typeof LoopScope.Type

/**
 * One parallel instance: its branch count, items and per-branch outputs.
 *
 * @since 0.1.0
 */
export const ParallelScope = Schema.Struct({
  count: Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)),
  /** `collection` parallels: one item per branch. */
  items: Schema.optionalKey(Schema.Array(Schema.Json)),
  /** Per-branch outputs; `null` for a branch that has not finished. */
  outputs: Schema.Array(Schema.Json),
  done: Schema.Boolean
})
/** @since 0.1.0 */
export type ParallelScope = typeof ParallelScope.Type

/**
 * A node instance suspended on a signal or a durable timer.
 *
 * @since 0.1.0
 */
export const Wait = Schema.Struct({
  node: Schema.String,
  kind: Schema.Literals(["signal", "timer"]),
  /** `signal` waits: the signal name awaited. */
  signal: Schema.optionalKey(Schema.String),
  /** `timer` waits: when to wake up. */
  wakeAt: Schema.optionalKey(Schema.Number),
  since: Schema.Number
})
/** @since 0.1.0 */
export type Wait = typeof Wait.Type

/**
 * A node instance paused for a human approval (or an explicit pause).
 *
 * @since 0.1.0
 */
export const Pause = Schema.Struct({
  node: Schema.String,
  reason: Schema.optionalKey(Schema.String),
  since: Schema.Number
})
/** @since 0.1.0 */
export type Pause = typeof Pause.Type

/**
 * What the engine recorded to explain how a run ended.
 *
 * @since 0.1.0
 */
export const Diagnostics = Schema.Struct({
  lastStarted: Schema.optionalKey(Schema.Struct({ node: Schema.String, at: Schema.Number })),
  lastCompleted: Schema.optionalKey(Schema.Struct({ node: Schema.String, at: Schema.Number })),
  finalization: Schema.optionalKey(Schema.Literals(["completed", "failed", "cancelled", "paused", "suspended"])),
  messages: Schema.Array(Schema.String)
})
/** @since 0.1.0 */
export type Diagnostics = typeof Diagnostics.Type

/**
 * A node instance a run-from pruned whose last known state was `failed`.
 *
 * @since 0.1.0
 */
export const PrunedFailure = Schema.Struct({
  /** The node instance id (see `NodeId`). */
  node: Schema.String,
  /** The run it failed in, when known (a snapshot that belongs to no stored run names none). */
  run: Schema.optionalKey(Schema.String)
})
/** @since 0.1.0 */
export type PrunedFailure = typeof PrunedFailure.Type

/**
 * What a run-from pruned: nodes downstream of a change that no observed output needs, so neither
 * run nor reused. A pruned node that failed last time would have failed a full run of the
 * workflow, while the run-from can complete: `failed` says so.
 *
 * @since 0.1.0
 */
export const Pruned = Schema.Struct({
  /** How many nodes of the expanded DAG were pruned (sentinels included). */
  count: Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)),
  failed: Schema.Array(PrunedFailure),
  /**
   * The top-level container ends pruned (`<container>#end`): a resume must not take their missing
   * records for work the run has left (it would restart those containers whole).
   */
  ends: Schema.optionalKey(Schema.Array(Schema.String))
})
/** @since 0.1.0 */
export type Pruned = typeof Pruned.Type

/**
 * The status of the whole run when the snapshot was taken.
 *
 * @since 0.1.0
 */
export const RunStatus = Schema.Literals(["pending", "running", "suspended", "paused", "completed", "failed", "cancelled"])
/** @since 0.1.0 */
export type RunStatus = typeof RunStatus.Type

/**
 * A snapshot (schema version 1).
 *
 * @since 0.1.0
 */
export const SnapshotSchema = Schema.Struct({
  schemaVersion: Schema.Literal(schemaVersion),
  runId: Schema.optionalKey(Schema.String),
  /** The frozen workflow the run executed. */
  workflow: Workflow.WorkflowSchema,
  /** The trigger block that started the run, when it had several. */
  trigger: Schema.optionalKey(Schema.String),
  /** The run input (after defaults were applied). */
  input: Schema.Record(Schema.String, Schema.Json),
  status: RunStatus,
  nodes: Schema.Record(Schema.String, NodeRecord),
  loops: Schema.Record(Schema.String, LoopScope),
  parallels: Schema.Record(Schema.String, ParallelScope),
  /** The ready queue: node instances ready to start, in start order. */
  pending: Schema.Array(Schema.String),
  waits: Schema.Array(Wait),
  pauses: Schema.Array(Pause),
  diagnostics: Diagnostics,
  /** What the run's plan pruned (a run-from that pruned nothing, and other runs, leave it out). */
  pruned: Schema.optionalKey(Pruned),
  startedAt: Schema.optionalKey(Schema.Number),
  updatedAt: Schema.optionalKey(Schema.Number)
})

/**
 * A decoded snapshot.
 *
 * @since 0.1.0
 */
export type Snapshot = typeof SnapshotSchema.Type

/**
 * The snapshot was written with a schema version this build does not read.
 *
 * @since 0.1.0
 */
export class UnsupportedSchemaVersion extends Data.TaggedError("UnsupportedSchemaVersion")<{
  readonly found: unknown
  readonly supported: ReadonlyArray<number>
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `unsupported snapshot schema version ${JSON.stringify(this.found)} (supported: ${this.supported.join(", ")})`
  }
}

/**
 * The value is not a snapshot: the first offending location and what is wrong there.
 *
 * @since 0.1.0
 */
export class MalformedSnapshot extends Data.TaggedError("MalformedSnapshot")<{
  readonly reason: string
  readonly path: ReadonlyArray<string | number>
}> {
  override get message() {
    return `malformed snapshot at ${JSON.stringify(this.path)}: ${this.reason}`
  }
}

/**
 * Everything `decode` can report.
 *
 * @since 0.1.0
 */
export type SnapshotError = UnsupportedSchemaVersion | MalformedSnapshot

const decodeSchema = Schema.decodeUnknownResult(SnapshotSchema)
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

const toPath = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): Array<string | number> =>
  (path ?? []).map((segment) => {
    const key = typeof segment === "object" ? segment.key : segment
    return typeof key === "number" ? key : String(key)
  })

/**
 * Decodes an untrusted value (e.g. parsed JSON) into a snapshot.
 *
 * Gotchas: the version is checked before the shape, so a future format yields
 * `UnsupportedSchemaVersion` even if the rest would not decode.
 *
 * @since 0.1.0
 */
export const decode = (input: unknown): Result.Result<Snapshot, SnapshotError> => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return Result.fail(new MalformedSnapshot({ reason: "expected an object", path: [] }))
  }
  const version = (input as { readonly schemaVersion?: unknown }).schemaVersion
  if (version !== schemaVersion) {
    return Result.fail(new UnsupportedSchemaVersion({ found: version, supported: [schemaVersion], path: ["schemaVersion"] }))
  }
  const decoded = decodeSchema(input)
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const first = formatIssue(decoded.failure.issue).issues[0]
  return Result.fail(
    new MalformedSnapshot({ reason: first?.message ?? decoded.failure.message, path: toPath(first?.path) })
  )
}

/**
 * The snapshot of a run that has not started yet: no node records, no scopes.
 *
 * @since 0.1.0
 */
export const empty = (workflow: Workflow.Workflow, input: Readonly<Record<string, Workflow.Json>> = {}): Snapshot => ({
  schemaVersion,
  workflow,
  input,
  status: "pending",
  nodes: {},
  loops: {},
  parallels: {},
  pending: [],
  waits: [],
  pauses: [],
  diagnostics: { messages: [] }
})

/**
 * True for the statuses a run-from plan may reuse as they are.
 *
 * @since 0.1.0
 */
export const isReusable = (status: NodeStatus): boolean => status === "completed" || status === "skipped"

const topLevel: ReadonlyArray<ReadonlyArray<number>> = [[]]

/**
 * Every instance path (iteration/branch indices, outer to inner) that a node inside the given
 * container chain has in this snapshot, read from its loop and parallel scopes. A top-level node
 * (empty chain) has the one empty path.
 *
 * @since 0.1.0
 */
export const instancePaths = (
  snapshot: Snapshot,
  chain: ReadonlyArray<string>
): ReadonlyArray<ReadonlyArray<number>> => {
  if (chain.length === 0) return topLevel
  let paths: Array<ReadonlyArray<number>> = [[]]
  for (const container of chain) {
    const next: Array<ReadonlyArray<number>> = []
    for (const path of paths) {
      const key = NodeId.formatInstance({ node: NodeId.block(container), path })
      const count = snapshot.loops[key]?.iterations ?? snapshot.parallels[key]?.count ?? 0
      for (let i = 0; i < count; i++) next.push([...path, i])
    }
    paths = next
  }
  return paths
}
