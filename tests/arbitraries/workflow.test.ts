import { Dag, Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryBrokenWorkflow, arbitraryWorkflow } from "./workflow.ts"

const decodeOrFail = (input: unknown) => {
  const result = Workflow.decode(input)
  if (Result.isFailure(result)) assert.fail(`expected a valid workflow, got ${JSON.stringify(result.failure)}`)
  return result.success
}

describe("arbitraryWorkflow", () => {
  it("generates workflows that decode", () => {
    fc.assert(fc.property(arbitraryWorkflow(), (w) => void decodeOrFail(w)), { numRuns: 300 })
  })

  it("respects its options", () => {
    fc.assert(
      fc.property(arbitraryWorkflow({ containers: false, routers: false }), (w) => {
        decodeOrFail(w)
        assert.strictEqual(w.loops.length + w.parallels.length, 0)
        assert.isFalse(w.blocks.some((b) => b.type === "router" || b.type === "condition"))
      })
    )
  })

  it("covers routers, conditions, every container kind, nesting and upstream forEach", () => {
    const seen = new Set<string>()
    for (const w of fc.sample(arbitraryWorkflow(), 300)) {
      const dag = Dag.make(decodeOrFail(w))
      for (const b of w.blocks) seen.add(`block:${b.type}`)
      for (const l of w.loops) seen.add(`loop:${l.kind}`)
      for (const p of w.parallels) seen.add(`parallel:${p.kind}`)
      if (w.loops.some((l) => typeof l.items === "object" && l.items !== null && "$ref" in l.items)) seen.add("forEach:ref")
      if (w.edges.some((e) => e.handle !== undefined)) seen.add("handled edge")
      for (let i = 0; i < Dag.size(dag); i++) if (Dag.nodeOf(dag, i).chain.length >= 2) seen.add("nested")
      if (JSON.stringify(w.blocks).includes('"parallel.item"')) seen.add("parallel.item")
      if (w.outputs !== undefined) seen.add("outputs")
    }
    for (const expected of [
      "block:value", "block:template", "block:condition", "block:router", "block:response", "block:fn",
      "loop:count", "loop:forEach", "loop:while", "parallel:count", "parallel:collection",
      "forEach:ref", "handled edge", "nested", "parallel.item", "outputs"
    ]) {
      assert.isTrue(seen.has(expected), `never generated: ${expected}`)
    }
  })
})

describe("arbitraryBrokenWorkflow", () => {
  it("covers every mutation", () => {
    const tags = new Set(fc.sample(arbitraryBrokenWorkflow(), 400).map((b) => b.expectedTag))
    assert.strictEqual(tags.size, 15)
  })
})
