/**
 * Executing a run as the holder of its lease (issue 13, "one owner"): whoever executes a run — `Runs`
 * in any process, a `Worker`, the executor of a child run — takes its lease with `take` (one
 * `RunStore.acquire`) and executes it inside `hold`; a process that cannot take it does not execute.
 *
 * **Details**
 *
 * - `hold` gives the execution `store.fenced(lease)`, so a process that lost the lease writes nothing,
 *   and a `Control` the engine checks before it starts each block: the cancel request the last journal
 *   write or renewal acknowledged, and the lease's deadline as last renewed. Past that deadline the
 *   engine renews before starting anything, so a process stopped past its lease (SIGSTOP, a long GC
 *   pause) learns there that it lost it, before any handler starts. A start no journal write
 *   acknowledges (a retry, a compensation, a child run) renews first in any case (`control.confirmed`).
 * - A heartbeat renews the lease every `heartbeatMs` on the effect `Clock`; each renewal brings the
 *   run's pause and cancel requests too. A cancel request interrupts the execution at once (the
 *   engine ends the run `cancelled`), even while it only waits for running handlers.
 * - A lost lease stops the execution without writing and is logged once, as a warning naming the
 *   run, the owner and the generation: a renewal refused with `LeaseLost` interrupts it, a write or
 *   a confirmation refused with it ends it with that failure (typed: the execution stopped, its
 *   run did not fail; the run is its new holder's).
 * - Self-fencing: another process may take the run over once the lease expires, whether or not this
 *   one still runs handlers (an outage longer than the lease fails every renewal; a renewal waiting
 *   behind a slow write of the run answers after the expiry). So the holder stops by itself before
 *   then: the lease's *deadline* is its expiry as last renewed, counted from when that renewal was
 *   sent (what the store granted; an answer that comes late grants no more), less `marginMs`. When
 *   the `Clock` reaches the deadline with no renewal since that moved it, `hold` interrupts the
 *   execution — its running handlers at once (`Guard.halt`), even while the engine waits for a
 *   journal write — writing nothing (as for a lost lease: the run stays `running`), logs it once
 *   naming the run, the owner and the generation, and ends with `LeaseExpired`. A renewal answered
 *   past the deadline it grants (sent at `at`, answered after `at + ttlMs - marginMs`) does not
 *   count as renewed: a process may already be taking the run over.
 * - `marginMs` (default `ttlMs / 6`, half a heartbeat; `Runs.Options.marginMs` and the worker's option
 *   of that name set it) is what the fence leaves between the end of
 *   the execution here and the earliest takeover: the time an interrupted handler takes to stop (an
 *   interruption reaches an asynchronous handler at its next suspension; its abort signal fires)
 *   and the skew between the clocks of the processes, which compare expiries in epoch ms. It is
 *   less than the gap between two heartbeats (`ttlMs / 3`), so a renewal that fails once, or
 *   answers late once, is made good by the next one without fencing; and never more than half the
 *   time a heartbeat leaves before the expiry (`ttlMs - heartbeatMs`), so a longer heartbeat still
 *   has a renewal sent before the deadline. A handler that does not yield (a synchronous loop)
 *   cannot be interrupted at all: no margin covers it.
 * - A fenced holder did not fail its run ("faults are not failures"): `LeaseExpired` tells the
 *   caller to take the run up again once the store answers (`Runs` takes the lease again and
 *   executes the run from its journal; a `Worker` releases it and claims it again like any queued
 *   run). A write of the execution already on its way may still commit after the fence: it is
 *   fenced by the store like any other, so it lands before a takeover or not at all.
 * - `hold` does not release the lease: the caller may still write under it (a worker marks a run it
 *   could not execute failed), then calls `RunStore.release`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import type { Control, Guard } from "./internal/control.ts"
import { type Lease, type LeaseHeld, LeaseLost, type Port, type RunNotFound, type StoreUnavailable } from "./RunStore.ts"

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
  /** How long before the lease's expiry its holder stops executing if it was not renewed (see the module documentation). */
  readonly marginMs: number
}

/**
 * Lease terms with the defaults filled in: `defaultTtlMs`, renewed every third of it, fenced a
 * sixth of it before its expiry (less with a heartbeat so long that a renewal sent on time would
 * have less than that margin to answer in).
 *
 * @since 0.1.0
 */
export const terms = (options: {
  readonly ttlMs?: number | undefined
  readonly heartbeatMs?: number | undefined
  readonly marginMs?: number | undefined
}): Terms => {
  const ttlMs = options.ttlMs ?? defaultTtlMs
  const heartbeatMs = options.heartbeatMs ?? Math.max(1, Math.floor(ttlMs / 3))
  return { ttlMs, heartbeatMs, marginMs: options.marginMs ?? Math.floor(Math.min(ttlMs / 6, (ttlMs - heartbeatMs) / 2)) }
}

/**
 * The holder of a lease stopped executing its run by itself: the lease reached its deadline (its
 * expiry less `Terms.marginMs`) with no renewal since (see the module documentation). The run is
 * left as it was, `running`, for whoever takes the lease next.
 *
 * @since 0.1.0
 */
export class LeaseExpired extends Data.TaggedError("LeaseExpired")<{
  readonly runId: string
  readonly owner: string
  readonly generation: number
  /** The lease's expiry as last renewed. */
  readonly expiresAt: number
}> {
  override get message(): string {
    return `the lease of run ${this.runId} (owner ${this.owner}, generation ${this.generation}) was not renewed before its expiry at ${this.expiresAt}`
  }
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
 * interrupted when a renewal reports a cancel request or a lost lease; fails with `LeaseExpired`
 * when it fenced itself.
 *
 * @since 0.1.0
 */
export const hold = <A, E, R>(
  store: Port,
  lease: Lease,
  terms: Terms,
  use: (fenced: Port, control: Control) => Effect.Effect<A, E, R>,
  control: Control = { pauseRequested: false }
): Effect.Effect<A, E | LeaseExpired, R> =>
  Effect.withFiber((self) => {
    let current = lease
    let lost = false
    let executing: Fiber.Fiber<A, E> | undefined
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
    // Stops the execution for good: nothing starts any more (`confirm` refuses, whatever the clock
    // reads), the engine's drive is interrupted where it waits, then its handlers at once, so the
    // drive settles none of them as a failure; the run is left as it is.
    const fence = Effect.suspend(() => {
      if (guard.fenced === true || lost) return Effect.void
      guard.fenced = true
      const deadline = guard.expiresAt
      guard.expiresAt = Number.NEGATIVE_INFINITY
      control.cancelOnInterrupt = false
      executing?.interruptUnsafe()
      guard.halt?.()
      return Effect.logWarning(
        `the lease of run ${current.runId} (owner ${current.owner}, generation ${current.generation}) reached its deadline ` +
          `${deadline} unrenewed (expiry ${current.expiresAt}): stopping its execution here`
      ).pipe(Effect.annotateLogs({ runId: current.runId, owner: current.owner, generation: current.generation }))
    })
    // A renewal moves the deadline only if it answered before the deadline it grants (counted from
    // when it was sent): one answered later renewed a lease another process may be taking already.
    const renew = Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      const renewal = yield* store.renew(current, { ttlMs: terms.ttlMs, at })
      if (renewal.ack.pauseRequested) control.pauseRequested = true
      if (renewal.ack.cancelRequested) control.cancelRequested = true
      if (guard.fenced === true) return
      if (renewal.lease.expiresAt - terms.marginMs <= (yield* Clock.currentTimeMillis)) return yield* fence
      current = renewal.lease
      guard.expiresAt = current.expiresAt - terms.marginMs
    })
    const guard: Guard = {
      expiresAt: lease.expiresAt - terms.marginMs,
      // The engine's confirmation before a start: renewed, or the execution fails with `LeaseLost`
      // (or, a store that stays unavailable, with its error, like any of its writes would), or is
      // interrupted once fenced.
      confirm: Effect.andThen(
        Effect.catchTag(Effect.suspend(() => guard.fenced === true ? Effect.void : renew), "RunNotFound", Effect.die),
        Effect.suspend(() => guard.fenced === true ? Effect.interrupt : Effect.void)
      ),
      fenced: false
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
            // Fenced: the execution is stopping already, and leaves the run as it is.
            if (control.cancelRequested !== true || guard.fenced === true) return
            control.cancelOnInterrupt = true
            self.interruptUnsafe()
          })
      })
    ))
    // Apart from the heartbeat, whose renewal may wait for as long as the store does.
    const watchdog = Effect.gen(function*() {
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        if (now >= guard.expiresAt) return yield* fence
        yield* Effect.sleep(guard.expiresAt - now)
      }
    })
    // The execution runs in a fiber of its own, so that the fence can stop it and `hold` still
    // answers; interrupting `hold` (a cancel, a shutdown) interrupts it and waits for it.
    return Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(use(store.fenced(lease), control), { startImmediately: true })
        executing = fiber
        // Fenced by a confirmation in its first synchronous steps, before it could be named.
        if (guard.fenced === true) fiber.interruptUnsafe()
        const beating = yield* Effect.forkDetach(heartbeat)
        const watching = yield* Effect.forkDetach(watchdog)
        const exit = yield* restore(Fiber.await(fiber)).pipe(
          Effect.onInterrupt(() => Fiber.interrupt(fiber)),
          Effect.ensuring(Fiber.interruptAll([beating, watching]))
        )
        // A write or renewal refused for the lease: logged once, and the execution ends with it.
        const lostBy = Exit.isFailure(exit) ? Result.getOrUndefined(Cause.findError(exit.cause)) : undefined
        if (lostBy instanceof LeaseLost) yield* lose(lostBy)
        // Whatever the fence cut short ends as the fence (a lost lease still ends with `LeaseLost`).
        else if (guard.fenced === true && Exit.isFailure(exit) && !Cause.hasDies(exit.cause)) {
          return yield* Effect.fail(new LeaseExpired({ ...current }))
        }
        return yield* exit
      })
    )
  })
