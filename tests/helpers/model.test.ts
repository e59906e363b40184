import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Model } from "@ripple/core/testing"

const routed: Workflow.Workflow = {
  id: "routed",
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "pick", type: "fn" },
    { id: "route", type: "router", params: { value: { $ref: "blocks.pick.output.n" }, routes: [{ handle: "a", equals: 0 }, { handle: "a", equals: 2 }], default: "b" } },
    { id: "left", type: "fn" },
    { id: "right", type: "fn" },
    { id: "join", type: "response", params: { value: { left: { $ref: "blocks.left.output" }, right: { $ref: "blocks.right.output" } } } }
  ],
  edges: [
    { source: "trigger", target: "pick" },
    { source: "pick", target: "route" },
    { source: "route", target: "left", handle: "a" },
    { source: "route", target: "right", handle: "b" },
    { source: "left", target: "join" },
    { source: "right", target: "join" }
  ]
}

describe("Model.execute", () => {
  it("runs one router branch, skips the other, and a join reads a skipped block as null", () => {
    const { snapshot, executed } = Model.execute(routed)
    const decision = snapshot.nodes["route"]!.decision
    const [taken, untaken] = decision === "a" ? ["left", "right"] : ["right", "left"]
    assert.strictEqual(snapshot.nodes[taken]!.status, "completed")
    assert.strictEqual(snapshot.nodes[untaken]!.status, "skipped")
    assert.notInclude(executed, untaken)
    const join = snapshot.nodes["join"]!
    assert.strictEqual(join.status, "completed")
    assert.strictEqual((join.output as Record<string, unknown>)[untaken], null)
  })

  it("is a pure function of the seed, the definitions and the inputs", () => {
    assert.deepStrictEqual(Model.execute(routed, { seed: 3 }).snapshot, Model.execute(routed, { seed: 3 }).snapshot)
    const outputs = (seed: number) => Model.execute(routed, { seed }).snapshot.nodes["pick"]!.output
    assert.notDeepEqual(outputs(1), outputs(2))
  })

  it("runs count and forEach loops, bounded while loops and parallels, with one record per instance", () => {
    const workflow: Workflow.Workflow = {
      id: "containers",
      blocks: [
        { id: "trigger", type: "trigger" },
        { id: "step", type: "fn", params: { i: { $ref: "loop.index" } } },
        { id: "again", type: "fn", params: { i: { $ref: "loop.index" } } },
        { id: "tag", type: "value", params: { value: { $ref: "parallel.item" } } }
      ],
      edges: [{ source: "trigger", target: "count" }, { source: "count", target: "until" }, { source: "until", target: "each" }],
      loops: [
        { id: "count", kind: "count", count: 3, body: ["step"] },
        { id: "until", kind: "while", condition: { $ref: "blocks.again.output.n" }, maxIterations: 4, body: ["again"] }
      ],
      parallels: [{ id: "each", kind: "collection", items: ["x", "y"], body: ["tag"] }]
    }
    const { snapshot } = Model.execute(workflow)
    assert.deepStrictEqual(Object.keys(snapshot.nodes).filter((k) => k.startsWith("step@")), ["step@0", "step@1", "step@2"])
    assert.strictEqual(snapshot.loops["count"]!.iterations, 3)
    const whileIterations = snapshot.loops["until"]!.iterations
    assert.isTrue(whileIterations >= 1 && whileIterations <= 4)
    assert.deepStrictEqual(snapshot.nodes["each#end"]!.output, [{ tag: "x" }, { tag: "y" }])
    assert.deepStrictEqual(snapshot.parallels["each"]!.items, ["x", "y"])
  })

  it("replays a plan: re-run nodes execute, everything else is copied from the state", () => {
    const prior = Model.execute(routed).snapshot
    // As a plan hydrates it: the state holds no record of a node it re-runs (a record it holds for
    // one instance of a re-run node is that instance kept).
    const { join: _, ...kept } = prior.nodes
    const replay = Model.execute(routed, {}, { rerun: new Set(["join"]), branches: new Map(), state: { ...prior, nodes: kept } })
    assert.deepStrictEqual(replay.executed, ["join"])
    assert.strictEqual(replay.snapshot.nodes["route"], prior.nodes["route"])
    assert.deepStrictEqual(replay.snapshot.nodes["join"], prior.nodes["join"])
  })

  it("fails a block whose reference does not resolve", () => {
    const broken: Workflow.Workflow = {
      ...routed,
      blocks: routed.blocks.map((b) => (b.id === "join" ? { ...b, params: { x: { $ref: "blocks.pick.output.missing" } } } : b))
    }
    const { snapshot } = Model.execute(broken)
    assert.strictEqual(snapshot.nodes["join"]!.status, "failed")
    assert.include(snapshot.nodes["join"]!.error?.message, "blocks.pick.output.missing")
    assert.strictEqual(snapshot.status, "failed")
  })
})
