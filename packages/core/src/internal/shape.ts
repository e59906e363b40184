/**
 * A hand-written fast path for the shape check of `Workflow.decode`: the generic `effect/Schema`
 * decoder costs tens of microseconds per block, which dominated decoding large files.
 *
 * `wellFormed` accepts only input that the schema decoder certainly accepts, and then returns what
 * the decoder returns: fresh objects for structs (keys in schema order, absent optional keys left
 * out), fresh arrays and records (keys in input order), JSON values shared, not copied. For anything
 * else (including everything unusual: non-plain objects, symbol keys,
 * `__proto__` keys, very deep JSON) it returns `undefined` and the caller runs the schema decoder,
 * so the errors stay exactly the schema's.
 */
import type * as Workflow from "../Workflow.ts"

type Fields = { readonly [key: string]: (value: unknown) => unknown }

/** Marks a rejected value; never a valid decoded value. */
const reject: unique symbol = Symbol("reject")

const isPlain = (value: unknown): value is { readonly [key: string]: unknown } => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/**
 * Enumerable own keys, or `undefined` when there is a symbol key or a `__proto__` key. (Like the
 * schema decoder, which reads records with `Object.keys` and never counts non-enumerable keys as
 * excess.)
 */
const plainKeys = (value: object): Array<string> | undefined => {
  const keys = Object.keys(value)
  if (Object.getOwnPropertySymbols(value).length > 0) return undefined
  for (let k = 0; k < keys.length; k++) if (keys[k] === "__proto__") return undefined
  return keys
}

const string = (value: unknown): unknown => (typeof value === "string" ? value : reject)
const boolean = (value: unknown): unknown => (typeof value === "boolean" ? value : reject)
const intAtLeast1 = (value: unknown): unknown => (Number.isSafeInteger(value) && (value as number) >= 1 ? value : reject)
const finiteAtLeast = (min: number) => (value: unknown): unknown =>
  typeof value === "number" && Number.isFinite(value) && value >= min ? value : reject
const oneOf = (literals: ReadonlyArray<unknown>) => (value: unknown): unknown => (literals.includes(value) ? value : reject)

const MAX_DEPTH = 256

/** Whether `value` is JSON as the schema's `Json` sees it; deep or cyclic values are left to the schema. */
const isJson = (value: unknown, depth: number): boolean => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true
  if (typeof value === "number") return Number.isFinite(value)
  if (typeof value !== "object" || depth > MAX_DEPTH) return false
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isJson(value[i], depth + 1)) return false
    return true
  }
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return false
  const record = value as { readonly [key: string]: unknown }
  for (const key in record) if (!isJson(record[key], depth + 1)) return false
  return true
}

const json = (value: unknown): unknown => (isJson(value, 0) ? value : reject)

const struct = (fields: Fields, required: ReadonlyArray<string>) => {
  const names = Object.keys(fields)
  return (value: unknown): unknown => {
    if (!isPlain(value)) return reject
    const keys = plainKeys(value)
    if (keys === undefined) return reject
    for (let k = 0; k < keys.length; k++) if (!Object.hasOwn(fields, keys[k]!)) return reject
    for (let k = 0; k < required.length; k++) if (!Object.hasOwn(value, required[k]!)) return reject
    const out: { [key: string]: unknown } = {}
    for (let k = 0; k < names.length; k++) {
      const name = names[k]!
      if (!Object.hasOwn(value, name)) continue
      const decoded = fields[name]!(value[name])
      if (decoded === reject) return reject
      out[name] = decoded
    }
    return out
  }
}

const array = (item: (value: unknown) => unknown) => (value: unknown): unknown => {
  if (!Array.isArray(value)) return reject
  const out = new Array<unknown>(value.length)
  for (let i = 0; i < value.length; i++) {
    const decoded = item(value[i])
    if (decoded === reject) return reject
    out[i] = decoded
  }
  return out
}

const record = (item: (value: unknown) => unknown) => (value: unknown): unknown => {
  if (!isPlain(value)) return reject
  const keys = plainKeys(value)
  if (keys === undefined) return reject
  const out: { [key: string]: unknown } = {}
  for (let k = 0; k < keys.length; k++) {
    const decoded = item(value[keys[k]!])
    if (decoded === reject) return reject
    out[keys[k]!] = decoded
  }
  return out
}

// Field order is the schema's (`Workflow.ts`): it is the key order of the decoded objects.
const retryPolicy = struct({
  maxAttempts: intAtLeast1,
  initialDelayMs: finiteAtLeast(0),
  backoffFactor: finiteAtLeast(1),
  maxDelayMs: finiteAtLeast(0)
}, ["maxAttempts"])

const block = struct({
  id: string,
  type: string,
  params: record(json),
  name: string,
  volatile: boolean,
  retry: retryPolicy,
  disabled: boolean
}, ["id", "type"])

const edge = struct({ source: string, target: string, handle: string }, ["source", "target"])

const loop = struct({
  id: string,
  body: array(string),
  kind: oneOf(["count", "forEach", "while"]),
  count: json,
  items: json,
  condition: json,
  maxIterations: intAtLeast1,
  name: string
}, ["id", "body", "kind"])

const parallel = struct({
  id: string,
  body: array(string),
  kind: oneOf(["count", "collection"]),
  count: json,
  items: json,
  concurrency: intAtLeast1,
  name: string
}, ["id", "body", "kind"])

const inputDeclaration = struct({
  type: oneOf(["string", "number", "boolean", "object", "array", "json"]),
  required: boolean,
  default: json,
  description: string
}, ["type"])

const workflow = struct({
  $schema: string,
  version: oneOf([1]),
  id: string,
  name: string,
  blocks: array(block),
  edges: array(edge),
  loops: array(loop),
  parallels: array(parallel),
  inputs: record(inputDeclaration),
  outputs: array(string),
  variables: record(json)
}, ["id", "blocks", "edges"])

/** The decoded workflow when `input` certainly has the schema's shape, else `undefined` (run the schema decoder). */
export const wellFormed = (input: unknown): Workflow.Workflow | undefined => {
  const decoded = workflow(input)
  return decoded === reject ? undefined : (decoded as Workflow.Workflow)
}
