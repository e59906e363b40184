/**
 * The journal writer of one scope-interpreter execution: its writes coalesce into as few
 * `RunStore.journal` calls as ordering allows (group commit within the run), the way the fast path
 * writes a wave's completions and the next wave's starts in one call.
 *
 * - `write(entries)` returns once the entries are durable, with everything queued before them: one
 *   call takes every queued entry, so concurrent nodes share calls.
 * - `later(entries, then)` queues entries without waiting. They go out with the next `write`, or
 *   after the fibers ready to write had a few turns, and `then` runs once they are durable. A
 *   completion queued this way and the start of the node that reads it share one call; nothing
 *   starts before what it reads is durable, since a start is a `write`.
 * - `queue(entries, then)` queues entries like `later` but schedules nothing: for a caller that
 *   writes next (a scope instance queues what its last wave settled, then writes the next wave's starts).
 * - `flush` makes everything queued durable.
 *
 * A failed call fails every writer waiting on it, and every later operation: the execution cannot
 * go on with a journal that is behind it.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import type { JournalEntry } from "../RunStore.ts"

/** See the module documentation. */
export interface Writer<E> {
  readonly write: (entries: ReadonlyArray<JournalEntry>) => Effect.Effect<void, E>
  readonly later: (entries: ReadonlyArray<JournalEntry>, then?: () => void) => Effect.Effect<void>
  readonly queue: (entries: ReadonlyArray<JournalEntry>, then?: () => void) => void
  readonly flush: Effect.Effect<void, E>
}

/**
 * A writer over `journal`; the fibers that flush queued entries later live in `scope`. `turns`:
 * how many times such a fiber yields before it writes (the turns other fibers get to join in).
 */
export const make = <E>(
  journal: (entries: ReadonlyArray<JournalEntry>) => Effect.Effect<void, E>,
  scope: Scope.Scope,
  turns = 4
): Effect.Effect<Writer<E>> =>
  Effect.sync((): Writer<E> => {
    let queued: Array<JournalEntry> = []
    let waiting: Array<Deferred.Deferred<void, E>> = []
    let thens: Array<() => void> = []
    let inFlight = false
    let scheduled = false
    let broken: Exit.Exit<void, E> | undefined

    // One call with everything queued. While it is in flight, writers only queue; if some are
    // waiting when it ends, the next call goes out from a fiber of its own, so the writer that
    // started this one goes on as soon as its own entries are durable.
    const drain: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
      const entries = queued
      const deferreds = waiting
      const callbacks = thens
      queued = []
      waiting = []
      thens = []
      const written: Effect.Effect<void, E> = broken ?? (entries.length === 0 ? Effect.void : journal(entries))
      return Effect.flatMap(Effect.exit(written), (exit) => {
        if (Exit.isSuccess(exit)) for (const then of callbacks) then()
        else broken = exit
        return Effect.andThen(Effect.forEach(deferreds, (d) => Deferred.done(d, exit), { discard: true }), next)
      })
    }))

    // Decided only once the writers are woken: a woken writer runs at once and may write again
    // while this call still counts as in flight, which only queues. Deciding before would strand it.
    const after = (): Effect.Effect<void> => {
      if (waiting.length > 0) return Effect.asVoid(Effect.forkIn(drain, scope))
      inFlight = false
      return Effect.void
    }
    const next: Effect.Effect<void> = Effect.suspend(after)

    // A loop, not a spread: a wave may settle more entries than a call takes arguments.
    const queue = (entries: ReadonlyArray<JournalEntry>, then?: () => void): void => {
      for (let i = 0; i < entries.length; i++) queued.push(entries[i]!)
      if (then !== undefined) thens.push(then)
    }

    const write = (entries: ReadonlyArray<JournalEntry>): Effect.Effect<void, E> =>
      Effect.suspend(() => {
        if (broken !== undefined) return broken
        queue(entries)
        if (inFlight) {
          const done = Deferred.makeUnsafe<void, E>()
          waiting.push(done)
          return Deferred.await(done)
        }
        inFlight = true
        return own()
      })

    // No call in flight: this writer makes the call itself and needs no Deferred (the common,
    // uncontended case: one scope instance writing its waves). No writer waits on it, so what
    // follows the call is decided as it ends.
    const own = (): Effect.Effect<void, E> => {
      const entries = queued
      const callbacks = thens
      queued = []
      thens = []
      if (entries.length === 0) {
        for (const then of callbacks) then()
        return after()
      }
      return Effect.uninterruptible(Effect.onExit(journal(entries), (exit) => {
        if (Exit.isSuccess(exit)) for (const then of callbacks) then()
        else broken = exit
        return after()
      }))
    }

    const flusher = Effect.gen(function*() {
      for (let i = 0; i < turns; i++) yield* Effect.yieldNow
      scheduled = false
      // A failure is kept in `broken`: every later operation fails with it.
      yield* Effect.ignore(write([]))
    })

    return {
      write,
      queue,
      later: (entries, then) =>
        Effect.suspend(() => {
          queue(entries, then)
          if (scheduled) return Effect.void
          scheduled = true
          return Effect.asVoid(Effect.forkIn(flusher, scope))
        }),
      flush: write([])
    }
  })
