#!/usr/bin/env node
/**
 * The `ripple` executable: the command tree of `Cli` over the SQL backend, on Node.
 *
 * @since 0.1.0
 */
import * as NodeChildProcessSpawner from "@effect/platform-node/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeStdio from "@effect/platform-node/NodeStdio"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Cli from "./Cli.ts"
import * as Store from "./Store.ts"

// What `NodeServices.layer` provides minus crypto: platform-node 4.0.6's NodeCrypto imports
// `effect/Crypto`, which effect 4.1 no longer has, so importing NodeServices fails at load time.
const platform = Layer.provideMerge(
  NodeChildProcessSpawner.layer,
  Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeStdio.layer, NodeTerminal.layer)
)

Cli.main(Store.backend)(process.argv.slice(2)).pipe(
  Effect.provide(platform),
  NodeRuntime.runMain({
    // `main` turns every expected outcome into an exit code; anything else is a defect (exit 1).
    teardown: (exit, onExit) => Exit.isSuccess(exit) ? onExit(exit.value as number) : Runtime.defaultTeardown(exit, onExit)
  })
)
