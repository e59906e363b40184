/**
 * Code-first workflows: a typed builder that produces an ordinary `Workflow` (the same JSON format
 * `Workflow.decode` accepts, so it plans, runs and re-runs from any block like a hand-written one)
 * plus the `Handlers` layer that runs its steps.
 *
 * **Example**
 *
 * ```ts
 * const built = Ripple.workflow("digest", { input: Schema.Struct({ url: Schema.String }) })
 *   .step("fetch", (_, ctx) => Effect.succeed({ words: ctx.input.url.split("/") }))
 *   .step("summarize", { needs: ["fetch"], handler: ({ fetch }) => Effect.succeed(fetch.words.length) })
 *   .output("summarize")
 *   .build()
 * // Result<Built<{ url: string }, { summarize: number }, never>, BuilderError>
 * ```
 *
 * **Details**
 *
 * - Each step is a block whose id is the step name and whose type is `ripple:<workflow>/<step>`
 *   (see `blockType`); its handler is registered under that type in `handlers`.
 * - Dependencies are explicit: a step lists the earlier steps it reads in `needs` and its handler
 *   receives their outputs, typed, as its first argument. The builder writes one reference
 *   `{ "$ref": "blocks.<dep>.output" }` per need into the block's params (under `needs`) and the
 *   matching edge, so the planner knows exactly what a step reads. `after` orders without reading.
 *   A step with neither runs as soon as the run starts: declaration order is not execution order.
 * - `config` is static JSON the step reads (`ctx.config`) and `version` a label: both are part of
 *   the block's definition, so changing either makes run-from-block re-run the step. Handler code
 *   itself is invisible to the planner — bump `version` when a step's code changes meaningfully.
 * - The run input is decoded with the workflow's input schema in every step (`ctx.input`); the
 *   workflow's `inputs` declarations are derived from the schema, so `Runs.start` checks them.
 * - A step's outputs are JSON unless it declares an `output` schema: then the handler returns the
 *   schema's type, the journal holds its JSON encoding, and dependents (and `Built.decodeOutputs`)
 *   get it decoded again.
 * - Names share one space across the whole workflow (steps, routers, containers, built-ins, and the
 *   reserved `trigger`): a repeated name does not compile, and `build` also checks it at run time.
 * - `parallel` / `loop` take a body builder whose steps see the outer outputs and `ctx.item` /
 *   `ctx.index` of the innermost container (`item` is `null` in `count` and `while` containers),
 *   both referenced in the step's params so a changed item re-runs its branch; the container's
 *   output is the array of its branches/iterations, each the record of the body's exit steps
 *   that completed.
 * - `route` runs a handler that picks a branch; steps of untaken branches are skipped, so after the
 *   route their outputs read `null` (typed `T | null`).
 *
 * **Gotchas**
 *
 * - Skipping spreads: a step whose needs are all skipped (say, it reads only an untaken branch's
 *   step) is skipped too, and a later step that also needs a completed step still runs (the
 *   engine's join rule) and reads `null` for it although its type is not nullable. Keep such
 *   steps inside the branch, or join branch results directly after the route.
 * - A body or branch step that needs a step from outside its container or branch makes that step
 *   upstream of the container or router (a reference may only read DAG ancestors, and an edge
 *   straight into a gated step would activate it whatever the router decides). The router then
 *   waits for it, and a change to it plans the router again (the engine's early cutoff reuses a
 *   router whose own inputs did not change).
 * - `compensate` is registered in `handlers` as the step type's `Handler.Compensation`: when a run
 *   fails, the engine runs the compensations of the steps it completed in reverse completion order
 *   (see `Handler.Compensation`). Merging several built workflows by `registry` loses them: pass
 *   `Built.compensations` (by step name; the step's block type is its `type` in the workflow) to
 *   `Handler.layer`'s `compensate` option. `.child` merges a built child's handlers and compensations into `handlers` (and `registry`).
 *
 * @since 0.1.0
 */
import { NodeId, Workflow } from "@ripple/core"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as BlockError from "./BlockError.ts"
import * as Handler from "./Handler.ts"
import * as Internal from "./internal/builder.ts"
import { declarationsOf } from "./internal/builderInputs.ts"

type Json = Workflow.Json

/**
 * A step name was already used in this workflow (compile-time marker; see `Builder.step`).
 *
 * @since 0.1.0
 */
export interface NameAlreadyUsed<N extends string> {
  readonly "step name already used in this workflow": N
}

type Fresh<N extends string, Names extends string> = N extends Names ? NameAlreadyUsed<N> : unknown

type Simplify<A> = { [K in keyof A]: A[K] } & {}

type Add<Out, N extends string, O> = Simplify<Out & { readonly [K in N]: O }>

type Deps<Out, D extends ReadonlyArray<PropertyKey>> = { readonly [K in D[number] & keyof Out]: Out[K] }

type ArrayKeys<Out> = { [K in keyof Out]: Out[K] extends ReadonlyArray<unknown> ? K : never }[keyof Out] & string

type ItemOf<Out, K> = [K] extends [never] ? null : K extends keyof Out ? (Out[K] extends ReadonlyArray<infer T> ? T : never) : never

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never

/**
 * The index and item of the innermost container a body step runs in.
 *
 * @since 0.1.0
 */
export interface Iteration<T> {
  readonly item: T
  readonly index: number
}

/**
 * What a step's handler is given besides its dependencies' outputs.
 *
 * @since 0.1.0
 */
export type StepContext<I, C = undefined, Scope = {}> = Simplify<
  {
    /** The run input, decoded with the workflow's input schema. */
    readonly input: I
    /** The step's static `config`. */
    readonly config: C
    readonly runId: string
    /** The node instance id (see `NodeId`). */
    readonly node: string
    /** 1 for the first attempt. */
    readonly attempt: number
    readonly block: Workflow.Block
    /** Aborted when the attempt is interrupted; pass it on to Promise APIs. */
    readonly signal: AbortSignal
  } & Scope
>

/**
 * Options of a step: what it reads, its static config, and the block fields it sets.
 *
 * @since 0.1.0
 */
export interface StepOptions<I, Out, D extends ReadonlyArray<keyof Out & string>, O, C, Scope, R> {
  /** Earlier steps whose outputs the handler reads (edges and references come from this list). */
  readonly needs?: D
  /** Earlier steps this one waits for without reading them. */
  readonly after?: ReadonlyArray<keyof Out & string>
  readonly config?: C
  /** A label that is part of the block's definition: change it to re-run the step after a code change. */
  readonly version?: string
  readonly retry?: Workflow.RetryPolicy
  /** Always re-executed by a run-from-block plan (clocks, random, external reads). */
  readonly volatile?: boolean
  readonly handler: (deps: Deps<Out, D>, ctx: StepContext<I, C, Scope>) => Effect.Effect<O, BlockError.BlockError, R>
  /**
   * The codec between the handler's output and the JSON journaled for it: the output is encoded
   * (an output the schema refuses fails the step, permanently) and decoded again for every step
   * that needs it, so outputs may be any type with a JSON encoding (dates, big integers, classes).
   */
  readonly output?: Schema.Codec<O, Json>
  /**
   * The step's compensation: run with the step's output when the run fails after the step
   * completed, in reverse completion order (saga).
   */
  readonly compensate?: (output: O, ctx: StepContext<I, C, Scope>) => Effect.Effect<unknown, BlockError.BlockError, R>
}

/**
 * Options of a router: what it reads, the handler that picks a branch, and the branches.
 *
 * @since 0.1.0
 */
export interface RouteOptions<I, Out, D extends ReadonlyArray<keyof Out & string>, B, Scope, R> {
  readonly needs?: D
  readonly after?: ReadonlyArray<keyof Out & string>
  readonly retry?: Workflow.RetryPolicy
  /** Returns the handle of the branch to take; that handle is also the router's output. */
  readonly handler: (deps: Deps<Out, D>, ctx: StepContext<I, undefined, Scope>) => Effect.Effect<keyof B & string, BlockError.BlockError, R>
  readonly branches: B
}

/**
 * How a parallel fans out: one branch per element of an earlier step's array output, or `count`.
 * Over a step with an `output` schema, each item is decoded as a one-element array with that
 * schema (so use `Schema.Array(element)`).
 *
 * @since 0.1.0
 */
export type ParallelOptions<Out, K> = (
  | { readonly forEach: K; readonly count?: never }
  | { readonly count: number; readonly forEach?: never }
) & {
  readonly concurrency?: number
  readonly after?: ReadonlyArray<keyof Out & string>
}

/**
 * How a loop iterates: `count` times, once per element of an earlier step's array output, or
 * `while` a declarative condition (see `Builtins.condition`; it may read the body's outputs) holds.
 *
 * @since 0.1.0
 */
export type LoopOptions<Out, K> = (
  | { readonly count: number; readonly forEach?: never; readonly while?: never; readonly maxIterations?: number }
  | { readonly forEach: K; readonly count?: never; readonly while?: never; readonly maxIterations?: number }
  | { readonly while: Json; readonly maxIterations: number; readonly count?: never; readonly forEach?: never }
) & {
  readonly after?: ReadonlyArray<keyof Out & string>
}

/**
 * The output of a `sleep` step: when it woke, in epoch milliseconds.
 *
 * @since 0.1.0
 */
export interface SleepOutput {
  readonly wakeAt: number
}

/**
 * The output of a container: one record per iteration/branch of the body's exit steps that completed.
 *
 * @since 0.1.0
 */
export type ContainerOutput<L> = ReadonlyArray<{ readonly [K in keyof L]?: L[K] }>

/**
 * A step's compensation (saga, issue 9): the step's output and the handler context of the step's
 * block.
 *
 * @since 0.1.0
 */
export type Compensation<R> = (output: Json, ctx: Handler.HandlerContext) => Effect.Effect<unknown, BlockError.BlockError, R>

/**
 * What `build` returns: the workflow, the handlers of its steps, and typed helpers.
 *
 * @since 0.1.0
 */
export interface Built<I, O, R> {
  /** An ordinary workflow, validated by `Workflow.decode`. */
  readonly workflow: Workflow.Workflow
  /** The built-ins plus one handler per step and router. */
  readonly handlers: Layer.Layer<Handler.Handlers, never, R>
  /** The step handlers by block type, to merge several built workflows into one `Handler.layer`. */
  readonly registry: Readonly<Record<string, Handler.Handler<R>>>
  /** Compensations by step name (`handlers` registers them by block type; see `Handler.Compensation`). */
  readonly compensations: Readonly<Record<string, Compensation<R>>>
  /** Encodes a typed run input to the JSON `Runs.start` takes. */
  readonly encodeInput: (input: I) => { readonly [key: string]: Json }
  /**
   * The declared outputs of a finished run (its snapshot), decoded with the steps' output schemas;
   * an output that was not produced reads `null`.
   */
  readonly decodeOutputs: (
    snapshot: { readonly nodes: Readonly<Record<string, { readonly output?: Json | undefined }>> }
  ) => Result.Result<O, Schema.SchemaError>
  /** Type-level only: the workflow's declared outputs by step name. */
  readonly "~outputs"?: O
}

/**
 * The errors `build` reports (duplicate or invalid names, unknown steps, an invalid translation).
 *
 * @since 0.1.0
 */
export type BuilderError = Internal.BuilderError

/**
 * The errors of `build`, as classes (values and types): `DuplicateStep`, `InvalidStepName`,
 * `UnknownStep`, `InvalidWorkflow`.
 *
 * @since 0.1.0
 */
export { DuplicateStep, InvalidStepName, InvalidWorkflow, UnknownStep } from "./internal/builder.ts"

/**
 * The block type a step's handler is registered under: `ripple:<workflow>/<step>`.
 *
 * @since 0.1.0
 */
export const blockType: (workflow: string, step: string) => string = Internal.blockType

/**
 * The id of the `trigger` block every built workflow starts with (a reserved step name).
 *
 * @since 0.1.0
 */
export const triggerId: "trigger" = Internal.triggerId

interface Definition<I> {
  readonly name: string
  readonly input: Schema.Codec<I, unknown> | undefined
}

/**
 * A workflow under construction. `Out` is the record of outputs visible to the next step, `Local`
 * the outputs added in this scope, `Names` every name used so far, `Scope` what body steps add to
 * their context, `R` what the handlers require.
 *
 * @since 0.1.0
 */
export class Builder<I, Out, Local, Names extends string, Scope, R> {
  declare readonly "~local": Local
  declare readonly "~names": Names
  declare readonly "~requirements": R

  constructor(
    private readonly definition: Definition<I>,
    /** The recorded nodes of this scope, in declaration order. */
    readonly nodes: ReadonlyArray<Internal.Node>
  ) {}

  private add(node: Internal.Node): any {
    return new Builder(this.definition, [...this.nodes, node])
  }

  /**
   * Adds a step: a block running `handler`. Without options the step reads nothing and starts with
   * the run (or its scope).
   *
   * @since 0.1.0
   */
  step<const N extends string, O extends Json, R2 = never>(
    name: N & Fresh<N, Names>,
    handler: (deps: {}, ctx: StepContext<I, undefined, Scope>) => Effect.Effect<O, BlockError.BlockError, R2>
  ): Builder<I, Add<Out, N, O>, Add<Local, N, O>, Names | N, Scope, R | R2>
  step<
    const N extends string,
    O,
    const D extends ReadonlyArray<keyof Out & string> = readonly [],
    const C extends Json | undefined = undefined,
    R2 = never
  >(
    name: N & Fresh<N, Names>,
    options: StepOptions<I, Out, D, O, C, Scope, R2> & { readonly output: Schema.Codec<O, Json> }
  ): Builder<I, Add<Out, N, O>, Add<Local, N, O>, Names | N, Scope, R | R2>
  step<
    const N extends string,
    O extends Json,
    const D extends ReadonlyArray<keyof Out & string> = readonly [],
    const C extends Json | undefined = undefined,
    R2 = never
  >(
    name: N & Fresh<N, Names>,
    options: StepOptions<I, Out, D, O, C, Scope, R2>
  ): Builder<I, Add<Out, N, O>, Add<Local, N, O>, Names | N, Scope, R | R2>
  step(name: string, spec: Function | StepOptions<I, Out, ReadonlyArray<keyof Out & string>, unknown, Json | undefined, Scope, unknown>): any {
    type Options = StepOptions<I, Out, ReadonlyArray<keyof Out & string>, unknown, Json | undefined, Scope, unknown>
    const options: Options = typeof spec === "function" ? { handler: spec as Options["handler"] } : spec
    return this.add({
      _tag: "Step",
      name,
      needs: options.needs ?? [],
      after: options.after ?? [],
      run: options.handler as unknown as Internal.StepFn,
      retry: options.retry,
      volatile: options.volatile,
      config: options.config,
      version: options.version,
      compensate: options.compensate as unknown as Internal.StepFn | undefined,
      output: options.output as Schema.Codec<unknown, unknown> | undefined
    })
  }

  /**
   * Adds a router: its handler returns the handle of one of `branches`; each branch is a body
   * builder whose steps run only when it is taken. After the route, branch outputs read `T | null`.
   *
   * @since 0.1.0
   */
  route<
    const N extends string,
    const B extends { readonly [handle: string]: (branch: Builder<I, Out, {}, Names | N, Scope, never>) => Builder<I, any, any, any, any, any> },
    const D extends ReadonlyArray<keyof Out & string> = readonly [],
    R2 = never
  >(
    name: N & Fresh<N, Names>,
    options: RouteOptions<I, Out, D, B, Scope, R2>
  ): Builder<
    I,
    Simplify<Out & { readonly [K in N]: keyof B & string } & Nullable<BranchLocals<B>>>,
    Simplify<Local & { readonly [K in N]: keyof B & string } & Nullable<BranchLocals<B>>>,
    Names | N | BranchNames<B>,
    Scope,
    R | R2 | BranchRequirements<B>
  > {
    const empty = new Builder<I, Out, {}, Names | N, Scope, never>(this.definition, [])
    return this.add({
      _tag: "Route",
      name,
      needs: options.needs ?? [],
      after: options.after ?? [],
      run: options.handler as unknown as Internal.StepFn,
      retry: options.retry,
      branches: Object.entries(options.branches).map(([handle, body]) => [handle, body(empty).nodes] as const)
    })
  }

  /**
   * Adds a parallel: `body` runs once per element of `forEach`'s array output (or `count` times),
   * at most `concurrency` branches at a time; body steps read `ctx.item` and `ctx.index`.
   *
   * @since 0.1.0
   */
  parallel<const N extends string, Body extends Builder<I, any, any, any, any, any>, K extends ArrayKeys<Out> = never>(
    name: N & Fresh<N, Names>,
    options: ParallelOptions<Out, K>,
    body: (body: Builder<I, Out, {}, Names | N, Iteration<ItemOf<Out, K>>, never>) => Body
  ): Builder<I, Add<Out, N, ContainerOutput<Body["~local"]>>, Add<Local, N, ContainerOutput<Body["~local"]>>, Names | N | Body["~names"], Scope, R | Body["~requirements"]> {
    return this.add({
      _tag: "Container",
      name,
      container: "parallel",
      kind: options.forEach !== undefined ? "collection" : "count",
      over: options.forEach,
      count: options.count,
      concurrency: options.concurrency,
      after: options.after ?? [],
      body: body(new Builder(this.definition, [])).nodes
    })
  }

  /**
   * Adds a loop: `body` runs `count` times, once per element of `forEach`'s array output, or
   * `while` the condition holds (at most `maxIterations`); body steps read `ctx.item` / `ctx.index`.
   *
   * @since 0.1.0
   */
  loop<const N extends string, Body extends Builder<I, any, any, any, any, any>, K extends ArrayKeys<Out> = never>(
    name: N & Fresh<N, Names>,
    options: LoopOptions<Out, K>,
    body: (body: Builder<I, Out, {}, Names | N, Iteration<ItemOf<Out, K>>, never>) => Body
  ): Builder<I, Add<Out, N, ContainerOutput<Body["~local"]>>, Add<Local, N, ContainerOutput<Body["~local"]>>, Names | N | Body["~names"], Scope, R | Body["~requirements"]> {
    return this.add({
      _tag: "Container",
      name,
      container: "loop",
      kind: options.forEach !== undefined ? "forEach" : options.while !== undefined ? "while" : "count",
      over: options.forEach,
      count: options.count,
      condition: options.while,
      maxIterations: options.maxIterations,
      after: options.after ?? [],
      body: body(new Builder(this.definition, [])).nodes
    })
  }

  /**
   * Adds a durable sleep (built-in `sleep` block): `ms` milliseconds after it starts, or `until` an
   * ISO instant; its output is the wake time. The run is `suspended` meanwhile.
   *
   * @since 0.1.0
   */
  sleep<const N extends string>(
    name: N & Fresh<N, Names>,
    options: ({ readonly ms: number; readonly until?: never } | { readonly until: string; readonly ms?: never }) & {
      readonly after?: ReadonlyArray<keyof Out & string>
    }
  ): Builder<I, Add<Out, N, SleepOutput>, Add<Local, N, SleepOutput>, Names | N, Scope, R> {
    const params: Record<string, Json> = options.ms !== undefined ? { ms: options.ms } : { until: options.until! }
    return this.add({ _tag: "Builtin", name, type: "sleep", params, after: options.after ?? [] })
  }

  /**
   * Adds a wait for the named signal (built-in `wait` block, delivered by `Runs.signal`); its
   * output is the signal's payload. The run is `suspended` meanwhile.
   *
   * @since 0.1.0
   */
  waitForSignal<const N extends string>(
    name: N & Fresh<N, Names>,
    options: { readonly signal: string; readonly after?: ReadonlyArray<keyof Out & string> }
  ): Builder<I, Add<Out, N, Json>, Add<Local, N, Json>, Names | N, Scope, R> {
    return this.add({ _tag: "Builtin", name, type: "wait", params: { signal: options.signal }, after: options.after ?? [] })
  }

  /**
   * Adds a human approval (built-in `approval` block): the run is `paused` with `reason` until
   * `Runs.approve` (the output is the approval's payload) or `Runs.reject` (the step fails).
   *
   * @since 0.1.0
   */
  approval<const N extends string>(
    name: N & Fresh<N, Names>,
    options: { readonly reason: string; readonly after?: ReadonlyArray<keyof Out & string> }
  ): Builder<I, Add<Out, N, Json>, Add<Local, N, Json>, Names | N, Scope, R> {
    return this.add({ _tag: "Builtin", name, type: "approval", params: { reason: options.reason }, after: options.after ?? [] })
  }

  /**
   * Adds a child workflow (built-in `child` block): a child run of `child` (a built workflow, whose
   * handlers join this workflow's, or a plain workflow whose handlers the app registers) starts
   * with the input `input` maps from earlier steps (`{ <child input key>: <step name> }`); the
   * step's output is the child's observed outputs `{ <step>: output }` (JSON). The run is
   * `suspended` until the child ends; a failed child fails the step.
   *
   * @since 0.1.0
   */
  child<const N extends string, R2 = never>(
    name: N & Fresh<N, Names>,
    child: Built<any, any, R2> | Workflow.Workflow,
    options: {
      readonly needs?: ReadonlyArray<keyof Out & string>
      readonly input?: Readonly<Record<string, keyof Out & string>>
      readonly after?: ReadonlyArray<keyof Out & string>
    } = {}
  ): Builder<I, Add<Out, N, Json>, Add<Local, N, Json>, Names | N, Scope, R | R2> {
    const built = "registry" in child ? child : undefined
    const workflow = built !== undefined ? built.workflow : child as Workflow.Workflow
    const input: Record<string, Json> = {}
    for (const [key, dep] of Object.entries(options.input ?? {})) input[key] = { $ref: `blocks.${dep}.output` }
    const deps = [...new Set([...(options.needs ?? []), ...Object.values(options.input ?? {}), ...(options.after ?? [])])]
    // The child travels as JSON text: the parent must not resolve the child's own references.
    return this.add({
      _tag: "Builtin",
      name,
      type: "child",
      params: { workflow: JSON.stringify(Workflow.encode(workflow)), input },
      after: deps,
      handlers: built === undefined ? undefined : { registry: built.registry, compensate: compensationsOf(built) }
    }) as never
  }

  /**
   * Declares the workflow's observed outputs (top-level steps or containers) and finishes it.
   *
   * @since 0.1.0
   */
  output<const K extends ReadonlyArray<keyof Out & string>>(...names: K): Finished<I, { readonly [P in K[number]]: Out[P] }, R> {
    return new Finished(this.definition, this.nodes, names)
  }

  /**
   * Builds the workflow without declared outputs (every sink is observed).
   *
   * @since 0.1.0
   */
  build(): Result.Result<Built<I, {}, R>, BuilderError> {
    return new Finished<I, {}, R>(this.definition, this.nodes, []).build()
  }
}

type BranchOf<F> = F extends (branch: any) => infer X ? X : never
type BranchLocals<B> = UnionToIntersection<{ [K in keyof B]: BranchOf<B[K]> extends { readonly "~local": infer L } ? L : never }[keyof B]>
type BranchNames<B> = { [K in keyof B]: BranchOf<B[K]> extends { readonly "~names": infer M extends string } ? M : never }[keyof B]
type BranchRequirements<B> = { [K in keyof B]: BranchOf<B[K]> extends { readonly "~requirements": infer Q } ? Q : never }[keyof B]
type Nullable<L> = { readonly [K in keyof L]: L[K] | null }

/**
 * A workflow whose outputs are declared: only `build` remains.
 *
 * @since 0.1.0
 */
export class Finished<I, O, R> {
  declare readonly "~outputs": O

  constructor(
    private readonly definition: Definition<I>,
    private readonly nodes: ReadonlyArray<Internal.Node>,
    private readonly outputs: ReadonlyArray<string>
  ) {}

  /**
   * Translates the steps into a validated workflow and its handlers.
   *
   * @since 0.1.0
   */
  build(): Result.Result<Built<I, O, R>, BuilderError> {
    const { input, name } = this.definition
    const inputs = input === undefined ? undefined : declarationsOf(input.ast)
    const translated = Internal.translate({ name, inputs, nodes: this.nodes, outputs: this.outputs })
    if (Result.isFailure(translated)) return Result.fail(translated.failure)
    const { steps, workflow } = translated.success
    const decoded = Workflow.decode(workflow)
    if (Result.isFailure(decoded)) return Result.fail(new Internal.InvalidWorkflow({ workflowId: name, cause: decoded.failure }))
    const decodeInput = input === undefined
      ? (raw: unknown) => Effect.succeed(raw as I)
      : (raw: unknown) =>
        Schema.decodeUnknownEffect(input)(raw).pipe(
          Effect.mapError((error) => BlockError.permanent(`workflow ${name}: invalid run input: ${error.message}`, error))
        )
    const decoders = new Map<string, Decoder>()
    const containers = new Set<string>()
    collectDecoders(this.nodes, decoders, containers)
    const decodeOf = (step: string): Decoder => decoders.get(step) ?? Result.succeed
    const registry: Record<string, Handler.Handler<R>> = {}
    const compensations: Record<string, Compensation<R>> = {}
    const compensationsByType: Record<string, Compensation<R>> = {}
    for (const { node, scope, type } of steps) {
      // The item is the JSON of one element of the iterated step's output: decoded as a one-element
      // array with that step's schema (element-wise for `Schema.Array`).
      const over = scope?.over === undefined ? undefined : decoders.get(scope.over)
      const itemOf = (ctx: Handler.HandlerContext): Effect.Effect<Iteration<unknown> | undefined, BlockError.BlockError> => {
        if (scope === undefined) return Effect.succeed(undefined)
        const iteration = ctx.inputs["iteration"] as { readonly index?: number; readonly item?: Json } | undefined
        const index = iteration?.index ?? 0
        const item = iteration?.item ?? null
        if (over === undefined) return Effect.succeed({ index, item })
        const decoded = over([item])
        return Result.isSuccess(decoded) && Array.isArray(decoded.success)
          ? Effect.succeed({ index, item: decoded.success[0] })
          : Effect.fail(BlockError.permanent(`step ${node.name}: the item does not decode with the schema of ${scope.over}`, decoded))
      }
      const depsOf = (ctx: Handler.HandlerContext): Effect.Effect<Record<string, unknown>, BlockError.BlockError> => {
        const raw = (ctx.inputs["needs"] ?? {}) as Record<string, Json>
        const deps: Record<string, unknown> = {}
        for (const dep of node.needs) {
          const value = decodeOf(dep)(raw[dep] ?? null)
          if (Result.isFailure(value)) {
            return Effect.fail(BlockError.permanent(`step ${node.name}: the output of ${dep} does not match its schema: ${value.failure.message}`, value.failure))
          }
          deps[dep] = value.success
        }
        return Effect.succeed(deps)
      }
      const invoke = (run: Internal.StepFn, deps: Record<string, unknown>, ctx: Handler.HandlerContext) =>
        Effect.flatMap(
          Effect.all([decodeInput(ctx.input), itemOf(ctx)]),
          ([decodedInput, iteration]) => run(deps, contextOf(ctx, decodedInput, iteration))
        )
      const run = (ctx: Handler.HandlerContext) => Effect.flatMap(depsOf(ctx), (deps) => invoke(node.run, deps, ctx))
      const schema = node._tag === "Step" ? node.output : undefined
      const encode = schema === undefined ? undefined : Schema.encodeUnknownResult(schema)
      registry[type] = (node._tag === "Route"
        ? (ctx) => Effect.map(run(ctx), (handle) => Handler.decide(handle as string, handle as string))
        : encode === undefined
        ? run
        : (ctx) =>
          Effect.flatMap(run(ctx), (output) =>
            Result.match(encode(output), {
              onFailure: (error) => Effect.fail(BlockError.permanent(`step ${node.name}: its output does not match its schema: ${error.message}`, error)),
              onSuccess: (json) => Effect.succeed(json as Json)
            }))) as Handler.Handler<R>
      const compensate = node._tag === "Step" ? node.compensate : undefined
      if (compensate !== undefined) {
        const compensation: Compensation<R> = (output, ctx) =>
          Result.match(decodeOf(node.name)(output), {
            onFailure: (error) => Effect.fail(BlockError.permanent(`step ${node.name}: its output does not match its schema: ${error.message}`, error)),
            onSuccess: (value) => invoke((_, c) => compensate(value as never, c), {}, ctx)
          }) as Effect.Effect<unknown, BlockError.BlockError, R>
        compensations[node.name] = compensation
        compensationsByType[type] = compensation
      }
    }
    const encodeInput = input === undefined ? (i: I) => i as { readonly [key: string]: Json } : Schema.encodeSync(input as Schema.Codec<I, { readonly [key: string]: Json }>)
    const outputs = this.outputs
    const decodeOutputs = (snapshot: { readonly nodes: Readonly<Record<string, { readonly output?: Json | undefined }>> }) => {
      const out: Record<string, unknown> = {}
      for (const step of outputs) {
        const id = containers.has(step) ? NodeId.format(NodeId.end(step)) : step
        const value = decodeOf(step)(snapshot.nodes[id]?.output ?? null)
        if (Result.isFailure(value)) return Result.fail(value.failure)
        out[step] = value.success
      }
      return Result.succeed(out as O)
    }
    collectChildren(this.nodes, registry, compensationsByType)
    return Result.succeed({
      workflow: decoded.success,
      handlers: Handler.layer(registry, { compensate: compensationsByType }),
      registry,
      compensations,
      encodeInput,
      decodeOutputs
    })
  }
}

type Decoder = (raw: Json) => Result.Result<unknown, Schema.SchemaError>

const identity: Decoder = Result.succeed

// One decoder per step with an output schema, and per container holding one (its output is an
// array of records of body outputs). Names are unique, so one map serves every scope.
// The handlers of built child workflows join the parent's (block types are unique per workflow and step).
const collectChildren = (
  nodes: ReadonlyArray<Internal.Node>,
  registry: Record<string, unknown>,
  compensations: Record<string, unknown>
): void => {
  for (const node of nodes) {
    if (node._tag === "Builtin" && node.handlers !== undefined) {
      for (const [type, handler] of Object.entries(node.handlers.registry)) registry[type] ??= handler
      for (const [type, compensate] of Object.entries(node.handlers.compensate)) compensations[type] ??= compensate
    } else if (node._tag === "Route") {
      for (const [, body] of node.branches) collectChildren(body, registry, compensations)
    } else if (node._tag === "Container") {
      collectChildren(node.body, registry, compensations)
    }
  }
}

// A built workflow's compensations by block type (its `compensations` are by step name).
const compensationsOf = <R>(built: Built<any, any, R>): Record<string, Compensation<R>> => {
  const out: Record<string, Compensation<R>> = {}
  for (const block of built.workflow.blocks) {
    const compensate = built.compensations[block.id]
    if (compensate !== undefined) out[block.type] = compensate
  }
  return out
}

const collectDecoders = (nodes: ReadonlyArray<Internal.Node>, into: Map<string, Decoder>, containers: Set<string>): void => {
  for (const node of nodes) {
    if (node._tag === "Step" && node.output !== undefined) {
      const decode = Schema.decodeUnknownResult(node.output)
      // A skipped step reads null: there is nothing to decode.
      into.set(node.name, (raw) => (raw === null ? Result.succeed(null) : decode(raw)))
    } else if (node._tag === "Route") {
      for (const [, body] of node.branches) collectDecoders(body, into, containers)
    } else if (node._tag === "Container") {
      containers.add(node.name)
      const before = into.size
      collectDecoders(node.body, into, containers)
      if (into.size > before) into.set(node.name, (raw) => decodeAggregate(raw, into))
    }
  }
}

const decodeAggregate = (raw: Json, decoders: ReadonlyMap<string, Decoder>): Result.Result<unknown, Schema.SchemaError> => {
  if (!Array.isArray(raw)) return Result.succeed(raw)
  const out: Array<unknown> = []
  for (const element of raw) {
    if (element === null || typeof element !== "object" || Array.isArray(element)) {
      out.push(element)
      continue
    }
    const record: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(element as Schema.JsonObject)) {
      const decoded = (decoders.get(key) ?? identity)(value)
      if (Result.isFailure(decoded)) return decoded
      record[key] = decoded.success
    }
    out.push(record)
  }
  return Result.succeed(out)
}

// Built by hand so the handler's `signal` stays lazy (reading it allocates an AbortController).
// The iteration comes from the resolved params (see `internal/builder.ts`), not `ctx.loop` /
// `ctx.parallel`, so what the handler sees is exactly what the planner fingerprinted.
const contextOf = (ctx: Handler.HandlerContext, input: unknown, iteration: Iteration<unknown> | undefined) => ({
  input,
  config: ctx.inputs["config"],
  runId: ctx.runId,
  node: ctx.node,
  attempt: ctx.attempt,
  block: ctx.block,
  get signal() {
    return ctx.signal
  },
  ...iteration
})

/**
 * Starts a code-first workflow named `name` (its `Workflow.id`, and the prefix of its block
 * types); `input` is the struct schema of its run input.
 *
 * @since 0.1.0
 */
export const workflow = <I = {}>(
  name: string,
  options: { readonly input?: Schema.Codec<I, unknown> } = {}
): Builder<I, {}, {}, Internal.BuilderTrigger, {}, never> => new Builder<I, {}, {}, Internal.BuilderTrigger, {}, never>({ name, input: options.input }, [])
