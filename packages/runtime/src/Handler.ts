/**
 * Block handlers: what a block of a given `type` does when the engine runs it, and the registry
 * (`Handlers`) the engine looks types up in.
 *
 * **Details**
 *
 * A handler is `(ctx) => Effect<Output, BlockError, R>`. Its output is any JSON value; a router or
 * condition returns `decide(handle, output)` so the engine knows which outgoing edges to take.
 * Apps register their own handlers with `layer({ myType: handler })`, which merges them with the
 * built-ins (`Builtins`); an app handler for a built-in type replaces the built-in.
 *
 * @since 0.1.0
 */
import { Params, Workflow } from "@ripple/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import type { BlockError } from "./BlockError.ts"
import * as Builtins from "./Builtins.ts"
import * as Compiled from "./internal/compiled.ts"
import { asEffect, isKnownExit } from "./internal/handlerResult.ts"

/** Any JSON value. */
export type Json = Workflow.Json

/**
 * The index and item of the enclosing loop or parallel iteration/branch.
 *
 * @since 0.1.0
 */
export interface Scope {
  readonly index: number
  readonly item: Json
}

/**
 * What a handler is given.
 *
 * **Gotchas**
 *
 * `signal` is created on first access and aborted when the attempt is interrupted (a cancelled
 * run); handlers that call Promise APIs pass it on. Effect-native handlers need not read it:
 * interruption reaches them directly.
 *
 * @since 0.1.0
 */
export interface HandlerContext {
  /** The block's params with every reference resolved (references to skipped blocks read `null`). */
  readonly inputs: { readonly [key: string]: Json }
  /** The block's params as written, references unresolved. */
  readonly params: { readonly [key: string]: Json }
  readonly block: Workflow.Block
  /**
   * The run input (declared defaults applied). A block that depends on it reads it through a
   * reference in its params (`{"$ref": "input.<key>"}`), which the planner and early cutoff see: a
   * handler reading it here is reused by a re-run with a new input, as a function of its
   * definition and resolved inputs. Only `trigger`, whose output is the run input, is treated as
   * reading it all.
   */
  readonly input: { readonly [key: string]: Json }
  readonly runId: string
  /** The node instance id (see `NodeId`). */
  readonly node: string
  /** 1 for the first attempt. */
  readonly attempt: number
  readonly loop: Scope | undefined
  readonly parallel: Scope | undefined
  readonly signal: AbortSignal
}

const DecisionTypeId = "~ripple/runtime/Handler/Decision"

/**
 * A handler's result that also names the branch a router or condition takes.
 *
 * @since 0.1.0
 */
export class Decision {
  constructor(readonly handle: string, readonly output: Json) {}

  /** What `isDecision` looks for (on the prototype, so a decision's own properties stay `handle` and `output`). */
  get [DecisionTypeId](): typeof DecisionTypeId {
    return DecisionTypeId
  }
}

/**
 * Whether a handler's result is a `Decision`.
 *
 * **Gotchas**
 *
 * Not `instanceof`: the bundled `ripple` binary holds its own copy of this module, and a workflow
 * module's handlers decide with the copy they import from `@ripple/runtime`.
 *
 * @since 0.1.0
 */
export const isDecision = (u: unknown): u is Decision =>
  typeof u === "object" && u !== null && (u as { readonly [DecisionTypeId]?: unknown })[DecisionTypeId] === DecisionTypeId

/**
 * What a handler returns: an output, or an output with a decision.
 *
 * **Details**
 *
 * The engine stores a copy of the output as JSON reads it back (`Workflow.toStorable`), so it reads
 * back identical from every store and never changes when the handler later mutates what it
 * returned: `-0` is `0`, an `undefined` member is left out, an `undefined` element or output is
 * `null`. An output JSON would lose (a bigint, a `Date`, a `Map`, a function, a class instance)
 * fails the node, naming what and where.
 *
 * @since 0.1.0
 */
export type Output = Json | Decision

/**
 * Returns `output` and takes only the outgoing edges whose `handle` is `handle`.
 *
 * @since 0.1.0
 */
export const decide = (handle: string, output: Json): Decision => new Decision(handle, output)

/**
 * A block handler.
 *
 * **Details**
 *
 * It returns an `Effect`. A JavaScript handler (a `--handlers` module, which no type checker
 * reads) may also return a Promise, awaited — a rejection with a `BlockError` is that error, any
 * other rejection a retryable `BlockError` — or the output itself.
 *
 * @since 0.1.0
 */
export type Handler<R = never> = (ctx: HandlerContext) => Effect.Effect<Output, BlockError, R>

/**
 * The handler registry the engine reads. Handlers here have their requirements already provided.
 *
 * @since 0.1.0
 */
export class Handlers extends Context.Service<Handlers, {
  readonly get: (type: string) => Handler | undefined
  /** The output equality of a block type, when it has one (see `Equality`). */
  readonly equality: (type: string) => Equality | undefined
  /** The saga compensation of a block type, when it has one (see `Compensation`). */
  readonly compensation?: ((type: string) => Compensation | undefined) | undefined
  /** The params schema a block type declares, when it has one (see `Options.params`). */
  readonly params?: ((type: string) => Schema.Decoder<unknown> | undefined) | undefined
}>()("ripple/runtime/Handlers") {}

/**
 * Undoes what a completed block did, given its output and its handler context (recorded inputs).
 *
 * **Details**
 *
 * When a run fails past its retries, the engine runs the compensations of the blocks this run
 * completed, in reverse completion order, each journaled (`RunStore.compensations`); a failing
 * compensation is reported and the others still run. Registered by block type in `layer`'s
 * `compensate` option (the code-first builder registers each step's `compensate` there). A block
 * with `retry` retries its compensation with the same policy.
 *
 * **Gotchas**
 *
 * A compensation is journaled once it finished, so a crash after its effect but before that write
 * runs it again: its effect happens exactly once only if it is idempotent. Key the effect by
 * `ctx.runId` and `ctx.node` (for instance a refund with that idempotency key, or an
 * `INSERT … ON CONFLICT DO NOTHING`); `tests/sql/CompensationKill.test.ts` kills workers between
 * the two and checks each effect lands once.
 *
 * @since 0.1.0
 */
export type Compensation<R = never> = (output: Json, ctx: HandlerContext) => Effect.Effect<unknown, BlockError, R>

/**
 * When two outputs of one block type mean the same (e.g. equal but for a timestamp or a request id).
 *
 * **Details**
 *
 * Early cutoff compares a re-executed node's output with its prior output by fingerprint; a type
 * whose outputs carry incidental values registers an equality so that such a re-execution still
 * cuts off: when it says equal, the node keeps its *prior* output, so everything that reads it sees
 * unchanged inputs and is reused.
 *
 * @since 0.1.0
 */
export type Equality = (prior: Json, next: Json) => boolean

/**
 * Options of `layer`.
 *
 * @since 0.1.0
 */
export interface Options<R = never> {
  /** Output equalities by block type. */
  readonly equality?: Readonly<Record<string, Equality>> | undefined
  /** Saga compensations by block type. */
  readonly compensate?: Readonly<Record<string, Compensation<R>>> | undefined
  /**
   * Params schemas by block type: `checkParams` (run by `Runs` and the `ripple` command before
   * anything is written) refuses a block whose literal params do not fit, as `Workflow.decode`
   * does for the built-in types; values read through references are the handler's to check.
   */
  readonly params?: Readonly<Record<string, Schema.Decoder<unknown>>> | undefined
}

const registry = (
  handlers: Readonly<Record<string, Handler>>,
  options: Options = {},
  compensations: ReadonlyMap<string, Compensation> = new Map()
): Handlers["Service"] => {
  const table = new Map(Object.entries(handlers))
  const equalities = new Map(Object.entries(options.equality ?? {}))
  const schemas = new Map(Object.entries(options.params ?? {}))
  return {
    get: (type) => table.get(type),
    equality: (type) => equalities.get(type),
    compensation: (type) => compensations.get(type),
    params: (type) => schemas.get(type)
  }
}

/**
 * The built-in handlers only.
 *
 * @since 0.1.0
 */
// Built lazily: Builtins imports `decide` from this module, so neither reads the other at load time.
export const layerBuiltins: Layer.Layer<Handlers> = Layer.sync(Handlers, () => registry(Builtins.handlers))

/**
 * The built-ins plus `handlers` (which win on a type clash); their requirements `R` are captured
 * when the layer is built, so the engine calls them without knowing `R`.
 *
 * @since 0.1.0
 */
export const layer = <R = never>(
  handlers: Readonly<Record<string, Handler<R>>>,
  options: Options<R> = {}
): Layer.Layer<Handlers, never, R> =>
  Layer.effect(
    Handlers,
    Effect.map(Effect.context<R>(), (context) => {
      const provided: Record<string, Handler> = { ...Builtins.handlers }
      for (const [type, handler] of Object.entries(handlers)) {
        provided[type] = (ctx) => {
          const result = handler(ctx)
          // An exit reads no service: `provideContext` would hand it back as it is.
          return isKnownExit(result) ? result as Effect.Effect<Output, BlockError> : Effect.provideContext(asEffect(result), context)
        }
      }
      const compensations = new Map<string, Compensation>()
      for (const [type, compensate] of Object.entries(options.compensate ?? {})) {
        compensations.set(type, (output, ctx) => Effect.provideContext(asEffect(compensate(output, ctx)), context))
      }
      return registry(provided, { equality: options.equality, params: options.params }, compensations)
    })
  )

/**
 * The first block (not disabled) whose literal params do not fit the schema its type declares in
 * `handlers` (`Options.params`), as a `Workflow.InvalidParams` naming the block and the JSON path;
 * values read through references are left to the handler (see `Params.problem`).
 *
 * @since 0.1.0
 */
export const checkParams = (workflow: Workflow.Workflow, handlers: Handlers["Service"]): Workflow.InvalidParams | undefined => {
  if (handlers.params === undefined || Compiled.typesOf(workflow).every((type) => handlers.params!(type) === undefined)) return undefined
  for (let b = 0; b < workflow.blocks.length; b++) {
    const block = workflow.blocks[b]!
    if (block.disabled === true) continue
    const schema = handlers.params(block.type)
    const found = schema === undefined ? undefined : Params.problem(schema, block.params ?? {})
    if (found !== undefined) {
      return new Workflow.InvalidParams({ block: block.id, type: block.type, reason: found.reason, path: ["blocks", b, "params", ...found.path] })
    }
  }
  return undefined
}
