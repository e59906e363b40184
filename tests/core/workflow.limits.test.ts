/**
 * Bad input that is not a bad character (issue 15, "Time" and "Depth"): `Workflow.decode` refuses a
 * `sleep` Ripple cannot wait for with `InvalidTime` naming the JSON path, and scans params nested
 * thousands deep without overflowing the stack.
 */
import { Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"

const sleeping = (params: Workflow.Json): unknown => ({
  id: "w",
  inputs: { at: { type: "json", required: false } },
  blocks: [{ id: "start", type: "trigger" }, { id: "nap", type: "sleep", params }],
  edges: [{ source: "start", target: "nap" }]
})

const failureOf = (input: unknown): Workflow.WorkflowError | undefined => {
  const decoded = Workflow.decode(input)
  return Result.isFailure(decoded) ? decoded.failure : undefined
}

describe("Workflow.decode: time", () => {
  it("refuses a sleep Ripple cannot wait for, naming the block and the path", () => {
    const refused: ReadonlyArray<[Workflow.Json, string]> = [
      [{ ms: 1e17 }, "ms"],
      [{ ms: -1 }, "ms"],
      [{ ms: "soon" }, "ms"],
      [{ until: 8.64e15 + 1 }, "until"],
      [{ until: "+275761-01-01T00:00:00Z" }, "until"],
      [{ until: "next tuesday" }, "until"],
      [{ until: true }, "until"]
    ]
    for (const [params, field] of refused) {
      const error = failureOf(sleeping(params))
      assert.strictEqual(error?._tag, "InvalidTime", JSON.stringify(params))
      assert.deepStrictEqual(error?.path, ["blocks", 1, "params", field])
      assert.strictEqual((error as Workflow.InvalidTime).block, "nap")
    }
  })

  it("accepts the edges of the range and a time read through a reference (checked when it runs)", () => {
    const accepted: ReadonlyArray<Workflow.Json> = [
      { ms: 0 },
      { ms: Workflow.maxSleepMs },
      { until: Workflow.maxTime },
      { until: "+275760-09-13T00:00:00Z" },
      { until: "2030-01-01T09:00:00Z" },
      { until: { $ref: "input.at" } }
    ]
    for (const params of accepted) assert.strictEqual(failureOf(sleeping(params)), undefined, JSON.stringify(params))
  })
})

describe("Workflow.decode: depth", () => {
  const nested = (depth: number, leaf: Workflow.Json): Workflow.Json => {
    let value = leaf
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { v: value }
    return value
  }
  const holding = (value: Workflow.Json): unknown => ({
    id: "w",
    inputs: { x: { type: "json" } },
    blocks: [{ id: "a", type: "value", params: { value } }],
    edges: []
  })

  it("scans references in params nested just under the depth limit without overflowing the stack", () => {
    const depth = Workflow.maxDepth - 10
    assert.strictEqual(failureOf(holding(nested(depth, { $ref: "input.x" }))), undefined)
    const unknown = failureOf(holding(nested(depth, { $ref: "input.y" })))
    assert.strictEqual(unknown?._tag, "UnknownReference")
    assert.strictEqual(unknown?.path.length, 4 + depth)
  })

  it("refuses params nested past the depth limit with a typed error", () => {
    const error = failureOf(holding(nested(100_000, 1)))
    assert.strictEqual(error?._tag, "UnstorableValue")
    assert.deepStrictEqual(error?.path.slice(0, 4), ["blocks", 0, "params", "value"])
  })
})

describe("Workflow.decode: limits", () => {
  const looped = (loop: Record<string, Workflow.Json>, parallel?: Record<string, Workflow.Json>): unknown => ({
    id: "w",
    inputs: { xs: { type: "array", default: [] } },
    blocks: [{ id: "start", type: "trigger" }, { id: "step", type: "value", params: { value: 1 } }, { id: "leaf", type: "value", params: { value: 2 } }],
    edges: [{ source: "start", target: "outer" }],
    loops: [{ id: "outer", body: parallel === undefined ? ["step"] : ["step", "inner"], ...loop } as Workflow.Json],
    parallels: parallel === undefined ? [] : [{ id: "inner", body: ["leaf"], ...parallel } as Workflow.Json]
  })

  it("refuses stated iterations, branches and expanded nodes past the caps, naming the cap and the path", () => {
    const cases: ReadonlyArray<[unknown, Workflow.LimitExceeded["limit"], ReadonlyArray<string | number>]> = [
      [looped({ kind: "count", count: 1e9 }), "maxIterations", ["loops", 0, "count"]],
      [looped({ kind: "while", condition: true, maxIterations: 1e9 }), "maxIterations", ["loops", 0, "maxIterations"]],
      [looped({ kind: "count", count: 1 }, { kind: "count", count: 1e7 }), "maxBranches", ["parallels", 0, "count"]],
      [looped({ kind: "count", count: 1 }, { kind: "collection", items: Array.from({ length: 10_001 }, (_, i) => i) }), "maxBranches", ["parallels", 0, "items"]],
      [looped({ kind: "count", count: 100_000 }, { kind: "count", count: 10_000 }), "maxNodes", ["loops", 0]]
    ]
    for (const [file, limit, path] of cases) {
      const error = failureOf(file)
      assert.strictEqual(error?._tag, "LimitExceeded", limit)
      assert.strictEqual((error as Workflow.LimitExceeded).limit, limit)
      assert.deepStrictEqual(error?.path, path)
      assert.include(error?.message ?? "", Workflow.limitVariables[limit])
    }
  })

  it("accepts work at the caps, work decided by data, and raised caps", () => {
    assert.strictEqual(failureOf(looped({ kind: "count", count: Workflow.defaultLimits.maxIterations })), undefined)
    assert.strictEqual(failureOf(looped({ kind: "forEach", items: { $ref: "input.xs" } })), undefined)
    const big = looped({ kind: "count", count: 1e9 })
    assert.strictEqual(Result.isSuccess(Workflow.decode(big, { limits: { maxIterations: 1e9, maxNodes: 1e10 } })), true)
    const error = Workflow.decode(big, { limits: { maxIterations: 1e9 } })
    assert.strictEqual(Result.isFailure(error) && error.failure._tag === "LimitExceeded" ? error.failure.limit : undefined, "maxNodes")
  })
})

describe("Workflow.decode: limits given by a library caller", () => {
  // Ten iterations of one block: over every cap of 1, within the defaults.
  const looping = {
    id: "w",
    blocks: [{ id: "start", type: "trigger" }, { id: "step", type: "value", params: { value: 1 } }],
    loops: [{ id: "ten", kind: "count", count: 10, body: ["step"] }],
    edges: [{ source: "start", target: "ten" }]
  }
  const decodeWith = (limits: unknown) => Workflow.decode(looping, { limits: limits as Partial<Workflow.Limits> })

  it("refuses a limit that is no cap (it turned the cap off), naming the option and the value", () => {
    const refused: ReadonlyArray<readonly [limits: unknown, option: string, expected: string]> = [
      [{ maxNodes: Number.NaN }, "limits.maxNodes", "whole number of at least 1"],
      [{ maxIterations: 0 }, "limits.maxIterations", "whole number of at least 1"],
      [{ maxBranches: -1 }, "limits.maxBranches", "whole number of at least 1"],
      [{ maxNodes: 1.5 }, "limits.maxNodes", "whole number of at least 1"],
      [{ maxNodes: Number.POSITIVE_INFINITY }, "limits.maxNodes", "whole number of at least 1"],
      [{ maxNodes: "5" }, "limits.maxNodes", "whole number of at least 1"],
      [{ maxNodes: undefined }, "limits.maxNodes", "whole number of at least 1"],
      [{ maxNode: 5 }, "limits.maxNode", "a limit named one of maxIterations, maxBranches, maxNodes"],
      [5, "limits", "an object of maxIterations, maxBranches, maxNodes"],
      [null, "limits", "an object of"],
      [[1], "limits", "an object of"]
    ]
    for (const [limits, option, expected] of refused) {
      const decoded = decodeWith(limits)
      assert.isTrue(Result.isFailure(decoded), String(option))
      if (Result.isSuccess(decoded)) return
      assert.instanceOf(decoded.failure, Workflow.InvalidOption)
      const invalid = decoded.failure as Workflow.InvalidOption
      assert.strictEqual(invalid.option, option)
      assert.deepStrictEqual(invalid.value, typeof limits === "object" && limits !== null && !Array.isArray(limits) ? Object.values(limits)[0] : limits)
      assert.include(invalid.message, `option ${option} is `)
      assert.include(invalid.message, expected)
    }
  })

  it("a cap in range still caps, and none given or an empty one keeps the defaults", () => {
    const capped = decodeWith({ maxIterations: 9 })
    assert.strictEqual(Result.isFailure(capped) ? capped.failure._tag : "decoded", "LimitExceeded")
    for (const limits of [undefined, {}, { maxIterations: 10, maxBranches: 1, maxNodes: 1_000_000 }]) {
      assert.isTrue(Result.isSuccess(decodeWith(limits)), JSON.stringify(limits))
    }
  })
})
