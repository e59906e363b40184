import { assert, describe, it } from "@effect/vitest"
import { NodeId, Plan, type Snapshot, Workflow } from "@ripple/core"
import { Handler, Ripple, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as fc from "fast-check"

type Json = Workflow.Json

/** The `k` config of each configurable step: editing one is what a user changes between runs. */
interface Config {
  readonly a: number
  readonly b: number
  readonly c: number
}

/** Handler calls per step, to check that a run executes exactly what its plan re-runs. */
type Calls = Map<string, number>

const count = (calls: Calls, ctx: { readonly node: string }) => Effect.sync(() => calls.set(ctx.node, (calls.get(ctx.node) ?? 0) + 1))

const codeFirst = (config: Config, calls: Calls) =>
  Ripple.workflow("eq", { input: Schema.Struct({ n: Schema.Number }) })
    .step("a", { config: { k: config.a }, handler: (_, ctx) => Effect.as(count(calls, ctx), ctx.input.n + ctx.config.k) })
    .step("b", { needs: ["a"], config: { k: config.b }, handler: ({ a }, ctx) => Effect.as(count(calls, ctx), a * ctx.config.k) })
    .step("c", { needs: ["a"], config: { k: config.c }, handler: ({ a }, ctx) => Effect.as(count(calls, ctx), a - ctx.config.k) })
    .route("r", {
      needs: ["b"],
      handler: ({ b }, ctx) => Effect.as(count(calls, ctx), b % 2 === 0 ? "even" as const : "odd" as const),
      branches: {
        even: (even) => even.step("e", { needs: ["c"], handler: ({ c }, ctx) => Effect.as(count(calls, ctx), c * 2) }),
        odd: (odd) => odd.step("o", (_, ctx) => Effect.as(count(calls, ctx), "odd"))
      }
    })
    .step("items", { needs: ["c"], handler: ({ c }, ctx) => Effect.as(count(calls, ctx), [c, c + 1]) })
    .parallel("each", { forEach: "items" }, (body) =>
      body.step("sq", { needs: ["b"], handler: ({ b }, ctx) => Effect.as(count(calls, ctx), ctx.item * b) }))
    .step("d", { needs: ["b", "c", "e", "each"], handler: ({ b, c, e, each }, ctx) => Effect.as(count(calls, ctx), { b, c, e, each }) })
    .output("d")

/** The same workflow written by hand in the JSON format, with the builder's block types. */
const handWritten = (config: Config): Workflow.Workflow => ({
  id: "eq",
  inputs: { n: { type: "number" } },
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "a", type: "ripple:eq/a", params: { config: { k: config.a } } },
    { id: "b", type: "ripple:eq/b", params: { needs: { a: { $ref: "blocks.a.output" } }, config: { k: config.b } } },
    { id: "c", type: "ripple:eq/c", params: { needs: { a: { $ref: "blocks.a.output" } }, config: { k: config.c } } },
    { id: "r", type: "ripple:eq/r", params: { needs: { b: { $ref: "blocks.b.output" } } } },
    { id: "e", type: "ripple:eq/e", params: { needs: { c: { $ref: "blocks.c.output" } } } },
    { id: "o", type: "ripple:eq/o" },
    { id: "items", type: "ripple:eq/items", params: { needs: { c: { $ref: "blocks.c.output" } } } },
    {
      id: "sq",
      type: "ripple:eq/sq",
      // The branch's item is an input of sq: a changed item must re-run its branch.
      params: { needs: { b: { $ref: "blocks.b.output" } }, iteration: { index: { $ref: "parallel.index" }, item: { $ref: "parallel.item" } } }
    },
    {
      id: "d",
      type: "ripple:eq/d",
      params: {
        needs: {
          b: { $ref: "blocks.b.output" },
          c: { $ref: "blocks.c.output" },
          e: { $ref: "blocks.e.output" },
          each: { $ref: "blocks.each.output" }
        }
      }
    }
  ],
  edges: [
    { source: "trigger", target: "a" },
    { source: "a", target: "b" },
    { source: "a", target: "c" },
    { source: "b", target: "r" },
    // `e` reads `c` but sits behind the router: c must be upstream of r, not an edge into e.
    { source: "c", target: "r" },
    { source: "r", target: "e", handle: "even" },
    { source: "r", target: "o", handle: "odd" },
    { source: "c", target: "items" },
    { source: "items", target: "each" },
    // `sq` reads `b` from inside the parallel: b must be upstream of the parallel.
    { source: "b", target: "each" },
    { source: "b", target: "d" },
    { source: "c", target: "d" },
    { source: "e", target: "d" },
    { source: "each", target: "d" }
  ],
  parallels: [{ id: "each", body: ["sq"], kind: "collection", items: { $ref: "blocks.items.output" } }],
  outputs: ["d"]
})

const build = (config: Config, calls: Calls) => {
  const built = codeFirst(config, calls).build()
  if (Result.isFailure(built)) throw new Error(String(built.failure))
  return built.success
}

const planOk = (plan: Result.Result<Plan.Plan, Plan.PlanError>) => {
  if (Result.isFailure(plan)) throw new Error(String(plan.failure))
  const { reasons, rerun, resets, reused, start } = plan.success
  return { rerun, reused, start, resets, reasons }
}

const nodeOf = (instance: string): string => NodeId.format(Result.getOrThrow(NodeId.parseInstance(instance)).node)

const essence = (nodes: Snapshot.Snapshot["nodes"]) =>
  Object.fromEntries(Object.entries(nodes).map(([id, r]) => [id, [r.status, r.output ?? null, r.decision ?? null] as const]).sort())

const layerOf = (handlers: Layer.Layer<Handler.Handlers>) =>
  Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(handlers))

const runToEnd = (workflow: Workflow.Workflow, input: { readonly [key: string]: Json }) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const { runId } = yield* runs.start(workflow, input)
    assert.strictEqual(yield* runs.wait(runId), "completed")
    return { runId, snapshot: yield* store.snapshot(runId) }
  })

/** Runs `before` on a fresh in-memory store, then run-from-block with `after`; returns both snapshots. */
const runFromOnce = (
  before: Workflow.Workflow,
  after: Workflow.Workflow,
  target: string,
  input: { readonly [key: string]: Json },
  handlers: Layer.Layer<Handler.Handlers>,
  calls: Calls
) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const first = yield* runs.start(before, input)
    assert.strictEqual(yield* runs.wait(first.runId), "completed")
    const prior = yield* store.snapshot(first.runId)
    calls.clear()
    const again = yield* runs.runFrom(after, { target, run: first.runId })
    assert.strictEqual(yield* runs.wait(again.runId), "completed")
    return { prior, plan: again.plan, snapshot: yield* store.snapshot(again.runId), executed: new Map(calls) }
  }).pipe(Effect.provide(layerOf(handlers)))

const config = fc.record({ a: fc.integer({ min: -3, max: 3 }), b: fc.integer({ min: 1, max: 3 }), c: fc.integer({ min: 0, max: 2 }) })
const targets = ["trigger", "a", "b", "c", "r", "e", "o", "items", "each", "sq", "d"] as const

describe("Ripple builder: code-first and hand-written JSON are the same workflow", () => {
  it("the translation equals the hand-written workflow, which decodes", () => {
    fc.assert(
      fc.property(config, (cfg) => {
        const built = build(cfg, new Map())
        assert.deepStrictEqual(built.workflow, handWritten(cfg))
        assert.isTrue(Result.isSuccess(Workflow.decode(handWritten(cfg))))
      })
    )
  })

  it("full plans agree", () => {
    fc.assert(
      fc.property(config, (cfg) => {
        assert.deepStrictEqual(planOk(Plan.full(build(cfg, new Map()).workflow)), planOk(Plan.full(handWritten(cfg))))
      })
    )
  })

  it.effect("run-from-block plans agree for any edit and every target, against the snapshot of a real run", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(config, config, fc.integer({ min: -5, max: 5 }), async (before, after, n) => {
          const prior = build(before, new Map())
          const snapshot = await Effect.runPromise(
            Effect.map(runToEnd(prior.workflow, { n }), (run) => run.snapshot).pipe(Effect.provide(layerOf(prior.handlers)))
          )
          const code = build(after, new Map()).workflow
          for (const target of targets) {
            assert.deepStrictEqual(
              planOk(Plan.runFrom({ workflow: code, snapshot, target })),
              planOk(Plan.runFrom({ workflow: handWritten(after), snapshot, target })),
              target
            )
          }
        }),
        { numRuns: 40 }
      )
    ))

  it.effect("runs agree: full runs, run-from-block runs and their plans; a run-from executes exactly the plan's re-run steps", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(config, config, fc.constantFrom(...targets), fc.integer({ min: -5, max: 5 }), async (before, after, target, n) => {
          const codeCalls: Calls = new Map()
          const jsonCalls: Calls = new Map()
          const codeBuilt = build(after, codeCalls)
          const jsonHandlers = build(after, jsonCalls).handlers
          const code = await Effect.runPromise(runFromOnce(build(before, codeCalls).workflow, codeBuilt.workflow, target, { n }, codeBuilt.handlers, codeCalls))
          const json = await Effect.runPromise(runFromOnce(handWritten(before), handWritten(after), target, { n }, jsonHandlers, jsonCalls))
          assert.deepStrictEqual(essence(code.prior.nodes), essence(json.prior.nodes))
          assert.deepStrictEqual(essence(code.snapshot.nodes), essence(json.snapshot.nodes))
          assert.deepStrictEqual([code.plan.rerun, code.plan.reused, code.plan.start], [json.plan.rerun, json.plan.reused, json.plan.start])
          assert.deepStrictEqual(code.executed, json.executed)
          // Only instances of re-run nodes execute (once each); every reused instance keeps its prior output.
          const rerun = new Set(code.plan.rerun)
          for (const [instance, times] of code.executed) {
            assert.isTrue(rerun.has(nodeOf(instance)), `${instance} executed but the plan reuses it`)
            assert.strictEqual(times, 1, instance)
          }
          const reused = new Set(code.plan.reused)
          for (const [instance, record] of Object.entries(code.snapshot.nodes)) {
            if (!reused.has(nodeOf(instance))) continue
            assert.strictEqual(record.reusedFrom, code.prior.runId, instance)
            assert.deepStrictEqual(record.output, code.prior.nodes[instance]?.output, instance)
          }
          const d = code.snapshot.nodes["d"]?.output
          const a = n + after.a
          const [b, c] = [a * after.b, a - after.c]
          // Stored as JSON reads it back: a product of -1 and 0 is 0, not -0.
          const expected = { b, c, e: b % 2 === 0 ? c * 2 : null, each: [{ sq: c * b }, { sq: (c + 1) * b }] }
          assert.deepStrictEqual(d, JSON.parse(JSON.stringify(expected)))
        }),
        { numRuns: 60 }
      )
    ))

  it.effect("editing one step's config re-runs that step and its downstream only", () =>
    Effect.gen(function*() {
      const calls: Calls = new Map()
      const before = build({ a: 1, b: 2, c: 0 }, calls)
      const after = build({ a: 1, b: 2, c: 1 }, calls)
      const { executed, plan, snapshot } = yield* runFromOnce(before.workflow, after.workflow, "c", { n: 1 }, after.handlers, calls)
      assert.deepStrictEqual([...plan.rerun].sort(), ["c", "d", "e", "each#end", "each#start", "items", "r", "sq"])
      assert.deepStrictEqual([...plan.reused].sort(), ["a", "b", "trigger"])
      // o does not lead to the observed output d: pruned, neither run nor reused.
      assert.deepStrictEqual([...plan.pruned], ["o"])
      // r is planned (c is upstream of it, through the edge that gates e) but its own inputs did not
      // change, so the engine's early cutoff reuses its decision instead of calling it again. Both
      // branches of the parallel re-run: their items changed.
      assert.deepStrictEqual([...executed.keys()].sort(), ["c", "d", "e", "items", "sq@0", "sq@1"])
      assert.deepStrictEqual(snapshot.nodes["d"]?.output, { b: 4, c: 1, e: 2, each: [{ sq: 4 }, { sq: 8 }] })
    }))
})
