/**
 * A sleeper's timer (the `Runs` layer's, on the effect `Clock`) that fires while the store is
 * unavailable past its retries tries again until the store is back, and wakes the run then: a
 * store outage at the wrong moment never leaves a sleeper suspended for good.
 */
import { assert, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"

/** Whether the store is down: every call fails with `StoreUnavailable` (a lost connection). */
interface Outage {
  down: boolean
}

// The memory store, whose calls fail while `outage.down` holds.
const unreliable = (store: RunStore.RunStore["Service"], outage: Outage): RunStore.RunStore["Service"] => {
  const wrapped: Record<string, unknown> = {}
  for (const [name, operation] of Object.entries(store) as ReadonlyArray<[string, unknown]>) {
    wrapped[name] = typeof operation !== "function" ? operation : (...args: ReadonlyArray<unknown>) => {
      const result: unknown = operation.apply(store, args)
      if (!Effect.isEffect(result)) return unreliable(result as RunStore.RunStore["Service"], outage)
      return Effect.suspend(() =>
        outage.down
          ? Effect.fail(new RunStore.StoreUnavailable({ reason: new RunStore.ConnectionLost({ message: "down (injected)" }), operation: name }))
          : result
      )
    }
  }
  return RunStore.RunStore.of(wrapped as unknown as RunStore.RunStore["Service"])
}

const nap: Workflow.Workflow = {
  id: "timer-faults",
  blocks: [{ id: "nap", type: "sleep", params: { ms: 1_000 } }, { id: "after", type: "value", params: { value: 1 } }],
  edges: [{ source: "nap", target: "after" }]
}

const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

it.effect("a sleeper whose timer fires while the store is down is woken once the store is back", () => {
  const outage: Outage = { down: false }
  const store = Layer.effect(RunStore.RunStore, Effect.map(RunStore.makeMemory, (memory) => unreliable(memory, outage)))
  return Effect.gen(function*() {
    yield* TestClock.setTime(10_000)
    const runs = yield* Runs.Runs
    const { runId } = yield* runs.start(nap)
    assert.strictEqual(yield* runs.wait(runId), "suspended")
    outage.down = true
    yield* TestClock.adjust(1_000)
    yield* settle
    outage.down = false
    const { getRun } = yield* RunStore.RunStore
    assert.strictEqual((yield* getRun(runId)).status, "suspended", "not woken while the store was down")
    yield* TestClock.adjust(60_000)
    yield* settle
    assert.strictEqual((yield* getRun(runId)).status, "completed")
  }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(store), Layer.provideMerge(Handler.layer({})))))
})
