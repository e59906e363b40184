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
import * as V8 from "node:v8"

Module.enableCompileCache?.()
// PGlite is 9 MB of WebAssembly that V8 compiles on every start, at once with its baseline compiler
// (Liftoff) and then again, function by function as they get hot, with its optimising one (TurboFan)
// on background threads. A command does not live long enough for that second compile to pay off:
// on a 2-core machine `ripple runs` took 1.4 s of CPU with Liftoff only against 1.9 s (median of 7,
// 2026-12-06, load 6-8), and 16,000 statements on an open database ran in 4.7-5.2 s against
// 7.2-7.9 s. Set here, before PGlite is imported, so it concerns the binary only, not a program
// that embeds Ripple; and not the long-lived commands (`worker`, `studio`), whose hot code is
// worth optimising.
const longLived = new Set(["worker", "studio"])
if (!longLived.has(process.argv[2] ?? "")) V8.setFlagsFromString("--liftoff-only")
await import("./main.ts")
