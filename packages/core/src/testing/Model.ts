/**
 * A reference executor for property tests, written from the documented run semantics (DESIGN.md,
 * the README's workflow format, `Builtins` and `Engine` documentation) and sharing no code with the
 * implementation: it parses node ids and references, resolves them, hashes and compares JSON with
 * its own small helpers. It imports only the workflow and snapshot *types*.
 *
 * It runs a workflow from scratch and writes the `Snapshot` a real engine would write; it can also
 * execute a plan over a prior state — running only the plan's re-run nodes that get activated and
 * copying the hydrated state everywhere else — which is what the soundness and minimality laws
 * compare against a from-scratch run.
 *
 * **Semantics**
 *
 * - Built-in block types behave as documented: `trigger` outputs the run input; `value` its
 *   `value`; `template` fills `{{key}}` from `values` (strings as they are, other values as
 *   canonical JSON — keys sorted); `condition` compares `left op right` and decides `"true"` /
 *   `"false"`; `router` takes the first route whose `equals` equals `value`, else `default`;
 *   `response` outputs its `value` (or `null`); `fail` fails. Invalid params fail the block.
 * - Every other type is a custom pure block (`custom`): a seeded function of its type, params as
 *   written, resolved inputs, and the index and item of its innermost enclosing loop and parallel
 *   (what a handler can read from `ctx.loop` / `ctx.parallel`). `approval`, `wait`, `sleep` and
 *   `child` are modelled the same way, as if answered at once.
 * - A node with no incoming edge inside its scope (the top level or one container body) is active
 *   when its scope runs; otherwise it is active when one incoming edge is live, `skipped` if none
 *   is. An edge is live when its source completed and the source made no decision, the edge has no
 *   handle, or the handle equals the decision; an `"error"` edge is live only when its source failed.
 * - A reference to a skipped block reads `null` (a path into it does not resolve); a reference that
 *   does not resolve fails the block.
 * - Loops run `count` iterations, one per `items` element, or (`while`) until their condition —
 *   resolved after each iteration against it — stops holding; every loop is bounded by
 *   `maxIterations`. Parallels run one branch per item or `count` branches. A container's output
 *   is the array of its iterations/branches, each the record of the body's exit members that
 *   completed, keys in id order (UTF-16), whatever order they finished in.
 * - The run fails when a node failed that no `"error"` edge handles.
 *
 * Built by hand because it is the executable specification of the run semantics, not a library
 * concern.
 *
 * @since 0.1.0
 */
import type * as Snapshot from "../Snapshot.ts"
import type * as Workflow from "../Workflow.ts"

type Json = Workflow.Json
type JsonObject = { readonly [key: string]: Json }

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * JSON text with object keys sorted: equal JSON values (whatever their key order) have equal text.
 *
 * @since 0.1.0
 */
export const canonical = (value: Json): string => {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  if (isObject(value)) {
    const keys = Object.keys(value).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k]!)}`).join(",")}}`
  }
  return JSON.stringify(value)
}

/**
 * Structural JSON equality, key order ignored (the `eq` of conditions and routers).
 *
 * @since 0.1.0
 */
export const equal = (a: Json, b: Json): boolean => canonical(a) === canonical(b)

/**
 * Exact JSON equality, key order included: what a reader that renders a value can tell apart.
 *
 * @since 0.1.0
 */
export const identical = (a: Json | undefined, b: Json | undefined): boolean => JSON.stringify(a) === JSON.stringify(b)

/**
 * A 64-bit digest of a text as 16 hex characters (two 32-bit multiply-xorshift lanes).
 *
 * @since 0.1.0
 */
export const digest = (text: string): string => {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0")
}

const digestOf = (value: Json): string => digest(canonical(value))

// ---------------------------------------------------------------------------------------------
// Node ids (README: `<id>`, `<container>#start`, `<container>#end`, `<node>@i.j`)
// ---------------------------------------------------------------------------------------------

/**
 * The instance id of a node at an iteration/branch path (indices outer to inner).
 *
 * @since 0.1.0
 */
export const instanceKey = (node: string, path: ReadonlyArray<number>): string =>
  path.length === 0 ? node : `${node}@${path.join(".")}`

/**
 * The node id of an instance id.
 *
 * @since 0.1.0
 */
export const nodeOfKey = (key: string): string => {
  const at = key.indexOf("@")
  return at === -1 ? key : key.slice(0, at)
}

// ---------------------------------------------------------------------------------------------
// Workflow structure
// ---------------------------------------------------------------------------------------------

type Container =
  | { readonly kind: "loop"; readonly def: Workflow.Loop }
  | { readonly kind: "parallel"; readonly def: Workflow.Parallel }

/**
 * The static shape of a workflow: blocks, containers, parents, scope members and edges.
 *
 * @since 0.1.0
 */
export interface Structure {
  readonly workflow: Workflow.Workflow
  readonly blocks: ReadonlyMap<string, Workflow.Block>
  readonly containers: ReadonlyMap<string, Container>
  /** Immediate enclosing container of a block or container id. */
  readonly parent: ReadonlyMap<string, string>
  /** Members of each scope; the top level is the key `""`. */
  readonly members: ReadonlyMap<string, ReadonlyArray<string>>
  readonly incoming: ReadonlyMap<string, ReadonlyArray<Workflow.Edge>>
  readonly outgoing: ReadonlyMap<string, ReadonlyArray<Workflow.Edge>>
}

/**
 * Indexes a (valid) workflow.
 *
 * @since 0.1.0
 */
export const structure = (workflow: Workflow.Workflow): Structure => {
  const blocks = new Map<string, Workflow.Block>()
  for (const block of workflow.blocks) blocks.set(block.id, block)
  const containers = new Map<string, Container>()
  for (const def of workflow.loops ?? []) containers.set(def.id, { kind: "loop", def })
  for (const def of workflow.parallels ?? []) containers.set(def.id, { kind: "parallel", def })
  const parent = new Map<string, string>()
  for (const [id, c] of containers) for (const member of c.def.body) parent.set(member, id)
  const members = new Map<string, Array<string>>()
  for (const id of [...blocks.keys(), ...containers.keys()]) {
    const scope = parent.get(id) ?? ""
    members.set(scope, [...(members.get(scope) ?? []), id])
  }
  const incoming = new Map<string, Array<Workflow.Edge>>()
  const outgoing = new Map<string, Array<Workflow.Edge>>()
  for (const edge of workflow.edges) {
    incoming.set(edge.target, [...(incoming.get(edge.target) ?? []), edge])
    outgoing.set(edge.source, [...(outgoing.get(edge.source) ?? []), edge])
  }
  return { workflow, blocks, containers, parent, members, incoming, outgoing }
}

/**
 * The enclosing containers of an id, outer to inner.
 *
 * @since 0.1.0
 */
export const chainOf = (s: Structure, id: string): Array<string> => {
  const chain: Array<string> = []
  for (let c = s.parent.get(id); c !== undefined; c = s.parent.get(c)) chain.unshift(c)
  return chain
}

/**
 * The node that carries the output of an id: the block itself or the container's end sentinel.
 *
 * @since 0.1.0
 */
export const exitNode = (s: Structure, id: string): string => (s.containers.has(id) ? `${id}#end` : id)

/**
 * The node an edge into an id enters: the block itself or the container's start sentinel.
 *
 * @since 0.1.0
 */
export const entryNode = (s: Structure, id: string): string => (s.containers.has(id) ? `${id}#start` : id)

/** Members of a scope, each after its predecessors in the scope (repeatedly picking a ready one). */
const inOrder = (s: Structure, scope: string): Array<string> => {
  const pending = [...(s.members.get(scope) ?? [])]
  const done = new Set<string>()
  const out: Array<string> = []
  while (pending.length > 0) {
    const next = pending.findIndex((id) =>
      (s.incoming.get(id) ?? []).every((e) => done.has(e.source) || (s.parent.get(e.source) ?? "") !== scope)
    )
    const [id] = pending.splice(next, 1)
    done.add(id!)
    out.push(id!)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// References (README: `{ "$ref": "<path>" }`)
// ---------------------------------------------------------------------------------------------

/**
 * Where references read from, at one node instance.
 *
 * @since 0.1.0
 */
export interface Lookup {
  readonly block: (id: string) => { readonly value: Json } | undefined
  readonly input: (key: string) => Json | undefined
  readonly variable: (name: string) => Json | undefined
  readonly index: (scope: "loop" | "parallel") => number | undefined
  readonly item: (scope: "loop" | "parallel") => Json | undefined
}

class Unresolved {
  constructor(readonly reference: string) {}
}

const follow = (value: Json | undefined, segments: ReadonlyArray<string>, reference: string): Json => {
  let current = value
  for (const segment of segments) {
    if (Array.isArray(current) && /^(0|[1-9][0-9]*)$/u.test(segment)) current = current[Number(segment)]
    else if (isObject(current) && Object.hasOwn(current, segment)) current = current[segment]
    else throw new Unresolved(reference)
  }
  if (current === undefined) throw new Unresolved(reference)
  return current
}

const read = (reference: string, lookup: Lookup): Json => {
  const [root, ...rest] = reference.split(".")
  switch (root) {
    case "blocks": {
      const [id, output, ...path] = rest
      const found = output === "output" && id !== undefined ? lookup.block(id) : undefined
      if (found === undefined) throw new Unresolved(reference)
      return follow(found.value, path, reference)
    }
    case "input":
      return follow(lookup.input(rest[0] ?? ""), rest.slice(1), reference)
    case "vars":
      return follow(lookup.variable(rest[0] ?? ""), rest.slice(1), reference)
    case "loop":
    case "parallel": {
      const [what, ...path] = rest
      if (what === "index" && path.length === 0) {
        const index = lookup.index(root)
        if (index === undefined) throw new Unresolved(reference)
        return index
      }
      if (what === "item") return follow(lookup.item(root), path, reference)
      throw new Unresolved(reference)
    }
    default:
      throw new Unresolved(reference)
  }
}

const substitute = (value: Json, lookup: Lookup): Json => {
  if (Array.isArray(value)) return value.map((v) => substitute(v, lookup))
  if (!isObject(value)) return value
  const keys = Object.keys(value)
  if (keys.length === 1 && keys[0] === "$ref" && typeof value["$ref"] === "string") return read(value["$ref"], lookup)
  const out: Record<string, Json> = {}
  for (const key of keys) out[key] = substitute(value[key]!, lookup)
  return out
}

/**
 * The value with every reference replaced, or the first reference that does not resolve.
 *
 * @since 0.1.0
 */
export const resolve = (value: Json, lookup: Lookup): { readonly ok: true; readonly value: Json } | { readonly ok: false; readonly reference: string } => {
  try {
    return { ok: true, value: substitute(value, lookup) }
  } catch (e) {
    if (e instanceof Unresolved) return { ok: false, reference: e.reference }
    throw e
  }
}

/**
 * The block ids a value's references read.
 *
 * @since 0.1.0
 */
export const referencedBlocks = (value: Json): Array<string> => {
  const out: Array<string> = []
  const walk = (v: Json) => {
    if (Array.isArray(v)) return v.forEach(walk)
    if (!isObject(v)) return
    const keys = Object.keys(v)
    if (keys.length === 1 && keys[0] === "$ref" && typeof v["$ref"] === "string") {
      const [root, id] = v["$ref"].split(".")
      if (root === "blocks" && id !== undefined) out.push(id)
      return
    }
    for (const k of keys) walk(v[k]!)
  }
  walk(value)
  return out
}

// ---------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------

/**
 * The index and item of the innermost enclosing loop or parallel (`null` item for `count` and
 * `while` containers), as handlers see them.
 *
 * @since 0.1.0
 */
export interface Scope {
  readonly index: number
  readonly item: Json
}

/**
 * Where a custom block runs: its innermost enclosing loop and parallel, if any.
 *
 * @since 0.1.0
 */
export interface Context {
  readonly loop: Scope | undefined
  readonly parallel: Scope | undefined
}

/**
 * The output of a custom block: a seeded pure function of its type, params as written, resolved
 * inputs (key order included) and context. It carries a string (`value`), a number (`n`) and a list (`items`) so that
 * references with paths, `count` and `items` have something to read.
 *
 * @since 0.1.0
 */
export const custom = (seed: number, block: Workflow.Block, inputs: Json, context: Context): Json => {
  // The exact text, key order included: a handler can observe key order, so the model does too.
  const d = digest(JSON.stringify([
    seed,
    block.type,
    block.params ?? {},
    inputs,
    context.loop === undefined ? null : [context.loop.index, context.loop.item],
    context.parallel === undefined ? null : [context.parallel.index, context.parallel.item]
  ]))
  const n = Number.parseInt(d.slice(0, 2), 16) % 4
  return { value: d, n, items: Array.from({ length: n }, (_, i) => d.slice(i * 2, i * 2 + 4)) }
}

/**
 * The block types the model runs by their documented built-in semantics.
 *
 * @since 0.1.0
 */
export const builtinTypes: ReadonlyArray<string> = ["trigger", "value", "template", "condition", "router", "response", "fail"]

/**
 * What one block did: an output (and a decision), or a failure.
 *
 * @since 0.1.0
 */
export type Outcome =
  | { readonly _tag: "completed"; readonly output: Json; readonly decision?: string }
  | { readonly _tag: "failed"; readonly message: string }

const failure = (message: string): Outcome => ({ _tag: "failed", message })
const done = (output: Json, decision?: string): Outcome =>
  decision === undefined ? { _tag: "completed", output } : { _tag: "completed", output, decision }

const operators = ["eq", "neq", "lt", "lte", "gt", "gte", "contains", "exists"]

/**
 * `left op right` as the `condition` block documents it; `undefined` when the comparison is not
 * defined (which fails a condition block and stops a `while` loop).
 *
 * @since 0.1.0
 */
export const holds = (left: Json | undefined, op: string, right: Json | undefined): boolean | undefined => {
  if (op === "exists") return left !== undefined && left !== null
  if (op === "eq" || op === "neq") {
    if (left === undefined || right === undefined) return undefined
    return equal(left, right) === (op === "eq")
  }
  if (op === "contains") {
    if (typeof left === "string") return typeof right === "string" ? left.includes(right) : undefined
    if (Array.isArray(left)) return right !== undefined && left.some((x) => equal(x, right))
    if (isObject(left)) return typeof right === "string" ? Object.hasOwn(left, right) : undefined
    return undefined
  }
  const comparable = (typeof left === "number" && typeof right === "number") ||
    (typeof left === "string" && typeof right === "string")
  if (!comparable) return undefined
  const [a, b] = [left, right] as [number | string, number | string]
  switch (op) {
    case "lt":
      return a < b
    case "lte":
      return a <= b
    case "gt":
      return a > b
    case "gte":
      return a >= b
  }
  return undefined
}

/**
 * Whether a `while` loop runs another iteration given its resolved condition: a `{ left, op, right }`
 * comparison that holds, or the value `true`.
 *
 * @since 0.1.0
 */
export const continues = (condition: Json): boolean => {
  if (isObject(condition) && typeof condition["op"] === "string" && operators.includes(condition["op"])) {
    return holds(condition["left"], condition["op"], condition["right"]) === true
  }
  return condition === true
}

const render = (template: string, values: JsonObject): Outcome => {
  let out = ""
  let rest = template
  for (;;) {
    const open = rest.indexOf("{{")
    if (open === -1) break
    const close = rest.indexOf("}}", open + 2)
    if (close === -1) break
    const key = rest.slice(open + 2, close).trim()
    // A placeholder is `{{ key }}` with a key free of braces and spaces; anything else is text.
    if (key.length === 0 || /[\s{}]/u.test(key)) {
      out += rest.slice(0, open + 1)
      rest = rest.slice(open + 1)
      continue
    }
    if (!Object.hasOwn(values, key)) return failure(`no value for placeholder {{${key}}}`)
    const value = values[key]!
    out += rest.slice(0, open) + (typeof value === "string" ? value : canonical(value))
    rest = rest.slice(close + 2)
  }
  return done(out + rest)
}

/**
 * Runs one block on its resolved inputs.
 *
 * @since 0.1.0
 */
export const runBlock = (
  seed: number,
  block: Workflow.Block,
  inputs: JsonObject,
  runInput: JsonObject,
  context: Context
): Outcome => {
  const param = (key: string): Json | undefined => (Object.hasOwn(inputs, key) ? inputs[key] : undefined)
  switch (block.type) {
    case "trigger":
      return done(runInput)
    case "value": {
      const value = param("value")
      return value === undefined ? failure("missing param value") : done(value)
    }
    case "template": {
      const template = param("template")
      const values = param("values") ?? {}
      if (typeof template !== "string") return failure("template must be a string")
      if (!isObject(values)) return failure("values must be an object")
      return render(template, values)
    }
    case "condition": {
      const op = param("op")
      if (typeof op !== "string" || !operators.includes(op)) return failure("unknown operator")
      const result = holds(param("left"), op, param("right"))
      return result === undefined ? failure("comparison not defined") : done(result, String(result))
    }
    case "router": {
      const value = param("value") ?? null
      const routes = param("routes") ?? []
      if (!Array.isArray(routes)) return failure("routes must be an array")
      for (const route of routes) {
        if (!isObject(route) || typeof route["handle"] !== "string") return failure("a route must have a string handle")
        if (Object.hasOwn(route, "equals") && equal(route["equals"]!, value)) return done(route["handle"], route["handle"])
      }
      const fallback = param("default")
      return typeof fallback === "string" ? done(fallback, fallback) : failure("no route matches and no default")
    }
    case "response":
      return done(param("value") ?? null)
    case "fail":
      return failure(typeof param("message") === "string" ? param("message") as string : `fail block ${block.id}`)
    default:
      return done(custom(seed, block, inputs, context))
  }
}

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

/**
 * How a plan is executed: which nodes re-run (and, for parallels reset branch by branch, which
 * branches); everything else is copied from `state`.
 *
 * @since 0.1.0
 */
export interface Replay {
  readonly rerun: ReadonlySet<string>
  /** Parallels reset branch by branch: container id → the branches to re-run. */
  readonly branches: ReadonlyMap<string, ReadonlySet<number>>
  readonly state: Snapshot.Snapshot
}

/**
 * The outcome of an execution: the snapshot it leaves and the instances it executed, in execution
 * order (a copied or skipped instance is not executed).
 *
 * @since 0.1.0
 */
export interface Execution {
  readonly snapshot: Snapshot.Snapshot
  readonly executed: ReadonlyArray<string>
}

/**
 * Options of the executor.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Seed of every custom block (default 0). */
  readonly seed?: number
  /** The run input (a replay uses the state's). */
  readonly input?: Readonly<Record<string, Json>>
  /**
   * The hash written to the snapshot's `fingerprints` (default `digest` of the canonical text). The
   * model never reads fingerprints; a planner that compares them against its own hash passes it.
   */
  readonly fingerprint?: (value: Json) => string
  /**
   * Pinned outputs, by block id (every instance) or block instance (`<block>@<i>.<j>`, which wins):
   * a pinned instance that is reached completes with its pin (its params resolved as inputs)
   * without being executed.
   */
  readonly pins?: Readonly<Record<string, Json>>
}

interface Frame {
  readonly path: ReadonlyArray<number>
  readonly chain: ReadonlyArray<string>
  readonly items: ReadonlyArray<Json | undefined>
  /** A branch kept by a parallel reset branch by branch: everything in it is copied. */
  readonly kept: boolean
}

const topFrame: Frame = { path: [], chain: [], items: [], kept: false }

/** A frame one level into container `id`, at instance `i` with item `item`. */
const enter = (frame: Frame, id: string, i: number, item: Json | undefined, kept: boolean): Frame => ({
  path: [...frame.path, i],
  chain: [...frame.chain, id],
  items: [...frame.items, item],
  kept
})

/**
 * Executes a workflow from scratch, or replays a plan over a prior state.
 *
 * @since 0.1.0
 */
export const execute = (workflow: Workflow.Workflow, options: Options = {}, replay?: Replay): Execution =>
  new ModelRun(workflow, options, replay).run()

/** One execution's state and the rules of the model, one method per kind of member. */
class ModelRun {
  private readonly seed: number
  private readonly fingerprint: (value: Json) => string
  private readonly runInput: JsonObject
  private readonly s: Structure
  private readonly records: Record<string, Snapshot.NodeRecord> = {}
  private readonly loops: Record<string, Snapshot.LoopScope> = {}
  private readonly parallels: Record<string, Snapshot.ParallelScope> = {}
  private readonly executed: Array<string> = []

  constructor(
    private readonly workflow: Workflow.Workflow,
    private readonly options: Options,
    private readonly replay: Replay | undefined
  ) {
    this.seed = options.seed ?? 0
    this.fingerprint = options.fingerprint ?? digestOf
    this.runInput = replay?.state.input ?? options.input ?? {}
    this.s = structure(workflow)
  }

  run(): Execution {
    this.scope("", topFrame)
    const s = this.s
    const handled = (key: string) => (s.outgoing.get(nodeOfKey(key).split("#")[0]!) ?? []).some((e) => e.handle === "error")
    const failedRun = Object.entries(this.records).some(([key, r]) => r.status === "failed" && !handled(key))
    return {
      snapshot: {
        schemaVersion: 1,
        workflow: this.workflow,
        input: this.runInput,
        status: failedRun ? "failed" : "completed",
        nodes: this.records,
        loops: this.loops,
        parallels: this.parallels,
        pending: [],
        waits: [],
        pauses: [],
        diagnostics: { messages: [], finalization: failedRun ? "failed" : "completed" }
      },
      executed: this.executed
    }
  }

  // --- reading the state ------------------------------------------------------------------

  private definitionOf(id: string): string {
    return this.fingerprint((this.s.blocks.get(id) ?? this.s.containers.get(id)!.def) as unknown as Json)
  }

  private innermost(frame: Frame, kind: "loop" | "parallel"): number {
    for (let d = frame.chain.length - 1; d >= 0; d--) if (this.s.containers.get(frame.chain[d]!)!.kind === kind) return d
    return -1
  }

  private contextOf(frame: Frame): Context {
    const at = (kind: "loop" | "parallel") => {
      const d = this.innermost(frame, kind)
      return d === -1 ? undefined : { index: frame.path[d]!, item: frame.items[d] ?? null }
    }
    return { loop: at("loop"), parallel: at("parallel") }
  }

  private lookupAt(frame: Frame): Lookup {
    const { s, records, runInput, workflow } = this
    return {
      block: (id) => {
        const depth = chainOf(s, id).length
        const record = records[instanceKey(exitNode(s, id), frame.path.slice(0, depth))]
        if (record === undefined) return undefined
        if (record.status === "skipped") return { value: null }
        return record.status === "completed" && record.output !== undefined ? { value: record.output } : undefined
      },
      input: (key) => (Object.hasOwn(runInput, key) ? runInput[key] : undefined),
      variable: (name) => (workflow.variables !== undefined && Object.hasOwn(workflow.variables, name) ? workflow.variables[name] : undefined),
      index: (scope) => {
        const d = this.innermost(frame, scope)
        return d === -1 ? undefined : frame.path[d]
      },
      item: (scope) => {
        const d = this.innermost(frame, scope)
        return d === -1 ? undefined : frame.items[d]
      }
    }
  }

  private live(edge: Workflow.Edge, frame: Frame): boolean {
    const record = this.records[instanceKey(exitNode(this.s, edge.source), frame.path)]
    if (record === undefined) return false
    if (edge.handle === "error") return record.status === "failed"
    if (record.status !== "completed") return false
    return record.decision === undefined || edge.handle === undefined || edge.handle === record.decision
  }

  // A plan re-runs a member at an instance when the member re-runs (a container: its start or its
  // end, i.e. it is entered) and the plan did not keep that instance's record (a container's: its end's).
  private reruns(id: string, frame: Frame): boolean {
    const { s, replay } = this
    return !frame.kept && (replay === undefined ||
      ((replay.rerun.has(entryNode(s, id)) || replay.rerun.has(exitNode(s, id))) &&
        replay.state.nodes[instanceKey(exitNode(s, id), frame.path)] === undefined))
  }

  // --- copying what a replay keeps ----------------------------------------------------------

  private copy(key: string): void {
    const record = this.replay?.state.nodes[key]
    if (record !== undefined) this.records[key] = record
  }

  private copyMember(id: string, frame: Frame): void {
    if (!this.s.containers.has(id)) return this.copy(instanceKey(id, frame.path))
    this.copy(instanceKey(`${id}#start`, frame.path))
    this.copy(instanceKey(`${id}#end`, frame.path))
    const scopeKey = instanceKey(id, frame.path)
    const loop = this.replay?.state.loops[scopeKey]
    const parallel = this.replay?.state.parallels[scopeKey]
    if (loop !== undefined) this.loops[scopeKey] = loop
    if (parallel !== undefined) this.parallels[scopeKey] = parallel
    const count = loop?.iterations ?? parallel?.count ?? 0
    for (let i = 0; i < count; i++) {
      const body = enter(frame, id, i, undefined, true)
      for (const member of this.s.members.get(id) ?? []) this.copyMember(member, body)
    }
  }

  // --- records --------------------------------------------------------------------------------

  private skipped(id: string): Snapshot.NodeRecord {
    return { status: "skipped", attempt: 0, fingerprints: { definition: this.definitionOf(id) } }
  }

  private completed(id: string, inputs: Json, output: Json, decision?: string): Snapshot.NodeRecord {
    return {
      status: "completed",
      attempt: 1,
      inputs,
      output,
      fingerprints: { definition: this.definitionOf(id), inputs: this.fingerprint(inputs), output: this.fingerprint(output) },
      ...(decision === undefined ? {} : { decision })
    }
  }

  private failed(id: string, message: string): Snapshot.NodeRecord {
    return { status: "failed", attempt: 1, fingerprints: { definition: this.definitionOf(id) }, error: { message } }
  }

  // --- members --------------------------------------------------------------------------------

  private scope(id: string, frame: Frame): void {
    const s = this.s
    for (const member of inOrder(s, id)) {
      if (!this.reruns(member, frame)) {
        this.copyMember(member, frame)
        continue
      }
      const incoming = (s.incoming.get(member) ?? []).filter((e) => (s.parent.get(e.source) ?? "") === id)
      const active = incoming.length === 0 || incoming.some((e) => this.live(e, frame))
      const b = s.blocks.get(member)
      if (b !== undefined) this.block(b, frame, active)
      else this.container(member, frame, active)
    }
  }

  private block(b: Workflow.Block, frame: Frame, active: boolean): void {
    const key = instanceKey(b.id, frame.path)
    // A disabled sink is skipped; a disabled block with successors is not run either.
    const disabled = b.disabled === true
    if (!active || (disabled && (this.s.outgoing.get(b.id) ?? []).length === 0)) return void (this.records[key] = this.skipped(b.id))
    const pin = this.options.pins?.[key] ?? this.options.pins?.[b.id]
    if (pin !== undefined) return this.pinned(b, key, frame, pin)
    this.executed.push(key)
    if (disabled) return this.passOn(b, key, frame)
    const resolved = resolve(b.params ?? {}, this.lookupAt(frame))
    if (!resolved.ok) return void (this.records[key] = this.failed(b.id, `unresolved ${resolved.reference}`))
    const inputs = resolved.value as JsonObject
    const outcome = runBlock(this.seed, b, inputs, this.runInput, this.contextOf(frame))
    this.records[key] = outcome._tag === "failed"
      ? this.failed(b.id, outcome.message)
      : this.completed(b.id, inputs, outcome.output, outcome.decision)
  }

  private pinned(b: Workflow.Block, key: string, frame: Frame, pin: Json): void {
    const resolved = resolve(b.params ?? {}, this.lookupAt(frame))
    this.records[key] = resolved.ok ? this.completed(b.id, resolved.value, pin) : this.failed(b.id, `unresolved ${resolved.reference}`)
  }

  // A disabled block with successors outputs what its one incoming edge's source output; its
  // inputs are `{ value: <that output> }`.
  private passOn(b: Workflow.Block, key: string, frame: Frame): void {
    const source = this.s.incoming.get(b.id)![0]!.source
    const found = this.lookupAt(frame).block(source)
    if (found === undefined) return void (this.records[key] = this.failed(b.id, `unresolved blocks.${source}.output`))
    this.records[key] = this.completed(b.id, { value: found.value }, found.value)
  }

  /** A container's start: its resolved count/items, or the message it fails with. */
  private start(id: string, frame: Frame): { readonly values: JsonObject; readonly kept: Snapshot.NodeRecord | undefined } | { readonly message: string } {
    const c = this.s.containers.get(id)!
    const config: Record<string, Json> = {}
    if (c.def.count !== undefined) config["count"] = c.def.count
    if (c.def.items !== undefined) config["items"] = c.def.items
    // A start the plan kept (a container entered to re-run some body instances) is not evaluated again.
    const kept = this.replay?.state.nodes[instanceKey(`${id}#start`, frame.path)]
    if (kept === undefined) this.executed.push(instanceKey(`${id}#start`, frame.path))
    const resolved = kept?.status === "completed"
      ? { ok: true as const, value: kept.output ?? {} }
      : resolve(config, this.lookupAt(frame))
    if (!resolved.ok) return { message: `unresolved ${resolved.reference}` }
    const values = resolved.value as JsonObject
    const wellTyped = (c.def.items === undefined || Array.isArray(values["items"])) &&
      (c.def.count === undefined || typeof values["count"] === "number")
    return wellTyped ? { values, kept } : { message: "count must be a number and items an array" }
  }

  private container(id: string, frame: Frame, active: boolean): void {
    const c = this.s.containers.get(id)!
    const startKey = instanceKey(`${id}#start`, frame.path)
    const endKey = instanceKey(`${id}#end`, frame.path)
    if (!active) {
      this.records[startKey] = this.skipped(id)
      this.records[endKey] = this.skipped(id)
      return
    }
    const started = this.start(id, frame)
    if ("message" in started) {
      this.records[startKey] = this.failed(id, started.message)
      this.records[endKey] = this.failed(id, started.message)
      return
    }
    const { values, kept } = started
    this.records[startKey] = kept ?? this.completed(id, values, values)
    const items = Array.isArray(values["items"]) ? values["items"] : undefined
    const count = typeof values["count"] === "number" ? values["count"] : undefined
    const max = c.kind === "loop" && c.def.maxIterations !== undefined ? c.def.maxIterations : Number.POSITIVE_INFINITY
    const isWhile = c.kind === "loop" && c.def.kind === "while"
    const planned = isWhile ? max : Math.min(items !== undefined ? items.length : Math.max(0, Math.floor(count ?? 0)), max)
    const outputs = this.instances(id, frame, planned, items, isWhile)
    const scopeKey = instanceKey(id, frame.path)
    if (c.kind === "loop") {
      this.loops[scopeKey] = { iterations: outputs.length, ...(items === undefined ? {} : { items }), outputs, done: true }
    } else {
      this.parallels[scopeKey] = { count: outputs.length, ...(items === undefined ? {} : { items }), outputs, done: true }
    }
    if (this.replay !== undefined && !this.replay.rerun.has(`${id}#end`)) return this.copy(endKey)
    this.executed.push(endKey)
    this.records[endKey] = this.completed(id, outputs, outputs)
  }

  /** Runs (or copies) a container's instances; their outputs, one record of exit outputs each. */
  private instances(id: string, frame: Frame, planned: number, items: ReadonlyArray<Json> | undefined, isWhile: boolean): Array<Json> {
    const s = this.s
    const body = s.containers.get(id)!.def.body
    const exits = body.filter((m) => !(s.outgoing.get(m) ?? []).some((e) => body.includes(e.target))).sort()
    const partial = this.replay?.branches.get(id)
    const prior = this.replay?.state.parallels[instanceKey(id, frame.path)]
    const outputs: Array<Json> = []
    for (let i = 0; i < planned; i++) {
      const inner = enter(frame, id, i, items?.[i], frame.kept || (partial !== undefined && !partial.has(i)))
      if (inner.kept) {
        for (const member of s.members.get(id) ?? []) this.copyMember(member, inner)
        outputs.push(prior?.outputs[i] ?? null)
      } else {
        this.scope(id, inner)
        const record: Record<string, Json> = {}
        for (const exit of exits) {
          const r = this.records[instanceKey(exitNode(s, exit), inner.path)]
          if (r?.status === "completed" && r.output !== undefined) record[exit] = r.output
        }
        outputs.push(record)
      }
      if (isWhile) {
        const condition = resolve((s.containers.get(id)!.def as Workflow.Loop).condition ?? null, this.lookupAt(inner))
        if (!condition.ok || !continues(condition.value)) break
      }
    }
    return outputs
  }
}
