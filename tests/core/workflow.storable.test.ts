/**
 * What no store can hold (issue 15, "Characters Postgres cannot store"): `Workflow.decode` and
 * `Workflow.inputsFor` refuse a NUL or a lone surrogate anywhere, with `UnstorableValue` naming the
 * JSON path, and `Workflow.unstorable` never throws, however deep or cyclic the value.
 */
import { Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { storableJson, unstorableText } from "../arbitraries/json.ts"
import { arbitraryWorkflow } from "../arbitraries/workflow.ts"

type Json = Workflow.Json
type Mutable = { [key: string]: unknown }

// Independent of the implementation: PostgreSQL text holds well-formed UTF-16 without NUL.
const storableString = (text: string): boolean =>
  !text.includes("\u0000") && (text as string & { isWellFormed(): boolean }).isWellFormed()

const everyString = (value: unknown, visit: (text: string) => void): void => {
  if (typeof value === "string") return visit(value)
  if (typeof value !== "object" || value === null) return
  for (const [key, inner] of Object.entries(value)) {
    visit(key)
    everyString(inner, visit)
  }
}

/** A place in a workflow file to put a bad string, and the path `decode` must name. */
const placements = ["id", "name", "param", "param key", "variable"] as const

const placed = (file: Mutable, where: (typeof placements)[number], b: number, bad: string): ReadonlyArray<string | number> => {
  const blocks = file["blocks"] as Array<Mutable>
  const block = blocks[b % blocks.length]!
  const i = blocks.indexOf(block)
  const params = { ...(block["params"] as Mutable | undefined) }
  switch (where) {
    case "id":
      block["id"] = bad
      return ["blocks", i, "id"]
    case "name":
      block["name"] = bad
      return ["blocks", i, "name"]
    case "param":
      block["params"] = { ...params, zz: { list: [1, bad] } }
      return ["blocks", i, "params", "zz", "list", 1]
    case "param key":
      block["params"] = { ...params, [bad]: 1 }
      return ["blocks", i, "params"]
    case "variable":
      file["variables"] = { ...(file["variables"] as Mutable | undefined), v: bad }
      return ["variables", "v"]
  }
}

describe("Values no store can hold", () => {
  it("decode refuses a NUL or lone surrogate anywhere in a workflow with UnstorableValue at its path", () => {
    fc.assert(
      fc.property(arbitraryWorkflow(), fc.constantFrom(...placements), fc.nat(), unstorableText, (file, where, b, bad) => {
        const mutable = JSON.parse(JSON.stringify(file)) as Mutable
        const path = placed(mutable, where, b, bad)
        const decoded = Workflow.decode(mutable)
        if (Result.isSuccess(decoded)) return assert.fail(`accepted ${JSON.stringify(bad)} at ${JSON.stringify(path)}`)
        assert.strictEqual(decoded.failure._tag, "UnstorableValue")
        assert.deepStrictEqual(decoded.failure.path, path)
      }),
      { numRuns: 300 }
    )
  })

  it("decode never throws on mutated workflows and never accepts a string a store cannot hold", () => {
    const anyText = fc.oneof(fc.string({ unit: "binary", maxLength: 4 }), unstorableText, fc.constantFrom("\ud83d", "\ude00", "\ud83d\ude00"))
    fc.assert(
      fc.property(arbitraryWorkflow(), fc.array(fc.tuple(fc.nat(), anyText), { minLength: 1, maxLength: 3 }), (file, edits) => {
        const mutable = JSON.parse(JSON.stringify(file)) as Mutable
        // Replaces the n-th string (a value or a key) of the file.
        for (const [n, text] of edits) {
          let seen = 0
          const total = (() => {
            let count = 0
            everyString(mutable, () => count++)
            return count
          })()
          const target = n % total
          const rewrite = (value: unknown): unknown => {
            if (typeof value === "string") return seen++ === target ? text : value
            if (Array.isArray(value)) return value.map(rewrite)
            if (typeof value !== "object" || value === null) return value
            return Object.fromEntries(Object.entries(value).map(([k, v]) => [seen++ === target ? text : k, rewrite(v)]))
          }
          Object.assign(mutable, rewrite(mutable))
        }
        const decoded = Workflow.decode(mutable)
        if (Result.isSuccess(decoded)) everyString(decoded.success, (text) => assert.isTrue(storableString(text), JSON.stringify(text)))
      }),
      { numRuns: 300 }
    )
  })

  it("inputsFor refuses an unstorable input before anything else, naming its path", () => {
    const workflow = Result.getOrThrow(Workflow.decode({ id: "w", blocks: [], edges: [], inputs: { doc: { type: "json" } } }))
    fc.assert(
      fc.property(storableJson, unstorableText, (ok, bad) => {
        const refused = Workflow.inputsFor(workflow, { doc: { ok, list: [ok, bad] } })
        if (Result.isSuccess(refused)) return assert.fail("accepted")
        assert.strictEqual(refused.failure._tag, "UnstorableValue")
        assert.deepStrictEqual(refused.failure.path, ["doc", "list", 1])
        assert.isTrue(Result.isSuccess(Workflow.inputsFor(workflow, { doc: ok })))
      })
    )
    // Refused before "unknown key": the key itself is what cannot be stored.
    const key = Workflow.inputsFor(workflow, { doc: 1, ["k\u0000"]: 2 })
    assert.isTrue(Result.isFailure(key) && key.failure._tag === "UnstorableValue" && key.failure.path.length === 0)
  })

  it("unstorable names what is wrong and where, and never throws", () => {
    assert.isUndefined(Workflow.unstorable({ "\ud83d\ude00": ["\\u0000", "e\u0301", 1.5, -0, null] }))
    const nul = Workflow.unstorable({ a: [1, "x\u0000"] }, ["input"])
    assert.deepStrictEqual([nul?.reason, nul?.path], ["NUL character (\\u0000)", ["input", "a", 1]])
    const low = Workflow.unstorable([{ b: "ok" }, { c: "\udc01x" }])
    assert.deepStrictEqual([low?.reason, low?.path], ["lone surrogate \\udc01", [1, "c"]])
    const key = Workflow.unstorable({ a: { ["\ud800"]: 1 } })
    assert.deepStrictEqual([key?.reason, key?.path], ["lone surrogate \\ud800 in key \"\\ud800\"", ["a"]])
    const nan = Workflow.unstorable({ n: Number.NaN } as unknown as Json)
    assert.deepStrictEqual([nan?.reason, nan?.path], ["non-finite number NaN", ["n"]])
    assert.include(nul?.message, "at [\"input\",\"a\",1]")
    // 100,000 levels deep, and a cycle: a typed refusal, not a stack overflow or a hang.
    let deep: Json = "x"
    for (let i = 0; i < 100_000; i++) deep = [deep]
    assert.strictEqual(Workflow.unstorable(deep)?.reason, `nested deeper than ${Workflow.maxDepth} levels`)
    const cyclic: Mutable = {}
    cyclic["self"] = cyclic
    assert.strictEqual(Workflow.unstorable(cyclic)?.path.length, Workflow.maxDepth)
  })
  it("toStorable copies a value as JSON would read it back, at any depth, or names what JSON would lose", () => {
    // Independent of the implementation: JSON itself says what the value reads back as.
    const viaJson = (value: unknown): Json => JSON.parse(JSON.stringify(value) ?? "null")
    fc.assert(fc.property(storableJson, (value) => {
      const copied = Workflow.toStorable(value)
      assert.isTrue(Result.isSuccess(copied))
      if (Result.isSuccess(copied)) assert.strictEqual(JSON.stringify(copied.success), JSON.stringify(viaJson(value)))
    }))
    // Past the depth the fast copy takes (64), with what JSON normalises at the bottom.
    let deep: unknown = { z: -0, gone: undefined, list: [undefined, 1], ["__proto__"]: 2 }
    for (let i = 0; i < 500; i++) deep = i % 2 === 0 ? [deep] : { d: deep }
    const copied = Workflow.toStorable(deep)
    assert.isTrue(Result.isSuccess(copied))
    if (Result.isSuccess(copied)) {
      assert.strictEqual(JSON.stringify(copied.success), JSON.stringify(deep))
      assert.deepStrictEqual(copied.success, viaJson(deep))
    }
    assert.strictEqual(Result.getOrThrow(Workflow.toStorable(undefined)), null)
    assert.isTrue(Object.is((Result.getOrThrow(Workflow.toStorable([-0])) as Array<Json>)[0], 0))
    const date = Workflow.toStorable({ a: [0, { when: new Date(0) }] }, ["output"])
    assert.isTrue(Result.isFailure(date))
    if (Result.isFailure(date)) {
      assert.deepStrictEqual(date.failure.path, ["output", "a", 1, "when"])
      assert.include(date.failure.reason, "a Date, which is not JSON data")
    }
    const nul = Workflow.toStorable({ k: "x\u0000" })
    assert.isTrue(Result.isFailure(nul) && nul.failure.reason === "NUL character (\\u0000)")
    let tooDeep: unknown = 1
    for (let i = 0; i < 100_000; i++) tooDeep = [tooDeep]
    const refused = Workflow.toStorable(tooDeep)
    assert.isTrue(Result.isFailure(refused) && refused.failure.reason === `nested deeper than ${Workflow.maxDepth} levels`)
  })
})
