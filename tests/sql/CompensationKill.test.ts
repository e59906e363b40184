/**
 * kill -9 during saga compensation on the real server (issue 9): worker processes
 * (`tests/sql/fixtures/sagaWorker.mjs`, over the packages' `dist` built by `tsc -b`; built here if
 * missing) are killed while they compensate a failed run, and another process finishes the runs.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as Path from "node:path"
import * as TestDatabase from "../helpers/database.ts"
import { count, ensureBuilt, killed, root, schemaUrl, spawnWorker, waitFor } from "../helpers/workerProcess.ts"

const script = Path.join(import.meta.dirname, "fixtures", "sagaWorker.mjs")
// The fixture imports the packages by name, which resolve to their builds outside vitest.
const built = ["core", "runtime", "sql"].map((p) => Path.join(root, "packages", p, "dist", "index.js"))
const startWorker = (url: string, env: Record<string, string>) => spawnWorker(script, url, env)

const steps = ["reserve", "charge", "notify", "invoice", "pack", "label"]
const order = [...steps, "ship"]

// A chain of compensable steps ending in a block that fails permanently, so every run compensates
// all six steps, last completed first.
const workflow: Workflow.Workflow = {
  id: "saga-kill",
  blocks: [...steps.map((id) => ({ id, type: "step" })), { id: "ship", type: "boom" }],
  edges: order.slice(1).map((target, i) => ({ source: order[i]!, target }))
}

const compensateMs = 200

layer(TestDatabase.shared("postgres"), { excludeTestServices: true })("postgres saga worker processes", (it) => {
  it.effect("kill -9 mid-compensation (6 trials, 1–6 compensations in): another worker finishes every compensation, each effect applied once", () =>
    Effect.gen(function*() {
      yield* ensureBuilt(built)
      const { schema } = yield* TestDatabase.TestDatabase
      const sql = yield* SqlClient.SqlClient
      const { store } = yield* SqlRunStore.SqlRunStore
      const url = schemaUrl(schema)
      yield* sql`CREATE TABLE test_compensation_calls (
        run_id text NOT NULL, node text NOT NULL, pid integer NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp())`
      yield* sql`CREATE TABLE test_compensation_effects (
        run_id text NOT NULL, node text NOT NULL, pid integer NOT NULL, PRIMARY KEY (run_id, node))`

      // One victim per run, each executing one run at a time, so a victim killed mid-compensation
      // never touched another run. Its lease (heartbeat every third) lasts seconds past the kill,
      // longer than a round of trials takes: a victim of a later round does not reclaim a killed
      // run, which is left to the finisher alone.
      const victimEnv = {
        RIPPLE_WORKER_CONCURRENCY: "1",
        RIPPLE_LEASE_MS: "5000",
        RIPPLE_COMPENSATE_MS: String(compensateMs)
      }
      interface Trial {
        readonly runId: string
        readonly pid: number
        /** The compensation log when the victim died. */
        readonly log: ReadonlyArray<{ readonly node: string; readonly status: string }>
        /** Whether the pending compensation's effect was applied before the kill (not journaled). */
        readonly effectApplied: boolean
      }
      const trials: Array<Trial> = []
      const submitted: Array<string> = []
      // The kill points still to cover: after k compensation calls.
      let todo = [1, 2, 3, 4, 5, 6]
      for (let round = 0; round < 4 && todo.length > 0; round++) {
        const points = todo
        submitted.push(...yield* Effect.forEach(points, () => Worker.submit(workflow)))
        const missed = yield* Effect.forEach(points, (k) =>
          Effect.scoped(Effect.gen(function*() {
            const victim = yield* startWorker(url, victimEnv)
            const pid = victim.pid!
            yield* waitFor(
              count(sql`SELECT count(*) AS n FROM test_compensation_calls WHERE pid = ${pid}`).pipe(Effect.map((n) => n >= k)),
              `worker ${pid} to make ${k} compensation calls`
            )
            // Before k's compensation ends (the last one must still be running) or a little past it,
            // so the kill lands inside a compensation after its effect, or between one journaled
            // outcome and the next call.
            yield* Effect.sleep(Math.floor(Math.random() * (k === steps.length ? compensateMs / 2 : compensateMs + 60)))
            yield* killed(victim)
            const [row] = yield* sql<{ readonly run_id: string }>`SELECT run_id FROM test_compensation_calls
              WHERE pid = ${pid} ORDER BY at DESC LIMIT 1`
            const runId = row!.run_id
            const log = (yield* store.compensations(runId)).map((c) => ({ node: c.node, status: c.status }))
            const pending = log.find((c) => c.status === "pending")
            // A kill that came after the last compensation was journaled interrupted nothing: tried again.
            if (pending === undefined) return [k]
            assert.strictEqual((yield* store.getRun(runId)).status, "running", runId)
            const effects = yield* count(sql`SELECT count(*) AS n FROM test_compensation_effects
              WHERE run_id = ${runId} AND node = ${pending.node}`)
            trials.push({ runId, pid, log, effectApplied: effects > 0 })
            return []
          })), { concurrency: "unbounded" })
        todo = missed.flat()
      }
      assert.strictEqual(trials.length, 6)
      assert.strictEqual(new Set(trials.map((t) => t.runId)).size, 6)
      // A kill with the effect applied but its outcome not journaled is the case idempotency is for.
      assert.isTrue(trials.some((t) => t.effectApplied))

      const finisher = yield* startWorker(url, {
        RIPPLE_WORKER_CONCURRENCY: "8",
        RIPPLE_LEASE_MS: "5000",
        RIPPLE_COMPENSATE_MS: "10"
      })
      yield* waitFor(
        Effect.map(
          Effect.forEach(submitted, (id) => store.getRun(id)),
          (runs) => runs.every((r) => r.status !== "running" && r.status !== "pending")
        ),
        "the finisher to finish every run"
      )

      const kills = new Map(trials.map((t) => [t.runId, 1]))
      const reversed = [...steps].reverse()
      for (const runId of submitted) {
        const log = yield* store.compensations(runId)
        assert.deepStrictEqual(log.map((c) => [c.node, c.status]), reversed.map((node) => [node, "completed"]), runId)
        const run = yield* store.getRun(runId)
        assert.strictEqual(run.status, "failed", runId)
        assert.strictEqual(run.diagnostics.finalization, "failed", runId)
        // The report names the failure (read back from the journal after a crash) and every compensation.
        const report = run.diagnostics.messages.join("\n")
        assert.include(report, "ship failed: no truck", runId)
        for (const step of steps) assert.include(report, `compensated ${step}`, runId)
        const effects = yield* sql<{ readonly node: string }>`SELECT node FROM test_compensation_effects
          WHERE run_id = ${runId} ORDER BY node`
        assert.deepStrictEqual(effects.map((e) => e.node), [...steps].sort(), runId)
        // A compensation is called again only when a kill cut it short.
        const calls = yield* sql<{ readonly node: string; readonly n: number | bigint | string }>`SELECT node, count(*) AS n
          FROM test_compensation_calls WHERE run_id = ${runId} GROUP BY node ORDER BY node`
        assert.deepStrictEqual(calls.map((c) => c.node), [...steps].sort(), runId)
        for (const call of calls) assert.isAtMost(Number(call.n), 1 + (kills.get(runId) ?? 0), `${runId} ${call.node}`)
      }
      assert.strictEqual(yield* count(sql`SELECT count(*) AS n FROM test_compensation_calls WHERE node = 'ship'`), 0)
      for (const trial of trials) {
        // The finisher took over each interrupted run, and undid only what the victim had not journaled.
        const byFinisher = yield* sql<{ readonly node: string }>`SELECT DISTINCT node FROM test_compensation_calls
          WHERE run_id = ${trial.runId} AND pid = ${finisher.pid!}`
        const unfinished = trial.log.filter((c) => c.status !== "completed").map((c) => c.node)
        const finished = byFinisher.map((c) => c.node)
        for (const node of finished) assert.include(unfinished, node, `${trial.runId}: the finisher redid ${node}, journaled before the kill`)
        // A statement the victim sent just before it died can still commit after the log was read:
        // an entry the finisher left alone was completed by the victim, its effect applied by it.
        for (const node of unfinished.filter((n) => !finished.includes(n))) {
          const [effect] = yield* sql<{ readonly pid: number }>`SELECT pid FROM test_compensation_effects
            WHERE run_id = ${trial.runId} AND node = ${node}`
          assert.strictEqual(effect?.pid, trial.pid, `${trial.runId}: ${node} was compensated by neither worker`)
        }
        const others = yield* count(sql`SELECT count(*) AS n FROM test_compensation_calls
          WHERE run_id = ${trial.runId} AND pid NOT IN (${trial.pid}, ${finisher.pid!})`)
        assert.strictEqual(others, 0, trial.runId)
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))
    ))
})
