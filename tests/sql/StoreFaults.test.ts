/**
 * Transient store faults are retried and never fail a run (issue 13): a trigger on the journal
 * raises a chosen SQLSTATE on chosen inserts. Its counter is a sequence, which a rollback does not
 * undo, so a fault fires on the Nth row the journal is asked to write and a retry gets past it.
 */
import { assert, layer } from "@effect/vitest"
import type { Snapshot } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import { type Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import { waitFor } from "../helpers/workerProcess.ts"
import { chain, expectedOutputs, mix } from "./fixtures/chain.ts"

type Services = SqlClient.SqlClient | Database.Database | SqlRunStore.SqlRunStore | RunStore.RunStore | Handler.Handlers | Scope.Scope

const size = 6

const handlers = (calls: Map<string, number>) =>
  Handler.layer({
    step: (ctx) =>
      Effect.sync(() => {
        const key = `${ctx.runId}/${ctx.node}`
        calls.set(key, (calls.get(key) ?? 0) + 1)
        const prev = ctx.inputs["prev"] as { readonly v: number } | undefined
        return { v: mix(prev?.v ?? 0, Number(ctx.inputs["i"])) }
      })
  })

// Journal rows `from` .. `from + times - 1` (counted across attempts) fail with SQLSTATE `code`.
const injectFaults = (code: string, from: number, times: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE SEQUENCE ripple_fault_rows`
    yield* sql.unsafe(`CREATE FUNCTION ripple_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE n bigint := nextval('ripple_fault_rows');
      BEGIN
        IF n BETWEEN ${from} AND ${from + times - 1} THEN
          RAISE EXCEPTION 'injected fault' USING ERRCODE = '${code}';
        END IF;
        RETURN NEW;
      END $$`)
    yield* sql`CREATE TRIGGER ripple_fault BEFORE INSERT ON ripple_journal FOR EACH ROW EXECUTE FUNCTION ripple_fault()`
  })

// How many journal rows the trigger saw (faulted attempts included).
const rowsSeen = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: number | bigint | string }>`SELECT last_value AS n FROM ripple_fault_rows`
  return Number(rows[0]!.n)
})

const outputsOf = (snapshot: Snapshot.Snapshot) =>
  Object.fromEntries(Object.entries(snapshot.nodes).map(([node, record]) => [node, record.output]))

// The run ended as an uninterrupted one: completed, the same outputs, each handler called once.
const uninterrupted = (runId: string, calls: Map<string, number>) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    const snapshot = yield* store.snapshot(runId)
    assert.strictEqual(snapshot.status, "completed")
    assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(size))
    for (let i = 0; i < size; i++) assert.strictEqual(calls.get(`${runId}/b${i}`), 1, `b${i}`)
    assert.isAbove(yield* rowsSeen, 5, "the fault fired")
  })

const settled = (runId: string) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    const run = yield* store.getRun(runId)
    return run.status === "completed" || run.status === "failed"
  })

// Two retries, 1 ms apart: a fault that lasts three attempts exhausts them.
const shortPolicy = Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 2 }))

const fast = { leaseMs: 2_000, heartbeatMs: 100, pollMs: 50, shutdownGraceMs: 200 }

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`store faults on ${backend}`, (it) => {
    const test = (
      name: string,
      policy: Schedule.Schedule<unknown, RunStore.StoreUnavailable> | undefined,
      body: (calls: Map<string, number>) => Effect.Effect<void, unknown, Services>
    ) =>
      it.effect(name, () => {
        const calls = new Map<string, number>()
        const store = policy === undefined
          ? SqlRunStore.layer
          : SqlRunStore.layer.pipe(Layer.provide(Layer.succeed(RunStore.RetryPolicy, policy)))
        return Effect.scoped(body(calls)).pipe(
          Effect.provide(Layer.mergeAll(store, handlers(calls)).pipe(Layer.provideMerge(TestDatabase.layer)))
        )
      })

    test("a serialization failure on a journal write of a run executed by Runs is retried: the run completes as uninterrupted", undefined, (calls) =>
      Effect.gen(function*() {
        yield* injectFaults("40001", 5, 1)
        const { runId } = yield* Effect.gen(function*() {
          const runs = yield* Runs.Runs
          const started = yield* runs.start(chain("faults-runs", size))
          assert.strictEqual(yield* runs.wait(started.runId), "completed")
          return started
        }).pipe(Effect.provide(Runs.layer()))
        yield* uninterrupted(runId, calls)
      }))

    test("a serialization failure on a journal write of a run executed by a Worker is retried: the run completes as uninterrupted", undefined, (calls) =>
      Effect.gen(function*() {
        yield* injectFaults("40001", 5, 1)
        const runId = yield* Worker.submit(chain("faults-worker", size))
        yield* Worker.make(fast)
        yield* waitFor(settled(runId), "the run to finish", 30_000)
        yield* uninterrupted(runId, calls)
      }))

    test("retries exhausted under Runs: the execution stops with StoreUnavailable, the run stays running and resumes to completion", shortPolicy, (calls) =>
      Effect.gen(function*() {
        yield* injectFaults("40001", 5, 3)
        const runs = yield* Runs.Runs
        const { store } = yield* SqlRunStore.SqlRunStore
        const { runId } = yield* runs.start(chain("faults-exhausted", size))
        const error = yield* Effect.flip(runs.wait(runId))
        assert.strictEqual(error._tag, "StoreUnavailable")
        if (error._tag === "StoreUnavailable") {
          assert.strictEqual(error.reason._tag, "SerializationFailure")
          assert.strictEqual(error.reason.code, "40001")
          assert.strictEqual(error.operation, "journal")
        }
        assert.strictEqual((yield* store.getRun(runId)).status, "running")
        assert.deepStrictEqual(yield* store.compensations(runId), [])
        yield* runs.resume(runId)
        assert.strictEqual(yield* runs.wait(runId), "completed")
        const snapshot = yield* store.snapshot(runId)
        assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(size))
        // What was durable before the fault is not executed again; the node whose completion was in
        // the failed write is.
        assert.strictEqual(calls.get(`${runId}/b0`), 1)
        for (let i = 0; i < size; i++) assert.isAtMost(calls.get(`${runId}/b${i}`) ?? 0, 2, `b${i}`)
      }).pipe(Effect.provide(Runs.layer())))

    test("retries exhausted under a Worker: the run is not failed, and is claimed again and completed", shortPolicy, () =>
      Effect.gen(function*() {
        yield* injectFaults("40001", 5, 3)
        const runId = yield* Worker.submit(chain("faults-worker-exhausted", size))
        yield* Worker.make(fast)
        yield* waitFor(settled(runId), "the run to finish", 30_000)
        const { store } = yield* SqlRunStore.SqlRunStore
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(size))
        assert.isAbove(yield* rowsSeen, 7, "every fault fired")
      }))

    test("a non-retryable store error stops the execution at once; the run is not failed", undefined, () =>
      Effect.gen(function*() {
        yield* injectFaults("22023", 5, 1)
        const runs = yield* Runs.Runs
        const { store } = yield* SqlRunStore.SqlRunStore
        const { runId } = yield* runs.start(chain("faults-permanent", size))
        const error = yield* Effect.flip(runs.wait(runId))
        assert.strictEqual(error._tag, "StoreUnavailable")
        if (error._tag === "StoreUnavailable") assert.strictEqual(error.reason._tag, "StoreFailure")
        assert.strictEqual(yield* rowsSeen, 5, "not retried")
        assert.strictEqual((yield* store.getRun(runId)).status, "running")
        yield* runs.resume(runId)
        assert.strictEqual(yield* runs.wait(runId), "completed")
        assert.deepStrictEqual(outputsOf(yield* store.snapshot(runId)), expectedOutputs(size))
      }).pipe(Effect.provide(Runs.layer())))

    for (
      const [code, reason] of [
        ["40001", "SerializationFailure"],
        ["40P01", "Deadlock"],
        ["57P01", "AdminShutdown"],
        ["55P03", "DatabaseBusy"]
      ] as const
    ) {
      test(`SQLSTATE ${code} is a retryable ${reason}`, shortPolicy, () =>
        Effect.gen(function*() {
          const { store } = yield* SqlRunStore.SqlRunStore
          const version = yield* store.saveWorkflow(chain("faults-codes", 1))
          const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
          yield* injectFaults(code, 1, 3)
          const entry: RunStore.JournalEntry = { _tag: "Skipped", node: "b0", fingerprints: { definition: "d" }, at: 1 }
          const error = yield* Effect.flip(store.journal(run.id, [entry]))
          assert.strictEqual(error._tag, "StoreUnavailable")
          if (error._tag === "StoreUnavailable") {
            assert.strictEqual(error.reason._tag, reason)
            assert.isTrue(error.isRetryable)
          }
          assert.strictEqual(yield* rowsSeen, 3, "three attempts: the first and two retries")
          yield* store.journal(run.id, [entry])
          assert.strictEqual((yield* store.snapshot(run.id)).nodes["b0"]?.status, "skipped")
        }))
    }
  })
}
