/**
 * Values over the size every store reads back (`Workflow.maxValueBytes`): `Workflow.oversized`
 * refuses exactly the values whose JSON text is more UTF-8 bytes than the limit, naming the size,
 * and `Workflow.inputsFor` refuses a run input over it before anything else.
 */
import { Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { storableJson } from "../arbitraries/json.ts"

// Independent of the implementation: the bytes Node's encoder gives the JSON text.
const bytesOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), "utf8")

describe("Values too large to read back", () => {
  it("oversized refuses exactly the values whose JSON is over the limit, with their size", () => {
    fc.assert(
      fc.property(storableJson, fc.integer({ min: -8, max: 8 }), (value, offset) => {
        const bytes = bytesOf(value)
        const limit = Math.max(0, bytes + offset)
        const found = Workflow.oversized(value, ["payload"], limit)
        if (bytes <= limit) return assert.isUndefined(found)
        assert.instanceOf(found, Workflow.ValueTooLarge)
        assert.deepStrictEqual([found!.bytes, found!.limit, found!.path], [bytes, limit, ["payload"]])
      }),
      { numRuns: 500 }
    )
  })

  it("oversized counts multi-byte and escaped characters as their UTF-8 bytes", () => {
    // 3 bytes each (U+20AC), 4 per pair (U+1F600), 6 per escaped control character, 2 quotes.
    const text = "\u20ac".repeat(10) + "\ud83d\ude00".repeat(10) + "\u0001".repeat(10)
    const bytes = 30 + 40 + 60 + 2
    assert.strictEqual(bytesOf(text), bytes)
    assert.isUndefined(Workflow.oversized(text, [], bytes))
    assert.strictEqual(Workflow.oversized(text, [], bytes - 1)?.bytes, bytes)
  })

  it("the default limit is 64 MiB: a value of exactly that many bytes passes, one more byte is refused", () => {
    assert.strictEqual(Workflow.maxValueBytes, 64 * 1024 * 1024)
    const fits = "x".repeat(Workflow.maxValueBytes - 2)
    assert.isUndefined(Workflow.oversized(fits))
    assert.strictEqual(Workflow.oversized({ a: fits })?.bytes, Workflow.maxValueBytes + 6)
  })

  it("inputsFor refuses a run input over the limit with ValueTooLarge", () => {
    const workflow: Workflow.Workflow = {
      id: "w",
      blocks: [{ id: "start", type: "trigger" }],
      edges: [],
      inputs: { doc: { type: "string" } }
    }
    const found = Workflow.inputsFor(workflow, { doc: "x".repeat(Workflow.maxValueBytes) })
    assert.isTrue(Result.isFailure(found) && found.failure._tag === "ValueTooLarge")
    assert.isTrue(Result.isSuccess(Workflow.inputsFor(workflow, { doc: "x".repeat(1000) })))
  })
})
