import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

type Json = Workflow.Json

const layer = (handlers: Readonly<Record<string, Handler.Handler>> = {}) =>
  Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers)))

const pipeline = (greeting: string): Workflow.Workflow => ({
  id: "pipeline",
  inputs: { name: { type: "string" } },
  blocks: [
    { id: "start", type: "trigger" },
    { id: "greeting", type: "value", params: { value: greeting } },
    { id: "name", type: "value", params: { value: { $ref: "input.name" } } },
    { id: "greet", type: "template", params: { template: "{{g}}, {{n}}", values: { g: { $ref: "blocks.greeting.output" }, n: { $ref: "blocks.name.output" } } } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.greet.output" } } },
    { id: "count", type: "value", params: { value: 1 } }
  ],
  edges: [
    { source: "start", target: "greeting" },
    { source: "start", target: "name" },
    { source: "greeting", target: "greet" },
    { source: "name", target: "greet" },
    { source: "greet", target: "out" },
    { source: "start", target: "count" }
  ]
})

describe("Runs.outputs and Runs.nodes", () => {
  it.effect("outputs are the observed outputs by block: the response, not the other sink", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(pipeline("Hello"), { name: "Ada" })
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.deepStrictEqual(yield* runs.outputs(runId), { out: "Hello, Ada" })
    }).pipe(Effect.provide(layer())))

  it.effect("a container observed as a sink is keyed by its id; an observed block that did not complete is null", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const workflow: Workflow.Workflow = {
        id: "looped",
        blocks: [
          { id: "a", type: "value", params: { value: { $ref: "loop.index" } } },
          { id: "pick", type: "condition", params: { left: 1, op: "gt", right: 2 } },
          { id: "never", type: "value", params: { value: "x" } }
        ],
        edges: [{ source: "pick", target: "never", handle: "true" }],
        loops: [{ id: "each", kind: "count", count: 2, body: ["a"] }]
      }
      const { runId } = yield* runs.start(workflow)
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.deepStrictEqual(yield* runs.outputs(runId), { each: [{ a: 0 }, { a: 1 }], never: null })
      const instances = yield* runs.node(runId, "a")
      assert.deepStrictEqual(instances.map((v) => [v.node, v.block, v.output]), [["a@0", "a", 0], ["a@1", "a", 1]])
      assert.deepStrictEqual((yield* runs.node(runId, "a@1")).map((v) => v.node), ["a@1"])
      assert.deepStrictEqual((yield* runs.node(runId, "each")).map((v) => v.node).sort(), ["each#end", "each#start"])
      const [never] = yield* runs.node(runId, "never")
      assert.deepStrictEqual([never?.status, never?.how, never?.reasons], ["skipped", "skipped", ["branch not taken"]])
    }).pipe(Effect.provide(layer())))

  it.effect("outputs equal what a child block gets from the completed child run", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      // The child greets its input through a handler (an inline workflow holds no `$ref` of its own).
      const child: Workflow.Workflow = {
        id: "greeter",
        inputs: { name: { type: "string" } },
        blocks: [{ id: "hello", type: "hello" }, { id: "spare", type: "value", params: { value: 0 } }],
        edges: [],
        outputs: ["hello"]
      }
      const parent: Workflow.Workflow = {
        id: "parent",
        blocks: [{ id: "sub", type: "child", params: { workflow: child as unknown as Json, input: { name: "Bo" } } }],
        edges: []
      }
      const { runId } = yield* runs.start(parent)
      const followed = yield* runs.follow(runId)
      assert.strictEqual([followed.status, ...followed.ancestors.map((a) => a.status)].at(-1), "completed")
      const [spawned] = yield* store.children(runId)
      const childOutputs = yield* runs.outputs(spawned!.runId)
      assert.deepStrictEqual(childOutputs, { hello: "Hi, Bo" })
      const [sub] = yield* runs.node(runId, "sub")
      assert.deepStrictEqual(sub?.output, childOutputs)
      assert.deepStrictEqual(yield* runs.outputs(runId), { sub: childOutputs })
    }).pipe(Effect.provide(layer({ hello: (ctx) => Effect.succeed(`Hi, ${String(ctx.input["name"])}`) }))))

  it.effect("nodes: resolved inputs, output, attempts, duration and why, for a full run and a run-from", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const first = yield* runs.start(pipeline("Hello"), { name: "Ada" })
      assert.strictEqual(yield* runs.wait(first.runId), "completed")
      const full = yield* runs.nodes(first.runId)
      assert.deepStrictEqual(full.map((v) => v.node).sort(), ["count", "greet", "greeting", "name", "out", "start"])
      const [greet] = yield* runs.node(first.runId, "greet")
      assert.deepStrictEqual(greet?.inputs, { template: "{{g}}, {{n}}", values: { g: "Hello", n: "Ada" } })
      assert.strictEqual(greet?.output, "Hello, Ada")
      assert.deepStrictEqual([greet?.status, greet?.how, greet?.reasons, greet?.attempts], ["completed", "executed", ["full run"], 1])
      assert.strictEqual(greet?.durationMs, greet!.finishedAt! - greet!.startedAt!)

      const second = yield* runs.runFrom(pipeline("Howdy"), { target: "greeting" })
      assert.strictEqual(yield* runs.wait(second.runId), "completed")
      const byNode = new Map((yield* runs.nodes(second.runId)).map((v) => [v.node, v]))
      const name = byNode.get("name")
      assert.deepStrictEqual([name?.how, name?.reusedFrom, name?.output, name?.durationMs], ["reused", first.runId, "Ada", undefined])
      assert.deepStrictEqual(name?.reasons, ["unchanged"])
      assert.deepStrictEqual([byNode.get("greeting")?.how, byNode.get("greeting")?.reasons], ["executed", ["target"]])
      assert.deepStrictEqual([byNode.get("greet")?.how, byNode.get("greet")?.reasons], ["executed", ["in the re-run scope"]])
      assert.deepStrictEqual(yield* runs.outputs(second.runId), { out: "Howdy, Ada" })
    }).pipe(Effect.provide(layer())))

  it.effect("node: a failed node's error and attempts; an unknown node is NodeNotFound", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const workflow: Workflow.Workflow = {
        id: "failing",
        blocks: [{ id: "flaky", type: "flaky", retry: { maxAttempts: 2, initialDelayMs: 0 } }],
        edges: []
      }
      const { runId } = yield* runs.start(workflow)
      assert.strictEqual(yield* runs.wait(runId), "failed")
      const [flaky] = yield* runs.node(runId, "flaky")
      assert.deepStrictEqual([flaky?.status, flaky?.attempts, flaky?.error?.message], ["failed", 2, "down"])
      const missing = yield* Effect.flip(runs.node(runId, "nope"))
      assert.deepStrictEqual([missing._tag, missing._tag === "NodeNotFound" ? missing.node : ""], ["NodeNotFound", "nope"])
      assert.strictEqual((yield* Effect.flip(runs.outputs("run-404")))._tag, "RunNotFound")
    }).pipe(Effect.provide(layer({ flaky: () => Effect.fail(new BlockError.BlockError({ message: "down" })) }))))

  it.effect("node: an instance path deeper or shallower than the node's containers is NodeNotFound; one that did not run is none", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const workflow: Workflow.Workflow = {
        id: "nested",
        blocks: [{ id: "top", type: "value", params: { value: 1 } }, { id: "inner", type: "value", params: { value: { $ref: "loop.index" } } }],
        loops: [{ id: "outer", kind: "count", count: 2, body: ["middle"] }, { id: "middle", kind: "count", count: 1, body: ["inner"] }],
        edges: [{ source: "top", target: "outer" }]
      }
      const { runId } = yield* runs.start(workflow)
      assert.strictEqual(yield* runs.wait(runId), "completed")
      // `inner` is two loops deep: `inner@i.j`; `middle`'s sentinels one deep; `top` and `outer` at the top.
      for (const node of ["top@5", "inner@0", "inner@0.0.0", "outer#end@0", "middle@0.0", "outer@1"]) {
        const missing = yield* Effect.flip(runs.node(runId, node))
        assert.deepStrictEqual([missing._tag, missing._tag === "NodeNotFound" ? missing.node : ""], ["NodeNotFound", node])
      }
      // Paths of the right depth: the ones that ran, and one past the loop's count that did not.
      assert.strictEqual((yield* runs.node(runId, "inner@1.0")).length, 1)
      assert.strictEqual((yield* runs.node(runId, "middle#end@1")).length, 1)
      assert.deepStrictEqual(yield* runs.node(runId, "inner@7.0"), [])
      assert.isAbove((yield* runs.node(runId, "inner")).length, 1)
    }).pipe(Effect.provide(layer(Builtins.handlers))))

  it.live("node: one journaled running is interrupted once the run is not executing any more, not while it is", () => {
    let holding = false
    const workflow: Workflow.Workflow = {
      id: "held",
      blocks: [{ id: "first", type: "value", params: { value: 1 } }, { id: "held", type: "hold" }],
      edges: [{ source: "first", target: "held" }]
    }
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(workflow)
      while (!holding) yield* Effect.sleep(5)
      const running = (yield* runs.node(runId, "held"))[0]
      assert.deepStrictEqual([running?.status, running?.interrupted], ["running", false])
      assert.strictEqual((yield* runs.cancel(runId))._tag, "Cancelled")
      const views = new Map((yield* runs.nodes(runId)).map((v) => [v.node, v]))
      assert.deepStrictEqual([views.get("held")?.status, views.get("held")?.interrupted], ["running", true])
      assert.deepStrictEqual([views.get("first")?.status, views.get("first")?.interrupted], ["completed", false])
    }).pipe(Effect.provide(layer({
      value: Builtins.handlers["value"]!,
      hold: () => Effect.andThen(Effect.sync(() => { holding = true }), Effect.never)
    })))
  })
})
