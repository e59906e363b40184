#!/usr/bin/env node
/**
 * The `ripple` executable: turns on Node's compile cache, then runs the command (`main.ts`).
 *
 * **Details**
 *
 * `npm run build` bundles this file and everything it imports but PGlite (`rolldown.config.ts`) into
 * `dist/bin.js` and a few `dist/ripple-*.js` chunks, so a command loads those instead of resolving ~400
 * modules (effect alone ~226). Node keeps their compiled code in a cache folder (its default in the
 * temporary directory; `NODE_COMPILE_CACHE` names another, `NODE_DISABLE_COMPILE_CACHE=1` turns it off).
 * Only modules imported after the cache is on use it, hence the dynamic import.
 *
 * @since 0.1.0
 */
import * as Module from "node:module"

Module.enableCompileCache?.()
await import("./main.ts")
