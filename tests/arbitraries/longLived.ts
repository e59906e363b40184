/**
 * Long-lived workflows for the engine's property tests: random workflows (containers included) with
 * some generic blocks turned into waits and approvals, and no block that can fail.
 */
import type { Workflow } from "@ripple/core"
import * as fc from "fast-check"
import { arbitraryWorkflow } from "./workflow.ts"

type Json = Workflow.Json

const withContainers = arbitraryWorkflow({ containers: true, maxMembers: 5 })

/** `block` with every `blocks.<id>.output.<path>` reference cut to the whole output. */
const wholeOutputs = (block: Workflow.Block): Workflow.Block => {
  const cut = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(cut)
    if (value === null || typeof value !== "object") return value
    const object = value as { readonly [key: string]: Json }
    const ref = object["$ref"]
    if (typeof ref === "string" && Object.keys(object).length === 1) {
      const whole = /^blocks\.[^.]+\.output/.exec(ref)
      return whole === null ? object : { $ref: whole[0] }
    }
    return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, cut(v)]))
  }
  return block.params === undefined ? block : { ...block, params: cut(block.params) as NonNullable<Workflow.Block["params"]> }
}

/**
 * A random workflow with some generic blocks turned into waits (signals s0, s1) and approvals.
 * Routers get a default, conditions compare with `eq`, and references read whole outputs (a path
 * into an output may not resolve, which fails the block), so no block fails: a run that fails
 * keeps its pending approvals pending (Failed > Paused), and could not be driven to its end.
 */
export const longLived: fc.Arbitrary<Workflow.Workflow> = fc.tuple(fc.array(fc.nat({ max: 2 }), { minLength: 1, maxLength: 12 }), withContainers).map(([kinds, json]) => {
  const workflow = json as unknown as Workflow.Workflow
  let k = 0
  const blocks = workflow.blocks.map(wholeOutputs).map((block): Workflow.Block => {
    if (block.type === "router") return { ...block, params: { ...block.params, default: "otherwise" } }
    if (block.type === "condition") return { ...block, params: { ...block.params, op: "eq" } }
    if (block.type !== "fn" && block.type !== "value" && block.type !== "template") return block
    const kind = kinds[k++ % kinds.length]!
    if (kind === 0) return { id: block.id, type: "wait", params: { signal: `s${k % 2}` } }
    if (kind === 1) return { id: block.id, type: "approval", params: { reason: "check" } }
    return block
  })
  return { ...workflow, blocks }
})
