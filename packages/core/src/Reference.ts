/**
 * References: param values that read another block's output, the run input, a workflow variable,
 * or the index/item of the enclosing loop or parallel.
 *
 * **Syntax** (the only one): a JSON object with exactly one key, `{ "$ref": "<path>" }`, anywhere
 * inside a block's `params` or a container's `count` / `items` / `condition`. Paths:
 *
 * - `blocks.<id>.output` then optional `.<key>` / `.<integer>` segments — the output of a block,
 *   or of a container (the aggregate of its iterations/branches);
 * - `input.<key>...` — the run input;
 * - `vars.<name>...` — a workflow variable;
 * - `loop.index`, `loop.item...` — the innermost enclosing loop;
 * - `parallel.index`, `parallel.item...` — the innermost enclosing parallel.
 *
 * A segment made of decimal digits (without leading zeros) is an array index; on an object it reads
 * the key of the same spelling. Keys therefore cannot contain `.`; an object that has a `$ref` key
 * but is not of the exact form above is malformed (never silently treated as data).
 *
 * **Gotchas**
 *
 * A loop's `count` / `items` are evaluated before its first iteration, so `loop.*` inside them reads
 * the *enclosing* loop; a `while` loop's `condition` is evaluated after each iteration, so `loop.*`
 * in it reads the loop itself and it may read the outputs of the loop's own body blocks.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type { Json } from "./Workflow.ts"

/**
 * A JSON path: object keys and array indices from the root of a document.
 *
 * @since 0.1.0
 */
export type JsonPath = ReadonlyArray<string | number>

/**
 * A segment of a reference path after its root.
 *
 * @since 0.1.0
 */
export type Segment = string | number

/**
 * The scope of an index/item reference.
 *
 * @since 0.1.0
 */
export type Scope = "loop" | "parallel"

/**
 * A parsed reference.
 *
 * @since 0.1.0
 */
export type Reference =
  | { readonly _tag: "BlockOutput"; readonly block: string; readonly path: ReadonlyArray<Segment> }
  | { readonly _tag: "Input"; readonly path: readonly [string, ...Array<Segment>] }
  | { readonly _tag: "Variable"; readonly name: string; readonly path: ReadonlyArray<Segment> }
  | { readonly _tag: "Index"; readonly scope: Scope }
  | { readonly _tag: "Item"; readonly scope: Scope; readonly path: ReadonlyArray<Segment> }

/**
 * A reference path that does not follow the syntax.
 *
 * @since 0.1.0
 */
export class InvalidReference extends Data.TaggedError("InvalidReference")<{
  /** The raw `$ref` value (or the offending object, JSON-encoded, when it is malformed). */
  readonly reference: string
  readonly reason: string
  /** Where the reference sits in the scanned value. */
  readonly at: JsonPath
}> {}

/**
 * Errors of `parse` / `scan`.
 *
 * @since 0.1.0
 */
export type ReferenceError = InvalidReference

/**
 * A reference that could not be resolved against an environment.
 *
 * @since 0.1.0
 */
export class Unresolved extends Data.TaggedError("Unresolved")<{
  readonly reference: string
  readonly reason: "malformed" | "missing-value" | "missing-key" | "index-out-of-range" | "not-a-container"
  /** Where the reference sits in the resolved value. */
  readonly at: JsonPath
}> {}

/** Whether a segment is an array index: decimal digits without a leading zero, a safe integer. */
const isIndex = (segment: string): boolean => {
  const n = segment.length
  if (n === 0 || (n > 1 && segment.charCodeAt(0) === 48)) return false
  for (let i = 0; i < n; i++) {
    const c = segment.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return Number.isSafeInteger(Number(segment))
}

/** The segments of `parts` from `from` on (numbers for indices), or `undefined` when one is empty. */
const segmentsOf = (parts: ReadonlyArray<string>, from: number): Array<Segment> | undefined => {
  const out: Array<Segment> = []
  for (let i = from; i < parts.length; i++) {
    const segment = parts[i]!
    if (segment.length === 0) return undefined
    out.push(isIndex(segment) ? Number(segment) : segment)
  }
  return out
}

const invalid = (reference: string, reason: string, at: JsonPath = []) =>
  Result.fail(new InvalidReference({ reference, reason, at }))

/**
 * Parses a reference path (the string value of `$ref`).
 *
 * @since 0.1.0
 */
export const parse = (path: string, at: JsonPath = []): Result.Result<Reference, ReferenceError> => {
  const parts = path.split(".")
  const tail = segmentsOf(parts, 1)
  if (tail === undefined) return invalid(path, "empty path segment", at)
  // `tail[0]` / `tail[1]` may be absent (undefined) or an index (number): both fail the string checks.
  switch (parts[0]) {
    case "blocks": {
      const block = tail[0]
      if (typeof block !== "string" || tail[1] !== "output") {
        return invalid(path, "expected blocks.<id>.output", at)
      }
      return Result.succeed({ _tag: "BlockOutput", block, path: tail.slice(2) })
    }
    case "input": {
      const key = tail[0]
      if (typeof key !== "string") return invalid(path, "expected input.<key>", at)
      return Result.succeed({ _tag: "Input", path: tail as unknown as readonly [string, ...Array<Segment>] })
    }
    case "vars": {
      const name = tail[0]
      if (typeof name !== "string") return invalid(path, "expected vars.<name>", at)
      return Result.succeed({ _tag: "Variable", name, path: tail.slice(1) })
    }
    case "loop":
    case "parallel": {
      const scope = parts[0]
      const field = tail[0]
      if (field === "index" && tail.length === 1) return Result.succeed({ _tag: "Index", scope })
      if (field === "item") return Result.succeed({ _tag: "Item", scope, path: tail.slice(1) })
      return invalid(path, `expected ${scope}.index or ${scope}.item`, at)
    }
    default:
      return invalid(path, "a reference starts with blocks., input., vars., loop. or parallel.", at)
  }
}

/**
 * The path string of a reference (inverse of `parse`).
 *
 * @since 0.1.0
 */
export const format = (reference: Reference): string => {
  const tail = (path: ReadonlyArray<Segment>) => path.map((segment) => `.${segment}`).join("")
  switch (reference._tag) {
    case "BlockOutput":
      return `blocks.${reference.block}.output${tail(reference.path)}`
    case "Input":
      return `input${tail(reference.path)}`
    case "Variable":
      return `vars.${reference.name}${tail(reference.path)}`
    case "Index":
      return `${reference.scope}.index`
    case "Item":
      return `${reference.scope}.item${tail(reference.path)}`
  }
}

/**
 * The `{ "$ref": path }` JSON value for a reference.
 *
 * @since 0.1.0
 */
export const toJson = (reference: Reference): Json => ({ $ref: format(reference) })

/**
 * One reference found in a JSON value, with where it sits.
 *
 * @since 0.1.0
 */
export interface Occurrence {
  readonly reference: Reference
  readonly at: JsonPath
}

const isObject = (json: Json): json is { readonly [key: string]: Json } =>
  typeof json === "object" && json !== null && !Array.isArray(json)

const refOf = (json: { readonly [key: string]: Json }, at: JsonPath): Result.Result<Reference, ReferenceError> => {
  const value = json["$ref"]
  if (typeof value !== "string" || Object.keys(json).length !== 1) {
    return invalid(JSON.stringify(json), "a reference is an object with exactly one key \"$ref\" holding a string", at)
  }
  return parse(value, at)
}

/**
 * Every reference in a JSON value, well-formed or not, in document order.
 *
 * @since 0.1.0
 */
export const scan = (
  json: Json,
  at: JsonPath = []
): ReadonlyArray<Result.Result<Occurrence, ReferenceError>> => {
  const out: Array<Result.Result<Occurrence, ReferenceError>> = []
  // Walked with an explicit stack, not recursion: params nested thousands deep must not overflow
  // the call stack. `path` holds the keys of the open frames; a frame is a container being walked.
  const path: Array<string | number> = [...at]
  const frames: Array<{ readonly value: Json; readonly keys: ReadonlyArray<string> | undefined; next: number }> = []
  const enter = (value: Json): void => {
    if (Array.isArray(value)) {
      frames.push({ value, keys: undefined, next: 0 })
    } else if (isObject(value)) {
      if (Object.hasOwn(value, "$ref")) {
        const here = [...path]
        out.push(Result.map(refOf(value, here), (reference) => ({ reference, at: here })))
        return
      }
      frames.push({ value, keys: Object.keys(value), next: 0 })
    } else {
      return
    }
    path.push("")
  }
  enter(json)
  while (frames.length > 0) {
    const frame = frames[frames.length - 1]!
    const size = frame.keys === undefined ? (frame.value as ReadonlyArray<Json>).length : frame.keys.length
    if (frame.next === size) {
      frames.pop()
      path.pop()
      continue
    }
    const key = frame.keys === undefined ? frame.next : frame.keys[frame.next]!
    frame.next++
    path[path.length - 1] = key
    enter((frame.value as Record<string | number, Json>)[key]!)
  }
  return out
}

/**
 * The well-formed references in a JSON value, in document order (see `scan` for malformed ones).
 *
 * @since 0.1.0
 */
export const collect = (json: Json, at: JsonPath = []): ReadonlyArray<Occurrence> => {
  const out: Array<Occurrence> = []
  for (const result of scan(json, at)) {
    if (Result.isSuccess(result)) out.push(result.success)
  }
  return out
}

/**
 * Whether a JSON value contains any `$ref` object.
 *
 * @since 0.1.0
 */
export const hasReferences = (json: Json): boolean => {
  // An explicit stack, like `scan`: deep params must not overflow the call stack.
  const stack: Array<Json> = [json]
  while (stack.length > 0) {
    const value = stack.pop()!
    if (Array.isArray(value)) {
      for (const element of value) stack.push(element)
    } else if (isObject(value)) {
      if (Object.hasOwn(value, "$ref")) return true
      for (const key of Object.keys(value)) stack.push(value[key]!)
    }
  }
  return false
}

/**
 * Where `resolve` reads referenced values; each lookup returns `undefined` when the value is absent.
 * The planner resolves against a snapshot, the engine against live run state.
 *
 * @since 0.1.0
 */
export interface Environment {
  readonly blockOutput: (block: string) => Json | undefined
  readonly input: (key: string) => Json | undefined
  readonly variable: (name: string) => Json | undefined
  readonly index: (scope: Scope) => number | undefined
  readonly item: (scope: Scope) => Json | undefined
}

type Walked =
  | { readonly ok: true; readonly value: Json }
  | { readonly ok: false; readonly reason: Unresolved["reason"] }

const walk = (root: Json | undefined, path: ReadonlyArray<Segment>): Walked => {
  if (root === undefined) return { ok: false, reason: "missing-value" }
  let current: Json = root
  for (const segment of path) {
    if (Array.isArray(current)) {
      if (typeof segment !== "number") return { ok: false, reason: "missing-key" }
      const next: Json | undefined = current[segment]
      if (next === undefined) return { ok: false, reason: "index-out-of-range" }
      current = next
    } else if (isObject(current)) {
      const key = String(segment)
      if (!Object.hasOwn(current, key)) return { ok: false, reason: "missing-key" }
      current = current[key]!
    } else {
      return { ok: false, reason: "not-a-container" }
    }
  }
  return { ok: true, value: current }
}

const rootOf = (reference: Reference, env: Environment): Walked => {
  switch (reference._tag) {
    case "BlockOutput":
      return walk(env.blockOutput(reference.block), reference.path)
    case "Input":
      return walk(env.input(reference.path[0]), reference.path.slice(1))
    case "Variable":
      return walk(env.variable(reference.name), reference.path)
    case "Index":
      return walk(env.index(reference.scope), [])
    case "Item":
      return walk(env.item(reference.scope), reference.path)
  }
}

/**
 * Reads the value of one reference from an environment.
 *
 * @since 0.1.0
 */
export const lookup = (
  reference: Reference,
  env: Environment,
  at: JsonPath = []
): Result.Result<Json, Unresolved> => {
  const found = rootOf(reference, env)
  return found.ok
    ? Result.succeed(found.value)
    : Result.fail(new Unresolved({ reference: format(reference), reason: found.reason, at }))
}

/**
 * Replaces every `{ "$ref": path }` in a JSON value by the value it reads from `env`.
 *
 * **Details**
 *
 * Values are resolved in document order and the first unresolvable reference (missing block
 * output, missing key, index out of range, malformed reference) is returned as a typed failure;
 * nothing is thrown. Sub-values without references are shared, not copied.
 *
 * @since 0.1.0
 */
export const resolve = (json: Json, env: Environment): Result.Result<Json, Unresolved> => {
  const path: Array<string | number> = []
  let failure: Unresolved | undefined
  const visit = (value: Json): Json => {
    if (Array.isArray(value)) {
      let out: Array<Json> | undefined
      for (let i = 0; i < value.length; i++) {
        path.push(i)
        const item = value[i]!
        const next = visit(item)
        path.pop()
        if (failure !== undefined) return value
        if (next !== item && out === undefined) out = value.slice(0, i)
        if (out !== undefined) out.push(next)
      }
      return out ?? value
    }
    if (isObject(value)) {
      if (Object.hasOwn(value, "$ref")) {
        const reference = refOf(value, [...path])
        if (Result.isFailure(reference)) {
          failure = new Unresolved({ reference: reference.failure.reference, reason: "malformed", at: [...path] })
          return value
        }
        const found = lookup(reference.success, env, [...path])
        if (Result.isFailure(found)) {
          failure = found.failure
          return value
        }
        return found.success
      }
      let out: Record<string, Json> | undefined
      const keys = Object.keys(value)
      for (let k = 0; k < keys.length; k++) {
        const key = keys[k]!
        const item = value[key]!
        path.push(key)
        const next = visit(item)
        path.pop()
        if (failure !== undefined) return value
        if (next !== item && out === undefined) {
          out = {}
          for (let j = 0; j < k; j++) out[keys[j]!] = value[keys[j]!]!
        }
        if (out !== undefined) out[key] = next
      }
      return out ?? value
    }
    return value
  }
  const resolved = visit(json)
  return failure === undefined ? Result.succeed(resolved) : Result.fail(failure)
}
