/**
 * `Cli.main` in this process over an in-memory `RunStore`: the backend, and a console that records
 * what the commands print (shared by the in-process CLI tests that need no database).
 */
import { Cli } from "@ripple/cli"
import { RunStore } from "@ripple/runtime"
import type * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** A console whose `log`, `error` and `info` lines are appended to `lines`. */
export const recording = (): { readonly lines: Array<string>; readonly console: Console.Console } => {
  const lines: Array<string> = []
  const record = (...args: ReadonlyArray<unknown>) => void lines.push(args.map(String).join(" "))
  const console = { ...globalThis.console, log: record, error: record, info: record } as Console.Console
  return { lines, console }
}

/** The CLI backend over `store`; worker operations are not part of it. */
export const memoryBackend = (store: RunStore.RunStore["Service"]): Cli.Backend => {
  const unused = (what: string) => Effect.die(new Error(`${what} is not part of the memory backend`))
  return {
    store: () => Layer.succeed(RunStore.RunStore, store),
    list: () => unused("list"),
    submit: () => unused("submit"),
    requeue: () => unused("requeue"),
    work: () => unused("work"),
    migrate: () => Effect.succeed({ database: "memory", applied: [] })
  }
}
