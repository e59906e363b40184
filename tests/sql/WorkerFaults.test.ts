/**
 * A worker's own statements are retried on transient faults like the store's (issue 13): a
 * serialization failure (SQLSTATE 40001) raised once by a trigger on the claim of a run, or on a
 * heartbeat's renewal of its lease, costs a retry: the worker goes on, the run completes as an
 * uninterrupted one, and nothing is logged as failed.
 */
import { assert, layer } from "@effect/vitest"
import { Handler, type RunStore } from "@ripple/runtime"
import { type Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
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
    step: (ctx) =>
      Effect.gen(function*() {
        const key = `${ctx.runId}/${ctx.node}`
        probe.calls.set(key, (probe.calls.get(key) ?? 0) + 1)
        if (probe.held && ctx.node === "b1") yield* Effect.promise(() => probe.released)
        const prev = ctx.inputs["prev"] as { readonly v: number } | undefined
        return { v: mix(prev?.v ?? 0, Number(ctx.inputs["i"])) }
      })
  })

// The first update of a run row that meets `when` (a trigger condition over OLD and NEW) fails with
// SQLSTATE 40001; its counter is a sequence, which the rollback does not undo.
const faultOnce = (when: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE SEQUENCE ripple_fault_rows`
    yield* sql.unsafe(`CREATE FUNCTION ripple_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('ripple_fault_rows') = 1 THEN
          RAISE EXCEPTION 'injected fault' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
      END $$`)
    yield* sql.unsafe(`CREATE TRIGGER ripple_fault BEFORE UPDATE ON ripple_runs FOR EACH ROW
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
