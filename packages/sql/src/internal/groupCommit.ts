/**
 * Group commit: requests that arrive while a write is in flight are written together by the next
 * one (one statement, one round trip), and each caller resumes once its own request is committed.
 * A write takes at most one request per key, so rows of one run never conflict within a statement,
 * and requests up to a weight, so large values of many callers do not add up in one statement.
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/** Submits one request and waits for its committed result. */
export type Submit<A, B, E = never> = (key: string, request: A) => Effect.Effect<B, E>

interface Pending<A, B, E> {
  readonly key: string
  readonly request: A
  readonly done: (exit: Exit.Exit<B, E>) => void
}

/** How large a batch may grow: `maxBatch` requests (default 256) of at most `maxWeight` in all by `weigh`. */
export interface Options<A> {
  readonly maxBatch?: number | undefined
  /** A request's weight (e.g. the characters of the values it writes); default 0. */
  readonly weigh?: ((request: A) => number) | undefined
  /** A batch takes a request only while their weights stay within this, or when it is the first. */
  readonly maxWeight?: number | undefined
}

/**
 * A group committer over `write`, which must return one result per request, in order. A failed
 * write fails every request in it with the write's cause.
 */
export const make = <A, B, E>(
  write: (requests: ReadonlyArray<{ readonly key: string; readonly request: A }>) => Effect.Effect<ReadonlyArray<B>, E>,
  options: Options<A> = {}
): Submit<A, B, E> => {
  const maxBatch = options.maxBatch ?? 256
  const weigh = options.weigh
  const maxWeight = options.maxWeight ?? Infinity
  let queue: Array<Pending<A, B, E>> = []
  let flushing = false
  const flush = (services: Context.Context<never>): void => {
    flushing = true
    const batch: Array<Pending<A, B, E>> = []
    const rest: Array<Pending<A, B, E>> = []
    const keys = new Set<string>()
    let weight = 0
    for (const pending of queue) {
      const more = weigh === undefined ? 0 : weigh(pending.request)
      if (batch.length < maxBatch && !keys.has(pending.key) && (batch.length === 0 || weight + more <= maxWeight)) {
        keys.add(pending.key)
        batch.push(pending)
        weight += more
      } else {
        rest.push(pending)
      }
    }
    queue = rest
    // Forked with the first caller's services, so its tracer and logger see the statement.
    const fiber = Effect.runForkWith(services)(Effect.exit(write(batch)))
    fiber.addObserver((outer) => {
      const exit = Exit.isSuccess(outer) ? outer.value : Exit.die(Cause.squash(outer.cause))
      if (Exit.isSuccess(exit)) {
        batch.forEach((pending, i) => pending.done(Exit.succeed(exit.value[i]!)))
      } else {
        for (const pending of batch) pending.done(Exit.failCause(exit.cause))
      }
      if (queue.length > 0) flush(services)
      else flushing = false
    })
  }
  return (key, request) =>
    Effect.flatMap(Effect.context<never>(), (services) =>
      Effect.callback<B, E>((resume) => {
        queue.push({ key, request, done: (exit) => resume(exit) })
        if (!flushing) flush(services)
      }))
}
