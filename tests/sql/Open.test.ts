import { assert, describe, it } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import { Database, PgliteClient } from "@ripple/sql"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as TestDatabase from "../helpers/database.ts"

const openError = (options: Database.Options) =>
  Effect.flip(Effect.scoped(Layer.build(Database.layer(options))))

describe("PGlite data directory", () => {
  it.live("reopening keeps the data", () =>
    Effect.gen(function*() {
      const dataDir = yield* TestDatabase.pgliteDataDir
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE kept (id int PRIMARY KEY, doc jsonb)`
        yield* sql`INSERT INTO kept VALUES (1, ${JSON.stringify({ a: [1, 2] })}::jsonb)`
      }).pipe(Effect.provide(Database.layer({ dataDir })))
      const rows = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return yield* sql`SELECT id, doc FROM kept`
      }).pipe(Effect.provide(Database.layer({ dataDir })))
      assert.deepStrictEqual(rows, [{ id: 1, doc: { a: [1, 2] } }])
    }))

  it.live("one client at a time holds a data directory; a stale lock is taken over", () =>
    Effect.gen(function*() {
      const dataDir = yield* TestDatabase.pgliteDataDir
      const lock = Path.join(dataDir, PgliteClient.lockFile)
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(Database.layer({ dataDir }), scope)
      assert.strictEqual(JSON.parse(Fs.readFileSync(lock, "utf8")).pid, process.pid)
      const busy = yield* openError({ dataDir })
      assert.strictEqual(busy.reason, "DataDirectoryInUse")
      assert.include(busy.message, `in use by pid ${process.pid}`)
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(Fs.existsSync(lock))

      // No process has pid 2^31 - 2, so this lock is stale.
      Fs.writeFileSync(lock, String(2 ** 31 - 2))
      const kind = yield* Database.Database.use((db) => Effect.succeed(db.kind)).pipe(
        Effect.provide(Database.layer({ dataDir }))
      )
      assert.strictEqual(kind, "pglite")
      assert.isFalse(Fs.existsSync(lock))
    }))

  it.live("PgliteClient.layer applies name transforms and closes PGlite when its scope closes", () =>
    Effect.gen(function*() {
      const dataDir = yield* TestDatabase.pgliteDataDir
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        PgliteClient.layer({
          dataDir,
          transformQueryNames: (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
          transformResultNames: (name) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
        }),
        scope
      )
      const client = Context.get(context, PgliteClient.PgliteClient)
      assert.strictEqual(client, Context.get(context, SqlClient.SqlClient))
      assert.strictEqual(client.dataDir, dataDir)
      yield* client`CREATE TABLE people (person_id int, full_name text)`
      yield* client`INSERT INTO people ${client.insert({ personId: 1, fullName: "Ada" })}`
      assert.deepStrictEqual(yield* client`SELECT * FROM people`, [{ personId: 1, fullName: "Ada" }])
      assert.deepStrictEqual(yield* client`SELECT 1 AS one`, [{ one: 1 }])
      yield* Scope.close(scope, Exit.void)
      const after = yield* Effect.flip(client`SELECT 1 AS one`)
      assert.match(after.message, /closed/i)
    }))

  it.live("an unopenable data directory is a typed error naming the path and the fix", () =>
    Effect.gen(function*() {
      const dataDir = yield* TestDatabase.pgliteDataDir
      const notADirectory = Path.join(dataDir, "PG_VERSION")
      const error = yield* openError({ dataDir: notADirectory })
      assert.strictEqual(error._tag, "DatabaseError")
      assert.strictEqual(error.reason, "CannotOpenDataDirectory")
      assert.strictEqual(error.target, notADirectory)
      assert.include(error.message, notADirectory)
      assert.include(error.message, "Fix:")

      const foreign = Path.join(dataDir, "foreign")
      Fs.mkdirSync(foreign)
      Fs.writeFileSync(Path.join(foreign, "notes.txt"), "not a database")
      const refused = yield* openError({ dataDir: foreign })
      assert.strictEqual(refused.reason, "CannotOpenDataDirectory")
      assert.include(refused.message, "not empty")
      assert.deepStrictEqual(Fs.readdirSync(foreign), ["notes.txt"])

      const corrupt = Path.join(dataDir, "corrupt")
      Fs.mkdirSync(corrupt)
      Fs.writeFileSync(Path.join(corrupt, "PG_VERSION"), "9\n")
      const unreadable = yield* openError({ dataDir: corrupt })
      assert.strictEqual(unreadable.reason, "CannotOpenDataDirectory")
      assert.strictEqual(unreadable.target, corrupt)
    }))

  // The fix said to check that the folder is writable and has disk space, and to copy it with cp -a.
  it.live("a file as the data directory, or below one, is named in the fix: a folder is needed", () =>
    Effect.gen(function*() {
      const dataDir = yield* TestDatabase.pgliteDataDir
      const file = Path.join(dataDir, "PG_VERSION")
      for (const target of [file, Path.join(file, "db")]) {
        const error = yield* openError({ dataDir: target })
        assert.strictEqual(error.reason, "CannotOpenDataDirectory")
        assert.include(error.fix, `${file} is a file, not a folder: point --data-dir at a folder`, target)
        assert.notInclude(error.fix, "writable", target)
      }
    }))

  // sysfs refuses a new folder (EPERM as root, EACCES otherwise, EROFS when mounted read-only) and
  // reports no free space: a folder there is not writable, which is not a full disk.
  it.live("a data directory where no folder may be made is named not writable, not a full disk", () =>
    Effect.gen(function*() {
      const dataDir = `/sys/ripple-${process.pid}`
      const error = yield* openError({ dataDir })
      assert.strictEqual(error.reason, "CannotOpenDataDirectory")
      assert.strictEqual(error.target, dataDir)
      assert.match(error.detail, /^it is not writable \((EPERM|EACCES|EROFS)\b/)
      assert.notInclude(error.message, "disk is full")
      assert.include(error.fix, `check that ${dataDir} is writable`)
      assert.isFalse(Fs.existsSync(dataDir))
    }))

  it("resolves the data directory against the working directory, default .ripple", () => {
    assert.strictEqual(PgliteClient.resolveDataDir(undefined), Path.resolve(".ripple"))
    assert.strictEqual(PgliteClient.resolveDataDir("data/db"), Path.resolve("data/db"))
    assert.strictEqual(PgliteClient.resolveDataDir(PgliteClient.memory), "memory://")
  })
})

describe("PostgreSQL server", () => {
  it.live("a server that takes no connection now (53300) is asked again under the store's retry policy: the database opens once it does", () =>
    Effect.gen(function*() {
      const role = yield* TestDatabase.limitedRole
      let retries = 0
      // The third retry lets the role in: the attempt after it connects.
      const policy = Schedule.spaced("10 millis").pipe(
        Schedule.upTo({ times: 20 }),
        Schedule.tap(() => ++retries === 3 ? role.admit : Effect.void)
      )
      const sql = yield* Layer.build(Database.layer({ url: role.url })).pipe(
        Effect.map((context) => Context.get(context, SqlClient.SqlClient)),
        Effect.provideService(RunStore.RetryPolicy, policy)
      )
      const rows = yield* sql<{ readonly who: string }>`SELECT current_user AS who`
      assert.deepStrictEqual(rows, [{ who: role.name }])
      assert.strictEqual(retries, 3)
    }).pipe(Effect.scoped))

  it.live("a server that keeps refusing fails the opening with Unreachable once the retries give up; one that is not there is not asked again", () =>
    Effect.gen(function*() {
      const role = yield* TestDatabase.limitedRole
      let retries = 0
      const counted = Effect.provideService(RunStore.RetryPolicy, Schedule.recurs(2).pipe(Schedule.tap(() => Effect.sync(() => retries++))))
      const busy = yield* openError({ url: role.url }).pipe(counted)
      assert.strictEqual(busy.reason, "Unreachable")
      assert.include(busy.message, "too many connections")
      assert.strictEqual(retries, 2)
      // Were a refused connection retried, it would wait an hour first: the test would time out.
      const absent = yield* openError({ url: "postgres://ripple@127.0.0.1:1/nowhere" }).pipe(
        Effect.provideService(RunStore.RetryPolicy, Schedule.spaced("1 hour"))
      )
      assert.strictEqual(absent.reason, "Unreachable")
    }).pipe(Effect.scoped), 20_000)

  it.live("an unreachable server is a typed error with the password redacted", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const error = yield* openError({ url: "postgres://ripple:s3cret@127.0.0.1:1/nowhere" })
      console.log(`unreachable DATABASE_URL reported after ${Date.now() - started} ms`)
      assert.strictEqual(error.reason, "Unreachable")
      assert.isTrue(error.isRetryable)
      assert.strictEqual(error.kind, "postgres")
      assert.strictEqual(error.target, "postgres://ripple:***@127.0.0.1:1/nowhere")
      assert.notInclude(error.message, "s3cret")
      assert.include(error.message, "Fix:")
    }))

  it.live("a malformed URL is a typed error that does not echo it", () =>
    Effect.gen(function*() {
      const error = yield* openError({ url: "not a url with s3cret" })
      assert.strictEqual(error.reason, "InvalidUrl")
      assert.isFalse(error.isRetryable)
      assert.notInclude(error.message, "s3cret")
    }))

  it("redacts only the password of a URL", () => {
    assert.strictEqual(Database.redactUrl("postgres://u:p@h:5/d?x=1"), "postgres://u:***@h:5/d?x=1")
    assert.strictEqual(Database.redactUrl("postgres://u@h/d"), "postgres://u@h/d")
    assert.isUndefined(Database.redactUrl("::"))
  })
})

describe("layerFromConfig", () => {
  const withEnv = (env: Record<string, string>) => Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))

  it.live("uses DATABASE_URL when it is set", () =>
    Effect.gen(function*() {
      const kind = yield* Database.Database.use((db) => Effect.succeed(db.kind)).pipe(
        Effect.provide(Database.layerFromConfig()),
        withEnv({ DATABASE_URL: TestDatabase.serverUrl() })
      )
      assert.strictEqual(kind, "postgres")
    }))

  it.live("falls back to PGlite in the data directory when DATABASE_URL is unset or empty", () =>
    Effect.gen(function*() {
      const dataDir = yield* TestDatabase.pgliteDataDir
      for (const env of [{}, { DATABASE_URL: "" }]) {
        const describe = yield* Database.Database.use((db) => Effect.succeed(db.describe)).pipe(
          Effect.provide(Database.layerFromConfig({ dataDir })),
          withEnv(env)
        )
        assert.strictEqual(describe, `pglite:${dataDir}`)
      }
    }))
})
