import { Reference } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"

const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,6}$/)
const segment = fc.oneof(key, fc.nat({ max: 50 }))
const segments = fc.array(segment, { maxLength: 3 })
const reference: fc.Arbitrary<Reference.Reference> = fc.oneof(
  fc.record({ _tag: fc.constant("BlockOutput" as const), block: key, path: segments }),
  fc.tuple(key, segments).map(([k, rest]) => ({ _tag: "Input" as const, path: [k, ...rest] as const })),
  fc.record({ _tag: fc.constant("Variable" as const), name: key, path: segments }),
  fc.record({ _tag: fc.constant("Index" as const), scope: fc.constantFrom("loop" as const, "parallel" as const) }),
  fc.record({
    _tag: fc.constant("Item" as const),
    scope: fc.constantFrom("loop" as const, "parallel" as const),
    path: segments
  })
)

const emptyEnv: Reference.Environment = {
  blockOutput: () => undefined,
  input: () => undefined,
  variable: () => undefined,
  index: () => undefined,
  item: () => undefined
}

describe("Reference", () => {
  it("parse inverts format", () => {
    fc.assert(
      fc.property(reference, (r) => {
        assert.deepStrictEqual(Result.getOrThrow(Reference.parse(Reference.format(r))), r)
      }),
      { numRuns: 500 }
    )
  })

  it("collect finds every reference planted in a value, with its path", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(key, reference), { maxLength: 6 }), fc.jsonValue(), (planted, filler) => {
        const params: Record<string, unknown> = { filler }
        planted.forEach(([k, r], i) => {
          params[`${k}${i}`] = [Reference.toJson(r)]
        })
        const found = Reference.collect(params as never).filter((o) => o.at[0] !== "filler")
        assert.deepStrictEqual(
          found,
          planted.map(([k, r], i) => ({ reference: r, at: [`${k}${i}`, 0] }))
        )
      })
    )
  })

  it("resolve of a value without references is the value itself", () => {
    fc.assert(
      fc.property(fc.jsonValue().filter((v) => !Reference.hasReferences(v as never)), (v) => {
        assert.strictEqual(Result.getOrThrow(Reference.resolve(v as never, emptyEnv)), v as unknown)
      })
    )
  })

  it("resolve replaces each block-output reference by the value at its path", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(segment, { maxLength: 2 }), (output, path) => {
        const env = { ...emptyEnv, blockOutput: (id: string) => (id === "src" ? (output as never) : undefined) }
        const ref = { _tag: "BlockOutput" as const, block: "src", path }
        const resolved = Reference.resolve({ a: [1, Reference.toJson(ref)] }, env)
        const direct = Reference.lookup(ref, env, ["a", 1])
        if (Result.isSuccess(direct)) {
          assert.deepStrictEqual(Result.getOrThrow(resolved), { a: [1, direct.success] })
        } else {
          assert.deepStrictEqual(resolved, Result.fail(direct.failure))
        }
      })
    )
  })

  it("resolves every root kind", () => {
    const env: Reference.Environment = {
      blockOutput: (id) => (id === "fetch" ? { items: [10, 20] } : undefined),
      input: (k) => (k === "user" ? { name: "ada" } : undefined),
      variable: (n) => (n === "limit" ? 3 : undefined),
      index: (scope) => (scope === "loop" ? 2 : undefined),
      item: (scope) => (scope === "parallel" ? { id: "x" } : undefined)
    }
    const value = {
      a: { $ref: "blocks.fetch.output.items.1" },
      b: { $ref: "input.user.name" },
      c: [{ $ref: "vars.limit" }, { $ref: "loop.index" }, { $ref: "parallel.item.id" }],
      d: "plain"
    }
    assert.deepStrictEqual(Result.getOrThrow(Reference.resolve(value, env)), {
      a: 20,
      b: "ada",
      c: [3, 2, "x"],
      d: "plain"
    })
  })

  it("reports unresolvable references without throwing", () => {
    const env: Reference.Environment = { ...emptyEnv, blockOutput: () => ({ items: [1] }) }
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [{ x: { $ref: "blocks.a.output.items.5" } }, "index-out-of-range"],
      [{ x: { $ref: "blocks.a.output.nope" } }, "missing-key"],
      [{ x: { $ref: "blocks.a.output.items.0.deeper" } }, "not-a-container"],
      [{ x: { $ref: "input.k" } }, "missing-value"],
      [{ x: { $ref: "loop.index" } }, "missing-value"],
      [{ x: { $ref: 3 } }, "malformed"],
      [{ x: { $ref: "blocks.a.output", other: 1 } }, "malformed"]
    ]
    for (const [value, reason] of cases) {
      const result = Reference.resolve(value as never, env)
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure.reason, reason)
        assert.deepStrictEqual(result.failure.at, ["x"])
      }
    }
  })

  it("rejects malformed paths", () => {
    for (const bad of ["blocks.a", "blocks.a.outputs", "blocks..output", "input", "vars", "loop.count", "loop.index.x", "env.x", ""]) {
      assert.isTrue(Result.isFailure(Reference.parse(bad)), bad)
    }
  })
})
