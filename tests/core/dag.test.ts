import { Dag, NodeId } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"

const workflow = {
  id: "w",
  blocks: [
    { id: "t", type: "trigger" },
    { id: "route", type: "router", params: { value: 1, routes: [{ handle: "one", equals: 1 }], default: "other" } },
    { id: "a", type: "fn" },
    { id: "b", type: "fn" },
    { id: "inner", type: "fn", params: { i: { $ref: "parallel.index" }, j: { $ref: "loop.index" } } },
    { id: "done", type: "fn" },
    { id: "c", type: "fn" }
  ],
  edges: [
    { source: "t", target: "route" },
    { source: "route", target: "L", handle: "one" },
    { source: "route", target: "c", handle: "other" },
    { source: "a", target: "P" },
    { source: "L", target: "done" }
  ],
  loops: [{ id: "L", kind: "count", count: 2, body: ["a", "P", "b"] }],
  parallels: [{ id: "P", kind: "count", count: 3, body: ["inner"] }]
}

const dag = Result.getOrThrow(Dag.fromWorkflow(workflow))
const ix = (id: string) => Dag.indexOf(dag, id)!
const ids = (indices: ArrayLike<number>) => Array.from(indices, (i) => Dag.idOf(dag, i))
const marked = (marks: Uint8Array) => ids([...marks.keys()].filter((i) => marks[i] === 1)).sort()

describe("Dag expansion", () => {
  it("numbers blocks, then loop and parallel sentinels, in declaration order", () => {
    assert.deepStrictEqual(ids(Array.from({ length: Dag.size(dag) }, (_, i) => i)), [
      "t", "route", "a", "b", "inner", "done", "c", "L#start", "L#end", "P#start", "P#end"
    ])
  })

  it("routes container edges through sentinels and links body entries and exits", () => {
    assert.deepStrictEqual(ids(Dag.successors(dag, ix("route"))), ["L#start", "c"])
    assert.deepStrictEqual(ids(Dag.successors(dag, ix("L#start"))).sort(), ["a", "b"])
    assert.deepStrictEqual(ids(Dag.successors(dag, ix("a"))), ["P#start"])
    assert.deepStrictEqual(ids(Dag.successors(dag, ix("P#start"))), ["inner"])
    assert.deepStrictEqual(ids(Dag.successors(dag, ix("inner"))), ["P#end"])
    assert.deepStrictEqual(ids(Dag.predecessors(dag, ix("L#end"))).sort(), ["P#end", "b"])
    assert.deepStrictEqual(ids(Dag.successors(dag, ix("L#end"))), ["done"])
  })

  it("keeps the workflow edge (and its handle) behind each out-edge", () => {
    const edges = Dag.successorEdges(dag, ix("route"))
    assert.deepStrictEqual(Array.from(edges, (e) => Dag.handleOf(dag, e)), ["one", "other"])
    assert.deepStrictEqual(Array.from(Dag.successorEdges(dag, ix("L#start"))), [-1, -1])
    assert.deepStrictEqual(Array.from(Dag.predecessorEdges(dag, ix("done"))), [4])
  })

  it("records enclosing containers", () => {
    assert.deepInclude(Dag.nodeOf(dag, ix("inner")), { kind: "block", id: "inner", loop: "L", parallel: "P", chain: ["L", "P"] })
    assert.deepInclude(Dag.nodeOf(dag, ix("P#start")), { kind: "start", id: "P", loop: "L", parallel: undefined, chain: ["L"], containerKind: "parallel" })
    assert.deepInclude(Dag.nodeOf(dag, ix("L#end")), { kind: "end", id: "L", loop: undefined, chain: [], containerKind: "loop" })
    assert.deepInclude(Dag.nodeOf(dag, ix("c")), { loop: undefined, parallel: undefined, chain: [] })
  })

  it("queries: downstream, upstream, stopAt, topo, sinks, triggers, observed", () => {
    assert.deepStrictEqual(marked(Dag.downstream(dag, [ix("a")])), ["L#end", "P#end", "P#start", "a", "done", "inner"])
    assert.deepStrictEqual(marked(Dag.upstream(dag, [ix("inner")])), ["L#start", "P#start", "a", "inner", "route", "t"])
    assert.deepStrictEqual(
      marked(Dag.downstream(dag, [ix("t")], { stopAt: (i) => i === ix("L#start") })),
      ["L#start", "c", "route", "t"]
    )
    assert.deepStrictEqual(ids(Dag.topo(dag)), [
      "t", "route", "c", "L#start", "a", "b", "P#start", "inner", "P#end", "L#end", "done"
    ])
    assert.deepStrictEqual(ids(Dag.sinks(dag)), ["done", "c"])
    assert.deepStrictEqual(ids(Dag.triggers(dag)), ["t"])
    assert.deepStrictEqual(ids(Dag.observed(dag)), ["done", "c"])
  })

  it("observed outputs: responses first, then declared outputs (containers by their end)", () => {
    const declared = Result.getOrThrow(Dag.fromWorkflow({ ...workflow, outputs: ["L", "c"] }))
    assert.deepStrictEqual(Array.from(Dag.observed(declared), (i) => Dag.idOf(declared, i)), ["c", "L#end"])
    const responding = Result.getOrThrow(
      Dag.fromWorkflow({ ...workflow, outputs: ["L"], blocks: workflow.blocks.map((b) => (b.id === "b" ? { ...b, type: "response" } : b)) })
    )
    assert.deepStrictEqual(Array.from(Dag.observed(responding), (i) => Dag.idOf(responding, i)), ["b"])
  })

  it("node ids of every node parse back to the node they name", () => {
    for (let i = 0; i < Dag.size(dag); i++) {
      const node = Dag.nodeOf(dag, i)
      assert.deepStrictEqual(Result.getOrThrow(NodeId.parse(Dag.idOf(dag, i))), { kind: node.kind, id: node.id })
    }
  })

  it("fromEdges builds an anonymous DAG with numeric ids", () => {
    const g = Dag.fromEdges(4, [0, 0, 1, 2], [1, 2, 3, 3])
    assert.strictEqual(Dag.size(g), 4)
    assert.deepStrictEqual(Array.from(Dag.topo(g)), [0, 1, 2, 3])
    assert.deepStrictEqual(Array.from(Dag.predecessors(g, 3)), [1, 2])
    assert.strictEqual(Dag.indexOf(g, "2"), 2)
    assert.strictEqual(Dag.indexOf(g, "02"), undefined)
    assert.strictEqual(Dag.idOf(g, 3), "3")
    assert.deepStrictEqual(Array.from(Dag.sinks(g)), [3])
    assert.deepStrictEqual(Array.from(Dag.observed(g)), [3])
  })

  it("topo drains nodes made ready below the sweep lowest first, in-degrees packed with row starts or not", () => {
    // 2^16 in-edges into node 0: its in-degree needs 17 bits, too many beside the row starts, so
    // the in-degrees are counted down apart. Popping n-1 (the last of the sweep) readies 0 and 1.
    const n = 2 ** 16 + 2
    const sources = [n - 1]
    const targets = [1]
    for (let i = 2; i < n; i++) {
      sources.push(i)
      targets.push(0)
    }
    const star = Dag.fromEdges(n, sources, targets)
    const expected = [...Array.from({ length: n - 2 }, (_, k) => k + 2), 0, 1]
    assert.deepStrictEqual(Array.from(Dag.topo(star)), expected)
    // Fewer edges into 0: the same order with in-degrees packed.
    const small = Dag.fromEdges(6, [5, 2, 3, 4, 5], [1, 0, 0, 0, 0])
    assert.deepStrictEqual(Array.from(Dag.topo(small)), [2, 3, 4, 5, 0, 1])
    // In-degrees of 255 are packed in 8 bits and 256 are not: either way the same order. Node 1
    // has that in-degree; popping node 0 first reads where 0's row ends from 1's word, which a
    // count packed past its bits would have moved onto 1's edge to 2.
    for (const degree of [255, 256]) {
      const m = degree + 4
      const into = Dag.fromEdges(m, [1, ...Array.from({ length: degree }, (_, k) => k + 3)], [2, ...Array.from({ length: degree }, () => 1)])
      assert.deepStrictEqual(Array.from(Dag.topo(into)), [0, ...Array.from({ length: degree }, (_, k) => k + 3), 1, 2, m - 1])
    }
  })

  it("a wide fan-out outgrows the first stack of downstream and the first heap of topo", () => {
    // Node 2000 precedes 0 .. 1999: popping it readies 2000 nodes below the sweep at once.
    const n = 2001
    const fan = Dag.fromEdges(n, Array.from({ length: n - 1 }, () => n - 1), Array.from({ length: n - 1 }, (_, k) => k))
    assert.deepStrictEqual(Array.from(Dag.topo(fan)), [n - 1, ...Array.from({ length: n - 1 }, (_, k) => k)])
    assert.isTrue(Dag.downstream(fan, [n - 1]).every((mark) => mark === 1))
    assert.deepStrictEqual(Array.from(Dag.upstream(fan, [7]), (mark, i) => (mark === 1 ? i : -1)).filter((i) => i >= 0), [7, n - 1])
  })

  it("fromEdges above 2^20 nodes keeps each node's edges in input order", () => {
    // Past 2^20 nodes the build keeps the low bits of the keys in an array of their own.
    const n = 2 ** 20 + 3
    const g = Dag.fromEdges(n, [n - 1, n - 2, n - 1, 0, n - 2], [5, n - 1, 0, n - 3, 5])
    assert.deepStrictEqual(Array.from(Dag.successors(g, n - 1)), [5, 0])
    assert.deepStrictEqual(Array.from(Dag.successors(g, n - 2)), [n - 1, 5])
    assert.deepStrictEqual(Array.from(Dag.predecessors(g, 5)), [n - 1, n - 2])
    assert.deepStrictEqual(Array.from(Dag.predecessors(g, n - 3)), [0])
    const order = Array.from(Dag.topo(g))
    assert.strictEqual(order.length, n)
    assert.deepStrictEqual(order.slice(0, 5), [1, 2, 3, 4, 6])
    assert.deepStrictEqual(order.slice(-5), [n - 2, n - 1, 0, 5, n - 3])
  })

  it("fromWorkflow reports decode errors", () => {
    const result = Dag.fromWorkflow({ ...workflow, edges: [...workflow.edges, { source: "done", target: "t" }] })
    assert.isTrue(Result.isFailure(result) && result.failure._tag === "Cycle")
  })
})
