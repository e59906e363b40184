/**
 * Random workflows for property tests: `arbitraryWorkflow` builds valid ones (decode succeeds),
 * `arbitraryBrokenWorkflow` applies one mutation to a valid one and names the error it must cause.
 *
 * Generation is compositional so that validity holds by construction: a level (the top level or a
 * container body) is a list of members created in a random topological order, each new member
 * taking its edges from earlier members of the same level; a member may only reference outputs that
 * are available to it — the outputs available at its predecessors, those predecessors themselves,
 * and (inside a body) whatever is available to the enclosing container.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as fc from "fast-check"
import * as Dag from "../Dag.ts"
import type * as Workflow from "../Workflow.ts"
import * as WorkflowModule from "../Workflow.ts"
import * as Edits from "./Edits.ts"
import type * as Laws from "./Laws.ts"
import * as Model from "./Model.ts"
import * as Spec from "./Spec.ts"

type Json = Workflow.Json
type Block = { -readonly [K in keyof Workflow.Block]: Workflow.Block[K] }
type Edge = { -readonly [K in keyof Workflow.Edge]: Workflow.Edge[K] }
type Loop = { -readonly [K in keyof Workflow.Loop]: K extends "body" ? Array<string> : Workflow.Loop[K] }
type Parallel = { -readonly [K in keyof Workflow.Parallel]: K extends "body" ? Array<string> : Workflow.Parallel[K] }

/**
 * A workflow as plain mutable JSON-compatible data (valid for `Workflow.decode`).
 *
 * @since 0.1.0
 */
export interface WorkflowJson {
  id: string
  blocks: Array<Block>
  edges: Array<Edge>
  loops: Array<Loop>
  parallels: Array<Parallel>
  inputs: Record<string, Workflow.InputDeclaration>
  variables: Record<string, Json>
  outputs?: Array<string>
}

/**
 * Options of `arbitraryWorkflow`.
 *
 * @since 0.1.0
 */
export interface WorkflowOptions {
  /** Generate loops and parallels (default true). */
  readonly containers?: boolean
  /** Generate routers and conditions (default true). */
  readonly routers?: boolean
  /** Upper bound of members per level (default 6). */
  readonly maxMembers?: number
  /** Maximum container nesting depth (default 2). */
  readonly maxDepth?: number
  /**
   * Generate `fail` blocks (default false), declare outputs more often, so that failing blocks are
   * often ones no observed output needs (pruned from a run-from, failing the full run), and make
   * templates render container outputs (records, whose key order must not leak into the text).
   */
  readonly failing?: boolean
  /** Disable some blocks (default false): sinks, and blocks with exactly one incoming edge. */
  readonly disabled?: boolean
}

/**
 * The block types the generator uses (`fn` blocks are generic, with random params).
 *
 * @since 0.1.0
 */
export const blockTypes = ["value", "template", "condition", "router", "response", "fn"] as const

/**
 * Condition operators of `condition` blocks.
 *
 * @since 0.1.0
 */
export const conditionOps = ["eq", "neq", "lt", "lte", "gt", "gte", "contains", "exists"] as const

type Gen = fc.GeneratorValue

interface Scope {
  /** Ids whose outputs a member of this level may read. */
  readonly available: ReadonlySet<string>
  readonly loop: Loop | undefined
  readonly parallel: Parallel | undefined
  readonly depth: number
}

const idPrefixes = ["b", "step-", "Ω", "fetch_", "x"] as const

const scalar = fc.oneof(fc.integer({ min: -5, max: 20 }), fc.boolean(), fc.string({ maxLength: 4 }), fc.constant(null))
const smallJson: fc.Arbitrary<Json> = fc.oneof(
  scalar,
  fc.array(scalar, { maxLength: 3 }),
  fc.dictionary(fc.constantFrom("a", "b", "c"), scalar, { maxKeys: 2 })
)

const scalarArbitrary = () => scalar
const smallJsonArbitrary = () => smallJson

class Builder {
  readonly workflow: WorkflowJson
  private counter = 0
  /** Router/condition handles by block id, for the edges leaving them. */
  private readonly handles = new Map<string, ReadonlyArray<string>>()
  /** Literal array values of `value` blocks, so forEach loops can iterate over an upstream output. */
  private readonly arrays = new Set<string>()
  /** Loop and parallel ids. */
  private readonly containers = new Set<string>()

  constructor(
    private readonly g: Gen,
    private readonly options: Required<WorkflowOptions>
  ) {
    this.workflow = { id: "wf", blocks: [], edges: [], loops: [], parallels: [], inputs: {}, variables: {} }
  }

  private fresh(prefix: string): string {
    return `${prefix}${this.counter++}`
  }

  private pick<A>(values: ReadonlyArray<A>): A {
    return values[this.g(fc.nat, { max: values.length - 1 })]!
  }

  // Sub-selections and shuffles are drawn index by index: fast-check's `gen` caches arbitraries by
  // their arguments with a linear deep-equality scan, so passing ever-new arrays would be quadratic.
  private subset<A>(values: ReadonlyArray<A>, min: number, max: number): Array<A> {
    const rest = [...values]
    const out: Array<A> = []
    const size = this.g(fc.integer, { min, max: Math.min(max, rest.length) })
    while (out.length < size) out.push(rest.splice(this.g(fc.nat, { max: rest.length - 1 }), 1)[0]!)
    return out
  }

  private shuffle<A>(values: Array<A>): Array<A> {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.g(fc.nat, { max: i })
      ;[values[i], values[j]] = [values[j]!, values[i]!]
    }
    return values
  }

  private chance(percent: number): boolean {
    return this.g(fc.nat, { max: 99 }) < percent
  }

  /** A reference to something available in `scope`, or a literal when nothing is. */
  private operand(scope: Scope): Json {
    const choices: Array<() => Json> = [() => this.g(scalarArbitrary)]
    const available = [...scope.available]
    if (available.length > 0) {
      choices.push(() => {
        const id = this.pick(available)
        const path = this.chance(30) ? `.${this.pick(["value", "items", "0"])}` : ""
        return { $ref: `blocks.${id}.output${path}` }
      })
    }
    const inputs = Object.keys(this.workflow.inputs)
    if (inputs.length > 0) choices.push(() => ({ $ref: `input.${this.pick(inputs)}` }))
    const variables = Object.keys(this.workflow.variables)
    if (variables.length > 0) choices.push(() => ({ $ref: `vars.${this.pick(variables)}` }))
    if (scope.loop !== undefined) {
      choices.push(() => ({ $ref: "loop.index" }))
      if (scope.loop.kind === "forEach") choices.push(() => ({ $ref: "loop.item" }))
    }
    if (scope.parallel !== undefined) {
      choices.push(() => ({ $ref: "parallel.index" }))
      if (scope.parallel.kind === "collection") choices.push(() => ({ $ref: "parallel.item" }))
    }
    return this.pick(choices)()
  }

  private paramsFor(type: (typeof blockTypes)[number], id: string, scope: Scope): Record<string, Json> {
    switch (type) {
      case "value": {
        if (this.chance(50)) {
          this.arrays.add(id)
          return { value: this.g(fc.array, scalar, { maxLength: 3 }) }
        }
        return { value: this.chance(50) ? this.operand(scope) : this.g(smallJsonArbitrary) }
      }
      case "template": {
        // Containers output arrays of records: objects rendered to text, which must not depend on
        // the order the body blocks finished in.
        const containers = [...scope.available].filter((a) => this.containers.has(a))
        const a = this.options.failing && containers.length > 0 && this.chance(50)
          ? { $ref: `blocks.${this.pick(containers)}.output` }
          : this.operand(scope)
        return { template: "{{a}}-{{b}}", values: { a, b: this.operand(scope) } }
      }
      case "condition":
        return { left: this.operand(scope), op: this.pick(conditionOps), right: this.operand(scope) }
      case "router": {
        const routes = Array.from({ length: this.g(fc.integer, { min: 1, max: 3 }) }, (_, k) => ({
          handle: `r${k}`,
          equals: this.g(scalarArbitrary) as Json
        }))
        const params: Record<string, Json> = { value: this.operand(scope), routes }
        if (this.chance(60)) params["default"] = "otherwise"
        this.handles.set(id, [...routes.map((r) => r.handle), ...(params["default"] === undefined ? [] : ["otherwise"])])
        return params
      }
      case "response":
        return { value: this.operand(scope) }
      case "fn": {
        const params: Record<string, Json> = {}
        const keys = this.g(fc.nat, { max: 3 })
        for (let k = 0; k < keys; k++) {
          params[`p${k}`] = this.chance(50) ? this.operand(scope) : [this.operand(scope), this.g(smallJsonArbitrary)]
        }
        return params
      }
    }
  }

  private addBlock(scope: Scope): string {
    const types = this.options.routers ? blockTypes : blockTypes.filter((t) => t !== "router" && t !== "condition")
    const type = this.pick(types)
    const id = this.fresh(this.pick(idPrefixes))
    const block: Block = { id, type, params: this.paramsFor(type, id, scope) }
    if (type === "condition") this.handles.set(id, ["true", "false"])
    if (type === "fn" && this.chance(15)) block.volatile = true
    if (type === "fn" && this.chance(15)) block.retry = { maxAttempts: this.g(fc.integer, { min: 1, max: 3 }) }
    if (this.chance(20)) block.name = `Block ${id}`
    this.workflow.blocks.push(block)
    return id
  }

  private addFail(): string {
    const id = this.fresh("f")
    this.workflow.blocks.push({ id, type: "fail", params: { message: `${id} fails` } })
    return id
  }

  private edge(source: string, target: string): void {
    const handles = this.handles.get(source)
    const edge: Edge = { source, target }
    if (handles !== undefined) edge.handle = this.pick(handles)
    this.workflow.edges.push(edge)
  }

  private addContainer(scope: Scope): string {
    const loop = this.chance(50)
    const id = this.fresh(loop ? "L" : "P")
    this.containers.add(id)
    const upstreamArrays = [...scope.available].filter((a) => this.arrays.has(a))
    const items = (): Json =>
      upstreamArrays.length > 0 && this.chance(70)
        ? { $ref: `blocks.${this.pick(upstreamArrays)}.output` }
        : this.g(fc.array, scalar, { minLength: 0, maxLength: 3 })
    if (loop) {
      const kind = this.pick(["count", "forEach", "while"] as const)
      const definition: Loop = { id, kind, body: [] }
      if (kind === "count") definition.count = this.g(fc.integer, { min: 0, max: 3 })
      if (kind === "forEach") definition.items = items()
      if (kind === "while" || this.chance(30)) definition.maxIterations = this.g(fc.integer, { min: 1, max: 4 })
      this.workflow.loops.push(definition)
      const inner: Scope = { ...scope, loop: definition, depth: scope.depth + 1 }
      definition.body.push(...this.level(inner))
      if (kind === "while") {
        const own = definition.body.filter((m) => this.workflow.blocks.some((b) => b.id === m))
        const left: Json = own.length > 0 && this.chance(50) ? { $ref: `blocks.${this.pick(own)}.output` } : { $ref: "loop.index" }
        definition.condition = { left, op: this.pick(conditionOps), right: this.g(fc.integer, { min: 0, max: 3 }) }
      }
    } else {
      const kind = this.pick(["count", "collection"] as const)
      const definition: Parallel = { id, kind, body: [] }
      if (kind === "count") definition.count = this.g(fc.integer, { min: 0, max: 3 })
      else definition.items = items()
      if (this.chance(40)) definition.concurrency = this.g(fc.integer, { min: 1, max: 3 })
      this.workflow.parallels.push(definition)
      definition.body.push(...this.level({ ...scope, parallel: definition, depth: scope.depth + 1 }))
    }
    return id
  }

  /** Creates the members of one level in topological order and returns their ids. */
  level(scope: Scope, first?: string): Array<string> {
    const members: Array<string> = first === undefined ? [] : [first]
    const availableAt = new Map<string, ReadonlySet<string>>()
    if (first !== undefined) availableAt.set(first, scope.available)
    const count = this.g(fc.integer, { min: 1, max: this.options.maxMembers })
    for (let k = 0; k < count; k++) {
      const sources = members.length === 0 ? [] : this.subset(members, 0, 2)
      if (first !== undefined && sources.length === 0) sources.push(first)
      const available = new Set(scope.available)
      for (const s of sources) {
        available.add(s)
        for (const a of availableAt.get(s)!) available.add(a)
      }
      const memberScope: Scope = { ...scope, available }
      const container = this.options.containers && scope.depth < this.options.maxDepth && this.chance(25)
      const failing = !container && this.options.failing && this.chance(8)
      const id = container ? this.addContainer(memberScope) : failing ? this.addFail() : this.addBlock(memberScope)
      for (const s of sources) this.edge(s, id)
      availableAt.set(id, available)
      members.push(id)
    }
    return members
  }

  build(): WorkflowJson {
    const w = this.workflow
    for (let k = this.g(fc.nat, { max: 2 }); k > 0; k--) {
      const key = `in${k}`
      const type = this.pick(["string", "number", "json"] as const)
      w.inputs[key] = this.chance(50)
        ? { type, default: type === "string" ? "s" : type === "number" ? 1 : { k } }
        : { type }
    }
    for (let k = this.g(fc.nat, { max: 2 }); k > 0; k--) w.variables[`v${k}`] = this.g(smallJsonArbitrary)
    w.blocks.push({ id: "trigger", type: "trigger" })
    const top = this.level({ available: new Set(), loop: undefined, parallel: undefined, depth: 0 }, "trigger")
    if (this.chance(this.options.failing ? 50 : 30)) w.outputs = this.subset(top.slice(1), 1, 3)
    if (this.options.disabled) {
      for (const block of w.blocks) if (canDisable(w, block.id) && this.chance(25)) block.disabled = true
    }
    this.shuffle(w.blocks)
    this.shuffle(w.edges)
    return w
  }
}

const defaults: Required<WorkflowOptions> = {
  containers: true,
  routers: true,
  maxMembers: 6,
  maxDepth: 2,
  failing: false,
  disabled: false
}

/** A block may be disabled when it is a sink or has exactly one incoming edge (`DisabledBlockInputs`). */
const canDisable = (w: { readonly edges: ReadonlyArray<Edge> }, id: string): boolean =>
  !w.edges.some((e) => e.source === id) || w.edges.filter((e) => e.target === id).length === 1

/**
 * Random valid workflows: a trigger, blocks of the built-in types, routers and conditions with
 * handled edges, references to available upstream outputs, templates rendering container outputs,
 * nested loops and parallels, and (`failing`) blocks that fail.
 *
 * @since 0.1.0
 */
export const arbitraryWorkflow = (options: WorkflowOptions = {}): fc.Arbitrary<WorkflowJson> =>
  fc.gen().map((g) => new Builder(g, { ...defaults, ...options }).build())

/**
 * The tags `arbitraryBrokenWorkflow` can produce.
 *
 * @since 0.1.0
 */
export type BrokenTag =
  | "DuplicateId"
  | "DanglingEdge"
  | "Cycle"
  | "EdgeCrossesContainer"
  | "BlockInTwoContainers"
  | "ContainerNestedInItself"
  | "UnknownReference"
  | "NonAncestorReference"
  | "ReservedCharacter"
  | "EmptyParallel"
  | "MissingMaxIterations"
  | "UnknownOutput"
  | "ReferenceOutsideScope"
  | "InvalidReference"
  | "DisabledBlockInputs"

const clone = (w: WorkflowJson): WorkflowJson => JSON.parse(JSON.stringify(w)) as WorkflowJson

type Mutation = (w: WorkflowJson, g: Gen) => void

const allIds = (w: WorkflowJson) => [...w.blocks.map((b) => b.id), ...w.loops.map((l) => l.id), ...w.parallels.map((p) => p.id)]

const pickOf = <A>(g: Gen, values: ReadonlyArray<A>): A => values[g(fc.nat, { max: values.length - 1 })]!

const parentsOf = (w: WorkflowJson) => {
  const parent = new Map<string, string>()
  for (const c of [...w.loops, ...w.parallels]) for (const m of c.body) parent.set(m, c.id)
  return parent
}

const mutations: Record<BrokenTag, Mutation> = {
  DuplicateId: (w, g) => {
    const ids = allIds(w)
    const target = g(fc.integer, { min: 1, max: ids.length - 1 })
    const source = g(fc.nat, { max: target - 1 })
    const all = [...w.blocks, ...w.loops, ...w.parallels]
    all[target]!.id = ids[source]!
  },
  DanglingEdge: (w, g) => {
    const id = pickOf(g, allIds(w))
    w.edges.push(g(fc.boolean) ? { source: id, target: "ghost" } : { source: "ghost", target: id })
  },
  Cycle: (w, g) => {
    const edge = pickOf(g, w.edges)
    w.edges.push({ source: edge.target, target: edge.source })
  },
  EdgeCrossesContainer: (w, g) => {
    const parent = parentsOf(w)
    const inside = [...parent.keys()]
    if (inside.length === 0) {
      w.blocks.push({ id: "zinner", type: "fn" })
      w.parallels.push({ id: "zpar", kind: "count", count: 1, body: ["zinner"] })
      inside.push("zinner")
      parent.set("zinner", "zpar")
    }
    const member = pickOf(g, inside)
    const outside = allIds(w).filter((id) => parent.get(id) !== parent.get(member))
    const other = pickOf(g, outside)
    w.edges.push(g(fc.boolean) ? { source: other, target: member } : { source: member, target: other })
  },
  BlockInTwoContainers: (w, g) => {
    const id = pickOf(g, w.blocks).id
    w.parallels.push({ id: "ztwo1", kind: "count", count: 1, body: [id] })
    w.parallels.push({ id: "ztwo2", kind: "count", count: 1, body: [id] })
  },
  ContainerNestedInItself: (w, g) => {
    const parent = parentsOf(w)
    const tops = [...w.loops, ...w.parallels].filter((c) => !parent.has(c.id))
    if (tops.length === 0 || g(fc.boolean)) {
      const chain = g(fc.integer, { min: 1, max: 3 })
      for (let k = 0; k < chain; k++) w.loops.push({ id: `zself${k}`, kind: "count", count: 1, body: [`zself${(k + 1) % chain}`] })
      return
    }
    const top = pickOf(g, tops)
    const inside = [top]
    for (let k = 0; k < inside.length; k++) {
      for (const m of inside[k]!.body) {
        const nested = [...w.loops, ...w.parallels].find((c) => c.id === m)
        if (nested !== undefined) inside.push(nested)
      }
    }
    pickOf(g, inside).body.push(top.id)
  },
  UnknownReference: (w, g) => {
    const block = pickOf(g, w.blocks)
    const ref = pickOf(g, ["blocks.ghost.output", "input.ghost", "vars.ghost"])
    block.params = { ...block.params, zbroken: { $ref: ref } }
  },
  NonAncestorReference: (w, g) => {
    const dag = Dag.make(w as Workflow.Workflow)
    const block = pickOf(g, w.blocks)
    const above = Dag.upstream(dag, [Dag.indexOf(dag, block.id)!])
    const containers = new Set([...w.loops, ...w.parallels].map((c) => c.id))
    const candidates = allIds(w).filter((id) => {
      const output = Dag.indexOf(dag, containers.has(id) ? `${id}#end` : id)!
      const chain = Dag.nodeOf(dag, output).chain
      const visible = chain.every((c, k) => Dag.nodeOf(dag, Dag.indexOf(dag, block.id)!).chain[k] === c)
      return id === block.id || above[output] === 0 || !visible
    })
    block.params = { ...block.params, zbroken: { $ref: `blocks.${pickOf(g, candidates)}.output` } }
  },
  ReservedCharacter: (w, g) => {
    const all = [...w.blocks, ...w.loops, ...w.parallels]
    const entry = pickOf(g, all)
    const character = pickOf(g, ["#", "@", ".", "/", "$", "[", "]", ":", " ", "\t"])
    const at = g(fc.nat, { max: entry.id.length })
    entry.id = entry.id.slice(0, at) + character + entry.id.slice(at)
  },
  EmptyParallel: (w, g) => {
    if (w.parallels.length > 0 && g(fc.boolean)) pickOf(g, w.parallels).body = []
    else w.parallels.push({ id: "zempty", kind: "count", count: 2, body: [] })
  },
  MissingMaxIterations: (w, g) => {
    const whiles = w.loops.filter((l) => l.kind === "while")
    if (whiles.length > 0 && g(fc.boolean)) {
      delete pickOf(g, whiles).maxIterations
      return
    }
    w.blocks.push({ id: "zbody", type: "fn" })
    w.loops.push({ id: "zwhile", kind: "while", condition: { left: { $ref: "loop.index" }, op: "lt", right: 3 }, body: ["zbody"] })
  },
  UnknownOutput: (w) => {
    w.outputs = [...(w.outputs ?? []), "ghost"]
  },
  ReferenceOutsideScope: (w, g) => {
    const parent = parentsOf(w)
    const block = pickOf(g, w.blocks.filter((b) => !parent.has(b.id)))
    block.params = { ...block.params, zbroken: { $ref: pickOf(g, ["loop.index", "loop.item", "parallel.index", "parallel.item.x"]) } }
  },
  InvalidReference: (w, g) => {
    const block = pickOf(g, w.blocks)
    const bad = pickOf(g, [{ $ref: "blocks.trigger" }, { $ref: "nowhere.x" }, { $ref: 1 }, { $ref: "input." }, { $ref: "vars.v", extra: 1 }])
    block.params = { ...block.params, zbroken: bad }
  },
  DisabledBlockInputs: (w, g) => {
    // A disabled block with a successor and no input (a root), or with two inputs: nothing to pass on.
    const two = g(fc.boolean)
    w.blocks.push({ id: "zpass", type: "value", params: { value: 1 }, disabled: true }, { id: "zafter", type: "value", params: { value: 2 } })
    w.edges.push({ source: "zpass", target: "zafter" })
    if (!two) return
    w.blocks.push({ id: "zother", type: "value", params: { value: 3 } })
    w.edges.push({ source: "trigger", target: "zpass" }, { source: "zother", target: "zpass" })
  }
}

/**
 * A valid workflow broken by one mutation, with the tag of the error `Workflow.decode` must return.
 *
 * @since 0.1.0
 */
export const arbitraryBrokenWorkflow = (
  options: WorkflowOptions = {}
): fc.Arbitrary<{ readonly workflow: WorkflowJson; readonly expectedTag: BrokenTag }> =>
  fc
    .tuple(arbitraryWorkflow(options), fc.constantFrom(...(Object.keys(mutations) as Array<BrokenTag>)), fc.gen())
    .map(([valid, expectedTag, g]) => {
      const workflow = clone(valid)
      mutations[expectedTag](workflow, g)
      return { workflow, expectedTag }
    })

/**
 * A run-from scenario (see `Laws.trial`) with the edits that produced `after` from `before`.
 *
 * @since 0.1.0
 */
export interface EditedScenario extends Laws.Scenario {
  readonly target: string
  readonly edits: ReadonlyArray<Edits.Edit>
}

/**
 * The blocks and containers of a workflow: the possible targets of a run from a block.
 *
 * @since 0.1.0
 */
export const targetsOf = (workflow: Workflow.Workflow): ReadonlyArray<string> => [
  ...workflow.blocks.map((b) => b.id),
  ...(workflow.loops ?? []).map((l) => l.id),
  ...(workflow.parallels ?? []).map((p) => p.id)
]

/**
 * Options of `arbitraryScenario`: the workflow options, which edit kinds to draw, how many edits.
 *
 * @since 0.1.0
 */
export interface ScenarioOptions extends WorkflowOptions {
  readonly kinds?: ReadonlyArray<Edits.Kind>
  readonly maxEdits?: number
  /** Draw a destination (`to`) too: a block or container that depends on the target, or the target. */
  readonly destination?: boolean
  /** Draw pins too: up to two blocks (not routers, conditions or disabled blocks), some by instance. */
  readonly pins?: boolean
}

/** Pins drawn as (block pick, by instance, value): a block instance pin for the first instance. */
const pinsOf = (
  workflow: Workflow.Workflow,
  drawn: ReadonlyArray<readonly [number, boolean, Json]>
): Record<string, Json> => {
  const s = Model.structure(workflow)
  const pinnable = workflow.blocks.filter((b) => b.disabled !== true && b.type !== "router" && b.type !== "condition")
  const out: Record<string, Json> = {}
  for (const [pick, instance, value] of drawn) {
    const block = pinnable[pick % Math.max(1, pinnable.length)]
    if (block === undefined) continue
    const depth = Model.chainOf(s, block.id).length
    out[instance && depth > 0 ? Model.instanceKey(block.id, new Array<number>(depth).fill(0)) : block.id] = value
  }
  return out
}

/**
 * The blocks and containers of a workflow that depend on `target` (its exit is downstream of its
 * entry, target included): the valid destinations of a run from `target`.
 *
 * @since 0.1.0
 */
export const destinationsOf = (workflow: Workflow.Workflow, target: string): ReadonlyArray<string> => {
  const entry = Model.entryNode(Model.structure(workflow), target)
  return targetsOf(workflow).filter((id) => Spec.neededBy(workflow, undefined, id).has(entry))
}

/**
 * Random run-from scenarios: a random valid workflow (or one drawn from `workflows`), random edits
 * of it that keep it valid, a random target of the edited workflow, a seed for the block functions
 * and, with `destination`, a destination that depends on the target.
 *
 * **Example** (property-testing plans of your own workflow)
 *
 * ```ts
 * fc.assert(fc.property(Arbitraries.arbitraryScenario({}, fc.constant(myWorkflow)), (scenario) => {
 *   const trial = Laws.trial(scenario)
 *   return Laws.soundness(trial).length === 0 && Laws.minimality(trial).length === 0
 * }))
 * ```
 *
 * @since 0.1.0
 */
export const arbitraryScenario = (
  options: ScenarioOptions = {},
  workflows?: fc.Arbitrary<Workflow.Workflow>
): fc.Arbitrary<EditedScenario> => {
  const { destination, kinds, maxEdits, pins, ...workflowOptions } = options
  const edits = Edits.arbitraryEdits({ ...(kinds === undefined ? {} : { kinds }), maxLength: maxEdits ?? 3 })
  const base = workflows ?? (arbitraryWorkflow(workflowOptions) as unknown as fc.Arbitrary<Workflow.Workflow>)
  const scenarios = fc
    // The workflow goes last: fast-check 4.10 clones a tuple holding an fc.gen() value (as the
    // workflow arbitrary is) only up to its last cloneable element, dropping what follows.
    .tuple(edits, fc.nat({ max: 1000 }), fc.nat({ max: 3 }), base)
    .map(([drawn, pick, seed, json]) => {
      const before = JSON.parse(JSON.stringify(json)) as Workflow.Workflow
      const after = Edits.apply(before, drawn)
      const targets = targetsOf(after)
      return { before, after, edits: drawn, target: targets[pick % targets.length]!, seed }
    })
    .filter((scenario) => Result.isSuccess(WorkflowModule.decode(scenario.after)))
  // Drawn only when asked for, so the scenarios of every other caller stay those of its seed.
  const toggled = workflowOptions.disabled !== true ? scenarios : fc.tuple(fc.nat({ max: 1000 }), scenarios).map(([pick, scenario]) => {
    // Disabling or enabling a block is an edit like any other.
    const after = JSON.parse(JSON.stringify(scenario.after)) as { blocks: Array<{ id: string; disabled?: boolean }>; edges: Array<Edge> }
    const candidates = after.blocks.filter((b) => b.disabled === true || canDisable(after, b.id))
    const block = candidates[pick % candidates.length]
    if (block === undefined) return scenario
    if (block.disabled === true) delete block.disabled
    else block.disabled = true
    return { ...scenario, after: after as unknown as Workflow.Workflow }
  })
  const pinned = pins !== true ? toggled : fc.tuple(fc.array(fc.tuple(fc.nat(), fc.boolean(), smallJsonArbitrary()), { maxLength: 2 }), toggled)
    .map(([drawn, scenario]) => ({ ...scenario, pins: pinsOf(scenario.after, drawn) }))
  if (destination !== true) return pinned
  return fc.tuple(fc.nat({ max: 1000 }), pinned).map(([pick, scenario]) => {
    const destinations = destinationsOf(scenario.after, scenario.target)
    return { ...scenario, to: destinations[pick % destinations.length]! }
  })
}
