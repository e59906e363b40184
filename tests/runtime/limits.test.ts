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

describe("run-time limits on what data decides", () => {
  const fanOut = (kind: "loop" | "parallel"): Workflow.Workflow => ({
    id: "fan",
    inputs: { xs: { type: "array" } },
    blocks: [{ id: "start", type: "trigger" }, { id: "each", type: "value", params: { value: 1 } }],
    edges: [{ source: "start", target: "over" }],
    ...(kind === "loop"
      ? { loops: [{ id: "over", kind: "forEach", body: ["each"], items: { $ref: "input.xs" } }] }
      : { parallels: [{ id: "over", kind: "collection", body: ["each"], items: { $ref: "input.xs" } }] })
  })
  const limited = (limits: Partial<Workflow.Limits>) =>
    Runs.layer({ limits }).pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer({})))

  it.effect("forEach items and collection branches past the caps fail the container before any of it runs", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const cases: ReadonlyArray<["loop" | "parallel", number, string]> = [
        ["loop", 4, "maxIterations (3)"],
        ["parallel", 6, "maxBranches (5)"],
        ["parallel", 5, "maxNodes (4)"]
      ]
      for (const [kind, length, cap] of cases) {
        const { runId } = yield* runs.start(fanOut(kind), { xs: Array.from({ length }, (_, i) => i) })
        assert.strictEqual(yield* runs.wait(runId), "failed")
        const snapshot = yield* store.snapshot(runId)
        const message = snapshot.nodes["over#start"]?.error?.message ?? ""
        assert.include(message, cap)
        assert.include(message, "RIPPLE_MAX_")
        assert.isFalse(Object.keys(snapshot.nodes).some((node) => node.startsWith("each")), "no body instance ran")
      }
      const { runId } = yield* runs.start(fanOut("loop"), { xs: [1, 2, 3] })
      assert.strictEqual(yield* runs.wait(runId), "completed")
    }).pipe(Effect.provide(limited({ maxIterations: 3, maxBranches: 5, maxNodes: 4 }))))
})
