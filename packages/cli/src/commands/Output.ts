/**
 * How commands print: lines on stdout, the progress style, and tables.
 *
 * @since 0.1.0
 */
import * as Console from "effect/Console"
import type * as Effect from "effect/Effect"
import type * as Progress from "../Progress.ts"

/** Prints a line on stdout. */
export const print = (text: string): Effect.Effect<void> => Console.log(text)

/** Colours and symbols on a terminal (unless `NO_COLOR`), plain lines otherwise. */
export const style = (): Progress.Style => process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined ? "tty" : "plain"

/** Left-aligned columns separated by two spaces. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n")
}
