import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { echoInput } from "../helpers/echoInput.ts"

type Json = Workflow.Json

const layer = (handlers: Readonly<Record<string, Handler.Handler>>) =>
  Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers)))

const squares = (calls: Array<string>): Handler.Handler => (ctx) =>
  Effect.sync(() => {
    calls.push(ctx.node)
    const item = (ctx.parallel?.item ?? ctx.loop?.item ?? 0) as number
    return item * item
  })

const listed = (items: ReadonlyArray<Json>, container: "loop" | "parallel"): Workflow.Workflow => ({
  id: "wf",
  blocks: [
    { id: "list", type: "value", params: { value: [...items] } },
    { id: "sq", type: "square" }
  ],
  edges: [{ source: "list", target: "each" }],
  ...(container === "parallel"
    ? { parallels: [{ id: "each", kind: "collection" as const, items: { $ref: "blocks.list.output" }, body: ["sq"] }] }
    : { loops: [{ id: "each", kind: "forEach" as const, items: { $ref: "blocks.list.output" }, body: ["sq"] }] })
})

const rerun = (container: "loop" | "parallel", calls: Array<string>) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const first = yield* runs.start(listed([1, 2], container))
    assert.strictEqual(yield* runs.wait(first.runId), "completed")
    calls.length = 0
    const again = yield* runs.runFrom(listed([3, 4], container), { target: "list", run: first.runId })
    assert.strictEqual(yield* runs.wait(again.runId), "completed")
    const snapshot = yield* store.snapshot(again.runId)
    return { snapshot, reasons: yield* store.reasons(again.runId) }
  })

describe("Early cutoff and the iteration context", () => {
  it.effect("a parallel body that reads ctx.parallel.item (not through a $ref) re-runs when its item changed", () => {
    const calls: Array<string> = []
    return Effect.gen(function*() {
      const { reasons, snapshot } = yield* rerun("parallel", calls)
      assert.strictEqual(snapshot.nodes["sq@0"]?.output, 9)
      assert.strictEqual(snapshot.nodes["sq@1"]?.output, 16)
      assert.deepStrictEqual(snapshot.nodes["each#end"]?.output, [{ sq: 9 }, { sq: 16 }])
      assert.deepStrictEqual(calls.sort(), ["sq@0", "sq@1"])
      assert.notDeepEqual(reasons["sq@0"], ["cutoff"])
    }).pipe(Effect.provide(layer({ square: squares(calls) })))
  })

  it.effect("a loop body that reads ctx.loop.item re-runs when its item changed", () => {
    const calls: Array<string> = []
    return Effect.gen(function*() {
      const { snapshot } = yield* rerun("loop", calls)
      assert.deepStrictEqual(snapshot.nodes["each#end"]?.output, [{ sq: 9 }, { sq: 16 }])
      assert.deepStrictEqual(calls.sort(), ["sq@0", "sq@1"])
    }).pipe(Effect.provide(layer({ square: squares(calls) })))
  })

  it.effect("a branch whose item did not change is still cut off", () => {
    const calls: Array<string> = []
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const first = yield* runs.start(listed([1, 2], "parallel"))
      yield* runs.wait(first.runId)
      calls.length = 0
      const again = yield* runs.runFrom(listed([1, 5], "parallel"), { target: "list", run: first.runId })
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      const snapshot = yield* store.snapshot(again.runId)
      assert.deepStrictEqual(snapshot.nodes["each#end"]?.output, [{ sq: 1 }, { sq: 25 }])
      assert.deepStrictEqual(calls, ["sq@1"])
    }).pipe(Effect.provide(layer({ square: squares(calls) })))
  })
})

describe("Early cutoff and the enclosing containers", () => {
  /** Outputs what a handler sees of its iteration: the innermost loop's and parallel's index and item. */
  const context: Handler.Handler = (ctx) =>
    Effect.succeed({
      loop: ctx.loop === undefined ? null : { index: ctx.loop.index, item: ctx.loop.item },
      parallel: ctx.parallel === undefined ? null : { index: ctx.parallel.index, item: ctx.parallel.item }
    })

  /** The one block `s`, in `containers`. */
  const only = (containers: Pick<Workflow.Workflow, "loops" | "parallels">): Workflow.Workflow => ({
    id: "wf",
    blocks: [{ id: "s", type: "context" }],
    edges: [],
    ...containers,
    outputs: ["s"]
  })

  /** `s@0` after a run of `before` then a run-from of `after` from `target`, and after a full run of `after`. */
  const rerun = (before: Workflow.Workflow, after: Workflow.Workflow, target: string) =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const first = yield* runs.start(before)
      assert.strictEqual(yield* runs.wait(first.runId), "completed")
      const again = yield* runs.runFrom(after, { target, run: first.runId })
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      const fresh = yield* runs.start(after)
      assert.strictEqual(yield* runs.wait(fresh.runId), "completed")
      return {
        incremental: (yield* store.snapshot(again.runId)).nodes["s@0"],
        fresh: (yield* store.snapshot(fresh.runId)).nodes["s@0"]
      }
    }).pipe(Effect.provide(layer({ context })))

  it.effect("a loop that changes from forEach over [7] to count 1 re-runs a body block reading ctx.loop", () =>
    Effect.gen(function*() {
      const { fresh, incremental } = yield* rerun(
        only({ loops: [{ id: "L", kind: "forEach", items: [7], body: ["s"] }] }),
        only({ loops: [{ id: "L", kind: "count", count: 1, body: ["s"] }] }),
        "L"
      )
      assert.deepStrictEqual(fresh?.output, { loop: { index: 0, item: null }, parallel: null })
      assert.deepStrictEqual(incremental?.output, fresh?.output)
      assert.isUndefined(incremental?.reusedFrom)
    }))

  it.effect("a block that moves from a parallel into a loop at the same depth (same instance id) re-runs", () =>
    Effect.gen(function*() {
      const { fresh, incremental } = yield* rerun(
        only({ parallels: [{ id: "P", kind: "count", count: 1, body: ["s"] }] }),
        only({ loops: [{ id: "L", kind: "count", count: 1, body: ["s"] }] }),
        "L"
      )
      assert.deepStrictEqual(fresh?.output, { loop: { index: 0, item: null }, parallel: null })
      assert.deepStrictEqual(incremental?.output, fresh?.output)
      assert.isUndefined(incremental?.reusedFrom)
    }))
})

describe("A run from a block with a new run input", () => {
  it.effect("executes the trigger again, and what reads its output sees the new input; with the same input the trigger is reused", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const first = yield* runs.start(echoInput, { x: 1 })
      assert.strictEqual(yield* runs.wait(first.runId), "completed")
      const changed = yield* runs.runFrom(echoInput, { target: "out", run: first.runId, input: { x: 2 } })
      assert.strictEqual(yield* runs.wait(changed.runId), "completed")
      const after = yield* store.snapshot(changed.runId)
      assert.deepStrictEqual(after.nodes["trigger"]?.output, { x: 2 })
      assert.isUndefined(after.nodes["trigger"]?.reusedFrom)
      assert.strictEqual(after.nodes["out"]?.output, 2)
      const same = yield* runs.runFrom(echoInput, { target: "out", run: changed.runId, input: { x: 2 } })
      assert.strictEqual(yield* runs.wait(same.runId), "completed")
      const again = yield* store.snapshot(same.runId)
      assert.strictEqual(again.nodes["trigger"]?.reusedFrom, changed.runId)
      assert.strictEqual(again.nodes["out"]?.output, 2)
    }).pipe(Effect.provide(layer(Builtins.handlers))))
})
