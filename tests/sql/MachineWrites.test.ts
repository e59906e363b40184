/**
 * Machine writes are compare-and-set on the run row's revision, and one sent again after a lost
 * connection recognises its own committed first attempt by its token (and so does `markFailed`). Found by the incremental
 * property on PGlite: two approvals parking at once each offered `BRANCH_STARTED` from the same
 * revision, and the second write, seeing the first's identical machine, took it for its own —
 * the run lost a branch, settled `paused` while still running, and its end was refused.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStatus, RunStore } from "@ripple/runtime"
import { Migrations, SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import * as LosingConnection from "../helpers/losingConnection.ts"
import { chain } from "./fixtures/chain.ts"

const policy = Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 3 }))

const setup = Effect.gen(function*() {
  yield* Migrations.run
  const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
  const sqlStore = yield* SqlRunStore.make.pipe(
    Effect.provideService(SqlClient.SqlClient, losing.client),
    Effect.provideService(RunStore.RetryPolicy, policy)
  )
  const store = sqlStore.store
  const version = yield* store.saveWorkflow(chain("machine-writes", 1))
  const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
  yield* store.transition(run.id, { type: "START" }, 1)
  return { losing, sqlStore, store, runId: run.id }
})

/** Two approvals that park at once, beside a parallel that runs on meanwhile. */
const approvals: Workflow.Workflow = {
  id: "two-approvals",
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "a", type: "approval", params: { value: 1 } },
    { id: "b", type: "approval", params: { value: 2 } },
    { id: "v", type: "value", params: { value: [] } }
  ],
  edges: [{ source: "trigger", target: "a" }, { source: "trigger", target: "b" }, { source: "trigger", target: "P" }],
  parallels: [{ id: "P", kind: "count", body: ["v"], count: 1, concurrency: 1 }]
}

const running = (store: RunStore.RunStore["Service"], runId: string) =>
  Effect.map(store.getRun(runId), (run) => run.machine.context.running)

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`machine writes on ${backend}`, (it) => {
    it.effect("concurrent identical transitions from one revision are each applied once", () =>
      Effect.gen(function*() {
        const { runId, store } = yield* setup
        const started: RunStatus.Event = { type: "BRANCH_STARTED" }
        yield* Effect.all(Array.from({ length: 4 }, () => store.transition(runId, started, 2)), { concurrency: "unbounded" })
        assert.strictEqual(yield* running(store, runId), 5, "the root and four branches")
        // Each branch parks: the run runs on (its root does), it is not paused.
        yield* Effect.all(
          Array.from({ length: 4 }, (_, i) =>
            store.transition(runId, { type: "BRANCH_DORMANT", branch: `a${i}`, reason: { _tag: "Approval", node: `a${i}` } }, 3)),
          { concurrency: "unbounded" }
        )
        const run = yield* store.getRun(runId)
        assert.strictEqual(run.status, "running")
        assert.strictEqual(run.machine.context.running, 1)
        assert.strictEqual((yield* store.transition(runId, { type: "ALL_BRANCHES_FINISHED" }, 4)).to, "paused")
      }).pipe(Effect.provide(TestDatabase.layer)))

    it.effect("a run whose two approvals park at once pauses, and completes once both are approved", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(approvals)
        assert.strictEqual(yield* runs.wait(runId), "paused")
        assert.isTrue(yield* runs.approve(runId, "a", 1))
        assert.isTrue(yield* runs.approve(runId, "b", 2))
        assert.strictEqual(yield* runs.wait(runId), "completed")
      }).pipe(
        Effect.provide(Runs.layer().pipe(Layer.provideMerge(Layer.merge(SqlRunStore.layer, Handler.layerBuiltins)), Layer.provideMerge(TestDatabase.layer)))
      ))

    it.effect("a transition whose connection dropped after it committed is applied once", () =>
      Effect.gen(function*() {
        const { losing, runId, store } = yield* setup
        losing.loseAfter((sql) => sql.includes("jsonb_to_recordset") && sql.includes("machine = req.machine"))
        yield* store.transition(runId, { type: "BRANCH_STARTED" }, 2)
        assert.strictEqual(losing.lost(), 1, "the first attempt committed and was reported lost")
        assert.strictEqual(yield* running(store, runId), 2, "counted once")
      }).pipe(Effect.provide(TestDatabase.layer)))

    it.effect("markFailed whose connection dropped after it committed fails the run once", () =>
      Effect.gen(function*() {
        const { losing, runId, sqlStore, store } = yield* setup
        const lease = yield* store.acquire(runId, "owner-a", { ttlMs: 60_000, at: 2 })
        losing.loseAfter((sql) => sql.includes("finalization = 'failed'"))
        yield* sqlStore.markFailed(lease, "its workflow does not decode", 3)
        assert.strictEqual(losing.lost(), 1, "the first attempt committed and was reported lost")
        const run = yield* store.getRun(runId)
        assert.strictEqual(run.status, "failed")
        assert.deepStrictEqual(run.diagnostics.messages, ["its workflow does not decode"], "the reason once")
      }).pipe(Effect.provide(TestDatabase.layer)))
  })
}
