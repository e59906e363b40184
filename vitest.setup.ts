import * as fc from "fast-check"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterEach } from "vitest"

// New embedded databases are copied from a template in this cache (built once per machine), so
// tests, and the `ripple` processes they start, never write to the user's ~/.cache.
process.env.RIPPLE_CACHE_DIR ??= Path.join(Os.tmpdir(), "ripple-test-cache")

// A pinned seed makes every property run reproducible; FC_SEED replays a counterexample
// (fast-check also prints the seed and shrink path in every failure message).
const seed = process.env.FC_SEED === undefined ? 20261122 : Number(process.env.FC_SEED)
if (!Number.isSafeInteger(seed)) {
  throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(process.env.FC_SEED)}`)
}
const numRuns = process.env.FC_NUM_RUNS === undefined ? undefined : Number(process.env.FC_NUM_RUNS)
fc.configureGlobal({ seed, ...(numRuns === undefined ? {} : { numRuns }) })

afterEach((context) => {
  if (context.task.result?.state === "fail") {
    console.error(`[fast-check] replay with FC_SEED=${seed} (test: ${context.task.name})`)
  }
})
