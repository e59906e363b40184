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

  it("inputsFor fills defaults and reports the first bad key", () => {
    const types = ["string", "number", "boolean", "object", "array", "json"] as const
    const valueOf = {
      string: fc.string({ maxLength: 3 }),
      number: fc.integer(),
      boolean: fc.boolean(),
      object: fc.dictionary(fc.string({ maxLength: 2 }), fc.integer(), { maxKeys: 2 }),
      array: fc.array(fc.integer(), { maxLength: 2 }),
      json: fc.jsonValue()
    } as const
    const anyValue = fc.oneof(...Object.values(valueOf)) as fc.Arbitrary<Workflow.Json>
    const declaration = fc.constantFrom(...types).chain((type) =>
      fc.record(
        { type: fc.constant(type), required: fc.boolean(), default: valueOf[type] as fc.Arbitrary<Workflow.Json> },
        { requiredKeys: ["type"] }
      )
    )
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom("a", "b", "c", "d"), declaration, { maxKeys: 4 }),
        fc.dictionary(fc.constantFrom("a", "b", "c", "d", "e"), anyValue, { maxKeys: 5 }),
        (inputs, given) => {
          const workflow = Result.getOrThrow(Workflow.decode({ id: "w", blocks: [], edges: [], inputs }))
          const result = Workflow.inputsFor(workflow, given)
          const typeOf = (v: Workflow.Json) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v)
          const extra = Object.keys(given).find((k) => !(k in inputs))
          if (extra !== undefined) {
            assert.deepStrictEqual(result, Result.fail(new Workflow.UnknownInput({ key: extra, path: [extra] })))
            return
          }
          const expected: Record<string, Workflow.Json> = {}
          for (const [key, d] of Object.entries(inputs)) {
            const value = key in given ? given[key]! : d.default
            if (value === undefined) {
              if (d.required === false) continue
              assert.deepStrictEqual(result, Result.fail(new Workflow.MissingInput({ key, path: [key] })))
              return
            }
            if (d.type !== "json" && typeOf(value) !== d.type) {
              assert.isTrue(Result.isFailure(result) && result.failure._tag === "InputTypeMismatch")
              return
            }
            expected[key] = value
          }
          assert.deepStrictEqual(result, Result.succeed(expected))
        }
      ),
      { numRuns: 500 }
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
