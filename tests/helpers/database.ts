/**
 * The two databases every persistence test runs against, each test isolated in a schema of its own:
 *
 * - `pglite`: one embedded PGlite per test block (`shared`), opened in a temporary copy of a data
 *   directory that is initialised once per PGlite version and cached in the OS temp folder (initdb
 *   costs ~5 s, a copy and open ~0.5 s); each test gets a fresh schema made the session's
 *   `search_path` (tests of one file run one after another, and PGlite is one session).
 * - `postgres`: the server at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
 *   each test gets a fresh schema made the default through the URL's `options=-c search_path=...`,
 *   and its own `Database.layer` (pool) on that URL.
 *
 * Schemas are dropped when the test's scope closes. Tests that need a data directory of their own
 * (reopening, locking) use `pgliteDataDir`.
 *
 * **Example**
 *
 * ```ts
 * for (const backend of TestDatabase.backends) {
 *   layer(TestDatabase.shared(backend), { excludeTestServices: true })(backend, (it) => {
 *     it.effect("...", () => program.pipe(Effect.provide(TestDatabase.layer)))
 *   })
 * }
 * ```
 */
import { PGlite } from "@electric-sql/pglite"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Database, PgliteClient } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"

/** The kinds of database a persistence test runs against. */
export type Backend = Database.Kind

/** Both backends, in the order tests report them. */
export const backends: ReadonlyArray<Backend> = ["pglite", "postgres"]

/** The server the `postgres` backend uses. */
export const serverUrl = (): string =>
  process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ""
    ? process.env.DATABASE_URL
    : "postgres://postgres@127.0.0.1:5432/postgres"

/** What a test knows about its isolated database. */
export class TestDatabase extends Context.Service<TestDatabase, {
  readonly backend: Backend
  /** The test's schema, unique per test: also a safe prefix for table and channel names. */
  readonly schema: string
}>()("ripple/tests/TestDatabase") {}

/** What the tests of one block share: the backend, and for PGlite the open client. */
export class Shared extends Context.Service<Shared, {
  readonly backend: Backend
  readonly pglite: PgliteClient.PgliteClient | undefined
}>()("ripple/tests/TestDatabase/Shared") {}

let counter = 0
// A recognisable prefix lets anyone drop schemas a killed test run left behind.
const uniqueId = (): string => `ripple_test_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`

const pgliteVersion = (): string => {
  const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite")
  const manifest = JSON.parse(Fs.readFileSync(Path.join(Path.dirname(entry), "..", "package.json"), "utf8"))
  return String(manifest.version)
}

let template: Promise<string> | undefined

// initdb runs once per PGlite version on this machine; concurrent workers race to an atomic rename.
const pgliteTemplate = (): Promise<string> => {
  template ??= (async () => {
    const target = Path.join(Os.tmpdir(), `ripple-pglite-template-${pgliteVersion()}`)
    if (Fs.existsSync(Path.join(target, "PG_VERSION"))) return target
    const building = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-pglite-build-"))
    const db = await PGlite.create(building)
    await db.close()
    try {
      Fs.renameSync(building, target)
    } catch {
      Fs.rmSync(building, { recursive: true, force: true })
    }
    return target
  })()
  return template
}

/**
 * A fresh PGlite data directory holding an initialised, empty database; removed with the scope.
 */
export const pgliteDataDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    const source = await pgliteTemplate()
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-pglite-test-"))
    // A copy-on-write clone where the filesystem offers one, else a plain copy.
    Fs.cpSync(source, dir, { recursive: true, mode: Fs.constants.COPYFILE_FICLONE })
    return dir
  }),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const withSearchPath = (url: string, schema: string): string => {
  const parsed = new URL(url)
  parsed.searchParams.set("options", `-c search_path=${schema}`)
  return parsed.toString()
}

// A short-lived client of its own creates and drops the test schema, outside the code under test.
const admin = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>): Effect.Effect<A> =>
  Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(serverUrl()), maxConnections: 1 }), f)).pipe(
    Effect.provide(Reactivity.layer),
    Effect.orDie
  )

/**
 * A database of its own on the server, created empty and dropped (its sessions terminated) when the
 * scope closes; its URL. For tests that act on every session of their database
 * (`pg_terminate_backend`), which a schema in the shared database would extend to other tests.
 */
export const ownDatabase: Effect.Effect<string, never, Scope.Scope> = Effect.map(
  Effect.acquireRelease(
    Effect.sync(uniqueId).pipe(Effect.tap((name) => admin((sql) => sql`CREATE DATABASE ${sql(name)}`))),
    (name) => admin((sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`)
  ),
  (name) => {
    const url = new URL(serverUrl())
    url.pathname = `/${name}`
    return url.toString()
  }
)

/**
 * A role of its own on the server that may log in but takes no connection (`CONNECTION LIMIT 0`,
 * not a superuser, so the server refuses it with 53300 "too many connections"), dropped when the
 * scope closes: its name, a URL logging in as it, and `admit`, which lifts the limit.
 */
export const limitedRole: Effect.Effect<{ readonly name: string; readonly url: string; readonly admit: Effect.Effect<void> }, never, Scope.Scope> =
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(uniqueId).pipe(Effect.tap((name) => admin((sql) => sql`CREATE ROLE ${sql(name)} LOGIN NOSUPERUSER CONNECTION LIMIT 0`))),
      (name) => admin((sql) => sql`DROP ROLE IF EXISTS ${sql(name)}`)
    ),
    (name) => {
      const url = new URL(serverUrl())
      url.username = name
      url.password = ""
      return { name, url: url.toString(), admit: Effect.asVoid(admin((sql) => sql`ALTER ROLE ${sql(name)} CONNECTION LIMIT -1`)) }
    }
  )

/**
 * The resources the tests of one block share: for `pglite` one PGlite opened in a fresh data
 * directory (closed and removed when the block ends); nothing for `postgres`.
 */
export const shared = (backend: Backend): Layer.Layer<Shared> =>
  backend === "postgres"
    ? Layer.succeed(Shared, { backend, pglite: undefined })
    : Layer.effect(
      Shared,
      Effect.gen(function*() {
        const dataDir = yield* pgliteDataDir
        const pglite = yield* PgliteClient.make({ dataDir })
        return { backend, pglite }
      }).pipe(Effect.provide(Reactivity.layer), Effect.orDie)
    )

const pgliteSchema = (client: PgliteClient.PgliteClient, schema: string): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.orDie(Effect.andThen(client`CREATE SCHEMA ${client(schema)}`, client`SET search_path TO ${client(schema)}`)),
    () => Effect.orDie(Effect.andThen(client`RESET search_path`, client`DROP SCHEMA ${client(schema)} CASCADE`))
  )

const postgresSchema = (schema: string): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    admin((sql) => sql`CREATE SCHEMA ${sql(schema)}`),
    () => admin((sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`)
  )

/**
 * A fresh schema for one test on the block's backend, with the `Database` and `SqlClient` using it
 * and the `TestDatabase` service; `options` are the server's client settings (PGlite has none).
 */
export const layerWith = (options: Pick<Database.Options, "maxMessageSize">): Layer.Layer<
  TestDatabase | Database.Database | SqlClient.SqlClient,
  Database.DatabaseError,
  Shared
> =>
  Layer.unwrap(Effect.gen(function*() {
    const { backend, pglite } = yield* Shared
    const schema = uniqueId()
    const test = Layer.succeed(TestDatabase, { backend, schema })
    if (pglite !== undefined) {
      yield* pgliteSchema(pglite, schema)
      return Layer.merge(Database.layerFromPgliteClient, test).pipe(
        Layer.provide(Layer.succeed(PgliteClient.PgliteClient, pglite))
      )
    }
    yield* postgresSchema(schema)
    return Layer.merge(Database.layer({ ...options, url: withSearchPath(serverUrl(), schema) }), test)
  }))

/**
 * A fresh schema for one test on the block's backend, with the `Database` and `SqlClient` using it
 * and the `TestDatabase` service.
 */
export const layer: Layer.Layer<
  TestDatabase | Database.Database | SqlClient.SqlClient,
  Database.DatabaseError,
  Shared
> = layerWith({})
