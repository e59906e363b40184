/**
 * The database Ripple persists to: a PostgreSQL server when a URL is given (`DATABASE_URL`), or
 * else embedded PGlite in a data directory (default `.ripple/`), behind one `SqlClient`.
 *
 * **Details**
 *
 * `Database.layer` provides the `Database` service (which backend, LISTEN/NOTIFY, `json`) and
 * `SqlClient.SqlClient` (statements and transactions). The server is probed with `SELECT 1` while
 * the layer builds, so an unreachable server or an unopenable data directory fails the layer with a
 * `DatabaseError` naming the target (password redacted) and the fix, instead of failing the first
 * query later. A server that answers but takes no connection yet (53300 too many connections,
 * 57P03 starting up) is probed again under the store's retry policy (`RunStore.RetryPolicy`, a
 * bounded time) before that; a refused connection is not.
 *
 * **Example** (Running a transaction and listening)
 *
 * ```ts
 * import { Database } from "@ripple/sql"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   const db = yield* Database.Database
 *   const wakeups = yield* db.listen("ripple_wakeup") // LISTEN is active from here on
 *   yield* sql.withTransaction(Effect.gen(function*() {
 *     yield* sql`UPDATE runs SET status = 'running' WHERE id = ${1}`
 *     yield* db.notify("ripple_wakeup", "1") // delivered on commit
 *   }))
 * }).pipe(Effect.scoped, Effect.provide(Database.layerFromConfig()))
 * ```
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { RunStore } from "@ripple/runtime"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import type * as Statement from "effect/sql/Statement"
import * as Stream from "effect/Stream"
import * as DirectoryLock from "./DirectoryLock.ts"
import { invalidChannel, openDetail, openFix, storeUnavailable } from "./internal/errors.ts"
import * as PgliteClient from "./PgliteClient.ts"
import * as PgliteTemplate from "./PgliteTemplate.ts"

/**
 * Which kind of database is in use.
 *
 * @since 0.1.0
 */
export type Kind = "postgres" | "pglite"

/**
 * The database service: the backend in use and the LISTEN/NOTIFY both backends share.
 *
 * @since 0.1.0
 */
export class Database extends Context.Service<Database, {
  readonly kind: Kind
  /** Where the data lives, for logs: the URL with its password redacted, or `pglite:<data directory>`. */
  readonly describe: string
  /** A `jsonb` parameter: `sql\`INSERT INTO t (doc) VALUES (${db.json(value)})\``. */
  readonly json: (value: unknown) => Statement.Fragment
  /**
   * Starts listening on `channel` (a lower-case identifier): LISTEN is active once this succeeds,
   * and the stream yields payloads until the scope closes.
   *
   * **Gotchas**
   *
   * Close that scope before the database layer (a server listener holds a pooled connection the
   * pool waits for), and listen before entering `sql.withTransaction`: on PGlite the listener needs
   * the single session the transaction holds.
   */
  readonly listen: (channel: string) => Effect.Effect<Stream.Stream<string, SqlError>, SqlError, Scope.Scope>
  /** Sends `payload` on `channel`; inside `sql.withTransaction` it is delivered only on commit. */
  readonly notify: (channel: string, payload: string) => Effect.Effect<void, SqlError>
}>()("ripple/sql/Database") {}

/**
 * Why the database could not be reached or opened. `DataDirectoryInUse`: another live process (or
 * client) holds the embedded data directory; the error's detail names its pid. `NoDatabase`: the
 * data directory holds no database and `create` is `false`. `DatabaseNotFound`: the server answered
 * that it has no database of the URL's name.
 *
 * @since 0.1.0
 */
export type DatabaseErrorReason =
  | "InvalidUrl"
  | "Unreachable"
  | "AuthenticationFailed"
  | "DatabaseNotFound"
  | "CannotOpenDataDirectory"
  | "DataDirectoryInUse"
  | "NoDatabase"

/**
 * The database could not be reached or opened; `target` is the redacted URL or the data directory.
 *
 * @since 0.1.0
 */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly reason: DatabaseErrorReason
  readonly kind: Kind
  readonly target: string
  readonly fix: string
  readonly detail: string
  readonly cause: unknown
}> {
  /** Whether trying again later may succeed (a server that is down may come up; a bad setting will not change). */
  get isRetryable(): boolean {
    return this.reason === "Unreachable"
  }

  /** A one-paragraph explanation naming the target and the fix. */
  override get message(): string {
    return `${this.reason}: ${this.target}: ${this.detail}. Fix: ${this.fix}`
  }
}

/**
 * Options of `layer`: an explicit URL selects PostgreSQL, otherwise PGlite opens `dataDir`.
 *
 * @since 0.1.0
 */
export interface Options {
  readonly url?: string | Redacted.Redacted<string> | undefined
  /**
   * Where `url` came from, for the fix of a server error: its `name` ("correct --db") and what to
   * do `instead` to not use it. Default: the `url` option (`layerFromConfig`: `DATABASE_URL`).
   */
  readonly urlSource?: UrlSource | undefined
  /** PGlite data directory when no URL is given (default `.ripple`; `memory://` for tests). */
  readonly dataDir?: string | undefined
  /** How long connecting to the server may take before it counts as unreachable. Default 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** Server only: the largest backend message (one result row) the client accepts. Default `maxMessageSize`. */
  readonly maxMessageSize?: number | undefined
  /** Largest number of pooled server connections. Default 10. */
  readonly maxConnections?: number | undefined
  /**
   * Embedded only: create new databases by copying a per-user template (`PgliteTemplate`) instead
   * of running initdb; `true` keeps it in the default cache folder, a string names the folder.
   * Default: initdb in the data directory.
   */
  readonly template?: boolean | string | undefined
  /** Embedded only: `false` refuses a data directory that holds no database instead of creating one. Default `true`. */
  readonly create?: boolean | undefined
  /** Embedded only: told when a new database is created (and, before, when the template is built). */
  readonly onCreate?: ((event: Creation) => Effect.Effect<void>) | undefined
}

/**
 * What `onCreate` is told: a new database is created in `dataDir` (from the template when there is
 * one), or the template is built first in `directory` (once per machine, PGlite version and schema).
 *
 * @since 0.1.0
 */
export type Creation =
  | { readonly _tag: "CreatingDatabase"; readonly dataDir: string }
  | { readonly _tag: "BuildingTemplate"; readonly directory: string }

/**
 * `url` with its password replaced by `***`, or `undefined` when it is not a valid URL.
 *
 * @since 0.1.0
 */
export const redactUrl = (url: string): string | undefined => {
  if (!URL.canParse(url)) return undefined
  const parsed = new URL(url)
  if (parsed.password !== "") parsed.password = "***"
  return parsed.toString()
}

/**
 * The largest backend message (one result row) the PostgreSQL client accepts: 512 MiB, where the
 * wire client's default is 16 MiB.
 *
 * **Details**
 *
 * The store reads a snapshot a node per row, so a row holds at most one node's inputs and output
 * (each at most `Workflow.maxValueBytes`, 64 MiB of JSON text) or a run's input: far below this.
 * The limit only guards against a corrupt length; the client's buffer grows to the message it
 * actually reads.
 *
 * @since 0.1.0
 */
export const maxMessageSize = 512 * 1024 * 1024

/**
 * Where a server URL came from (`Options.urlSource`): its `name`, and what a user does `instead`
 * to not use it.
 *
 * @since 0.1.0
 */
export interface UrlSource {
  readonly name: string
  readonly instead: string
}

const urlOption: UrlSource = { name: "the url option", instead: "leave it out to use the embedded database" }
const databaseUrl: UrlSource = { name: "DATABASE_URL", instead: "unset DATABASE_URL to use the embedded database" }

const serverFix = (source: UrlSource): string =>
  `start the PostgreSQL server or correct ${source.name} (postgres://user:password@host:port/database); ${source.instead} instead`

// For a URL that cannot name a server to connect to: no server to start.
const urlFix = (source: UrlSource): string =>
  `correct ${source.name} (postgres://user:password@host:port/database); ${source.instead} instead`

// Every distinct message down the reason/cause chain: "PgConnection: Failed to connect: connect ECONNREFUSED ...".
const explain = (cause: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    const record = current as { readonly message?: unknown; readonly reason?: unknown; readonly cause?: unknown }
    if (typeof record.message === "string" && record.message !== "" && !messages.includes(record.message)) {
      messages.push(record.message)
    }
    current = record.reason ?? record.cause
  }
  if (messages.length > 0) return messages.join(": ")
  const errno = (cause as { readonly errno?: unknown } | undefined)?.errno
  return typeof errno === "number" ? `filesystem error (errno ${errno})` : String(cause)
}

// The SQLSTATE the server answered with, down the reason/cause chain.
const sqlStateOf = (cause: unknown): string | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    const record = current as { readonly code?: unknown; readonly reason?: unknown; readonly cause?: unknown }
    if (typeof record.code === "string" && /^[0-9A-Z]{5}$/.test(record.code)) return record.code
    current = record.reason ?? record.cause
  }
  return undefined
}

const pgliteKind = (client: PgliteClient.PgliteClient): Database["Service"] => ({
  kind: "pglite",
  describe: `pglite:${client.dataDir}`,
  json: client.json,
  listen: (channel) => Effect.map(client.listen(channel), Stream.fromQueue),
  notify: client.notify
})

const postgresKind = (client: PgClient.PgClient, describe: string): Database["Service"] => ({
  kind: "postgres",
  describe,
  json: client.json,
  listen: (channel) =>
    PgliteClient.isChannel(channel)
      ? Effect.map(client.listen(channel), (queue) => Stream.map(Stream.fromQueue(queue), (n) => n.payload))
      : Effect.fail(invalidChannel(channel, "listen")),
  // Through the SqlClient rather than PgClient.notify, which borrows a pool connection and so would
  // escape the caller's transaction.
  notify: (channel, payload) =>
    PgliteClient.isChannel(channel)
      ? Effect.asVoid(client`SELECT pg_notify(${channel}, ${payload})`)
      : Effect.fail(invalidChannel(channel, "notify"))
})

const services = (
  service: Database["Service"],
  client: SqlClient.SqlClient
): Context.Context<Database | SqlClient.SqlClient> =>
  Context.make(Database, service).pipe(Context.add(SqlClient.SqlClient, client))

const fromEffect = (
  build: Effect.Effect<Context.Context<Database | SqlClient.SqlClient>, DatabaseError, Scope.Scope | Reactivity.Reactivity>
): Layer.Layer<Database | SqlClient.SqlClient, DatabaseError> =>
  Layer.effectContext(build).pipe(Layer.provide(Reactivity.layer))

/**
 * The database over an already built `PgliteClient` (e.g. one made with name transforms); the client's
 * own layer decides its lifetime.
 *
 * @since 0.1.0
 */
export const layerFromPgliteClient: Layer.Layer<Database | SqlClient.SqlClient, never, PgliteClient.PgliteClient> =
  Layer.effectContext(Effect.gen(function*() {
    const client = yield* PgliteClient.PgliteClient
    return services(pgliteKind(client), client)
  }))

const layerPglite = (options: Options): Layer.Layer<Database | SqlClient.SqlClient, DatabaseError> => {
  const target = PgliteClient.resolveDataDir(options.dataDir)
  const told = (event: Creation) => options.onCreate === undefined ? Effect.void : options.onCreate(event)
  const template = options.template === undefined || options.template === false
    ? undefined
    : PgliteTemplate.ensure({
      cacheDir: typeof options.template === "string" ? options.template : undefined,
      onBuild: (directory) => told({ _tag: "BuildingTemplate", directory })
    }).pipe(
      // Without a template the database is created by initdb: slower, and otherwise the same.
      Effect.catch(() => Effect.succeed(undefined))
    )
  return fromEffect(
    PgliteClient.make({
      dataDir: target,
      template,
      create: options.create,
      onCreate: (dataDir) => told({ _tag: "CreatingDatabase", dataDir })
    }).pipe(
      Effect.mapError((error) => {
        const cause = error.reason.cause
        const inUse = cause instanceof DirectoryLock.DirectoryLockError && cause.reason._tag === "InUse"
        return new DatabaseError({
          reason: inUse ? "DataDirectoryInUse" : cause instanceof PgliteClient.NoDatabase ? "NoDatabase" : "CannotOpenDataDirectory",
          kind: "pglite",
          target,
          detail: openDetail(cause, target, explain(cause)),
          fix: openFix(cause, target),
          cause: error
        })
      }),
      Effect.map((client) => services(pgliteKind(client), client))
    )
  )
}

const layerPostgres = (
  url: Redacted.Redacted<string>,
  options: Options
): Layer.Layer<Database | SqlClient.SqlClient, DatabaseError> => {
  const describe = redactUrl(Redacted.value(url))
  const source = options.urlSource ?? urlOption
  // The wire client would say it twice, as a connection failure ("Unreachable").
  const scheme = describe === undefined ? undefined : new URL(describe).protocol
  // The wire client takes no user from anywhere else: without one it fails as a connection would.
  const noUser = describe !== undefined && new URL(describe).username === ""
  if (describe === undefined || (scheme !== "postgres:" && scheme !== "postgresql:") || noUser) {
    return fromEffect(Effect.fail(
      new DatabaseError({
        reason: "InvalidUrl",
        kind: "postgres",
        target: source.name,
        detail: describe === undefined
          ? "the value is not a URL"
          : scheme !== "postgres:" && scheme !== "postgresql:"
          ? `the URL's scheme is ${scheme}, not postgres: or postgresql:`
          : "the URL names no user",
        fix: urlFix(source),
        cause: undefined
      })
    ))
  }
  const connectTimeout = Duration.fromInputUnsafe(options.connectTimeout ?? "5 seconds")
  const failed = (cause: unknown): DatabaseError => {
    const tag = (cause as { readonly reason?: { readonly _tag?: string } } | undefined)?.reason?._tag
    // 3D000 invalid_catalog_name: the server is there; the database is not.
    const missing = sqlStateOf(cause) === "3D000"
    const parsed = new URL(describe)
    const createdb = [
      "createdb",
      ...(parsed.hostname === "" ? [] : ["-h", parsed.hostname]),
      ...(parsed.port === "" ? [] : ["-p", parsed.port]),
      ...(parsed.username === "" ? [] : ["-U", decodeURIComponent(parsed.username)]),
      decodeURIComponent(parsed.pathname.slice(1))
    ].join(" ")
    const refused = tag === "AuthenticationError"
    return new DatabaseError({
      reason: missing ? "DatabaseNotFound" : refused ? "AuthenticationFailed" : "Unreachable",
      kind: "postgres",
      target: describe,
      detail: explain(cause),
      fix: missing
        ? `create it (${createdb}) or correct ${source.name} to name a database the server has; ${source.instead} instead`
        : refused
        ? `correct the user or password in ${source.name} (postgres://user:password@host:port/database; percent-encode ` +
          `special characters), or create that role on the server; ${source.instead} instead`
        : serverFix(source),
      cause
    })
  }
  return fromEffect(Effect.gen(function*() {
    const client = yield* PgClient.make({
      url,
      connectTimeout,
      maxMessageSize: options.maxMessageSize ?? maxMessageSize,
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections })
    }).pipe(Effect.mapError(failed))
    // The pool connects lazily; asking now turns a wrong URL into an error at startup. A server
    // that answers but takes no connection now (53300 too many connections, 57P03 starting up:
    // retryable for the store) is asked again under the store's retry policy; one that is not
    // there (refused: a lost connection, not retried) fails at once, as does any other answer.
    const policy = yield* RunStore.RetryPolicy
    yield* RunStore.retry(
      client`SELECT 1`.pipe(
        Effect.timeoutOrElse({
          duration: Duration.sum(connectTimeout, Duration.seconds(1)),
          orElse: () => Effect.fail(new Error(`no answer within ${Duration.format(connectTimeout)}`))
        }),
        Effect.mapError((error) => isSqlError(error) ? storeUnavailable(error, "connect") : error)
      ),
      { policy, replayable: false }
    ).pipe(
      // Reported as the client's own error, as before any retry.
      Effect.mapError((error) => failed(RunStore.isStoreUnavailable(error) ? error.reason.cause : error))
    )
    return services(postgresKind(client, describe), client)
  }))
}

/**
 * The database for `options`: PostgreSQL when `url` is set, otherwise PGlite in `dataDir`.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Database | SqlClient.SqlClient, DatabaseError> => {
  const url = options.url
  if (url === undefined || (typeof url === "string" && url === "")) return layerPglite(options)
  return layerPostgres(typeof url === "string" ? Redacted.make(url) : url, options)
}

/**
 * `layer` with the URL read from `DATABASE_URL` (PGlite in `options.dataDir` when it is unset or empty).
 *
 * @since 0.1.0
 */
export const layerFromConfig = (
  options: Omit<Options, "url" | "urlSource"> = {}
): Layer.Layer<Database | SqlClient.SqlClient, DatabaseError | Config.ConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const url = yield* Config.option(Config.Redacted("DATABASE_URL"))
    return layer({
      ...options,
      urlSource: databaseUrl,
      url: Option.getOrUndefined(Option.filter(url, (value) => Redacted.value(value) !== ""))
    })
  }))
