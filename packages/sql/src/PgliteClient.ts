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
 *
 * This adapter is written here because no maintained effect/sql driver exists for PGlite with Effect 4.
 *
 * @since 0.1.0
 */
import { PGlite, type Results } from "@electric-sql/pglite"
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
import { adapterError, invalidChannel, openError, sqlError } from "./internal/errors.ts"
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

const makeConnection = (db: PGlite): Connection => {
  const query = (sql: string, params: ReadonlyArray<unknown>, rowMode: "array" | "object", operation: string) =>
    Effect.tryPromise({
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
  Fs.mkdirSync(dataDir, { recursive: true })
  Fs.accessSync(dataDir, Fs.constants.R_OK | Fs.constants.W_OK)
}

// PGlite would initdb into any folder: it must be empty or a PostgreSQL data directory. Checked under
// the lock, since another process may be initialising the same empty folder.
const checkContents = (dataDir: string): void => {
  const foreign = Fs.readdirSync(dataDir).filter((name) => !DirectoryLock.isLockEntry(name))
  if (!Fs.existsSync(Path.join(dataDir, "PG_VERSION")) && foreign.length > 0) {
    throw new Error("it is not empty and holds no PostgreSQL data directory")
  }
}

/**
 * The lock file that keeps a data directory to one open client at a time.
 *
 * @since 0.1.0
 */
export const lockFile = DirectoryLock.lockFile

const open = (dataDir: string): Effect.Effect<PGlite, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    if (dataDir !== memory) {
      yield* Effect.try({ try: () => prepare(dataDir), catch: (cause) => openError(cause, dataDir) })
      // PGlite lets any number of instances open one directory and then corrupts it.
      yield* Effect.mapError(DirectoryLock.make(dataDir), (cause) => openError(cause, dataDir))
      yield* Effect.try({ try: () => checkContents(dataDir), catch: (cause) => openError(cause, dataDir) })
    }
    return yield* Effect.tryPromise({
      try: () => PGlite.create(dataDir, { parsers }),
      catch: (cause) => openError(cause, dataDir)
    })
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
    const db = yield* Effect.acquireRelease(
      open(dataDir),
      // Waiting for the permit lets an in-flight statement finish; a failed close must not fail the release.
      (db) =>
        semaphore.withPermit(
          Effect.ignore(Effect.tryPromise(() => db.close()), { log: true, message: `Closing PGlite in ${dataDir}` })
        )
    )
    const connection = makeConnection(db)
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
