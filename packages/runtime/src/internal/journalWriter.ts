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
 * Entries are taken over, not copied: a caller hands over an array it no longer uses. With no
 * call in flight, the writer that flushes makes the call itself (no Deferred, no fiber): a scope
 * instance writing its waves alone pays one `journal` call and its acknowledgement.
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
  /** `flush`, decided as it is called: for a caller that runs the effect at once (a scope instance's wave). */
  readonly flushNow: () => Effect.Effect<void, E>
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
    // `queued` and `thens` start as shared empty arrays, replaced (never pushed to) by the first queue.
    let queued: Array<JournalEntry> = noEntries
    let waiting: Array<Deferred.Deferred<void, E>> = []
    let thens: Array<() => void> = noThens
    let inFlight = false
    let scheduled = false
    let broken: Exit.Exit<void, E> | undefined
    // The callbacks of the call the uncontended path has in flight (at most one call is in flight).
    let owned: Array<() => void> = noThens

    // One call with everything queued. While it is in flight, writers only queue; if some are
    // waiting when it ends, the next call goes out from a fiber of its own, so the writer that
    // started this one goes on as soon as its own entries are durable.
    const drain: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
      const entries = queued
      const deferreds = waiting
      const callbacks = thens
      queued = noEntries
      waiting = []
      thens = noThens
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

    // Takes the entries over (every caller hands over an array it no longer uses): the first queued
    // since the last call is kept as it is, later ones are appended one by one (a wave may settle
    // more entries than a call takes arguments).
    const queue = (entries: ReadonlyArray<JournalEntry>, then?: () => void): void => {
      if (entries.length > 0) {
        if (queued.length === 0) queued = entries as Array<JournalEntry>
        else for (let i = 0; i < entries.length; i++) queued.push(entries[i]!)
      }
      if (then !== undefined) {
        if (thens.length === 0) thens = [then]
        else thens.push(then)
      }
    }

    const writeNow = (entries: ReadonlyArray<JournalEntry>): Effect.Effect<void, E> => {
      if (broken !== undefined) return broken
      queue(entries)
      if (inFlight) {
        const done = Deferred.makeUnsafe<void, E>()
        waiting.push(done)
        return Deferred.await(done)
      }
      inFlight = true
      return own()
    }

    const write = (entries: ReadonlyArray<JournalEntry>): Effect.Effect<void, E> => Effect.suspend(() => writeNow(entries))

    // Ends the uncontended path's call: no writer waited on it when it started, so what follows is
    // decided as it ends.
    const ownEnded = (exit: Exit.Exit<void, E>): Effect.Effect<void> => {
      const callbacks = owned
      owned = noThens
      if (Exit.isSuccess(exit)) for (let i = 0; i < callbacks.length; i++) callbacks[i]!()
      else broken = exit
      return after()
    }

    // No call in flight: this writer makes the call itself and needs no Deferred (the common,
    // uncontended case: one scope instance writing its waves).
    const own = (): Effect.Effect<void, E> => {
      const entries = queued
      const callbacks = thens
      queued = noEntries
      thens = noThens
      if (entries.length === 0) {
        for (let i = 0; i < callbacks.length; i++) callbacks[i]!()
        return after()
      }
      owned = callbacks
      return Effect.uninterruptible(Effect.onExit(journal(entries), ownEnded))
    }

    const flusher = Effect.gen(function*() {
      for (let i = 0; i < turns; i++) yield* Effect.yieldNow
      scheduled = false
      // A failure is kept in `broken`: every later operation fails with it.
      yield* Effect.ignore(write(noEntries))
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
      flush: write(noEntries),
      flushNow: () => writeNow(noEntries)
    }
  })

const noEntries: Array<JournalEntry> = []
const noThens: Array<() => void> = []
