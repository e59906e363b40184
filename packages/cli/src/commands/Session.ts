/**
 * What every command shares: the `ripple` root command with the database flags, the backend the
 * commands run on, and the `Runs` facade or `RunStore` opened over it.
 *
 * @since 0.1.0
 */
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import type * as Cli from "../Cli.ts"
import * as Problem from "../Problem.ts"
import * as Source from "../Source.ts"

/**
 * The `ripple` command without subcommands: the shared `--db` and `--data-dir` flags.
 *
 * @since 0.1.0
 */
export const root = Command.make("ripple").pipe(
  Command.withSharedFlags({
    db: Flag.String("db").pipe(
      Flag.withDescription("PostgreSQL URL (default: DATABASE_URL, else the embedded database in --data-dir)"),
      Flag.optional
    ),
    dataDir: Flag.String("data-dir").pipe(
      Flag.withDescription("Directory of the embedded database (default: .ripple)"),
      Flag.optional
    )
  }),
  Command.withDescription("Ripple: incremental, durable workflow runs. Re-run from any block; only what changed runs again.")
)

/**
 * The database options of the command line, read by a subcommand's handler.
 *
 * **Gotchas**
 *
 * An empty `--db` or `--data-dir` (`--db "$DB_URL"` with the variable unset) is bad input, not the
 * default: it would otherwise write to the embedded database in the current directory. A `--db`
 * that is not a URL is named as such (it is not echoed: it may hold a password).
 *
 * @since 0.1.0
 */
export const databaseOptions: Effect.Effect<Cli.DatabaseOptions, Problem.Problem, Command.CommandContext<"ripple">> = Effect.flatMap(
  root,
  (flags) => {
    const url = Option.getOrUndefined(flags.db)
    const dataDir = Option.getOrUndefined(flags.dataDir)
    if (url !== undefined && url.trim() === "") {
      return Effect.fail(Problem.badInput(
        "--db is empty",
        "pass a PostgreSQL URL (--db postgres://user:password@host:port/database), or leave --db out to use DATABASE_URL or the embedded database"
      ))
    }
    if (url !== undefined && !URL.canParse(url)) {
      return Effect.fail(Problem.badInput(
        "--db is not a URL",
        "pass a PostgreSQL URL: --db postgres://user:password@host:port/database (percent-encode special characters in the password)"
      ))
    }
    if (dataDir !== undefined && dataDir.trim() === "") {
      return Effect.fail(Problem.badInput("--data-dir is empty", "pass the folder of the embedded database (--data-dir .ripple), or leave --data-dir out for .ripple"))
    }
    return Effect.succeed({ url, dataDir })
  }
)

/**
 * The database options the user gave, as they go on a command line that continues a run
 * (` --data-dir <dir>`, ` --db <url>` with its password masked); empty when none was given.
 *
 * @since 0.1.0
 */
export const continuation = Effect.map(databaseOptions, (options) => {
  const parts: Array<string> = []
  if (options.url !== undefined) parts.push(`--db ${quoted(masked(options.url))}`)
  if (options.dataDir !== undefined) parts.push(`--data-dir ${quoted(options.dataDir)}`)
  return parts.map((part) => ` ${part}`).join("")
})

const masked = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password === "") return url
    parsed.password = "****"
    return parsed.toString()
  } catch {
    return url
  }
}

// Shell-quoted when it holds anything but plain path and URL characters.
const quoted = (text: string): string => /^[\w@%+=:,./?&-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`

/**
 * The `Runs` options of every command. A `ripple` process that dies leaves the leases of the runs
 * it executed; another `ripple` process takes a crashed run over once its lease expires, so the
 * lease is short (renewed every ~1.7 s).
 *
 * @since 0.1.0
 */
export const runsOptions: Runs.Options = { leaseMs: 5_000 }

/**
 * The services a command handler uses.
 *
 * @since 0.1.0
 */
export interface Session {
  readonly backend: Cli.Backend
  /**
   * Runs `use` with the `Runs` facade (and its store) over the backend, with `handlers`; `existing`
   * (a command that writes nothing, or acts on a stored run: there is none without a database)
   * refuses an embedded data directory without a database instead of creating one.
   */
  readonly withRuns: <A>(
    handlers: Layer.Layer<Handler.Handlers>,
    use: (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) => Effect.Effect<A, Problem.Problem, Command.CommandContext<"ripple">>,
    options?: { readonly existing?: boolean | undefined }
  ) => Effect.Effect<A, Problem.Problem, Command.CommandContext<"ripple">>
  /** Runs `use` with the backend's store only (reading: an embedded data directory without a database is refused). */
  readonly withStore: <A>(
    use: (store: RunStore.RunStore["Service"]) => Effect.Effect<A, Problem.Problem, Command.CommandContext<"ripple">>
  ) => Effect.Effect<A, Problem.Problem, Command.CommandContext<"ripple">>
}

/**
 * The session over a backend.
 *
 * @since 0.1.0
 */
export const make = (backend: Cli.Backend): Session => ({
  backend,
  withRuns: (handlers, use, database) =>
    Effect.flatMap(Effect.all([databaseOptions, Source.limits]), ([options, limits]) =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        return yield* use(runs, store)
      }).pipe(
        Effect.provide(Runs.layer({ limits, ...runsOptions }).pipe(
          // Its options are the command's own, and limits `Source.limits` checked: an invalid one is a bug.
          Layer.orDie,
          Layer.provideMerge(Layer.merge(backend.store({ ...options, mustExist: database?.existing === true }), handlers))
        ))
      )),
  withStore: (use) =>
    Effect.flatMap(databaseOptions, (options) =>
      Effect.gen(function*() {
        return yield* use(yield* RunStore.RunStore)
      }).pipe(Effect.provide(backend.store({ ...options, mustExist: true }))))
})
