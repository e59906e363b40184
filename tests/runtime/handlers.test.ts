import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

class Greeter extends Context.Service<Greeter, { readonly greet: (name: string) => string }>()("test/Greeter") {}

const greet: Handler.Handler<Greeter> = (ctx) =>
  Effect.gen(function*() {
    const greeter = yield* Greeter
    return greeter.greet(String(ctx.inputs["name"]))
  })

const wf: Workflow.Workflow = {
  id: "handlers",
  blocks: [
    { id: "g", type: "greet", params: { name: "Ada" } },
    { id: "v", type: "value", params: { value: 1 } }
  ],
  edges: []
}

const run = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore
  const { runId } = yield* runs.start(wf)
  assert.strictEqual(yield* runs.wait(runId), "completed")
  return (yield* store.snapshot(runId)).nodes
})

describe("Handler registry", () => {
  it.effect("app handlers join the built-ins, their requirements provided once by the layer", () =>
    Effect.gen(function*() {
      const nodes = yield* run
      assert.strictEqual(nodes["g"]?.output, "Hello, Ada")
      assert.strictEqual(nodes["v"]?.output, 1)
    }).pipe(
      Effect.provide(
        Runs.layer().pipe(
          Layer.provideMerge(RunStore.layerMemory),
          Layer.provideMerge(Handler.layer({ greet }).pipe(Layer.provide(Layer.succeed(Greeter, { greet: (n) => `Hello, ${n}` }))))
        )
      )
    ))

  it.effect("an app handler replaces a built-in of the same type", () =>
    Effect.gen(function*() {
      const handlers = yield* Handler.Handlers
      assert.isDefined(handlers.get("router"))
      const nodes = yield* run
      assert.strictEqual(nodes["v"]?.output, "overridden")
    }).pipe(
      Effect.provide(
        Runs.layer().pipe(
          Layer.provideMerge(RunStore.layerMemory),
          Layer.provideMerge(Handler.layer({ greet: () => Effect.succeed("hi"), value: () => Effect.succeed("overridden") }))
        )
      )
    ))

  it.effect("the built-ins layer knows exactly the built-in types", () =>
    Effect.gen(function*() {
      const handlers = yield* Handler.Handlers
      for (const type of ["trigger", "value", "template", "condition", "router", "response", "fail"]) {
        assert.isDefined(handlers.get(type), type)
      }
      assert.isUndefined(handlers.get("greet"))
    }).pipe(Effect.provide(Handler.layerBuiltins)))
})
