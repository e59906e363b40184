/**
 * Runs `ripple`: the bundled binary (`packages/cli/dist/bin.js`, built by `npm run build` and `npm test`) as a child
 * process, or the same command tree in this process through `Cli.main`; and reads a database's
 * tables back as text so tests can assert nothing was written.
 */
import { PGlite } from "@electric-sql/pglite"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Cli, Platform, Store } from "@ripple/cli"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Redacted from "effect/Redacted"
import { execFile, spawn, type ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root. */
export const root = fileURLToPath(new URL("../../", import.meta.url))

/** The compiled binary. */
export const bin = Path.join(root, "packages/cli/dist/bin.js")

/** An example file by name. */
export const example = (name: string): string => Path.join(root, "examples", name)

/** What one invocation printed and how it ended. */
export interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Where and with which environment the binary runs. */
export interface Where {
  readonly cwd: string
  /** Extra arguments appended to every invocation (e.g. `--db <url>`). */
  readonly db?: ReadonlyArray<string> | undefined
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Milliseconds after which `ripple` kills the binary and rejects: a command that must not hang. */
  readonly timeout?: number | undefined
}

const environment = (where: Where): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" }
  // The embedded default is what a test gets unless it passes --db.
  delete env.DATABASE_URL
  for (const [key, value] of Object.entries(where.env ?? {})) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  return env
}

/** Runs `ripple <args>` in `where.cwd` and waits for it to exit. */
export const ripple = (where: Where, ...args: ReadonlyArray<string>): Promise<Result> =>
  new Promise((resolve, reject) => {
    const options = { cwd: where.cwd, env: environment(where), maxBuffer: 1 << 24, timeout: where.timeout ?? 0 }
    execFile(process.execPath, [bin, ...args, ...(where.db ?? [])], options, (error, stdout, stderr) => {
      if (error?.killed === true) return reject(new Error(`ripple ${args.join(" ")} did not exit within ${where.timeout} ms`))
      if (error !== null && typeof error.code !== "number") return reject(error)
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr })
    })
  })

// In-process invocations change the working directory and the environment, so they run one at a time.
let inProcessQueue: Promise<unknown> = Promise.resolve()

/**
 * Runs `ripple <args>` in this process, as the binary would in `where`: `Cli.main` over the SQL
 * backend, with the working directory and environment of `where` for the call, stdout and stderr
 * captured from the `Console`, and the exit code the binary would end with (1 for a defect, whose
 * cause goes to stderr as the binary prints it). Saves starting node and loading every module.
 */
export const rippleInProcess = (where: Where, ...args: ReadonlyArray<string>): Promise<Result> => {
  const result = inProcessQueue.then(() => runInProcess(where, [...args, ...(where.db ?? [])]))
  inProcessQueue = result.catch(() => undefined)
  return result
}

const runInProcess = async (where: Where, args: ReadonlyArray<string>): Promise<Result> => {
  let stdout = ""
  let stderr = ""
  const line = (...parts: ReadonlyArray<unknown>) => `${parts.map(String).join(" ")}\n`
  const console: Console.Console = {
    ...globalThis.console,
    log: (...parts) => void (stdout += line(...parts)),
    info: (...parts) => void (stdout += line(...parts)),
    error: (...parts) => void (stderr += line(...parts)),
    warn: (...parts) => void (stderr += line(...parts))
  }
  const cwd = process.cwd()
  const env = { ...process.env }
  const wanted = environment(where)
  replaceEnv(wanted)
  process.chdir(where.cwd)
  try {
    const exit = await Effect.runPromiseExit(
      Cli.main(Store.backend)(args).pipe(
        Effect.provide(Platform.layer),
        // Effect's default provider keeps the environment it first read, so `wanted` is given explicitly.
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { ...wanted } as Record<string, string> }))),
        Effect.provideService(Console.Console, console)
      )
    )
    if (Exit.isSuccess(exit)) return { code: exit.value, stdout, stderr }
    return { code: 1, stdout, stderr: stderr + Cause.pretty(exit.cause) }
  } finally {
    process.chdir(cwd)
    replaceEnv(env)
  }
}

// Makes `process.env` hold exactly `next`, in place (modules keep a reference to the object).
const replaceEnv = (next: NodeJS.ProcessEnv): void => {
  for (const key of Object.keys(process.env)) if (!(key in next)) delete process.env[key]
  Object.assign(process.env, next)
}

/** Starts `ripple <args>` without waiting (a worker); stdout is collected in `output()`. */
export const spawnRipple = (where: Where, ...args: ReadonlyArray<string>) => {
  const child: ChildProcess = spawn(process.execPath, [bin, ...args, ...(where.db ?? [])], { cwd: where.cwd, env: environment(where) })
  let output = ""
  child.stdout?.on("data", (chunk) => (output += String(chunk)))
  child.stderr?.on("data", (chunk) => (output += String(chunk)))
  const exited = new Promise<number>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal === null ? -1 : 128))))
  return { child, output: () => output, exited }
}

/** A fresh temporary directory, removed by the returned function. */
export const tempDir = (prefix: string): { readonly dir: string; readonly remove: () => void } => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `ripple-cli-${prefix}-`))
  return { dir, remove: () => Fs.rmSync(dir, { recursive: true, force: true }) }
}

/** Run ids printed by `ripple run` / `ripple rerun` ("run <id> started"). */
export const runIdOf = (result: Result): string => {
  const match = /^run (\S+) started/m.exec(result.stdout)
  if (match === null) throw new Error(`no run id in:\n${result.stdout}\n${result.stderr}`)
  return match[1]!
}

const dumpQuery = `SELECT table_name FROM information_schema.tables
  WHERE table_schema = current_schema() AND table_name LIKE 'ripple%' ORDER BY table_name`

/** Every row of every Ripple table of an embedded database, as text (opened while no binary runs). */
export const dumpPglite = async (dataDir: string): Promise<string> => {
  const db = await PGlite.create(dataDir)
  try {
    const tables = await db.query<{ table_name: string }>(dumpQuery)
    const parts: Array<string> = []
    for (const { table_name } of tables.rows) {
      const rows = await db.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t ORDER BY 1`)
      parts.push(`${table_name} (${rows.rows.length})`, ...rows.rows.map((r) => r.row))
    }
    return parts.join("\n")
  } finally {
    await db.close()
  }
}

/** Every row of every Ripple table of the server database at `url`, as text. */
export const dumpServer = (url: string): Promise<string> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const sql = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 })
    const tables = yield* sql.unsafe<{ table_name: string }>(dumpQuery)
    const parts: Array<string> = []
    for (const { table_name } of tables) {
      const rows = yield* sql.unsafe<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t ORDER BY 1`)
      parts.push(`${table_name} (${rows.length})`, ...rows.map((r) => r.row))
    }
    return parts.join("\n")
  })).pipe(Effect.provide(Reactivity.layer)))

/** Runs SQL on the server at `url` (creating and dropping test schemas). */
export const onServer = (url: string, statement: string): Promise<void> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const sql = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 })
    yield* sql.unsafe(statement)
  })).pipe(Effect.provide(Reactivity.layer)))

/** `url` with `schema` as the search path of every connection. */
export const withSchema = (url: string, schema: string): string => {
  const parsed = new URL(url)
  parsed.searchParams.set("options", `-c search_path=${schema}`)
  return parsed.toString()
}

/** A copy of the workflow JSON file `name` with `edit` applied, written to `dir`. */
export const editedCopy = (dir: string, name: string, edit: (workflow: any) => void): string => {
  const workflow = JSON.parse(Fs.readFileSync(example(name), "utf8"))
  edit(workflow)
  const file = Path.join(dir, name.replace(/\.json$/, ".edited.json"))
  Fs.writeFileSync(file, JSON.stringify(workflow, null, 2))
  return file
}
