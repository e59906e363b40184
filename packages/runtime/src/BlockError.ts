/**
 * The error a block handler fails with. The engine retries a failed attempt only when the error is
 * retryable and the block's retry policy has attempts left.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

const TypeId = "~ripple/runtime/BlockError"

/**
 * A block handler failed.
 *
 * **Details**
 *
 * `retryable` defaults to `true`: transient failures (network, rate limits) are the common case;
 * handlers mark deterministic failures (bad params, a missing template key) `retryable: false` so a
 * retry policy does not waste attempts on them.
 *
 * @since 0.1.0
 */
export class BlockError extends Data.TaggedError("BlockError")<{
  readonly message: string
  readonly retryable?: boolean | undefined
  /**
   * The least time the next attempt waits, in milliseconds (an HTTP `Retry-After`): the block's
   * retry policy waits this long when its backoff is shorter, whatever its `maxDelayMs`.
   */
  readonly retryAfterMs?: number | undefined
  readonly cause?: unknown
}> {
  /** Whether another attempt may succeed. */
  get isRetryable(): boolean {
    return this.retryable !== false
  }

  /** What `isBlockError` looks for. */
  get [TypeId](): typeof TypeId {
    return TypeId
  }
}

/**
 * A block error no retry can fix (invalid params, a missing key, an explicit `fail` block).
 *
 * @since 0.1.0
 */
export const permanent = (message: string, cause?: unknown): BlockError =>
  new BlockError({ message, retryable: false, cause })

/**
 * Whether a value is a `BlockError`.
 *
 * **Gotchas**
 *
 * Not `instanceof`: the bundled `ripple` binary holds its own copy of this module, and a workflow
 * module's handlers fail with the copy they import from `@ripple/runtime`.
 *
 * @since 0.1.0
 */
export const isBlockError = (u: unknown): u is BlockError =>
  typeof u === "object" && u !== null && (u as { readonly [TypeId]?: unknown })[TypeId] === TypeId
