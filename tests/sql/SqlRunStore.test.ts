import { assert, layer } from "@effect/vitest"
import type { Snapshot, Workflow } from "@ripple/core"
import { RunStore } from "@ripple/runtime"
import { type Database, Migrations, SqlRunStore } from "@ripple/sql"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as Tracer from "effect/Tracer"
import * as TestDatabase from "../helpers/database.ts"

const workflow: Workflow.Workflow = {
  id: "sql-store",
  blocks: [{ id: "a", type: "value", params: { value: 1 } }, { id: "b", type: "value", params: { value: 2 } }],
  edges: [{ source: "a", target: "b" }]
}

const fingerprints = { definition: "0000000000000001", inputs: "0000000000000002" }

const completed = (node: string, output: Workflow.Json, at: number): RunStore.JournalEntry => ({
  _tag: "Completed",
  node,
  attempt: 1,
  inputs: {},
  output,
  decision: undefined,
  fingerprints,
  startedAt: at,
  at: at + 1
})

const newRun = (store: RunStore.RunStore["Service"], at = 1) =>
  Effect.flatMap(store.saveWorkflow(workflow), (version) => store.createRun({ version, mode: "full", input: {}, at }))

layer(Layer.empty, { excludeTestServices: true })("layerFromConfig", (it) => {
  it.effect("without DATABASE_URL it opens PGlite in the data directory and migrates it", () =>
    Effect.gen(function*() {
      const dataDir = yield* TestDatabase.pgliteDataDir
      const opened = SqlRunStore.layerFromConfig({ dataDir }).pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({})))
      )
      const runId = yield* Effect.gen(function*() {
        const store = yield* RunStore.RunStore
        return (yield* newRun(store)).id
      }).pipe(Effect.provide(opened))
      // Reopened: the schema is there (migrations are not applied twice) and so is the run.
      const reread = yield* Effect.gen(function*() {
        const store = yield* RunStore.RunStore
        assert.deepStrictEqual(yield* Migrations.run, [])
        return yield* store.getRun(runId)
      }).pipe(Effect.provide(opened))
      assert.strictEqual(reread.workflowId, "sql-store")
    }).pipe(Effect.scoped))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(backend, (it) => {
    const test = (
      name: string,
      body: Effect.Effect<void, unknown, SqlRunStore.SqlRunStore | RunStore.RunStore | SqlClient.SqlClient | Database.Database>
    ) => it.effect(name, () => body.pipe(Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))))

    test("watch: next waits for a change of the run's status or lease, made by any writer", Effect.scoped(Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* newRun(store)
      const other = yield* newRun(store)
      assert.isDefined(store.watch)
      const next = yield* store.watch!(run.id)
      const waiting = yield* Effect.forkChild(next)
      // Another run's change is not this run's.
      yield* store.transition(other.id, { type: "START" }, 2)
      yield* Effect.yieldNow
      assert.isUndefined(waiting.pollUnsafe(), "no change of the run yet")
      yield* store.transition(run.id, { type: "START" }, 2)
      yield* Fiber.join(waiting)
      // A lease taken by another process is a change too.
      const leased = yield* Effect.forkChild(next)
      yield* store.acquire(run.id, "elsewhere", { at: 3, ttlMs: 60_000 })
      yield* Fiber.join(leased)
    })))

    test("a snapshot read inside a caller's transaction reads it (a savepoint of that transaction)", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const sql = yield* SqlClient.SqlClient
      const run = yield* newRun(store)
      yield* store.journal(run.id, [completed("a", { in: "transaction" }, 10)])
      const snapshot = yield* sql.withTransaction(store.snapshot(run.id))
      assert.deepStrictEqual(snapshot.nodes["a"]?.output, { in: "transaction" })
    }))

    test("migrations are applied once", Effect.gen(function*() {
      assert.deepStrictEqual(yield* Migrations.run, [])
    }))

    test("a reused node is copied from the source run's row, not from the entry", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const first = yield* newRun(store)
      yield* store.journal(first.id, [completed("a", { stored: true }, 10)])
      const second = yield* newRun(store)
      // The record the entry carries is not what gets written: the source row is.
      const stale: Snapshot.NodeRecord = { status: "completed", output: "stale", fingerprints, attempt: 9 }
      yield* store.journal(second.id, [{ _tag: "Reused", node: "a", from: first.id, record: stale, reasons: ["unchanged"] }])
      const copied = (yield* store.snapshot(second.id)).nodes["a"]
      assert.deepStrictEqual(copied, { ...(yield* store.snapshot(first.id)).nodes["a"]!, reusedFrom: first.id })
      assert.deepStrictEqual(yield* store.reasons(second.id), { a: ["unchanged"] })
    }))

    test("last started and last completed never move back", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* newRun(store)
      yield* store.setDiagnostics(run.id, {
        lastStarted: { node: "b", at: 200 },
        lastCompleted: { node: "b", at: 210 },
        messages: ["first"]
      }, 300)
      yield* store.setDiagnostics(run.id, {
        lastStarted: { node: "a", at: 100 },
        lastCompleted: { node: "a", at: 110 },
        finalization: "completed",
        messages: ["second"]
      }, 400)
      const { diagnostics } = yield* store.getRun(run.id)
      assert.deepStrictEqual(diagnostics, {
        lastStarted: { node: "b", at: 200 },
        lastCompleted: { node: "b", at: 210 },
        finalization: "completed",
        messages: ["second"]
      })
      // A run cut short still shows where it was: its journal moves them forward too.
      yield* store.journal(run.id, [{ _tag: "Started", node: "a", attempt: 1, inputs: {}, fingerprints, at: 500 }])
      assert.deepStrictEqual((yield* store.getRun(run.id)).diagnostics.lastStarted, { node: "a", at: 500 })
    }))

    test("journal writes of concurrent runs share statements", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const runs = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), () => newRun(store))
      let statements = 0
      const counting = Tracer.make({
        span: (options) => {
          if (options.kind === "client") statements++
          return new Tracer.NativeSpan(options)
        }
      })
      yield* Effect.forEach(runs, (run, i) => store.journal(run.id, [completed("a", i, 20)]), {
        concurrency: "unbounded",
        discard: true
      }).pipe(Effect.withTracer(counting))
      assert.isBelow(statements, 40)
      for (const [i, run] of runs.entries()) assert.strictEqual((yield* store.snapshot(run.id)).nodes["a"]?.output, i)
    }))

    test("the dashboard counts unfinished runs at each block", Effect.gen(function*() {
      const sqlStore = yield* SqlRunStore.SqlRunStore
      const store = sqlStore.store
      const started = (node: string): RunStore.JournalEntry => ({ _tag: "Started", node, attempt: 1, inputs: {}, fingerprints, at: 5 })
      const [r1, r2, r3, done] = yield* Effect.forEach([1, 2, 3, 4], () => newRun(store))
      for (const run of [r1!, r2!, r3!, done!]) yield* store.transition(run.id, { type: "START" }, 5)
      yield* store.journal(r1!.id, [started("a")])
      yield* store.journal(r2!.id, [started("a")])
      yield* store.journal(r3!.id, [completed("a", 1, 5), started("b")])
      // A finished run with a row left running is not at any block.
      yield* store.journal(done!.id, [started("b")])
      yield* store.transition(done!.id, { type: "ALL_BRANCHES_FINISHED" }, 6)
      assert.deepStrictEqual(yield* sqlStore.atBlocks("sql-store"), { a: 2, b: 1 })
      assert.deepStrictEqual(yield* sqlStore.atBlocks("another"), {})
    }))
  })
}
