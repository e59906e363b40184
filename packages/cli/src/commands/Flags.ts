/**
 * The flags and arguments several commands take, and how their values are read (JSON from the
 * command line, a file or stdin).
 *
 * @since 0.1.0
 */
import { Workflow } from "@ripple/core"
import { Handler } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Argument from "effect/cli/Argument"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import * as Source from "../Source.ts"

type Json = Workflow.Json

/** `<run>`: a run id. */
export const run = Argument.String("run").pipe(Argument.withDescription("The run id"))

/** `<workflow>`: a workflow file or module. */
export const workflow = Argument.String("workflow").pipe(
  Argument.withDescription("A workflow .json file, or an ES module (.js/.mjs) exporting `workflow` and `handlers`")
)

/** `--from <block>` (optional with `--to`). */
export const from = Flag.String("from").pipe(
  Flag.withDescription("The block to re-run from (an edited block, usually); without it, --to re-runs only what changed since the prior run"),
  Flag.optional
)

/**
 * The blocks `--from` and `--to` name, checked against the workflow: at least one of them (a re-run
 * needs a block to start from or to run to).
 */
export const checkFromTo = (
  source: Source.Source,
  from: Option.Option<string>,
  to: Option.Option<string>
): Effect.Effect<{ readonly from: string | undefined; readonly to: string | undefined }, Problem.Problem> =>
  Effect.gen(function*() {
    if (Option.isNone(from) && Option.isNone(to)) {
      return yield* Problem.badInput(
        `${source.file}: a re-run needs --from <block>, --to <block>, or both`,
        "pass --from <block> to re-run from it, or --to <block> to run to it re-running only what changed"
      )
    }
    if (Option.isSome(from)) yield* Source.checkBlock(source, from.value)
    return { from: Option.getOrUndefined(from), to: yield* checkTo(source, to) }
  })

/** `--to <block>`: run to a block (the only observed output). */
export const to = Flag.String("to").pipe(
  Flag.withDescription("Run to this block: only what it needs executes, everything else is pruned"),
  Flag.optional
)

/** The block `--to` names, checked against the workflow (`undefined` without `--to`). */
export const checkTo = (source: Source.Source, to: Option.Option<string>): Effect.Effect<string | undefined, Problem.Problem> =>
  Option.match(to, {
    onNone: () => Effect.succeed(undefined),
    onSome: (block) => Effect.as(Source.checkBlock(source, block, "--to"), block)
  })

/** `--pin <block>=<json|@file>` (repeatable): pinned outputs. */
export const pin = Flag.String("pin").pipe(
  Flag.withDescription("Pin a block's output instead of running it: <block>=<json>, <block>=@file.json, or <block>@<i>=<json> for one instance inside a loop or parallel (repeatable)"),
  Flag.atLeast(0)
)

/** The pins `--pin` gives (`undefined` without any); a malformed one is bad input. */
export const parsePins = (texts: ReadonlyArray<string>): Effect.Effect<{ readonly [node: string]: Json } | undefined, Problem.Problem> =>
  Effect.gen(function*() {
    if (texts.length === 0) return undefined
    const pins: Array<readonly [string, Json]> = []
    const syntax = "pass --pin <block>=<json>, e.g. --pin fetch='{\"items\": []}' or --pin fetch=@fetch.json"
    for (const text of texts) {
      const at = text.indexOf("=")
      if (at < 0) return yield* Problem.badInput(`--pin ${text} has no value`, syntax)
      if (at === 0) return yield* Problem.badInput(`--pin ${text} names no block`, syntax)
      const block = text.slice(0, at)
      // The last one would win without a word.
      if (pins.some(([pinned]) => pinned === block)) {
        return yield* Problem.badInput(`--pin ${block} is given twice`, "pin each block once: keep the --pin whose value you mean")
      }
      pins.push([block, yield* parseJson(`--pin ${block}`, text.slice(at + 1), (value) => `--pin ${block}=${value}`)])
    }
    // Own members, whatever the name: an assignment to `__proto__` would set the prototype and drop
    // the pin silently, where the planner must refuse it like any name that is no block.
    return Object.fromEntries(pins)
  })

/** `--run <id>`: the run a re-run reuses. */
export const priorRun = Flag.String("run").pipe(
  Flag.withDescription("The run whose results are reused (default: latest, the last finished run of the workflow)"),
  Flag.optional
)

/** The run `--run` names; `undefined` for the latest. */
export const sourceRun = (run: Option.Option<string>): string | undefined => Option.getOrUndefined(Option.filter(run, (id) => id !== "latest"))

/** `--handlers <module.js>`. */
export const handlers = Flag.String("handlers").pipe(
  Flag.withDescription("An ES module exporting `handlers` (a Layer), for runs of workflows with custom block types"),
  Flag.optional
)

/** The handlers `--handlers` names, else the built-ins. */
export const handlersOf = (file: Option.Option<string>): Effect.Effect<Layer.Layer<Handler.Handlers>, Problem.Problem> =>
  Option.match(file, { onNone: () => Effect.succeed(Handler.layerBuiltins), onSome: Source.loadHandlers })

/** `--payload <json>`. */
export const payload = Flag.String("payload").pipe(
  Flag.withDescription("A JSON payload (default null); @file reads it from a file, - from stdin"),
  Flag.optional
)

/** `--input <json>`. */
export const input = Flag.String("input").pipe(
  Flag.withDescription("The run input as a JSON object, e.g. '{\"topic\": \"ripple\"}'; @file reads it from a file, - from stdin"),
  Flag.optional
)

/** `--queue`: hand the run to `ripple worker` processes (what the command does instead is `description`). */
export const queue = (description: string) => Flag.Boolean("queue").pipe(Flag.withDescription(description), Flag.withDefault(false))

/** `--input <json>` of `rerun` and `plan`: a changed run input. */
export const changedInput = Flag.String("input").pipe(
  Flag.withDescription("A changed run input (JSON object, @file or - for stdin; default: the reused run's): the blocks that read a changed key re-run"),
  Flag.optional
)

/** The run input `--input` gives a re-run (`undefined`: the reused run's). */
export const parseChangedInput = (text: Option.Option<string>) =>
  Option.isSome(text) ? parseInput(text.value) : Effect.succeed(undefined)

/** `--wait <seconds>` for the owner of a run to take a request. */
export const wait = Flag.Int("wait").pipe(
  Flag.withDescription("Seconds to wait for the process that owns the run (a worker) to take the request (default 30)"),
  Flag.withDefault(30)
)

/** Refuses a negative `--wait`. */
export const checkWait = (wait: number): Effect.Effect<void, Problem.Problem> =>
  wait < 0 ? Effect.fail(Problem.badInput(`--wait ${wait} is negative`, "give the seconds to wait, or 0 not to wait")) : Effect.void

/**
 * Refuses an empty workflow id (`--workflow "$ID"` with the variable unset): no workflow has one,
 * and answering "none stored" would hide the mistake. `what` names the argument.
 */
export const checkWorkflowId = (id: string | undefined, what: string): Effect.Effect<void, Problem.Problem> =>
  id !== undefined && Workflow.isBlankId(id)
    ? Effect.fail(Problem.badInput(`${what} is empty`, "give a workflow id (see `ripple runs`) or a workflow file"))
    : Effect.void

// `@file` reads the JSON from a file and `-` from stdin: a value of megabytes does not fit in an
// argument list (the shell refuses to start the command). `spell` writes the flag with a value, as
// the user would type it (a pin's value follows its block and `=`).
const jsonText = (flag: string, text: string, spell: (value: string) => string): Effect.Effect<string, Problem.Problem> => {
  if (text !== "-" && !text.startsWith("@")) return Effect.succeed(text)
  const from = text === "-" ? "stdin" : text.slice(1)
  const fix = `pass a readable file (${spell("@input.json")}), - for stdin, or the JSON itself`
  if (from.trim() === "") return Effect.fail(Problem.badInput(`${spell(text)} names no file`, fix))
  return Source.readText(`${flag} from ${from}`, text === "-" ? 0 : from, fix, maxJsonBytes)
}

// What a JSON value's file may hold: the value at most `Workflow.maxValueBytes` of compact JSON,
// with room for its indentation.
const maxJsonBytes = 4 * Workflow.maxValueBytes

/** The JSON value of `flag` (`null` when absent); `spell` writes the flag with a value, for the fix line. */
export const parseJson = (
  flag: string,
  text: string | undefined,
  spell: (value: string) => string = (value) => `${flag} ${value}`
): Effect.Effect<Json, Problem.Problem> =>
  text === undefined ? Effect.succeed(null) : Effect.flatMap(jsonText(flag, text, spell), (json) =>
    Effect.try({
      try: () => JSON.parse(json) as Json,
      catch: (error) =>
        Problem.badInput(`${flag} is not valid JSON: ${(error as Error).message}`, `pass JSON, e.g. ${spell(`'{"ok": true}'`)} or ${spell("@payload.json")}`)
    }))

/** The JSON object of `--input` (`{}` when absent). */
export const parseInput = (text: string | undefined): Effect.Effect<{ readonly [key: string]: Json }, Problem.Problem> => {
  if (text === undefined) return Effect.succeed({})
  const fix = "pass a JSON object, e.g. --input '{\"subject\": \"Login fails\"}' or --input @input.json"
  return jsonText("--input", text, (value) => `--input ${value}`).pipe(Effect.flatMap((json) => Effect.try({
    try: () => JSON.parse(json) as Json,
    catch: (error) => Problem.badInput(`--input is not valid JSON: ${(error as Error).message}`, fix)
  })), Effect.flatMap((json) =>
    typeof json === "object" && json !== null && !Array.isArray(json)
      ? Effect.succeed(json as { readonly [key: string]: Json })
      : Effect.fail(Problem.badInput("--input must be a JSON object", fix))
  ))
}
