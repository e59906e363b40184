/**
 * The built-in block types. None evaluates user code: conditions and routers are declarative
 * comparisons over resolved inputs.
 *
 * - `trigger` — output: the run input.
 * - `value` — `{ value }`; output: `value`.
 * - `template` — `{ template: "Hi {{name}}", values: { name: ... } }`; output: the string with every
 *   `{{key}}` (spaces allowed inside the braces) replaced by `values[key]` (strings as they are,
 *   other JSON values as canonical JSON, `Fingerprint.canonical`: object keys sorted, no
 *   whitespace, so the text never depends on the key order a value was built in). A placeholder
 *   without a value fails the block.
 * - `condition` — `{ left, op, right }`, `op` one of `eq neq lt lte gt gte contains exists`;
 *   output: the boolean, decision `"true"` / `"false"`. `eq` / `neq` compare JSON structurally;
 *   ordering ops need two numbers or two strings; `contains` tests a substring, an array element
 *   or an object key; `exists` is true when `left` is neither absent nor `null` (`right` unused).
 * - `router` — `{ value, routes: [{ handle, equals }], default? }`; the first route whose `equals`
 *   equals `value` wins, else `default`; output and decision: the chosen handle. No match and no
 *   default fails the block.
 * - `response` — `{ value }`; output: `value`. Responses are the workflow's observed outputs.
 * - `fail` — `{ message }`; always fails, not retryable.
 * - `http` — `{ method?, url, query?, headers?, auth?, json? | text?, timeoutMs?, response? }`: one
 *   request (`method` GET by default; `query` values are appended to `url`; `auth` is
 *   `{ bearer }` or `{ basic: { username, password } }`; `json` is sent as JSON, `text` as text;
 *   `response` `"auto"` (JSON when the content type says so, else text), `"json"` or `"text"`).
 *   Output: `{ status, headers, body }` (header names lower-case). `timeoutMs` bounds the whole
 *   exchange, body included: default 30 000 (`Params.defaultHttpTimeoutMs`), at most 300 000;
 *   running out of it, an unreachable host, a 5xx or a 429 are retryable failures — the block's
 *   `retry` policy retries them (without one the block fails at once), waiting at least the
 *   response's `Retry-After` (seconds or a date; over 5 minutes the block fails instead). Any other
 *   4xx fails the block for good with the status and the first 200 characters of the body.
 *   **Secrets**: `{ "$secret": "NAME" }` as a text value of `url`, `query`, `headers`, `auth`, or
 *   anywhere in `json`, is read from the effect `Config` (the environment variable NAME) when the
 *   request is made: the journal keeps the marker, and the value is replaced by `[secret NAME]`
 *   wherever it (or its URL-encoded or Basic form) shows up in the output or an error message (a
 *   server that echoes a credential cannot leak it into the journal). Only markers written in the
 *   block's params are read: one arriving through a reference is data, sent as it is. `decode`
 *   refuses a secret anywhere else (`Workflow.InvalidSecret`); secrets do not come from `vars`,
 *   which are stored with the workflow.
 *
 * `Workflow.decode` checks every built-in type's literal params against its schema
 * (`Params.builtins`); what references supply is checked here when the block runs. Invalid params
 * are permanent (non-retryable) `BlockError`s.
 *
 * The engine itself implements three more types, which no handler can replace (`Engine.intrinsicTypes`):
 *
 * - `approval` — `{ reason? }`; pauses its branch until `Runs.approve` (output: the payload) or
 *   `Runs.reject` (the node fails with `rejected: <reason>`).
 * - `wait` — `{ signal }`; suspends its branch until `Runs.signal(run, signal, payload)`; output:
 *   the payload. A signal sent before the node is reached is kept and taken at once.
 * - `sleep` — `{ ms }` or `{ until }` (epoch ms or an ISO date); suspends its branch until then, on
 *   the effect `Clock`; output: `{ wakeAt }`.
 *
 * @since 0.1.0
 */
import { Fingerprint } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as BlockError from "./BlockError.ts"
import type { Handler, HandlerContext, Json } from "./Handler.ts"
import { decide } from "./Handler.ts"
import * as JsonValue from "./internal/json.ts"

const invalid = (ctx: HandlerContext, message: string) =>
  Effect.fail(BlockError.permanent(`${ctx.block.type} block ${ctx.block.id}: ${message}`))

const param = (ctx: HandlerContext, key: string): Json | undefined =>
  Object.hasOwn(ctx.inputs, key) ? ctx.inputs[key] : undefined

/**
 * `trigger`: outputs the run input.
 *
 * @since 0.1.0
 */
export const trigger: Handler = (ctx) => Effect.succeed(ctx.input)

/**
 * `value`: outputs its `value` param.
 *
 * @since 0.1.0
 */
export const value: Handler = (ctx) => {
  const v = param(ctx, "value")
  return v === undefined ? invalid(ctx, "missing param \"value\"") : Effect.succeed(v)
}

const placeholder = /\{\{\s*([^{}\s]+)\s*\}\}/g

/**
 * `template`: fills `{{key}}` placeholders of `template` from `values`.
 *
 * @since 0.1.0
 */
export const template: Handler = (ctx) => {
  const text = param(ctx, "template")
  if (typeof text !== "string") return invalid(ctx, `param "template" must be a string, got ${JsonValue.typeOf(text)}`)
  const values = param(ctx, "values") ?? {}
  if (!JsonValue.isObject(values)) return invalid(ctx, `param "values" must be an object, got ${JsonValue.typeOf(values)}`)
  let missing: string | undefined
  const out = text.replace(placeholder, (_, key: string) => {
    if (!Object.hasOwn(values, key)) {
      missing ??= key
      return ""
    }
    const v = values[key]!
    return typeof v === "string" ? v : Fingerprint.canonical(v)
  })
  return missing === undefined ? Effect.succeed(out) : invalid(ctx, `no value for placeholder {{${missing}}}`)
}

/**
 * The comparison operators of `condition`.
 *
 * @since 0.1.0
 */
export const operators = ["eq", "neq", "lt", "lte", "gt", "gte", "contains", "exists"] as const

/**
 * A comparison operator of `condition`.
 *
 * @since 0.1.0
 */
export type Operator = (typeof operators)[number]

const isOperator = (op: Json | undefined): op is Operator => typeof op === "string" && (operators as ReadonlyArray<string>).includes(op)

const order = (left: Json | undefined, right: Json | undefined): number | string => {
  if (typeof left === "number" && typeof right === "number") return left - right
  if (typeof left === "string" && typeof right === "string") return left < right ? -1 : left > right ? 1 : 0
  return `cannot order ${JsonValue.typeOf(left)} and ${JsonValue.typeOf(right)}`
}

/**
 * Evaluates `left op right`; a string is the reason the comparison is not defined.
 *
 * @since 0.1.0
 */
export const compare = (left: Json | undefined, op: Operator, right: Json | undefined): boolean | string => {
  switch (op) {
    case "exists":
      return left !== undefined && left !== null
    case "eq":
    case "neq": {
      if (left === undefined || right === undefined) return `${op} needs both left and right`
      return JsonValue.equals(left, right) === (op === "eq")
    }
    case "contains": {
      if (typeof left === "string") return typeof right === "string" ? left.includes(right) : "a string contains only strings"
      if (Array.isArray(left)) return right !== undefined && left.some((x) => JsonValue.equals(x, right))
      if (JsonValue.isObject(left)) return typeof right === "string" ? Object.hasOwn(left, right) : "an object contains only string keys"
      return `cannot test containment in ${JsonValue.typeOf(left)}`
    }
    default: {
      const d = order(left, right)
      if (typeof d === "string") return d
      return op === "lt" ? d < 0 : op === "lte" ? d <= 0 : op === "gt" ? d > 0 : d >= 0
    }
  }
}

/**
 * `condition`: compares `left` and `right`; decision `"true"` or `"false"`.
 *
 * @since 0.1.0
 */
export const condition: Handler = (ctx) => {
  const op = param(ctx, "op")
  if (!isOperator(op)) return invalid(ctx, `param "op" must be one of ${operators.join(", ")}`)
  const result = compare(param(ctx, "left"), op, param(ctx, "right"))
  return typeof result === "string" ? invalid(ctx, result) : Effect.succeed(decide(String(result), result))
}

/**
 * `router`: picks the first route whose `equals` equals `value`, else `default`.
 *
 * @since 0.1.0
 */
export const router: Handler = (ctx) => {
  const v = param(ctx, "value") ?? null
  const routes = param(ctx, "routes") ?? []
  if (!Array.isArray(routes)) return invalid(ctx, "param \"routes\" must be an array")
  for (let r = 0; r < routes.length; r++) {
    const route = routes[r]!
    if (!JsonValue.isObject(route) || typeof route["handle"] !== "string") {
      return invalid(ctx, `routes[${r}] must be { handle: string, equals }`)
    }
    if (Object.hasOwn(route, "equals") && JsonValue.equals(route["equals"]!, v)) {
      return Effect.succeed(decide(route["handle"], route["handle"]))
    }
  }
  const fallback = param(ctx, "default")
  if (typeof fallback === "string") return Effect.succeed(decide(fallback, fallback))
  return invalid(ctx, `no route matches ${JSON.stringify(v)} and there is no default`)
}

/**
 * `response`: outputs its `value` param (an observed output of the workflow).
 *
 * @since 0.1.0
 */
export const response: Handler = (ctx) => {
  const v = param(ctx, "value")
  return Effect.succeed(v === undefined ? null : v)
}

/**
 * `fail`: fails with its `message` param.
 *
 * @since 0.1.0
 */
export const fail: Handler = (ctx) => {
  const message = param(ctx, "message")
  return Effect.fail(BlockError.permanent(typeof message === "string" ? message : `fail block ${ctx.block.id}`))
}

/**
 * `http`: one HTTP request; output `{ status, headers, body }` (see the module's header).
 *
 * @since 0.1.0
 */
export const http: Handler = (ctx) =>
  // The HTTP client (a dozen modules) is loaded by the first http block, not by every command.
  Effect.flatMap(Effect.promise(() => import("./internal/http.ts")), (Http) => Http.http(ctx))

/**
 * The longest `Retry-After` an `http` block waits for (5 minutes): a longer one fails the block.
 *
 * @since 0.1.0
 */
export const maxRetryAfterMs = 300_000

/**
 * Every built-in handler by block type.
 *
 * @since 0.1.0
 */
export const handlers: Readonly<Record<string, Handler>> = {
  trigger,
  value,
  template,
  condition,
  router,
  response,
  fail,
  http
}
