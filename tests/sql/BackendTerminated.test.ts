/**
 * Real connection loss on the real server (PGlite has no backends to kill): another session
 * terminates every other backend of the test's database (`pg_terminate_backend`, what a DBA
 * restart, a failover or a network blip does to the sessions), the pool's and the worker's LISTEN
 * connection alike. Faults are not failures: a run executing meanwhile (by a worker, or by `Runs`
 * in this process) completes, never `failed`, with the outputs of an undisturbed run and every
 * block executed once (the journal writes it loses are sent again, not its blocks); a worker whose
 * LISTEN connection was terminated listens again and wakes a signalled run, and so does a
 * `RunStore.watch`; a snapshot read terminated mid-transaction (a worker claiming a woken run,
 * `Runs.signal`) is retried, never a failed run or a lost signal, and so are a store's
 * migrations as it opens; an idle worker survives it and executes what is submitted next.
 */
import { assert, layer } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import type { Snapshot, Workflow } from "@ripple/core"
import { Handler, type RunEvent, Runs, RunStore } from "@ripple/runtime"
import { Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as TestDatabase from "../helpers/database.ts"
import { waitFor } from "../helpers/workerProcess.ts"
import { mix } from "./fixtures/chain.ts"

type Services = SqlClient.SqlClient | Database.Database | SqlRunStore.SqlRunStore | RunStore.RunStore | Handler.Handlers | Scope.Scope

/** Handler executions per `run/node`, and every run event the worker published. */
interface Probe {
  readonly calls: Map<string, number>
  readonly events: Array<RunEvent.RunEvent>
}

const handlers = (probe: Probe) =>
  Handler.layer({
    step: (ctx) =>
      Effect.gen(function*() {
        const key = `${ctx.runId}/${ctx.node}`
        probe.calls.set(key, (probe.calls.get(key) ?? 0) + 1)
        // Long enough for a run to span several terminations, short enough for a fast test.
        yield* Effect.sleep(5)
        let v = Number(ctx.inputs["i"])
        for (const name of Object.keys(ctx.inputs).sort()) {
          const input = ctx.inputs[name] as { readonly v?: number } | null
          if (typeof input === "object" && input !== null && typeof input.v === "number") v = mix(v, input.v)
        }
        return { v }
      })
  })

const width = 4
const depth = 6

// `root`, then `width` branches of `depth` blocks each (`l<level>w<branch>`), joined by `join`.
const fanOut = (id: string): Workflow.Workflow => {
  const blocks: Array<Workflow.Block> = [{ id: "root", type: "step", params: { i: 1 } }]
  const edges: Array<Workflow.Edge> = []
  for (let w = 0; w < width; w++) {
    for (let l = 0; l < depth; l++) {
      const parent = l === 0 ? "root" : `l${l - 1}w${w}`
      blocks.push({ id: `l${l}w${w}`, type: "step", params: { i: l * width + w, prev: { $ref: `blocks.${parent}.output` } } })
      edges.push({ source: parent, target: `l${l}w${w}` })
    }
  }
  const joined: Record<string, Workflow.Json> = { i: 0 }
  for (let w = 0; w < width; w++) {
    joined[`w${w}`] = { $ref: `blocks.l${depth - 1}w${w}.output` }
    edges.push({ source: `l${depth - 1}w${w}`, target: "join" })
  }
  blocks.push({ id: "join", type: "step", params: joined })
  return { id, blocks, edges }
}
const nodes = 2 + width * depth

/** A session of its own on a test's database, from which its other backends are terminated. */
interface Terminator {
  /** Terminates every other backend of the database; the pids it terminated. */
  readonly terminate: Effect.Effect<ReadonlyArray<number>>
  /**
   * Terminates them while a write is in flight: holds `gate` (see `gated`), starts `writer`, waits
   * until a write (the writer's or any other) waits for the gate, terminates every other backend
   * (that write's among them), then lets writes through; the pids, and what `writer` returned.
   */
  readonly terminateMidWrite: <A, E, R>(writer: Effect.Effect<A, E, R>) => Effect.Effect<readonly [ReadonlyArray<number>, A], E, R>
  /** Whether a backend of the database waits for a lock of type `lock` (`pg_stat_activity.wait_event`). */
  readonly waitingFor: (lock: string) => Effect.Effect<boolean>
}

// The advisory lock every gated write takes (shared) before it writes.
const gate = 72_817

/** Makes every write of `tables` take `gate` first, so a test can hold writes in flight. */
const gated = (tables: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION ripple_gate() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock_shared(${gate});
        RETURN NULL;
      END $$`)
    for (const table of tables) {
      yield* sql.unsafe(`CREATE TRIGGER ripple_gate BEFORE INSERT OR UPDATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ripple_gate()`)
    }
  })

/** A `Terminator` on `url`'s database (one connection, which holds `gate` when asked). */
const terminator = (url: string): Effect.Effect<Terminator, never, Scope.Scope> =>
  Effect.map(
    PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer), Effect.orDie),
    (killer) => {
      const terminate = Effect.orDie(Effect.map(
        // Chosen first, then terminated: in one WHERE the planner may call pg_terminate_backend on
        // every backend of the server, this session's included, before it filters by database. And
        // never outside a test's own database.
        killer<{ readonly pid: number; readonly terminated: boolean }>`WITH victims AS MATERIALIZED (
            SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND current_database() LIKE ${"ripple\\_test\\_%"}
          )
          SELECT pid, pg_terminate_backend(pid) AS terminated FROM victims`,
        (rows) => rows.flatMap((row) => row.terminated ? [Number(row.pid)] : [])
      ))
      const waitingFor = (lock: string) =>
        Effect.orDie(Effect.map(
          killer<{ readonly n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = ${lock}`,
          (rows) => rows[0]!.n > 0
        ))
      const terminateMidWrite = <A, E, R>(writer: Effect.Effect<A, E, R>) =>
        Effect.gen(function*() {
          const [terminated, written] = yield* Effect.scoped(Effect.gen(function*() {
            yield* Effect.acquireRelease(
              Effect.orDie(killer`SELECT pg_advisory_lock(${gate})`),
              () => Effect.orDie(killer`SELECT pg_advisory_unlock(${gate})`)
            )
            const written = yield* Effect.forkChild(writer)
            yield* waitFor(waitingFor("advisory"), "a write to wait at the gate", 30_000)
            return [yield* terminate, written] as const
          }))
          return [terminated, yield* Fiber.join(written)] as const
        })
      return { terminate, terminateMidWrite, waitingFor }
    }
  )

/** The pids of the backends of `url`'s database listening on `channel` (the workers' by default). */
const listeners = (url: string, channel: string = Worker.channel): Effect.Effect<ReadonlyArray<number>> =>
  Effect.scoped(Effect.flatMap(
    PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer), Effect.orDie),
    (sql) =>
      Effect.orDie(Effect.map(
        sql<{ readonly pid: number }>`SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND state = 'idle' AND query = ${`LISTEN "${channel}"`}`,
        (rows) => rows.map((row) => Number(row.pid))
      ))
  ))

/** Waits until a backend other than the `terminated` ones listens on `channel` (the workers' by default). */
const listeningAgain = (url: string, terminated: ReadonlyArray<number>, channel: string = Worker.channel) =>
  waitFor(
    Effect.map(listeners(url, channel), (pids) => pids.some((pid) => !terminated.includes(pid))),
    `a listener on ${channel} to listen again`,
    30_000
  )

/**
 * Holds `table` in a session of its own (an open transaction, its lock in `mode`) until that
 * session is terminated with the others: statements that need the table wait for it.
 */
const holding = (url: string, table: string, mode: string) =>
  Effect.gen(function*() {
    const holder = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
    yield* Effect.orDie(holder`BEGIN`)
    yield* Effect.orDie(holder.unsafe(`LOCK TABLE ${table} IN ${mode} MODE`))
  })

// What a worker may log while its connections are terminated: a lost listener, set up again, and
// a notification lost (which only delays its receiver until the next poll).
const expected = [
  "failed; polling until it listens again",
  "notifying the owner of a run failed"
]

const finished = (runId: string) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    const run = yield* store.getRun(runId)
    return run.status === "completed" || run.status === "failed"
  })

const recordsOf = (snapshot: Snapshot.Snapshot) =>
  Object.fromEntries(Object.entries(snapshot.nodes).map(([node, record]) => [node, { status: record.status, output: record.output }]))

// `b0`, then a wait for signal `go`, then `b1` reading the signal's payload.
const awaiting: Workflow.Workflow = {
  id: "terminated-signal",
  blocks: [
    { id: "b0", type: "step", params: { i: 0 } },
    { id: "gate", type: "wait", params: { signal: "go" } },
    { id: "b1", type: "step", params: { i: 1, prev: { $ref: "blocks.gate.output" } } }
  ],
  edges: [{ source: "b0", target: "gate" }, { source: "gate", target: "b1" }]
}

// A run of `awaiting` submitted to the workers, once it is suspended on the signal.
const suspended = Effect.gen(function*() {
  const { store } = yield* SqlRunStore.SqlRunStore
  const runId = yield* Worker.submit(awaiting)
  yield* waitFor(Effect.map(store.getRun(runId), (run) => run.status === "suspended"), "the run to suspend", 30_000)
  return runId
})

// The run of `awaiting` woken by signal `go` with `{ v: 7 }` completed, each block executed once.
const woken = (runId: string, probe: Probe) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    yield* waitFor(finished(runId), "the signalled run to finish", 30_000)
    const snapshot = yield* store.snapshot(runId)
    assert.strictEqual(snapshot.status, "completed")
    assert.deepStrictEqual(snapshot.nodes["gate"]?.output, { v: 7 })
    assert.deepStrictEqual(snapshot.nodes["b1"]?.output, { v: mix(1, 7) })
    for (const node of ["b0", "b1"]) assert.strictEqual(probe.calls.get(`${runId}/${node}`), 1, node)
  })

// `Runs` of another process (a layer of its own over `url`): it records a signal for a run the
// workers own and notifies them.
const otherRuns = (url: string) =>
  Effect.map(
    Layer.build(Layer.provideMerge(
      Runs.layer(),
      Layer.mergeAll(SqlRunStore.layer, Handler.layerBuiltins).pipe(Layer.provideMerge(Database.layer({ url })))
    )),
    (context) => Context.get(context, Runs.Runs)
  )

// Workers of these tests: a lease longer than any retry, a heartbeat well inside it.
const fast = { leaseMs: 10_000, heartbeatMs: 1_000, pollMs: 200, shutdownGraceMs: 200 }

layer(TestDatabase.shared("postgres"), { excludeTestServices: true })("backends terminated on postgres", (it) => {
  const test = (name: string, body: (url: string, probe: Probe, warnings: Array<string>) => Effect.Effect<void, unknown, Services>) =>
    it.effect(name, () => {
      const probe: Probe = { calls: new Map(), events: [] }
      const warnings: Array<string> = []
      const collect = Logger.make((options) => {
        if (options.logLevel === "Warn" || options.logLevel === "Error") warnings.push(String(options.message))
      })
      return Effect.gen(function*() {
        const url = yield* TestDatabase.ownDatabase
        const services = Layer.mergeAll(SqlRunStore.layer, handlers(probe)).pipe(Layer.provideMerge(Database.layer({ url })))
        yield* Effect.scoped(body(url, probe, warnings)).pipe(Effect.provide(services))
      }).pipe(
        Effect.scoped,
        Effect.provide(Logger.layer([collect], { mergeWithExisting: true }))
      )
    })

  // Every warning logged is one of `expected`.
  const onlyExpected = (warnings: ReadonlyArray<string>) =>
    assert.deepStrictEqual(warnings.filter((warning) => !expected.some((e) => warning.includes(e))), [])

  // Who executes the runs: a worker (claiming them), or `Runs` in this process; each starts a run
  // of a workflow and returns its id, and publishes the run events to `probe.events`.
  const executors = {
    "a worker": (probe: Probe) =>
      Effect.map(
        Worker.make({ ...fast, publish: (event) => probe.events.push(event) }),
        () => (workflow: Workflow.Workflow) => Worker.submit(workflow)
      ),
    "Runs in this process": (probe: Probe) =>
      Effect.gen(function*() {
        const runs = Context.get(yield* Layer.build(Runs.layer()), Runs.Runs)
        yield* Effect.forkScoped(Stream.runForEach(yield* runs.subscribe, (event) => Effect.sync(() => probe.events.push(event))))
        return (workflow: Workflow.Workflow) => Effect.map(runs.start(workflow), (started) => started.runId)
      })
  }

  for (const [executor, make] of Object.entries(executors)) {
    test(`a run executed by ${executor} whose backends are terminated five times mid-write completes as an undisturbed run, each block once`, (url, probe, warnings) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const start = yield* make(probe)
        const reference = yield* start(fanOut("terminated-fan-out"))
        yield* waitFor(finished(reference), "the undisturbed run to finish", 30_000)
        const undisturbed = yield* store.snapshot(reference)
        assert.strictEqual(undisturbed.status, "completed")

        const { terminateMidWrite } = yield* terminator(url)
        yield* gated(["ripple_runs", "ripple_journal"])
        const runId = yield* start(fanOut("terminated-fan-out"))
        // Terminated at set points of its progress, so every termination lands while it executes.
        const started = () => [...probe.calls.keys()].filter((key) => key.startsWith(`${runId}/`)).length
        let terminated = 0
        for (const at of [1, 5, 10, 15, 20]) {
          yield* waitFor(Effect.sync(() => started() >= at), `${at} blocks of the run to start`, 30_000)
          terminated += (yield* terminateMidWrite(Effect.void))[0].length
        }
        yield* waitFor(finished(runId), "the disturbed run to finish", 30_000)

        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "completed")
        assert.deepStrictEqual(recordsOf(snapshot), recordsOf(undisturbed))
        assert.strictEqual(Object.keys(snapshot.nodes).length, nodes)
        for (const node of Object.keys(snapshot.nodes)) assert.strictEqual(probe.calls.get(`${runId}/${node}`), 1, node)
        const statuses = probe.events.flatMap((event) => event.runId === runId && event._tag === "StatusChanged" ? [event.to] : [])
        assert.include(statuses, "completed")
        assert.notInclude(statuses, "failed")
        // Every termination hit the write held at the gate at least.
        assert.isAtLeast(terminated, 5)
        onlyExpected(warnings)
      }))
  }

  test("a worker whose LISTEN connection was terminated listens again, and wakes a run signalled from another layer", (url, probe, warnings) =>
    Effect.gen(function*() {
      yield* Worker.make(fast)
      const runId = yield* suspended
      const before = yield* listeners(url)
      assert.strictEqual(before.length, 1, "the worker listens")
      const terminated = yield* (yield* terminator(url)).terminate
      assert.include(terminated, before[0]!)
      yield* listeningAgain(url, terminated)

      assert.isTrue(yield* (yield* otherRuns(url)).signal(runId, "go", { v: 7 }))
      yield* woken(runId, probe)
      onlyExpected(warnings)
    }))

  // The statement in flight when the backends are terminated: the delivery of the signal, or the
  // journal write of the woken run that consumes it.
  for (
    const [table, name] of [
      ["ripple_deliveries", "a signal whose delivery is terminated mid-write is kept: Runs.signal from another layer accepts it and the worker wakes the run"],
      ["ripple_journal", "the journal write that consumes a signal, terminated mid-write, is sent again: the woken run completes, each block once"]
    ] as const
  ) {
    test(name, (url, probe, warnings) =>
      Effect.gen(function*() {
        yield* Worker.make(fast)
        const runId = yield* suspended
        const runs = yield* otherRuns(url)
        yield* gated([table])
        const [terminated, accepted] = yield* (yield* terminator(url)).terminateMidWrite(runs.signal(runId, "go", { v: 7 }))
        assert.isNotEmpty(terminated)
        assert.isTrue(accepted)
        yield* woken(runId, probe)
        onlyExpected(warnings)
      }))
  }

  test("a RunStore.watch whose LISTEN connection was terminated listens again: the changes after it are notified, not polled", (url, _probe, warnings) =>
    Effect.gen(function*() {
      const { store } = yield* SqlRunStore.SqlRunStore
      const watch = store.watch
      assert.isDefined(watch)
      const runId = yield* Worker.submit(awaiting)
      const next = yield* watch!(runId)
      const before = yield* listeners(url, SqlRunStore.changesChannel)
      assert.strictEqual(before.length, 1, "the watch listens")
      const terminated = yield* (yield* terminator(url)).terminate
      assert.include(terminated, before[0]!)
      yield* listeningAgain(url, terminated, SqlRunStore.changesChannel)

      // Each change is seen through `next` alone (no fallback poll races it here): a lease holder
      // taken, then given up.
      const seen = (what: string) =>
        Effect.timeoutOrElse(next, { duration: 30_000, orElse: () => Effect.die(new Error(`${what} was not notified`)) })
      const lease = yield* store.acquire(runId, "follower-test", { ttlMs: 60_000, at: Date.now() })
      yield* seen("the lease taken")
      yield* store.release(lease)
      yield* seen("the lease given up")
      onlyExpected(warnings)
    }))

  // A snapshot is read in one repeatable-read transaction; the scopes (which `awaiting` has none
  // of) are read last, so holding their table stops a snapshot read mid-transaction.
  test("a worker whose snapshot read is terminated mid-transaction, claiming a signalled run, retries it: the run completes, never failed", (url, probe, warnings) =>
    Effect.gen(function*() {
      const { store } = yield* SqlRunStore.SqlRunStore
      yield* Worker.make(fast)
      const runId = yield* suspended
      yield* holding(url, "ripple_scopes", "ACCESS EXCLUSIVE")
      assert.isTrue(yield* store.deliver(runId, { kind: "signal", name: "go", payload: { v: 7 }, at: Date.now() }))
      yield* store.notify(runId)
      const killer = yield* terminator(url)
      yield* waitFor(killer.waitingFor("relation"), "the worker's snapshot read to wait for the scopes", 30_000)
      assert.isNotEmpty(yield* killer.terminate)
      yield* woken(runId, probe)
      onlyExpected(warnings)
    }))

  test("Runs.signal whose snapshot read is terminated mid-transaction retries it: the signal is kept and the worker wakes the run", (url, probe, warnings) =>
    Effect.gen(function*() {
      yield* Worker.make(fast)
      const runId = yield* suspended
      const runs = yield* otherRuns(url)
      yield* holding(url, "ripple_scopes", "ACCESS EXCLUSIVE")
      const signalled = yield* Effect.forkChild(runs.signal(runId, "go", { v: 7 }))
      const killer = yield* terminator(url)
      yield* waitFor(killer.waitingFor("relation"), "the signal's snapshot read to wait for the scopes", 30_000)
      assert.isNotEmpty(yield* killer.terminate)
      assert.isTrue(yield* Fiber.join(signalled))
      yield* woken(runId, probe)
      onlyExpected(warnings)
    }))

  test("a store whose migrations' connection is terminated while they wait for their lock retries them and opens: a signal sent through it is kept", (url, probe, warnings) =>
    Effect.gen(function*() {
      yield* Worker.make(fast)
      const runId = yield* suspended
      // Opening a store (what every `ripple` command does first) waits for the migrations table.
      yield* holding(url, "ripple_migrations", "ACCESS SHARE")
      const database = yield* Layer.build(Database.layer({ url }))
      // Fresh: the test's own store was built from the same layer, and would be shared otherwise.
      const opening = yield* Effect.forkChild(Layer.build(Layer.fresh(SqlRunStore.layer)).pipe(Effect.provide(database)))
      const killer = yield* terminator(url)
      yield* waitFor(killer.waitingFor("relation"), "the migrations to wait for their lock", 30_000)
      assert.isNotEmpty(yield* killer.terminate)
      const store = yield* Fiber.join(opening)
      const opened = yield* Layer.build(Layer.provideMerge(Runs.layer(), Handler.layerBuiltins)).pipe(
        Effect.provide(Context.merge(database, store))
      )
      assert.isTrue(yield* Context.get(opened, Runs.Runs).signal(runId, "go", { v: 7 }))
      yield* woken(runId, probe)
      onlyExpected(warnings)
    }))

  test("an idle worker whose backends are terminated three times goes on: the next submitted run completes", (url, probe, warnings) =>
    Effect.gen(function*() {
      const { store } = yield* SqlRunStore.SqlRunStore
      yield* Worker.make(fast)
      const { terminate } = yield* terminator(url)
      for (let round = 0; round < 3; round++) {
        const terminated = yield* terminate
        assert.isNotEmpty(terminated)
        yield* listeningAgain(url, terminated)
      }
      const runId = yield* Worker.submit(fanOut("terminated-idle"))
      yield* waitFor(finished(runId), "the run submitted after the terminations to finish", 30_000)
      const snapshot = yield* store.snapshot(runId)
      assert.strictEqual(snapshot.status, "completed")
      assert.strictEqual(Object.keys(snapshot.nodes).length, nodes)
      for (const node of Object.keys(snapshot.nodes)) assert.strictEqual(probe.calls.get(`${runId}/${node}`), 1, node)
      onlyExpected(warnings)
    }))
})
