/**
 * What an execution checks before it starts anything (a block, a retry, a compensation): the
 * caller's and the store's pause and cancel requests, and the lease it holds. One rule for every
 * start, whichever part of the engine makes it.
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { JournalAck, JournalEntry, LeaseLost, RunNotFound, RunStore, StoreUnavailable } from "../RunStore.ts"

/** Asks a running execution to park, or to stop, at the next node boundary. */
export interface Control {
  pauseRequested: boolean
  /** A cancel was requested (a journal acknowledgement or a lease renewal said so): no block starts any more. */
  cancelRequested?: boolean
  /**
   * What an interruption of the execution means. `true` (or no control at all): a cancel, and the
   * run ends `cancelled`. `false`: the process is going away (a layer or worker shutting down), so
   * the run is left as it is, `running`, and any later process resumes it like a crashed run.
   */
  cancelOnInterrupt?: boolean
  /** The lease the execution holds (`Lease.hold`); absent: an unleased execution (tests, benchmarks). */
  lease?: Guard
}

/** A held lease as the engine checks it: blocks start before `expiresAt`, or once `confirm` renewed it. */
export interface Guard {
  /** The lease's deadline: its expiry as last renewed, less the holder's fencing margin. */
  expiresAt: number
  /**
   * Renews the lease (moving `expiresAt`, taking the run's requests); fails with `LeaseLost` if it
   * was taken, and interrupts once the holder fenced itself.
   */
  readonly confirm: Effect.Effect<void, StoreUnavailable | LeaseLost>
  /**
   * The holder fenced itself (`Lease.hold`): the deadline passed unrenewed, so nothing starts any
   * more, and an interrupted handler stops the execution rather than failing its block.
   */
  fenced?: boolean
  /**
   * Set by the engine while it executes: interrupts its running handlers at once, even while its
   * drive waits for a journal write (which it never cuts short). Called by the holder as it fences itself.
   */
  halt?: (() => void) | undefined
}

/**
 * Journal writes of one execution that honour stored pause and cancel requests: every write is
 * acknowledged with the run's requests, so one asked for from another process is seen at the next
 * node boundary.
 */
export const acknowledged = (store: RunStore["Service"], runId: string, control: Control) => {
  const take = acknowledge(control)
  return (entries: ReadonlyArray<JournalEntry>): Effect.Effect<void, RunNotFound | StoreUnavailable | LeaseLost> =>
    Effect.map(store.journal(runId, entries), take)
}

/** What a journal write's acknowledgement does to the execution's control: a stored pause or cancel request is taken. */
export const acknowledge = (control: Control) => (ack: JournalAck): void => {
  if (ack.pauseRequested) control.pauseRequested = true
  if (ack.cancelRequested) control.cancelRequested = true
}

// A cancel request ends the execution as an interruption does: the engine's interruption handler
// ends the run `cancelled` (whatever the caller said interruptions mean).
const stop = (control: Control): Effect.Effect<never> =>
  Effect.suspend(() => {
    control.cancelOnInterrupt = true
    return Effect.interrupt
  })

// Renews the lease (failing with `LeaseLost` if it was taken), then stops if the renewal brought a cancel.
const confirm = (control: Control, lease: Guard): Effect.Effect<void, StoreUnavailable | LeaseLost> =>
  Effect.andThen(lease.confirm, Effect.suspend(() => control.cancelRequested === true ? stop(control) : Effect.void))

/**
 * What must happen before a start that no journal write acknowledges — a retry of a handler, a
 * compensation, a child run — so that a cancel recorded by another process since the execution's
 * last write or renewal is seen before it: the lease is renewed now (its renewal brings the run's
 * requests and fails if the lease was taken), and the execution ends if a cancel was requested.
 * `undefined` for an unleased execution that was not asked to cancel (nobody else can ask it).
 *
 * Gotchas: one store round trip per such start; a block's first start needs none, the write that
 * journals it is acknowledged with the same requests.
 */
export const confirmed = (control: Control): Effect.Effect<void, StoreUnavailable | LeaseLost> | undefined => {
  if (control.cancelRequested === true) return stop(control)
  return control.lease === undefined ? undefined : confirm(control, control.lease)
}

/**
 * What must happen before a block starts, checked again after the write that starts it: nothing
 * (`undefined`, the common case: two field reads), the end of the execution when a cancel was
 * requested, or a renewal of a lease past its expiry (which fails with `LeaseLost` if it was taken,
 * and may bring a cancel request).
 */
export const beforeStart = (control: Control, now: number): Effect.Effect<void, StoreUnavailable | LeaseLost> | undefined => {
  if (control.cancelRequested === true) return stop(control)
  const lease = control.lease
  if (lease === undefined || now < lease.expiresAt) return undefined
  return confirm(control, lease)
}

/**
 * `beforeStart` that reads `clock` only when the answer depends on the time (a lease is held): the
 * common unleased, uncancelled execution pays two field reads per start, no clock read.
 */
export const beforeStartOn = (control: Control, clock: Clock.Clock): Effect.Effect<void, StoreUnavailable | LeaseLost> | undefined =>
  control.cancelRequested !== true && control.lease === undefined ? undefined : beforeStart(control, clock.currentTimeMillisUnsafe())

/** Whether an interruption of the execution cancels the run: unless the caller said it only means a shutdown. */
export const cancelsOnInterrupt = (control: Control | undefined): boolean => control?.cancelOnInterrupt !== false
