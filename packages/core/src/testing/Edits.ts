/**
 * Random edits of a workflow that keep it valid: change a block's params, toggle or set `volatile`,
 * add a block after another one, remove an unreferenced sink, change a variable, change a
 * container's literal `count` / `items`. Edits are plain data (so fast-check shrinks them) and
 * `apply` never mutates its input.
 *
 * @since 0.1.0
 */
import * as fc from "fast-check"
import * as Reference from "../Reference.ts"
import type * as Workflow from "../Workflow.ts"

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
    container: fc.record({ _tag: fc.constant("container" as const), pick, value: fc.integer({ min: 0, max: 3 }) })
  }
  return fc.oneof(...kinds.map((kind) => arbitraries[kind]))
}

/**
 * Every edit kind.
 *
 * @since 0.1.0
 */
export const allKinds: ReadonlyArray<Kind> = ["params", "volatile", "add", "remove", "variable", "container"]

/**
 * A list of random edits.
 *
 * @since 0.1.0
 */
export const arbitraryEdits = (
  options: { readonly kinds?: ReadonlyArray<Kind>; readonly maxLength?: number } = {}
): fc.Arbitrary<ReadonlyArray<Edit>> =>
  fc.array(arbitraryEdit(options.kinds), { minLength: 1, maxLength: options.maxLength ?? 3 })

type Mutable = {
  id: string
  blocks: Array<Record<string, unknown> & { id: string; type: string; params?: Record<string, Json>; volatile?: boolean }>
  edges: Array<{ source: string; target: string; handle?: string }>
  loops?: Array<Record<string, unknown> & { id: string; body: Array<string>; count?: Json; items?: Json }>
  parallels?: Array<Record<string, unknown> & { id: string; body: Array<string>; count?: Json; items?: Json }>
  variables?: Record<string, Json>
  outputs?: Array<string>
}

const choose = <A>(values: ReadonlyArray<A>, n: number): A | undefined =>
  values.length === 0 ? undefined : values[n % values.length]

/** Ids read by some reference anywhere in the workflow. */
const referenced = (w: Mutable): Set<string> => {
  const out = new Set<string>()
  const scan = (value: unknown) => {
    for (const { reference } of Reference.collect(value as Json)) {
      if (reference._tag === "BlockOutput") out.add(reference.block)
    }
  }
  for (const block of w.blocks) if (block.params !== undefined) scan(block.params)
  for (const c of [...(w.loops ?? []), ...(w.parallels ?? [])]) scan([c["count"] ?? null, c["items"] ?? null, c["condition"] ?? null] as Json)
  return out
}

/**
 * Applies edits in order to a copy of a workflow.
 *
 * @since 0.1.0
 */
export const apply = (workflow: Workflow.Workflow, edits: ReadonlyArray<Edit>): Workflow.Workflow => {
  const w = JSON.parse(JSON.stringify(workflow)) as Mutable
  let added = 0
  for (const edit of edits) {
    const editable = w.blocks.filter((b) => b.type !== "trigger")
    switch (edit._tag) {
      case "params": {
        const block = choose(editable, edit.pick)
        if (block !== undefined) block.params = { ...block.params, edited: edit.value }
        break
      }
      case "volatile": {
        const block = choose(editable, edit.pick)
        if (block !== undefined) block.volatile = edit.value
        break
      }
      case "add": {
        const deciding = new Set(w.blocks.filter((b) => b.type === "router" || b.type === "condition").map((b) => b.id))
        const sources = [
          ...w.blocks.map((b) => b.id).filter((id) => !deciding.has(id)),
          ...(w.loops ?? []).map((c) => c.id),
          ...(w.parallels ?? []).map((c) => c.id)
        ]
        const source = choose(sources, edit.pick)
        if (source === undefined) break
        const id = `added${added++}`
        w.blocks.push({
          id,
          type: "fn",
          params: edit.reference ? { from: { $ref: `blocks.${source}.output` } } : { constant: edit.pick }
        })
        w.edges.push({ source, target: id })
        const parent = [...(w.loops ?? []), ...(w.parallels ?? [])].find((c) => c.body.includes(source))
        parent?.body.push(id)
        break
      }
      case "remove": {
        const reads = referenced(w)
        const outputs = new Set(w.outputs ?? [])
        const containers = [...(w.loops ?? []), ...(w.parallels ?? [])]
        const removable = editable.filter((b) =>
          !w.edges.some((e) => e.source === b.id) && !reads.has(b.id) && !outputs.has(b.id) &&
          !containers.some((c) => c.body.length === 1 && c.body[0] === b.id)
        )
        const block = choose(removable, edit.pick)
        if (block === undefined) break
        w.blocks = w.blocks.filter((b) => b !== block)
        w.edges = w.edges.filter((e) => e.target !== block.id)
        for (const c of containers) c.body = c.body.filter((m) => m !== block.id)
        break
      }
      case "variable": {
        const name = choose(Object.keys(w.variables ?? {}), edit.pick)
        if (name !== undefined) w.variables = { ...w.variables, [name]: edit.value }
        break
      }
      case "container": {
        const containers = [...(w.loops ?? []), ...(w.parallels ?? [])].filter((c) =>
          typeof c.count === "number" || (Array.isArray(c.items) && !Reference.hasReferences(c.items))
        )
        const c = choose(containers, edit.pick)
        if (c === undefined) break
        if (typeof c.count === "number") c.count = edit.value
        else {
          const items = [...(c.items as Array<Json>)]
          if (items.length > 0 && edit.pick % 2 === 0) items[edit.pick % items.length] = `edited-${edit.value}`
          else items.push(edit.value)
          c.items = items
        }
        break
      }
    }
  }
  return w as unknown as Workflow.Workflow
}
