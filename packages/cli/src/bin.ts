#!/usr/bin/env node
/**
 * The `ripple` executable: turns on Node's compile cache, then runs the command (`main.ts`).
 *
 * **Details**
 *
 * Compiling the few hundred modules a command loads is a third of its start; Node keeps the compiled
 * code in a cache folder (its default in the temporary directory; `NODE_COMPILE_CACHE` names another,
 * `NODE_DISABLE_COMPILE_CACHE=1` turns it off). Only modules imported after the cache is on use it,
 * hence the dynamic import.
 *
 * @since 0.1.0
 */
import * as Module from "node:module"

Module.enableCompileCache?.()
await import("./main.ts")
