/**
 * The memory store's journal as the engine writes it: a call of many entries (a wide wave) is kept
 * as the engine's array, calls of few entries are copied into the store's own array, and a read
 * folds them all in the order they were made.
 */
import { assert, describe, it } from "@effect/vitest"
import { Plan, type Workflow } from "@ripple/core"
import { Engine, Handler, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"

const width = 24

/** `start`, then `width` blocks that each take a different number of scheduler turns, then `join`. */
const fan: Workflow.Workflow = {
  id: "fan",
  blocks: [
    { id: "start", type: "now" },
    ...Array.from({ length: width }, (_, i) => ({ id: `w${i}`, type: "later", params: { turns: i } })),
    { id: "join", type: "now" }
  ],
  edges: Array.from({ length: width }, (_, i) => [{ source: "start", target: `w${i}` }, { source: `w${i}`, target: "join" }]).flat()
}

const handlers = Handler.layer({
  now: () => Effect.succeed(null),
  later: (ctx) =>
    Effect.gen(function*() {
      for (let k = 0; k < (ctx.inputs["turns"] as number); k++) yield* Effect.yieldNow
      return ctx.inputs["turns"]!
    })
})

describe("memory store journal", () => {
  it.effect("folds the starts of a wide wave, written in one call, before the completions that each came in a later call", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const plan = Result.getOrThrow(Plan.full(fan))
      const version = yield* store.saveWorkflow(fan)
      const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
      const status = yield* Engine.execute({ runId: run.id, mode: "full", plan, input: {}, sourceRun: undefined, publish: () => {} }).pipe(
        Effect.provideService(RunStore.RunStore, store),
        Effect.provide(handlers)
      )
      assert.strictEqual(status, "completed")
      const { nodes } = yield* store.snapshot(run.id)
      for (let i = 0; i < width; i++) {
        assert.strictEqual(nodes[`w${i}`]?.status, "completed", `w${i}`)
        assert.strictEqual(nodes[`w${i}`]?.output, i)
      }
      assert.strictEqual(nodes["join"]?.status, "completed")
    }))
})
