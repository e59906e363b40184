import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const workflow: Workflow.Workflow = {
  id: "shutdown",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "slow", type: "slow" },
    { id: "out", type: "response", params: { value: { $ref: "blocks.slow.output" } } }
  ],
  edges: [
    { source: "start", target: "slow" },
    { source: "slow", target: "out" }
  ]
}

// Two processes' worth of Runs over one store: the first goes away mid-run, the second resumes.
const runsOver = (store: RunStore.RunStore["Service"], slow: Handler.Handler) =>
  Runs.layer().pipe(
    Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
    Layer.provideMerge(Handler.layer({ slow }))
  )

describe("Runs shutdown", () => {
  it.effect("closing the layer leaves a running run resumable; cancel still cancels", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const entered = yield* Deferred.make<void>()
      const hang: Handler.Handler = () => Effect.andThen(Deferred.succeed(entered, undefined), Effect.never)

      // Effect.provide builds the layer for this effect only: it closes when the effect ends.
      const runId = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const started = yield* runs.start(workflow)
        yield* Deferred.await(entered)
        return started.runId
      }).pipe(Effect.provide(runsOver(store, hang)))
      assert.strictEqual((yield* store.getRun(runId)).status, "running")

      const calls: Array<string> = []
      const quick: Handler.Handler = (ctx) => Effect.sync(() => calls.push(ctx.node)).pipe(Effect.as("done"))
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        yield* runs.resume(runId)
        assert.strictEqual(yield* runs.wait(runId), "completed")
      }).pipe(Effect.provide(runsOver(store, quick)))
      assert.deepStrictEqual(calls, ["slow"])
      assert.strictEqual((yield* store.snapshot(runId)).nodes.out?.output, "done")

      const again = yield* Deferred.make<void>()
      const hangAgain: Handler.Handler = () => Effect.andThen(Deferred.succeed(again, undefined), Effect.never)
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const started = yield* runs.start(workflow)
        yield* Deferred.await(again)
        assert.deepStrictEqual(yield* runs.cancel(started.runId), { _tag: "Cancelled", status: "cancelled" })
        assert.strictEqual((yield* store.getRun(started.runId)).status, "cancelled")
      }).pipe(Effect.provide(runsOver(store, hangAgain)))
    }))
})
