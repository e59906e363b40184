/**
 * A sleeper's timer that fires while the memory store is unavailable past its retries tries again
 * until the store is back, and wakes the run then (the scenario: tests/helpers/timerOutage.ts;
 * on PGlite and PostgreSQL: tests/sql/TimerFaults.test.ts).
 */
import { it } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TimerOutage from "../helpers/timerOutage.ts"

/** Whether the store is down, and how many calls failed because it was. */
interface Outage {
  down: boolean
  failed: number
}

// The memory store, whose calls fail with `StoreUnavailable` (a lost connection) while `outage.down` holds.
const unreliable = (store: RunStore.RunStore["Service"], outage: Outage): RunStore.RunStore["Service"] => {
  const wrapped: Record<string, unknown> = {}
  for (const [name, operation] of Object.entries(store) as ReadonlyArray<[string, unknown]>) {
    wrapped[name] = typeof operation !== "function" ? operation : (...args: ReadonlyArray<unknown>) => {
      const result: unknown = operation.apply(store, args)
      if (!Effect.isEffect(result)) return unreliable(result as RunStore.RunStore["Service"], outage)
      return Effect.suspend(() => {
        if (!outage.down) return result
        outage.failed++
        return Effect.fail(new RunStore.StoreUnavailable({ reason: new RunStore.ConnectionLost({ message: "down (injected)" }), operation: name }))
      })
    }
  }
  return RunStore.RunStore.of(wrapped as unknown as RunStore.RunStore["Service"])
}

it.effect("a sleeper whose timer fires while the memory store is down is woken once the store is back", () => {
  const outage: Outage = { down: false, failed: 0 }
  return TimerOutage.sleeperWokenAfterOutage(
    Layer.effect(RunStore.RunStore, Effect.map(RunStore.makeMemory, (memory) => unreliable(memory, outage))),
    {
      begin: Effect.sync(() => {
        outage.down = true
      }),
      end: Effect.sync(() => {
        outage.down = false
      }),
      failed: () => outage.failed,
      total: true
    }
  )
})
