#!/usr/bin/env node
/**
 * The `ripple` executable: the command tree of `Cli` over the SQL backend, on Node.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"
import * as Cli from "./Cli.ts"
import * as Platform from "./Platform.ts"
import * as Store from "./Store.ts"

Cli.main(Store.backend)(process.argv.slice(2)).pipe(
  Effect.provide(Platform.layer),
  NodeRuntime.runMain({
    // `main` turns every expected outcome into an exit code; anything else is a defect (exit 1).
    teardown: (exit, onExit) => Exit.isSuccess(exit) ? onExit(exit.value as number) : Runtime.defaultTeardown(exit, onExit)
  })
)
