/**
 * What a handler call gave, as an effect. TypeScript handlers return an `Effect`; a JavaScript
 * handler (a `--handlers` module) may return what its author is used to: a Promise, awaited (a
 * rejection is the `BlockError` it rejects with, else a retryable `BlockError` carrying it), or the
 * output itself. Nothing a handler returns is left unobserved: an unawaited rejected Promise would
 * take the whole process down.
 */
import * as Effect from "effect/Effect"
import * as BlockError from "../BlockError.ts"

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"

/** The result of a handler call as an effect (see the module). */
export const asEffect = <A, R>(result: Effect.Effect<A, BlockError.BlockError, R> | PromiseLike<A> | A): Effect.Effect<A, BlockError.BlockError, R> => {
  if (Effect.isEffect(result)) return result as Effect.Effect<A, BlockError.BlockError, R>
  if (!isThenable(result)) return Effect.succeed(result as A)
  return Effect.tryPromise({
    try: () => Promise.resolve(result) as Promise<A>,
    catch: (error) =>
      BlockError.isBlockError(error)
        ? error
        : new BlockError.BlockError({ message: error instanceof Error ? error.message : String(error), cause: error })
  })
}
