/**
 * Pinned outputs (`Plan.Pins`): the engine writes a pinned block instance's pin as its output
 * instead of calling its handler, never compensates it (it did nothing to undo), and journals its
 * completion as pinned. Done by wrapping the handler registry and the store for one execution, so
 * the interpreter needs no case of its own for pins.
 */
import { NodeId, Plan } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as BlockError from "../BlockError.ts"
import type * as Handler from "../Handler.ts"
import type * as RunStore from "../RunStore.ts"

/** The pin of a node instance (`ctx.node`, e.g. `step@2.0`), or `undefined`. */
const pinAt = (pins: Plan.Pins, block: string, node: string) => {
  const parsed = NodeId.parseInstance(node)
  return Plan.pinOf(pins, block, Result.isSuccess(parsed) ? parsed.success.path : [])
}

/** The registry `handlers` with `pins` applied (itself when there are none). */
export const pinning = (handlers: Handler.Handlers["Service"], pins: Plan.Pins | undefined): Handler.Handlers["Service"] => {
  if (pins === undefined || Object.keys(pins).length === 0) return handlers
  const compensation = handlers.compensation
  return {
    get: (type) => {
      const base = handlers.get(type)
      return (ctx) => {
        const pin = pinAt(pins, ctx.block.id, ctx.node)
        if (pin !== undefined) return Effect.succeed(pin)
        return base === undefined ? Effect.fail(BlockError.permanent(`no handler for block type ${JSON.stringify(type)}`)) : base(ctx)
      }
    },
    equality: handlers.equality,
    compensation: compensation === undefined ? undefined : (type) => {
      const compensate = compensation(type)
      return compensate === undefined
        ? undefined
        : (output, ctx) => pinAt(pins, ctx.block.id, ctx.node) !== undefined ? Effect.void : compensate(output, ctx)
    }
  }
}

/**
 * The store `store` whose journal marks the completions of pinned instances (`pinned: true`), so
 * the journal records which outputs were pins (itself when there are none).
 */
export const marking = (store: RunStore.RunStore["Service"], pins: Plan.Pins | undefined): RunStore.RunStore["Service"] => {
  if (pins === undefined || Object.keys(pins).length === 0) return store
  const mark = (entry: RunStore.JournalEntry): RunStore.JournalEntry => {
    if (entry._tag !== "Completed") return entry
    const parsed = NodeId.parseInstance(entry.node)
    if (Result.isFailure(parsed) || parsed.success.node.kind !== "block") return entry
    return Plan.pinOf(pins, parsed.success.node.id, parsed.success.path) === undefined ? entry : { ...entry, pinned: true }
  }
  return { ...store, journal: (runId, entries) => store.journal(runId, entries.map(mark)) }
}
