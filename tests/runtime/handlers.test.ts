import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, Runs, RunStore } from "@ripple/runtime"
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

/**
 * JavaScript handlers (a `--handlers` module, which no type checker reads) return what their
 * authors are used to: a Promise or the output itself. Each is taken as the output; a rejection
 * is a block failure (retried when retryable), never an unhandled rejection.
 */
describe("Handlers written without Effect", () => {
  const chain = (type: string, retry?: Workflow.RetryPolicy): Workflow.Workflow => ({
    id: `js-${type}`,
    blocks: [
      { id: "a", type, ...(retry === undefined ? {} : { retry }) },
      { id: "b", type: "value", params: { value: { $ref: "blocks.a.output" } } }
    ],
    edges: [{ source: "a", target: "b" }]
  })
  let calls = 0
  const untyped = {
    plain: () => ({ n: 1 }),
    promised: async () => ({ n: 2 }),
    success: () => ({ _tag: "Success", value: 4 }),
    failure: () => ({ _tag: "Failure", cause: "none" }),
    flaky: async () => {
      calls++
      if (calls < 2) throw new Error("connection reset")
      return { n: 3 }
    },
    refused: () => Promise.reject(new Error("quota exceeded")),
    permanent: () => Promise.reject(BlockError.permanent("bad params"))
  } as unknown as Readonly<Record<string, Handler.Handler>>
  const layer = Runs.layer().pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, Handler.layer(untyped))))
  const outcome = (workflow: Workflow.Workflow) =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(workflow)
      const status = yield* runs.wait(runId)
      return { status, nodes: (yield* (yield* RunStore.RunStore).snapshot(runId)).nodes }
    })

  it.live("a plain value or a Promise is the output", () =>
    Effect.gen(function*() {
      for (const [type, n] of [["plain", 1], ["promised", 2]] as const) {
        const { status, nodes } = yield* outcome(chain(type))
        assert.strictEqual(status, "completed", type)
        assert.deepStrictEqual(nodes["b"]?.output, { n }, type)
      }
    }).pipe(Effect.provide(layer)))

  // The engine tells an `Exit` a handler returned (it answered at once) by more than its tag.
  it.live("a plain object tagged like an exit is the output", () =>
    Effect.gen(function*() {
      for (const [type, output] of [["success", { _tag: "Success", value: 4 }], ["failure", { _tag: "Failure", cause: "none" }]] as const) {
        const { status, nodes } = yield* outcome(chain(type))
        assert.strictEqual(status, "completed", type)
        assert.deepStrictEqual(nodes["b"]?.output, output, type)
      }
    }).pipe(Effect.provide(layer)))

  it.live("a rejection fails the block, retryable unless it is a permanent BlockError, and is retried by its policy", () =>
    Effect.gen(function*() {
      calls = 0
      const retried = yield* outcome(chain("flaky", { maxAttempts: 3, initialDelayMs: 1 }))
      assert.strictEqual(retried.status, "completed")
      assert.strictEqual(retried.nodes["a"]?.attempt, 2)
      const refused = yield* outcome(chain("refused"))
      assert.strictEqual(refused.status, "failed")
      assert.deepStrictEqual(refused.nodes["a"]?.error, { message: "quota exceeded", retryable: true })
      const permanent = yield* outcome(chain("permanent", { maxAttempts: 3, initialDelayMs: 1 }))
      assert.strictEqual(permanent.nodes["a"]?.attempt, 1)
      assert.deepStrictEqual(permanent.nodes["a"]?.error, { message: "bad params", retryable: false })
    }).pipe(Effect.provide(layer)))
})
