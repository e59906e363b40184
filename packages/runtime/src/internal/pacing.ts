/**
 * How the engine gives the event loop its turn: blocks whose handlers are synchronous (built-ins,
 * no-ops) settle without the execution ever waiting, so nothing else in the process — an
 * interruption from a Ctrl-C or SIGTERM handler, a lease heartbeat, another run — would run until
 * the fiber runtime's own operation budget happened to run out. The engine counts settled blocks
 * and yields (`Effect.yieldNow`, a macrotask turn under the default scheduler) every
 * `blocksPerYield` of them, whatever the runtime's `MaxOpsBeforeYield`.
 */
import * as Effect from "effect/Effect"

/** Blocks settled between two yields: rare enough to cost nothing measurable on a 10^4 chain. */
export const blocksPerYield = 256

/** A counter of settled blocks: `settled(n)` is `Effect.yieldNow` once `blocksPerYield` are reached, else `undefined`. */
export interface Pacer {
  readonly settled: (count: number) => Effect.Effect<void> | undefined
}

/** A fresh pacer for one execution. */
export const make = (): Pacer => {
  let since = 0
  return {
    settled: (count) => {
      since += count
      if (since < blocksPerYield) return undefined
      since = 0
      return Effect.yieldNow
    }
  }
}
