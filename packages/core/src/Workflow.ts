/**
 * The workflow file format: blocks, edges, containers (loops and parallels), declared inputs,
 * outputs and variables, as `effect/Schema` definitions — and its validation.
 *
 * The schemas describe the *shape* of a workflow file (unknown keys are rejected, so a misspelt key
 * is an error, and `packages/core/workflow.schema.json` is generated from them for editors).
 * Structural rules that need the whole workflow are checked by `decode`, which returns a typed
 * `WorkflowError` naming the offending ids and a JSON path:
 *
 * - Every string (ids, names, params, variables, object keys) is one every store can hold: no NUL,
 *   no lone surrogate, and numbers are finite (`UnstorableValue`).
 * - Ids: blocks, loops and parallels share one id space; ids are non-empty and free of the
 *   node-id codec's reserved characters (see `NodeId`); the workflow's id is not blank; no id
 *   takes more than `maxIdBytes` bytes (`IdTooLong`).
 * - Containers: a body lists block or container ids; each id is in at most one body; no container
 *   contains itself, directly or through a chain; bodies are non-empty; each kind has its field
 *   (`count`, `items` or `condition`) and `while` loops a `maxIterations`.
 * - Edges join two ids of the same container (or two top-level ids): edges into or out of a
 *   container use the container's id.
 * - Declared `outputs` name blocks or containers; input defaults have their declared type.
 * - A `sleep` block's literal `ms` is from 0 to `maxSleepMs` and its literal `until` a valid date up
 *   to `maxTime` (`InvalidTime`).
 * - Secrets (`{ "$secret": "NAME" }`, see `Params`) appear only in an `http` block's `url`,
 *   `query`, `headers`, `auth`, `json` and `text` (`InvalidSecret`).
 * - A built-in block's literal params fit its type's schema (`Params.builtins`): a value read
 *   through a reference is checked by the handler when the block runs (`InvalidParams`).
 * - What the file states of loop iterations, parallel branches and expanded nodes is within the
 *   `Limits` (`LimitExceeded`).
 * - The expanded DAG (see `Dag`) has no cycle.
 * - References (see `Reference` for the syntax) read only what is available: `blocks.<id>.output`
 *   of a DAG ancestor (a body block also sees the ancestors of its containers, never the blocks
 *   inside a container that does not enclose it), declared `input.<key>` and `vars.<name>`, and
 *   `loop.*` / `parallel.*` only inside a loop / parallel.
 *
 * `decode` returns the *first* error: checks run in the order listed above and each walks the
 * document in order, so the error reported for a given file is deterministic.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Graph from "./internal/graph.ts"
import * as Shape from "./internal/shape.ts"
import * as ParamsJsonSchema from "./internal/paramsJsonSchema.ts"
import * as NodeId from "./NodeId.ts"
import * as Params from "./Params.ts"
import * as Reference from "./Reference.ts"

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
  initialDelayMs: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Factor applied to the delay after each failed attempt (default 2). */
  backoffFactor: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(1))),
  /** Upper bound of any single delay, in milliseconds. */
  maxDelayMs: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)))
}).annotate({ description: "Retry policy: total attempts and exponential backoff between them." })
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
  retry: Schema.optionalKey(RetryPolicy),
  /**
   * A disabled block does not execute: it passes its single input's output on (`passThrough`), or,
   * as a sink (no outgoing edge), is skipped. Part of its definition: toggling it is an edit.
   */
  disabled: Schema.optionalKey(Schema.Boolean)
}).annotate({ description: "A block: one step. Values of the form {\"$ref\": \"<path>\"} inside params are references (blocks.<id>.output..., input.<key>..., vars.<name>..., loop.index, loop.item..., parallel.index, parallel.item...)." })
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
}).annotate({ description: "An edge between two blocks or containers at the same nesting level; handle names a router route, a condition branch (\"true\"/\"false\") or \"error\"/\"success\"." })
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
}).annotate({ description: "A loop over its body ids: count iterations, forEach over items, or while condition holds (maxIterations required)." })
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
}).annotate({ description: "A parallel: its body runs once per branch (count branches, or one per element of items), at most concurrency at a time." })
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
}).annotate({ description: "A declared run input." })
/** @since 0.1.0 */
export type InputDeclaration = typeof InputDeclaration.Type

/**
 * A workflow file.
 *
 * @since 0.1.0
 */
export const WorkflowSchema = Schema.Struct({
  /** The JSON Schema the file declares for editors (`workflow.schema.json`); not interpreted. */
  $schema: Schema.optionalKey(Schema.String),
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
}).annotate({ title: "Ripple workflow", description: "A Ripple workflow file." })

/**
 * A workflow. Values returned by `decode` are validated; values built by hand are not.
 *
 * @since 0.1.0
 */
export type Workflow = typeof WorkflowSchema.Type

/**
 * The JSON Schema (draft 2020-12) of the workflow file format, generated from `WorkflowSchema`, for
 * editors; checked in as `packages/core/workflow.schema.json` (regenerate with `npm run schema`).
 *
 * **Details**
 *
 * Besides the shape, it states what `decode` checks of one block's params: each enabled built-in
 * block's params fit its type's schema (`Params.builtins`) and rules, a sleep's times, secrets only
 * in an `http` block's secret fields, well-formed references and secrets. A reference (or, where a
 * param expects another JSON type, a value holding one) is accepted wherever `decode` leaves it to
 * the handler; custom types' params are any JSON object.
 *
 * **Gotchas**
 *
 * What needs the whole workflow is validated by `decode` only: ids, edges, cycles, what references
 * read, limits. A sleep's `until` string is not checked to be a date, nor a reference's block id or
 * input key not to be digits only.
 *
 * @since 0.1.0
 */
export const jsonSchema = (): { readonly [key: string]: unknown } => {
  const document = Schema.toJsonSchemaDocument(WorkflowSchema, { onExcessProperty: "error" })
  const properties = document.schema["properties"] as { readonly [key: string]: { readonly items: object } }
  const blocks = properties["blocks"]!
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    ...document.schema,
    properties: { ...properties, blocks: { ...blocks, items: { ...blocks.items, allOf: [...ParamsJsonSchema.blockRules(), sleepTimesJsonSchema()] } } },
    $defs: { ...document.definitions, ...ParamsJsonSchema.paramsDefinitions() }
  }
}

// `checkTimes` for editors: a sleep's literal `ms` and `until`, disabled or not.
const sleepTimesJsonSchema = () => ({
  if: { properties: { type: { const: "sleep" } }, required: ["type"] },
  then: {
    properties: {
      params: {
        properties: {
          ms: {
            anyOf: [{ type: "number", minimum: 0, maximum: maxSleepMs }, { $ref: "#/$defs/HasReference" }],
            description: "How long to sleep, in milliseconds (up to a century)."
          },
          until: {
            anyOf: [{ type: "number", minimum: -maxTime, maximum: maxTime }, { type: "string" }, { $ref: "#/$defs/HasReference" }],
            description: "When to wake: epoch milliseconds or an ISO date."
          }
        }
      }
    }
  }
})

/**
 * A JSON path into a workflow file, e.g. `["blocks", 3, "params", "x"]`.
 *
 * @since 0.1.0
 */
export type JsonPath = Reference.JsonPath

/**
 * The file does not have the shape of `WorkflowSchema` (first schema issue).
 *
 * @since 0.1.0
 */
export class SchemaMismatch extends Data.TaggedError("SchemaMismatch")<{
  readonly message: string
  readonly path: JsonPath
}> {}

/**
 * A block or container id is empty, or is `__proto__`: records keyed by ids (a snapshot's nodes,
 * a run's outputs) cannot hold that key by assignment, so one store would keep the node's record
 * and another lose it. Or the workflow's own id is blank (empty or only whitespace): its runs and
 * versions could not be asked for by it.
 *
 * @since 0.1.0
 */
export class InvalidId extends Data.TaggedError("InvalidId")<{
  readonly id: string
  readonly path: JsonPath
}> {}

/**
 * The most UTF-8 bytes a workflow, block or container id may take.
 *
 * **Details**
 *
 * Ids are keys of the SQL stores' indexes (a run's workflow id, a journal row's node id, a loop or
 * parallel instance's scope), and PostgreSQL refuses an index entry over about 2.7 kB once
 * compressed: a longer id of random characters failed a run half-way, after it was stored. A node
 * id adds only a suffix to its block's (`@i.j`, `#start`), so the cap leaves that room.
 *
 * @since 0.1.0
 */
export const maxIdBytes = 256

/**
 * A workflow, block or container id longer than `limit` (`maxIdBytes`) UTF-8 bytes.
 *
 * @since 0.1.0
 */
export class IdTooLong extends Data.TaggedError("IdTooLong")<{
  readonly id: string
  readonly bytes: number
  readonly limit: number
  readonly path: JsonPath
}> {}

/**
 * Whether a workflow id is blank: empty, or only white space. A byte-order mark (U+FEFF) is not
 * white space here, though `String.prototype.trim` takes it away: it is text every store keeps
 * (DESIGN.md, "Values round-trip"), so an id made of it names its workflow like any other.
 *
 * @since 0.1.0
 */
export const isBlankId = (id: string): boolean => id.trim() === "" && !id.includes("\ufeff")

/**
 * Whether a block outputs the run input itself: an enabled `trigger` (`Builtins.trigger`). None of
 * its params reads that input, so the planner and early cutoff count it as reading the whole input:
 * a run from a block with a new input executes it again.
 *
 * @since 0.1.0
 */
export const outputsRunInput = (block: Block): boolean => block.type === "trigger" && block.disabled !== true

const idTooLong = (id: string, path: JsonPath): IdTooLong | undefined => {
  const bytes = Params.utf8LengthOver(id, maxIdBytes)
  return bytes !== undefined ? new IdTooLong({ id, bytes, limit: maxIdBytes, path }) : undefined
}

/**
 * A block or container id contains a character reserved by the node-id codec (see `NodeId`).
 *
 * @since 0.1.0
 */
export class ReservedCharacter extends Data.TaggedError("ReservedCharacter")<{
  readonly id: string
  readonly character: string
  readonly path: JsonPath
}> {}

/**
 * Two blocks/containers share an id (blocks, loops and parallels share one id space), or a body
 * lists the same member twice.
 *
 * @since 0.1.0
 */
export class DuplicateId extends Data.TaggedError("DuplicateId")<{
  readonly id: string
  readonly path: JsonPath
  readonly firstPath: JsonPath
}> {}

/**
 * A container body lists an id that is neither a block nor a container.
 *
 * @since 0.1.0
 */
export class UnknownBodyMember extends Data.TaggedError("UnknownBodyMember")<{
  readonly container: string
  readonly id: string
  readonly path: JsonPath
}> {}

/**
 * A block or container is listed in the bodies of two containers.
 *
 * @since 0.1.0
 */
export class BlockInTwoContainers extends Data.TaggedError("BlockInTwoContainers")<{
  readonly id: string
  readonly containers: readonly [string, string]
  readonly path: JsonPath
}> {}

/**
 * A container contains itself, directly or through a chain of containers (`chain` ends where it starts).
 *
 * @since 0.1.0
 */
export class ContainerNestedInItself extends Data.TaggedError("ContainerNestedInItself")<{
  readonly id: string
  readonly chain: ReadonlyArray<string>
  readonly path: JsonPath
}> {}

/**
 * A parallel with an empty body.
 *
 * @since 0.1.0
 */
export class EmptyParallel extends Data.TaggedError("EmptyParallel")<{
  readonly id: string
  readonly path: JsonPath
}> {}

/**
 * A loop with an empty body.
 *
 * @since 0.1.0
 */
export class EmptyLoop extends Data.TaggedError("EmptyLoop")<{
  readonly id: string
  readonly path: JsonPath
}> {}

/**
 * A `while` loop without `maxIterations`.
 *
 * @since 0.1.0
 */
export class MissingMaxIterations extends Data.TaggedError("MissingMaxIterations")<{
  readonly id: string
  readonly path: JsonPath
}> {}

/**
 * A container lacks the field its kind needs: `count` (count), `items` (forEach, collection) or
 * `condition` (while).
 *
 * @since 0.1.0
 */
export class MissingContainerField extends Data.TaggedError("MissingContainerField")<{
  readonly id: string
  readonly field: "count" | "items" | "condition"
  readonly path: JsonPath
}> {}

/**
 * An edge names an id that is neither a block nor a container.
 *
 * @since 0.1.0
 */
export class DanglingEdge extends Data.TaggedError("DanglingEdge")<{
  readonly source: string
  readonly target: string
  readonly missing: string
  readonly path: JsonPath
}> {}

/**
 * An edge joins two ids with different enclosing containers; edges into or out of a container
 * must use the container's id.
 *
 * @since 0.1.0
 */
export class EdgeCrossesContainer extends Data.TaggedError("EdgeCrossesContainer")<{
  readonly source: string
  readonly target: string
  readonly sourceContainer: string | undefined
  readonly targetContainer: string | undefined
  readonly path: JsonPath
}> {}

/**
 * A declared output is neither a block nor a container.
 *
 * @since 0.1.0
 */
export class UnknownOutput extends Data.TaggedError("UnknownOutput")<{
  readonly id: string
  readonly path: JsonPath
}> {}

/**
 * The edges form a cycle; `cycle` lists the ids along it, the first repeated at the end, and `path`
 * points at one edge of it.
 *
 * @since 0.1.0
 */
export class Cycle extends Data.TaggedError("Cycle")<{
  readonly cycle: ReadonlyArray<string>
  readonly path: JsonPath
}> {}

/**
 * A `$ref` value that does not follow the reference syntax (see `Reference`).
 *
 * @since 0.1.0
 */
export class InvalidReference extends Data.TaggedError("InvalidReference")<{
  /** The block or container whose params/config hold the reference. */
  readonly owner: string
  readonly reference: string
  readonly reason: string
  readonly path: JsonPath
}> {}

/**
 * A reference to a block, container, input or variable that does not exist (`target` names it).
 *
 * @since 0.1.0
 */
export class UnknownReference extends Data.TaggedError("UnknownReference")<{
  readonly owner: string
  readonly reference: string
  readonly target: string
  readonly path: JsonPath
}> {}

/**
 * A reference to a block that is not an ancestor of the referencing block in the DAG, or to a
 * block inside a container the referencing block is not in.
 *
 * @since 0.1.0
 */
export class NonAncestorReference extends Data.TaggedError("NonAncestorReference")<{
  readonly owner: string
  readonly reference: string
  readonly target: string
  readonly reason: string
  readonly path: JsonPath
}> {}

/**
 * A `loop.*` reference outside any loop, or a `parallel.*` reference outside any parallel.
 *
 * @since 0.1.0
 */
export class ReferenceOutsideScope extends Data.TaggedError("ReferenceOutsideScope")<{
  readonly owner: string
  readonly reference: string
  readonly scope: Reference.Scope
  readonly path: JsonPath
}> {}

/**
 * A run input (or an input's declared default) whose value does not have the declared type.
 *
 * @since 0.1.0
 */
export class InputTypeMismatch extends Data.TaggedError("InputTypeMismatch")<{
  readonly key: string
  readonly expected: InputDeclaration["type"]
  readonly actual: string
  readonly path: JsonPath
}> {}

/**
 * A required run input is absent and has no default.
 *
 * @since 0.1.0
 */
export class MissingInput extends Data.TaggedError("MissingInput")<{
  readonly key: string
  readonly path: JsonPath
}> {}

/**
 * A run input key that the workflow does not declare.
 *
 * @since 0.1.0
 */
export class UnknownInput extends Data.TaggedError("UnknownInput")<{
  readonly key: string
  readonly path: JsonPath
}> {}

/**
 * A value no store can hold, refused before it reaches one so that behaviour never depends on the
 * backend: a string (a value or an object key) with a NUL character (`\u0000`, which PostgreSQL
 * refuses in text and JSON) or a lone UTF-16 surrogate (which has no UTF-8 encoding), a number
 * that is not finite (JSON has no text for it), or a value nested deeper than `maxDepth`. `path`
 * is the JSON path of the offending value (or of the object holding the offending key).
 *
 * @since 0.1.0
 */
export class UnstorableValue extends Data.TaggedError("UnstorableValue")<{
  readonly reason: string
  readonly path: JsonPath
}> {
  override get message() {
    return `${this.reason} at ${JSON.stringify(this.path)}: no store can hold it`
  }
}

/**
 * The latest instant a JavaScript `Date` can hold (year 275760), in epoch milliseconds: a wake time
 * past it has no date, so it could be neither stored as one nor shown.
 *
 * @since 0.1.0
 */
export const maxTime = 8_640_000_000_000_000

/**
 * The longest `sleep` a workflow may declare with `ms`: a century (a longer one is a mistake, and the
 * bound keeps every wake time far inside the range of `Date`).
 *
 * @since 0.1.0
 */
export const maxSleepMs = 100 * 365 * 24 * 3_600_000

/**
 * A `sleep` block whose `ms` or `until` is not a time Ripple can wait for: `ms` not a number from 0
 * to `maxSleepMs`, or `until` not a valid date (an ISO date, or epoch milliseconds up to `maxTime`).
 *
 * @since 0.1.0
 */
export class InvalidTime extends Data.TaggedError("InvalidTime")<{
  readonly block: string
  readonly reason: string
  readonly path: JsonPath
}> {}

/**
 * A block's params do not fit its type's schema (`Params.builtins` for the built-in types, the
 * schema a handler declares for the others), whatever their references resolve to: `reason` says
 * what is wrong with the value at `path`.
 *
 * @since 0.1.0
 */
export class InvalidParams extends Data.TaggedError("InvalidParams")<{
  readonly block: string
  readonly type: string
  readonly reason: string
  readonly path: JsonPath
}> {
  override get message() {
    return `${this.type} block "${this.block}": ${this.reason} at ${JSON.stringify(this.path)}`
  }
}

/**
 * A secret marker that is malformed, or outside an `http` block's `url`, `query`, `headers`,
 * `auth`, `json` and `text` (no other block reads secrets: anywhere else the marker would be
 * journaled and read back as data).
 *
 * @since 0.1.0
 */
export class InvalidSecret extends Data.TaggedError("InvalidSecret")<{
  readonly owner: string
  readonly reason: string
  readonly path: JsonPath
}> {
  override get message() {
    return `${this.owner}: ${this.reason} at ${JSON.stringify(this.path)}`
  }
}

/**
 * Caps on the work one run may expand to, so that a `count` of 10^9 is refused instead of running
 * until memory or disk runs out. `decode` checks what the file states (literal counts and items,
 * `while` loops' `maxIterations`, and the expanded node count they imply); the engine checks again
 * what data decides (`forEach` / `collection` items and counts read through references).
 *
 * **Details**
 *
 * The `ripple` command reads them from `RIPPLE_MAX_ITERATIONS`, `RIPPLE_MAX_BRANCHES` and
 * `RIPPLE_MAX_NODES`; embedders pass them to `decode` and to the engine's `limits` option.
 *
 * @since 0.1.0
 */
export interface Limits {
  /** Iterations of one loop instance (default 100 000). */
  readonly maxIterations: number
  /** Branches of one parallel instance (default 10 000). */
  readonly maxBranches: number
  /** Expanded nodes (block and container-sentinel instances) of one run (default 1 000 000). */
  readonly maxNodes: number
}

/**
 * The default `Limits`: sized for a laptop.
 *
 * @since 0.1.0
 */
export const defaultLimits: Limits = { maxIterations: 100_000, maxBranches: 10_000, maxNodes: 1_000_000 }

/**
 * The environment variable that raises each limit in the `ripple` command.
 *
 * @since 0.1.0
 */
export const limitVariables: { readonly [K in keyof Limits]: string } = {
  maxIterations: "RIPPLE_MAX_ITERATIONS",
  maxBranches: "RIPPLE_MAX_BRANCHES",
  maxNodes: "RIPPLE_MAX_NODES"
}

/**
 * A workflow (or, at run time, the data it reads) asks for more work than a `Limits` cap allows:
 * `value` against `max` for the cap named by `limit`.
 *
 * @since 0.1.0
 */
export class LimitExceeded extends Data.TaggedError("LimitExceeded")<{
  readonly limit: keyof Limits
  readonly value: number
  readonly max: number
  readonly path: JsonPath
}> {
  override get message() {
    return `${this.value} exceeds ${this.limit} (${this.max}) at ${JSON.stringify(this.path)}; raise it with ${
      limitVariables[this.limit]
    } or the limits option`
  }
}

/**
 * An option out of its range: its name (as passed, e.g. `limits.maxNodes`), the value given, and
 * what it must be. The runtime checks its own options with the same class (`Options.InvalidOption`).
 *
 * @since 0.1.0
 */
export class InvalidOption extends Data.TaggedError("InvalidOption")<{
  readonly option: string
  readonly value: unknown
  readonly expected: string
}> {
  override get message(): string {
    return `option ${this.option} is ${typeof this.value === "string" ? JSON.stringify(this.value) : String(this.value)}: ${this.expected}`
  }
}

/**
 * The first of `limits` (a `Partial<Limits>` as given, named `option`) that is no cap: not an
 * object, a name that is no limit, or a value that is not a whole number of at least 1.
 *
 * **Details**
 *
 * Without it a careless value turned a cap off silently: `NaN`, `undefined` or a string compares
 * false against every size, and a misspelt name was ignored.
 *
 * @since 0.1.0
 */
export const invalidLimit = (limits: unknown, option = "limits"): InvalidOption | undefined => {
  if (limits === undefined) return undefined
  if (typeof limits !== "object" || limits === null || Array.isArray(limits)) {
    return new InvalidOption({ option, value: limits, expected: `expected an object of ${limitNames}` })
  }
  for (const [name, value] of Object.entries(limits)) {
    if (!Object.hasOwn(defaultLimits, name)) {
      return new InvalidOption({ option: `${option}.${name}`, value, expected: `expected a limit named one of ${limitNames}` })
    }
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
      return new InvalidOption({ option: `${option}.${name}`, value, expected: "expected a whole number of at least 1" })
    }
  }
  return undefined
}

const limitNames = Object.keys(limitVariables).join(", ")

/**
 * A disabled block that is not a sink passes its input's output on, so it must have exactly one
 * incoming edge.
 *
 * @since 0.1.0
 */
export class DisabledBlockInputs extends Data.TaggedError("DisabledBlockInputs")<{
  readonly block: string
  readonly inputs: number
  readonly path: JsonPath
}> {
  override get message() {
    return `disabled block "${this.block}" passes its input on and needs exactly one incoming edge, not ${this.inputs} (or no outgoing edge: then it is skipped)`
  }
}

/**
 * Every error of `decode` and `inputsFor`.
 *
 * @since 0.1.0
 */
export type WorkflowError =
  | SchemaMismatch
  | InvalidId
  | IdTooLong
  | ReservedCharacter
  | DuplicateId
  | UnknownBodyMember
  | BlockInTwoContainers
  | ContainerNestedInItself
  | EmptyParallel
  | EmptyLoop
  | MissingMaxIterations
  | MissingContainerField
  | DanglingEdge
  | EdgeCrossesContainer
  | DisabledBlockInputs
  | UnknownOutput
  | Cycle
  | InvalidReference
  | UnknownReference
  | NonAncestorReference
  | ReferenceOutsideScope
  | InputTypeMismatch
  | MissingInput
  | UnknownInput
  | UnstorableValue
  | ValueTooLarge
  | InvalidTime
  | InvalidSecret
  | InvalidParams
  | LimitExceeded

/**
 * How deeply `unstorable` lets values nest (a cyclic object is infinitely deep): the containers
 * (arrays and objects) one inside the other, the outermost counted.
 *
 * **Details**
 *
 * Far inside what every path a value takes can nest: `JSON.stringify` (the size check, the SQL
 * stores' writes), fingerprints and built-ins recurse per level, and overflow the stack somewhere
 * past 4 000 levels depending on how deep the caller already is; PostgreSQL's JSON parser stops at
 * its `max_stack_depth`. A deeper value is refused by path wherever it comes from, not stored on one
 * store and refused (or misreported as too large) on another.
 *
 * @since 0.1.0
 */
export const maxDepth = 1_000

// A NUL, a high surrogate not followed by a low one, or a low one not preceded by a high one.
const unstorableUnit = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

// Whether a string may hold a problem: a scan of its code units, far cheaper than the regex.
const suspicious = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit === 0 || (unit >= 0xd800 && unit <= 0xdfff)) return true
  }
  return false
}

const textProblem = (text: string): string | undefined => {
  if (!suspicious(text)) return undefined
  const found = unstorableUnit.exec(text)
  if (found === null) return undefined
  const unit = found[0].charCodeAt(0)
  return unit === 0 ? "NUL character (\\u0000)" : `lone surrogate \\u${unit.toString(16)}`
}

// Whether a value nested at most 64 deep is storable, by a walk that allocates nothing (the common
// case, e.g. every value of a large workflow); anything else gets the walk that finds the path.
const shallowStorable = (value: unknown, depth: number): boolean => {
  if (typeof value === "string") return !suspicious(value)
  if (typeof value === "number") return Number.isFinite(value)
  if (typeof value !== "object" || value === null) return true
  if (depth >= 64) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!shallowStorable(value[i], depth + 1)) return false
    return true
  }
  const keys = Object.keys(value)
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!
    if (suspicious(key) || !shallowStorable((value as Record<string, unknown>)[key], depth + 1)) return false
  }
  return true
}

/**
 * The first part of a value that no store can hold (see `UnstorableValue`), its path prefixed with
 * `at`; `undefined` when every store can hold all of it.
 *
 * **Details**
 *
 * Walks iteratively, so a deep value cannot overflow the stack. Values outside `Json` that
 * `JSON.stringify` drops (`undefined`, functions) are not its concern.
 *
 * @since 0.1.0
 */
export const unstorable = (value: unknown, at: JsonPath = []): UnstorableValue | undefined => {
  if (typeof value === "string") {
    const problem = textProblem(value)
    return problem === undefined ? undefined : new UnstorableValue({ reason: problem, path: at })
  }
  if (typeof value === "number") {
    return Number.isFinite(value) ? undefined : new UnstorableValue({ reason: `non-finite number ${value}`, path: at })
  }
  if (typeof value !== "object" || value === null || shallowStorable(value, 0)) return undefined
  const walked = walk(value, at, false)
  return Result.isFailure(walked) ? walked.failure : undefined
}

// What a JavaScript value is when it is not JSON data (`undefined` when it is, or is `undefined`).
const foreignKind = (value: unknown): string | undefined => {
  switch (typeof value) {
    case "bigint":
      return "a bigint"
    case "symbol":
      return "a symbol"
    case "function":
      return "a function"
    case "object": {
      if (value === null || Array.isArray(value)) return undefined
      const proto = Object.getPrototypeOf(value)
      if (proto === Object.prototype || proto === null) return undefined
      const name = typeof proto?.constructor === "function" ? proto.constructor.name : ""
      return name === "" ? "an object that is not a plain object" : `a ${name}`
    }
    default:
      return undefined
  }
}

const noCopy: unique symbol = Symbol("noCopy")

// Sets an own member, `__proto__` included (an assignment would set the prototype instead).
const setMember = (object: Record<string, Json>, key: string, value: Json) => {
  if (key === "__proto__") Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true })
  else object[key] = value
}

// The copy of a value that needs no normalising and is nested at most 64 deep, made by plain
// recursion (the common case); `noCopy` for anything else, which `walk` handles.
const copyPlain = (value: unknown, depth: number): Json | typeof noCopy => {
  switch (typeof value) {
    case "string":
      return suspicious(value) ? noCopy : value
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0) ? value : noCopy
    case "boolean":
      return value
    case "object": {
      if (value === null) return null
      if (depth >= 64) return noCopy
      if (Array.isArray(value)) {
        const out: Array<Json> = new Array(value.length)
        for (let i = 0; i < value.length; i++) {
          if (value[i] === undefined) return noCopy
          const item = copyPlain(value[i], depth + 1)
          if (item === noCopy) return noCopy
          out[i] = item
        }
        return out
      }
      if (foreignKind(value) !== undefined) return noCopy
      const out: Record<string, Json> = {}
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue
        const item = (value as Record<string, unknown>)[key]
        if (item === undefined || suspicious(key)) return noCopy
        const copied = copyPlain(item, depth + 1)
        if (copied === noCopy) return noCopy
        setMember(out, key, copied)
      }
      return out
    }
    default:
      return noCopy
  }
}

interface Slot {
  readonly value: unknown
  readonly key: string | number
  readonly parent: Slot | undefined
  /** Where the copy goes: the container copied for the parent (none when only checking). */
  readonly into: Array<Json> | Record<string, Json> | undefined
  readonly depth: number
}

// The walk of `unstorable` (`copy` false: only checks, and leaves JavaScript values outside JSON
// to the copy) and of `toStorable` for what `copyPlain` declined (`copy` true): iterative (a deep
// value cannot overflow the stack), in document order, so the first problem found is the first in
// the value.
const walk = (value: unknown, at: JsonPath, copy: boolean): Result.Result<Json, UnstorableValue> => {
  const root: Record<string, Json> | undefined = copy ? {} : undefined
  const pathOf = (slot: Slot | undefined): JsonPath => {
    const keys: Array<string | number> = []
    for (let s = slot; s?.parent !== undefined; s = s.parent) keys.push(s.key)
    return [...at, ...keys.reverse()]
  }
  const stack: Array<Slot> = [{ value, key: "value", parent: undefined, into: root, depth: 0 }]
  while (stack.length > 0) {
    const slot = stack.pop()!
    const { into, key } = slot
    const put = (copied: Json) => {
      if (into === undefined) return
      if (Array.isArray(into)) into[key as number] = copied
      else setMember(into, key as string, copied)
    }
    if (typeof key === "string" && slot.parent !== undefined) {
      const problem = textProblem(key)
      if (problem !== undefined) return Result.fail(new UnstorableValue({ reason: `${problem} in key ${JSON.stringify(key)}`, path: pathOf(slot.parent) }))
    }
    const current = slot.value
    const foreign = copy ? foreignKind(current) : undefined
    if (foreign !== undefined) {
      return Result.fail(new UnstorableValue({ reason: `${foreign}, which is not JSON data (convert it to a string, number, array or plain object)`, path: pathOf(slot) }))
    }
    if (current === undefined) {
      // As JSON has it: an absent member is left out, an absent element (or value) is null.
      if (Array.isArray(into) || slot.parent === undefined) put(null)
      continue
    }
    if (typeof current === "string") {
      const problem = textProblem(current)
      if (problem !== undefined) return Result.fail(new UnstorableValue({ reason: problem, path: pathOf(slot) }))
      put(current)
      continue
    }
    if (typeof current === "number") {
      if (!Number.isFinite(current)) return Result.fail(new UnstorableValue({ reason: `non-finite number ${current}`, path: pathOf(slot) }))
      put(current === 0 ? 0 : current)
      continue
    }
    if (typeof current !== "object" || current === null) {
      put(current as Json)
      continue
    }
    if (slot.depth >= maxDepth) return Result.fail(new UnstorableValue({ reason: `nested deeper than ${maxDepth} levels`, path: pathOf(slot) }))
    const depth = slot.depth + 1
    if (Array.isArray(current)) {
      const items: Array<Json> | undefined = copy ? new Array(current.length).fill(null) : undefined
      if (items !== undefined) put(items)
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], key: i, parent: slot, into: items, depth })
      continue
    }
    const members: Record<string, Json> | undefined = copy ? {} : undefined
    if (members !== undefined) put(members)
    const keys = Object.keys(current)
    for (let k = keys.length - 1; k >= 0; k--) {
      stack.push({ value: (current as Record<string, unknown>)[keys[k]!], key: keys[k]!, parent: slot, into: members, depth })
    }
  }
  return Result.succeed(root?.["value"] ?? null)
}

/**
 * A value as every store holds it: a copy of its JSON data, or the first part of it that no store
 * can hold (see `UnstorableValue`), its path prefixed with `at`.
 *
 * **Details**
 *
 * What a store keeps must read back identical from every store, and a JavaScript handler can
 * return more than JSON. What `JSON.stringify` normalises is normalised the same way here, for
 * every store: `-0` becomes `0`, a member whose value is `undefined` is left out, an `undefined`
 * (or missing) array element becomes `null`, and `undefined` itself `null`. What JSON would lose or
 * cannot write is refused, naming it: a bigint, a symbol, a function, an object that is not a plain
 * object or an array (a `Date`, a `Map`, a class instance), besides what `unstorable` refuses.
 * Objects and arrays are copied, so what was stored never changes when the caller later mutates
 * what it returned.
 *
 * @since 0.1.0
 */
export const toStorable = (value: unknown, at: JsonPath = []): Result.Result<Json, UnstorableValue> => {
  const copied = copyPlain(value, 0)
  return copied === noCopy ? walk(value, at, true) : Result.succeed(copied)
}

/**
 * The largest value every store holds and reads back: 64 MiB of JSON text (UTF-8 bytes of
 * `JSON.stringify(value)`), for a handler's output, a node's resolved inputs, a run's input and a
 * signal or approval payload.
 *
 * **Details**
 *
 * A larger value is refused before it is written (`ValueTooLarge`), whatever the store, so no run
 * writes what it cannot read back: PostgreSQL's `jsonb` holds at most 256 MiB, a JavaScript string
 * about 512 Mi code units, and a stored row is one wire message (`Database.maxMessageSize`).
 *
 * @since 0.1.0
 */
export const maxValueBytes = 64 * 1024 * 1024

/**
 * A value larger than `limit` bytes of JSON text (see `maxValueBytes`): refused before it is
 * written, so nothing a store could not read back is stored. `path` locates the value.
 *
 * @since 0.1.0
 */
export class ValueTooLarge extends Data.TaggedError("ValueTooLarge")<{
  readonly bytes: number
  readonly limit: number
  readonly path: JsonPath
}> {
  override get message() {
    return `${this.bytes} bytes of JSON at ${JSON.stringify(this.path)}, over the limit of ${this.limit} bytes`
  }
}

// V8's longest string, in code units (2^29 - 24).
const longestString = 536_870_888

// UTF-8 bytes of a string: a code unit below 0x80 is one byte, below 0x800 two, a surrogate (half
// of a pair, four bytes) two, any other three.
const utf8Bytes = (text: string): number => {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0x80) bytes += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2
  }
  return bytes
}

// An upper bound of the UTF-8 bytes of a value's JSON text, by a walk that allocates nothing and
// stops once it passes `budget`: a code unit is at most six bytes (escaped), a number or literal at
// most 24 characters; past 64 levels it gives up (Infinity) and the caller serializes.
const sizeBound = (value: unknown, budget: number, depth: number): number => {
  if (typeof value === "string") return 6 * value.length + 2
  if (typeof value !== "object" || value === null) return 24
  if (depth >= 64) return Infinity
  let size = 2
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && size <= budget; i++) size += 1 + sizeBound(value[i], budget - size, depth + 1)
    return size
  }
  const keys = Object.keys(value)
  for (let k = 0; k < keys.length && size <= budget; k++) {
    const key = keys[k]!
    size += 6 * key.length + 4 + sizeBound((value as Record<string, unknown>)[key], budget - size, depth + 1)
  }
  return size
}

/**
 * The value when its JSON text is over `limit` bytes (default `maxValueBytes`) as a
 * `ValueTooLarge` at path `at`; `undefined` when it fits.
 *
 * **Details**
 *
 * A walk that allocates nothing bounds the size first; the value is serialized and its bytes
 * counted only when the bound passes `limit`. Check `unstorable` first: a value it refuses may not
 * serialize.
 *
 * @since 0.1.0
 */
export const oversized = (value: unknown, at: JsonPath = [], limit: number = maxValueBytes): ValueTooLarge | undefined => {
  if (sizeBound(value, limit, 0) <= limit) return undefined
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    // Longer than the longest string JavaScript holds (`RangeError`): at least that many bytes.
    return new ValueTooLarge({ bytes: longestString, limit, path: at })
  }
  const bytes = text === undefined ? 0 : utf8Bytes(text)
  return bytes > limit ? new ValueTooLarge({ bytes, limit, path: at }) : undefined
}

// Unknown keys are errors, not silently dropped: a misspelt `parms` must not decode as "no params".
const decodeShape = Schema.decodeUnknownResult(WorkflowSchema, { onExcessProperty: "error" })
const encodeShape = Schema.encodeSync(WorkflowSchema)
const issuesOf = SchemaIssue.makeFormatterStandardSchemaV1()

type Container = (Loop | Parallel) & { readonly path: JsonPath; readonly container: "loop" | "parallel" }

const typeOfJson = (value: Json): string =>
  value === null ? "null" : Array.isArray(value) ? "array" : typeof value

const matchesType = (type: InputDeclaration["type"], value: Json): boolean =>
  type === "json" || typeOfJson(value) === type

/** Ids are checked in document order: blocks, then loops, then parallels. */
const idSections = ["blocks", "loops", "parallels"] as const

const idPath = (section: number, i: number): JsonPath => [idSections[section]!, i, "id"]

/**
 * Checks ids and fills `seen` with every id (then the set of known ids). Paths are built only for
 * errors: `seen` maps an id to its section and position, not to a path array per id.
 */
const checkIds = (workflow: Workflow, seen: Map<string, number>): WorkflowError | undefined => {
  // Runs, versions and snapshots are looked up by the workflow's id: a blank one names nothing.
  if (isBlankId(workflow.id)) return new InvalidId({ id: workflow.id, path: ["id"] })
  const long = idTooLong(workflow.id, ["id"])
  if (long !== undefined) return long
  const sections = [workflow.blocks, workflow.loops ?? [], workflow.parallels ?? []] as const
  for (let section = 0; section < sections.length; section++) {
    const items = sections[section]!
    for (let i = 0; i < items.length; i++) {
      const id = items[i]!.id
      if (id.length === 0 || id === "__proto__") return new InvalidId({ id, path: idPath(section, i) })
      const long = idTooLong(id, idPath(section, i))
      if (long !== undefined) return long
      const character = NodeId.reservedCharacterOf(id)
      if (character !== undefined) return new ReservedCharacter({ id, character, path: idPath(section, i) })
      const first = seen.get(id)
      if (first !== undefined) return new DuplicateId({ id, path: idPath(section, i), firstPath: idPath(first % 3, Math.floor(first / 3)) })
      seen.set(id, i * 3 + section)
    }
  }
  return undefined
}

const containersOf = (workflow: Workflow): ReadonlyArray<Container> => [
  ...(workflow.loops ?? []).map((l, i) => ({ ...l, path: ["loops", i], container: "loop" as const })),
  ...(workflow.parallels ?? []).map((p, i) => ({ ...p, path: ["parallels", i], container: "parallel" as const }))
]

const requiredField = (container: Container): "count" | "items" | "condition" =>
  container.kind === "count" ? "count" : container.kind === "while" ? "condition" : "items"

const checkContainers = (
  containers: ReadonlyArray<Container>,
  parent: Map<string, string>,
  known: ReadonlyMap<string, unknown>
): WorkflowError | undefined => {
  for (const c of containers) {
    if (c.body.length === 0) {
      return c.container === "loop" ? new EmptyLoop({ id: c.id, path: [...c.path, "body"] }) : new EmptyParallel({ id: c.id, path: [...c.path, "body"] })
    }
    const field = requiredField(c)
    if (c[field as keyof Container] === undefined) {
      return new MissingContainerField({ id: c.id, field, path: [...c.path, field] })
    }
    if (c.kind === "while" && (c as Loop).maxIterations === undefined) {
      return new MissingMaxIterations({ id: c.id, path: [...c.path, "maxIterations"] })
    }
  }
  const claimedAt = new Map<string, JsonPath>()
  for (const c of containers) {
    for (let m = 0; m < c.body.length; m++) {
      const member = c.body[m]!
      const path = [...c.path, "body", m]
      if (!known.has(member)) return new UnknownBodyMember({ container: c.id, id: member, path })
      const owner = parent.get(member)
      if (owner === c.id) return new DuplicateId({ id: member, path, firstPath: claimedAt.get(member)! })
      if (owner !== undefined) return new BlockInTwoContainers({ id: member, containers: [owner, c.id], path })
      parent.set(member, c.id)
      claimedAt.set(member, path)
    }
  }
  for (const c of containers) {
    const chain = [c.id]
    let current = parent.get(c.id)
    while (current !== undefined && chain.length <= containers.length) {
      chain.push(current)
      if (current === c.id) return new ContainerNestedInItself({ id: c.id, chain, path: claimedAt.get(c.id)! })
      current = parent.get(current)
    }
  }
  return undefined
}

const checkEdges = (workflow: Workflow, parent: ReadonlyMap<string, string>, known: ReadonlyMap<string, unknown>) => {
  for (let e = 0; e < workflow.edges.length; e++) {
    const { source, target } = workflow.edges[e]!
    for (const [side, id] of [["source", source], ["target", target]] as const) {
      if (!known.has(id)) return new DanglingEdge({ source, target, missing: id, path: ["edges", e, side] })
    }
    const sourceContainer = parent.get(source)
    const targetContainer = parent.get(target)
    if (sourceContainer !== targetContainer) {
      return new EdgeCrossesContainer({ source, target, sourceContainer, targetContainer, path: ["edges", e] })
    }
  }
  return undefined
}

const checkDisabled = (workflow: Workflow): WorkflowError | undefined => {
  if (!workflow.blocks.some((b) => b.disabled === true)) return undefined
  const incoming = new Map<string, number>()
  const sources = new Set<string>()
  for (const edge of workflow.edges) {
    incoming.set(edge.target, (incoming.get(edge.target) ?? 0) + 1)
    sources.add(edge.source)
  }
  for (let b = 0; b < workflow.blocks.length; b++) {
    const block = workflow.blocks[b]!
    const inputs = incoming.get(block.id) ?? 0
    if (block.disabled === true && sources.has(block.id) && inputs !== 1) {
      return new DisabledBlockInputs({ block: block.id, inputs, path: ["blocks", b, "disabled"] })
    }
  }
  return undefined
}

/**
 * How a disabled block runs: `undefined` for an enabled block or a disabled sink (skipped), else
 * the block as a pass-through — params `{ value: <its single input's output> }` (a reference to
 * the source of its one incoming edge), no `retry`, not `volatile` — whose output is `value`.
 *
 * **Details**
 *
 * The pass-through's resolved inputs are what an engine records and what a planner compares, so a
 * disabled block re-runs exactly when its input's output changed; its own params are ignored.
 *
 * @since 0.1.0
 */
export const passThrough = (workflow: Workflow, block: Block): Block | undefined => {
  if (block.disabled !== true) return undefined
  const edge = workflow.edges.find((e) => e.target === block.id)
  if (edge === undefined || !workflow.edges.some((e) => e.source === block.id)) return undefined
  return { id: block.id, type: block.type, params: { value: { $ref: `blocks.${edge.source}.output` } }, disabled: true }
}

/**
 * Whether a block is a disabled sink (no outgoing edge): it is skipped, never executed.
 *
 * @since 0.1.0
 */
export const isSkippedSink = (workflow: Workflow, block: Block): boolean =>
  block.disabled === true && !workflow.edges.some((e) => e.source === block.id)

const checkDeclarations = (workflow: Workflow, known: ReadonlyMap<string, unknown>): WorkflowError | undefined => {
  const outputs = workflow.outputs ?? []
  for (let o = 0; o < outputs.length; o++) {
    if (!known.has(outputs[o]!)) return new UnknownOutput({ id: outputs[o]!, path: ["outputs", o] })
  }
  for (const [key, declaration] of Object.entries(workflow.inputs ?? {})) {
    if (declaration.default !== undefined && !matchesType(declaration.type, declaration.default)) {
      return new InputTypeMismatch({
        key,
        expected: declaration.type,
        actual: typeOfJson(declaration.default),
        path: ["inputs", key, "default"]
      })
    }
  }
  return undefined
}

// How many instances of its body one container instance makes, as far as the file states it
// (`undefined`: decided by data at run time).
const statedSize = (c: Container): number | undefined => {
  if (c.container === "loop" && c.kind === "while") return (c as Loop).maxIterations
  if (c.kind === "count") return typeof c.count === "number" ? Math.max(0, Math.floor(c.count)) : undefined
  return Array.isArray(c.items) ? c.items.length : undefined
}

const checkLimits = (
  workflow: Workflow,
  containers: ReadonlyArray<Container>,
  parent: ReadonlyMap<string, string>,
  limits: Limits
): WorkflowError | undefined => {
  const sizes = new Map<string, number>()
  for (const c of containers) {
    const size = statedSize(c)
    if (size === undefined) continue
    const limit = c.container === "loop" ? "maxIterations" : "maxBranches"
    if (size > limits[limit]) {
      const field = c.container === "loop" && c.kind === "while" ? "maxIterations" : c.kind === "count" ? "count" : "items"
      return new LimitExceeded({ limit, value: size, max: limits[limit], path: [...c.path, field] })
    }
    sizes.set(c.id, size)
  }
  // Every block once and every container twice (start and end), times the stated sizes of the
  // containers around it; reported at the outermost container that multiplies it.
  const pathOf = new Map(containers.map((c) => [c.id, c.path]))
  const instances = (id: string): [number, JsonPath | undefined] => {
    let product = 1
    let outermost: JsonPath | undefined
    for (let c = parent.get(id); c !== undefined; c = parent.get(c)) {
      product *= sizes.get(c) ?? 1
      outermost = pathOf.get(c)
    }
    return [product, outermost]
  }
  let total = 0
  const ids: Array<[string, number, JsonPath]> = [
    ...workflow.blocks.map((b, i): [string, number, JsonPath] => [b.id, 1, ["blocks", i]]),
    ...containers.map((c): [string, number, JsonPath] => [c.id, 2, c.path])
  ]
  for (const [id, weight, own] of ids) {
    const [product, outermost] = instances(id)
    total += weight * product
    if (total > limits.maxNodes) {
      return new LimitExceeded({ limit: "maxNodes", value: total, max: limits.maxNodes, path: outermost ?? own })
    }
  }
  return undefined
}

// Only literal times are checked here: one read through a reference is checked when the block runs.
const timeProblem = (field: string, value: Json): string | undefined => {
  if (field === "ms") {
    if (typeof value !== "number") return "ms must be a number of milliseconds"
    return value >= 0 && value <= maxSleepMs ? undefined : `ms must be from 0 to ${maxSleepMs} (a century), not ${value}`
  }
  if (typeof value === "number") {
    return Math.abs(value) <= maxTime ? undefined : `until ${value} is past the last date (epoch ms ${maxTime}, year 275760)`
  }
  if (typeof value !== "string") return "until must be an ISO date or epoch milliseconds"
  return Number.isFinite(Date.parse(value)) ? undefined : `until ${JSON.stringify(value)} is not a valid date (before year 275760)`
}

const checkTimes = (workflow: Workflow): WorkflowError | undefined => {
  for (let i = 0; i < workflow.blocks.length; i++) {
    const block = workflow.blocks[i]!
    if (block.type !== "sleep" || block.params === undefined) continue
    for (const field of ["ms", "until"] as const) {
      const value = block.params[field]
      if (value === undefined || Reference.hasReferences(value)) continue
      const reason = timeProblem(field, value)
      if (reason !== undefined) return new InvalidTime({ block: block.id, reason, path: ["blocks", i, "params", field] })
    }
  }
  return undefined
}

const checkSecrets = (workflow: Workflow, containers: ReadonlyArray<Container>): WorkflowError | undefined => {
  for (let i = 0; i < workflow.blocks.length; i++) {
    const block = workflow.blocks[i]!
    if (block.params === undefined) continue
    const found = Params.secretProblem(block.type, block.params)
    if (found !== undefined) return new InvalidSecret({ owner: block.id, reason: found.reason, path: ["blocks", i, "params", ...found.path] })
  }
  for (const c of containers) {
    for (const field of ["count", "items", "condition"] as const) {
      const value = (c as Partial<Record<typeof field, Json>>)[field]
      const found = value === undefined ? undefined : Params.secretProblem("", value)
      if (found !== undefined) return new InvalidSecret({ owner: c.id, reason: found.reason, path: [...c.path, field, ...found.path] })
    }
  }
  return undefined
}

// A disabled block never runs its type: its params are not checked.
const checkParams = (workflow: Workflow): WorkflowError | undefined => {
  for (let i = 0; i < workflow.blocks.length; i++) {
    const block = workflow.blocks[i]!
    if (block.disabled === true) continue
    const found = Params.builtinProblem(block.type, block.params ?? {})
    if (found !== undefined) {
      return new InvalidParams({ block: block.id, type: block.type, reason: found.reason, path: ["blocks", i, "params", ...found.path] })
    }
  }
  return undefined
}

const checkCycle = (dag: Graph.Dag, sorted: Int32Array): WorkflowError | undefined => {
  if (sorted.length === dag.size) return undefined
  const cycle = Graph.findCycle(dag, sorted)
  const nodes = dag.nodes!
  const level = Math.min(...cycle.map((i) => nodes[i]!.chain.length))
  const ids: Array<string> = []
  for (const i of cycle.slice(0, -1)) {
    const node = nodes[i]!
    // A container appears as its start and end sentinels (and its body) but is one id at this level.
    if (node.chain.length === level && ids[ids.length - 1] !== node.id) ids.push(node.id)
  }
  if (ids.length > 1 && ids[0] === ids[ids.length - 1]) ids.pop()
  ids.push(ids[0]!)
  let edge = -1
  for (let k = 0; k + 1 < cycle.length && edge === -1; k++) {
    const from = cycle[k]!
    for (let o = dag.outOffsets[from]!; o < dag.outOffsets[from + 1]!; o++) {
      if (dag.outTargets[o] === cycle[k + 1] && dag.outEdges[o]! >= 0) {
        edge = dag.outEdges[o]!
        break
      }
    }
  }
  return new Cycle({ cycle: ids, path: edge === -1 ? ["edges"] : ["edges", edge] })
}

interface Referrer {
  readonly owner: string
  /** The node whose ancestors the references may read. */
  readonly node: number
  /** Containers whose scope (index/item, body outputs) the references may read, outer to inner. */
  readonly scope: ReadonlyArray<string>
  readonly value: Json
  readonly path: JsonPath
}

const referrersOf = (workflow: Workflow, containers: ReadonlyArray<Container>, dag: Graph.Dag): Array<Referrer> => {
  const out: Array<Referrer> = []
  const index = dag.index!
  workflow.blocks.forEach((block, i) => {
    if (block.params === undefined) return
    const node = index.get(block.id)!
    out.push({ owner: block.id, node, scope: Graph.chainAt(dag, node), value: block.params, path: ["blocks", i, "params"] })
  })
  for (const c of containers) {
    const start = index.get(`${c.id}#start`)!
    const end = index.get(`${c.id}#end`)!
    const chain = Graph.chainAt(dag, start)
    for (const field of ["count", "items", "condition"] as const) {
      const value = (c as Partial<Record<typeof field, Json>>)[field]
      if (value === undefined) continue
      const inside = field === "condition"
      out.push({
        owner: c.id,
        node: inside ? end : start,
        scope: inside ? [...chain, c.id] : chain,
        value,
        path: [...c.path, field]
      })
    }
  }
  return out
}

/**
 * Answers "is `target` a proper ancestor of `node`" for many targets at once without a full upstream
 * walk per referrer (which made validation quadratic): the walk goes upstream from `node`, skips
 * nodes that come before every target in topological order (no target can be above them), and
 * stops as soon as every target is found. Visit marks are stamps, so nothing is reallocated.
 */
const ancestry = (dag: Graph.Dag, sorted: Int32Array) => {
  const position = new Int32Array(dag.size)
  sorted.forEach((node, k) => (position[node] = k))
  const stamp = new Int32Array(dag.size)
  const wanted = new Int32Array(dag.size)
  const stack = new Int32Array(dag.size)
  let round = 0
  /**
   * The position among the first `count` of `targets` of the first target (node index) that is not
   * a proper ancestor of `node`, or -1.
   */
  return (node: number, targets: ReadonlyArray<number>, count: number): number => {
    round++
    let floor = dag.size
    let missing = 0
    for (let k = 0; k < count; k++) {
      const t = targets[k]!
      if (wanted[t] !== round) {
        wanted[t] = round
        missing++
        floor = Math.min(floor, position[t]!)
      }
    }
    let top = 0
    stack[top++] = node
    stamp[node] = round
    while (top > 0 && missing > 0) {
      const i = stack[--top]!
      for (let k = dag.inOffsets[i]!; k < dag.inOffsets[i + 1]!; k++) {
        const j = dag.inSources[k]!
        if (stamp[j] === round || position[j]! < floor) continue
        stamp[j] = round
        if (wanted[j] === round) missing--
        stack[top++] = j
      }
    }
    for (let k = 0; k < count; k++) {
      const t = targets[k]!
      if (stamp[t] !== round || t === node) return k
    }
    return -1
  }
}

const checkReferences = (
  workflow: Workflow,
  containers: ReadonlyArray<Container>,
  dag: Graph.Dag,
  sorted: Int32Array
): WorkflowError | undefined => {
  const kinds = new Map(containers.map((c) => [c.id, c.container]))
  const index = dag.index!
  const inputs = workflow.inputs ?? {}
  const variables = workflow.variables ?? {}
  const firstNotAbove = ancestry(dag, sorted)
  // Block references waiting for the ancestry walk. Their errors are built only when reported:
  // constructing an error captures a stack trace, which dominated decoding of large valid files.
  // The first `pending` entries are the current referrer's: the buffers are kept between referrers
  // (emptying them with `length = 0` frees their storage, and the next push allocates it again).
  const pendingOutputs: Array<number> = []
  const pendingOccurrences: Array<Reference.Occurrence> = []
  for (const referrer of referrersOf(workflow, containers, dag)) {
    // Per referrer: the first error in document order, where ancestry is checked for all block
    // references of the referrer in one walk.
    let pending = 0
    let first: WorkflowError | undefined
    for (const found of Reference.scan(referrer.value, referrer.path)) {
      if (Result.isFailure(found)) {
        const { reference, reason, at } = found.failure
        first = new InvalidReference({ owner: referrer.owner, reference, reason, path: at })
        break
      }
      const { reference, at } = found.success
      const base = () => ({ owner: referrer.owner, reference: Reference.format(reference), path: at })
      if (reference._tag === "Input") {
        if (!Object.hasOwn(inputs, reference.path[0])) first = new UnknownReference({ ...base(), target: `input.${reference.path[0]}` })
      } else if (reference._tag === "Variable") {
        if (!Object.hasOwn(variables, reference.name)) first = new UnknownReference({ ...base(), target: `vars.${reference.name}` })
      } else if (reference._tag === "Index" || reference._tag === "Item") {
        if (!referrer.scope.some((c) => kinds.get(c) === reference.scope)) {
          first = new ReferenceOutsideScope({ ...base(), scope: reference.scope })
        }
      } else {
        const target = reference.block
        const output = index.get(kinds.has(target) ? `${target}#end` : target)
        if (output === undefined) {
          first = new UnknownReference({ ...base(), target })
        } else {
          const targetChain = Graph.chainAt(dag, output)
          if (targetChain.some((c, k) => referrer.scope[k] !== c)) {
            first = new NonAncestorReference({
              ...base(),
              target,
              reason: `${target} is inside container ${targetChain[targetChain.length - 1]}, which does not enclose ${referrer.owner}`
            })
          } else {
            pendingOutputs[pending] = output
            pendingOccurrences[pending++] = found.success
          }
        }
      }
      if (first !== undefined) break
    }
    if (pending > 0) {
      const earlier = firstNotAbove(referrer.node, pendingOutputs, pending)
      if (earlier !== -1) {
        const { reference, at } = pendingOccurrences[earlier]!
        const target = (reference as Extract<Reference.Reference, { _tag: "BlockOutput" }>).block
        return new NonAncestorReference({
          owner: referrer.owner,
          reference: Reference.format(reference),
          path: at,
          target,
          reason: `${target} is not upstream of ${referrer.owner}`
        })
      }
    }
    if (first !== undefined) return first
  }
  return undefined
}

/**
 * Options of `decode`.
 *
 * @since 0.1.0
 */
export interface DecodeOptions {
  /** Caps on the work the workflow may state (default `defaultLimits`, per field). */
  readonly limits?: Partial<Limits> | undefined
  /**
   * `false` checks the shape with the `effect/Schema` decoder alone, skipping the hand-written
   * fast path: the same result and errors, slower. It is the reference the fast path is
   * property-tested against (default `true`).
   */
  readonly fastPath?: boolean | undefined
}

/**
 * Decodes and validates a workflow file.
 *
 * **Details**
 *
 * Returns the first error found; checks run in a fixed order (schema, storable text, ids, containers, edges,
 * disabled blocks' inputs,
 * declared outputs and input defaults, sleep times, secrets, params, limits, cycles, references) and each check walks the document in
 * order (blocks, loops, parallels, edges), so the error is deterministic. Every error names the
 * offending ids and the JSON path of the offending value. A limit of `options` that is no cap fails
 * with `InvalidOption` (`invalidLimit`) before the workflow is read.
 *
 * @since 0.1.0
 */
export function decode(input: unknown, options?: DecodeOptions & { readonly limits?: undefined }): Result.Result<Workflow, WorkflowError>
export function decode(input: unknown, options: DecodeOptions): Result.Result<Workflow, WorkflowError | InvalidOption>
export function decode(input: unknown, options: DecodeOptions = {}): Result.Result<Workflow, WorkflowError | InvalidOption> {
  const limit = invalidLimit(options.limits)
  if (limit !== undefined) return Result.fail(limit)
  const fast = options.fastPath === false ? undefined : Shape.wellFormed(input)
  const shaped = fast !== undefined ? Result.succeed(fast) : decodeShape(input)
  if (Result.isFailure(shaped)) {
    const first = issuesOf(shaped.failure.issue).issues[0]
    return Result.fail(
      new SchemaMismatch({
        message: first?.message ?? shaped.failure.message,
        path: (first?.path ?? []).map((key) => (typeof key === "number" ? key : String(key)))
      })
    )
  }
  const workflow = shaped.success
  const text = unstorable(workflow)
  if (text !== undefined) return Result.fail(text)
  const containers = containersOf(workflow)
  const parent = new Map<string, string>()
  // Every block and container id, once `checkIds` has passed.
  const known = new Map<string, number>()
  const structural = checkIds(workflow, known) ??
    checkContainers(containers, parent, known) ??
    checkEdges(workflow, parent, known) ??
    checkDisabled(workflow) ??
    checkDeclarations(workflow, known) ??
    checkTimes(workflow) ??
    checkSecrets(workflow, containers) ??
    checkParams(workflow) ??
    checkLimits(workflow, containers, parent, { ...defaultLimits, ...options.limits })
  if (structural !== undefined) return Result.fail(structural)
  const dag = Graph.expand(workflow)
  const sorted = Graph.kahn(dag)
  const semantic = checkCycle(dag, sorted) ?? checkReferences(workflow, containers, dag, sorted)
  return semantic === undefined ? Result.succeed(workflow) : Result.fail(semantic)
}

/**
 * Encodes a workflow to its plain JSON file form (`decode(encode(w))` gives back `w`).
 *
 * @since 0.1.0
 */
export const encode = (workflow: Workflow): Json => (Shape.wellFormed(workflow) ?? encodeShape(workflow)) as Json

/**
 * The run input of a workflow: declared defaults filled in, and every key checked against the
 * declarations (`MissingInput`, `UnknownInput`, `InputTypeMismatch`, first in declaration order),
 * after the whole input is checked storable (`UnstorableValue`, its path relative to the input) and
 * no larger than `maxValueBytes` (`ValueTooLarge`).
 *
 * **Details**
 *
 * An input without a default is required unless it is declared `required: false`.
 *
 * @since 0.1.0
 */
export const inputsFor = (
  workflow: Workflow,
  given: { readonly [key: string]: Json } = {}
): Result.Result<Record<string, Json>, WorkflowError> => {
  // A copy as every store holds it, so the run's input reads back as the memory store keeps it.
  const copied = toStorable(given)
  if (Result.isFailure(copied)) return Result.fail(copied.failure)
  const input = copied.success as { readonly [key: string]: Json }
  const large = oversized(input)
  if (large !== undefined) return Result.fail(large)
  const declarations = workflow.inputs ?? {}
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(declarations, key)) return Result.fail(new UnknownInput({ key, path: [key] }))
  }
  const out: Record<string, Json> = {}
  for (const [key, declaration] of Object.entries(declarations)) {
    const value = Object.hasOwn(input, key) ? input[key]! : declaration.default
    if (value === undefined) {
      if (declaration.required !== false) return Result.fail(new MissingInput({ key, path: [key] }))
      continue
    }
    if (!matchesType(declaration.type, value)) {
      return Result.fail(new InputTypeMismatch({ key, expected: declaration.type, actual: typeOfJson(value), path: [key] }))
    }
    setMember(out, key, value)
  }
  return Result.succeed(out)
}
