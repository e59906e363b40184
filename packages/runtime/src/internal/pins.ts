/**
 * Pinned outputs (`Plan.Pins`): the engine writes a pinned block instance's pin as its output
 * instead of calling its handler, and never compensates it (it did nothing to undo). Done by
 * wrapping the handler registry for one execution, so both schedulers apply pins alike.
 */
import { NodeId, Plan } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as BlockError from "../BlockError.ts"
import type * as Handler from "../Handler.ts"

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
