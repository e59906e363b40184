/**
 * A worker's own statements are retried on transient faults like the store's (issue 13): a
 * serialization failure (SQLSTATE 40001) raised once by a trigger on the claim of a run, or on a
 * heartbeat's renewal of its lease, costs a retry: the worker goes on, the run completes as an
 * uninterrupted one, and nothing is logged as failed. `Worker.submit` and `Worker.requeue` go
 * through the same retries: one fault costs a retry, a fault that persists fails them with
 * `RunStore.StoreUnavailable` once the retry policy gives up (their error types name no `SqlError`).
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, Options, Runs, RunStore } from "@ripple/runtime"
import { type Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import { waitFor } from "../helpers/workerProcess.ts"
import { chain, expectedOutputs, mix } from "./fixtures/chain.ts"

type Services = SqlClient.SqlClient | Database.Database | SqlRunStore.SqlRunStore | RunStore.RunStore | Handler.Handlers | Scope.Scope

const size = 3

/** Calls per `run/node`; `b1` waits for `release` (so heartbeats happen while it runs) when `held`. */
interface Probe {
  readonly calls: Map<string, number>
  held: boolean
  release: () => void
  readonly released: Promise<void>
}

const makeProbe = (): Probe => {
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  return { calls: new Map(), held: false, release, released }
}

const handlers = (probe: Probe) =>
  Handler.layer({
    fail: (ctx) =>
      Effect.suspend(() => {
        const key = `${ctx.runId}/${ctx.node}`
        probe.calls.set(key, (probe.calls.get(key) ?? 0) + 1)
        return Effect.fail(BlockError.permanent("broken"))
      }),
    step: (ctx) =>
      Effect.gen(function*() {
        const key = `${ctx.runId}/${ctx.node}`
        probe.calls.set(key, (probe.calls.get(key) ?? 0) + 1)
        if (probe.held && ctx.node === "b1") yield* Effect.promise(() => probe.released)
        const prev = ctx.inputs["prev"] as { readonly v: number } | undefined
        return { v: mix(prev?.v ?? 0, Number(ctx.inputs["i"])) }
      })
  })

// The first `times` updates (or inserts) of a run row that meet `when` (a trigger condition over
// OLD and NEW) fail with SQLSTATE 40001; its counter is a sequence, which the rollback does not undo.
const faultOnce = (when: string, times = 1, on: "UPDATE" | "INSERT" = "UPDATE") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE SEQUENCE ripple_fault_rows`
    yield* sql.unsafe(`CREATE FUNCTION ripple_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('ripple_fault_rows') <= ${times} THEN
          RAISE EXCEPTION 'injected fault' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
      END $$`)
    yield* sql.unsafe(`CREATE TRIGGER ripple_fault BEFORE ${on} ON ripple_runs FOR EACH ROW
      WHEN (${when}) EXECUTE FUNCTION ripple_fault()`)
  })

// How many updates met the condition (the faulted one included).
const rowsSeen = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: number | bigint | string; readonly called: boolean }>`SELECT last_value AS n, is_called AS called
    FROM ripple_fault_rows`
  return rows[0]!.called ? Number(rows[0]!.n) : 0
})

const settled = (runId: string) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    const run = yield* store.getRun(runId)
    return run.status === "completed" || run.status === "failed"
  })

// The run completed with the uninterrupted outputs, each block called once.
const uninterrupted = (runId: string, probe: Probe) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    const snapshot = yield* store.snapshot(runId)
    assert.strictEqual(snapshot.status, "completed")
    assert.deepStrictEqual(
      Object.fromEntries(Object.entries(snapshot.nodes).map(([node, record]) => [node, record.output])),
      expectedOutputs(size)
    )
    for (let i = 0; i < size; i++) assert.strictEqual(probe.calls.get(`${runId}/b${i}`), 1, `b${i}`)
  })

// Marking a run queued for the workers (submit, requeue).
const queueing = "NEW.queued AND NOT COALESCE(OLD.queued, FALSE)"
// A failed run resumed (requeue).
const resuming = "OLD.status = 'failed' AND NEW.status <> OLD.status"

// From now on every update (or insert) of a run row that meets `when` fails with SQLSTATE 40001.
const faultAlways = (on: "UPDATE" | "INSERT" = "UPDATE", when = "TRUE") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ripple_fault_always() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'injected fault' USING ERRCODE = '40001';
      END $$`)
    yield* sql`DROP TRIGGER IF EXISTS ripple_fault ON ripple_runs`
    yield* sql.unsafe(`CREATE TRIGGER ripple_fault_always BEFORE ${on} ON ripple_runs FOR EACH ROW
      WHEN (${when}) EXECUTE FUNCTION ripple_fault_always()`)
  })

// The runs stored of a workflow, and how many of them no worker would ever claim (pending, not queued).
const storedRuns = (workflowId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly queued: boolean; readonly status: string }>`SELECT queued, status FROM ripple_runs
      WHERE workflow_id = ${workflowId}`
    return { all: rows.length, unclaimable: rows.filter((row) => row.status === "pending" && !row.queued).length }
  })

// A short retry policy: a fault that persists gives up at once.
const giveUpSoon = Effect.provideService(RunStore.RetryPolicy, Schedule.recurs(2))

// A parent whose `sub` block runs `child` (inline) and outputs what it outputs.
const parentOf = (id: string, child: Workflow.Workflow): Workflow.Workflow => ({
  id,
  blocks: [
    { id: "start", type: "trigger" },
    { id: "sub", type: "child", params: { workflow: JSON.stringify(child), input: {} } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.sub.output" } } }
  ],
  edges: [{ source: "start", target: "sub" }, { source: "sub", target: "out" }]
})

// A run that fails: its block does.
const broken: Workflow.Workflow = {
  version: 1,
  id: "worker-faults-broken",
  blocks: [{ id: "start", type: "trigger" }, { id: "x", type: "fail" }],
  edges: [{ source: "start", target: "x" }]
}

// A lease grant: the generation moves on.
const claims = "NEW.lease_generation <> OLD.lease_generation"
// A renewal: the same holder and generation, a later expiry.
const renewals = `OLD.lease_owner IS NOT NULL AND NEW.lease_owner = OLD.lease_owner
  AND NEW.lease_generation = OLD.lease_generation AND NEW.lease_expires_at <> OLD.lease_expires_at`

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`worker faults on ${backend}`, (it) => {
    const test = (name: string, body: (probe: Probe, warnings: Array<string>) => Effect.Effect<void, unknown, Services>) =>
      it.effect(name, () => {
        const probe = makeProbe()
        const warnings: Array<string> = []
        const collect = Logger.make((options) => {
          if (options.logLevel === "Warn" || options.logLevel === "Error") warnings.push(String(options.message))
        })
        return Effect.scoped(body(probe, warnings)).pipe(
          Effect.provide(Layer.mergeAll(SqlRunStore.layer, handlers(probe)).pipe(Layer.provideMerge(TestDatabase.layer))),
          Effect.provide(Logger.layer([collect], { mergeWithExisting: true }))
        )
      })

    test("a serialization failure on a worker's claim is retried: the run is claimed at once and completes", (probe, warnings) =>
      Effect.gen(function*() {
        yield* faultOnce(claims)
        const runId = yield* Worker.submit(chain("worker-faults-claim", size))
        // No poll within the test: the worker claims when it starts, and then only when notified.
        yield* Worker.make({ leaseMs: 2_000, heartbeatMs: 100, pollMs: 600_000, shutdownGraceMs: 200 })
        yield* waitFor(settled(runId), "the run to finish", 30_000)
        yield* uninterrupted(runId, probe)
        assert.isAtLeast(yield* rowsSeen, 2, "the fault fired and the claim was sent again")
        assert.deepStrictEqual(warnings, [])
      }))

    test("Worker.submit: a serialization failure on storing the run is retried; one that persists fails it with StoreUnavailable", () =>
      Effect.gen(function*() {
        yield* faultOnce("TRUE", 1, "INSERT")
        // Its error type names no SqlError (a compile error otherwise).
        const submitted: Effect.Effect<
          string,
          Runs.InvalidWorkflow | Runs.InvalidInput | Runs.PlanFailed | Options.InvalidOption | RunStore.WorkflowNotFound | RunStore.StoreUnavailable,
          Services
        > = Worker.submit(
          chain("worker-faults-submit", size)
        )
        const runId = yield* submitted.pipe(giveUpSoon)
        assert.isTrue((yield* (yield* SqlRunStore.SqlRunStore).store.getRun(runId)).queued)
        assert.strictEqual(yield* rowsSeen, 2, "the fault fired and the statement was sent again")
        yield* faultAlways("INSERT")
        // A store built under the short policy (a store reads its policy when it is built).
        const refused = yield* Effect.flip(Worker.submit(chain("worker-faults-refused", size)).pipe(Effect.provide(Layer.fresh(SqlRunStore.layer)))).pipe(
          giveUpSoon
        )
        assert.strictEqual(refused._tag, "StoreUnavailable")
        assert.strictEqual(refused._tag === "StoreUnavailable" ? refused.reason._tag : undefined, "SerializationFailure")
        assert.deepStrictEqual(yield* storedRuns("worker-faults-refused"), { all: 0, unclaimable: 0 }, "nothing stored")
      }))

    test("Worker.submit: a run is queued from its first row, not by a later update an outage could refuse, and the workers are notified", (probe) =>
      Effect.gen(function*() {
        // No poll within the test: the worker claims when it starts, and then only when notified.
        yield* Worker.make({ leaseMs: 2_000, heartbeatMs: 100, pollMs: 600_000, shutdownGraceMs: 200 })
        // Once a first run has finished, the worker's claim at its start is behind it.
        yield* waitFor(settled(yield* Worker.submit(chain("worker-faults-warm-up", size))), "the first run to finish", 15_000)
        // Any update that would queue a run fails, for longer than the retries last.
        yield* faultAlways("UPDATE", queueing)
        const runId = yield* Worker.submit(chain("worker-faults-first-row", size)).pipe(giveUpSoon)
        assert.deepStrictEqual(yield* storedRuns("worker-faults-first-row"), { all: 1, unclaimable: 0 })
        yield* waitFor(settled(runId), "the run to finish", 15_000)
        yield* uninterrupted(runId, probe)
      }))

    test("a child run is queued from its first row: the parent completes though updates that would queue it fail", (probe) =>
      Effect.gen(function*() {
        const child = chain("worker-faults-child", size)
        const parentId = yield* Worker.submit(parentOf("worker-faults-parent", child))
        yield* faultAlways("UPDATE", queueing)
        // No poll: the worker hears of the child, and of its end, only by notifications.
        yield* Worker.make({ leaseMs: 2_000, heartbeatMs: 100, pollMs: 600_000, shutdownGraceMs: 200 }).pipe(giveUpSoon)
        yield* waitFor(settled(parentId), "the parent to finish", 15_000)
        assert.strictEqual((yield* (yield* SqlRunStore.SqlRunStore).store.getRun(parentId)).status, "completed")
        assert.deepStrictEqual(yield* storedRuns(child.id), { all: 1, unclaimable: 0 })
        for (let i = 0; i < size; i++) assert.isTrue([...probe.calls.keys()].some((key) => key.endsWith(`/b${i}`)), `b${i}`)
      }))

    test("Worker.requeue: a serialization failure on its transition is retried; one that persists fails it with StoreUnavailable", () =>
      Effect.gen(function*() {
        const runs = Context.get(yield* Layer.build(Runs.layer()), Runs.Runs)
        const failed = yield* runs.start(broken, {})
        assert.strictEqual(yield* runs.wait(failed.runId), "failed")
        yield* faultOnce(resuming)
        const requeued: Effect.Effect<string, RunStore.RunStoreError, Services> = Worker.requeue(failed.runId)
        assert.strictEqual(yield* requeued, "running")
        assert.strictEqual(yield* rowsSeen, 2, "the fault fired and the transition was sent again")
        yield* faultAlways()
        const refused = yield* Effect.flip(Worker.requeue(failed.runId)).pipe(giveUpSoon)
        assert.strictEqual(refused._tag, "StoreUnavailable")
      }))

    test("Worker.requeue: a fault that persists on queueing a failed run leaves it failed, not running unqueued; once over, the workers are notified of it", (probe) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const runs = Context.get(yield* Layer.build(Runs.layer()), Runs.Runs)
        // Started here, not submitted: the run is not queued for the workers.
        const failed = yield* runs.start(broken, {})
        assert.strictEqual(yield* runs.wait(failed.runId), "failed")
        // No poll within the test: the worker claims when it starts, and then only when notified.
        yield* Worker.make({ leaseMs: 2_000, heartbeatMs: 100, pollMs: 600_000, shutdownGraceMs: 200 })
        // Once a first run has finished, the worker's claim at its start is behind it.
        yield* waitFor(settled(yield* Worker.submit(chain("worker-faults-requeue-warm-up", size))), "the first run to finish", 15_000)
        const state = Effect.map(store.getRun(failed.runId), (run) => ({ status: run.status, queued: run.queued === true }))
        // Any update that would queue a run fails, for longer than the retries last.
        yield* faultAlways("UPDATE", queueing)
        // A store built under the short policy (a store reads its policy when it is built).
        const refused = yield* Effect.flip(Worker.requeue(failed.runId).pipe(Effect.provide(Layer.fresh(SqlRunStore.layer)))).pipe(
          giveUpSoon
        )
        assert.strictEqual(refused._tag, "StoreUnavailable")
        assert.deepStrictEqual(yield* state, { status: "failed", queued: false }, "untouched, not running with no worker to claim it")
        const sql = yield* SqlClient.SqlClient
        yield* sql`DROP TRIGGER ripple_fault_always ON ripple_runs`
        assert.strictEqual(yield* Worker.requeue(failed.runId), "running")
        assert.isTrue((yield* state).queued)
        yield* waitFor(settled(failed.runId), "the requeued run to finish", 15_000)
        assert.strictEqual(probe.calls.get(`${failed.runId}/x`), 2, "its failed block ran again, by the worker")
      }))

    test("a serialization failure on a heartbeat's renewal is retried: the lease is kept and the run completes", (probe, warnings) =>
      Effect.gen(function*() {
        probe.held = true
        yield* faultOnce(renewals)
        const runId = yield* Worker.submit(chain("worker-faults-heartbeat", size))
        yield* Worker.make({ leaseMs: 2_000, heartbeatMs: 50, pollMs: 50, shutdownGraceMs: 200 })
        // The renewal that failed and the one sent again, both while `b1` runs.
        yield* waitFor(Effect.map(rowsSeen, (n) => n >= 2), "the faulted renewal to be sent again", 30_000)
        probe.release()
        yield* waitFor(settled(runId), "the run to finish", 30_000)
        yield* uninterrupted(runId, probe)
        assert.deepStrictEqual(warnings, [])
      }))
  })
}
