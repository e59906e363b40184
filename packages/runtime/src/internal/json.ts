import type { Workflow } from "@ripple/core"

type Json = Workflow.Json

/** A JSON object (not null, not an array). */
export const isObject = (json: Json | undefined): json is { readonly [key: string]: Json } =>
  typeof json === "object" && json !== null && !Array.isArray(json)

/**
 * Structural equality of JSON values, object key order ignored: what built-ins compare (`eq`,
 * `contains`, router routes), which never observe key order.
 */
export const equals = (a: Json, b: Json): boolean => {
  if (a === b) return true
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!equals(a[i]!, b[i]!)) return false
    return true
  }
  if (isObject(a)) {
    if (!isObject(b)) return false
    const keys = Object.keys(a)
    if (keys.length !== Object.keys(b).length) return false
    for (const key of keys) if (!Object.hasOwn(b, key) || !equals(a[key]!, b[key]!)) return false
    return true
  }
  return false
}

/** The JSON type name of a value, for error messages. */
export const typeOf = (json: Json | undefined): string =>
  json === undefined ? "missing" : json === null ? "null" : Array.isArray(json) ? "array" : typeof json
