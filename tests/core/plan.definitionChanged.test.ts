/**
 * `definition-changed` (DESIGN.md, the plan's step 2: a block's definition fingerprint differs from
 * the snapshot's frozen workflow), checked against the definition itself rather than against the
 * planner's comparison: a block's definition is the JSON text of its params, retry, type, volatile
 * and disabled flag, object keys in the order written (a handler sees params as written, so
 * reordered keys are a change). The edited block is a fresh value — a deep copy, keys reordered at
 * some depth, one member replaced or one added, or something else altogether — never the frozen
 * object itself, as after decoding a file.
 */
import { assert, describe, it } from "@effect/vitest"
import { Plan, Snapshot, type Workflow } from "@ripple/core"
import * as Result from "effect/Result"
import * as fc from "fast-check"

type Json = Workflow.Json

/** The definition text of a block: what its definition fingerprint is taken over. */
const definitionText = (block: Workflow.Block): string =>
  JSON.stringify([block.disabled === true, block.params ?? {}, block.retry ?? null, block.type, block.volatile ?? false])

const copy = (value: Json): Json => JSON.parse(JSON.stringify(value)) as Json

/** `value` with the keys of every object at `depth` (0: the value itself) in reverse order. */
const reordered = (value: Json, depth: number): Json => {
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) return value.map((v) => reordered(v, depth - 1))
  const entries = Object.entries(value).map(([k, v]) => [k, reordered(v, depth - 1)] as const)
  // `Object.fromEntries` defines own properties (a key `__proto__` stays a key).
  return Object.fromEntries(depth === 0 ? entries.reverse() : entries)
}

/**
 * `value` with what `steps` reach (each picks a member by its position) replaced by `leaf`
 * (`grow`: `leaf` appended there instead, to an array or under a new key of an object).
 */
const edited = (value: Json, steps: ReadonlyArray<number>, leaf: Json, grow: boolean): Json => {
  if (typeof value !== "object" || value === null) return leaf
  if (steps.length === 0) {
    if (!grow) return leaf
    if (Array.isArray(value)) return [...value.map(copy), leaf]
    let key = "+"
    while (Object.hasOwn(value, key)) key += "+"
    return Object.fromEntries([...Object.entries(value).map(([k, v]) => [k, copy(v)] as const), [key, leaf] as const])
  }
  const [step, ...rest] = steps
  if (Array.isArray(value)) {
    if (value.length === 0) return grow ? [leaf] : leaf
    const at = step! % value.length
    return value.map((v, i) => (i === at ? edited(v, rest, leaf, grow) : copy(v)))
  }
  const object = value as { readonly [key: string]: Json }
  const keys = Object.keys(object)
  if (keys.length === 0) return grow ? { "+": leaf } : leaf
  const at = keys[step! % keys.length]
  return Object.fromEntries(keys.map((k) => [k, k === at ? edited(object[k]!, rest, leaf, grow) : copy(object[k]!)]))
}

const params = fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }) as fc.Arbitrary<{ readonly [key: string]: Json }>
const retry = fc.record(
  { maxAttempts: fc.integer({ min: 1, max: 4 }), initialDelayMs: fc.constantFrom(0, 50) },
  { requiredKeys: ["maxAttempts"] }
)
// Optional members absent, not `undefined` (which a workflow may not hold).
const block = fc.record(
  { type: fc.constantFrom("fn", "gn"), params, retry, volatile: fc.boolean(), disabled: fc.boolean() },
  { requiredKeys: ["type"] }
)

/** The frozen block and its edit: derived from it (mostly) or drawn anew. */
const withEdit = (before: fc.Arbitrary<Workflow.Block>) =>
  before.chain((b) => {
    const own = (b.params ?? {}) as Json
    // Params are an object: a replacement of the whole value (no member to descend into) goes under a key.
    const withParams = (p: Json): Workflow.Block => ({
      ...b,
      params: typeof p === "object" && p !== null && !Array.isArray(p) ? p as { readonly [key: string]: Json } : { k: p }
    })
    return fc.tuple(
      fc.constant(b),
      fc.oneof(
        fc.constant(withParams(copy(own))),
        fc.nat(3).map((depth) => withParams(reordered(own, depth))),
        fc.tuple(fc.array(fc.nat(), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), fc.boolean()).map(([steps, leaf, grow]) =>
          withParams(edited(own, steps, leaf as Json, grow))
        ),
        block.map((other) => ({ ...other, id: b.id }) as Workflow.Block),
        retry.map((r) => ({ ...withParams(copy(own)), retry: r }) as Workflow.Block),
        fc.boolean().map((v) => ({ ...withParams(copy(own)), volatile: v }) as Workflow.Block)
      )
    )
  })

/** `t → x → out`, the prior run complete, and `x` edited: the change reasons `diff` finds for `x`. */
const changesOfX = (before: Workflow.Block, after: Workflow.Block) => {
  const workflow = (x: Workflow.Block): Workflow.Workflow => ({
    id: "w",
    blocks: [{ id: "t", type: "trigger" }, x, { id: "out", type: "response" }],
    edges: [{ source: "t", target: "x" }, { source: "x", target: "out" }]
  })
  const frozen = workflow(before)
  const record = (id: string): Snapshot.NodeRecord => ({
    status: "completed",
    attempt: 1,
    inputs: {},
    output: id,
    fingerprints: { definition: "", inputs: "", output: "" }
  })
  const snapshot: Snapshot.Snapshot = {
    ...Snapshot.empty(frozen),
    status: "completed",
    nodes: { t: record("t"), x: record("x"), out: record("out") }
  }
  const input = Result.getOrThrow(Plan.prepare({ workflow: workflow(after), snapshot }))
  return Plan.changesOf(Plan.diff(input), input.dag.index!.get("x")!)
}

describe("definition-changed", () => {
  it("is found for a block exactly when its definition text differs from the frozen block's", () => {
    fc.assert(
      fc.property(withEdit(block.map((b) => ({ ...b, id: "x" }) as Workflow.Block)), ([before, after]) => {
        const changes = changesOfX(before, after)
        assert.strictEqual(changes.includes("definition-changed"), definitionText(before) !== definitionText(after))
      }),
      { numRuns: 1000 }
    )
  })

  it("counts reordered keys, a member moved, added or dropped, an array for an object as changes, an equal copy as none", () => {
    const x = (params: { readonly [key: string]: Json }): Workflow.Block => ({ id: "x", type: "fn", params })
    const before = x({ a: 1, b: { c: [1, { d: null }], e: "s" } })
    assert.deepStrictEqual(changesOfX(before, x({ a: 1, b: { c: [1, { d: null }], e: "s" } })), [])
    assert.deepStrictEqual(changesOfX(before, x({ b: { c: [1, { d: null }], e: "s" }, a: 1 })), ["definition-changed"])
    assert.deepStrictEqual(changesOfX(before, x({ a: 1, b: { e: "s", c: [1, { d: null }] } })), ["definition-changed"])
    assert.deepStrictEqual(changesOfX(before, x({ a: 1, b: { c: [1, { d: null }], e: "s", f: 0 } })), ["definition-changed"])
    assert.deepStrictEqual(changesOfX(before, x({ a: 1, b: { c: [1, { d: null }] } })), ["definition-changed"])
    assert.deepStrictEqual(changesOfX(before, x({ a: 1, b: { c: [1, [{ d: null }]], e: "s" } })), ["definition-changed"])
    assert.deepStrictEqual(changesOfX(before, x({ a: 1, b: { c: { 0: 1, 1: { d: null } }, e: "s" } })), ["definition-changed"])
    // An object and an array with the same members at the same keys, either way round.
    assert.deepStrictEqual(changesOfX(x({ c: { 0: 1, 1: 2 } }), x({ c: [1, 2] })), ["definition-changed"])
  })
})
