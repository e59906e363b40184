/**
 * Fingerprints: canonical JSON and a fast, stable 64-bit hash of it, for block and container
 * definitions and for any JSON value (resolved inputs, outputs).
 *
 * **Details**
 *
 * - `canonical` sorts object keys (UTF-16 code-unit order) and emits no whitespace, so two values
 *   that are equal as JSON have the same canonical string whatever their key order.
 * - `hash` is not cryptographic: it detects changes between runs, it does not defend against an
 *   adversary choosing colliding definitions.
 * - Definition fingerprints cover what changes behaviour and nothing else: a block's type, params,
 *   `volatile` and `retry`, not its `name`; a container's kind, iteration source, bounds and body
 *   (as a set), not its name.
 *
 * @since 0.1.0
 */
import type * as Dag from "./Dag.ts"
import type { Block, Json, Loop, Parallel } from "./Workflow.ts"

/**
 * The canonical JSON text of a value: keys sorted, no whitespace.
 *
 * @since 0.1.0
 */
export const canonical = (json: Json): string => {
  if (json === null || typeof json !== "object") return JSON.stringify(json)
  if (Array.isArray(json)) {
    let out = "["
    for (let i = 0; i < json.length; i++) out += (i === 0 ? "" : ",") + canonical(json[i]!)
    return out + "]"
  }
  const keys = Object.keys(json).sort()
  let out = "{"
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!
    out += (k === 0 ? "" : ",") + JSON.stringify(key) + ":" + canonical((json as { readonly [key: string]: Json })[key]!)
  }
  return out + "}"
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
  let a = 0x811c9dc5
  let b = 0x050c5d1f
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    a = Math.imul(a ^ unit, 0x01000193)
    b = Math.imul(b ^ (unit + i), 0x01000193) ^ (b >>> 15)
  }
  return hex(fmix(a ^ text.length)) + hex(fmix(b ^ Math.imul(text.length, 0x9e3779b1)))
}

const fmix = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const hex = (n: number): string => n.toString(16).padStart(8, "0")

/**
 * The fingerprint of any JSON value: the hash of its canonical text.
 *
 * @since 0.1.0
 */
export const hash = (json: Json): string => hashString(canonical(json))

/**
 * The definition fingerprint of a block: type, params, volatile and retry (not its name).
 *
 * @since 0.1.0
 */
export const ofBlock = (block: Block): string =>
  hash({
    node: "block",
    type: block.type,
    params: block.params ?? {},
    volatile: block.volatile ?? false,
    retry: block.retry ?? null
  })

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
  hash({
    node: container ?? (loopOnly(definition) ? "loop" : "parallel"),
    kind: definition.kind,
    count: definition.count ?? null,
    items: definition.items ?? null,
    condition: ("condition" in definition ? definition.condition : undefined) ?? null,
    maxIterations: ("maxIterations" in definition ? definition.maxIterations : undefined) ?? null,
    concurrency: ("concurrency" in definition ? definition.concurrency : undefined) ?? null,
    body: [...definition.body].sort()
  })

/**
 * The definition fingerprint of a node of a DAG built from a workflow: its block's fingerprint, or
 * its container's for both sentinels. `undefined` for DAGs without a workflow (`Dag.fromEdges`).
 *
 * @since 0.1.0
 */
export const ofNode = (dag: Dag.Dag, index: number): string | undefined => {
  const node = dag.nodes?.[index]
  if (node?.definition === undefined) return undefined
  return node.kind === "block"
    ? ofBlock(node.definition as Block)
    : ofContainer(node.definition as Loop | Parallel, node.containerKind)
}
