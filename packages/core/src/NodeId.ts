/**
 * The node-id codec: one reversible string form for every node of the expanded DAG and for every
 * node *instance* (one iteration or branch of a node inside loops and parallels).
 *
 * **Details**
 *
 * - A block node is its block id: `fetch`.
 * - A container (loop or parallel) `C` expands into two sentinels: `C#start` and `C#end`.
 * - An instance adds the iteration/branch indices of its enclosing containers, outer to inner:
 *   `fetch@2.0` is `fetch` in iteration 2 of its outer container and branch 0 of its inner one.
 *   An empty path adds nothing (`fetch`), so a node outside containers is its own instance.
 *
 * The codec is reversible because user ids may not contain any reserved character
 * (`# @ . / $ [ ] :` or whitespace) and may not be empty; `Workflow.decode` rejects such ids.
 * Nor may an id be `__proto__`: records keyed by ids (a snapshot's nodes, a run's outputs and
 * reasons) cannot hold it by assignment, which sets the record's prototype instead.
 * `.` is reserved so that ids can appear as reference path segments (`blocks.<id>.output`).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"

/**
 * Characters a user block or container id may not contain (whitespace is reserved too).
 *
 * @since 0.1.0
 */
export const reservedCharacters: ReadonlyArray<string> = ["#", "@", ".", "/", "$", "[", "]", ":"]

const reservedPattern = /[#@./$[\]:\s]/u

/**
 * The first reserved character of `id`, or `undefined` when the id is free of them.
 *
 * @since 0.1.0
 */
export const reservedCharacterOf = (id: string): string | undefined => reservedPattern.exec(id)?.[0]

/**
 * Whether `id` may be used as a block or container id: non-empty, not `__proto__` and free of
 * reserved characters.
 *
 * @since 0.1.0
 */
export const isValidId = (id: string): boolean => id.length > 0 && id !== "__proto__" && !reservedPattern.test(id)

/**
 * A node of the expanded DAG: a block, or the start/end sentinel of a container.
 *
 * @since 0.1.0
 */
export type Node =
  | { readonly kind: "block"; readonly id: string }
  | { readonly kind: "start"; readonly id: string }
  | { readonly kind: "end"; readonly id: string }

/**
 * The kind of a node.
 *
 * @since 0.1.0
 */
export type Kind = Node["kind"]

/**
 * One execution of a node: its iteration/branch indices in the enclosing containers, outer to inner.
 *
 * @since 0.1.0
 */
export interface Instance {
  readonly node: Node
  readonly path: ReadonlyArray<number>
}

/**
 * A string that is not a well-formed node id or instance id.
 *
 * @since 0.1.0
 */
export class InvalidNodeId extends Data.TaggedError("InvalidNodeId")<{
  readonly input: string
  readonly reason: string
}> {}

/**
 * Errors of this module.
 *
 * @since 0.1.0
 */
export type NodeIdError = InvalidNodeId

/**
 * The node of a block.
 *
 * @since 0.1.0
 */
export const block = (id: string): Node => ({ kind: "block", id })

/**
 * The start sentinel of a container.
 *
 * @since 0.1.0
 */
export const start = (id: string): Node => ({ kind: "start", id })

/**
 * The end sentinel of a container.
 *
 * @since 0.1.0
 */
export const end = (id: string): Node => ({ kind: "end", id })

/**
 * The string id of a node.
 *
 * @since 0.1.0
 */
export const format = (node: Node): string =>
  node.kind === "block" ? node.id : node.kind === "start" ? `${node.id}#start` : `${node.id}#end`

/**
 * Parses a node id produced by `format`.
 *
 * @since 0.1.0
 */
export const parse = (input: string): Result.Result<Node, NodeIdError> => {
  const hash = input.indexOf("#")
  const id = hash === -1 ? input : input.slice(0, hash)
  if (!isValidId(id)) {
    return Result.fail(new InvalidNodeId({ input, reason: `invalid id ${JSON.stringify(id)}` }))
  }
  if (hash === -1) return Result.succeed(block(id))
  const suffix = input.slice(hash + 1)
  if (suffix === "start") return Result.succeed(start(id))
  if (suffix === "end") return Result.succeed(end(id))
  return Result.fail(new InvalidNodeId({ input, reason: `unknown sentinel suffix "#${suffix}"` }))
}

/**
 * The string id of a node instance.
 *
 * @since 0.1.0
 */
export const formatInstance = (instance: Instance): string =>
  instance.path.length === 0 ? format(instance.node) : `${format(instance.node)}@${instance.path.join(".")}`

const indexPattern = /^(?:0|[1-9][0-9]*)$/u

/**
 * Parses an instance id produced by `formatInstance`.
 *
 * @since 0.1.0
 */
export const parseInstance = (input: string): Result.Result<Instance, NodeIdError> => {
  const at = input.indexOf("@")
  if (at === -1) return Result.map(parse(input), (node) => ({ node, path: [] }))
  const segments = input.slice(at + 1).split(".")
  const path: Array<number> = []
  for (const segment of segments) {
    if (!indexPattern.test(segment) || !Number.isSafeInteger(Number(segment))) {
      return Result.fail(new InvalidNodeId({ input, reason: `invalid instance index ${JSON.stringify(segment)}` }))
    }
    path.push(Number(segment))
  }
  return Result.map(parse(input.slice(0, at)), (node) => ({ node, path }))
}
