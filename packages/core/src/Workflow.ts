/**
 * The workflow file format: blocks, edges, containers (loops and parallels), declared inputs,
 * outputs and variables, as `effect/Schema` definitions.
 *
 * The schemas here describe the *shape* of a workflow file. Structural rules that need the whole
 * workflow (unique ids, no cycles, references only to ancestors, ...) are checked by `decode`,
 * which returns a typed `WorkflowError` naming the offending ids and a JSON path.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The current version of the workflow file format.
 *
 * @since 0.1.0
 */
export const formatVersion = 1 as const

/**
 * Any JSON value (the type of block params, inputs and outputs).
 *
 * @since 0.1.0
 */
export type Json = Schema.Json

/**
 * Per-block retry policy: how many attempts in total, and the exponential backoff between them.
 *
 * @since 0.1.0
 */
export const RetryPolicy = Schema.Struct({
  /** Total attempts, the first one included (1 = no retry). */
  maxAttempts: Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1)),
  /** Delay before the second attempt, in milliseconds (default 100). */
  initialDelayMs: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Factor applied to the delay after each failed attempt (default 2). */
  backoffFactor: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(1))),
  /** Upper bound of any single delay, in milliseconds. */
  maxDelayMs: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0)))
})
/** @since 0.1.0 */
export type RetryPolicy = typeof RetryPolicy.Type

/**
 * A block: one user-defined step. `params` is any JSON object; values of the form
 * `{ "$ref": "<path>" }` anywhere inside it are references (see `Reference`).
 *
 * @since 0.1.0
 */
export const Block = Schema.Struct({
  id: Schema.String,
  type: Schema.String,
  params: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json)),
  /** Display name; not part of the block's definition fingerprint. */
  name: Schema.optionalKey(Schema.String),
  /** A volatile block is always re-executed by a run-from-block plan (clocks, random, external reads). */
  volatile: Schema.optionalKey(Schema.Boolean),
  retry: Schema.optionalKey(RetryPolicy)
})
/** @since 0.1.0 */
export type Block = typeof Block.Type

/**
 * An edge between two blocks or containers. `handle` names the branch of the source it belongs to:
 * a router route, a condition branch (`"true"` / `"false"`), or `"error"` / `"success"`.
 *
 * @since 0.1.0
 */
export const Edge = Schema.Struct({
  source: Schema.String,
  target: Schema.String,
  handle: Schema.optionalKey(Schema.String)
})
/** @since 0.1.0 */
export type Edge = typeof Edge.Type

/**
 * A loop over its `body` blocks: `count` iterations, one iteration per element of `items`
 * (`forEach`), or `while` its `condition` holds over the previous iteration. Every loop is bounded
 * by `maxIterations` (required for `while`).
 *
 * @since 0.1.0
 */
export const Loop = Schema.Struct({
  id: Schema.String,
  body: Schema.Array(Schema.String),
  kind: Schema.Literals(["count", "forEach", "while"]),
  /** `count` loops: a number or a reference to one. */
  count: Schema.optionalKey(Schema.Json),
  /** `forEach` loops: an array or a reference to one. */
  items: Schema.optionalKey(Schema.Json),
  /** `while` loops: a declarative condition (see `Condition`) evaluated after each iteration. */
  condition: Schema.optionalKey(Schema.Json),
  maxIterations: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1))),
  name: Schema.optionalKey(Schema.String)
})
/** @since 0.1.0 */
export type Loop = typeof Loop.Type

/**
 * A parallel: its `body` runs once per branch, `count` branches or one per element of `items`
 * (`collection`), at most `concurrency` at a time.
 *
 * @since 0.1.0
 */
export const Parallel = Schema.Struct({
  id: Schema.String,
  body: Schema.Array(Schema.String),
  kind: Schema.Literals(["count", "collection"]),
  count: Schema.optionalKey(Schema.Json),
  items: Schema.optionalKey(Schema.Json),
  concurrency: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1))),
  name: Schema.optionalKey(Schema.String)
})
/** @since 0.1.0 */
export type Parallel = typeof Parallel.Type

/**
 * A declared run input: its type, whether it is required, and a default.
 *
 * @since 0.1.0
 */
export const InputDeclaration = Schema.Struct({
  type: Schema.Literals(["string", "number", "boolean", "object", "array", "json"]),
  required: Schema.optionalKey(Schema.Boolean),
  default: Schema.optionalKey(Schema.Json),
  description: Schema.optionalKey(Schema.String)
})
/** @since 0.1.0 */
export type InputDeclaration = typeof InputDeclaration.Type

/**
 * A workflow file.
 *
 * @since 0.1.0
 */
export const WorkflowSchema = Schema.Struct({
  /** The file format version (currently 1). */
  version: Schema.optionalKey(Schema.Literal(formatVersion)),
  id: Schema.String,
  name: Schema.optionalKey(Schema.String),
  blocks: Schema.Array(Block),
  edges: Schema.Array(Edge),
  loops: Schema.optionalKey(Schema.Array(Loop)),
  parallels: Schema.optionalKey(Schema.Array(Parallel)),
  inputs: Schema.optionalKey(Schema.Record(Schema.String, InputDeclaration)),
  /** Observed outputs: ids of blocks or containers whose outputs the workflow's callers read. */
  outputs: Schema.optionalKey(Schema.Array(Schema.String)),
  variables: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json))
})

/**
 * A decoded (but not necessarily validated) workflow.
 *
 * @since 0.1.0
 */
export type Workflow = typeof WorkflowSchema.Type
