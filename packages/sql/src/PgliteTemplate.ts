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
 * The package can also ship the template (`ship`, run by the workspace's `npm run build` and so
 * by `npm start`): a newcomer's very first command then copies it and pays for no initdb at all.
 * A shipped template is used only when its name is the current one, so a PGlite upgrade or a new
 * migration falls back to the cache until the next build.
 *
 * @since 0.1.0
 */
import type { RunStore } from "@ripple/runtime"
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
import { fileURLToPath } from "node:url"
import * as Migrations from "./Migrations.ts"
import * as PgliteClient from "./PgliteClient.ts"
import { makeDirectory } from "./internal/makeDirectory.ts"

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
const build = (directory: string): Effect.Effect<void, SqlError | Migrator.MigrationError | RunStore.StoreUnavailable> =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* PgliteClient.make({ dataDir: directory })
    yield* Effect.provideService(Migrations.run, SqlClient.SqlClient, client)
  })).pipe(Effect.provide(Reactivity.layer))

/**
 * The template's folder: the shipped one when the package has the current template, else the one
 * in `cacheDir`, built first when missing (`onBuild` is told before). Fails when it cannot be built
 * (an unwritable cache, a full disk): callers fall back to initdb.
 *
 * @since 0.1.0
 */
export const ensure = (options: {
  readonly cacheDir?: string | undefined
  /** Where a shipped template is looked for first (default `shippedDir()`); `false` looks nowhere. */
  readonly shipped?: string | false | undefined
  readonly onBuild?: ((directory: string) => Effect.Effect<void>) | undefined
} = {}): Effect.Effect<string, unknown> =>
  Effect.gen(function*() {
    const shipped = options.shipped ?? shippedDir()
    if (shipped !== false && isTemplate(Path.join(shipped, name()))) return Path.join(shipped, name())
    const cacheDir = options.cacheDir ?? defaultCacheDir()
    const target = Path.join(cacheDir, name())
    if (isTemplate(target)) return target
    if (options.onBuild !== undefined) yield* options.onBuild(target)
    yield* publish(cacheDir)
    return target
  })

const isTemplate = (directory: string): boolean => Fs.existsSync(Path.join(directory, "PG_VERSION"))

// Builds the template in a private folder of `folder` and renames it into place.
const publish = (folder: string): Effect.Effect<void, unknown> =>
  Effect.gen(function*() {
    const target = Path.join(folder, name())
    const building = yield* Effect.try(() => {
      makeDirectory(folder)
      return Fs.mkdtempSync(Path.join(folder, `.${name()}-`))
    })
    yield* build(building).pipe(
      Effect.andThen(Effect.try(() => Fs.renameSync(building, target))),
      // Another process published the template first (rename onto a non-empty folder fails): keep theirs.
      Effect.catch((error) => isTemplate(target) ? Effect.void : Effect.fail(error)),
      Effect.ensuring(Effect.sync(() => Fs.rmSync(building, { recursive: true, force: true })))
    )
  })

/**
 * The folder a template ships in: `RIPPLE_TEMPLATE_DIR` (for a packager who keeps it elsewhere),
 * else `template/` of the `@ripple/sql` package, beside `dist/`.
 *
 * @since 0.1.0
 */
export const shippedDir = (env: NodeJS.ProcessEnv = process.env): string =>
  env["RIPPLE_TEMPLATE_DIR"] !== undefined && env["RIPPLE_TEMPLATE_DIR"] !== ""
    ? Path.resolve(env["RIPPLE_TEMPLATE_DIR"])
    : Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..", "template")

/**
 * Builds the current template into `folder` (default `shippedDir()`) unless it is there already
 * (`onBuild` is told before), and removes the other templates there (other PGlite versions or schemas); returns its path.
 * Run by the workspace's build so that the package ships it.
 *
 * @since 0.1.0
 */
export const ship = (options: {
  readonly folder?: string | undefined
  readonly onBuild?: ((directory: string) => Effect.Effect<void>) | undefined
} = {}): Effect.Effect<{ readonly directory: string; readonly built: boolean }, unknown> =>
  Effect.gen(function*() {
    const folder = options.folder ?? shippedDir()
    const directory = Path.join(folder, name())
    const built = !isTemplate(directory)
    if (built && options.onBuild !== undefined) yield* options.onBuild(directory)
    if (built) yield* publish(folder)
    yield* Effect.try(() => {
      for (const entry of Fs.readdirSync(folder)) {
        if (entry !== name() && entry.startsWith("pglite-")) Fs.rmSync(Path.join(folder, entry), { recursive: true, force: true })
      }
    })
    return { directory, built }
  })
