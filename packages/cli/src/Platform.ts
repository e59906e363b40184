/**
 * The Node services the command tree needs (file system, path, stdio, terminal, child processes).
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
import * as Layer from "effect/Layer"

/**
 * The Node platform layer for `Cli.main`.
 *
 * @since 0.1.0
 */
export const layer = Layer.provideMerge(
  NodeChildProcessSpawner.layer,
  Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeStdio.layer, NodeTerminal.layer)
)
