/**
 * The checks of what a caller passes to `Runs` besides the workflow: the types forbid a wrongly
 * typed argument, but a JavaScript caller passes one anyway (`runs.plan(w, null)`,
 * `runs.start(w, input, { to: 5 })`). Without them it threw a `TypeError` deep in planning, or was
 * ignored (a misspelt option, a number as options), or reached the store. Each fails with
 * `Options.InvalidOption` naming the argument (`options.to`), the value and what it must be,
 * before anything is read or written.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Options from "../../Options.ts"

const isRecord = (value: unknown): boolean => typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * What an argument must be (an `Options.Check`): `undefined` (not given) is allowed unless the
 * spec says it is required.
 *
 * @since 0.1.0
 */
export type Spec = Options.Check

const spec = (holds: (value: unknown) => boolean, expected: string, required = false): Spec => (option, value) =>
  (value === undefined ? !required : holds(value)) ? undefined : new Options.InvalidOption({ option, value, expected })

/** A string naming something (`what`): a block id, a run id, a signal name; `required`: given. */
export const text = (what: string, required = false): Spec =>
  spec((value) => typeof value === "string", `expected ${what} (a string)`, required)

/**
 * Words saying why (a rejection's reason), required: a string with more than white space. An
 * empty one (`reject(run, node, process.env.REASON ?? "")`) was stored as the rejection's reason.
 */
export const reason: Spec = spec(
  (value) => typeof value === "string" && value.trim() !== "",
  "expected a reason (a string that is not empty or only white space)",
  true
)

/** A plain object of `what`. */
export const record = (what: string): Spec => spec(isRecord, `expected an object of ${what}`)

/** A function (required). */
export const callback: Spec = spec((value) => typeof value === "function", "expected a function", true)

/** An `effect/Duration` (required). */
export const duration: Spec = spec(Duration.isDuration, "expected a Duration", true)

/**
 * The first argument of `args` (name, value, spec) that does not hold its spec (`Options.check`).
 *
 * @since 0.1.0
 */
export const check = (
  args: ReadonlyArray<readonly [name: string, value: unknown, spec: Spec]>
): Effect.Effect<void, Options.InvalidOption> => Options.check(Object.fromEntries(args.map(([name, value, spec]) => [name, [value, spec] as const])))

/**
 * An options object (`options`, required or not): an object whose every key is one of `fields`
 * and holds its spec; a misspelt key is refused rather than ignored.
 *
 * @since 0.1.0
 */
export const options = (
  given: unknown,
  fields: { readonly [field: string]: Spec },
  required = false
): Effect.Effect<void, Options.InvalidOption> => {
  const names = Object.keys(fields).join(", ")
  if (given === undefined && !required) return Effect.void
  if (!isRecord(given)) return Effect.fail(new Options.InvalidOption({ option: "options", value: given, expected: `expected an object of ${names}` }))
  const entries = Object.entries(given as object)
  const unknown = entries.find(([field]) => !Object.hasOwn(fields, field))
  if (unknown !== undefined) {
    return Effect.fail(new Options.InvalidOption({ option: `options.${unknown[0]}`, value: unknown[1], expected: `expected an option named one of ${names}` }))
  }
  return check(Object.entries(fields).map(([field, spec]) => [`options.${field}`, (given as Record<string, unknown>)[field], spec] as const))
}
