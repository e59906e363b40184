import { assert, describe, it } from "@effect/vitest"
import { Snapshot } from "@ripple/core"
import * as fc from "fast-check"
import * as Result from "effect/Result"

const workflow = {
  id: "wf",
  blocks: [{ id: "start", type: "trigger" }, { id: "a", type: "value", params: { x: 1 } }],
  edges: [{ source: "start", target: "a" }]
}

const sample: Snapshot.Snapshot = {
  ...Snapshot.empty(workflow, { topic: "x" }),
  runId: "run-1",
  status: "paused",
  nodes: {
    start: { status: "completed", attempt: 1, fingerprints: { definition: "0123456789abcdef" }, output: null },
    a: {
      status: "paused",
      attempt: 1,
      inputs: { x: 1 },
      fingerprints: { definition: "0123456789abcdef", inputs: "fedcba9876543210" },
      startedAt: 10
    }
  },
  pauses: [{ node: "a", reason: "approval", since: 11 }],
  diagnostics: { messages: ["paused at a"], finalization: "paused", lastStarted: { node: "a", at: 10 } }
}

describe("Snapshot.decode", () => {
  it("round-trips through JSON", () => {
    const decoded = Snapshot.decode(JSON.parse(JSON.stringify(sample)))
    assert.isTrue(Result.isSuccess(decoded))
    if (Result.isSuccess(decoded)) assert.deepStrictEqual(decoded.success, sample)
  })

  it("reports an unknown schema version as UnsupportedSchemaVersion, for any other version", () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.string(), fc.constant(undefined), fc.constant(null)), (version) => {
        fc.pre(version !== 1)
        const decoded = Snapshot.decode({ ...sample, schemaVersion: version })
        assert.isTrue(Result.isFailure(decoded))
        if (Result.isFailure(decoded)) {
          assert.strictEqual(decoded.failure._tag, "UnsupportedSchemaVersion")
          assert.deepStrictEqual(decoded.failure.path, ["schemaVersion"])
        }
      }),
      { numRuns: 200 }
    )
  })

  it("names the path of a malformed field", () => {
    const bad = { ...sample, nodes: { ...sample.nodes, a: { ...sample.nodes["a"], status: "exploded" } } }
    const decoded = Snapshot.decode(bad)
    assert.isTrue(Result.isFailure(decoded))
    if (Result.isFailure(decoded)) {
      assert.strictEqual(decoded.failure._tag, "MalformedSnapshot")
      assert.deepStrictEqual(decoded.failure.path, ["nodes", "a", "status"])
    }
  })

  it("rejects values that are not objects", () => {
    for (const value of [null, 3, "snapshot", [sample]]) {
      const decoded = Snapshot.decode(value)
      assert.isTrue(Result.isFailure(decoded) && decoded.failure._tag === "MalformedSnapshot")
    }
  })
})
