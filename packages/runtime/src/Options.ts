/**
 * The checks of what `Runs.layer`, a worker and `Engine.execute` are configured with: a value no
 * execution can work with fails with `InvalidOption` (at construction, or before an execution
 * writes anything), naming the option, the value and what it must be.
 *
 * **Details**
 *
 * Without them a careless value failed late or silently: a concurrency that is `NaN` (a
 * `Number(process.env.X)` of an unset variable) gave a bound no handler ever got a permit under,
 * or a worker that never claimed a run; a heartbeat no shorter than its lease let the lease expire
 * between two renewals, so the run stopped with `LeaseLost` in its only process; a zero poll made
 * a worker query as fast as the database answers.
 *
 * @since 0.1.0
 */
import { Workflow } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Lease from "./Lease.ts"

/**
 * An option out of its range: its name (as passed, e.g. `leaseMs`, `limits.maxNodes`), the value
 * given, and what it must be. The class `Workflow.decode` refuses a limit with, so one `instanceof`
 * (or `catchTag("InvalidOption")`) serves both.
 *
 * @since 0.1.0
 */
export const InvalidOption = Workflow.InvalidOption

/**
 * An option out of its range (see the class above).
 *
 * @since 0.1.0
 */
export type InvalidOption = Workflow.InvalidOption

/**
 * The check of one option: `undefined` when `value` (named `option`) is allowed, else the refusal.
 *
 * @since 0.1.0
 */
export type Check = (option: string, value: unknown) => InvalidOption | undefined

const rule = (holds: (value: number) => boolean, expected: string): Check => (option, value) =>
  value === undefined || (typeof value === "number" && holds(value)) ? undefined : new InvalidOption({ option, value, expected })

/**
 * A duration in milliseconds greater than 0 (leases, heartbeats, polls).
 *
 * @since 0.1.0
 */
export const duration: Check = rule((v) => Number.isFinite(v) && v > 0, "expected a finite number of milliseconds greater than 0")

/**
 * A duration in milliseconds, 0 allowed (a grace period).
 *
 * @since 0.1.0
 */
export const grace: Check = rule((v) => Number.isFinite(v) && v >= 0, "expected a finite number of milliseconds, at least 0")

/**
 * A whole number of at least 1 (concurrency bounds, buffers).
 *
 * @since 0.1.0
 */
export const count: Check = rule((v) => Number.isSafeInteger(v) && v >= 1, "expected a whole number of at least 1")

/**
 * The first failed check of `options` (a record of option name to value and check), then the
 * lease's: a heartbeat renews the lease before it expires only when it is shorter than the lease,
 * and a holder fences itself `marginMs` before the expiry (`Lease.Terms`), which must leave the
 * heartbeat time to send a renewal first.
 *
 * @since 0.1.0
 */
export const check = (
  options: { readonly [option: string]: readonly [value: unknown, check: Check] },
  lease?: {
    readonly leaseMs: number | undefined
    readonly heartbeatMs: number | undefined
    readonly marginMs?: number | undefined
    readonly defaultLeaseMs: number
  }
): Effect.Effect<void, InvalidOption> => {
  for (const [option, [value, check]] of Object.entries(options)) {
    const invalid = check(option, value)
    if (invalid !== undefined) return Effect.fail(invalid)
  }
  if (lease !== undefined && lease.heartbeatMs !== undefined && lease.heartbeatMs >= (lease.leaseMs ?? lease.defaultLeaseMs)) {
    return Effect.fail(
      new InvalidOption({
        option: "heartbeatMs",
        value: lease.heartbeatMs,
        expected: `expected less than leaseMs (${lease.leaseMs ?? lease.defaultLeaseMs}): a lease must be renewed before it expires`
      })
    )
  }
  if (lease?.marginMs !== undefined) {
    const terms = Lease.terms({ ttlMs: lease.leaseMs ?? lease.defaultLeaseMs, heartbeatMs: lease.heartbeatMs })
    if (lease.marginMs >= terms.ttlMs - terms.heartbeatMs) {
      return Effect.fail(
        new InvalidOption({
          option: "marginMs",
          value: lease.marginMs,
          expected: `expected less than leaseMs less heartbeatMs (${terms.ttlMs - terms.heartbeatMs}): ` +
            "the holder of a lease would stop before its first renewal is sent"
        })
      )
    }
  }
  return Effect.void
}

/**
 * The checks of the engine's options (`Engine.Options`): its concurrency and each limit, named
 * after `prefix` (a worker's are `engine.concurrency`, ...).
 *
 * @since 0.1.0
 */
export const engine = (
  options: { readonly concurrency?: number | undefined; readonly limits?: Partial<Workflow.Limits> | undefined },
  prefix = ""
): { readonly [option: string]: readonly [value: unknown, check: Check] } => ({
  [`${prefix}concurrency`]: [options.concurrency, count],
  [`${prefix}limits`]: [options.limits, (option, value) => Workflow.invalidLimit(value, option)]
})
