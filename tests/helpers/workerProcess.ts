/**
 * Worker processes for the multi-process tests on the real server: a script started with
 * `DATABASE_URL` pointing at the test's schema, ready once it prints `ready`, killed with SIGKILL
 * when the test's scope closes.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as TestDatabase from "./database.ts"

/** The repository root. */
export const root = Path.resolve(import.meta.dirname, "..", "..")

/** Builds the workspace (`tsc -b`) unless every file in `outputs` exists. */
export const ensureBuilt = (outputs: ReadonlyArray<string>): Effect.Effect<void> =>
  Effect.sync(() => {
    if (outputs.every((file) => Fs.existsSync(file))) return
    try {
      execFileSync(process.execPath, [Path.join(root, "node_modules", "typescript", "bin", "tsc"), "-b"], { cwd: root, stdio: "ignore" })
    } catch {
      // Another project's type error must not stop what was emitted from being used.
    }
    const missing = outputs.filter((file) => !Fs.existsSync(file))
    if (missing.length > 0) throw new Error(`${missing.join(", ")} missing: run npx tsc -b`)
  })

/** The server URL with `schema` as every connection's search path. */
export const schemaUrl = (schema: string): string => {
  const url = new URL(TestDatabase.serverUrl())
  url.searchParams.set("options", `-c search_path=${schema}`)
  return url.toString()
}

/**
 * Starts `script` (with `options.args`) over `url` and waits until it prints `options.ready`
 * (default `ready`); SIGKILLed when the scope closes if still alive.
 */
export const spawnWorker = (
  script: string,
  url: string,
  env: Record<string, string>,
  options: { readonly args?: ReadonlyArray<string> | undefined; readonly ready?: string | undefined } = {}
): Effect.Effect<ChildProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<ChildProcess>((resolve, reject) => {
        const child = spawn(process.execPath, [script, ...(options.args ?? [])], {
          env: { ...process.env, DATABASE_URL: url, RIPPLE_POLL_MS: "100", ...env },
          stdio: ["ignore", "pipe", "inherit"]
        })
        child.stdout!.on("data", (data: Buffer) => {
          if (data.toString().includes(options.ready ?? "ready")) resolve(child)
        })
        child.on("exit", (code) => reject(new Error(`worker exited with ${code} before it was ready`)))
      })
    ),
    (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

/** SIGKILLs the process and resolves once it is gone, so nothing it started can still reach the database. */
export const killed = (child: ChildProcess): Effect.Effect<void> =>
  Effect.promise(() =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })
  )

/** The `n` column of a `SELECT count(*) AS n` query. */
export const count = (query: Effect.Effect<ReadonlyArray<{ readonly n: number | bigint | string }>, unknown>): Effect.Effect<number> =>
  Effect.map(Effect.orDie(query), (rows) => Number(rows[0]?.n ?? 0))

/** Polls `check` every 10 ms until it holds; dies naming `what` after `timeoutMs`. */
export const waitFor = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, timeoutMs = 90_000): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(10)
    }
  })
