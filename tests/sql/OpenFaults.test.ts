/**
 * Opening the store applies the migrations (every `ripple` command, every worker, every `Runs`
 * layer does, on a database that is usually up to date): a transient fault there (a lost
 * connection, a serialization failure) is retried like every statement of the store, so a command
 * is not refused (and its signal, approval or cancel lost) for a fault one retry absorbs; one that
 * persists still fails the opening. So is listing the runs (`ripple runs`, the studio), a
 * workflow's versions (`ripple versions`) and the runs at each block (`SqlRunStore.atBlocks`).
 * (tests/sql/BackendTerminated.test.ts terminates a store's connection for real while it opens.)
 */
import { assert, layer } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import { Migrations, RunList, SqlRunStore } from "@ripple/sql"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import * as LosingConnection from "../helpers/losingConnection.ts"
import { chain } from "./fixtures/chain.ts"

const policy = Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: 3 }))

// The store's layer over a client that loses its connection after the next `times` statements
// `matching`; its context (or failure), and how many statements were reported lost.
const open = (matching: (sql: string) => boolean, times: number) =>
  Effect.gen(function*() {
    const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
    losing.loseAfter(matching, times)
    const built = yield* Effect.exit(Layer.build(SqlRunStore.layer).pipe(
      Effect.provideService(SqlClient.SqlClient, losing.client),
      Effect.provideService(RunStore.RetryPolicy, policy)
    ))
    return { built, lost: losing.lost() }
  })

// The opened store works: a workflow saved and a run created in it read back.
const works = (context: Context.Context<SqlRunStore.SqlRunStore>) =>
  Effect.gen(function*() {
    const { store } = Context.get(context, SqlRunStore.SqlRunStore)
    const version = yield* store.saveWorkflow(chain("open-faults", 1))
    const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
    assert.strictEqual((yield* store.getRun(run.id)).status, "pending")
  })

const lockingMigrations = (sql: string) => sql.startsWith("LOCK TABLE")

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`opening the store on ${backend}`, (it) => {
    it.effect("a connection lost while an up-to-date database's migrations are checked is retried: the store opens", () =>
      Effect.gen(function*() {
        yield* Migrations.run
        const { built, lost } = yield* open(lockingMigrations, 1)
        assert.strictEqual(lost, 1, "the fault was injected")
        assert.isTrue(Exit.isSuccess(built), `the store did not open: ${Exit.isFailure(built) ? String(built.cause) : ""}`)
        if (Exit.isSuccess(built)) yield* works(built.value)
      }).pipe(Effect.scoped, Effect.provide(TestDatabase.layer)))

    it.effect("a connection lost while a new database's migrations are applied is retried: they are applied once and the store opens", () =>
      Effect.gen(function*() {
        const { built, lost } = yield* open((sql) => sql.startsWith("CREATE TABLE ripple_runs"), 1)
        assert.strictEqual(lost, 1, "the fault was injected")
        assert.isTrue(Exit.isSuccess(built), `the store did not open: ${Exit.isFailure(built) ? String(built.cause) : ""}`)
        if (Exit.isSuccess(built)) yield* works(built.value)
        const sql = yield* SqlClient.SqlClient
        const applied = yield* sql<{ readonly n: number | bigint | string }>`SELECT count(*) AS n FROM ripple_migrations`
        assert.strictEqual(Number(applied[0]!.n), Object.keys(Migrations.migrations).length)
      }).pipe(Effect.scoped, Effect.provide(TestDatabase.layer)))

    it.effect("a fault that outlasts the retries fails the opening with StoreUnavailable", () =>
      Effect.gen(function*() {
        yield* Migrations.run
        const { built, lost } = yield* open(lockingMigrations, 100)
        assert.strictEqual(lost, 4, "the first attempt and three retries")
        const error = Exit.isFailure(built) ? Cause.squash(built.cause) : undefined
        assert.isTrue(RunStore.isStoreUnavailable(error), `not StoreUnavailable: ${String(error)}`)
        if (RunStore.isStoreUnavailable(error)) assert.strictEqual(error.reason._tag, "ConnectionLost")
      }).pipe(Effect.scoped, Effect.provide(TestDatabase.layer)))

    it.effect("a connection lost listing the runs is retried: the list is the stored runs", () =>
      Effect.gen(function*() {
        yield* Migrations.run
        const { store } = yield* SqlRunStore.make
        const version = yield* store.saveWorkflow(chain("open-faults-list", 1))
        const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
        const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
        losing.loseAfter((sql) => sql.includes("FROM ripple_runs"), 1)
        const listed = yield* Effect.exit(RunList.list().pipe(
          Effect.provideService(SqlClient.SqlClient, losing.client),
          Effect.provideService(RunStore.RetryPolicy, policy)
        ))
        assert.strictEqual(losing.lost(), 1, "the fault was injected")
        assert.isTrue(Exit.isSuccess(listed), `the list failed: ${Exit.isFailure(listed) ? String(listed.cause) : ""}`)
        if (Exit.isSuccess(listed)) assert.deepStrictEqual(listed.value.map((summary) => summary.id), [run.id])
      }).pipe(Effect.scoped, Effect.provide(TestDatabase.layer)))

    it.effect("a connection lost listing a workflow's versions is retried: the list is its stored versions", () =>
      Effect.gen(function*() {
        yield* Migrations.run
        const { store } = yield* SqlRunStore.make
        const version = yield* store.saveWorkflow(chain("open-faults-versions", 1))
        yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
        const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
        losing.loseAfter((sql) => sql.includes("FROM ripple_workflow_versions"), 1)
        const listed = yield* Effect.exit(RunList.versions("open-faults-versions").pipe(
          Effect.provideService(SqlClient.SqlClient, losing.client),
          Effect.provideService(RunStore.RetryPolicy, policy)
        ))
        assert.strictEqual(losing.lost(), 1, "the fault was injected")
        assert.isTrue(Exit.isSuccess(listed), `the list failed: ${Exit.isFailure(listed) ? String(listed.cause) : ""}`)
        if (Exit.isSuccess(listed)) assert.deepStrictEqual(listed.value.map((summary) => [summary.version, summary.runs]), [[version, 1]])
      }).pipe(Effect.scoped, Effect.provide(TestDatabase.layer)))

    it.effect("a connection lost counting the runs at each block is retried: the counts are the stored ones", () =>
      Effect.gen(function*() {
        yield* Migrations.run
        const { store } = yield* SqlRunStore.make
        const version = yield* store.saveWorkflow(chain("open-faults-blocks", 1))
        const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
        yield* store.transition(run.id, { type: "START" }, 1)
        yield* store.journal(run.id, [{ _tag: "Started", node: "b0", attempt: 1, inputs: {}, fingerprints: { definition: "0000000000000001", inputs: "0000000000000002" }, at: 2 }])
        const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
        losing.loseAfter((sql) => sql.includes("JOIN ripple_journal"), 1)
        const { atBlocks } = yield* SqlRunStore.make.pipe(
          Effect.provideService(SqlClient.SqlClient, losing.client),
          Effect.provideService(RunStore.RetryPolicy, policy)
        )
        const counted = yield* Effect.exit(atBlocks("open-faults-blocks"))
        assert.strictEqual(losing.lost(), 1, "the fault was injected")
        assert.isTrue(Exit.isSuccess(counted), `the count failed: ${Exit.isFailure(counted) ? String(counted.cause) : ""}`)
        if (Exit.isSuccess(counted)) assert.deepStrictEqual(counted.value, { b0: 1 })
      }).pipe(Effect.scoped, Effect.provide(TestDatabase.layer)))
  })
}
