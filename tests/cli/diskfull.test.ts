/**
 * A disk that fills during a run (issue 15), for real: the `ripple` binary on embedded PGlite in a
 * small tmpfs mounted in a private mount namespace (`unshare --mount`; as root, or as a user where
 * unprivileged user namespaces are allowed), so every write past the limit gets ENOSPC from the
 * kernel. A ballast file leaves a few MiB free; the run's journal writes fill them; then the ballast
 * is removed, and the same data directory must open and `ripple resume` finish the run.
 *
 * PostgreSQL meets the full disk in one of two places, and both are exercised:
 * - extending a table file: an ERROR (SQLSTATE 53100), the transaction rolls back;
 * - creating the next 16 MiB WAL segment: a PANIC, which aborts PGlite's WebAssembly instance (the
 *   next statement would spin forever; see `PgliteClient`).
 * Which one comes first depends on the free space left: with 8 MiB the table extension fails first;
 * with 22 MiB the table fits and the next WAL segment does not.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { bin, tempDir } from "./ripple.ts"

const fixture = Path.join(Path.dirname(new URL(import.meta.url).pathname), "fixtures", "diskfull.mjs")

interface Step {
  readonly code: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
}

interface Report {
  readonly migrate: Step
  readonly run: Step
  readonly runs: Step
  readonly runId?: string
  readonly resume?: Step
  readonly show?: Step
  readonly freeBefore: number
}

// A chain of 30 blocks, each journaling ~0.5 MB of incompressible text twice (its inputs and output).
const chain = Array.from({ length: 30 }, (_, i) => `c${i}`)
const workflow = {
  version: 1,
  id: "fill",
  inputs: { body: { type: "string", required: true } },
  blocks: [
    { id: "start", type: "trigger" },
    ...chain.map((id, i) => ({ id, type: "template", params: { template: `${i} {{b}}`, values: { b: { $ref: "input.body" } } } }))
  ],
  edges: chain.map((id, i) => ({ source: i === 0 ? "start" : chain[i - 1], target: id }))
}

const scenario = (free: number): Promise<Report> => {
  const { dir, remove } = tempDir("diskfull")
  const file = Path.join(dir, "fill.json")
  const input = Path.join(dir, "input.json")
  Fs.writeFileSync(file, JSON.stringify(workflow))
  Fs.writeFileSync(input, JSON.stringify({ body: Crypto.randomBytes(375_000).toString("base64") }))
  const args = ["--mount", "--map-root-user", "--propagation", "private", process.execPath, fixture, bin, file, input, Path.join(dir, "disk"), String(free)]
  return new Promise<Report>((resolve, reject) =>
    execFile("unshare", args, { maxBuffer: 1 << 26, timeout: 900_000 }, (error, stdout, stderr) => {
      remove()
      if (error !== null) return reject(new Error(`${error.message}\n${stderr}`))
      resolve(JSON.parse(stdout))
    })
  )
}

const stack = /\n\s+at \S+ \(|\bat file:\/\//

describe("a disk that fills during a run", () => {
  // The two cases share nothing (each its own directory, tmpfs and mount namespace) and each is a
  // chain of single-threaded processes: side by side they take the time of one on a 2-core machine.
  for (const [free, place] of [[8, /could not extend file/], [22, /pg_wal|PANIC/]] as const) {
    it.concurrent(`with ${free} MiB free: exit 1 naming the full disk, no stack; after space is freed the run resumes`, async () => {
      const report = await scenario(free)
      assert.strictEqual(report.migrate.code, 0, report.migrate.stderr)
      const { run } = report
      const printed = `${run.stdout}\n${run.stderr}`
      assert.isNull(run.signal, `the run hung on the full disk and was killed:\n${printed.slice(-1500)}`)
      assert.strictEqual(run.code, 1, printed.slice(-1500))
      assert.include(run.stderr, "the disk holding the database is full")
      assert.match(run.stderr, place, "the full disk was met where this case meant it to be")
      assert.include(run.stderr, `ripple resume ${report.runId}`)
      assert.notMatch(printed, stack, "no stack trace")

      assert.strictEqual(report.runs.code, 0, report.runs.stderr)
      assert.match(report.runs.stdout, new RegExp(`${report.runId}\\s+fill\\s+running`))
      assert.strictEqual(report.resume?.code, 0, `${report.resume?.stdout}\n${report.resume?.stderr}`.slice(-1500))
      assert.include(report.resume?.stdout ?? "", "completed")
      const show = report.show?.stdout ?? ""
      assert.match(show, /\bcompleted\b/)
      for (const id of chain) assert.match(show, new RegExp(`${id}\\s+completed`))
    })
  }
})
