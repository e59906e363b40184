/**
 * Dormancy, written once: a node that cannot go on now (an approval, a wait, a sleep, a child run,
 * or any node reaching its start once a pause is requested) is journaled `paused` / `waiting` and
 * registered with the run's machine as a dormant branch; the run settles by the `RunStatus`
 * priority once nothing else can run.
 */
import * as Effect from "effect/Effect"
import type * as RunStatus from "../RunStatus.ts"
import type { IllegalTransition, JournalEntry, LeaseLost, RunNotFound, RunStore, StoreUnavailable } from "../RunStore.ts"

/** The internal signal a child run's end is delivered as to its parent. */
export const childSignal = (childRun: string): string => `${childPrefix}${childRun}`

const childPrefix = "child "

/** The child run a signal of `childSignal` names, if it is one. */
export const childOf = (signal: string): string | undefined => signal.startsWith(childPrefix) ? signal.slice(childPrefix.length) : undefined

/** Registers a dormant node instance with the run's machine (`BRANCH_STARTED` + `BRANCH_DORMANT`). */
export const register = (
  store: RunStore["Service"],
  runId: string,
  branch: string,
  reason: RunStatus.DormantReason,
  at: number
): Effect.Effect<void, RunNotFound | IllegalTransition | StoreUnavailable | LeaseLost> =>
  Effect.andThen(
    store.transition(runId, { type: "BRANCH_STARTED" }, at),
    store.transition(runId, { type: "BRANCH_DORMANT", branch, reason }, at)
  )

type Paused = Extract<JournalEntry, { _tag: "Paused" }>

/** The journal entry of a node parked by a pause request (it replaces a start already journaled). */
export const pausedEntry = (node: string, inputs: Paused["inputs"], fingerprints: Paused["fingerprints"], at: number): Paused => ({
  _tag: "Paused",
  node,
  inputs,
  fingerprints,
  reason: "paused",
  at
})

/** The dormant branch a pause request leaves: the first node it parked stands for it. */
export const pauseBranch = (node: string): RunStatus.DormantReason => ({ _tag: "Pause", node, reason: "paused" })
