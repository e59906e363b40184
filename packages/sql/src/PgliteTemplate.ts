/**
 * A per-user template for new embedded databases: a data directory that PGlite initialised and the
 * migrations brought up to date, built once per PGlite version and schema in a cache folder, and
 * copied into every new data directory (`PgliteClient`'s `template`).
 *
 * **Details**
 *
 * A new database otherwise costs an initdb (5 s on a quiet 2-core machine, 20 s on a loaded one);
 * a copy of the template and its first open cost about what opening an existing database does.
 * The cache folder is `RIPPLE_CACHE_DIR`, else `$XDG_CACHE_HOME/ripple`, else `~/.cache/ripple`.
 * A template is built in a private folder and published by one `rename`, so processes building it
 * at once never see half of one (the loser of the race keeps the winner's), and it is never opened
 * again once published: copies are.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import type * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Migrations from "./Migrations.ts"
import * as PgliteClient from "./PgliteClient.ts"

/**
 * The cache folder templates are kept in: `RIPPLE_CACHE_DIR`, else `$XDG_CACHE_HOME/ripple`, else
 * `~/.cache/ripple`.
 *
 * @since 0.1.0
 */
export const defaultCacheDir = (env: NodeJS.ProcessEnv = process.env): string =>
  env["RIPPLE_CACHE_DIR"] !== undefined && env["RIPPLE_CACHE_DIR"] !== ""
    ? Path.resolve(env["RIPPLE_CACHE_DIR"])
    : Path.join(
      env["XDG_CACHE_HOME"] !== undefined && env["XDG_CACHE_HOME"] !== "" ? env["XDG_CACHE_HOME"] : Path.join(Os.homedir(), ".cache"),
      "ripple"
    )

const pgliteVersion = (): string => {
  const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite")
  const manifest = JSON.parse(Fs.readFileSync(Path.join(Path.dirname(entry), "..", "package.json"), "utf8"))
  return String(manifest.version)
}

/**
 * The template's folder name: the PGlite version (a data directory opens only with the PostgreSQL
 * it was made by) and a digest of the migrations it holds.
 *
 * @since 0.1.0
 */
export const name = (): string => {
  const schema = Crypto.createHash("sha256").update(Object.keys(Migrations.migrations).join("\n")).digest("hex").slice(0, 12)
  return `pglite-${pgliteVersion()}-${schema}`
}

// initdb and the migrations in a private folder, closed cleanly (so no WAL is left to replay).
const build = (directory: string): Effect.Effect<void, SqlError | Migrator.MigrationError> =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* PgliteClient.make({ dataDir: directory })
    yield* Effect.provideService(Migrations.run, SqlClient.SqlClient, client)
  })).pipe(Effect.provide(Reactivity.layer))

/**
 * The template's folder in `cacheDir`, built first when missing (`onBuild` is told before). Fails
 * when it cannot be built (an unwritable cache, a full disk): callers fall back to initdb.
 *
 * @since 0.1.0
 */
export const ensure = (options: {
  readonly cacheDir?: string | undefined
  readonly onBuild?: ((directory: string) => Effect.Effect<void>) | undefined
} = {}): Effect.Effect<string, unknown> =>
  Effect.gen(function*() {
    const cacheDir = options.cacheDir ?? defaultCacheDir()
    const target = Path.join(cacheDir, name())
    if (Fs.existsSync(Path.join(target, "PG_VERSION"))) return target
    if (options.onBuild !== undefined) yield* options.onBuild(target)
    const building = yield* Effect.try(() => {
      Fs.mkdirSync(cacheDir, { recursive: true })
      return Fs.mkdtempSync(Path.join(cacheDir, `.${name()}-`))
    })
    yield* build(building).pipe(
      Effect.andThen(Effect.try(() => Fs.renameSync(building, target))),
      // Another process published the template first (rename onto a non-empty folder fails): keep theirs.
      Effect.catch((error) => Fs.existsSync(Path.join(target, "PG_VERSION")) ? Effect.void : Effect.fail(error)),
      Effect.ensuring(Effect.sync(() => Fs.rmSync(building, { recursive: true, force: true })))
    )
    return target
  })
