import { assert, describe, it } from "@effect/vitest"
import { Dag, Fingerprint, Plan, Snapshot } from "@ripple/core"
import { Workflow } from "@ripple/core"
import { Laws, Model } from "@ripple/core/testing"
import * as Result from "effect/Result"

/**
 * trigger → fetch → route (router: "long" → summarize, "short" → quote) → report (response)
 *              └──→ each (parallel over vars.topics: body tag) → report
 *              └──→ audit (a side sink nobody observes)
 */
const workflow: Workflow.Workflow = {
  id: "example",
  variables: { topics: ["a", "b", "c"], tone: "dry" },
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "fetch", type: "fn", params: { url: "https://example.test" } },
    { id: "route", type: "router", params: { value: { $ref: "blocks.fetch.output.n" }, routes: [{ handle: "short", equals: -1 }], default: "long" } },
    { id: "summarize", type: "fn", params: { text: { $ref: "blocks.fetch.output.value" }, tone: { $ref: "vars.tone" } } },
    { id: "quote", type: "fn", params: { text: { $ref: "blocks.fetch.output.value" } } },
    { id: "tag", type: "fn", params: { topic: { $ref: "parallel.item" } } },
    { id: "report", type: "response", params: { tags: { $ref: "blocks.each.output" } } },
    { id: "audit", type: "fn", params: { seen: { $ref: "blocks.fetch.output.value" } } }
  ],
  edges: [
    { source: "trigger", target: "fetch" },
    { source: "fetch", target: "route" },
    { source: "route", target: "summarize", handle: "long" },
    { source: "route", target: "quote", handle: "short" },
    { source: "summarize", target: "report" },
    { source: "quote", target: "report" },
    { source: "fetch", target: "each" },
    { source: "each", target: "report" },
    { source: "fetch", target: "audit" }
  ],
  parallels: [{ id: "each", kind: "collection", items: { $ref: "vars.topics" }, body: ["tag"] }]
}

// Recorded with the snapshot format's hash, as an engine records it.
const prior = Model.execute(workflow, { fingerprint: Fingerprint.hash }).snapshot

const edit = (f: (w: { -readonly [K in keyof Workflow.Workflow]: any }) => void): Workflow.Workflow => {
  const copy = JSON.parse(JSON.stringify(workflow))
  f(copy)
  return copy
}

const prepare = (w: Workflow.Workflow, target?: string, snapshot: Snapshot.Snapshot | undefined = prior) =>
  Result.getOrThrow(Plan.prepare({ workflow: w, snapshot, target }))

const ids = (input: Plan.Input, mask: Uint8Array) =>
  Array.from(mask.keys()).filter((i) => mask[i] === 1).map((i) => Dag.idOf(input.dag, i)).sort()

const runFrom = (w: Workflow.Workflow, target: string, snapshot: Snapshot.Snapshot = prior) =>
  Result.getOrThrow(Plan.runFrom({ workflow: w, snapshot, target }))

describe("Plan steps", () => {
  it("impact is everything downstream of the target, every router branch included", () => {
    const input = prepare(workflow, "fetch")
    assert.deepStrictEqual(ids(input, Plan.impact(input)), [
      "audit", "each#end", "each#start", "fetch", "quote", "report", "route", "summarize", "tag"
    ])
    assert.deepStrictEqual(ids(input, Plan.impact(prepare(workflow))), [])
  })

  it("diff finds definition, new-block, inputs and volatile changes, and stops at the target", () => {
    const edited = edit((w) => {
      w.blocks[4].params.text = "changed" // quote
      w.blocks.push({ id: "late", type: "fn", volatile: true })
      w.edges.push({ source: "report", target: "late" })
      w.variables.tone = "warm" // summarize reads it
    })
    const input = prepare(edited, "route")
    const changes = Plan.diff(input)
    const changed = Array.from(changes.reasons.keys())
      .filter((i) => changes.reasons[i] !== 0)
      .map((i) => [Dag.idOf(input.dag, i), Plan.changesOf(changes, i)])
    // quote and summarize are reached only through the target, where the walk stops; late is also
    // reached through the parallel, so it is diffed.
    assert.deepStrictEqual(changed, [["late", ["new-block"]]])
    const unstopped = prepare(edited, "trigger")
    const all = Plan.diff({ ...unstopped, target: -1 })
    assert.deepStrictEqual(
      Array.from(all.reasons.keys()).filter((i) => all.reasons[i] !== 0).map((i) => [Dag.idOf(unstopped.dag, i), Plan.changesOf(all, i)]),
      [["summarize", ["inputs-changed"]], ["quote", ["definition-changed"]], ["late", ["new-block"]]]
    )
  })

  it("diff takes params that differ in key order (at any depth) or by a key for a definition change", () => {
    const routeChanges = (f: Parameters<typeof edit>[0]) => {
      const input = prepare(edit(f), "trigger")
      return Plan.changesOf(Plan.diff({ ...input, target: -1 }), Dag.indexOf(input.dag, "route")!)
    }
    assert.deepStrictEqual(routeChanges(() => {}), [])
    assert.deepStrictEqual(routeChanges((w) => {
      const { value, ...rest } = w.blocks[2].params
      w.blocks[2].params = { ...rest, value }
    }), ["definition-changed"])
    assert.deepStrictEqual(routeChanges((w) => {
      w.blocks[2].params.routes[0] = { equals: -1, handle: "short" }
    }), ["definition-changed"])
    assert.deepStrictEqual(routeChanges((w) => {
      w.blocks[2].params.routes[0].note = "x"
    }), ["definition-changed"])
    assert.deepStrictEqual(routeChanges((w) => {
      delete w.blocks[2].params.default
    }), ["definition-changed"])
  })

  it("diff reports failed and incomplete nodes, and every node without a snapshot", () => {
    const snapshot: Snapshot.Snapshot = {
      ...prior,
      nodes: { ...prior.nodes, audit: { ...prior.nodes["audit"]!, status: "failed" }, quote: { ...prior.nodes["quote"]!, status: "paused" } }
    }
    const input = prepare(workflow, "report", snapshot)
    const changes = Plan.diff(input)
    const at = (id: string) => Plan.changesOf(changes, Dag.indexOf(input.dag, id)!)
    assert.deepStrictEqual(at("audit"), ["failed-last-time"])
    assert.deepStrictEqual(at("quote"), ["incomplete"])
    const none = Plan.diff(Result.getOrThrow(Plan.prepare({ workflow, target: "report" })))
    assert.isTrue(none.reasons.every((r) => r === none.reasons[0]) && none.reasons[0] !== 0)
  })

  it("diff takes an edge moved to another handle of the same router for a wiring change", () => {
    // The router keeps both handles; only which block each one reaches changes.
    const swapped = edit((w) => {
      w.edges[2].handle = "short" // route → summarize
      w.edges[3].handle = "long" // route → quote
    })
    const plan = runFrom(swapped, "report")
    for (const id of ["summarize", "quote"]) assert.deepInclude(plan.reasons.get(id) ?? [], { _tag: "wiring-changed" }, id)
    const replay = Model.execute(swapped, { fingerprint: Fingerprint.hash }, Laws.replayOf(plan))
    const fresh = Model.execute(swapped, { fingerprint: Fingerprint.hash })
    for (const id of ["summarize", "quote", "report"]) {
      assert.deepStrictEqual(replay.snapshot.nodes[id]?.status, fresh.snapshot.nodes[id]?.status, id)
      assert.deepStrictEqual(replay.snapshot.nodes[id]?.output, fresh.snapshot.nodes[id]?.output, id)
    }
  })

  it("prune keeps changed ancestors of observed outputs plus the target", () => {
    const edited = edit((w) => {
      w.blocks[7].params.seen = "other" // audit: nobody observes it
      w.blocks[4].params.text = "changed" // quote: feeds the response
    })
    const input = prepare(edited, "tag")
    assert.deepStrictEqual(ids(input, Plan.prune(input, Plan.diff(input))), ["quote", "tag"])
  })

  it("scope enters a parallel for a target inside it (its start reused), and prunes what no output needs", () => {
    const edited = edit((w) => {
      w.blocks[7].params.seen = "other"
    })
    const input = prepare(edited, "tag")
    const changes = Plan.diff(input)
    const scope = Plan.scope(input, Plan.prune(input, changes), changes)
    assert.deepStrictEqual(ids(input, scope.rerun), ["each#end", "report", "tag"])
    assert.deepStrictEqual(ids(input, scope.pruned), ["audit"])
    assert.deepStrictEqual(scope.resets, [{ _tag: "parallel", container: "each", branches: "all", restart: "per-instance", why: "independent-instances" }])
  })

  it("scope re-runs only the branches of a parallel whose item changed", () => {
    const edited = edit((w) => {
      w.variables.topics = ["a", "B", "c"]
    })
    const plan = runFrom(edited, "report")
    assert.deepStrictEqual(plan.resets, [{ _tag: "parallel", container: "each", branches: [1], restart: "per-instance", why: "items-changed" }])
    const t = Laws.trial({ before: workflow, after: edited, target: "report" })
    assert.deepStrictEqual(t.replay.executed.filter((k) => k.startsWith("tag")), ["tag@1"])
    assert.deepStrictEqual(Laws.soundness(t), [])
    assert.deepStrictEqual(Laws.parallelIsolation(t), [])
  })

  it("scope re-runs every branch when the item count changes", () => {
    const plan = runFrom(edit((w) => { w.variables.topics = ["a", "b"] }), "report")
    assert.deepStrictEqual(plan.resets, [{ _tag: "parallel", container: "each", branches: "all", restart: "whole", why: "start-changed" }])
  })

  it("hydrate keeps only reused records and queues the start nodes in topological order", () => {
    const plan = runFrom(edit((w) => { w.blocks[4].params.text = "changed" }), "summarize")
    assert.deepStrictEqual(plan.start, ["summarize", "quote"])
    assert.deepStrictEqual(plan.state.pending, ["summarize", "quote"])
    assert.deepStrictEqual(Object.keys(plan.state.nodes).sort(), ["audit", "each#end", "each#start", "fetch", "route", "tag@0", "tag@1", "tag@2", "trigger"])
    assert.strictEqual(plan.state.nodes["fetch"], prior.nodes["fetch"])
    assert.strictEqual(plan.state.status, "pending")
  })

  it("hydrate strips the waits and pauses of re-run nodes", () => {
    const snapshot: Snapshot.Snapshot = {
      ...prior,
      nodes: { ...prior.nodes, summarize: { ...prior.nodes["summarize"]!, status: "paused" } },
      pauses: [{ node: "summarize", since: 1 }],
      waits: [{ node: "quote", kind: "signal", signal: "go", since: 1 }]
    }
    const plan = runFrom(workflow, "route", snapshot)
    assert.deepStrictEqual(plan.state.pauses, [])
    assert.deepStrictEqual(plan.state.waits, [])
  })
})

describe("Plan.runFrom", () => {
  it("with no edit re-runs the target and what depends on it, and reuses the rest", () => {
    const plan = runFrom(workflow, "summarize")
    assert.deepStrictEqual(plan.rerun, ["summarize", "report"])
    assert.deepStrictEqual(plan.reasons.get("summarize"), [{ _tag: "target" }])
    assert.deepStrictEqual(plan.reasons.get("report"), [{ _tag: "downstream", root: "summarize" }])
    assert.deepStrictEqual(plan.pruned, [])
  })

  it("without a snapshot plans over an empty one: what no observed output needs is pruned", () => {
    const plan = Result.getOrThrow(Plan.runFrom({ workflow, target: "quote" }))
    const overEmpty = Result.getOrThrow(Plan.runFrom({ workflow, snapshot: Snapshot.empty(workflow), target: "quote" }))
    assert.deepStrictEqual(plan.pruned, ["audit"])
    assert.strictEqual(plan.rerun.length, Dag.size(Dag.make(workflow)) - 1)
    assert.deepStrictEqual(plan.reasons.get("fetch"), [{ _tag: "missing-prior-state" }])
    assert.deepStrictEqual(plan.reasons.get("quote"), [{ _tag: "target" }])
    assert.deepStrictEqual([plan.rerun, plan.reused, plan.pruned, plan.start], [overEmpty.rerun, overEmpty.reused, overEmpty.pruned, overEmpty.start])
  })

  it("to a block: observes only the destination, reuses what is valid, prunes the rest", () => {
    const plan = Result.getOrThrow(Plan.runFrom({ workflow, snapshot: prior, target: "fetch", to: "quote" }))
    assert.strictEqual(plan.to, "quote")
    assert.deepStrictEqual(plan.rerun, ["fetch", "route", "quote"])
    assert.deepStrictEqual(plan.reused, ["trigger"])
    assert.deepStrictEqual([...plan.pruned].sort(), ["audit", "each#end", "each#start", "report", "summarize", "tag"])
    // Without a target only what changed re-runs, up to the destination.
    const edited = edit((w) => void (w.variables.topics = ["a", "z"]))
    const upTo = Result.getOrThrow(Plan.runFrom({ workflow: edited, snapshot: prior, to: "each" }))
    assert.strictEqual(upTo.target, undefined)
    assert.deepStrictEqual(upTo.rerun, ["each#start", "tag", "each#end"])
    assert.deepStrictEqual(upTo.pruned, ["report"])
    assert.match(Plan.explain(upTo), /run-from plan of example to each:/u)
  })

  it("to a block without a prior run executes only its ancestors (run-from and full plans alike)", () => {
    const plan = Result.getOrThrow(Plan.runFrom({ workflow, to: "quote" }))
    assert.deepStrictEqual(plan.rerun, ["trigger", "fetch", "route", "quote"])
    assert.deepStrictEqual([...plan.pruned].sort(), ["audit", "each#end", "each#start", "report", "summarize", "tag"])
    const full = Result.getOrThrow(Plan.full(workflow, { to: "each" }))
    assert.strictEqual(full.mode, "full")
    assert.deepStrictEqual(full.rerun, ["trigger", "fetch", "each#start", "tag", "each#end"])
    assert.deepStrictEqual(full.reasons.get("fetch"), [{ _tag: "missing-prior-state" }])
  })

  it("to a block: an unknown destination, or one that does not depend on the target, is refused", () => {
    const failure = (r: Result.Result<Plan.Plan, Plan.PlanError>) => (Result.isFailure(r) ? r.failure : undefined)
    const unknown = failure(Plan.runFrom({ workflow, snapshot: prior, target: "fetch", to: "nope" }))
    assert.deepStrictEqual([unknown?._tag, unknown?.path], ["UnknownDestination", ["to"]])
    assert.strictEqual(failure(Plan.full(workflow, { to: "each#end" }))?._tag, "UnknownDestination")
    const apart = failure(Plan.runFrom({ workflow, snapshot: prior, target: "summarize", to: "quote" }))
    assert.deepStrictEqual([apart?._tag, apart?.path, apart?.message], [
      "DestinationNotDownstream",
      ["to"],
      `destination "quote" does not depend on target "summarize"`
    ])
  })

  it("a disabled block: decode wants one input for a pass-through; toggling it is a definition change, reason disabled", () => {
    const twoInputs = edit((w) => {
      w.blocks[2].disabled = true
      w.edges.push({ source: "trigger", target: "route" })
    })
    const refused = Workflow.decode(twoInputs)
    assert.isTrue(Result.isFailure(refused))
    if (Result.isFailure(refused)) {
      assert.deepStrictEqual([refused.failure._tag, refused.failure.path], ["DisabledBlockInputs", ["blocks", 2, "disabled"]])
    }
    assert.isTrue(Result.isSuccess(Workflow.decode(edit((w) => void (w.blocks[6].disabled = true)))), "a disabled sink may have several inputs")
    const summarize = workflow.blocks[3]!
    assert.strictEqual(Fingerprint.ofBlock({ ...summarize, disabled: false }), Fingerprint.ofBlock(summarize))
    assert.notStrictEqual(Fingerprint.ofBlock({ ...summarize, disabled: true }), Fingerprint.ofBlock(summarize))
    const disabled = edit((w) => void (w.blocks[3].disabled = true))
    const plan = runFrom(disabled, "quote")
    assert.deepStrictEqual(plan.reasons.get("summarize"), [{ _tag: "definition-changed" }, { _tag: "disabled" }])
    assert.deepStrictEqual(Workflow.passThrough(disabled, disabled.blocks[3]!), {
      id: "summarize",
      type: "fn",
      params: { value: { $ref: "blocks.route.output" } },
      disabled: true
    })
    assert.isUndefined(Workflow.passThrough(disabled, disabled.blocks[2]!))
  })

  it("pins: a pinned block is written, not run (reason pinned), per instance too; a pin that cannot apply is refused", () => {
    const plan = Result.getOrThrow(Plan.runFrom({ workflow, snapshot: prior, to: "report", pins: { quote: "fixed", "tag@1": "t1" } }))
    assert.deepStrictEqual(plan.pins, { quote: "fixed", "tag@1": "t1" })
    assert.deepStrictEqual(plan.reasons.get("tag"), [{ _tag: "pinned" }])
    // Pinned at branch 1 only: the parallel is entered and that branch alone re-runs.
    assert.deepStrictEqual(plan.resets, [{ _tag: "parallel", container: "each", branches: "all", restart: "per-instance", why: "independent-instances" }])
    assert.include(plan.rerun, "each#end")
    assert.notInclude(plan.rerun, "each#start")
    assert.deepStrictEqual(Object.keys(plan.state.nodes).filter((k) => k.startsWith("tag@")).sort(), ["tag@0", "tag@2"])
    // Untaken by the router last time (skipped): its pin is new, but nothing observed reads it now.
    assert.deepStrictEqual(plan.reasons.get("quote"), [{ _tag: "pinned" }])
    assert.strictEqual(Plan.pinOf(plan.pins, "tag", [1]), "t1")
    assert.isUndefined(Plan.pinOf(plan.pins, "tag", [0]))
    const same = Result.getOrThrow(Plan.runFrom({ workflow, snapshot: prior, to: "report", pins: { fetch: prior.nodes["fetch"]!.output! } }))
    assert.deepStrictEqual(same.rerun, [])
    const refused = (pins: Plan.Pins) => {
      const r = Plan.runFrom({ workflow, snapshot: prior, target: "fetch", pins })
      return Result.isFailure(r) && r.failure._tag === "InvalidPin" ? [r.failure.pin, r.failure.path] : undefined
    }
    assert.deepStrictEqual(refused({ nope: 1 }), ["nope", ["pins", "nope"]])
    assert.deepStrictEqual(refused({ route: "long" }), ["route", ["pins", "route"]])
    assert.deepStrictEqual(refused({ "tag@1.2": 1 }), ["tag@1.2", ["pins", "tag@1.2"]])
    assert.deepStrictEqual(refused({ each: 1 }), ["each", ["pins", "each"]])
    const disabled = edit((w) => void (w.blocks[3].disabled = true))
    assert.isTrue(Result.isFailure(Plan.runFrom({ workflow: disabled, target: "fetch", pins: { summarize: 1 } })))
  })

  it("resuming a run to a block keeps what its plan pruned pruned", () => {
    const plan = Result.getOrThrow(Plan.runFrom({ workflow, to: "quote" }))
    const partial: Snapshot.Snapshot = { ...plan.state, nodes: { trigger: prior.nodes["trigger"]!, fetch: prior.nodes["fetch"]! } }
    const resumed = Result.getOrThrow(Plan.resume(workflow, partial, { to: "quote" }))
    assert.deepStrictEqual(resumed.rerun, ["route", "quote"])
    const unbounded = Result.getOrThrow(Plan.resume(workflow, partial))
    assert.include(unbounded.rerun, "report")
  })

  it("names the problem: unknown target, another workflow's snapshot, bad snapshot, invalid workflow", () => {
    const failure = (r: Result.Result<Plan.Plan, Plan.PlanError>) => (Result.isFailure(r) ? r.failure : undefined)
    const unknown = failure(Plan.runFrom({ workflow, snapshot: prior, target: "nope" }))
    assert.strictEqual(unknown?._tag, "UnknownTarget")
    assert.include(unknown?.message, "nope")
    const other = failure(Plan.runFrom({ workflow, snapshot: { ...prior, workflow: { ...workflow, id: "other" } }, target: "fetch" }))
    assert.strictEqual(other?._tag, "SnapshotOfAnotherWorkflow")
    assert.deepStrictEqual(other?.path, ["snapshot", "workflow", "id"])
    const future = failure(Plan.runFrom({ workflow, snapshot: { ...prior, schemaVersion: 2 as unknown as 1 }, target: "fetch" }))
    assert.strictEqual(future?._tag, "InvalidSnapshot")
    assert.include(future?.message, "version 2")
    // Edges are compared only once a block needs it: a frozen workflow without them is refused up front.
    const { edges: _, ...edgeless } = prior.workflow
    const unwired = failure(Plan.runFrom({ workflow, snapshot: { ...prior, workflow: edgeless as Workflow.Workflow }, target: "fetch" }))
    assert.strictEqual(unwired?._tag, "InvalidSnapshot")
    assert.deepStrictEqual(unwired?.path, ["snapshot", "workflow"])
    const invalid = failure(Plan.runFrom({ workflow: { ...workflow, edges: [...workflow.edges, { source: "report", target: "fetch" }] }, target: "fetch" }))
    assert.strictEqual(invalid?._tag, "InvalidWorkflow")
    assert.strictEqual(invalid?._tag === "InvalidWorkflow" ? invalid.cause._tag : undefined, "Cycle")
  })

  // A loop `repeat` of two body blocks (`step` reads the index, `next` reads `step`) followed by `out`.
  const looped = (loop: Omit<Workflow.Loop, "id" | "body">): Workflow.Workflow => ({
    id: "loop",
    blocks: [
      { id: "trigger", type: "trigger" },
      { id: "step", type: "fn", params: { i: { $ref: "loop.index" } } },
      { id: "next", type: "fn", params: { prev: { $ref: "blocks.step.output" } } },
      { id: "out", type: "response", params: { all: { $ref: "blocks.repeat.output" } } }
    ],
    edges: [{ source: "trigger", target: "repeat" }, { source: "step", target: "next" }, { source: "repeat", target: "out" }],
    loops: [{ id: "repeat", body: ["step", "next"], ...loop } as Workflow.Loop]
  })

  it("re-runs only the target and what follows it in every iteration of a count loop, reusing the rest", () => {
    const counted = looped({ kind: "count", count: 3 })
    const t = Laws.trial({ before: counted, after: counted, target: "next" })
    assert.deepStrictEqual(t.plan.rerun, ["next", "repeat#end", "out"])
    assert.deepStrictEqual(t.plan.resets, [{ _tag: "loop", container: "repeat", restart: "per-instance", why: "independent-instances" }])
    assert.deepStrictEqual(t.plan.reasons.get("step"), undefined)
    assert.deepStrictEqual(t.replay.executed, ["next@0", "next@1", "next@2", "repeat#end", "out"])
    assert.deepStrictEqual(Laws.soundness(t), [])
  })

  it("re-runs a while loop whole, from iteration 0, when the target is inside it", () => {
    const whileLoop = looped({ kind: "while", condition: { left: { $ref: "loop.index" }, op: "lt", right: 2 }, maxIterations: 5 })
    const t = Laws.trial({ before: whileLoop, after: whileLoop, target: "next" })
    assert.deepStrictEqual(t.plan.rerun, ["repeat#start", "step", "next", "repeat#end", "out"])
    assert.deepStrictEqual(t.plan.resets, [{ _tag: "loop", container: "repeat", restart: "whole", why: "while-loop" }])
    assert.deepStrictEqual(t.plan.reasons.get("step"), [{ _tag: "container-reset", container: "repeat" }])
    assert.deepStrictEqual(t.replay.executed.filter((k) => k.startsWith("step")), ["step@0", "step@1", "step@2"])
    assert.deepStrictEqual(Laws.soundness(t), [])
  })

  it("a container target counts as observed through its end: no member re-runs only as a reset", () => {
    // `out` no longer reads the loop: only the target makes `repeat` needed.
    const counted = looped({ kind: "count", count: 2 })
    const aside: Workflow.Workflow = {
      ...counted,
      blocks: counted.blocks.map((b) => b.id === "out" ? { ...b, params: {} } : b),
      edges: counted.edges.map((e) => e.target === "out" ? { source: "trigger", target: "out" } : e)
    }
    const plan = runFrom(aside, "repeat", Model.execute(aside, { fingerprint: Fingerprint.hash }).snapshot)
    assert.deepStrictEqual(plan.rerun, ["repeat#start", "step", "next", "repeat#end"])
    for (const id of ["step", "repeat#end"]) {
      assert.deepStrictEqual(plan.reasons.get(id), [{ _tag: "downstream", root: "repeat#start" }], id)
    }
  })

  it("re-runs a changed body block at every iteration, even after one that re-runs at some iterations only", () => {
    // `step` failed at iteration 0 only; `next` (after it) has new params, so every iteration changes.
    const before = looped({ kind: "count", count: 3 })
    const after = { ...before, blocks: before.blocks.map((b) => b.id === "next" ? { ...b, params: { ...b.params, extra: 1 } } : b) }
    const ran = Model.execute(before, { fingerprint: Fingerprint.hash })
    const snapshot: Snapshot.Snapshot = {
      ...ran.snapshot,
      status: "failed",
      nodes: { ...ran.snapshot.nodes, "step@0": { ...ran.snapshot.nodes["step@0"]!, status: "failed", error: { message: "once" } } }
    }
    const plan = runFrom(after, "out", snapshot)
    assert.deepInclude(plan.reasons.get("next") ?? [], { _tag: "definition-changed" })
    const replay = Model.execute(after, { fingerprint: Fingerprint.hash }, Laws.replayOf(plan))
    assert.deepStrictEqual(replay.executed.filter((k) => k.startsWith("next")), ["next@0", "next@1", "next@2"])
    const fresh = Model.execute(after, { fingerprint: Fingerprint.hash })
    for (const key of ["next@1", "repeat#end", "out"]) assert.deepStrictEqual(replay.snapshot.nodes[key]?.output, fresh.snapshot.nodes[key]?.output, key)
  })

  it("restarts a loop nested in a restarting while loop whole, because its enclosing loop restarts", () => {
    // The while loop `repeat` holds `next` and the count loop `inner` (body `step`); nothing inside
    // follows anything.
    const whileLoop = looped({ kind: "while", condition: { left: { $ref: "loop.index" }, op: "lt", right: 1 }, maxIterations: 3 })
    const nested: Workflow.Workflow = {
      ...whileLoop,
      blocks: whileLoop.blocks.map((b) => b.id === "next" ? { ...b, params: { i: { $ref: "loop.index" } } } : b),
      edges: whileLoop.edges.filter((e) => e.source !== "step"),
      loops: [{ ...whileLoop.loops![0]!, body: ["inner", "next"] }, { id: "inner", kind: "count", count: 2, body: ["step"] }]
    }
    const t = Laws.trial({ before: nested, after: nested, target: "next" })
    assert.deepStrictEqual(t.plan.resets, [
      { _tag: "loop", container: "repeat", restart: "whole", why: "while-loop" },
      { _tag: "loop", container: "inner", restart: "whole", why: "enclosing-restart" }
    ])
    assert.deepStrictEqual(Laws.soundness(t), [])
  })

  it("restarts a loop whose end did not finish whole, from iteration 0", () => {
    // The prior run failed in `next` at every iteration: the loop's end has no record, and its
    // scope (how many iterations ran) went with it, as a run that fails leaves them.
    const after = looped({ kind: "count", count: 2 })
    const before = { ...after, blocks: after.blocks.map((b) => b.id === "next" ? { id: "next", type: "fail" } : b) }
    const ran = Model.execute(before, { fingerprint: Fingerprint.hash })
    const { "repeat#end": _end, ...nodes } = ran.snapshot.nodes
    const snapshot: Snapshot.Snapshot = { ...ran.snapshot, status: "failed", nodes, loops: {} }
    const plan = Result.getOrThrow(Plan.runFrom({ workflow: after, snapshot, target: "out" }))
    assert.deepStrictEqual(plan.resets, [{ _tag: "loop", container: "repeat", restart: "whole", why: "unfinished" }])
    const replay = Model.execute(after, { fingerprint: Fingerprint.hash }, Laws.replayOf(plan))
    const fresh = Model.execute(after, { fingerprint: Fingerprint.hash })
    const t: Laws.Trial = { scenario: { before, after, target: "out" }, prior: { ...ran, snapshot }, plan, replay, fresh, dag: Dag.make(after) }
    assert.deepStrictEqual(Laws.soundness(t), [])
    assert.deepStrictEqual(replay.executed.filter((k) => k.startsWith("step")), ["step@0", "step@1"])
  })
})

describe("Plan.runFrom over pruned nodes that failed", () => {
  // `audit` (a sink no output observes) failed in run-1: a full run of the workflow fails on it.
  const failedAudit: Snapshot.Snapshot = {
    ...prior,
    runId: "run-1",
    status: "failed",
    nodes: { ...prior.nodes, audit: { ...prior.nodes["audit"]!, status: "failed", error: { message: "audit is down" } } }
  }

  it("lists the pruned instances whose last known state is failed, with the run they failed in", () => {
    const plan = runFrom(workflow, "summarize", failedAudit)
    assert.deepStrictEqual(plan.pruned, ["audit"])
    assert.deepStrictEqual(plan.prunedFailed, [{ node: "audit", run: "run-1" }])
    assert.deepStrictEqual(Plan.pruneSummary(plan), { count: 1, failed: [{ node: "audit", run: "run-1" }] })
    // A record reused into the snapshot's run names the run that produced it.
    const reused = { ...failedAudit, nodes: { ...failedAudit.nodes, audit: { ...failedAudit.nodes["audit"]!, reusedFrom: "run-0" } } }
    assert.deepStrictEqual(runFrom(workflow, "summarize", reused).prunedFailed, [{ node: "audit", run: "run-0" }])
    const { runId: _, ...anonymous } = failedAudit
    assert.deepStrictEqual(runFrom(workflow, "summarize", anonymous).prunedFailed, [{ node: "audit" }])
  })

  it("names failed instances inside a pruned container", () => {
    const side: Workflow.Workflow = {
      id: "side",
      blocks: [
        { id: "trigger", type: "trigger" },
        { id: "a", type: "fn", params: { n: 1 } },
        { id: "x", type: "fn", params: { i: { $ref: "loop.index" } } },
        { id: "out", type: "response", params: { a: { $ref: "blocks.a.output" } } }
      ],
      edges: [{ source: "trigger", target: "a" }, { source: "a", target: "out" }, { source: "a", target: "chores" }],
      loops: [{ id: "chores", kind: "count", count: 2, body: ["x"] }]
    }
    const ran = Model.execute(side).snapshot
    const snapshot: Snapshot.Snapshot = {
      ...ran,
      runId: "run-7",
      nodes: { ...ran.nodes, "x@1": { ...ran.nodes["x@1"]!, status: "failed", error: { message: "no" } } }
    }
    const plan = runFrom(side, "a", snapshot)
    assert.deepStrictEqual([...plan.pruned].sort(), ["chores#end", "chores#start", "x"])
    assert.deepStrictEqual(plan.prunedFailed, [{ node: "x@1", run: "run-7" }])
  })

  it("carries a failure forward while the node stays pruned and nothing has run it since", () => {
    const first = runFrom(workflow, "summarize", failedAudit)
    // The run-from's own snapshot: `audit`'s record was dropped, its report kept.
    const second: Snapshot.Snapshot = { ...first.state, runId: "run-2", status: "completed", pruned: Plan.pruneSummary(first)! }
    assert.isUndefined(second.nodes["audit"])
    const again = runFrom(workflow, "summarize", second)
    assert.deepStrictEqual(again.pruned, ["audit"])
    assert.deepStrictEqual(again.prunedFailed, [{ node: "audit", run: "run-1" }])
    // Once a run has a record of it, that record is the last known state (`audit`, edited, is pruned still).
    const completed = { ...second, nodes: { ...second.nodes, audit: prior.nodes["audit"]! } }
    const planned = runFrom(edit((w) => { w.blocks[7].params.seen = "other" }), "summarize", completed)
    assert.deepStrictEqual(planned.pruned, ["audit"])
    assert.deepStrictEqual(planned.prunedFailed, [])
  })

  it("reports nothing when nothing was pruned", () => {
    const plan = runFrom(workflow, "summarize")
    assert.deepStrictEqual(plan.prunedFailed, [])
    assert.isUndefined(Plan.pruneSummary(plan))
  })
})

describe("Plan.resume", () => {
  it("reuses finished nodes, re-runs unfinished ones and keeps their waits", () => {
    const { quote: _q, report: _r, ...rest } = prior.nodes
    const snapshot: Snapshot.Snapshot = {
      ...prior,
      status: "suspended",
      nodes: { ...rest, summarize: { ...prior.nodes["summarize"]!, status: "waiting" } },
      waits: [{ node: "summarize", kind: "signal", signal: "approve", since: 5 }]
    }
    const plan = Result.getOrThrow(Plan.resume(workflow, snapshot))
    assert.strictEqual(plan.mode, "resume")
    assert.deepStrictEqual(plan.rerun, ["summarize", "quote", "report"])
    assert.deepStrictEqual(plan.reasons.get("summarize"), [{ _tag: "incomplete" }])
    assert.deepStrictEqual(plan.state.waits, snapshot.waits)
    assert.strictEqual(plan.state.status, "suspended")
  })

  it("resuming a run to a block: a container end its plan pruned is not missing, it re-runs with its container", () => {
    // A run to `quote` pruned the parallel `each` (its end is listed in the prune summary).
    const toQuote = Result.getOrThrow(Plan.full(workflow, { to: "quote" }))
    const ran = Model.execute(workflow, { fingerprint: Fingerprint.hash }, Laws.replayOf(toQuote)).snapshot
    const pruned = Plan.pruneSummary(toQuote)
    assert.deepStrictEqual(pruned?.ends, ["each#end"])
    const plan = Result.getOrThrow(Plan.resume(workflow, { ...ran, status: "completed", ...(pruned === undefined ? {} : { pruned }) }))
    assert.include(plan.rerun, "each#end")
    assert.deepStrictEqual(plan.reasons.get("each#start"), [{ _tag: "missing-prior-state" }])
    assert.deepStrictEqual(plan.reasons.get("each#end"), [{ _tag: "downstream", root: "each#start" }])
  })

  it("retries a failed run's failed node (reason failed-last-time) and what follows it", () => {
    const { report: _r, ...rest } = prior.nodes
    const failed = { ...prior.nodes["summarize"]!, status: "failed" as const, error: { message: "down" } }
    const plan = Result.getOrThrow(Plan.resume(workflow, { ...prior, status: "failed", nodes: { ...rest, summarize: failed } }))
    assert.deepStrictEqual(plan.rerun, ["summarize", "report"])
    assert.deepStrictEqual(plan.reasons.get("summarize"), [{ _tag: "failed-last-time" }])
  })

  it("resuming a crashed run to a block inside a parallel finishes the parallel", () => {
    // A run to `tag` runs the parallel `each` (its end included); it crashed before branch 2 and the end.
    const toTag = Result.getOrThrow(Plan.full(workflow, { to: "tag" }))
    const ran = Model.execute(workflow, { fingerprint: Fingerprint.hash }, Laws.replayOf(toTag)).snapshot
    assert.strictEqual(ran.nodes["each#end"]?.status, "completed")
    const { "tag@2": _tag, "each#end": _end, ...nodes } = ran.nodes
    const plan = Result.getOrThrow(Plan.resume(workflow, { ...ran, status: "running", nodes, parallels: {} }, { to: "tag" }))
    assert.includeMembers([...plan.rerun], ["tag", "each#end"])
    const resumed = Model.execute(workflow, { fingerprint: Fingerprint.hash }, Laws.replayOf(plan)).snapshot
    for (const key of ["tag@2", "each#end"]) assert.deepStrictEqual(resumed.nodes[key], ran.nodes[key], key)
  })

  it("reuses a skipped node (a router branch not taken): only incomplete work re-runs", () => {
    const skipped = Object.keys(prior.nodes).filter((id) => prior.nodes[id]!.status === "skipped")
    assert.isAbove(skipped.length, 0, "the example's router skips a branch")
    const { report: _r, ...rest } = prior.nodes
    const plan = Result.getOrThrow(Plan.resume(workflow, { ...prior, status: "running", nodes: rest }))
    assert.deepStrictEqual(plan.rerun, ["report"])
    for (const id of skipped) assert.include(plan.reused, id)
  })
})

describe("Plan views", () => {
  const plan = runFrom(edit((w) => { w.blocks[7].params.seen = "x"; w.blocks[4].params.text = "y" }), "summarize")

  it("explain prints one row per node with its plan and reasons", () => {
    const text = Plan.explain(plan)
    assert.include(text, "run-from plan of example from summarize: 3 re-run")
    assert.match(text, /summarize\s+re-run\s+target/u)
    assert.match(text, /report\s+re-run\s+downstream\(summarize\)/u)
    assert.match(text, /audit\s+pruned\s+definition-changed/u)
    assert.match(text, /fetch\s+reused/u)
  })

  it("explain and toJson say how each re-run container re-runs, and why", () => {
    const inside = runFrom(workflow, "tag")
    assert.include(Plan.explain(inside), "each: parallel re-runs per instance (independent-instances)")
    assert.deepStrictEqual((Plan.toJson(inside) as { resets: unknown }).resets, [
      { _tag: "parallel", container: "each", branches: "all", restart: "per-instance", why: "independent-instances" }
    ])
    const upstream = runFrom(edit((w) => { w.variables.topics = ["a", "b"] }), "report")
    assert.include(Plan.explain(upstream), "each: parallel re-runs whole (start-changed)")
    const item = runFrom(edit((w) => { w.variables.topics = ["a", "B", "c"] }), "report")
    assert.include(Plan.explain(item), "each: parallel re-runs per instance (items-changed, branches 1)")
  })

  it("toJson is plain JSON", () => {
    const json = Plan.toJson(plan) as Record<string, unknown>
    assert.deepStrictEqual(JSON.parse(JSON.stringify(json)), json)
    assert.deepStrictEqual(json["rerun"], plan.rerun)
  })

  it("Mermaid and DOT style re-run, reused and pruned nodes apart", () => {
    const mermaid = Plan.toMermaid(plan)
    assert.match(mermaid, /^flowchart TD/u)
    assert.match(mermaid, /"summarize"\]:::rerun/u)
    assert.match(mermaid, /"fetch"\]:::reused/u)
    assert.match(mermaid, /"audit"\]:::pruned/u)
    assert.match(mermaid, /subgraph n\d+_box \["each"\]/u)
    assert.include(mermaid, `["each#35;start"]:::reused`)
    assert.include(mermaid, `-->|"long"|`)
    const dot = Plan.toDot(plan)
    assert.match(dot, /"summarize" \[label="summarize\\nre-run", style="filled,bold"/u)
    assert.match(dot, /"audit" \[label="audit\\npruned", style="dashed"/u)
    assert.include(dot, `"route" -> "summarize" [label="long"];`)
  })
})
