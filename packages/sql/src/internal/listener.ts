/**
 * A LISTEN kept for the life of a scope, for the worker's channel and every `RunStore.watch`: a
 * listener lost with its connection (a terminated backend, a server restart, a failover) is set
 * up again, else its owner would poll for the rest of its life.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Database from "../Database.ts"

/** What a kept listener does with its channel. */
export interface Options {
  /** Receives each payload. */
  readonly onPayload: (payload: string) => Effect.Effect<void>
  /** Runs each time listening starts again after a loss: what was notified in between was missed. */
  readonly onAgain: Effect.Effect<void>
  /** How long to wait before listening again (the listener's owner polls meanwhile). */
  readonly retryMs: number
}

/**
 * Listens on `channel` until the current scope closes: LISTEN is active once this returns (unless
 * it failed: logged), and a listener that fails or is lost is set up again every `retryMs`.
 *
 * **Details**
 *
 * Each listener holds its connection in a scope of its own, closed once it is lost, so a dead
 * connection goes back to the pool at once. A failure is logged as a warning when listening stops
 * (or cannot start at all), and at debug level while attempts to listen again fail, so a database
 * that stays away does not flood the log.
 */
export const keep = (
  db: Database.Database["Service"],
  channel: string,
  options: Options
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { onAgain, onPayload, retryMs } = options
    const message = `listening on ${channel} failed; polling until it listens again`
    let listening = true
    const failed = (cause: unknown) => {
      const stopped = listening
      listening = false
      return stopped ? Effect.logWarning(message, cause) : Effect.logDebug(message, cause)
    }
    const forward = (payloads: Stream.Stream<string, unknown>) => Stream.runForEach(payloads, onPayload)
    const firstScope = yield* Scope.fork(yield* Scope.Scope)
    const first = yield* Effect.catchCause(
      Scope.provide(firstScope)(db.listen(channel)),
      (cause) => Effect.as(failed(cause), Stream.empty)
    )
    const again = Effect.scoped(Effect.gen(function*() {
      const payloads = yield* db.listen(channel)
      listening = true
      yield* onAgain
      yield* forward(payloads)
    }))
    // A stream that ends is as lost as one that fails.
    const untilLost = (listener: Effect.Effect<void, unknown>) =>
      Effect.catchCause(Effect.andThen(listener, Effect.suspend(() => failed("the listener ended"))), failed)
    yield* Effect.forkScoped(Effect.gen(function*() {
      yield* untilLost(forward(first))
      yield* Scope.close(firstScope, Exit.void)
      for (;;) {
        yield* Effect.sleep(retryMs)
        yield* untilLost(again)
      }
    }))
  })
