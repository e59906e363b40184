/**
 * Early cutoff reuses every block instance a run-from reaches with what its prior run computed it
 * from (issue 16, item 5): a block is a deterministic function of its definition, its resolved
 * inputs and the loop/parallel item its handler reads, whatever else changed around it — its
 * incoming edges, a router's outgoing routes, a sibling instance that failed, an outer container's
 * item it cannot see. `Laws.identicalReruns` states it from those definitions; the examples pin
 * down each case.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Arbitraries, Laws } from "@ripple/core/testing"
import { BlockError, Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fc from "fast-check"
import { runOnEngine, SEED, withModel } from "./model.ts"

const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? 1000)

describe("Early cutoff of re-runs with identical inputs", () => {
  it.effect("a run-from never executes a deterministic block instance with exactly its prior definition, inputs and visible item", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(Arbitraries.arbitraryScenario({ failing: true, maxMembers: 5 }), async (scenario) => {
          const { after, before, target } = scenario
          const found = await Effect.runPromise(withModel((current) =>
            Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const prior = yield* runOnEngine(current, runs.start(before, Laws.inputFor(before)), before)
              const run = yield* runOnEngine(current, runs.runFrom(after, { target, run: prior.started.runId }), after)
              return Laws.identicalReruns(scenario, run.started.plan, prior.snapshot, run.snapshot)
            })))
          assert.deepStrictEqual(found, [])
        }),
        { numRuns: NUM_RUNS, seed: SEED }
      )
    ), 600_000)

  const layer = (calls: Array<string>) => {
    const counted: Handler.Handler = (ctx) =>
      Effect.sync(() => {
        calls.push(ctx.node)
        return { n: ctx.inputs["n"] ?? null, at: ctx.loop?.index ?? null }
      })
    const routing: Handler.Handler = (ctx) =>
      Effect.flatMap(Effect.sync(() => calls.push(ctx.node)), () => Builtins.router(ctx))
    return Runs.layer().pipe(
      Layer.provideMerge(RunStore.layerMemory),
      Layer.provideMerge(Handler.layer({ counted, router: routing }))
    )
  }

  const twice = (calls: Array<string>, before: Workflow.Workflow, after: Workflow.Workflow, target: string) =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const first = yield* runs.start(before)
      yield* runs.wait(first.runId)
      calls.length = 0
      const again = yield* runs.runFrom(after, { target, run: first.runId })
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      return { plan: again.plan, reasons: yield* store.reasons(again.runId), snapshot: yield* store.snapshot(again.runId) }
    })

  it.effect("a block whose incoming edges changed, and a router whose outgoing route was added, are cut off", () => {
    const calls: Array<string> = []
    const before: Workflow.Workflow = {
      id: "wired",
      blocks: [
        { id: "a", type: "value", params: { value: 1 } },
        { id: "b", type: "value", params: { value: 2 } },
        { id: "c", type: "counted", params: { n: { $ref: "blocks.a.output" } } },
        { id: "r", type: "router", params: { value: { $ref: "blocks.c.output.n" }, routes: [{ handle: "one", equals: 1 }], default: "other" } },
        { id: "x", type: "counted", params: { n: 10 } }
      ],
      edges: [{ source: "a", target: "c" }, { source: "c", target: "r" }, { source: "r", target: "x", handle: "one" }]
    }
    // c also waits for b (which it does not read); r gains a route to a new block.
    const after: Workflow.Workflow = {
      ...before,
      blocks: [...before.blocks, { id: "y", type: "counted", params: { n: 20 } }],
      edges: [...before.edges, { source: "b", target: "c" }, { source: "r", target: "y", handle: "other" }]
    }
    return Effect.gen(function*() {
      const { plan, reasons, snapshot } = yield* twice(calls, before, after, "x")
      assert.includeMembers([...plan.rerun], ["c", "r", "x", "y"])
      assert.deepStrictEqual(plan.reasons.get("c")?.map((r) => r._tag), ["wiring-changed"])
      assert.deepStrictEqual(plan.reasons.get("r")?.map((r) => r._tag), ["wiring-changed"])
      // Only the target runs: y, new, is on the route r does not take.
      assert.deepStrictEqual(calls, ["x"])
      assert.deepStrictEqual([reasons["c"], reasons["r"]], [["cutoff"], ["cutoff"]])
      assert.deepStrictEqual([snapshot.nodes["x"]?.status, snapshot.nodes["y"]?.status], ["completed", "skipped"])
    }).pipe(Effect.provide(layer(calls)))
  })

  it.effect("inside a loop, the instances that completed are kept and only the failed one runs again", () => {
    const calls: Array<string> = []
    let failures = 1
    const workflow = (n: number): Workflow.Workflow => ({
      id: "flaky",
      blocks: [
        { id: "seed", type: "value", params: { value: n } },
        { id: "step", type: "counted", params: { n: { $ref: "loop.index" } } },
        { id: "shaky", type: "shaky", params: { i: { $ref: "loop.index" } } },
        { id: "after", type: "counted", params: { n: { $ref: "blocks.seed.output" } } }
      ],
      edges: [{ source: "step", target: "shaky" }, { source: "steps", target: "after" }, { source: "seed", target: "after" }],
      loops: [{ id: "steps", kind: "count", count: 3, body: ["step", "shaky"] }]
    })
    const shaky: Handler.Handler = (ctx) =>
      Effect.suspend(() => {
        calls.push(ctx.node)
        return ctx.loop?.index === 1 && failures-- > 0 ? Effect.fail(BlockError.permanent("timeout")) : Effect.succeed(ctx.loop?.index ?? null)
      })
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const first = yield* runs.start(workflow(1))
      assert.strictEqual(yield* runs.wait(first.runId), "failed")
      calls.length = 0
      const again = yield* runs.runFrom(workflow(2), { target: "seed", run: first.runId })
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      assert.deepStrictEqual(again.plan.reasons.get("shaky")?.map((r) => r._tag), ["failed-last-time"])
      // The loop re-runs per instance: step@0..2 and shaky@0, shaky@2 completed with these inputs and are kept.
      assert.deepStrictEqual(again.plan.resets.map((r) => [r.container, r.restart]), [["steps", "per-instance"]])
      assert.deepStrictEqual(calls.sort(), ["after", "shaky@1"])
      const reasons = yield* store.reasons(again.runId)
      assert.deepStrictEqual(["step@0", "step@1", "shaky@0", "shaky@2"].map((k) => reasons[k]), [["unchanged"], ["unchanged"], ["unchanged"], ["unchanged"]])
    }).pipe(Effect.provide(Runs.layer().pipe(
      Layer.provideMerge(RunStore.layerMemory),
      Layer.provideMerge(Handler.layer({ counted: (ctx) => Effect.sync(() => (calls.push(ctx.node), ctx.inputs["n"] ?? null)), shaky }))
    )))
  })

  it.effect("a block in an inner loop is cut off when only the outer loop's item changed (its handler sees the inner one)", () => {
    const calls: Array<string> = []
    const nested = (items: ReadonlyArray<string>): Workflow.Workflow => ({
      id: "nested",
      blocks: [
        { id: "list", type: "value", params: { value: [...items] } },
        { id: "tag", type: "template", params: { template: "{{x}}", values: { x: { $ref: "loop.item" } } } },
        { id: "work", type: "counted", params: { n: 5 } }
      ],
      edges: [{ source: "list", target: "outer" }, { source: "tag", target: "inner" }],
      loops: [
        { id: "outer", kind: "forEach", items: { $ref: "blocks.list.output" }, body: ["tag", "inner"] },
        { id: "inner", kind: "count", count: 2, body: ["work"] }
      ]
    })
    return Effect.gen(function*() {
      const { reasons, snapshot } = yield* twice(calls, nested(["a", "b"]), nested(["a", "c"]), "list")
      assert.strictEqual(snapshot.nodes["tag@1"]?.output, "c")
      assert.deepStrictEqual(calls, [])
      assert.deepStrictEqual(["work@0.0", "work@1.0", "work@1.1"].map((k) => reasons[k]), [["cutoff"], ["cutoff"], ["cutoff"]])
    }).pipe(Effect.provide(layer(calls)))
  })
})
