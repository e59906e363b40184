import { NodeId } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"

const validId = fc
  .string({ unit: "grapheme", minLength: 1, maxLength: 12 })
  .filter(NodeId.isValidId)
const node = fc.record({ kind: fc.constantFrom("block" as const, "start" as const, "end" as const), id: validId })
const instance = fc.record({ node, path: fc.array(fc.nat({ max: 100_000 }), { maxLength: 5 }) })

describe("NodeId", () => {
  it("format/parse round-trips every node", () => {
    fc.assert(
      fc.property(node, (n) => {
        assert.deepStrictEqual(Result.getOrThrow(NodeId.parse(NodeId.format(n))), n)
      }),
      { numRuns: 500 }
    )
  })

  it("formatInstance/parseInstance round-trips every instance", () => {
    fc.assert(
      fc.property(instance, (i) => {
        assert.deepStrictEqual(Result.getOrThrow(NodeId.parseInstance(NodeId.formatInstance(i))), i)
      }),
      { numRuns: 500 }
    )
  })

  it("distinct nodes and instances get distinct ids", () => {
    fc.assert(
      fc.property(instance, instance, (a, b) => {
        const same = NodeId.formatInstance(a) === NodeId.formatInstance(b)
        assert.strictEqual(same, JSON.stringify(a) === JSON.stringify(b))
      }),
      { numRuns: 500 }
    )
  })

  it("ids with a reserved character are invalid", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 5 }),
        fc.constantFrom(...NodeId.reservedCharacters, " ", "\t", "\n"),
        fc.string({ maxLength: 5 }),
        (before, reserved, after) => {
          const id = `${before}${reserved}${after}`
          assert.isFalse(NodeId.isValidId(id))
          assert.isDefined(NodeId.reservedCharacterOf(id))
        }
      )
    )
  })

  it("formats the documented shapes", () => {
    assert.strictEqual(NodeId.format(NodeId.block("fetch")), "fetch")
    assert.strictEqual(NodeId.format(NodeId.start("L")), "L#start")
    assert.strictEqual(NodeId.format(NodeId.end("L")), "L#end")
    assert.strictEqual(NodeId.formatInstance({ node: NodeId.block("b"), path: [2, 0] }), "b@2.0")
    assert.strictEqual(NodeId.formatInstance({ node: NodeId.end("P"), path: [] }), "P#end")
    assert.strictEqual(NodeId.formatInstance({ node: NodeId.start("P"), path: [7] }), "P#start@7")
  })

  it("rejects malformed ids", () => {
    for (const bad of ["", "a#middle", "#start", "a#start#end", "a b"]) {
      assert.isTrue(Result.isFailure(NodeId.parse(bad)), bad)
    }
    for (const bad of ["a@", "a@1.", "a@01", "a@x", "a@-1", "@1"]) {
      assert.isTrue(Result.isFailure(NodeId.parseInstance(bad)), bad)
    }
  })
})
