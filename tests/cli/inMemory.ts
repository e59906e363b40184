/**
 * `Cli.main` in this process over an in-memory `RunStore`: the backend, and a console that records
 * what the commands print (shared by the in-process CLI tests that need no database).
 */
import { Cli } from "@ripple/cli"
import { RunStore } from "@ripple/runtime"
import type * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * A console whose `log`, `error` and `info` lines are appended to `lines` (both streams, in order),
 * and to `stdout` (`log`, `info`) or `stderr` (`error`); `onLine` sees each line as it is printed.
 */
export const recording = (onLine?: (line: string) => void): {
  readonly lines: Array<string>
  readonly stdout: Array<string>
  readonly stderr: Array<string>
  readonly console: Console.Console
} => {
  const lines: Array<string> = []
  const stdout: Array<string> = []
  const stderr: Array<string> = []
  const record = (stream: Array<string>) => (...args: ReadonlyArray<unknown>) => {
    const line = args.map(String).join(" ")
    lines.push(line)
    stream.push(line)
    onLine?.(line)
  }
  const console = { ...globalThis.console, log: record(stdout), error: record(stderr), info: record(stdout) } as Console.Console
  return { lines, stdout, stderr, console }
}

/** The CLI backend over `store`; worker operations are not part of it. */
export const memoryBackend = (store: RunStore.RunStore["Service"]): Cli.Backend => {
  const unused = (what: string) => Effect.die(new Error(`${what} is not part of the memory backend`))
  return {
    store: () => Layer.succeed(RunStore.RunStore, store),
    browse: () => Layer.effectContext(Effect.die(new Error("the studio is not part of the memory backend"))),
    list: () => unused("list"),
    versions: () => unused("versions"),
    submit: () => unused("submit"),
    requeue: () => unused("requeue"),
    work: () => unused("work"),
    migrate: () => Effect.succeed({ database: "memory", applied: [] })
  }
}
