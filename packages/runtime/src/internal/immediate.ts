/**
 * Journal calls that complete at once. A store whose writes are synchronous (the memory store)
 * attaches to its `journal` function the same write as a plain call returning its `Exit`
 * (`immediate`); the engine's journal writer makes that call instead of running the effect, and
 * goes on in the same step (no fiber step per wave: on a chain, one per node).
 *
 * The write travels with the very function it stands for: a wrapper that replaces `journal`
 * (pins, fencing, a test's fault injection) drops it, and its own `journal` effect is run as
 * before; one that keeps `journal` keeps the write that `journal` makes.
 */
import type * as Exit from "effect/Exit"
import type { JournalAck, JournalEntry } from "../RunStore.ts"

/**
 * The write `journal(runId, entries)` makes, made now. The caller (the journal writer) hands the
 * array over: it never changes it afterwards, so the store may keep it rather than copy it.
 */
export type Now<E> = (runId: string, entries: ReadonlyArray<JournalEntry>) => Exit.Exit<JournalAck, E>

const key: unique symbol = Symbol.for("@ripple/runtime/ImmediateJournal")

/** `journal`, carrying `now`: the same write, made at once. */
export const immediate = <F extends object, E>(journal: F, now: Now<E>): F => Object.assign(journal, { [key]: now })

/** The write a `journal` function makes at once, if it carries one. */
export const of = <E>(journal: object): Now<E> | undefined => (journal as { readonly [key]?: Now<E> })[key]
