/**
 * An effect/sql `SqlClient` over embedded PGlite (PostgreSQL compiled to WebAssembly, in process).
 *
 * **Details**
 *
 * - Statements compile with `@effect/sql-pg`'s PostgreSQL compiler, so `sql\`...\``, `sql.insert`,
 *   `sql.in`, `sql.update` and `json` produce the same SQL and parameters as on `PgClient`; parameters
 *   are typed the way PgClient types them and results decode the same way for the common types
 *   (`int8` → `bigint`, `timestamptz`/`timestamp` → `Date`, `date` → ISO string, `numeric` → string,
 *   `json`/`jsonb` → parsed).
 * - PGlite is one backend session, so every statement takes a one-permit semaphore, and a
 *   transaction (or a stream, or `reserve`) holds the permit until it ends: statements of concurrent
 *   fibers never interleave inside somebody else's transaction. Nested `withTransaction` uses
 *   savepoints.
 * - `executeStream` reads the whole result and emits it as one chunk (PGlite has no portal streaming).
 * - LISTEN/NOTIFY uses PGlite's own `listen`, which sees notifications of this process only.
 * - A new database is created under the directory's lock behind a `ripple.creating` marker, from
 *   `template` (a copy, well under a second) or else by initdb (5-20 s); a creation that was
 *   interrupted (a crash, a full disk) leaves the marker, and the next open starts it over.
 * - A PANIC inside PGlite (e.g. WAL that cannot grow on a full disk) aborts its WebAssembly
 *   instance, which would then spin forever on the next statement; the client stops there instead:
 *   every later statement fails at once with the PANIC's message, and closing leaves the instance
 *   alone. The data directory keeps everything committed and opens again (WAL recovery).
 *
 * This adapter is written here because no maintained effect/sql driver exists for PGlite with Effect 4.
 *
 * @since 0.1.0
 */
import type { PGlite, Results } from "@electric-sql/pglite"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as SqlClient from "effect/sql/SqlClient"
import type { Connection } from "effect/sql/SqlConnection"
import type { SqlError } from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as DirectoryLock from "./DirectoryLock.ts"
import { adapterError, ForeignFolder, invalidChannel, NoDatabase, openError, sqlError } from "./internal/errors.ts"
import { makeDirectory } from "./internal/makeDirectory.ts"
import { bind } from "./internal/parameters.ts"

/**
 * The data directory used when none is given: `.ripple/` under the current working directory.
 *
 * @since 0.1.0
 */
export const defaultDataDir = ".ripple"

/**
 * The data directory that keeps the database in memory only (for tests).
 *
 * @since 0.1.0
 */
export const memory = "memory://"

/**
 * Options of the embedded client.
 *
 * @since 0.1.0
 */
export interface PgliteClientConfig {
  /** Folder holding the database (created on first open); `memory://` keeps it in memory. Default `.ripple`. */
  readonly dataDir?: string | undefined
  /**
   * Where a new database comes from when the data directory holds none yet: an effect giving an
   * initialised, cleanly closed data directory to copy (see `PgliteTemplate`), evaluated only then;
   * `undefined` runs initdb.
   */
  readonly template?: Effect.Effect<string | undefined> | undefined
  /**
   * `false` refuses a data directory that holds no database (a `NoDatabase` cause) instead of
   * creating one, and creates nothing, not even the folder. Default `true`.
   */
  readonly create?: boolean | undefined
  /** Told (under the directory's lock) just before a new database is created in `dataDir`. */
  readonly onCreate?: ((dataDir: string) => Effect.Effect<void>) | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined
  readonly transformResultNames?: ((str: string) => string) | undefined
  readonly transformQueryNames?: ((str: string) => string) | undefined
  readonly transformJson?: boolean | undefined
}

/**
 * A `SqlClient` over PGlite, with the `json` and LISTEN/NOTIFY helpers `PgClient` has.
 *
 * @since 0.1.0
 */
export interface PgliteClient extends SqlClient.SqlClient {
  /** The resolved data directory (an absolute path, or `memory://`). */
  readonly dataDir: string
  /** A `jsonb` parameter, as `PgClient.json`. */
  readonly json: (value: unknown) => Statement.Fragment
  /**
   * Registers a channel listener; once this succeeds LISTEN is active and payloads arrive on the
   * queue until the scope closes. Channel names are lower-case SQL identifiers.
   */
  readonly listen: (channel: string) => Effect.Effect<Queue.Dequeue<string>, SqlError, Scope.Scope>
  /** `pg_notify(channel, payload)`; inside a transaction it is delivered on commit. */
  readonly notify: (channel: string, payload: string) => Effect.Effect<void, SqlError>
}

/**
 * The service tag of the embedded client.
 *
 * @since 0.1.0
 */
export const PgliteClient = Context.Service<PgliteClient>("ripple/sql/PgliteClient")

/**
 * The absolute data directory for an option value (`memory://` stays as is).
 *
 * @since 0.1.0
 */
export const resolveDataDir = (dataDir: string | undefined): string =>
  dataDir === memory ? memory : Path.resolve(dataDir ?? defaultDataDir)

const channelPattern = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * Whether `channel` can be used with `listen`/`notify` on both backends unchanged: a lower-case
 * identifier of at most 63 characters (PGlite sends LISTEN unquoted, Postgres folds case).
 *
 * @since 0.1.0
 */
export const isChannel = (channel: string): boolean => channelPattern.test(channel)

// Decode like @effect/sql-pg's binary codecs so rows look the same on both backends.
const parsers = {
  20: (text: string) => BigInt(text),
  1082: (text: string) => text,
  1114: (text: string) => timestamp(`${text.replace(" ", "T")}Z`, text),
  1184: (text: string) => timestamp(text, text)
}

const timestamp = (iso: string, text: string): Date =>
  text === "infinity" || text === "-infinity" ? new Date(Number.NaN) : new Date(iso)

type Rows = <A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>

// What PGlite's WebAssembly instance said before it aborted (see the module notes).
interface AbortWatch {
  aborted: boolean
  panic: string | undefined
}

const watchAborts = (watch: AbortWatch) => ({
  // Extensions may amend the Emscripten module's options: the one way to hear of `abort()`.
  extensions: {
    rippleAbortWatch: {
      name: "ripple-abort-watch",
      setup: (_pg: unknown, emscriptenOpts: Record<string, unknown>) =>
        Promise.resolve({ emscriptenOpts: { ...emscriptenOpts, onAbort: () => void (watch.aborted = true) } })
    }
  },
  onStderr: (text: string) => {
    if (/\bPANIC:/.test(text)) watch.panic = text.replace(/^.*?PANIC:\s*/, "")
    return false
  }
})

const stopped = (watch: AbortWatch, operation: string): SqlError => {
  const panic = watch.panic ?? "the WebAssembly instance aborted"
  const code = /No space left on device/.test(panic) ? "53100" : "XX000"
  return sqlError({
    code,
    message: `the embedded database stopped after a PANIC (${panic}); everything committed before is kept: ` +
      `open the data directory again${code === "53100" ? " once its disk has free space" : ""}`
  }, operation)
}

const makeConnection = (db: PGlite, watch: AbortWatch): Connection => {
  const query = (sql: string, params: ReadonlyArray<unknown>, rowMode: "array" | "object", operation: string) =>
    watch.aborted ? Effect.fail(stopped(watch, operation)) : Effect.tryPromise({
      try: () => {
        const bound = bind(params)
        return db.query<any>(sql, bound.values, { rowMode, paramTypes: bound.types })
      },
      catch: (cause) => sqlError(cause, operation)
    })
  const rows = (sql: string, params: ReadonlyArray<unknown>, transformRows: Rows | undefined, operation: string) =>
    Effect.map(query(sql, params, "object", operation), (result: Results<any>) =>
      transformRows === undefined ? result.rows : transformRows(result.rows))
  const values = (sql: string, params: ReadonlyArray<unknown>, operation: string) =>
    Effect.map(
      query(sql, params, "array", operation),
      (result: Results<any>) => result.rows as ReadonlyArray<ReadonlyArray<unknown>>
    )
  return {
    execute: (sql, params, transformRows) => rows(sql, params, transformRows, "execute"),
    executeRaw: (sql, params) => query(sql, params, "object", "executeRaw"),
    executeStream: (sql, params, transformRows) =>
      Stream.unwrap(Effect.map(rows(sql, params, transformRows, "executeStream"), Stream.fromArray)),
    executeValues: (sql, params) => values(sql, params, "executeValues"),
    executeValuesUnprepared: (sql, params) => values(sql, params, "executeValuesUnprepared"),
    executeUnprepared: (sql, params, transformRows) => rows(sql, params, transformRows, "executeUnprepared")
  }
}

// Postgres answers COMMIT of an aborted transaction with the command tag ROLLBACK, not an error.
const commit = (conn: Connection): Effect.Effect<void, SqlError> =>
  Effect.flatMap(conn.executeRaw("COMMIT", []), (result) =>
    (result as Results).command === "ROLLBACK"
      ? Effect.fail(adapterError("PGlite: COMMIT rolled back an aborted transaction", "commit"))
      : Effect.void)

// PGlite reports filesystem problems late and vaguely, so the directory is checked first.
const prepare = (dataDir: string): void => {
  const stat = Fs.statSync(dataDir, { throwIfNoEntry: false })
  if (stat !== undefined && !stat.isDirectory()) throw new Error("it exists and is not a directory")
  makeDirectory(dataDir)
  Fs.accessSync(dataDir, Fs.constants.R_OK | Fs.constants.W_OK)
}

/**
 * Why a client told not to create a database (`create: false`) did not open a data directory.
 *
 * @since 0.1.0
 */
export { NoDatabase }

/**
 * Whether `dataDir` holds a database (not one whose creation was interrupted).
 *
 * @since 0.1.0
 */
export const hasDatabase = (dataDir: string): boolean =>
  Fs.existsSync(Path.join(dataDir, "PG_VERSION")) && !Fs.existsSync(Path.join(dataDir, creatingMarker))

/**
 * The marker a data directory holds while a new database is being created in it.
 *
 * @since 0.1.0
 */
export const creatingMarker = "ripple.creating"

// Whether a new database must be created. PGlite would initdb into any folder: it must be empty, or a
// PostgreSQL data directory, or a creation that never finished (its marker says nothing of anyone's
// runs is in it, so it starts over). Checked under the lock, since another process may be creating
// the database in the same empty folder.
const needsCreating = (dataDir: string): boolean => {
  const entries = Fs.readdirSync(dataDir).filter((name) => !DirectoryLock.isLockEntry(name))
  if (entries.includes(creatingMarker)) {
    for (const name of entries) Fs.rmSync(Path.join(dataDir, name), { recursive: true, force: true })
    return true
  }
  if (Fs.existsSync(Path.join(dataDir, "PG_VERSION"))) return false
  if (entries.length > 0) throw new ForeignFolder({ dataDir })
  return true
}

const copyTemplate = (template: string, dataDir: string): void => {
  for (const name of Fs.readdirSync(template)) {
    if (DirectoryLock.isLockEntry(name) || name === creatingMarker) continue
    // A copy-on-write clone where the filesystem offers one, else a plain copy.
    Fs.cpSync(Path.join(template, name), Path.join(dataDir, name), { recursive: true, mode: Fs.constants.COPYFILE_FICLONE })
  }
}

/**
 * The lock file that keeps a data directory to one open client at a time.
 *
 * @since 0.1.0
 */
export const lockFile = DirectoryLock.lockFile

// PGlite (its WebAssembly glue) is imported when a database is opened, not when the command starts.
//
// Shared buffers stay at PostgreSQL's 128 MB although zeroing them is about a third of an open's CPU:
// with 16 MB, a disk that fills during a run surfaced as a PANIC ("XLogBeginInsert was already
// called") after a dirty page's write failed, not as the full disk (tests/cli/diskfull.test.ts).
const createPglite = (dataDir: string, watch: AbortWatch): Promise<PGlite> =>
  import("@electric-sql/pglite").then(({ PGlite }) => PGlite.create(dataDir, { parsers, ...watchAborts(watch) }))

const open = (dataDir: string, config: PgliteClientConfig, watch: AbortWatch): Effect.Effect<PGlite, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const attempt = <A>(f: () => A) => Effect.try({ try: f, catch: (cause) => openError(cause, dataDir) })
    const create = Effect.tryPromise({
      try: () => createPglite(dataDir, watch),
      catch: (cause) => openError(cause, dataDir)
    })
    if (dataDir === memory) return yield* create
    if (config.create === false && !hasDatabase(dataDir)) return yield* Effect.fail(openError(new NoDatabase({ dataDir }), dataDir))
    yield* attempt(() => prepare(dataDir))
    // PGlite lets any number of instances open one directory and then corrupts it.
    yield* Effect.mapError(DirectoryLock.make(dataDir), (cause) => openError(cause, dataDir))
    if (!(yield* attempt(() => needsCreating(dataDir)))) return yield* create
    if (config.create === false) return yield* Effect.fail(openError(new NoDatabase({ dataDir }), dataDir))
    if (config.onCreate !== undefined) yield* config.onCreate(dataDir)
    const template = config.template === undefined ? undefined : yield* config.template
    const marker = Path.join(dataDir, creatingMarker)
    yield* attempt(() => {
      Fs.writeFileSync(marker, "")
      if (template !== undefined) copyTemplate(template, dataDir)
    })
    const db = yield* create
    yield* attempt(() => Fs.rmSync(marker))
    return db
  })

/**
 * Opens PGlite in the data directory and builds the client; PGlite is closed when the scope closes.
 *
 * **Gotchas**
 *
 * One client at a time may open a data directory (process-wide and across processes): the
 * directory holds a `ripple.lock` naming the owner (see `DirectoryLock`), and a second open fails
 * with a `SqlError` whose reason's cause is a `DirectoryLockError` naming the owner's pid. Calling `listen` inside a transaction of the same client waits for that
 * transaction to end (it needs the session), so listen before starting the transaction.
 *
 * @since 0.1.0
 */
export const make = (
  config: PgliteClientConfig = {}
): Effect.Effect<PgliteClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const dataDir = resolveDataDir(config.dataDir)
    const semaphore = yield* Semaphore.make(1)
    const watch: AbortWatch = { aborted: false, panic: undefined }
    const db = yield* Effect.acquireRelease(
      open(dataDir, config, watch),
      // Waiting for the permit lets an in-flight statement finish; a failed close must not fail the
      // release; an aborted instance is left alone (closing runs its broken code).
      (db) =>
        semaphore.withPermit(
          watch.aborted
            ? Effect.void
            : Effect.ignore(Effect.tryPromise(() => db.close()), { log: true, message: `Closing PGlite in ${dataDir}` })
        )
    )
    const connection = makeConnection(db, watch)
    const lease = Effect.uninterruptibleMask((restore) =>
      Effect.as(restore(semaphore.takeScoped(1)), connection)
    )
    const compiler = PgClient.makeCompiler(config.transformQueryNames, config.transformJson)
    const transformRows = config.transformResultNames
      ? Statement.defaultTransforms(config.transformResultNames, config.transformJson).array
      : undefined

    const client = yield* SqlClient.make({
      acquirer: lease,
      borrower: (f) => semaphore.withPermit(f(connection)),
      transactionAcquirer: lease,
      compiler,
      driver: "pglite",
      commit,
      releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`,
      spanAttributes: [
        ...(config.spanAttributes ? Object.entries(config.spanAttributes) : []),
        ["db.system.name", "postgresql"],
        ["db.namespace", dataDir]
      ],
      transformRows
    })

    const listen = (channel: string): Effect.Effect<Queue.Dequeue<string>, SqlError, Scope.Scope> => {
      if (!isChannel(channel)) return Effect.fail(invalidChannel(channel, "listen"))
      return Effect.gen(function*() {
        const queue = yield* Effect.acquireRelease(Queue.unbounded<string>(), Queue.shutdown)
        const onPayload = (payload: string) => {
          Queue.offerUnsafe(queue, payload)
        }
        yield* Effect.acquireRelease(
          semaphore.withPermit(Effect.tryPromise({
            try: () => db.listen(channel, onPayload),
            catch: (cause) => sqlError(cause, "listen")
          })),
          () =>
            db.closed
              ? Effect.void
              : semaphore.withPermit(
                Effect.ignore(Effect.tryPromise(() => db.unlisten(channel, onPayload)), {
                  log: true,
                  message: `UNLISTEN ${channel}`
                })
              )
        )
        return queue
      })
    }

    const notify = (channel: string, payload: string): Effect.Effect<void, SqlError> =>
      isChannel(channel)
        ? Effect.asVoid(client`SELECT pg_notify(${channel}, ${payload})`)
        : Effect.fail(invalidChannel(channel, "notify"))

    return Object.assign(client, {
      dataDir,
      json: (value: unknown) => Statement.fragment([PgJson(value)]),
      listen,
      notify
    })
  })

// The PostgreSQL compiler of @effect/sql-pg binds this custom segment as a jsonb parameter.
const PgJson = (value: unknown): Statement.Custom<"PgJson", unknown> =>
  Statement.custom<Statement.Custom<"PgJson", unknown>>("PgJson")(value, undefined, undefined)

/**
 * Provides `PgliteClient` and `SqlClient` from an acquisition effect.
 *
 * @since 0.1.0
 */
export const layerFrom = <E, R>(
  acquire: Effect.Effect<PgliteClient, E, R>
): Layer.Layer<PgliteClient | SqlClient.SqlClient, E, Exclude<R, Scope.Scope | Reactivity.Reactivity>> =>
  Layer.effectContext(
    Effect.map(acquire, (client) => Context.make(PgliteClient, client).pipe(Context.add(SqlClient.SqlClient, client)))
  ).pipe(Layer.provide(Reactivity.layer)) as Layer.Layer<
    PgliteClient | SqlClient.SqlClient,
    E,
    Exclude<R, Scope.Scope | Reactivity.Reactivity>
  >

/**
 * A layer opening PGlite in `config.dataDir` (default `.ripple/`) and closing it on release.
 *
 * @since 0.1.0
 */
export const layer = (config: PgliteClientConfig = {}): Layer.Layer<PgliteClient | SqlClient.SqlClient, SqlError> =>
  layerFrom(make(config))
