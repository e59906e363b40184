import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, Ripple, Runs, RunStore } from "@ripple/runtime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

type Json = Workflow.Json

// The child: doubles its input `n` (a handler reads the run input, so the inline workflow holds no `$ref`).
const doubling: Workflow.Workflow = {
  id: "doubling",
  inputs: { n: { type: "number" } },
  blocks: [{ id: "double", type: "double" }],
  edges: []
}

const parentOf = (child: Json): Workflow.Workflow => ({
  id: "parent",
  blocks: [
    { id: "n", type: "value", params: { value: 21 } },
    { id: "sub", type: "child", params: { workflow: child, input: { n: { $ref: "blocks.n.output" } } } },
    { id: "after", type: "value", params: { value: { $ref: "blocks.sub.output.double" } } }
  ],
  edges: [{ source: "n", target: "sub" }, { source: "sub", target: "after" }]
})

const layer = (handlers: Readonly<Record<string, Handler.Handler>>) =>
  Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers)))

const double: Handler.Handler = (ctx) => Effect.succeed((ctx.input["n"] as number) * 2)

/** Waits until the run has stopped executing and reached one of `statuses` (a parent wakes when its child ends). */
const settled = (runId: string, statuses: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    for (let i = 0; i < 200; i++) {
      const status = yield* runs.wait(runId)
      if (statuses.includes(status)) return status
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    }
    return yield* runs.wait(runId)
  })

describe("Child workflows", () => {
  it.effect("a process crashes while a parent and its child execute: resuming the parent resumes the child too", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const over = (handlers: Readonly<Record<string, Handler.Handler>>) =>
        Runs.layer().pipe(Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)), Layer.provideMerge(Handler.layer(handlers)))
      // Besides its child, the parent runs a slow block of its own, so it is still running at the crash.
      const base = parentOf(doubling as unknown as Json)
      const parent: Workflow.Workflow = {
        ...base,
        blocks: [...base.blocks, { id: "slow", type: "slow" }],
        edges: [...base.edges, { source: "n", target: "slow" }]
      }
      const inChild = yield* Deferred.make<void>()
      const inSlow = yield* Deferred.make<void>()
      const hang = (entered: Deferred.Deferred<void>): Handler.Handler => () => Effect.andThen(Deferred.succeed(entered, undefined), Effect.never)
      // Closing the first process's layer leaves both runs running, as a crash would.
      const parentId = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(parent)
        yield* Deferred.await(inChild)
        yield* Deferred.await(inSlow)
        return runId
      }).pipe(Effect.provide(over({ double: hang(inChild), slow: hang(inSlow) })))
      const [child] = yield* store.children(parentId)
      assert.strictEqual(child?.status, "running")
      assert.strictEqual((yield* store.getRun(parentId)).status, "running")
      const status = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        yield* runs.resume(parentId)
        return yield* settled(parentId, ["completed", "failed"])
      }).pipe(Effect.provide(over({ double, slow: () => Effect.succeed("done") })))
      assert.strictEqual(status, "completed")
      assert.strictEqual((yield* store.snapshot(parentId)).nodes["after"]?.output, 42)
      // The same child finished: none was started twice.
      assert.deepStrictEqual((yield* store.children(parentId)).map((c) => [c.runId, c.status]), [[child!.runId, "completed"]])
    }))

  it.effect("a child block starts a linked child run; its observed outputs become the block's output", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const { runId } = yield* runs.start(parentOf(doubling as unknown as Json))
      assert.strictEqual(yield* settled(runId, ["completed", "failed"]), "completed")
      const snapshot = yield* store.snapshot(runId)
      assert.deepStrictEqual(snapshot.nodes["sub"]?.output, { double: 42 })
      assert.strictEqual(snapshot.nodes["after"]?.output, 42)
      const info = yield* runs.status(runId)
      assert.strictEqual(info.children.length, 1)
      const child = info.children[0]!
      assert.deepStrictEqual([child.node, child.status], ["sub", "completed"])
      const childRun = yield* store.getRun(child.runId)
      assert.strictEqual(childRun.parentRun, runId)
      assert.strictEqual(childRun.parentNode, "sub")
      assert.deepStrictEqual(childRun.input, { n: 21 })
    }).pipe(Effect.provide(layer({ double }))))

  it.effect("a child given by a saved version runs that version; a failed child fails the block", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const version = yield* store.saveWorkflow(doubling)
      const ok = yield* runs.start(parentOf(version))
      assert.strictEqual(yield* settled(ok.runId, ["completed", "failed"]), "completed")
      assert.strictEqual((yield* store.snapshot(ok.runId)).nodes["after"]?.output, 42)
      const failing = yield* runs.start(parentOf({ ...doubling, blocks: [{ id: "double", type: "boom" }] } as unknown as Json))
      assert.strictEqual(yield* settled(failing.runId, ["completed", "failed"]), "failed")
      const sub = (yield* store.snapshot(failing.runId)).nodes["sub"]
      assert.strictEqual(sub?.status, "failed")
      assert.match(sub?.error?.message ?? "", /child run .* failed/)
      const missing = yield* runs.start(parentOf("ffffffffffffffff"))
      assert.strictEqual(yield* settled(missing.runId, ["completed", "failed"]), "failed")
      assert.match((yield* store.snapshot(missing.runId)).nodes["sub"]?.error?.message ?? "", /no saved workflow version/)
    }).pipe(Effect.provide(layer({ double, boom: () => Effect.fail(BlockError.permanent("boom")) }))))

  it.effect("cancelling a parent cancels its descendants", () => {
    const gate = Deferred.makeUnsafe<void>()
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const grandchild: Workflow.Workflow = { id: "leaf", blocks: [{ id: "hang", type: "hang" }], edges: [] }
      const middle: Workflow.Workflow = {
        id: "middle",
        blocks: [{ id: "inner", type: "child", params: { workflow: grandchild as unknown as Json } }],
        edges: []
      }
      const top: Workflow.Workflow = {
        id: "top",
        blocks: [{ id: "outer", type: "child", params: { workflow: middle as unknown as Json } }],
        edges: []
      }
      const { runId } = yield* runs.start(top)
      assert.strictEqual(yield* settled(runId, ["suspended"]), "suspended")
      for (let i = 0; i < 50 && (yield* store.children(runId)).length === 0; i++) yield* Effect.yieldNow
      const [mid] = yield* store.children(runId)
      for (let i = 0; i < 50 && (yield* store.children(mid!.runId)).length === 0; i++) yield* Effect.yieldNow
      const [leaf] = yield* store.children(mid!.runId)
      assert.isDefined(leaf)
      assert.deepStrictEqual(yield* runs.cancel(runId), { _tag: "Cancelled", status: "cancelled" })
      assert.strictEqual((yield* store.getRun(mid!.runId)).status, "cancelled")
      assert.strictEqual((yield* store.getRun(leaf!.runId)).status, "cancelled")
    }).pipe(Effect.provide(layer({ hang: () => Effect.as(Deferred.await(gate), null) })))
  })
  it.effect("the builder's child step runs a built child (its handlers joined to the parent's) and reads its outputs", () => {
    const inner = Ripple.workflow("inner", { input: Schema.Struct({ n: Schema.Number }) })
      .step("double", (_, ctx) => Effect.succeed(ctx.input.n * 2))
      .output("double")
      .build()
    if (Result.isFailure(inner)) return Effect.die(inner.failure)
    const outer = Ripple.workflow("outer")
      .step("n", () => Effect.succeed(21))
      .child("sub", inner.success, { input: { n: "n" } })
      .step("after", { needs: ["sub"], handler: ({ sub }) => Effect.succeed(sub) })
      .build()
    if (Result.isFailure(outer)) return Effect.die(outer.failure)
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const { runId } = yield* runs.start(outer.success.workflow)
      assert.strictEqual(yield* settled(runId, ["completed", "failed"]), "completed")
      assert.deepStrictEqual((yield* store.snapshot(runId)).nodes["after"]?.output, { double: 42 })
    }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(outer.success.handlers))))
  })
})
