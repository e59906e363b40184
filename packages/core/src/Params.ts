/**
 * Block params: the schemas of the built-in block types' params, the secret marker of `http`
 * blocks, and the check `Workflow.decode` runs on a block's literal params (the runtime runs the
 * same check with the schemas custom handlers declare).
 *
 * **Details**
 *
 * A param value that holds a reference (see `Reference`) is known only once it is resolved, so
 * `problem` reports a schema issue only where the offending value is literal: an issue at a value
 * that is, contains or lies inside a reference is left to the handler, which checks its resolved
 * inputs at run time. A missing required key is always reported.
 *
 * A secret is `{ "$secret": "NAME" }` (exactly that key; the name of an environment variable).
 * Only an `http` block reads secrets, and only in its `url`, `query`, `headers`, `auth`, `json` and
 * `text` params; its handler reads the value from the effect `Config` (the environment) when it
 * calls, so the journal holds the marker, never the value.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Reference from "./Reference.ts"
import type { Json, JsonPath } from "./Workflow.ts"

/**
 * What is wrong with a block's params: a reason and the path inside the params.
 *
 * @since 0.1.0
 */
export interface Problem {
  readonly reason: string
  readonly path: JsonPath
}

// The `u` flag lets `Schema.toJsonSchemaDocument` export the pattern (it drops patterns without it).
const secretName = /^[A-Za-z_][A-Za-z0-9_]*$/u

/**
 * The secret marker: `{ "$secret": "NAME" }`, NAME an environment variable's name.
 *
 * @since 0.1.0
 */
export const Secret = Schema.Struct({
  $secret: Schema.String.check(Schema.isPattern(secretName))
}).annotate({ description: "A secret read from the environment when the block runs: {\"$secret\": \"NAME\"}." })

/**
 * The secret name of a value of the form `{ "$secret": "NAME" }`, else `undefined`.
 *
 * @since 0.1.0
 */
export const secretOf = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
  const keys = Object.keys(value)
  const name = (value as { readonly $secret?: unknown }).$secret
  return keys.length === 1 && typeof name === "string" && secretName.test(name) ? name : undefined
}

/**
 * The HTTP methods of `http` blocks.
 *
 * @since 0.1.0
 */
export const httpMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const

/**
 * The default `timeoutMs` of an `http` block: 30 seconds.
 *
 * @since 0.1.0
 */
export const defaultHttpTimeoutMs = 30_000

/**
 * The longest `timeoutMs` of an `http` block: 5 minutes (a longer call belongs in a `wait` for a
 * callback).
 *
 * @since 0.1.0
 */
export const maxHttpTimeoutMs = 300_000

/**
 * The params of an `http` block, where `text` is the schema of a text value (`Text` as written,
 * a string or a secret; `Schema.String` once the secrets are read).
 *
 * @since 0.1.0
 */
export const httpWith = <T extends Schema.Top>(text: T) =>
  Schema.Struct({
    method: Schema.optionalKey(Schema.Literals(httpMethods)),
    url: text,
    query: Schema.optionalKey(Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Finite, Schema.Boolean, text]))),
    headers: Schema.optionalKey(Schema.Record(Schema.String, text)),
    auth: Schema.optionalKey(Schema.Union([
      Schema.Struct({ bearer: text }),
      Schema.Struct({ basic: Schema.Struct({ username: text, password: text }) })
    ])),
    json: Schema.optionalKey(Schema.Json),
    text: Schema.optionalKey(text),
    timeoutMs: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxHttpTimeoutMs }))),
    response: Schema.optionalKey(Schema.Literals(["auto", "json", "text"]))
  })

/**
 * The params of an `http` block as written: text values may be secrets.
 *
 * @since 0.1.0
 */
export const http = httpWith(Schema.Union([Schema.String, Secret]))

/**
 * A built-in type's params: their schema, whether a key the schema does not name is an error, and
 * the rules that span several params (a param that holds a reference counts as present; its value is
 * judged only when literal), with `jsonRules`, what the rules say as JSON Schema keywords on the
 * params object (for `Workflow.jsonSchema`; a reference is `#/$defs/Reference` there).
 *
 * @since 0.1.0
 */
export interface Spec {
  readonly schema: Schema.Decoder<unknown>
  readonly strict?: boolean | undefined
  readonly rules?: ((params: { readonly [key: string]: Json }) => Problem | undefined) | undefined
  readonly jsonRules?: { readonly [keyword: string]: unknown } | undefined
}

const httpRules = (params: { readonly [key: string]: Json }): Problem | undefined => {
  if (params["json"] !== undefined && params["text"] !== undefined) return { reason: "pass json or text, not both", path: ["text"] }
  const method = params["method"]
  const body = params["json"] !== undefined ? "json" : params["text"] !== undefined ? "text" : undefined
  if (body !== undefined && (method === undefined || method === "GET" || method === "HEAD")) {
    return { reason: `a ${typeof method === "string" ? method : "GET"} request has no body: set method (POST, PUT, PATCH...) or drop ${body}`, path: [body] }
  }
  const url = params["url"]
  if (typeof url === "string" && !/^https?:\/\/[^/?#]/i.test(url)) return { reason: `url must be an absolute http:// or https:// URL, not ${JSON.stringify(url.slice(0, 80))}`, path: ["url"] }
  return undefined
}

// `httpRules` for editors. The URL pattern applies to a literal string only (not to a secret or a
// reference), and a method given by a reference may be any.
const httpJsonRules = {
  not: { required: ["json", "text"] },
  if: { anyOf: [{ required: ["json"] }, { required: ["text"] }] },
  then: { required: ["method"], properties: { method: { not: { enum: ["GET", "HEAD"] } } } },
  properties: { url: { pattern: "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]" } }
}

const routerRules = (params: { readonly [key: string]: Json }): Problem | undefined => {
  const routes = params["routes"]
  const noRoutes = routes === undefined || (Array.isArray(routes) && routes.length === 0)
  if (noRoutes && params["default"] === undefined) {
    return { reason: "a router needs routes ([{ handle, equals }]) or a default: with neither it always fails", path: ["routes"] }
  }
  return undefined
}

const routerJsonRules = {
  anyOf: [{ required: ["default"] }, { required: ["routes"], properties: { routes: { not: { type: "array", maxItems: 0 } } } }]
}

const sleepRules = (params: { readonly [key: string]: Json }): Problem | undefined =>
  params["ms"] === undefined && params["until"] === undefined
    ? { reason: "a sleep needs ms (a number of milliseconds) or until (epoch ms or an ISO date)", path: ["ms"] }
    : undefined

const sleepJsonRules = { anyOf: [{ required: ["ms"] }, { required: ["until"] }] }

/**
 * The most UTF-8 bytes a `wait` block's signal name may take, as an id (`Workflow.maxIdBytes`): the
 * name is a key of the SQL stores' index of deliveries, which refuses an entry over about 2.7 kB, so a
 * run waiting on a longer one could never be signalled.
 *
 * @since 0.1.0
 */
export const maxSignalBytes = 256

/**
 * The UTF-8 length of `text` when it is over `limit` bytes, else `undefined`; measured only when
 * its length could put it over (a UTF-16 code unit takes at most 3 bytes).
 *
 * @since 0.1.0
 */
export const utf8LengthOver = (text: string, limit: number): number | undefined => {
  if (text.length * 3 <= limit) return undefined
  const bytes = new TextEncoder().encode(text).length
  return bytes > limit ? bytes : undefined
}

// A signal name decided by a reference is not judged here: its value is known only when the wait
// runs, which checks it then.
const waitRules = (params: { readonly [key: string]: Json }): Problem | undefined => {
  const signal = params["signal"]
  const bytes = typeof signal === "string" ? utf8LengthOver(signal, maxSignalBytes) : undefined
  return bytes !== undefined ? { reason: `a signal name takes at most ${maxSignalBytes} bytes, not ${bytes}`, path: ["signal"] } : undefined
}

const operators = ["eq", "neq", "lt", "lte", "gt", "gte", "contains", "exists"] as const

/**
 * The params of every built-in block type (the handler types of `Builtins` and the engine's
 * intrinsic types) that `Workflow.decode` checks.
 *
 * **Gotchas**
 *
 * Only `http` refuses keys its schema does not name: the older types always ignored extra params,
 * and an approval's extra params are what its approver reads. An app that replaces a built-in
 * type with its own handler still gets the built-in's params checked.
 *
 * @since 0.1.0
 */
export const builtins: { readonly [type: string]: Spec } = {
  value: { schema: Schema.Struct({ value: Schema.Json }) },
  template: { schema: Schema.Struct({ template: Schema.String, values: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json)) }) },
  condition: { schema: Schema.Struct({ op: Schema.Literals(operators) }) },
  router: {
    schema: Schema.Struct({
      routes: Schema.optionalKey(Schema.Array(Schema.Struct({ handle: Schema.String, equals: Schema.optionalKey(Schema.Json) }))),
      default: Schema.optionalKey(Schema.String)
    }),
    rules: routerRules,
    jsonRules: routerJsonRules
  },
  fail: { schema: Schema.Struct({ message: Schema.optionalKey(Schema.String) }) },
  http: { schema: http, strict: true, rules: httpRules, jsonRules: httpJsonRules },
  approval: { schema: Schema.Struct({ reason: Schema.optionalKey(Schema.String) }) },
  wait: { schema: Schema.Struct({ signal: Schema.String }), rules: waitRules },
  sleep: { schema: Schema.Struct({}), rules: sleepRules, jsonRules: sleepJsonRules },
  child: {
    schema: Schema.Struct({
      workflow: Schema.Union([Schema.String, Schema.Record(Schema.String, Schema.Json)]),
      input: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json))
    })
  }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const describe = (value: unknown): string =>
  value === undefined ? "nothing" : value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value).slice(0, 60)}`

// Whether the value at `path` is decided by a reference: a reference on the way to it, or (unless
// `inside` only) inside it.
const resolvedLater = (params: Json, path: ReadonlyArray<PropertyKey>, inside = false): boolean => {
  let value: Json | undefined = params
  for (const key of path) {
    if (value === undefined || value === null || typeof value !== "object") return false
    if (Object.hasOwn(value, "$ref")) return true
    value = (value as { readonly [key: string]: Json })[key as string]
  }
  return !inside && value !== undefined && Reference.hasReferences(value)
}

// `issue` (at `path` in `params`) without what references may fix, `undefined` when nothing is left:
// an issue at a value decided by a reference goes, a key no value makes expected only inside a
// reference, and a union goes with any one member whose issues all go (the formatter would flatten
// the members' issues, so a union's other members would still report theirs).
const unfixable = (params: Json, issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>): SchemaIssue.Issue | undefined => {
  switch (issue._tag) {
    case "Pointer": {
      const inner = unfixable(params, issue.issue, [...path, ...issue.path])
      return inner === undefined ? undefined : new SchemaIssue.Pointer(issue.path, inner)
    }
    case "Composite": {
      const kept = issue.issues.flatMap((child) => unfixable(params, child, path) ?? [])
      return kept.length === 0 ? undefined : new SchemaIssue.Composite(issue.ast, kept as [SchemaIssue.Issue, ...Array<SchemaIssue.Issue>])
    }
    case "AnyOf": {
      if (issue.issues.length === 0) return resolvedLater(params, path) ? undefined : issue
      const members = issue.issues.map((member) => unfixable(params, member, path))
      return members.includes(undefined) ? undefined : new SchemaIssue.AnyOf(issue.ast, members as Array<SchemaIssue.Issue>)
    }
    case "UnexpectedKey":
      return resolvedLater(params, path, true) ? undefined : issue
    default:
      return resolvedLater(params, path) ? undefined : issue
  }
}

const valueAt = (params: Json, path: ReadonlyArray<PropertyKey>): unknown => {
  let value: unknown = params
  for (const key of path) value = typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined
  return value
}

/**
 * The first problem of `params` under `schema` that no reference can fix (see the module's
 * details), or `undefined`. `strict` makes a key the schema does not name a problem.
 *
 * @since 0.1.0
 */
export const problem = (
  schema: Schema.Decoder<unknown>,
  params: { readonly [key: string]: Json },
  strict = false
): Problem | undefined => {
  const decoded = Schema.decodeUnknownResult(schema)(params, { errors: "all", onExcessProperty: strict ? "error" : "ignore" })
  if (Result.isSuccess(decoded)) return undefined
  const left = unfixable(params, decoded.failure.issue, [])
  if (left === undefined) return undefined
  const issue = formatter(left).issues[0]!
  const path = (issue.path ?? []).map((key) => (typeof key === "object" ? key.key : key))
  const value = valueAt(params, path)
  const reason = issue.message === "Missing key" ? "missing param" : `${issue.message}, got ${describe(value)}`
  return { reason, path: path.map((key) => (typeof key === "number" ? key : String(key))) }
}

/**
 * The first problem of a built-in block's literal params (`undefined` for other types).
 *
 * @since 0.1.0
 */
export const builtinProblem = (type: string, params: { readonly [key: string]: Json }): Problem | undefined => {
  const spec = builtins[type]
  if (spec === undefined) return undefined
  return problem(spec.schema, params, spec.strict) ?? spec.rules?.(params)
}

/**
 * The params of an `http` block that may hold secrets.
 *
 * @since 0.1.0
 */
export const secretFields: ReadonlySet<string> = new Set(["url", "query", "headers", "auth", "json", "text"])

/**
 * The first secret marker of a block's params that is misplaced (outside an `http` block's
 * `url`, `query`, `headers`, `auth`, `json`, `text`) or malformed (an object with a `$secret`
 * key that is not `{ "$secret": "NAME" }`), with the path inside the params.
 *
 * @since 0.1.0
 */
export const secretProblem = (type: string, params: Json): Problem | undefined => {
  // Paths are built only for a problem: each visited value keeps its parent's slot and its key.
  const values: Array<Json> = [params]
  const parents: Array<number> = [-1]
  const keys: Array<string | number> = [""]
  const pathOf = (slot: number): JsonPath => {
    const path: Array<string | number> = []
    for (let at = slot; at > 0; at = parents[at]!) path.push(keys[at]!)
    return path.reverse()
  }
  const stack = [0]
  while (stack.length > 0) {
    const slot = stack.pop()!
    const value = values[slot]!
    if (value === null || typeof value !== "object") continue
    const push = (child: Json, key: string | number) => {
      if (child === null || typeof child !== "object") return
      stack.push(values.length)
      values.push(child)
      parents.push(slot)
      keys.push(key)
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) push(value[i]!, i)
      continue
    }
    if (Object.hasOwn(value, "$secret")) {
      if (secretOf(value) === undefined) {
        return { reason: "a secret is {\"$secret\": \"NAME\"}, NAME an environment variable's name (letters, digits, _)", path: pathOf(slot) }
      }
      const path = pathOf(slot)
      if (type !== "http" || !secretFields.has(String(path[0]))) {
        return { reason: "only an http block reads secrets, in its url, query, headers, auth, json or text", path }
      }
      continue
    }
    const entries = Object.keys(value)
    for (let i = entries.length - 1; i >= 0; i--) push((value as { readonly [key: string]: Json })[entries[i]!]!, entries[i]!)
  }
  return undefined
}
