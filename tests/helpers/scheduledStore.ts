/**
 * A store whose calls complete when someone else says so, the way calls to a database do: every
 * operation runs on the wrapped store, then its completion (success or failure) waits for
 * `settle(operation)` before the caller sees it. `settle = () => Effect.yieldNow` gives a store that
 * yields; `settle` backed by `fc.scheduler()` lets fast-check choose in which order concurrent calls
 * complete (and replay that order from the seed).
 *
 * Every operation is wrapped, whatever the port holds, so operations added to `RunStore` later are
 * covered without touching this file.
 *
 * **Example**
 *
 * ```ts
 * const store = scheduledStore(yield* RunStore.makeMemory, (operation) =>
 *   Effect.promise(() => s.schedule(Promise.resolve(operation), operation)))
 * ```
 */
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"

/** `store` with the completion of each call deferred to `settle`. */
export const scheduledStore = (
  store: RunStore.RunStore["Service"],
  settle: (operation: string) => Effect.Effect<void>
): RunStore.RunStore["Service"] => {
  const wrapped: Record<string, unknown> = {}
  for (const [name, operation] of Object.entries(store) as ReadonlyArray<[string, unknown]>) {
    wrapped[name] = typeof operation === "function"
      ? (...args: ReadonlyArray<unknown>) => {
        const result: unknown = operation.apply(store, args)
        // An operation that returns a store (`fenced`) returns one whose calls are deferred too.
        return Effect.isEffect(result)
          ? Effect.flatMap(Effect.exit(result), (exit) => Effect.andThen(settle(name), exit))
          : scheduledStore(result as RunStore.RunStore["Service"], settle)
      }
      : operation
  }
  return RunStore.RunStore.of(wrapped as unknown as RunStore.RunStore["Service"])
}
