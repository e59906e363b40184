/**
 * What a handler call gave, as an effect. TypeScript handlers return an `Effect`; a JavaScript
 * handler (a `--handlers` module) may return what its author is used to: a Promise, awaited (a
 * rejection is the `BlockError` it rejects with, else a retryable `BlockError` carrying it), or the
 * output itself. Nothing a handler returns is left unobserved: an unawaited rejected Promise would
 * take the whole process down.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as BlockError from "../BlockError.ts"

// Every exit is made by one of effect's two exit constructors (success, failure): these are their prototypes.
const successPrototype: object = Object.getPrototypeOf(Exit.void)
const failurePrototype: object = Object.getPrototypeOf(Exit.fail(undefined))

/**
 * Whether `u` is an exit of the effect this package imports, told by its prototype alone: a fast
 * path in front of `Exit.isExit` / `Effect.isEffect`, which also answer for any other copy.
 * Those look their marker up through effect's `hasProperty`, one lookup site for every kind of
 * value (megamorphic): a chain node of no-op handlers made four such lookups.
 */
export const isKnownExit = (u: unknown): u is Exit.Exit<unknown, unknown> => {
  if (typeof u !== "object" || u === null) return false
  // Read first, an exit's tag lets the optimizing compiler know the value's shape, and so its prototype.
  const tag = (u as { readonly _tag?: unknown })._tag
  if (tag !== "Success" && tag !== "Failure") return false
  const prototype = Object.getPrototypeOf(u)
  return prototype === successPrototype || prototype === failurePrototype
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"

/** The result of a handler call as an effect (see the module). */
export const asEffect = <A, R>(result: Effect.Effect<A, BlockError.BlockError, R> | PromiseLike<A> | A): Effect.Effect<A, BlockError.BlockError, R> => {
  if (isKnownExit(result) || Effect.isEffect(result)) return result as Effect.Effect<A, BlockError.BlockError, R>
  if (!isThenable(result)) return Effect.succeed(result as A)
  return Effect.tryPromise({
    try: () => Promise.resolve(result) as Promise<A>,
    catch: (error) =>
      BlockError.isBlockError(error)
        ? error
        : new BlockError.BlockError({ message: error instanceof Error ? error.message : String(error), cause: error })
  })
}
