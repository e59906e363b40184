/**
 * The two databases every persistence test runs against, each test on its own isolated copy:
 *
 * - `pglite`: embedded PGlite in a fresh temporary data directory, copied from a template that is
 *   initialised once per PGlite version and cached in the OS temp folder (initdb costs ~5 s, a copy
 *   and open ~0.4 s); removed when the test's scope closes.
 * - `postgres`: the server at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
 *   in a schema of its own made the default through the URL's `options=-c search_path=...`;
 *   dropped when the test's scope closes.
 *
 * **Example**
 *
 * ```ts
 * for (const backend of TestDatabase.backends) {
 *   describe(backend, () => {
 *     it.effect("...", () => program.pipe(Effect.provide(TestDatabase.layer(backend))))
 *   })
 * }
 * ```
 */
import { PGlite } from "@electric-sql/pglite"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Database } from "@ripple/sql"
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
  /** Unique per test: a safe prefix for schema, table and channel names. */
  readonly id: string
  /** The options the `Database` layer was built from (reuse them to reopen the same database). */
  readonly options: Database.Options
}>()("ripple/tests/TestDatabase") {}

let counter = 0
const uniqueId = (): string => `t${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`

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

const postgresSchema: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.gen(function*() {
    const schema = uniqueId()
    yield* admin((sql) => sql`CREATE SCHEMA ${sql(schema)}`)
    return schema
  }),
  (schema) => admin((sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`)
)

/** The options of a fresh isolated database of `backend`, released with the scope. */
export const isolated = (backend: Backend): Effect.Effect<Database.Options, never, Scope.Scope> =>
  backend === "pglite"
    ? Effect.map(pgliteDataDir, (dataDir) => ({ dataDir }))
    : Effect.map(postgresSchema, (schema) => ({ url: withSearchPath(serverUrl(), schema) }))

/**
 * `Database.layer` over a fresh isolated database of `backend`, plus the `TestDatabase` service.
 */
export const layer = (
  backend: Backend
): Layer.Layer<TestDatabase | Database.Database | SqlClient.SqlClient, Database.DatabaseError> =>
  Layer.unwrap(Effect.map(isolated(backend), (options) =>
    Layer.merge(
      Database.layer(options),
      Layer.succeed(TestDatabase, { backend, id: uniqueId(), options })
    )))
