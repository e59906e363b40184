/**
 * The Node services the command tree needs (file system, path, stdio, terminal, child processes),
 * and the logger of a command-line tool.
 *
 * **Gotchas**
 *
 * This is `NodeServices.layer` without crypto: platform-node 4.0.6's `NodeCrypto` imports
 * `effect/Crypto`, which effect 4.1 no longer has, so importing `NodeServices` fails at load time.
 *
 * @since 0.1.0
 */
import * as NodeChildProcessSpawner from "@effect/platform-node/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeStdio from "@effect/platform-node/NodeStdio"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"

const textOf = (value: unknown): string =>
  value instanceof Error ? value.message : typeof value === "string" ? value : JSON.stringify(value) ?? String(value)

/**
 * What the command prints when a library logs (a lease it could not release on a full disk, ...):
 * one line on stderr, an error by its message, never a stack trace, and stdout left to the answer.
 *
 * @since 0.1.0
 */
export const logger = Logger.withConsoleError(Logger.make(({ cause, logLevel, message }) => {
  const parts = (Array.isArray(message) ? message : [message]).map(textOf)
  const failure = cause.reasons.length === 0 ? [] : [textOf(Cause.squash(cause))]
  return `ripple: ${logLevel.toLowerCase()}: ${[...parts, ...failure].join(": ")}`
}))

/**
 * The Node platform layer for `Cli.main`.
 *
 * @since 0.1.0
 */
export const layer = Layer.provideMerge(
  NodeChildProcessSpawner.layer,
  Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeStdio.layer, NodeTerminal.layer, Logger.layer([logger]))
)
