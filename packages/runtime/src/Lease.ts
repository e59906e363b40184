/**
 * Executing a run as the holder of its lease (issue 13, "one owner"): whoever executes a run — `Runs`
 * in any process, a `Worker`, the executor of a child run — takes its lease with `take` (one
 * `RunStore.acquire`) and executes it inside `hold`; a process that cannot take it does not execute.
 *
 * **Details**
 *
 * - `hold` gives the execution `store.fenced(lease)`, so a process that lost the lease writes nothing,
 *   and a `Control` the engine checks before it starts each block: the cancel request the last journal
 *   write or renewal acknowledged, and the lease's expiry as last renewed. Past that expiry the engine
 *   renews before starting anything, so a process stopped past its lease (SIGSTOP, a long GC pause)
 *   learns there that it lost it, before any handler starts. A start no journal write acknowledges
 *   (a retry, a compensation, a child run) renews first in any case (`control.confirmed`).
 * - A heartbeat renews the lease every `heartbeatMs` on the effect `Clock`; each renewal brings the
 *   run's pause and cancel requests too. A cancel request interrupts the execution at once (the
 *   engine ends the run `cancelled`), even while it only waits for running handlers.
 * - A lost lease stops the execution without writing and is logged once, as a warning naming the
 *   run, the owner and the generation.
 * - `hold` does not release the lease: the caller may still write under it (a worker marks a run it
 *   could not execute failed), then calls `RunStore.release`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import type { Control } from "./internal/control.ts"
import type { Lease, LeaseHeld, LeaseLost, Port, RunNotFound, StoreUnavailable } from "./RunStore.ts"

/**
 * The default lease length: a process that stops renewing is taken over after it.
 *
 * @since 0.1.0
 */
export const defaultTtlMs = 30_000

/**
 * How long leases last and how often they are renewed.
 *
 * @since 0.1.0
 */
export interface Terms {
  readonly ttlMs: number
  readonly heartbeatMs: number
}

/**
 * Lease terms with the defaults filled in: `defaultTtlMs`, renewed every third of it.
 *
 * @since 0.1.0
 */
export const terms = (options: { readonly ttlMs?: number | undefined; readonly heartbeatMs?: number | undefined }): Terms => {
  const ttlMs = options.ttlMs ?? defaultTtlMs
  return { ttlMs, heartbeatMs: options.heartbeatMs ?? Math.max(1, Math.floor(ttlMs / 3)) }
}

/**
 * A lease owner id unique to this process and call: the owner of every run a `Runs` layer executes.
 *
 * @since 0.1.0
 */
export const makeOwner = (prefix: string): string => `${prefix}:${globalThis.crypto.randomUUID().slice(0, 8)}`

/**
 * Takes the run's lease for `owner` now (on the `Clock`). With `waitExpiry`, a lease held by an owner
 * that stops renewing it (a crashed process) is waited for until it expires and taken then; one that
 * is renewed meanwhile (its owner is alive and executing the run) is refused.
 *
 * @since 0.1.0
 */
export const take = (
  store: Port,
  runId: string,
  owner: string,
  ttlMs: number,
  options: { readonly waitExpiry?: boolean } = {}
): Effect.Effect<Lease, RunNotFound | LeaseHeld | StoreUnavailable> =>
  Effect.gen(function*() {
    const acquire = Effect.flatMap(Clock.currentTimeMillis, (at) => store.acquire(runId, owner, { ttlMs, at }))
    if (options.waitExpiry !== true) return yield* acquire
    const first = yield* Effect.result(acquire)
    if (Result.isSuccess(first)) return first.success
    let held = first.failure
    if (held._tag !== "LeaseHeld") return yield* Effect.fail(held)
    for (;;) {
      const at = yield* Clock.currentTimeMillis
      yield* Effect.sleep(Math.max(0, held.expiresAt - at))
      const next = yield* Effect.result(acquire)
      if (Result.isSuccess(next)) return next.success
      const again = next.failure
      // The same lease, not renewed: the timer ended before the clock passed its expiry (timers may
      // end a little early). Waited out again rather than taken for an owner that is alive.
      if (again._tag !== "LeaseHeld" || again.owner !== held.owner || again.expiresAt !== held.expiresAt) {
        return yield* Effect.fail(again)
      }
      held = again
    }
  })

/**
 * Runs `use` as the holder of `lease` (see the module documentation): `use` gets the fenced store and
 * the `Control` to execute with (`control`, when given, is the one filled in). Ends as `use` ends;
 * interrupted when a renewal reports a cancel request or a lost lease.
 *
 * @since 0.1.0
 */
export const hold = <A, E, R>(
  store: Port,
  lease: Lease,
  terms: Terms,
  use: (fenced: Port, control: Control) => Effect.Effect<A, E, R>,
  control: Control = { pauseRequested: false }
): Effect.Effect<A, E, R> =>
  Effect.withFiber((self) => {
    let current = lease
    let lost = false
    const lose = (error: LeaseLost) =>
      Effect.suspend(() => {
        if (lost) return Effect.void
        lost = true
        return Effect.logWarning(
          `lost the lease of run ${error.runId} (owner ${error.owner}, generation ${error.generation}): starting nothing more on it`
        ).pipe(
          Effect.annotateLogs({ runId: error.runId, owner: error.owner, generation: error.generation })
        )
      })
    const renew = Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      const renewal = yield* store.renew(current, { ttlMs: terms.ttlMs, at })
      current = renewal.lease
      guard.expiresAt = current.expiresAt
      if (renewal.ack.pauseRequested) control.pauseRequested = true
      if (renewal.ack.cancelRequested) control.cancelRequested = true
    })
    const guard = {
      expiresAt: lease.expiresAt,
      // The engine's confirmation before a start: renewed, or the execution dies with `LeaseLost`
      // (a store that stays unavailable fails it like any of its writes would).
      confirm: Effect.catchTags(renew, {
        LeaseLost: (error) => Effect.andThen(lose(error), Effect.die(error)),
        RunNotFound: (error) => Effect.die(error)
      })
    }
    control.lease = guard
    const heartbeat = Effect.forever(Effect.andThen(
      Effect.sleep(terms.heartbeatMs),
      Effect.matchEffect(renew, {
        onFailure: (error) =>
          error._tag === "LeaseLost"
            ? Effect.andThen(lose(error), Effect.sync(() => {
              control.cancelOnInterrupt = false
              self.interruptUnsafe()
            }))
            : Effect.logWarning("renewing a lease failed", error),
        onSuccess: () =>
          Effect.sync(() => {
            if (control.cancelRequested !== true) return
            control.cancelOnInterrupt = true
            self.interruptUnsafe()
          })
      })
    ))
    return Effect.flatMap(
      Effect.forkDetach(heartbeat),
      (beating) => Effect.ensuring(use(store.fenced(lease), control), Fiber.interrupt(beating))
    )
  })
