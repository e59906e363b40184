/**
 * The untyped half of `Ripple`: the recorded step tree and its translation to an ordinary
 * `Workflow` (blocks, edges, loops, parallels) plus one handler per step.
 *
 * Translation rules (they are what makes a built workflow plan like a hand-written one):
 *
 * - Every step is a block whose id is the step name; a step's declared `needs` become params
 *   `{ needs: { <dep>: { "$ref": "blocks.<dep>.output" } } }`, a body step's iteration becomes
 *   `{ iteration: { index: { "$ref": "<loop|parallel>.index" }, item: { "$ref": "<loop|parallel>.item" } } }`
 *   (`item` only in containers over items)
 *   (plus `config` / `version` when given), so the planner sees exactly what the step reads.
 * - A dependency on a node of the same nesting level is an edge `dep → step`. A dependency on a
 *   node outside the step's scope (outside its container, or outside the router branch it sits in)
 *   becomes an edge into the outermost enclosing container or router the dependency is not itself
 *   behind: references may read any DAG ancestor, and the edge never turns the dependency into an
 *   alternative way of activating a gated node.
 * - A node left without incoming edge is entered from its scope: from the `trigger` block at top
 *   level, from its router (with the branch's handle) inside a branch, and from nothing inside a
 *   container body (body roots start with each iteration/branch).
 */
import type { Workflow } from "@ripple/core"
import { NodeId } from "@ripple/core"
import * as Data from "effect/Data"
import type * as Schema from "effect/Schema"
import * as Result from "effect/Result"
import type * as Effect from "effect/Effect"
import type { BlockError } from "../BlockError.ts"

type Json = Workflow.Json

/** A step's handler once its inputs are decoded: (dependency outputs, step context). */
export type StepFn = (deps: Record<string, unknown>, ctx: object) => Effect.Effect<unknown, BlockError, unknown>

/** A recorded node of the step tree. */
export type Node =
  | {
    readonly _tag: "Step"
    readonly name: string
    readonly needs: ReadonlyArray<string>
    readonly after: ReadonlyArray<string>
    readonly run: StepFn
    readonly retry?: Workflow.RetryPolicy | undefined
    readonly volatile?: boolean | undefined
    readonly config?: Json | undefined
    readonly version?: string | undefined
    readonly compensate?: StepFn | undefined
    /** The codec between the handler's output and the JSON journaled for it. */
    readonly output?: Schema.Codec<unknown, unknown> | undefined
  }
  | {
    readonly _tag: "Builtin"
    readonly name: string
    readonly type: "sleep" | "wait" | "approval" | "child"
    readonly params: { readonly [key: string]: Json }
    readonly after: ReadonlyArray<string>
    /** A `child` step of a built workflow: the child's handlers, merged into the parent's. */
    readonly handlers?: {
      readonly registry: Readonly<Record<string, unknown>>
      readonly compensate: Readonly<Record<string, unknown>>
    } | undefined
  }
  | {
    readonly _tag: "Route"
    readonly name: string
    readonly needs: ReadonlyArray<string>
    readonly after: ReadonlyArray<string>
    readonly run: StepFn
    readonly retry?: Workflow.RetryPolicy | undefined
    readonly branches: ReadonlyArray<readonly [handle: string, body: ReadonlyArray<Node>]>
  }
  | {
    readonly _tag: "Container"
    readonly name: string
    readonly container: "loop" | "parallel"
    readonly kind: "count" | "forEach" | "while" | "collection"
    /** The step whose output array a `forEach` / `collection` container iterates over. */
    readonly over?: string | undefined
    readonly count?: number | undefined
    readonly condition?: Json | undefined
    readonly maxIterations?: number | undefined
    readonly concurrency?: number | undefined
    readonly after: ReadonlyArray<string>
    readonly body: ReadonlyArray<Node>
  }

/**
 * Two steps (or a step and a container, router or the reserved trigger) share a name.
 *
 * @since 0.1.0
 */
export class DuplicateStep extends Data.TaggedError("DuplicateStep")<{
  readonly step: string
  readonly path: ReadonlyArray<string | number>
}> {}

/**
 * A step name is not a valid block id: empty, `__proto__`, or with a character reserved by the
 * node-id codec (see `NodeId`).
 *
 * @since 0.1.0
 */
export class InvalidStepName extends Data.TaggedError("InvalidStepName")<{
  readonly step: string
  readonly path: ReadonlyArray<string | number>
}> {}

/**
 * A step needs (or an output names) a step that is not declared before it in a visible scope.
 *
 * @since 0.1.0
 */
export class UnknownStep extends Data.TaggedError("UnknownStep")<{
  readonly step: string
  readonly referencedBy: string
  readonly path: ReadonlyArray<string | number>
}> {}

/**
 * The translated workflow does not validate (`Workflow.decode`); `cause` names the offending ids.
 *
 * @since 0.1.0
 */
export class InvalidWorkflow extends Data.TaggedError("InvalidWorkflow")<{
  readonly workflowId: string
  readonly cause: Workflow.WorkflowError
}> {}

/**
 * Every error `build` can report.
 *
 * @since 0.1.0
 */
export type BuilderError = DuplicateStep | InvalidStepName | UnknownStep | InvalidWorkflow

/** The block id of the run's entry block; no step may take it. */
export const triggerId = "trigger"

/** The reserved trigger name, as a type. */
export type BuilderTrigger = typeof triggerId

/** A gate: the router and branch handle a node sits behind. */
interface Gate {
  readonly router: string
  readonly handle: string
}

interface Placed {
  /** Enclosing containers, outermost first. */
  readonly chain: ReadonlyArray<string>
  /** Enclosing router branches at the node's own level, outermost first. */
  readonly gates: ReadonlyArray<Gate>
}

/** What `translate` produces before validation. */
export interface Translated {
  readonly workflow: Workflow.Workflow
  /** Block type → handler, for every step and router. */
  readonly steps: ReadonlyArray<{
    readonly type: string
    readonly node: Extract<Node, { _tag: "Step" | "Route" }>
    /** The innermost container of a body step, and the step whose output it iterates over. */
    readonly scope: Scope | undefined
  }>
}

/** The block type a step's handler is registered under: unique per (workflow, step). */
export const blockType = (workflow: string, step: string): string => `ripple:${workflow}/${step}`

/**
 * The params of a step or router: one reference per need and, inside a container, references to
 * the innermost iteration's index and item — the handler reads them (`ctx.index` / `ctx.item`), so
 * they belong to its resolved inputs: a branch whose item changed must not look unchanged to the
 * planner's diff or the engine's early cutoff.
 */
const paramsOf = (needs: ReadonlyArray<string>, scope: Scope | undefined): Record<string, Json> => {
  const params: Record<string, Json> = {}
  if (needs.length > 0) params["needs"] = Object.fromEntries(needs.map((d) => [d, { $ref: `blocks.${d}.output` }]))
  if (scope !== undefined) {
    // Only containers over items have an item: a reference to it elsewhere does not resolve.
    params["iteration"] = scope.over !== undefined
      ? { index: { $ref: `${scope.kind}.index` }, item: { $ref: `${scope.kind}.item` } }
      : { index: { $ref: `${scope.kind}.index` } }
  }
  return params
}

/** The innermost container of a body step: its kind, and the step it iterates over (if any). */
export interface Scope {
  readonly kind: "loop" | "parallel"
  readonly over: string | undefined
}

const samePrefix = (a: ReadonlyArray<Gate>, b: ReadonlyArray<Gate>): number => {
  let k = 0
  while (k < a.length && k < b.length && a[k]!.router === b[k]!.router && a[k]!.handle === b[k]!.handle) k++
  return k
}

// The loop or parallel of a container node (its items, when it iterates over a step, read that
// step's output). Keys keep their order: the workflow's version hashes its encoding.
const containerOf = (node: Extract<Node, { readonly _tag: "Container" }>) => {
  const iterate: Json | undefined = node.over !== undefined ? { $ref: `blocks.${node.over}.output` } : undefined
  const head = { id: node.name, body: node.body.map((b) => b.name) }
  const sized = {
    ...(node.count !== undefined ? { count: node.count } : {}),
    ...(iterate !== undefined ? { items: iterate } : {})
  }
  return node.container === "loop"
    ? {
      _tag: "loop",
      loop: {
        ...head,
        kind: node.kind as Workflow.Loop["kind"],
        ...sized,
        ...(node.condition !== undefined ? { condition: node.condition } : {}),
        ...(node.maxIterations !== undefined ? { maxIterations: node.maxIterations } : {})
      } satisfies Workflow.Loop
    } as const
    : {
      _tag: "parallel",
      parallel: {
        ...head,
        kind: node.kind as Workflow.Parallel["kind"],
        ...sized,
        ...(node.concurrency !== undefined ? { concurrency: node.concurrency } : {})
      } satisfies Workflow.Parallel
    } as const
}

/**
 * Translates a step tree into a workflow (not yet validated) and the handlers to register.
 */
export const translate = (
  options: {
    readonly name: string
    readonly inputs: Workflow.Workflow["inputs"]
    readonly nodes: ReadonlyArray<Node>
    readonly outputs: ReadonlyArray<string>
  }
): Result.Result<Translated, BuilderError> => {
  const blocks: Array<Workflow.Block> = [{ id: triggerId, type: "trigger" }]
  const loops: Array<Workflow.Loop> = []
  const parallels: Array<Workflow.Parallel> = []
  const edges: Array<Workflow.Edge> = []
  const edgeKeys = new Set<string>()
  const incoming = new Map<string, number>()
  const placed = new Map<string, Placed>([[triggerId, { chain: [], gates: [] }]])
  const steps: Array<Translated["steps"][number]> = []

  const edge = (source: string, target: string, handle?: string) => {
    const key = `${source}\u0000${target}\u0000${handle ?? ""}`
    if (edgeKeys.has(key)) return
    edgeKeys.add(key)
    edges.push(handle === undefined ? { source, target } : { source, target, handle })
    incoming.set(target, (incoming.get(target) ?? 0) + 1)
  }

  // `owners[k]` is the node at level k on the way down to the node being wired (the container at
  // level k for k < chain.length, the node itself at its own level); gates per level likewise.
  const depend = (dep: string, node: string, at: Placed, ownerGates: ReadonlyArray<ReadonlyArray<Gate>>, owners: ReadonlyArray<string>, path: ReadonlyArray<string | number>): BuilderError | undefined => {
    const where = placed.get(dep)
    if (where === undefined || where.chain.some((c, k) => at.chain[k] !== c) || where.chain.length > at.chain.length) {
      return new UnknownStep({ step: dep, referencedBy: node, path })
    }
    const level = where.chain.length
    const gates = ownerGates[level]!
    const shared = samePrefix(where.gates, gates)
    edge(dep, shared < gates.length ? gates[shared]!.router : owners[level]!)
    return undefined
  }

  const visit = (
    nodes: ReadonlyArray<Node>,
    chain: ReadonlyArray<string>,
    gates: ReadonlyArray<Gate>,
    outerGates: ReadonlyArray<ReadonlyArray<Gate>>,
    owners: ReadonlyArray<string>,
    scopes: ReadonlyArray<Scope>,
    path: ReadonlyArray<string | number>
  ): BuilderError | undefined => {
    for (let n = 0; n < nodes.length; n++) {
      const node = nodes[n]!
      const here = [...path, n]
      if (!NodeId.isValidId(node.name)) return new InvalidStepName({ step: node.name, path: here })
      if (placed.has(node.name)) return new DuplicateStep({ step: node.name, path: here })
      const at: Placed = { chain, gates }
      placed.set(node.name, at)
      const levelGates = [...outerGates, gates]
      const levelOwners = [...owners, node.name]
      const deps = [...(node._tag === "Step" || node._tag === "Route" ? node.needs : []), ...(node._tag === "Container" && node.over !== undefined ? [node.over] : []), ...node.after]
      for (const dep of deps) {
        const error = depend(dep, node.name, at, levelGates, levelOwners, here)
        if (error !== undefined) return error
      }
      const scope = scopes[scopes.length - 1]
      switch (node._tag) {
        case "Step": {
          const params = paramsOf(node.needs, scope)
          if (node.config !== undefined) params["config"] = node.config
          if (node.version !== undefined) params["version"] = node.version
          const type = blockType(options.name, node.name)
          blocks.push({
            id: node.name,
            type,
            ...(Object.keys(params).length > 0 ? { params } : {}),
            ...(node.volatile !== undefined ? { volatile: node.volatile } : {}),
            ...(node.retry !== undefined ? { retry: node.retry } : {})
          })
          steps.push({ type, node, scope })
          break
        }
        case "Builtin":
          blocks.push({ id: node.name, type: node.type, params: node.params })
          break
        case "Route": {
          const type = blockType(options.name, node.name)
          const params = paramsOf(node.needs, scope)
          blocks.push({
            id: node.name,
            type,
            ...(Object.keys(params).length > 0 ? { params } : {}),
            ...(node.retry !== undefined ? { retry: node.retry } : {})
          })
          steps.push({ type, node, scope })
          for (const [handle, body] of node.branches) {
            const inner = [...gates, { router: node.name, handle }]
            const error = visit(body, chain, inner, outerGates, owners, scopes, [...here, "branches", handle])
            if (error !== undefined) return error
          }
          break
        }
        case "Container": {
          const container = containerOf(node)
          if (container._tag === "loop") loops.push(container.loop)
          else parallels.push(container.parallel)
          const inner: Scope = { kind: node.container, over: node.over }
          const error = visit(node.body, [...chain, node.name], [], levelGates, levelOwners, [...scopes, inner], [...here, "body"])
          if (error !== undefined) return error
          break
        }
      }
      // Entered from its scope when nothing else leads to it (see the module doc).
      if ((incoming.get(node.name) ?? 0) === 0) {
        const gate = gates[gates.length - 1]
        if (gate !== undefined) edge(gate.router, node.name, gate.handle)
        else if (chain.length === 0) edge(triggerId, node.name)
      }
    }
    return undefined
  }

  const error = visit(options.nodes, [], [], [], [], [], ["steps"])
  if (error !== undefined) return Result.fail(error)
  for (let o = 0; o < options.outputs.length; o++) {
    const out = options.outputs[o]!
    const where = placed.get(out)
    if (where === undefined || where.chain.length > 0) return Result.fail(new UnknownStep({ step: out, referencedBy: "outputs", path: ["outputs", o] }))
  }
  const workflow: Workflow.Workflow = {
    id: options.name,
    ...(options.inputs !== undefined && Object.keys(options.inputs).length > 0 ? { inputs: options.inputs } : {}),
    blocks,
    edges,
    ...(loops.length > 0 ? { loops } : {}),
    ...(parallels.length > 0 ? { parallels } : {}),
    ...(options.outputs.length > 0 ? { outputs: [...options.outputs] } : {})
  }
  return Result.succeed({ workflow, steps })
}
