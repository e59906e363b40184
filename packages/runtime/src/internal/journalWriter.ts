/**
 * The journal writer of one scope-interpreter execution: its writes coalesce into as few
 * `RunStore.journal` calls as ordering allows (group commit within the run): a wave's completions
 * and the next wave's starts go out in one call.
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
 * Entries are taken over, not copied: a caller hands over an array it no longer uses, and the writer
 * hands it on to the store unchanged (the memory store keeps it as its journal). With no
 * call in flight, the writer that flushes makes the call itself (no Deferred, no fiber): a scope
 * instance writing its waves alone pays one `journal` call and its acknowledgement, and nothing
 * more when the store makes the write at once (`Immediate`: `flushNow` is then done as it returns). A writer that
 * finds that call in flight waits for the next one, which a fiber of the writer's own makes as the
 * call ends (so the writer that made it goes on as soon as its own entries are durable).
 *
 * A failed call fails every writer waiting on it, and every later operation: the execution cannot
 * go on with a journal that is behind it.
 */
import type * as Cause from "effect/Cause"
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
  /**
   * `flush`, decided as it is called, for a caller (`owner`) that runs it at once and
   * uninterruptibly (a scope instance's `drive`), so a call it makes is never cut short, and that
   * reports its failure with `failed`: the call it makes is the store's call and its
   * acknowledgement, nothing more. `undefined` when nothing is left to wait for: nothing was
   * queued, or the store made the write at once.
   */
  readonly flushNow: (owner: object) => Effect.Effect<void, E> | undefined
  /** What failed `owner` after `flushNow` (anything: only the failure of a call it made counts). */
  readonly failed: (owner: object, cause: Cause.Cause<unknown>) => void
  /** The failure every operation fails with since a call failed, if one did. */
  readonly failure: () => Exit.Exit<void, E> | undefined
  /**
   * Calls `onBroken` once a call fails, however it was made: a call for `later` entries fails
   * in a fiber no writer waits on, and whoever waits for something else (a scope instance waiting
   * for a handler) must still stop. Returns what stops watching.
   */
  readonly watch: (onBroken: () => void) => () => void
}

/**
 * A writer over `journal`, whose every answer goes to `acknowledge` (taken in the same step as the
 * call's end: no continuation of its own); the fibers that flush queued entries later live in
 * `scope`. `now`: the same call made at once, when the store offers it (`Immediate`). `turns`: how
 * many times such a fiber yields before it writes (the turns other fibers get to join in).
 */
export const make = <A, E>(
  journal: (entries: ReadonlyArray<JournalEntry>) => Effect.Effect<A, E>,
  acknowledge: (answer: A) => void,
  scope: Scope.Scope,
  now: ((entries: ReadonlyArray<JournalEntry>) => Exit.Exit<A, E>) | undefined = undefined,
  turns = 4
): Effect.Effect<Writer<E>> => Effect.sync(() => new JournalWriter(journal, acknowledge, scope, now, turns))

const noEntries: Array<JournalEntry> = []
const noThens: Array<() => void> = []

class JournalWriter<A, E> implements Writer<E> {
  // `queued` and `thens` start as shared empty arrays, replaced (never pushed to) by the first queue.
  private queued: Array<JournalEntry> = noEntries
  private thens: Array<() => void> = noThens
  private waiting: Array<Deferred.Deferred<void, E>> = []
  private inFlight = false
  private scheduled = false
  private broken: Exit.Exit<void, E> | undefined = undefined
  private readonly watchers = new Set<() => void>()
  /** The callbacks of the call an uncontended writer made, while it is in flight. */
  private owned: Array<() => void> = noThens
  /** Whether the call in flight is an uncontended writer's (else a fiber of the writer's own makes it). */
  private owning = false
  /** Who made that call, when it reports its failure itself (`flushNow`). */
  private owner: object | undefined = undefined
  /** Once a writer waits on the call an uncontended writer made: completed as that call ends. */
  private ended: Deferred.Deferred<void> | undefined = undefined

  constructor(
    private readonly journal: (entries: ReadonlyArray<JournalEntry>) => Effect.Effect<A, E>,
    private readonly acknowledge: (answer: A) => void,
    private readonly scope: Scope.Scope,
    private readonly now: ((entries: ReadonlyArray<JournalEntry>) => Exit.Exit<A, E>) | undefined,
    private readonly turns: number
  ) {}

  // Takes the entries over (every caller hands over an array it no longer uses): the first queued
  // since the last call is kept as it is, later ones are appended one by one (a wave may settle
  // more entries than a call takes arguments).
  readonly queue = (entries: ReadonlyArray<JournalEntry>, then?: () => void): void => {
    if (entries.length > 0) {
      if (this.queued.length === 0) this.queued = entries as Array<JournalEntry>
      else for (let i = 0; i < entries.length; i++) this.queued.push(entries[i]!)
    }
    if (then !== undefined) {
      if (this.thens.length === 0) this.thens = [then]
      else this.thens.push(then)
    }
  }

  readonly write = (entries: ReadonlyArray<JournalEntry>): Effect.Effect<void, E> =>
    Effect.suspend(() => this.writeNow(entries, undefined) ?? Effect.void)

  readonly flush: Effect.Effect<void, E> = this.write(noEntries)

  readonly flushNow = (owner: object): Effect.Effect<void, E> | undefined => this.writeNow(noEntries, owner)

  readonly failure = (): Exit.Exit<void, E> | undefined => this.broken

  readonly watch = (onBroken: () => void): () => void => {
    this.watchers.add(onBroken)
    return () => this.watchers.delete(onBroken)
  }

  private breakWith(exit: Exit.Exit<void, E>): void {
    this.broken = exit
    for (const onBroken of this.watchers) onBroken()
  }

  readonly failed = (owner: object, cause: Cause.Cause<unknown>): void => {
    // While its call is in flight the owner does nothing else: what failed it is that call.
    if (this.owning && this.owner === owner) this.ownFailedWith(cause as Cause.Cause<E>)
  }

  readonly later = (entries: ReadonlyArray<JournalEntry>, then?: () => void): Effect.Effect<void> =>
    Effect.suspend(() => {
      this.queue(entries, then)
      if (this.scheduled) return Effect.void
      this.scheduled = true
      return Effect.asVoid(Effect.forkIn(this.flusher, this.scope))
    })

  private readonly flusher: Effect.Effect<void> = Effect.gen({ self: this }, function*() {
    for (let i = 0; i < this.turns; i++) yield* Effect.yieldNow
    this.scheduled = false
    // A failure is kept in `broken`: every later operation fails with it.
    yield* Effect.ignore(this.write(noEntries))
  })

  // Without an `owner`, the call is made uninterruptible and its failure is handled here.
  private writeNow(entries: ReadonlyArray<JournalEntry>, owner: object | undefined): Effect.Effect<void, E> | undefined {
    if (this.broken !== undefined) return this.broken
    this.queue(entries)
    if (this.inFlight) return this.await()
    this.inFlight = true
    return this.own(owner)
  }

  // A call is in flight: wait for the next one. The first writer to wait on an uncontended
  // writer's call starts the fiber that makes the next call once it ends.
  private await(): Effect.Effect<void, E> {
    const done = Deferred.makeUnsafe<void, E>()
    this.waiting.push(done)
    if (!this.owning || this.ended !== undefined) return Deferred.await(done)
    const ended = this.ended = Deferred.makeUnsafe<void>()
    return Effect.andThen(Effect.forkIn(Effect.andThen(Deferred.await(ended), this.drain), this.scope), Deferred.await(done))
  }

  // No call in flight: this writer makes the call itself, with no Deferred and no fiber (the
  // common, uncontended case: one scope instance writing its waves); `undefined` when it is done.
  private own(owner: object | undefined): Effect.Effect<void, E> | undefined {
    const entries = this.queued
    const callbacks = this.thens
    this.queued = noEntries
    this.thens = noThens
    if (entries.length === 0) {
      for (let i = 0; i < callbacks.length; i++) callbacks[i]!()
      this.inFlight = false
      return undefined
    }
    this.owned = callbacks
    this.owning = true
    this.owner = owner
    if (this.now !== undefined) {
      const exit = this.now(entries)
      if (Exit.isSuccess(exit)) {
        this.ownSucceeded(exit.value)
        return undefined
      }
      this.ownFailedWith(exit.cause)
      return this.broken
    }
    const call = Effect.map(this.journal(entries), this.ownSucceeded)
    return owner !== undefined ? call : Effect.uninterruptible(Effect.catchCause(call, this.ownFailed))
  }

  private readonly ownSucceeded = (answer: A): void => {
    this.acknowledge(answer)
    const callbacks = this.owned
    this.owned = noThens
    for (let i = 0; i < callbacks.length; i++) callbacks[i]!()
    this.ownEnded()
  }

  private readonly ownFailed = (cause: Cause.Cause<E>): Effect.Effect<void, E> => {
    this.ownFailedWith(cause)
    return this.broken!
  }

  private ownFailedWith(cause: Cause.Cause<E>): void {
    this.owned = noThens
    this.breakWith(Exit.failCause(cause))
    this.ownEnded()
  }

  // The uncontended call ended: nothing is in flight any more, or the fiber a waiting writer
  // started makes the next call (the writer stays in flight for it).
  private ownEnded(): void {
    this.owning = false
    this.owner = undefined
    const ended = this.ended
    if (ended === undefined) {
      this.inFlight = false
      return
    }
    this.ended = undefined
    Deferred.doneUnsafe(ended, Exit.void)
  }

  // One call with everything queued, made by a fiber of the writer's own. While it is in flight,
  // writers only queue; if some are waiting when it ends, the next call goes out from another.
  private readonly drain: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
    const entries = this.queued
    const deferreds = this.waiting
    const callbacks = this.thens
    this.queued = noEntries
    this.waiting = []
    this.thens = noThens
    const written: Effect.Effect<void, E> = this.broken ??
      (entries.length === 0 ? Effect.void : Effect.map(this.journal(entries), this.acknowledge))
    return Effect.flatMap(Effect.exit(written), (exit) => {
      if (Exit.isSuccess(exit)) for (const then of callbacks) then()
      else this.breakWith(exit)
      return Effect.andThen(Effect.forEach(deferreds, (d) => Deferred.done(d, exit), { discard: true }), this.next)
    })
  }))

  // Decided only once the writers are woken: a woken writer runs at once and may write again
  // while this call still counts as in flight, which only queues. Deciding before would strand it.
  private readonly next: Effect.Effect<void> = Effect.suspend(() => {
    if (this.waiting.length > 0) return Effect.asVoid(Effect.forkIn(this.drain, this.scope))
    this.inFlight = false
    return Effect.void
  })
}
