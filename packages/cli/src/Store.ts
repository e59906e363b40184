/**
 * The backend `ripple` runs on by default: `SqlRunStore` over `Database` (a PostgreSQL server from
 * `--db` or `DATABASE_URL`, else embedded PGlite in `--data-dir`, default `.ripple/`).
 *
 * **Details**
 *
 * Opening the store applies pending migrations; on an up-to-date database that writes nothing. A
 * new embedded database is a copy of a per-user template (`PgliteTemplate`, built on first use on
 * the machine), announced on stderr.
 *
 * @since 0.1.0
 */
import { Options } from "@ripple/runtime"
import { Database, Migrations, RunList, SqlRunStore, Worker } from "@ripple/sql"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlError from "effect/sql/SqlError"
import * as Path from "node:path"
import type * as Cli from "./Cli.ts"
import * as Problem from "./Problem.ts"

// Where the server URL came from, as the user would correct it.
const urlSource = (options: Cli.DatabaseOptions): string | undefined =>
  options.url !== undefined ? "--db" : (process.env["DATABASE_URL"] ?? "") !== "" ? "DATABASE_URL" : undefined

// The server's own reason: the driver's error is the cause of the SqlError's reason.
const serverReason = (error: SqlError.SqlError): string => {
  const cause = error.reason.cause as { readonly message?: unknown; readonly code?: unknown } | undefined
  const message = typeof cause?.message === "string" && cause.message !== "" ? cause.message : error.message
  return typeof cause?.code === "string" ? `${message} (SQLSTATE ${cause.code})` : message
}

const problemOf = (options: Cli.DatabaseOptions) => (error: unknown): Problem.Problem => {
  if (error instanceof Problem.Problem) return error
  if (error instanceof Database.DatabaseError) return Problem.fromDatabaseError(error)
  if (error instanceof Options.InvalidOption) return Problem.badInput(error.message, `set ${error.option} as it says`)
  const tag = (error as { readonly _tag?: unknown } | undefined)?._tag
  if (tag === "ConfigError") {
    return Problem.badInput(`DATABASE_URL cannot be read: ${String(error)}`, "set DATABASE_URL to a postgres:// URL, or unset it to use the embedded database")
  }
  const source = urlSource(options)
  // The server answered, but its user may not create the tables in the schema it uses.
  if (source !== undefined && SqlError.isSqlError(error)) {
    return Problem.badInput(
      `cannot create Ripple's tables in the database of ${source}: ${serverReason(error)}`,
      `let the user of ${source} create tables in the first schema of its search_path (as the schema's owner: ` +
        `GRANT CREATE ON SCHEMA <schema> TO <user>), or correct ${source} to a database and search_path it may create tables in`
    )
  }
  return new Problem.Problem({
    problem: `the database could not be prepared: ${error instanceof Error ? error.message : String(error)}`,
    fix: "check that the database user may create tables, or use a fresh --data-dir",
    code: Problem.ExitCode.failed
  })
}

const mapped = <A, E>(options: Cli.DatabaseOptions, layer: Layer.Layer<A, E>): Layer.Layer<A, Problem.Problem> =>
  Layer.effectContext(Effect.mapError(Layer.build(layer), problemOf(options)))

// A folder as the user would type it: relative to the working directory when inside it.
const shown = (directory: string): string => {
  const relative = Path.relative(process.cwd(), directory)
  return `${relative === "" || relative.startsWith("..") || Path.isAbsolute(relative) ? directory : relative}${Path.sep}`
}

// Progress goes to stderr, so that stdout holds only what the command answers.
const announce = (event: Database.Creation) =>
  Console.error(
    event._tag === "CreatingDatabase"
      ? `creating the database in ${shown(event.dataDir)} (first use)`
      : `preparing a template for new databases in ${event.directory} (once per machine and Ripple version; up to 20 s)`
  )

const flagSource: Database.UrlSource = { name: "--db", instead: "leave --db out to use DATABASE_URL or the embedded database" }

/**
 * The database for the command-line options: `--db`, else `DATABASE_URL`, else PGlite.
 *
 * @since 0.1.0
 */
export const database = (options: Cli.DatabaseOptions): Layer.Layer<Database.Database | SqlClient.SqlClient, Problem.Problem> => {
  const embedded = { dataDir: options.dataDir, template: true, onCreate: announce, create: options.mustExist !== true }
  return mapped(
    options,
    options.url === undefined
      ? Database.layerFromConfig(embedded)
      : Database.layer({ ...embedded, url: options.url, urlSource: flagSource })
  )
}

const storeAndDatabase = (options: Cli.DatabaseOptions) => mapped(options, Layer.provideMerge(SqlRunStore.layer, database(options)))

const list: Cli.Backend["list"] = (options, filter) =>
  Effect.andThen(Migrations.run, RunList.list(filter)).pipe(
    Effect.mapError(problemOf(options)),
    Effect.provide(database(options))
  )

const versions: Cli.Backend["versions"] = (options, workflowId) =>
  Effect.andThen(Migrations.run, RunList.versions(workflowId)).pipe(
    Effect.mapError(problemOf(options)),
    Effect.provide(database(options))
  )

/**
 * The SQL backend: `SqlRunStore` over the database the options name.
 *
 * @since 0.1.0
 */
export const backend: Cli.Backend = {
  store: (options) => mapped(options, Layer.provide(SqlRunStore.layer, database(options))),
  // The studio (an HTTP server, websockets) is loaded by the one command that serves it.
  browse: (options) =>
    mapped(options, Layer.unwrap(Effect.promise(() => import("@ripple/studio")).pipe(
      Effect.map(({ RunIndex }) => Layer.provide(Layer.merge(SqlRunStore.layer, RunIndex.layerSql), database(options)))
    ))),
  list,
  versions,
  submit: (options, workflow, input, run = {}) =>
    Worker.submit(workflow, input, { to: run.to, pins: run.pins, limits: run.limits }).pipe(
      Effect.mapError((error) =>
        error._tag === "InvalidWorkflow" || error._tag === "InvalidInput" || error._tag === "PlanFailed"
          ? Problem.fromRunsError(`workflow ${workflow.id}`, error, workflow)
          : problemOf(options)(error)
      ),
      Effect.provide(storeAndDatabase(options))
    ),
  requeue: (options, runId) =>
    Worker.requeue(runId).pipe(Effect.provide(storeAndDatabase(options))),
  work: (options, handlers, settings) =>
    Effect.gen(function*() {
      const worker = yield* Worker.Worker
      const db = yield* Database.Database
      settings.announce(`worker ${worker.owner} on ${db.describe}, waiting for runs (Ctrl-C stops)`)
      return yield* Effect.never
    }).pipe(
      Effect.provide(
        Layer.provideMerge(
          Worker.layer({ concurrency: settings.concurrency, publish: settings.publish, engine: { limits: settings.limits } }),
          Layer.merge(storeAndDatabase(options), handlers)
        ).pipe((layer) => mapped(options, layer))
      )
    ),
  migrate: (options) =>
    Effect.gen(function*() {
      const db = yield* Database.Database
      const applied = yield* Migrations.run
      return { database: db.describe, applied: applied.map(([id, name]) => `${id}_${name}`) }
    }).pipe(
      Effect.mapError(problemOf(options)),
      Effect.provide(database(options))
    )
}
