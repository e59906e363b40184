import { Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryBrokenWorkflow, arbitraryWorkflow } from "../arbitraries/workflow.ts"

describe("Workflow laws", () => {
  it("decode ∘ encode = identity (and encode ∘ decode on generated files)", () => {
    fc.assert(
      fc.property(arbitraryWorkflow(), (file) => {
        const workflow = Result.getOrThrow(Workflow.decode(file))
        const encoded = Workflow.encode(workflow)
        assert.deepStrictEqual(encoded, file as unknown)
        assert.deepStrictEqual(Result.getOrThrow(Workflow.decode(JSON.parse(JSON.stringify(encoded)))), workflow)
      }),
      { numRuns: 200 }
    )
  })

  it("each mutation of a valid workflow fails with exactly its error", () => {
    fc.assert(
      fc.property(arbitraryBrokenWorkflow(), ({ workflow, expectedTag }) => {
        const result = Workflow.decode(workflow)
        if (Result.isSuccess(result)) assert.fail(`expected ${expectedTag}, decode succeeded`)
        assert.strictEqual(result.failure._tag, expectedTag, JSON.stringify(result.failure))
        assert.isTrue(Array.isArray(result.failure.path))
      }),
      { numRuns: 1000 }
    )
  })

  it("decode never throws on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (json) => {
        assert.isTrue(Result.isFailure(Workflow.decode(json)))
      })
    )
  })
})
