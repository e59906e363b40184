/**
 * Worker processes on the real server (`bench/dist/durableWorker.js`, built by `tsc -b`; built here
 * if missing): kill -9 during runs, many workers sharing one database, a stopped worker fenced out.
 */
import { assert, layer } from "@effect/vitest"
import { type Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Path from "node:path"
import * as TestDatabase from "../helpers/database.ts"
import { count, ensureBuilt, root, schemaUrl, spawnWorker, waitFor } from "../helpers/workerProcess.ts"
import { chain, expectedOutputs } from "./fixtures/chain.ts"

const script = Path.join(root, "bench", "dist", "durableWorker.js")
const startWorker = (url: string, env: Record<string, string>) => spawnWorker(script, url, env)

const outputsOf = (nodes: Readonly<Record<string, { readonly output?: unknown }>>) =>
  Object.fromEntries(Object.entries(nodes).map(([node, record]) => [node, record.output]))

layer(TestDatabase.shared("postgres"), { excludeTestServices: true })("postgres worker processes", (it) => {
  const test = (
    name: string,
    body: (
      url: string
    ) => Effect.Effect<void, unknown, SqlClient.SqlClient | Database.Database | SqlRunStore.SqlRunStore | Scope.Scope>
  ) =>
    it.effect(name, () =>
      Effect.gen(function*() {
        yield* ensureBuilt([script])
        const { schema } = yield* TestDatabase.TestDatabase
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE test_executions (
          run_id text NOT NULL, node text NOT NULL, pid integer NOT NULL, replayed boolean NOT NULL,
          at timestamptz NOT NULL DEFAULT clock_timestamp())`
        yield* body(schemaUrl(schema))
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))
      ))

  test("kill -9 at random points of 50-node runs (20 trials): another worker finishes them, nothing completed runs twice", (url) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { store } = yield* SqlRunStore.SqlRunStore
      const workflow = chain("mp-kill", 50)
      const victimEnv = { RIPPLE_WORKER_CONCURRENCY: "1", RIPPLE_LEASE_MS: "1000", RIPPLE_STEP_MS: "4" }
      // A trial: a victim killed while a run it executes is unfinished. Victims also reclaim runs of
      // victims killed before them (leases expire after 1 s), so a run may be cut short several times.
      const trials: Array<{ readonly runId: string; readonly pid: number }> = []
      const submitted: Array<string> = []
      for (let round = 0; round < 8 && trials.length < 20; round++) {
        submitted.push(...yield* Effect.forEach([0, 1, 2, 3], () => Worker.submit(workflow)))
        yield* Effect.forEach([0, 1, 2, 3], () =>
          Effect.scoped(Effect.gen(function*() {
            const victim = yield* startWorker(url, victimEnv)
            const pid = victim.pid!
            // Killed once it executed a random number of nodes, plus a random delay to land anywhere
            // in a step, a journal write or a transition.
            const at = 1 + Math.floor(Math.random() * 44)
            yield* waitFor(
              count(sql`SELECT count(*) AS n FROM test_executions WHERE pid = ${pid}`).pipe(Effect.map((n) => n >= at)),
              `worker ${pid} to execute ${at} nodes`
            )
            yield* Effect.sleep(Math.floor(Math.random() * 6))
            victim.kill("SIGKILL")
            const [row] = yield* sql<{ readonly run_id: string }>`SELECT run_id FROM test_executions WHERE pid = ${pid}
              ORDER BY at DESC LIMIT 1`
            const run = yield* store.getRun(row!.run_id)
            if (run.status !== "completed") trials.push({ runId: row!.run_id, pid })
          })), { concurrency: "unbounded", discard: true })
      }
      assert.isAtLeast(trials.length, 20)
      const reference = yield* Worker.submit(workflow)
      const allRuns = [...submitted, reference]
      yield* startWorker(url, { RIPPLE_WORKER_CONCURRENCY: "8", RIPPLE_LEASE_MS: "1000" })
      yield* waitFor(
        Effect.map(Effect.forEach(allRuns, (id) => store.getRun(id)), (runs) => runs.every((r) => r.status === "completed")),
        "the finisher to complete every run"
      )
      const expected = outputsOf((yield* store.snapshot(reference)).nodes)
      assert.deepStrictEqual(expected, expectedOutputs(50))
      for (const runId of submitted) {
        const snapshot = yield* store.snapshot(runId)
        assert.deepStrictEqual(outputsOf(snapshot.nodes), expected, `run ${runId}`)
      }
      // No node whose completion was journaled ran again; a node ran again only when a kill cut it short.
      assert.strictEqual(yield* count(sql`SELECT count(*) AS n FROM test_executions WHERE replayed`), 0)
      const kills = new Map<string, number>()
      for (const trial of trials) kills.set(trial.runId, (kills.get(trial.runId) ?? 0) + 1)
      const repeated = yield* sql<{ readonly run_id: string; readonly n: number | bigint | string }>`
        SELECT run_id, count(*) AS n FROM test_executions GROUP BY run_id, node HAVING count(*) > 1`
      for (const row of repeated) assert.isAtMost(Number(row.n), 1 + (kills.get(row.run_id) ?? 0), row.run_id)
      // Every interrupted run was finished by another process.
      for (const trial of trials) {
        const others = yield* count(sql`SELECT count(*) AS n FROM test_executions WHERE run_id = ${trial.runId} AND pid <> ${trial.pid}`)
        assert.isAbove(others, 0)
      }
    }))

  test("4 workers × 200 runs: each run completes once, no node is executed by two workers", (url) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Effect.forEach([0, 1, 2, 3], () => startWorker(url, { RIPPLE_WORKER_CONCURRENCY: "8", RIPPLE_STEP_MS: "1" }), {
        concurrency: "unbounded"
      })
      const workflow = chain("mp-many", 5)
      const runIds = yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i), () => Worker.submit(workflow), {
        concurrency: 8
      })
      yield* waitFor(
        Effect.map(count(sql`SELECT count(*) AS n FROM ripple_runs WHERE status IN ('completed', 'failed')`), (n) => n === 200),
        "200 runs to finish"
      )
      assert.strictEqual(yield* count(sql`SELECT count(*) AS n FROM ripple_runs WHERE status = 'completed'`), 200)
      assert.strictEqual(yield* count(sql`SELECT count(*) AS n FROM test_executions`), 1000)
      assert.strictEqual(
        yield* count(sql`SELECT count(*) AS n FROM (SELECT DISTINCT run_id, node FROM test_executions) x`),
        1000
      )
      assert.strictEqual(
        yield* count(sql`SELECT count(*) AS n FROM (SELECT run_id FROM test_executions GROUP BY run_id HAVING count(DISTINCT pid) > 1) x`),
        0
      )
      assert.isAtLeast(yield* count(sql`SELECT count(DISTINCT pid) AS n FROM test_executions`), 2)
      const { store } = yield* SqlRunStore.SqlRunStore
      const expected = expectedOutputs(5)
      for (const id of runIds.slice(0, 20)) assert.deepStrictEqual(outputsOf((yield* store.snapshot(id)).nodes), expected)
    }))

  test("a stopped worker whose lease was taken writes nothing when it wakes up", (url) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { store } = yield* SqlRunStore.SqlRunStore
      const zombie = yield* startWorker(url, { RIPPLE_WORKER_CONCURRENCY: "1", RIPPLE_LEASE_MS: "800", RIPPLE_STEP_MS: "300" })
      const runId = yield* Worker.submit(chain("mp-zombie", 6))
      yield* waitFor(
        Effect.map(count(sql`SELECT count(*) AS n FROM test_executions WHERE pid = ${zombie.pid!}`), (n) => n >= 2),
        "the first worker to be mid-run"
      )
      zombie.kill("SIGSTOP")
      yield* startWorker(url, { RIPPLE_WORKER_CONCURRENCY: "1", RIPPLE_LEASE_MS: "800", RIPPLE_STEP_MS: "1" })
      yield* waitFor(Effect.map(store.getRun(runId), (run) => run.status === "completed"), "the second worker to finish")
      const finished = yield* store.snapshot(runId)
      const [before] = yield* sql<{ readonly revision: string | number | bigint }>`SELECT revision FROM ripple_runs WHERE id = ${runId}`
      zombie.kill("SIGCONT")
      // The woken worker's heartbeat, step completion and journal writes all meet a lease it no longer holds.
      yield* Effect.sleep(1_500)
      assert.deepStrictEqual(yield* store.snapshot(runId), finished)
      const [after] = yield* sql<{ readonly revision: string | number | bigint }>`SELECT revision FROM ripple_runs WHERE id = ${runId}`
      assert.strictEqual(String(after!.revision), String(before!.revision))
      assert.deepStrictEqual(outputsOf(finished.nodes), expectedOutputs(6))
    }))
})
