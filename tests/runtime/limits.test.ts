/**
 * What decode cannot see (issue 15): a time read through a reference is checked when the block
 * runs, and a wake time past the range of `Date` fails the block with a message instead of a
 * `RangeError` that would leave an unreadable run.
 */
import { assert, describe, it } from "@effect/vitest"
import { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const layer = Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer({})))

const sleepUntilInput: Workflow.Workflow = {
  id: "nap",
  inputs: { at: { type: "json" } },
  blocks: [{ id: "start", type: "trigger" }, { id: "nap", type: "sleep", params: { until: { $ref: "input.at" } } }],
  edges: [{ source: "start", target: "nap" }]
}

describe("run-time limits", () => {
  it.effect("a referenced wake time past the last date fails the sleep block with a message", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      for (const at of [Workflow.maxTime + 1, 1e17]) {
        const { runId } = yield* runs.start(sleepUntilInput, { at })
        assert.strictEqual(yield* runs.wait(runId), "failed")
        const error = (yield* store.snapshot(runId)).nodes["nap"]?.error
        assert.include(error?.message ?? "", "past the last date")
        // The stored run reads back (a wake time past `Date` broke `ripple show`).
        assert.strictEqual((yield* runs.status(runId)).status, "failed")
      }
    }).pipe(Effect.provide(layer)))
})
