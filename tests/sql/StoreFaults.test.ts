/**
 * Transient store faults are retried and never fail a run (issue 13): a trigger on the journal
 * raises a chosen SQLSTATE on chosen inserts. Its counter is a sequence, which a rollback does not
 * undo, so a fault fires on the Nth row the journal is asked to write and a retry gets past it.
 * Another on the run row fails lease renewals, the store call a retry of a block or of a
 * compensation makes first: one that outlasts the store's retries stops the execution, and never
 * fails the block, the compensation or the run; the process executing it takes it up again a
 * heartbeat later, and again while the fault lasts (tests/helpers/journalOutage.ts states it on the
 * test clock).
 */
import { assert, layer } from "@effect/vitest"
import type { Snapshot, Workflow } from "@ripple/core"
import { BlockError, Handler, Runs, RunStore } from "@ripple/runtime"
import { type Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import { parent } from "./fixtures/parentChild.ts"
import { waitFor } from "../helpers/workerProcess.ts"
import { chain, expectedOutputs, mix } from "./fixtures/chain.ts"

type Services = SqlClient.SqlClient | Database.Database | SqlRunStore.SqlRunStore | RunStore.RunStore | Handler.Handlers | Scope.Scope

const size = 6

// `step` blocks compute the chain's values and count their calls; `undoable` blocks output their
// node id and are compensable (the compensation records it); `boom` fails.
const handlers = (calls: Map<string, number>, undone: Array<string>) =>
  Handler.layer({
    step: (ctx) =>
      Effect.sync(() => {
        const key = `${ctx.runId}/${ctx.node}`
        calls.set(key, (calls.get(key) ?? 0) + 1)
        const prev = ctx.inputs["prev"] as { readonly v: number } | undefined
        return { v: mix(prev?.v ?? 0, Number(ctx.inputs["i"])) }
      }),
    undoable: (ctx) => Effect.succeed(ctx.node),
    double: (ctx) => Effect.succeed((ctx.input["n"] as number) * 2),
    boom: () => Effect.fail(BlockError.permanent("no truck")),
    // Fails its first attempt (a transient failure of its own), succeeds on the next.
    flaky: (ctx) => ctx.attempt === 1 ? Effect.fail(new BlockError.BlockError({ message: "try again" })) : Effect.succeed("done"),
    flakyUndo: (ctx) => Effect.succeed(ctx.node)
  }, {
    compensate: {
      undoable: (output) => Effect.sync(() => undone.push(output as string)),
      // Fails its first attempt, records the undo on the next.
      flakyUndo: (output, ctx) =>
        ctx.attempt === 1 ? Effect.fail(new BlockError.BlockError({ message: "try again" })) : Effect.sync(() => undone.push(output as string))
    }
  })

const saga: Workflow.Workflow = {
  id: "faults-saga",
  blocks: [{ id: "reserve", type: "undoable" }, { id: "charge", type: "undoable" }, { id: "ship", type: "boom" }],
  edges: [{ source: "reserve", target: "charge" }, { source: "charge", target: "ship" }]
}

// Rows `from` .. `from + times - 1` inserted into `table` (counted across attempts) that meet `when`
// (a trigger condition over NEW) fail with SQLSTATE `code`.
const injectFaults = (code: string, from: number, times: number, table = "ripple_journal", when = "TRUE") =>
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
    yield* sql.unsafe(`CREATE TRIGGER ripple_fault BEFORE INSERT ON ${table} FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION ripple_fault()`)
  })

// Lease renewals (the expiry moves, the holder stays) from the `from`th on fail with SQLSTATE 40001
// until the trigger is dropped (`dropRenewalFaults`).
const injectRenewalFaults = (from: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE SEQUENCE ripple_renewals`
    yield* sql.unsafe(`CREATE FUNCTION ripple_renewal_fault() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('ripple_renewals') >= ${from} THEN
          RAISE EXCEPTION 'injected renewal fault' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
      END $$`)
    yield* sql`CREATE TRIGGER ripple_renewal_fault BEFORE UPDATE ON ripple_runs FOR EACH ROW
      WHEN (NEW.lease_expires_at IS DISTINCT FROM OLD.lease_expires_at
        AND NEW.lease_owner = OLD.lease_owner AND NEW.lease_generation = OLD.lease_generation)
      EXECUTE FUNCTION ripple_renewal_fault()`
  })

const dropRenewalFaults = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TRIGGER ripple_renewal_fault ON ripple_runs`)

// Drops the renewal faults once `times` of them fired: the execution stopped, and was taken up again, meanwhile.
const dropRenewalFaultsAfter = (times: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const fired = Effect.map(sql<{ readonly n: number | bigint | string }>`SELECT last_value AS n FROM ripple_renewals`, (rows) => Number(rows[0]!.n) >= times)
    yield* waitFor(fired, "the renewal faults to fire", 30_000)
    yield* dropRenewalFaults
  })

// A block whose first attempt fails and whose retry renews the lease first.
const flaky: Workflow.Workflow = {
  id: "faults-flaky",
  blocks: [{ id: "flaky", type: "flaky", retry: { maxAttempts: 3, initialDelayMs: 1 } }],
  edges: []
}

// `reserve` (whose compensation fails its first attempt and retries), then `ship`, which fails.
const flakySaga: Workflow.Workflow = {
  id: "faults-flaky-saga",
  blocks: [{ id: "reserve", type: "flakyUndo", retry: { maxAttempts: 3, initialDelayMs: 1 } }, { id: "ship", type: "boom" }],
  edges: [{ source: "reserve", target: "ship" }]
}

// How many journal rows the trigger saw (faulted attempts included).
const rowsSeen = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly n: number | bigint | string }>`SELECT last_value AS n FROM ripple_fault_rows`
  return Number(rows[0]!.n)
})

const outputsOf = (snapshot: Snapshot.Snapshot) =>
  Object.fromEntries(Object.entries(snapshot.nodes).map(([node, record]) => [node, record.output]))

// The run completed with the outputs of a fault-free run, block `b<i>` executed `times(i)` times.
const completedAsFaultFree = (runId: string, calls: Map<string, number>, times: (i: number) => number) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    const snapshot = yield* store.snapshot(runId)
    assert.strictEqual(snapshot.status, "completed")
    assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(size))
    for (let i = 0; i < size; i++) assert.strictEqual(calls.get(`${runId}/b${i}`), times(i), `b${i}`)
  })

// The run ended as an uninterrupted one: completed, the same outputs, each handler called once.
const uninterrupted = (runId: string, calls: Map<string, number>) =>
  Effect.gen(function*() {
    yield* completedAsFaultFree(runId, calls, () => 1)
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

// A `Runs` layer whose executions stopped by the store are taken up again 200 ms later (a heartbeat).
const quickRuns = Runs.layer({ leaseMs: 600 })

// Every completion of `b3` journaled fails with SQLSTATE 22023 (not retryable): a value the table
// refuses, each time it is written, for more writes than one execution makes.
const refuseB3 = injectFaults("22023", 1, 1_000_000, "ripple_journal", "NEW.node = 'b3' AND NEW.status = 'completed'")

const dropFaults = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TRIGGER ripple_fault ON ripple_journal`)

// A write taking a run off the workers' queue fails with SQLSTATE 42501 (not retryable: a permission).
const refuseDequeue = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE FUNCTION ripple_dequeue_fault() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'injected dequeue fault' USING ERRCODE = '42501';
    END $$`)
  yield* sql`CREATE TRIGGER ripple_dequeue_fault BEFORE UPDATE ON ripple_runs FOR EACH ROW
    WHEN (OLD.queued AND NOT NEW.queued) EXECUTE FUNCTION ripple_dequeue_fault()`
})

// The SQL store, but for the write journaling `b3`'s completion: another process takes the run's
// lease first (it expired for it), then the write is refused with an error running again cannot fix.
// The worker that executes the run holds a stale lease from then on.
const takenThenRefused = (sqlStore: SqlRunStore.SqlRunStore["Service"], sql: SqlClient.SqlClient): SqlRunStore.SqlRunStore["Service"] => {
  const take = (runId: string) =>
    sql`UPDATE ripple_runs SET lease_owner = 'another process', lease_generation = lease_generation + 1,
      lease_expires_at = lease_expires_at + 3600000 WHERE id = ${runId}`
  const refused = new RunStore.StoreUnavailable({
    reason: new RunStore.StoreFailure({ message: "injected refusal", code: "22023" }),
    operation: "journal"
  })
  return {
    ...sqlStore,
    store: RunStore.RunStore.of({
      ...sqlStore.store,
      fenced: (lease) => {
        const fenced = sqlStore.store.fenced(lease)
        return RunStore.RunStore.of({
          ...fenced,
          journal: (runId, entries) =>
            entries.some((entry) => entry._tag === "Completed" && entry.node === "b3")
              ? Effect.andThen(Effect.orDie(take(runId)), Effect.fail(refused))
              : fenced.journal(runId, entries)
        })
      }
    })
  }
}

// A run as the workers' queue sees it: its status, whether it is queued, its lease holder, and how
// many leases were granted on it (each claim is one).
const queueState = (runId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{
      readonly status: string
      readonly queued: boolean
      readonly lease_owner: string | null
      readonly lease_generation: number | bigint | string
    }>`SELECT status, queued, lease_owner, lease_generation FROM ripple_runs WHERE id = ${runId}`
    const row = rows[0]!
    return { status: row.status, queued: row.queued, holder: row.lease_owner, claims: Number(row.lease_generation) }
  })

// The worker let go of the run after its first claim (taken off the queue), or claimed it again.
const stoppedOrClaimedAgain = (runId: string) =>
  Effect.map(queueState(runId), (state) => state.claims > 1 || (!state.queued && state.holder === null))

// Runs `count` other runs through the worker one after another: each is taken by a claim made
// since the last, which takes every claimable run with it (the worker has room for all of them).
const claimsLater = (count: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) {
      const other = yield* Worker.submit(chain(`faults-other-${i}`, 2))
      yield* waitFor(settled(other), "another run to finish", 30_000)
    }
  })

// `body`, given the messages logged at level Error while it runs (by the worker too).
const loggingErrors = <A, E, R>(body: (errors: ReadonlyArray<string>) => Effect.Effect<A, E, R>) => {
  const errors: Array<string> = []
  const collect = Logger.make((options) => {
    if (options.logLevel === "Error") errors.push(String(options.message))
  })
  return body(errors).pipe(Effect.provide(Logger.layer([collect], { mergeWithExisting: true })))
}

// The run completed with the outputs of a fault-free run; `b3`, whose completion the fault refused,
// was executed twice, every other block once.
const completedAfterFault = (runId: string, calls: Map<string, number>) => completedAsFaultFree(runId, calls, (i) => i === 3 ? 2 : 1)

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`store faults on ${backend}`, (it) => {
    const test = (
      name: string,
      policy: Schedule.Schedule<unknown, RunStore.StoreUnavailable> | undefined,
      body: (calls: Map<string, number>, undone: Array<string>) => Effect.Effect<void, unknown, Services>
    ) =>
      it.effect(name, () => {
        const calls = new Map<string, number>()
        const undone: Array<string> = []
        const store = policy === undefined
          ? SqlRunStore.layer
          : SqlRunStore.layer.pipe(Layer.provide(Layer.succeed(RunStore.RetryPolicy, policy)))
        return Effect.scoped(body(calls, undone)).pipe(
          Effect.provide(
            Layer.mergeAll(store, handlers(calls, undone)).pipe(Layer.provideMerge(TestDatabase.layer))
          )
        )
      })

    // 57P03 is what a server starting up, or in recovery, answers until it accepts work again.
    for (
      const [code, from, times, name] of [
        ["40001", 5, 1, "a serialization failure on a journal write of a run executed by Runs is retried"],
        ["57P03", 3, 4, "journal writes refused with SQLSTATE 57P03 (cannot connect now) for a while are retried"]
      ] as const
    ) {
      test(`${name}: the run completes as uninterrupted`, undefined, (calls) =>
        Effect.gen(function*() {
          yield* injectFaults(code, from, times)
          const { runId } = yield* Effect.gen(function*() {
            const runs = yield* Runs.Runs
            const started = yield* runs.start(chain(`faults-runs-${code}`, size))
            assert.strictEqual(yield* runs.wait(started.runId), "completed")
            return started
          }).pipe(Effect.provide(Runs.layer()))
          yield* uninterrupted(runId, calls)
          assert.isAtLeast(yield* rowsSeen, size + times, "every fault fired")
        }))
    }

    test("a serialization failure on a journal write of a run executed by a Worker is retried: the run completes as uninterrupted", undefined, (calls) =>
      Effect.gen(function*() {
        yield* injectFaults("40001", 5, 1)
        const runId = yield* Worker.submit(chain("faults-worker", size))
        yield* Worker.make(fast)
        yield* waitFor(settled(runId), "the run to finish", 30_000)
        yield* uninterrupted(runId, calls)
      }))

    test("a run with a transient fault that fails because of a block compensates its completed steps, once each", undefined, (_, undone) =>
      Effect.gen(function*() {
        yield* injectFaults("40001", 3, 1)
        const runId = yield* Worker.submit(saga)
        yield* Worker.make(fast)
        yield* waitFor(settled(runId), "the run to finish", 30_000)
        const { store } = yield* SqlRunStore.SqlRunStore
        const run = yield* store.getRun(runId)
        assert.strictEqual(run.status, "failed")
        assert.include(run.diagnostics.messages.join("\n"), "no truck")
        assert.deepStrictEqual(undone, ["charge", "reserve"])
        assert.deepStrictEqual((yield* store.compensations(runId)).map((c) => [c.node, c.status]), [["charge", "completed"], ["reserve", "completed"]])
        assert.isAbove(yield* rowsSeen, 3, "the fault fired")
      }))

    test("retries exhausted under Runs: the run is not failed, and its process takes it up again and completes it", shortPolicy, (calls) =>
      Effect.gen(function*() {
        yield* injectFaults("40001", 5, 3)
        const runs = yield* Runs.Runs
        const { store } = yield* SqlRunStore.SqlRunStore
        const { runId } = yield* runs.start(chain("faults-exhausted", size))
        assert.strictEqual(yield* runs.wait(runId), "completed")
        assert.deepStrictEqual(yield* store.compensations(runId), [])
        const snapshot = yield* store.snapshot(runId)
        assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(size))
        // What was durable before the fault is not executed again; the node whose completion was in
        // the failed write is.
        assert.strictEqual(calls.get(`${runId}/b0`), 1)
        for (let i = 0; i < size; i++) assert.isAtMost(calls.get(`${runId}/b${i}`) ?? 0, 2, `b${i}`)
        assert.isAtLeast(yield* rowsSeen, 7, "every fault fired")
      }).pipe(Effect.provide(quickRuns)))

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

    test("a store fault starting a child run stops the parent's execution instead of failing its block; taken up again, it completes", shortPolicy, () =>
      Effect.gen(function*() {
        // Row 1 is the parent's run, rows 2-4 the three attempts to insert its child's.
        yield* injectFaults("40001", 2, 3, "ripple_runs")
        const runs = yield* Runs.Runs
        const { store } = yield* SqlRunStore.SqlRunStore
        const { runId } = yield* runs.start(parent)
        yield* waitFor(Effect.map(runs.wait(runId), (status) => status === "completed" || status === "failed"), "the parent to finish", 30_000)
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(snapshot.nodes["sub"]?.output, { double: 42 })
        assert.lengthOf(yield* store.children(runId), 1)
        assert.isAtLeast(yield* rowsSeen, 4, "every fault fired")
      }).pipe(Effect.provide(quickRuns)))

    test("retries exhausted renewing the lease before a block's retry: the block and the run are not failed, and complete once renewals succeed", shortPolicy, () =>
      Effect.gen(function*() {
        yield* injectRenewalFaults(1)
        const runs = yield* Runs.Runs
        const { store } = yield* SqlRunStore.SqlRunStore
        const { runId } = yield* runs.start(flaky)
        yield* dropRenewalFaultsAfter(6)
        assert.strictEqual(yield* runs.wait(runId), "completed")
        assert.strictEqual((yield* store.snapshot(runId)).nodes["flaky"]?.output, "done")
      }).pipe(Effect.provide(quickRuns)))

    test("retries exhausted renewing the lease before a compensation's retry: the compensation is not failed, and runs again once renewals succeed", shortPolicy, (_, undone) =>
      Effect.gen(function*() {
        // The first renewal is the compensation's start; the ones before its retry fail.
        yield* injectRenewalFaults(2)
        const runs = yield* Runs.Runs
        const { store } = yield* SqlRunStore.SqlRunStore
        const { runId } = yield* runs.start(flakySaga)
        yield* dropRenewalFaultsAfter(8)
        assert.strictEqual(yield* runs.wait(runId), "failed")
        assert.deepStrictEqual((yield* store.compensations(runId)).map((entry) => entry.status), ["completed"])
        assert.deepStrictEqual(undone, ["reserve"])
      }).pipe(Effect.provide(quickRuns)))

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

    test("a non-retryable store error under a Worker stops the run for resume: not failed, not claimed again, nothing executed again; requeued, it completes", undefined, (calls) =>
      loggingErrors((errors) =>
        Effect.gen(function*() {
          yield* refuseB3
          const runId = yield* Worker.submit(chain("faults-worker-permanent", size))
          yield* Worker.make(fast)
          yield* waitFor(stoppedOrClaimedAgain(runId), "the worker to stop the run", 30_000)
          yield* claimsLater(3)
          assert.strictEqual(calls.get(`${runId}/b3`), 1, "b3 executed once")
          assert.strictEqual(yield* rowsSeen, 1, "its completion written once")
          assert.deepStrictEqual(yield* queueState(runId), { status: "running", queued: false, holder: null, claims: 1 })
          const logged = errors.filter((message) => message.includes(runId))
          assert.lengthOf(logged, 1)
          for (const part of ["StoreFailure 22023", "injected fault", `ripple resume ${runId} --queue`, "Worker.requeue", `ripple resume ${runId}\``]) {
            assert.include(logged[0], part)
          }
          yield* dropFaults
          assert.strictEqual(yield* Worker.requeue(runId), "running")
          yield* waitFor(settled(runId), "the requeued run to finish", 30_000)
          yield* completedAfterFault(runId, calls)
          assert.strictEqual((yield* queueState(runId)).claims, 2)
        })
      ))

    test("a run a Worker stopped for a non-retryable store error is continued by Runs.resume in another process", undefined, (calls) =>
      Effect.gen(function*() {
        yield* refuseB3
        const runId = yield* Worker.submit(chain("faults-worker-permanent-resume", size))
        yield* Worker.make(fast)
        yield* waitFor(stoppedOrClaimedAgain(runId), "the worker to stop the run", 30_000)
        yield* dropFaults
        const runs = yield* Runs.Runs
        const resumed = yield* runs.resume(runId)
        assert.isFalse("owner" in resumed, "continued here, not handed to an owner")
        assert.strictEqual(yield* runs.wait(runId), "completed")
        yield* completedAfterFault(runId, calls)
      }).pipe(Effect.provide(Runs.layer())))

    // A worker with a lease longer than the test executes a run whose `b3` completion is refused
    // with an error running again cannot fix, the store and the database being armed by `arm`: the
    // run's queue state and the errors logged for it once two later claims have passed, `b3` having
    // been executed once.
    const stoppedByWorker = <R>(
      name: string,
      arm: Effect.Effect<SqlRunStore.SqlRunStore["Service"], unknown, R>,
      calls: Map<string, number>,
      errors: ReadonlyArray<string>
    ) =>
      Effect.gen(function*() {
        const sqlStore = yield* arm
        const runId = yield* Worker.submit(chain(name, size))
        const worker = yield* Effect.provideService(Worker.make({ ...fast, leaseMs: 60_000 }), SqlRunStore.SqlRunStore, sqlStore)
        yield* waitFor(
          Effect.map(queueState(runId), (state) => state.claims > 1 || errors.some((message) => message.includes(runId))),
          "the worker to stop the run",
          30_000
        )
        yield* claimsLater(2)
        assert.strictEqual(calls.get(`${runId}/b3`), 1, "b3 executed once")
        const logged = errors.filter((message) => message.includes(runId))
        assert.lengthOf(logged, 1)
        return { owner: worker.owner, state: yield* queueState(runId), logged: logged[0]! }
      })

    test("a non-retryable store error under a Worker whose dequeue fails too: the lease is left to expire, the run not claimed again meanwhile", undefined, (calls) =>
      loggingErrors((errors) =>
        Effect.gen(function*() {
          const arm = Effect.andThen(Effect.andThen(refuseB3, refuseDequeue), SqlRunStore.SqlRunStore)
          const { logged, owner, state } = yield* stoppedByWorker("faults-worker-permanent-held", arm, calls, errors)
          assert.deepStrictEqual(state, { status: "running", queued: true, holder: owner, claims: 1 })
          assert.include(logged, "injected dequeue fault")
          assert.include(logged, "expire")
        })
      ))

    test("a non-retryable store error under a Worker whose lease another process took before it: the dequeue is fenced, the run left to its new holder, queued, and not claimed again", undefined, (calls) =>
      loggingErrors((errors) =>
        Effect.gen(function*() {
          const arm = Effect.map(Effect.all([SqlRunStore.SqlRunStore, SqlClient.SqlClient]), ([store, sql]) => takenThenRefused(store, sql))
          const { logged, state } = yield* stoppedByWorker("faults-worker-permanent-taken", arm, calls, errors)
          // Granted twice: the worker's claim, then the other process's take. Neither released nor dequeued.
          assert.deepStrictEqual(state, { status: "running", queued: true, holder: "another process", claims: 2 })
          assert.include(logged, "StoreFailure 22023")
          assert.include(logged, "injected refusal")
          assert.include(logged, "its lease was taken meanwhile")
        })
      ))

    // A write sent again after a lost connection recognises its own committed attempt by its token
    // (tests/sql/MachineWrites.test.ts loses the connection for real); an equal machine is no proof.
    test("an identical write from a stale revision is another writer's: offered again to the stored machine, never taken as written", undefined, () =>
      Effect.gen(function*() {
        const { prime, store } = yield* SqlRunStore.SqlRunStore
        const sql = yield* SqlClient.SqlClient
        const version = yield* store.saveWorkflow(chain("faults-replay", 1))
        const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
        const revision = Effect.map(
          sql<{ readonly revision: number | bigint | string }>`SELECT revision FROM ripple_runs WHERE id = ${run.id}`,
          (rows) => Number(rows[0]!.revision)
        )
        const before = yield* revision
        assert.deepStrictEqual(yield* store.transition(run.id, { type: "START" }, 1), { from: "pending", to: "running" })
        const started = yield* store.getRun(run.id)
        yield* store.transition(run.id, { type: "BRANCH_STARTED" }, 2)
        // This store's cache is one write behind: it computes exactly the machine already stored.
        prime(run.id, before + 1, started.machine)
        yield* store.transition(run.id, { type: "BRANCH_STARTED" }, 3)
        assert.strictEqual(yield* revision, before + 3, "written, not taken for the other writer's")
        assert.strictEqual((yield* store.getRun(run.id)).machine.context.running, 3)
        // A different write from the stale revision is a lost race too: offered again to the stored machine.
        prime(run.id, before + 1, started.machine)
        assert.deepStrictEqual(yield* store.transition(run.id, { type: "CANCEL" }, 4), { from: "running", to: "cancelled" })
        assert.strictEqual(yield* revision, before + 4)
      }))

    test("an event refused by the stored machine after a stale write missed is refused, not offered again for ever", undefined, () =>
      Effect.gen(function*() {
        const { prime, store } = yield* SqlRunStore.SqlRunStore
        const version = yield* store.saveWorkflow(chain("faults-stale", 1))
        const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
        const pending = yield* store.getRun(run.id)
        yield* store.transition(run.id, { type: "START" }, 1)
        yield* store.transition(run.id, { type: "CANCEL" }, 2)
        // This store's cache says pending (another process moved the run on): its write misses.
        prime(run.id, 0, pending.machine)
        const refused = yield* Effect.flip(store.transition(run.id, { type: "START" }, 3))
        assert.strictEqual(refused._tag, "IllegalTransition")
        if (refused._tag === "IllegalTransition") assert.strictEqual(refused.from, "cancelled")
      }))

    for (
      const [code, reason] of [
        ["40001", "SerializationFailure"],
        ["40P01", "Deadlock"],
        ["57P01", "AdminShutdown"],
        ["57P03", "AdminShutdown"],
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
