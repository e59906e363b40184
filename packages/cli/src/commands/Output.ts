/**
 * How commands print: human lines, the progress style, tables, JSON values cut to a line, and
 * `--format json` (one JSON document on stdout, the human lines on stderr).
 *
 * @since 0.1.0
 */
import type { Workflow } from "@ripple/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import * as Progress from "../Progress.ts"

/** Prints a human line: on stdout, or on stderr under `--format json` (see `report`). */
export const print = (text: string): Effect.Effect<void> => Console.log(text)

/** Colours and symbols on a terminal (unless `NO_COLOR`), plain lines otherwise. */
export const style = (): Progress.Style => process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined ? "tty" : "plain"

/** Left-aligned columns separated by two spaces. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n")
}

/** What a command prints its result as. */
export type Format = "text" | "json"

/** `--format text|json`. */
export const format = Flag.Literals("format", ["text", "json"] as const).pipe(
  Flag.withDescription("text, or json: one JSON document on stdout (progress lines go to stderr)"),
  Flag.withDefault("text")
)

/** `--full`: values printed whole instead of cut to a line. */
export const full = Flag.Boolean("full").pipe(
  Flag.withDescription("Print inputs and outputs whole (indented JSON) instead of cut to one line"),
  Flag.withDefault(false)
)

/** How values are printed: `--format` and `--full`. */
export interface Options {
  readonly format: Format
  readonly full: boolean
}

/** The flags of `Options`, for a command's config. */
export const flags = { format, full }

/** Prints `label: value`, a whole value indented under its label. */
export const printValue = (indent: string, label: string, json: Workflow.Json | undefined, full: boolean): Effect.Effect<void> => {
  const text = Progress.jsonValue(json, full)
  return print(`${indent}${label}: ${text.replaceAll("\n", `\n${indent}`)}`)
}

/**
 * Prints a run's observed outputs (`outputs:`, one line each unless `full`): all of a completed run,
 * those produced so far of any other.
 */
export const printOutputs = (
  outputs: { readonly [block: string]: Workflow.Json },
  status: string,
  full: boolean
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const shown = Object.entries(outputs).filter(([, output]) => status === "completed" || output !== null)
    if (shown.length > 0) yield* print("outputs:")
    for (const [block, output] of shown) yield* printValue("  ", block, output, full)
  })

/**
 * A command's result: the document `--format json` prints on stdout, and the exit code it ends with.
 */
export interface Report {
  readonly json: unknown
  readonly code: number
}

/**
 * Runs a command's body and ends with its exit code. Under `--format json` exactly one JSON document
 * goes to stdout: the report's, or `{ "error": ... }` for a problem (whose message still goes to
 * stderr); the body's human lines go to stderr (progress), or nowhere with `answer` (a command whose
 * lines are its answer, a table of runs or a run's nodes, which the document already holds).
 */
export const report = <R>(
  format: Format,
  body: Effect.Effect<Report, Problem.Problem, R>,
  options: { readonly answer?: boolean } = {}
): Effect.Effect<void, Problem.Problem, R> =>
  format === "text"
    ? Effect.flatMap(body, (done) => ended(done.code))
    : Console.consoleWith((console) => {
      const document = (json: unknown) => Effect.sync(() => console.log(JSON.stringify(json, null, 2)))
      const human = options.answer === true ? () => {} : console.error
      return body.pipe(
        Effect.provideService(Console.Console, { ...console, log: human, info: human }),
        Effect.matchEffect({
          onSuccess: (done) => Effect.andThen(document(done.json), ended(done.code)),
          onFailure: (problem) =>
            Effect.andThen(
              problem.message === "" ? Effect.void : document({ error: { problem: problem.problem, fix: problem.fix, exitCode: problem.code } }),
              Effect.fail(problem)
            )
        })
      )
    })

/**
 * Ends the command with `code` (a silent problem when it is not 0).
 */
export const ended = (code: number): Effect.Effect<void, Problem.Problem> =>
  code === 0 ? Effect.void : Effect.fail(new Problem.Problem({ problem: "", fix: "", code }))
