/**
 * Fingerprints: canonical JSON and a fast, stable 64-bit hash of it, for block and container
 * definitions and for any JSON value (resolved inputs, outputs).
 *
 * **Details**
 *
 * - `hash` covers a value's JSON text exactly as `JSON.stringify` writes it, object key order
 *   included: a handler can observe key order (`Object.keys`, `JSON.stringify`), so two values that
 *   differ only in key order are different inputs and outputs to the planner's diff and to early
 *   cutoff, which must compare exactly what downstream blocks can observe. Every store keeps key
 *   order (DESIGN.md, "Values round-trip"), so a stored fingerprint matches its stored value.
 * - `canonical` sorts object keys (UTF-16 code-unit order) and emits no whitespace, so two values
 *   that are equal as JSON have the same canonical string whatever their key order: what the
 *   built-ins render, so that they never leak key order into an output.
 * - `hash` is not cryptographic: it detects changes between runs, it does not defend against an
 *   adversary choosing colliding definitions.
 * - Definition fingerprints cover what changes behaviour and nothing else: a block's type, params,
 *   `volatile` and `retry`, not its `name`; a container's kind, iteration source, bounds and body
 *   (as a set), not its name.
 *
 * @since 0.1.0
 */
import type * as Dag from "./Dag.ts"
import * as Graph from "./internal/graph.ts"
import type { Block, Json, Loop, Parallel } from "./Workflow.ts"

/**
 * The canonical JSON text of a value: keys sorted, no whitespace.
 *
 * @since 0.1.0
 */
export const canonical = (json: Json): string => {
  if (json === null || typeof json !== "object") return JSON.stringify(json)
  if (Array.isArray(json)) {
    if (json.length === 0) return "[]"
    let out = "[" + canonical(json[0]!)
    for (let i = 1; i < json.length; i++) out += "," + canonical(json[i]!)
    return out + "]"
  }
  const keys = sortedKeys(json)
  if (keys.length === 0) return "{}"
  const record = json as { readonly [key: string]: Json }
  let out = "{" + JSON.stringify(keys[0]) + ":" + canonical(record[keys[0]!]!)
  for (let k = 1; k < keys.length; k++) out += "," + JSON.stringify(keys[k]) + ":" + canonical(record[keys[k]!]!)
  return out + "}"
}

/**
 * `Object.keys(json).sort()`, faster for the few keys of typical objects: already sorted keys are
 * only compared, short lists are insertion-sorted. `<` on strings compares UTF-16 code units, the
 * same order as the default `sort`.
 */
const sortedKeys = (json: object): Array<string> => {
  const keys = Object.keys(json)
  const n = keys.length
  if (n > 16) return keys.sort()
  for (let i = 1; i < n; i++) {
    const key = keys[i]!
    if (key >= keys[i - 1]!) continue
    let j = i - 1
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!
      j--
    }
    keys[j + 1] = key
  }
  return keys
}

/**
 * A 64-bit hash of a string as 16 hex characters.
 *
 * Hand-written because neither effect's `Hash` (32-bit, per-process for objects) nor any other
 * allowed dependency offers a stable 64-bit string hash: two independent 32-bit FNV-1a lanes over
 * the UTF-16 code units (different offset bases, the second also mixing each unit's position), each
 * finished with the murmur3 avalanche so nearby inputs spread over all bits.
 *
 * @since 0.1.0
 */
export const hashString = (text: string): string => {
  const hasher = new Hasher()
  hasher.text(text)
  return hasher.digest()
}

/**
 * The state of `hashString` over a text fed in pieces, so that `hash` and `ofBlock` can hash the
 * canonical text while walking the value instead of building it: the text of a large workflow is
 * megabytes of short-lived strings whose allocation and collection cost more than the hashing.
 */
class Hasher {
  private a = 0x811c9dc5
  private b = 0x050c5d1f
  /** Code units fed so far: the position of the next unit in the text being hashed. */
  private length = 0

  text(text: string): void {
    let a = this.a
    let b = this.b
    const offset = this.length
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i)
      a = Math.imul(a ^ unit, 0x01000193)
      b = Math.imul(b ^ (unit + offset + i), 0x01000193) ^ (b >>> 15)
    }
    this.a = a
    this.b = b
    this.length = offset + text.length
  }

  /** Feeds `JSON.stringify(text)` without building it when no character needs escaping. */
  quoted(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i)
      if (unit < 0x20 || unit === 0x22 || unit === 0x5c || (unit >= 0xd800 && unit <= 0xdfff)) {
        this.text(JSON.stringify(text))
        return
      }
    }
    this.text("\"")
    this.text(text)
    this.text("\"")
  }

  /** Feeds `JSON.stringify(json)` of a JSON value (keys in their own order). */
  json(json: Json): void {
    if (typeof json === "string") return this.quoted(json)
    if (typeof json === "number") return this.text(Number.isFinite(json) ? String(json) : "null")
    if (typeof json === "boolean") return this.text(json ? "true" : "false")
    if (json === null || typeof json !== "object") {
      // A non-JSON leaf (undefined, a function) feeds "undefined", as `canonical` concatenates it.
      return this.text(String(JSON.stringify(json)))
    }
    if (Array.isArray(json)) {
      this.text("[")
      for (let i = 0; i < json.length; i++) {
        if (i > 0) this.text(",")
        this.json(json[i]!)
      }
      return this.text("]")
    }
    const keys = Object.keys(json)
    const record = json as { readonly [key: string]: Json }
    this.text("{")
    for (let k = 0; k < keys.length; k++) {
      if (k > 0) this.text(",")
      this.quoted(keys[k]!)
      this.text(":")
      this.json(record[keys[k]!]!)
    }
    this.text("}")
  }

  digest(): string {
    return hex(fmix(this.a ^ this.length)) + hex(fmix(this.b ^ Math.imul(this.length, 0x9e3779b1)))
  }
}

const fmix = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const byteHex: ReadonlyArray<string> = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

// `n.toString(16).padStart(8, "0")`, by table: number formatting dominated hashing small values.
const hex = (n: number): string =>
  byteHex[n >>> 24]! + byteHex[(n >>> 16) & 255]! + byteHex[(n >>> 8) & 255]! + byteHex[n & 255]!

/**
 * The fingerprint of any JSON value: the hash of its JSON text, object key order included.
 *
 * @since 0.1.0
 */
export const hash = (json: Json): string => {
  if (json === null || typeof json !== "object") return hashString(canonical(json))
  const hasher = new Hasher()
  hasher.json(json)
  return hasher.digest()
}

/**
 * The definition fingerprint of a block: type, params (key order included, as a handler sees them),
 * volatile and retry (not its name).
 *
 * @since 0.1.0
 */
export const ofBlock = (block: Block): string => {
  // Hashes the JSON text of { disabled, node, params, retry, type, volatile } (fields in this fixed
  // order; `disabled` only when true, so the fingerprints of enabled blocks stay what they were).
  const hasher = new Hasher()
  hasher.text(block.disabled === true ? "{\"disabled\":true,\"node\":\"block\",\"params\":" : "{\"node\":\"block\",\"params\":")
  hasher.json(block.params ?? {})
  hasher.text(",\"retry\":")
  hasher.json(block.retry ?? null)
  hasher.text(",\"type\":")
  hasher.json(block.type)
  hasher.text(",\"volatile\":")
  hasher.json(block.volatile ?? false)
  hasher.text("}")
  return hasher.digest()
}

const loopOnly = (container: Loop | Parallel): boolean =>
  container.kind === "forEach" || container.kind === "while" || "maxIterations" in container || "condition" in container

/**
 * The definition fingerprint of a loop or parallel: which of the two it is, its kind,
 * count/items/condition, bounds, concurrency and the set of body ids (not its name).
 *
 * **Gotchas**
 *
 * A `count` loop and a `count` parallel can have identical fields; pass `container` to tell them
 * apart (without it, a container is a loop only when it has a loop-only kind or field).
 *
 * @since 0.1.0
 */
export const ofContainer = (definition: Loop | Parallel, container?: "loop" | "parallel"): string =>
  // Fields in sorted order: the text (and so the hash) is the one earlier versions, which sorted
  // every object's keys, persisted.
  hash({
    body: [...definition.body].sort(),
    concurrency: ("concurrency" in definition ? definition.concurrency : undefined) ?? null,
    condition: ("condition" in definition ? definition.condition : undefined) ?? null,
    count: definition.count ?? null,
    items: definition.items ?? null,
    kind: definition.kind,
    maxIterations: ("maxIterations" in definition ? definition.maxIterations : undefined) ?? null,
    node: container ?? (loopOnly(definition) ? "loop" : "parallel")
  })

/**
 * The definition fingerprint of a node of a DAG built from a workflow: its block's fingerprint, or
 * its container's for both sentinels. `undefined` for DAGs without a workflow (`Dag.fromEdges`).
 *
 * @since 0.1.0
 */
export const ofNode = (dag: Dag.Dag, index: number): string | undefined => {
  const node = Graph.nodeAt(dag, index)
  if (node?.definition === undefined) return undefined
  return node.kind === "block"
    ? ofBlock(node.definition as Block)
    : ofContainer(node.definition as Loop | Parallel, node.containerKind)
}
