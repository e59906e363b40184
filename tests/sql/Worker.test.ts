import { assert, layer } from "@effect/vitest"
import { type Snapshot, Workflow } from "@ripple/core"
import { Handler, RunStore } from "@ripple/runtime"
import { Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import { ConnectionError, SqlError } from "effect/sql/SqlError"
import * as TestDatabase from "../helpers/database.ts"
import { chain, expectedOutputs, mix } from "./fixtures/chain.ts"

type Services =
  | SqlClient.SqlClient
  | Database.Database
  | SqlRunStore.SqlRunStore
  | RunStore.RunStore
  | Handler.Handlers
  | Scope.Scope

/** Executions per `run/node`, and what the first execution of a node waits for before it returns (`Effect.never`: it hangs). */
interface Probe {
  readonly executions: Map<string, number>
  readonly hang: Map<string, Effect.Effect<void>>
}

const probeHandlers = (probe: Probe) =>
  Handler.layer({
    step: (ctx) =>
      Effect.gen(function*() {
        const key = `${ctx.runId}/${ctx.node}`
        const count = (probe.executions.get(key) ?? 0) + 1
        probe.executions.set(key, count)
        if (count === 1) yield* probe.hang.get(ctx.node) ?? Effect.void
        yield* Effect.sleep(2)
        const prev = ctx.inputs["prev"] as { readonly v: number } | undefined
        return { v: mix(prev?.v ?? 0, Number(ctx.inputs["i"])) }
      })
  })

const DatabaseService = Database.Database

const fast = { leaseMs: 2_000, heartbeatMs: 100, pollMs: 100, shutdownGraceMs: 200 }

const waitFor = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, timeoutMs = 30_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(20)
    }
  })

const settled = (runIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    const runs = yield* Effect.forEach(runIds, (id) => store.getRun(id))
    return runs.every((run) => run.status === "completed" || run.status === "failed")
  })

const outputsOf = (snapshot: Snapshot.Snapshot) =>
  Object.fromEntries(Object.entries(snapshot.nodes).map(([node, record]) => [node, record.output]))

/**
 * `sqlStore`, recording in `seen` every write it makes for `runId` as it ends (`op`, or `op: <tag>`
 * when it failed): the fenced writes of an execution, lease renewals and releases, and the
 * worker's own transitions and marking failed.
 */
const recording = (sqlStore: SqlRunStore.SqlRunStore["Service"], runId: string, seen: Array<string>): SqlRunStore.SqlRunStore["Service"] => {
  const record = <A, E>(op: string, id: string, write: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    id !== runId ? write : Effect.onExit(write, (exit) =>
      Effect.sync(() => {
        seen.push(Exit.isSuccess(exit) ? op : `${op}: ${(Cause.squash(exit.cause) as { readonly _tag?: string })._tag}`)
      }))
  const port = (inner: RunStore.RunStore["Service"]): RunStore.RunStore["Service"] =>
    RunStore.RunStore.of({
      ...inner,
      fenced: (lease) => port(inner.fenced(lease)),
      journal: (id, entries) => record("journal", id, inner.journal(id, entries)),
      transition: (id, event, at) => record("transition", id, inner.transition(id, event, at)),
      finish: (id, event, diagnostics, at) => record("finish", id, inner.finish(id, event, diagnostics, at)),
      setDiagnostics: (id, diagnostics, at) => record("setDiagnostics", id, inner.setDiagnostics(id, diagnostics, at)),
      planCompensations: (id, nodes, at) => record("planCompensations", id, inner.planCompensations(id, nodes, at)),
      compensated: (id, node, outcome, at) => record("compensated", id, inner.compensated(id, node, outcome, at)),
      renew: (lease, terms) => record("renew", lease.runId, inner.renew(lease, terms)),
      release: (lease) => record("release", lease.runId, inner.release(lease))
    })
  return SqlRunStore.SqlRunStore.of({
    ...sqlStore,
    store: port(sqlStore.store),
    transitionAll: (lease, events, at) => record("transitionAll", lease.runId, sqlStore.transitionAll(lease, events, at)),
    markFailed: (lease, reason, at) => record("markFailed", lease.runId, sqlStore.markFailed(lease, reason, at))
  })
}

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(backend, (it) => {
    const test = (name: string, body: (probe: Probe) => Effect.Effect<void, unknown, Services>) =>
      it.effect(name, () => {
        const probe: Probe = { executions: new Map(), hang: new Map() }
        return Effect.scoped(body(probe)).pipe(
          Effect.provide(Layer.mergeAll(SqlRunStore.layer, probeHandlers(probe)).pipe(Layer.provideMerge(TestDatabase.layer)))
        )
      })

    test("executes every submitted run once, each node once", (probe) =>
      Effect.gen(function*() {
        const workflow = chain("worker-basic", 6)
        const runIds = yield* Effect.forEach([1, 2, 3, 4, 5], () => Worker.submit(workflow))
        yield* Worker.make({ ...fast, concurrency: 2 })
        yield* waitFor(settled(runIds), "the runs to finish")
        const { atBlocks, store } = yield* SqlRunStore.SqlRunStore
        for (const id of runIds) {
          const snapshot = yield* store.snapshot(id)
          assert.strictEqual(snapshot.status, "completed")
          assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(6))
          for (let i = 0; i < 6; i++) assert.strictEqual(probe.executions.get(`${id}/b${i}`), 1)
        }
        assert.deepStrictEqual(yield* atBlocks("worker-basic"), {})
        const sql = yield* SqlClient.SqlClient
        // Released after the run's last write, in a statement of its own: soon, not at once.
        const leased = Effect.map(
          sql<{ readonly n: number | bigint }>`SELECT count(*) AS n FROM ripple_runs WHERE lease_owner IS NOT NULL`,
          (rows) => Number(rows[0]!.n)
        )
        yield* waitFor(Effect.map(leased, (n) => n === 0), "every lease to be released", 10_000)
      }))

    test("a queued run to a block with pins: the worker runs only what the destination needs and writes the pins", (probe) =>
      Effect.gen(function*() {
        const workflow = chain("worker-to-pins", 6)
        const runId = yield* Worker.submit(workflow, {}, { to: "b3", pins: { b1: { v: 41 } } })
        yield* Worker.make(fast)
        yield* waitFor(settled([runId]), "the run to finish")
        const { store } = yield* SqlRunStore.SqlRunStore
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(Object.keys(snapshot.nodes).sort(), ["b0", "b1", "b2", "b3"])
        assert.deepStrictEqual(snapshot.nodes["b1"]?.output, { v: 41 })
        assert.isUndefined(probe.executions.get(`${runId}/b1`), "a pinned block is not executed")
        assert.strictEqual(probe.executions.get(`${runId}/b2`), 1)
        assert.deepStrictEqual(yield* store.reasons(runId), { b1: ["pinned"] })
      }))

    test("a run whose worker lost it is resumed from its journal; completed nodes are not re-executed", (probe) =>
      Effect.gen(function*() {
        probe.hang.set("b3", Effect.never)
        const sql = yield* SqlClient.SqlClient
        const { atBlocks, store } = yield* SqlRunStore.SqlRunStore
        const workflow = chain("worker-resume", 8)
        const runId = yield* Worker.submit(workflow)
        yield* Worker.make(fast)
        yield* waitFor(
          Effect.map(store.snapshot(runId), (s) => s.nodes["b3"]?.status === "running"),
          "b3 to start"
        )
        // The dashboard sees the run at b3.
        assert.deepStrictEqual(yield* atBlocks("worker-resume"), { b3: 1 })
        // A worker that died took the lease and let it expire: the live worker's execution is fenced
        // out, and the run is claimed again and resumed.
        yield* sql`UPDATE ripple_runs SET lease_owner = 'dead', lease_generation = lease_generation + 1,
          lease_expires_at = 0 WHERE id = ${runId}`
        yield* waitFor(settled([runId]), "the resumed run to finish")
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(8))
        for (let i = 0; i < 8; i++) {
          assert.strictEqual(probe.executions.get(`${runId}/b${i}`), i === 3 ? 2 : 1, `b${i}`)
        }
        // Resumed in place: its own rows are kept, not marked as reused from itself.
        assert.isUndefined(snapshot.nodes["b0"]?.reusedFrom)
      }))

    test("a worker whose write is refused for the lease another worker took abandons the run: it writes and releases nothing more for it, the other completes it once, and it goes on claiming", (probe) =>
      Effect.gen(function*() {
        const opened = yield* Deferred.make<void>()
        probe.hang.set("b1", Deferred.await(opened))
        const sql = yield* SqlClient.SqlClient
        const sqlStore = yield* SqlRunStore.SqlRunStore
        const { store } = sqlStore
        const runId = yield* Worker.submit(chain("worker-lease-lost", 4))
        const seen: Array<string> = []
        const warnings: Array<string> = []
        const collect = Logger.make((options) => {
          if (options.logLevel === "Warn" || options.logLevel === "Error") warnings.push(String(options.message))
        })
        // One run at a time, so it claims nothing else while b1 holds; its heartbeat too far off
        // to find the lease lost before its next write does.
        const first = yield* Worker.make({ ...fast, owner: "first", concurrency: 1, leaseMs: 600_000, heartbeatMs: 200_000 }).pipe(
          Effect.provideService(SqlRunStore.SqlRunStore, recording(sqlStore, runId, seen)),
          Effect.provide(Logger.layer([collect], { mergeWithExisting: true }))
        )
        yield* waitFor(Effect.map(store.snapshot(runId), (s) => s.nodes["b1"]?.status === "running"), "b1 to start")
        // The first worker stalled past its lease, as the second one's clock reads it: the second
        // claims the run, resumes it from its journal and completes it.
        yield* sql`UPDATE ripple_runs SET lease_expires_at = 0 WHERE id = ${runId}`
        yield* Effect.scoped(Effect.andThen(Worker.make({ ...fast, owner: "second" }), waitFor(settled([runId]), "the second worker to complete the run")))
        const completed = yield* store.snapshot(runId)
        assert.strictEqual(completed.status, "completed")
        assert.deepStrictEqual(outputsOf(completed), expectedOutputs(4))
        assert.isUndefined((yield* store.getRun(runId)).lease, "released by the second worker")

        // The first worker's b1 returns: its completion's write is refused, and it lets go of the run.
        const before = seen.length
        yield* Deferred.succeed(opened, undefined)
        yield* waitFor(Effect.map(first.active, (ids) => !ids.includes(runId)), "the first worker to let go of the run")
        assert.deepStrictEqual(seen.slice(before), ["journal: LeaseLost"], "nothing written, marked failed or released after the refusal")
        assert.deepStrictEqual(yield* store.snapshot(runId), completed, "the run as the second worker left it")
        assert.deepStrictEqual(
          warnings.filter((warning) => warning.includes(runId)),
          [`lost the lease of run ${runId} (owner first, generation 1): starting nothing more on it`]
        )
        for (let i = 0; i < 4; i++) assert.strictEqual(probe.executions.get(`${runId}/b${i}`), i === 1 ? 2 : 1, `b${i}`)

        // It goes on with other runs.
        const next = yield* Worker.submit(chain("worker-lease-lost-next", 2))
        yield* waitFor(settled([next]), "the first worker to complete the next run")
        assert.deepStrictEqual(outputsOf(yield* store.snapshot(next)), expectedOutputs(2))
      }))

    test("shutdown releases what it could not finish, untouched, for another worker", (probe) =>
      Effect.gen(function*() {
        probe.hang.set("b2", Effect.never)
        const sql = yield* SqlClient.SqlClient
        const { store } = yield* SqlRunStore.SqlRunStore
        const runId = yield* Worker.submit(chain("worker-shutdown", 5))
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Worker.make({ ...fast, shutdownGraceMs: 100 })
          yield* waitFor(Effect.map(store.snapshot(runId), (s) => s.nodes["b2"]?.status === "running"), "b2 to start")
        }))
        // Released, not cancelled: still running as journaled, and nobody holds it.
        const [row] = yield* sql<{ readonly lease_owner: string | null }>`SELECT lease_owner FROM ripple_runs WHERE id = ${runId}`
        assert.isNull(row!.lease_owner)
        const released = yield* store.snapshot(runId)
        assert.strictEqual(released.status, "running")
        assert.strictEqual(released.nodes["b2"]?.status, "running")
        yield* Worker.make(fast)
        yield* waitFor(settled([runId]), "another worker to finish the run")
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(5))
        assert.strictEqual(probe.executions.get(`${runId}/b1`), 1)
      }))

    test("a run paused on its worker and handed back with requeue finishes on a worker, each node once", (probe) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const runId = yield* Worker.submit(chain("worker-requeue", 4))
        // Asked for before any worker took it: the worker that does parks it at once.
        assert.isTrue(yield* store.requestPause(runId, 1))
        yield* Worker.make(fast)
        yield* waitFor(Effect.map(store.getRun(runId), (run) => run.status === "paused"), "the run to pause")
        assert.deepStrictEqual([...probe.executions.keys()].filter((k) => k.startsWith(runId)), [])
        assert.strictEqual(yield* Worker.requeue(runId), "running")
        yield* waitFor(settled([runId]), "the requeued run to finish")
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(4))
        for (let i = 0; i < 4; i++) assert.strictEqual(probe.executions.get(`${runId}/b${i}`), 1)
        // A finished run is not handed back: nothing is written.
        const refused = yield* Effect.flip(Worker.requeue(runId))
        assert.strictEqual(refused._tag, "IllegalTransition")
      }))

    test("a run requeue refuses (it ended) is left as it was: not queued for the workers", () =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const version = yield* store.saveWorkflow(chain("worker-requeue-refused", 2))
        // Run by a process of its own (not submitted): not queued.
        const run = yield* store.createRun({ version, mode: "full", input: {}, at: 1 })
        yield* store.transition(run.id, { type: "START" }, 2)
        yield* store.transition(run.id, { type: "ALL_BRANCHES_FINISHED" }, 3)
        const before = yield* store.getRun(run.id)
        const refused = yield* Effect.flip(Worker.requeue(run.id))
        assert.strictEqual(refused._tag, "IllegalTransition")
        const after = yield* store.getRun(run.id)
        assert.deepStrictEqual(
          { status: after.status, queued: after.queued === true, updatedAt: after.updatedAt },
          { status: "completed", queued: false, updatedAt: before.updatedAt }
        )
      }))

    test("a crashed run that had parked a node for a pause, handed back with requeue, finishes on a worker", (probe) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const runId = yield* Worker.submit(chain("worker-requeue-parked", 3))
        // As a worker left it that parked `b1` for a pause and stopped before the run settled.
        yield* store.transition(runId, { type: "START" }, 1)
        yield* store.transition(runId, { type: "BRANCH_STARTED" }, 1)
        yield* store.transition(runId, { type: "BRANCH_DORMANT", branch: "b1", reason: { _tag: "Pause", node: "b1", reason: "paused" } }, 1)
        assert.strictEqual(yield* Worker.requeue(runId), "running")
        yield* Worker.make(fast)
        yield* waitFor(settled([runId]), "the requeued run to finish")
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(3))
        for (let i = 0; i < 3; i++) assert.strictEqual(probe.executions.get(`${runId}/b${i}`), 1)
      }))

    test("a worker whose lease was taken cannot write", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const sqlStore = yield* SqlRunStore.SqlRunStore
        const version = yield* sqlStore.store.saveWorkflow(chain("worker-fence", 2))
        const run = yield* sqlStore.store.createRun({ version, mode: "full", input: {}, at: 1 })
        yield* sql`UPDATE ripple_runs SET lease_owner = 'a', lease_generation = 1 WHERE id = ${run.id}`
        const a = sqlStore.fenced({ runId: run.id, owner: "a", generation: 1, expiresAt: Number.MAX_SAFE_INTEGER })
        const fingerprints = { definition: "0000000000000001" }
        yield* a.transition(run.id, { type: "START" }, 2)
        yield* a.journal(run.id, [{ _tag: "Started", node: "b0", attempt: 1, inputs: {}, fingerprints, at: 2 }])
        // Taken over: owner b, next generation.
        yield* sql`UPDATE ripple_runs SET lease_owner = 'b', lease_generation = 2 WHERE id = ${run.id}`
        const before = yield* sqlStore.store.snapshot(run.id)
        const lost = (exit: Exit.Exit<unknown, unknown>) => {
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isFailure(exit)) {
            const defect = Cause.squash(exit.cause)
            assert.instanceOf(defect, SqlRunStore.LeaseLost)
          }
        }
        lost(yield* Effect.exit(a.journal(run.id, [{ _tag: "Skipped", node: "b1", fingerprints, at: 3 }])))
        lost(yield* Effect.exit(a.transition(run.id, { type: "ALL_BRANCHES_FINISHED" }, 3)))
        lost(yield* Effect.exit(a.setDiagnostics(run.id, { messages: ["stale"] }, 3)))
        lost(yield* Effect.exit(a.planCompensations(run.id, ["b0"], 3)))
        lost(yield* Effect.exit(a.compensated(run.id, "b0", { status: "completed" }, 3)))
        assert.deepStrictEqual(yield* sqlStore.store.compensations(run.id), [])
        const typed = yield* Effect.flip(sqlStore.markFailed({ runId: run.id, owner: "a", generation: 1, expiresAt: Number.MAX_SAFE_INTEGER }, "stale", 3))
        assert.strictEqual(typed._tag, "LeaseLost")
        assert.deepStrictEqual(yield* sqlStore.store.snapshot(run.id), before)
        // The same generation under another owner is not the lease either.
        const b = sqlStore.fenced({ runId: run.id, owner: "b", generation: 2, expiresAt: Number.MAX_SAFE_INTEGER })
        yield* b.journal(run.id, [{ _tag: "Skipped", node: "b1", fingerprints, at: 4 }])
        assert.strictEqual((yield* sqlStore.store.snapshot(run.id)).nodes["b1"]?.status, "skipped")
        yield* b.planCompensations(run.id, ["b0"], 5)
        yield* b.compensated(run.id, "b0", { status: "completed" }, 6)
        assert.deepStrictEqual(yield* sqlStore.store.compensations(run.id), [{ node: "b0", status: "completed", error: undefined, at: 6 }])
      }))

    test("a corrupt run is failed with the reason while other runs go on", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const sqlStore = yield* SqlRunStore.SqlRunStore
        const workflow = chain("worker-corrupt", 3)
        const corrupt = yield* Worker.submit(workflow)
        const healthy = yield* Worker.submit(workflow)
        // The corrupt run crashed mid-way (running, lease expired) and one of its rows is damaged.
        yield* sqlStore.store.transition(corrupt, { type: "START" }, 1)
        yield* sqlStore.store.journal(corrupt, [
          { _tag: "Started", node: "b0", attempt: 1, inputs: { i: 0 }, fingerprints: { definition: "0000000000000001" }, at: 1 }
        ])
        yield* sql`UPDATE ripple_journal SET fingerprints = '"damaged"' WHERE run_id = ${corrupt}`
        yield* sql`UPDATE ripple_runs SET lease_owner = 'dead', lease_generation = 1,
          lease_expires_at = 0 WHERE id = ${corrupt}`
        const typed = yield* Effect.flip(sqlStore.checkedSnapshot(corrupt))
        assert.strictEqual(typed._tag, "CorruptRun")
        yield* Worker.make(fast)
        yield* waitFor(settled([corrupt, healthy]), "both runs to finish")
        const failed = yield* sqlStore.store.getRun(corrupt)
        assert.strictEqual(failed.status, "failed")
        assert.include(failed.diagnostics.messages.join("\n"), "corrupt")
        const [row] = yield* sql<{ readonly error: string }>`SELECT error FROM ripple_runs WHERE id = ${corrupt}`
        assert.include(row!.error, "corrupt")
        assert.strictEqual((yield* sqlStore.store.getRun(healthy)).status, "completed")
      }))

    test("a sleeper is woken when due and a signalled run when its signal arrives", (probe) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const dormant = (id: string, block: Workflow.Block): Workflow.Workflow => ({
          id,
          blocks: [
            { id: "b0", type: "step", params: { i: 0 } },
            block,
            { id: "b1", type: "step", params: { i: 1, prev: { $ref: "blocks.b0.output" } } }
          ],
          edges: [{ source: "b0", target: block.id }, { source: block.id, target: "b1" }]
        })
        const sleeper = yield* Worker.submit(dormant("worker-sleep", { id: "nap", type: "sleep", params: { ms: 300 } }))
        const waiter = yield* Worker.submit(dormant("worker-signal", { id: "gate", type: "wait", params: { signal: "go" } }))
        yield* Worker.make(fast)
        yield* waitFor(
          Effect.map(Effect.forEach([sleeper, waiter], (id) => store.getRun(id)), (runs) => runs.every((r) => r.status === "suspended")),
          "both runs to suspend"
        )
        yield* waitFor(settled([sleeper]), "the sleeper to wake and finish")
        assert.strictEqual((yield* store.getRun(sleeper)).status, "completed")
        assert.strictEqual((yield* store.getRun(waiter)).status, "suspended")
        assert.isTrue(yield* Worker.signal(waiter, "go", { ok: true }))
        yield* waitFor(settled([waiter]), "the signalled run to finish")
        const snapshot = yield* store.snapshot(waiter)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(snapshot.nodes["gate"]?.output, { ok: true })
        assert.deepStrictEqual(yield* store.deliveries(waiter), [])
        // b0 ran once in each run: waking resumed, it did not start over.
        for (const id of [sleeper, waiter]) assert.strictEqual(probe.executions.get(`${id}/b0`), 1)
      }))

    test("a run paused at an approval keeps its due sleeper for after the approval, and leaves the worker free for other runs", (probe) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const workflow: Workflow.Workflow = {
          id: "worker-paused-sleeper",
          blocks: [
            { id: "b0", type: "step", params: { i: 0 } },
            { id: "review", type: "approval" },
            { id: "nap", type: "sleep", params: { ms: 50 } },
            { id: "b1", type: "step", params: { i: 1, prev: { $ref: "blocks.b0.output" } } }
          ],
          edges: [{ source: "b0", target: "review" }, { source: "b0", target: "nap" }, { source: "nap", target: "b1" }]
        }
        const paused = yield* Worker.submit(workflow)
        // One run at a time: a worker that claimed the paused run for its sleeper would claim it
        // (the oldest run) at every turn and never reach the next one.
        yield* Worker.make({ ...fast, concurrency: 1 })
        // Both branches dormant, and the run settled: it is `running` until the last branch parks.
        const settledPaused = Effect.map(store.getRun(paused), (run) =>
          run.status === "paused" && Object.values(run.machine.context.dormant).map((r) => r._tag).sort().join() === "Approval,Sleep")
        yield* waitFor(settledPaused, "the run to pause with its sleeper dormant")
        yield* Effect.sleep(100)
        const other = yield* Worker.submit(chain("worker-after-paused", 3))
        yield* waitFor(settled([other]), "the next run to finish", 10_000)
        assert.strictEqual((yield* store.getRun(paused)).status, "paused", "a due sleeper does not wake a paused run")
        assert.strictEqual(probe.executions.get(`${paused}/b1`), undefined)
        // What `Runs.approve` keeps; the worker's next poll claims the run for it.
        yield* store.deliver(paused, { kind: "approval", name: "review", payload: { approved: true, payload: { by: "editor" } }, at: Date.now() })
        yield* waitFor(settled([paused]), "the approved run to finish")
        const snapshot = yield* store.snapshot(paused)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(snapshot.nodes["review"]?.output, { by: "editor" })
        assert.strictEqual(probe.executions.get(`${paused}/b1`), 1)
      }))

    test("a dormant run asked to cancel by a process that went away is ended cancelled by a worker; nothing more starts", (probe) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const dormant = (id: string, block: Workflow.Block): Workflow.Workflow => ({
          id,
          blocks: [{ id: "b0", type: "step", params: { i: 0 } }, block, { id: "b1", type: "step", params: { i: 1 } }],
          edges: [{ source: "b0", target: block.id }, { source: block.id, target: "b1" }]
        })
        // Asleep for an hour, and paused at an approval: nothing would wake either for a long time.
        const sleeper = yield* Worker.submit(dormant("worker-cancel-sleep", { id: "nap", type: "sleep", params: { ms: 3_600_000 } }))
        const reviewed = yield* Worker.submit(dormant("worker-cancel-review", { id: "review", type: "approval" }))
        yield* Worker.make(fast)
        const runs = Effect.forEach([sleeper, reviewed], (id) => store.getRun(id))
        const statuses = Effect.map(runs, (rs) => rs.map((run) => run.status))
        yield* waitFor(Effect.map(statuses, (s) => s.join() === "suspended,paused"), "the runs to settle dormant")
        // What `Runs.cancel` records before it takes the lease; its process stops there.
        for (const id of [sleeper, reviewed]) assert.isTrue(yield* store.requestCancel(id, Date.now()))
        // The worker ends each run cancelled, then releases its lease: two writes, so both are waited for.
        const ended = Effect.map(runs, (rs) => rs.every((run) => run.status === "cancelled" && run.lease === undefined))
        yield* waitFor(ended, "a worker to end both runs and release their leases", 10_000)
        for (const id of [sleeper, reviewed]) {
          const run = yield* store.getRun(id)
          assert.strictEqual(run.diagnostics.finalization, "cancelled")
          assert.isUndefined(run.cancelRequestedAt)
          assert.strictEqual(probe.executions.get(`${id}/b0`), 1)
          assert.strictEqual(probe.executions.get(`${id}/b1`), undefined)
        }
      }))

    test("Worker.signal whose notification fails still reports the signal it kept, and a worker's poll delivers it", (probe) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const runId = yield* Worker.submit({
          id: "worker-signal-unnotified",
          blocks: [{ id: "gate", type: "wait", params: { signal: "go" } }, { id: "b1", type: "step", params: { i: 1 } }],
          edges: [{ source: "gate", target: "b1" }]
        })
        yield* Worker.make(fast)
        yield* waitFor(Effect.map(store.getRun(runId), (run) => run.status === "suspended"), "the run to wait for its signal")
        // Every notification fails (past the store's retries): only the delivery is written.
        const db = yield* DatabaseService
        const unnotified = DatabaseService.of({ ...db, notify: () =>
            Effect.fail(
              new SqlError({ reason: new ConnectionError({ cause: new Error("notify refused (injected)"), message: "notify refused (injected)", operation: "execute" }) })
            )
        })
        const kept = yield* Worker.signal(runId, "go", { ok: true }).pipe(
          Effect.provideService(DatabaseService, unnotified),
          Effect.provideService(RunStore.RetryPolicy, Schedule.recurs(1))
        )
        assert.isTrue(kept, "the signal was kept")
        yield* waitFor(settled([runId]), "a worker's poll to wake the run")
        assert.strictEqual((yield* store.getRun(runId)).status, "completed")
        assert.strictEqual(probe.executions.get(`${runId}/b1`), 1)
      }))

    test("make refuses an option out of range, naming it, and claims nothing", () =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const runId = yield* Worker.submit(chain("worker-options", 2))
        for (
          const [options, option] of [
            // NaN claimed nothing, ever: `free = NaN - executing` is never above 0.
            [{ concurrency: Number.NaN }, "concurrency"],
            [{ concurrency: 0 }, "concurrency"],
            [{ pollMs: 0 }, "pollMs"],
            [{ shutdownGraceMs: -1 }, "shutdownGraceMs"],
            [{ engine: { concurrency: 0 } }, "engine.concurrency"],
            [{ engine: { limits: { maxIterations: Number.NaN } } }, "engine.limits.maxIterations"],
            [{ leaseMs: 2_000, heartbeatMs: 2_000 }, "heartbeatMs"],
            [{ marginMs: -1 }, "marginMs"],
            [{ leaseMs: 2_000, heartbeatMs: 1_000, marginMs: 1_000 }, "marginMs"]
          ] as const
        ) {
          const refused = yield* Effect.flip(Worker.make(options))
          assert.strictEqual(refused._tag, "InvalidOption", option)
          assert.strictEqual(refused.option, option)
        }
        const run = yield* store.getRun(runId)
        assert.strictEqual(run.status, "pending")
        assert.isUndefined(run.lease)
      }))

    test("submit refuses an input no store can hold, one over the size limit or one the workflow does not declare; nothing is written", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const workflow: Workflow.Workflow = { ...chain("worker-input", 2), inputs: { doc: { type: "string", required: false } } }
        const count = Effect.map(sql<{ readonly n: number | string }>`SELECT count(*)::int AS n FROM ripple_runs`, (rows) => Number(rows[0]!.n))
        const before = yield* count
        for (const [input, tag] of [
          [{ doc: "a\u0000b" }, "UnstorableValue"],
          [{ doc: "x".repeat(Workflow.maxValueBytes) }, "ValueTooLarge"],
          [{ other: 1 }, "UnknownInput"]
        ] as const) {
          const refused = yield* Effect.flip(Worker.submit(workflow, input))
          assert.strictEqual(refused._tag, "InvalidInput")
          assert.strictEqual(refused._tag === "InvalidInput" ? refused.cause._tag : undefined, tag)
        }
        assert.strictEqual(yield* count, before, "nothing written")
        const runId = yield* Worker.submit(workflow, { doc: "fine" })
        assert.deepStrictEqual((yield* (yield* SqlRunStore.SqlRunStore).store.getRun(runId)).input, { doc: "fine" })
      }))

    test("editing a workflow while its runs are in flight changes nothing for them", () =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const original = chain("worker-edit", 5)
        const before = yield* Effect.forEach([1, 2, 3], () => Worker.submit(original))
        yield* Worker.make({ ...fast, concurrency: 1 })
        // Saved under the same workflow id while the first runs execute.
        const edited: Workflow.Workflow = chain("worker-edit", 5, 100)
        const after = yield* Worker.submit(edited)
        yield* waitFor(settled([...before, after]), "the runs to finish")
        for (const id of before) {
          const snapshot = yield* store.snapshot(id)
          assert.deepStrictEqual(snapshot.workflow, original)
          assert.deepStrictEqual(outputsOf(snapshot), expectedOutputs(5))
        }
        assert.deepStrictEqual(outputsOf(yield* store.snapshot(after)), expectedOutputs(5, 100))
        assert.notStrictEqual(RunStore.versionOf(original), RunStore.versionOf(edited))
      }))
  })
}
