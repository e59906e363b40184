/**
 * A worker stopped past its lease on the real server (issue 13): a worker process
 * (`tests/sql/fixtures/leaseWorker.mjs`, over the packages' `dist` built by `tsc -b`; built here if
 * missing) is SIGSTOPped while it waits out a retry's backoff, another worker takes the run over and
 * finishes it, and the stopped one is continued: it stops (its lease's deadline passed: it fences
 * itself; or it finds the lease lost) and starts nothing. Handler calls are recorded by the handler itself,
 * synchronously in a file, outside Ripple.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestDatabase from "../helpers/database.ts"
import { ensureBuilt, root, schemaUrl, spawnWorker, waitFor } from "../helpers/workerProcess.ts"

const script = Path.join(import.meta.dirname, "fixtures", "leaseWorker.mjs")
// The fixture imports the packages by name, which resolve to their builds outside vitest.
const built = ["core", "runtime", "sql"].map((p) => Path.join(root, "packages", p, "dist", "index.js"))

// The retry's backoff (1.5 s) outlasts the lease (0.8 s): a worker stopped during it has lost the
// run by the time its next attempt is due.
const workflow: Workflow.Workflow = {
  id: "lease-zombie",
  blocks: [{ id: "f", type: "flaky", retry: { maxAttempts: 3, initialDelayMs: 1_500 } }],
  edges: []
}

layer(TestDatabase.shared("postgres"), { excludeTestServices: true })("postgres: a worker stopped past its lease", (it) => {
  it.effect("continued after another worker took its run over, it starts no handler there and logs that it stopped on the lease", () =>
    Effect.gen(function*() {
      yield* ensureBuilt(built)
      const { schema } = yield* TestDatabase.TestDatabase
      const { store } = yield* SqlRunStore.SqlRunStore
      const directory = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-lease-"))),
        (path) => Effect.sync(() => Fs.rmSync(path, { recursive: true, force: true }))
      )
      const file = Path.join(directory, "calls")
      Fs.writeFileSync(file, "")
      const url = schemaUrl(schema)
      const env = { RIPPLE_CALLS_FILE: file, RIPPLE_LEASE_MS: "800", RIPPLE_POLL_MS: "100" }
      const zombie = yield* spawnWorker(script, url, env)
      let output = ""
      zombie.stdout!.on("data", (data: Buffer) => {
        output += data.toString()
      })
      const runId = yield* Worker.submit(workflow)
      // Calls of the run's handler by process `pid`, made after `after` (epoch ms).
      const calls = (pid: number, after = 0) =>
        Effect.sync(() =>
          Fs.readFileSync(file, "utf8").split("\n").filter((line) => {
            const [by, run, , , at] = line.split(" ")
            return Number(by) === pid && run === runId && Number(at) > after
          }).length
        )
      yield* waitFor(Effect.map(calls(zombie.pid!), (n) => n >= 1), "the first attempt")
      // Stopped while it waits out the backoff of its first attempt.
      zombie.kill("SIGSTOP")
      const taker = yield* spawnWorker(script, url, env)
      yield* waitFor(Effect.map(store.getRun(runId), (run) => run.status === "completed"), "the other worker to finish the run")
      const now = Date.now()
      zombie.kill("SIGCONT")
      // Its next attempt is overdue the moment it runs again: either it starts it, or it stops —
      // fenced, its lease's deadline long past (`Lease.hold`), or finding out it lost the lease.
      yield* waitFor(
        Effect.map(calls(zombie.pid!, now), (late) => late > 0 || output.includes(`lease of run ${runId}`)),
        "the continued worker to act",
        30_000
      )
      yield* Effect.sleep(500)
      assert.strictEqual(yield* calls(zombie.pid!, now), 0, "a handler call by the worker that lost the run")
      assert.include(output, `lease of run ${runId}`)
      assert.match(output, /generation 1\b/)
      const snapshot = yield* store.snapshot(runId)
      assert.strictEqual(snapshot.nodes["f"]?.output, 2)
      assert.strictEqual(yield* calls(taker.pid!), 2)
    }).pipe(Effect.scoped, Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))))
})
