/**
 * The `ripple` command's start (issue 19), as a user meets it: wall time of the compiled binary
 * (`packages/cli/dist/bin.js`; `npm run bench:firstuse` builds it and the shipped template first) in
 * a fresh directory, median of `REPEATS`:
 *
 * - `cold`: the first command on a machine when the package ships no template and the cache is
 *   empty: initdb + migrations, once (`RIPPLE_TEMPLATE_DIR` pointed at an empty folder);
 * - `shipped`: the first command on a machine with the template the build ships (a copy + open);
 * - `first`: the first command in a new directory once the user's cache holds the template;
 * - `later`: a later command on an existing database (`ripple runs`);
 * - `help`: `ripple --help` (node and module loading alone), the floor the others stand on.
 *
 * The baseline in the same run is `cold`, what every first command cost before templates.
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

// `shipped`: the folder a template is shipped in (an empty one stands for a package without).
const time = (cwd: string, cache: string, args: ReadonlyArray<string>, shipped: string = none): number => {
  const started = performance.now()
  const env = { ...process.env, RIPPLE_CACHE_DIR: cache, RIPPLE_TEMPLATE_DIR: shipped, NO_COLOR: "1" }
  execFileSync(process.execPath, [bin, ...args], { cwd, env, stdio: "ignore" })
  return performance.now() - started
}

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-bench-firstuse-"))
const none = Fs.mkdtempSync(Path.join(root, "none-"))
const shippedDir = fileURLToPath(new URL("../../packages/sql/template", import.meta.url))
if (!Fs.existsSync(shippedDir)) throw new Error(`no shipped template in ${shippedDir}: run \`npm run build\` first`)
const loadBefore = Os.loadavg()
const samples = {
  cold: [] as Array<number>,
  shipped: [] as Array<number>,
  first: [] as Array<number>,
  later: [] as Array<number>,
  help: [] as Array<number>
}
const run = ["run", example, "--input", JSON.stringify({ subject: "Login fails", body: "Token expired" })]
try {
  for (let i = 0; i < REPEATS; i++) {
    const cold = Fs.mkdtempSync(Path.join(root, "cold-"))
    samples.cold.push(time(cold, Path.join(cold, "cache"), run))
    const newcomer = Fs.mkdtempSync(Path.join(root, "shipped-"))
    samples.shipped.push(time(newcomer, Path.join(newcomer, "cache"), run, shippedDir))
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
for (const [name, xs] of Object.entries(samples)) console.log(`${name.padEnd(7)} ${String(Math.round(median(xs))).padStart(9)}  ${xs.map(Math.round).join(", ")}`)
console.log(`first use is ${(median(samples.cold) / median(samples.shipped)).toFixed(1)}x faster with the shipped template`)
console.log(`RESULT ${JSON.stringify({ ...result, repeats: REPEATS, loadBefore: loadBefore.map((x) => +x.toFixed(2)), loadAfter: loadAfter.map((x) => +x.toFixed(2)) })}`)
