/**
 * The `ripple` command's start (issue 19), as a user meets it: wall time of the compiled binary
 * (`packages/cli/dist/bin.js`, so run `tsc -b` first) in a fresh directory, median of `REPEATS`:
 *
 * - `cold`: the first command on a machine (empty template cache): initdb + migrations, once;
 * - `first`: the first command in a new directory once the template exists (a copy + open);
 * - `later`: a later command on an existing database (`ripple runs`);
 * - `help`: `ripple --help` (node and module loading alone), the floor the others stand on.
 *
 * The baseline in the same run is `cold`, what every first command cost before the template.
 * Prints a table, then `RESULT {...}` as the last line, with the load average before and after.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const REPEATS = 3
const bin = fileURLToPath(new URL("../../packages/cli/dist/bin.js", import.meta.url))
const example = fileURLToPath(new URL("../../examples/support-triage.json", import.meta.url))

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const time = (cwd: string, cache: string, args: ReadonlyArray<string>): number => {
  const started = performance.now()
  execFileSync(process.execPath, [bin, ...args], { cwd, env: { ...process.env, RIPPLE_CACHE_DIR: cache, NO_COLOR: "1" }, stdio: "ignore" })
  return performance.now() - started
}

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-bench-firstuse-"))
const loadBefore = Os.loadavg()
const samples = { cold: [] as Array<number>, first: [] as Array<number>, later: [] as Array<number>, help: [] as Array<number> }
const run = ["run", example, "--input", JSON.stringify({ subject: "Login fails", body: "Token expired" })]
try {
  for (let i = 0; i < REPEATS; i++) {
    const cold = Fs.mkdtempSync(Path.join(root, "cold-"))
    samples.cold.push(time(cold, Path.join(cold, "cache"), run))
    const cache = Path.join(root, "cache")
    if (i === 0) time(Fs.mkdtempSync(Path.join(root, "warm-")), cache, ["migrate"])
    const fresh = Fs.mkdtempSync(Path.join(root, "first-"))
    samples.first.push(time(fresh, cache, run))
    samples.later.push(time(fresh, cache, ["runs"]))
    samples.help.push(time(fresh, cache, ["--help"]))
  }
} finally {
  Fs.rmSync(root, { recursive: true, force: true })
}
const loadAfter = Os.loadavg()
const result = Object.fromEntries(Object.entries(samples).map(([name, xs]) => [`${name}Ms`, Math.round(median(xs))]))
console.log("case   median ms  samples")
for (const [name, xs] of Object.entries(samples)) console.log(`${name.padEnd(6)} ${String(Math.round(median(xs))).padStart(9)}  ${xs.map(Math.round).join(", ")}`)
console.log(`first use is ${(median(samples.cold) / median(samples.first)).toFixed(1)}x faster with the template`)
console.log(`RESULT ${JSON.stringify({ ...result, repeats: REPEATS, loadBefore: loadBefore.map((x) => +x.toFixed(2)), loadAfter: loadAfter.map((x) => +x.toFixed(2)) })}`)
