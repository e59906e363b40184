/**
 * The memory store behind an outage switch: while it is down, every call fails with
 * `StoreUnavailable` (a lost connection) and reaches nothing, as a database server that is down
 * would (a release does nothing: a release that fails only leaves the lease to expire). Used by the
 * outage scenarios (tests/helpers/timerOutage.ts, tests/helpers/journalOutage.ts) on the memory store.
 */
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Outage } from "./timerOutage.ts"

/** Whether the store is down, and how many calls failed because it was. */
interface Switch {
  down: boolean
  failed: number
}

// `store`, whose calls fail while `outage.down` holds (stores it gives, `fenced`, too).
const unreliable = (store: RunStore.RunStore["Service"], outage: Switch): RunStore.RunStore["Service"] => {
  const wrapped: Record<string, unknown> = {}
  for (const [name, operation] of Object.entries(store) as ReadonlyArray<[string, unknown]>) {
    wrapped[name] = typeof operation !== "function" ? operation : (...args: ReadonlyArray<unknown>) => {
      const result: unknown = operation.apply(store, args)
      if (!Effect.isEffect(result)) return unreliable(result as RunStore.RunStore["Service"], outage)
      return Effect.suspend(() => {
        if (!outage.down) return result
        outage.failed++
        if (name === "release") return Effect.void
        return Effect.fail(new RunStore.StoreUnavailable({ reason: new RunStore.ConnectionLost({ message: "down (injected)" }), operation: name }))
      })
    }
  }
  return RunStore.RunStore.of(wrapped as unknown as RunStore.RunStore["Service"])
}

/** A memory store (a layer) and the outage that makes it unavailable: total, nothing reaches it. */
export const make = (): { readonly store: Layer.Layer<RunStore.RunStore>; readonly outage: Outage } => {
  const outage: Switch = { down: false, failed: 0 }
  return {
    store: Layer.effect(RunStore.RunStore, Effect.map(RunStore.makeMemory, (memory) => unreliable(memory, outage))),
    outage: {
      begin: Effect.sync(() => {
        outage.down = true
      }),
      end: Effect.sync(() => {
        outage.down = false
      }),
      failed: () => outage.failed,
      total: true
    }
  }
}
