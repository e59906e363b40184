/**
 * Random edits of a workflow: change a block's params, toggle or set `volatile`, add a block after
 * another one, remove an unreferenced sink, change a variable, change a container's literal `count`
 * / `items`, insert / remove / reorder a container's literal items, add or remove an edge, move a
 * block into another container, change a router's routes, change a container's kind or bounds,
 * change the declared outputs. Edits are plain data (so fast-check shrinks them) and `apply` never
 * mutates its input; an edit may leave the workflow invalid (a cycle, a reference that is no longer
 * to an ancestor), which callers filter out with `Workflow.decode`.
 *
 * @since 0.1.0
 */
import * as fc from "fast-check"
import type * as Workflow from "../Workflow.ts"
import * as Model from "./Model.ts"

type Json = Workflow.Json

/**
 * One edit. `pick` chooses among the candidates of its kind (modulo their number); an edit with no
 * candidate is a no-op.
 *
 * @since 0.1.0
 */
export type Edit =
  | { readonly _tag: "params"; readonly pick: number; readonly value: Json }
  | { readonly _tag: "volatile"; readonly pick: number; readonly value: boolean }
  | { readonly _tag: "add"; readonly pick: number; readonly reference: boolean }
  | { readonly _tag: "remove"; readonly pick: number }
  | { readonly _tag: "variable"; readonly pick: number; readonly value: Json }
  | { readonly _tag: "container"; readonly pick: number; readonly value: number }
  | { readonly _tag: "items"; readonly pick: number; readonly op: "insert" | "remove" | "reorder"; readonly at: number; readonly value: Json }
  | { readonly _tag: "edge"; readonly pick: number; readonly other: number; readonly add: boolean }
  | { readonly _tag: "move"; readonly pick: number; readonly into: number }
  | { readonly _tag: "routes"; readonly pick: number; readonly value: Json; readonly fallback: boolean }
  | { readonly _tag: "setting"; readonly pick: number; readonly setting: "kind" | "bound"; readonly value: number }
  | { readonly _tag: "outputs"; readonly pick: number }

/**
 * The kinds of edit.
 *
 * @since 0.1.0
 */
export type Kind = Edit["_tag"]

const smallJson = fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>
const pick = fc.nat({ max: 1000 })

/**
 * One random edit of the given kinds (all kinds by default).
 *
 * @since 0.1.0
 */
export const arbitraryEdit = (kinds: ReadonlyArray<Kind> = allKinds): fc.Arbitrary<Edit> => {
  const arbitraries: Record<Kind, fc.Arbitrary<Edit>> = {
    params: fc.record({ _tag: fc.constant("params" as const), pick, value: smallJson }),
    volatile: fc.record({ _tag: fc.constant("volatile" as const), pick, value: fc.boolean() }),
    add: fc.record({ _tag: fc.constant("add" as const), pick, reference: fc.boolean() }),
    remove: fc.record({ _tag: fc.constant("remove" as const), pick }),
    variable: fc.record({ _tag: fc.constant("variable" as const), pick, value: smallJson }),
    container: fc.record({ _tag: fc.constant("container" as const), pick, value: fc.integer({ min: 0, max: 3 }) }),
    items: fc.record({
      _tag: fc.constant("items" as const),
      pick,
      op: fc.constantFrom("insert" as const, "remove" as const, "reorder" as const),
      at: pick,
      value: smallJson
    }),
    edge: fc.record({ _tag: fc.constant("edge" as const), pick, other: pick, add: fc.boolean() }),
    move: fc.record({ _tag: fc.constant("move" as const), pick, into: pick }),
    routes: fc.record({ _tag: fc.constant("routes" as const), pick, value: smallJson, fallback: fc.boolean() }),
    setting: fc.record({
      _tag: fc.constant("setting" as const),
      pick,
      setting: fc.constantFrom("kind" as const, "bound" as const),
      value: fc.integer({ min: 0, max: 3 })
    }),
    outputs: fc.record({ _tag: fc.constant("outputs" as const), pick })
  }
  return fc.oneof(...kinds.map((kind) => arbitraries[kind]))
}

/**
 * Every edit kind.
 *
 * @since 0.1.0
 */
export const allKinds: ReadonlyArray<Kind> = [
  "params",
  "volatile",
  "add",
  "remove",
  "variable",
  "container",
  "items",
  "edge",
  "move",
  "routes",
  "setting",
  "outputs"
]

/**
 * The kinds of edit that keep any valid workflow valid (adding or removing an edge, or moving a
 * block, can make a cycle or leave a reference to a block that is no longer upstream).
 *
 * @since 0.1.0
 */
export const safeKinds: ReadonlyArray<Kind> = allKinds.filter((kind) => kind !== "edge" && kind !== "move")

/**
 * A list of random edits.
 *
 * @since 0.1.0
 */
export const arbitraryEdits = (
  options: { readonly kinds?: ReadonlyArray<Kind>; readonly maxLength?: number } = {}
): fc.Arbitrary<ReadonlyArray<Edit>> =>
  fc.array(arbitraryEdit(options.kinds), { minLength: 1, maxLength: options.maxLength ?? 3 })

type MutableContainer = {
  id: string
  kind: string
  body: Array<string>
  count?: Json
  items?: Json
  maxIterations?: number
  concurrency?: number
}

type Mutable = {
  id: string
  blocks: Array<Record<string, unknown> & { id: string; type: string; params?: Record<string, Json>; volatile?: boolean }>
  edges: Array<{ source: string; target: string; handle?: string }>
  loops?: Array<Record<string, unknown> & MutableContainer>
  parallels?: Array<Record<string, unknown> & MutableContainer>
  variables?: Record<string, Json>
  outputs?: Array<string>
}

const parentOf = (w: Mutable): Map<string, string> => {
  const parent = new Map<string, string>()
  for (const c of [...(w.loops ?? []), ...(w.parallels ?? [])]) for (const m of c.body) parent.set(m, c.id)
  return parent
}

const choose = <A>(values: ReadonlyArray<A>, n: number): A | undefined =>
  values.length === 0 ? undefined : values[n % values.length]

/** Ids read by some reference anywhere in the workflow. */
const referenced = (w: Mutable): Set<string> => {
  const out = new Set<string>()
  for (const block of w.blocks) for (const id of Model.referencedBlocks(block.params ?? {})) out.add(id)
  for (const c of [...(w.loops ?? []), ...(w.parallels ?? [])]) {
    for (const id of Model.referencedBlocks([c["count"] ?? null, c["items"] ?? null, c["condition"] ?? null] as Json)) out.add(id)
  }
  return out
}

const literalItems = (c: MutableContainer): boolean =>
  Array.isArray(c.items) && Model.referencedBlocks(c.items).length === 0 && !JSON.stringify(c.items).includes("$ref")

type Appliers = { readonly [K in Edit["_tag"]]: (w: Mutable, edit: Extract<Edit, { readonly _tag: K }>, ctx: Context) => void }

/** What appliers share within one `apply`: the number of blocks added so far (for fresh ids). */
interface Context {
  added: number
}

/** Blocks an edit may change: all but triggers. */
const editableOf = (w: Mutable) => w.blocks.filter((b) => b.type !== "trigger")

const appliers: Appliers = {
  params: (w, edit) => {
    const block = choose(editableOf(w), edit.pick)
    if (block !== undefined) block.params = { ...block.params, edited: edit.value }
  },
  volatile: (w, edit) => {
    const block = choose(editableOf(w), edit.pick)
    if (block !== undefined) block.volatile = edit.value
  },
  add: (w, edit, ctx) => {
    const deciding = new Set(w.blocks.filter((b) => b.type === "router" || b.type === "condition").map((b) => b.id))
    const sources = [
      ...w.blocks.map((b) => b.id).filter((id) => !deciding.has(id)),
      ...(w.loops ?? []).map((c) => c.id),
      ...(w.parallels ?? []).map((c) => c.id)
    ]
    const source = choose(sources, edit.pick)
    if (source === undefined) return
    const id = `added${ctx.added++}`
    w.blocks.push({
      id,
      type: "fn",
      params: edit.reference ? { from: { $ref: `blocks.${source}.output` } } : { constant: edit.pick }
    })
    w.edges.push({ source, target: id })
    const parent = [...(w.loops ?? []), ...(w.parallels ?? [])].find((c) => c.body.includes(source))
    parent?.body.push(id)
  },
  remove: (w, edit) => {
    const reads = referenced(w)
    const outputs = new Set(w.outputs ?? [])
    const containers = [...(w.loops ?? []), ...(w.parallels ?? [])]
    const removable = editableOf(w).filter((b) =>
      !w.edges.some((e) => e.source === b.id) && !reads.has(b.id) && !outputs.has(b.id) &&
      !containers.some((c) => c.body.length === 1 && c.body[0] === b.id)
    )
    const block = choose(removable, edit.pick)
    if (block === undefined) return
    w.blocks = w.blocks.filter((b) => b !== block)
    w.edges = w.edges.filter((e) => e.target !== block.id)
    for (const c of containers) c.body = c.body.filter((m) => m !== block.id)
  },
  variable: (w, edit) => {
    const name = choose(Object.keys(w.variables ?? {}), edit.pick)
    if (name !== undefined) w.variables = { ...w.variables, [name]: edit.value }
  },
  container: (w, edit) => {
    const containers = [...(w.loops ?? []), ...(w.parallels ?? [])].filter((c) => typeof c.count === "number" || literalItems(c))
    const c = choose(containers, edit.pick)
    if (c === undefined) return
    if (typeof c.count === "number") c.count = edit.value
    else {
      const items = [...(c.items as Array<Json>)]
      if (items.length > 0 && edit.pick % 2 === 0) items[edit.pick % items.length] = `edited-${edit.value}`
      else items.push(edit.value)
      c.items = items
    }
  },
  items: (w, edit) => {
    const c = choose([...(w.parallels ?? []), ...(w.loops ?? [])].filter(literalItems), edit.pick)
    if (c === undefined) return
    const items = [...(c.items as Array<Json>)]
    if (edit.op === "insert") items.splice(edit.at % (items.length + 1), 0, edit.value)
    else if (edit.op === "remove" && items.length > 0) items.splice(edit.at % items.length, 1)
    else if (items.length > 1) items.push(items.splice(edit.at % items.length, 1)[0]!)
    c.items = items
  },
  edge: (w, edit) => {
    if (!edit.add) {
      const edge = choose(w.edges, edit.pick)
      if (edge !== undefined) w.edges = w.edges.filter((e) => e !== edge)
      return
    }
    // Same scope, and the target not a router/condition branch: validity is checked by the caller.
    const parent = parentOf(w)
    const ids = [...editableOf(w).map((b) => b.id), ...(w.loops ?? []).map((c) => c.id), ...(w.parallels ?? []).map((c) => c.id)]
    const source = choose(ids, edit.pick)
    if (source === undefined) return
    const targets = ids.filter((id) => id !== source && parent.get(id) === parent.get(source))
    const target = choose(targets, edit.other)
    if (target !== undefined && !w.edges.some((e) => e.source === source && e.target === target)) w.edges.push({ source, target })
  },
  move: (w, edit) => {
    const containers = [...(w.loops ?? []), ...(w.parallels ?? [])]
    const parent = parentOf(w)
    const block = choose(editableOf(w).filter((b) => parent.has(b.id)), edit.pick)
    if (block === undefined) return
    const from = containers.find((c) => c.id === parent.get(block.id))!
    const into = choose(containers.filter((c) => c !== from), edit.into)
    if (into === undefined || from.body.length === 1) return
    from.body = from.body.filter((m) => m !== block.id)
    into.body.push(block.id)
    w.edges = w.edges.filter((e) => e.source !== block.id && e.target !== block.id)
  },
  routes: (w, edit) => {
    const router = choose(editableOf(w).filter((b) => b.type === "router"), edit.pick)
    if (router === undefined) return
    const routes = Array.isArray(router.params?.["routes"]) ? [...(router.params["routes"] as Array<Json>)] : []
    const handles = [...new Set(w.edges.filter((e) => e.source === router.id && e.handle !== undefined).map((e) => e.handle!))]
    const handle = choose(handles, edit.pick) ?? "r0"
    routes.unshift({ handle, equals: edit.value })
    router.params = { ...router.params, routes }
    if (edit.fallback) router.params = { ...router.params, default: choose(handles, edit.pick + 1) ?? "otherwise" }
  },
  setting: (w, edit) => {
    const c = choose([...(w.loops ?? []), ...(w.parallels ?? [])], edit.pick)
    if (c === undefined) return
    const isLoop = (w.loops ?? []).includes(c)
    if (edit.setting === "bound") {
      if (isLoop) c.maxIterations = edit.value + 1
      else c.concurrency = edit.value + 1
    } else if (c.kind === "count" && typeof c.count === "number") {
      // count n → one item per iteration or branch, the same count.
      c.kind = isLoop ? "forEach" : "collection"
      c.items = Array.from({ length: c.count }, (_, i) => (edit.value + i) % 4)
      delete c.count
    } else if ((c.kind === "forEach" || c.kind === "collection") && Array.isArray(c.items)) {
      c.kind = "count"
      c.count = c.items.length
      delete c.items
    }
  },
  outputs: (w, edit) => {
    const ids = [...editableOf(w).map((b) => b.id), ...(w.loops ?? []).map((c) => c.id), ...(w.parallels ?? []).map((c) => c.id)]
    const parent = parentOf(w)
    const id = choose(ids.filter((i) => !parent.has(i)), edit.pick)
    if (id === undefined) return
    const outputs = w.outputs ?? []
    w.outputs = outputs.includes(id) ? outputs.filter((o) => o !== id) : [...outputs, id]
    if (w.outputs.length === 0) delete w.outputs
  }
}

/**
 * Applies edits in order to a copy of a workflow.
 *
 * @since 0.1.0
 */
export const apply = (workflow: Workflow.Workflow, edits: ReadonlyArray<Edit>): Workflow.Workflow => {
  const w = JSON.parse(JSON.stringify(workflow)) as Mutable
  const ctx: Context = { added: 0 }
  for (const edit of edits) (appliers[edit._tag] as (w: Mutable, edit: Edit, ctx: Context) => void)(w, edit, ctx)
  return w as unknown as Workflow.Workflow
}
