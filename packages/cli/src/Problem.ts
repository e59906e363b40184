/**
 * Why a command stopped early: one message that names the problem and one that names the fix, and
 * the exit code the `ripple` process ends with.
 *
 * **Details**
 *
 * Exit codes: `0` completed, `1` failed (or cancelled), `2` bad input (missing file, invalid
 * workflow, unknown block or run, unreachable database), `3` paused or suspended, `130` stopped
 * by Ctrl-C or SIGTERM (the run is left resumable). Everything that
 * is bad input is detected before anything is written.
 *
 * @since 0.1.0
 */
import { Workflow } from "@ripple/core"
import type { Runs, RunStore } from "@ripple/runtime"
import type { Database } from "@ripple/sql"
import type * as CliError from "effect/cli/CliError"
import * as Data from "effect/Data"

/**
 * The exit codes of `ripple`.
 *
 * @since 0.1.0
 */
export const ExitCode = { completed: 0, failed: 1, badInput: 2, dormant: 3, interrupted: 130 } as const

/**
 * A command ended with a message for the user (on stderr) and an exit code.
 *
 * @since 0.1.0
 */
export class Problem extends Data.TaggedError("Problem")<{
  readonly problem: string
  readonly fix: string
  readonly code: number
}> {
  override get message() {
    return this.fix === "" ? this.problem : `${this.problem}\n  fix: ${this.fix}`
  }
}

/**
 * A bad-input problem (exit 2).
 *
 * @since 0.1.0
 */
export const badInput = (problem: string, fix: string): Problem =>
  new Problem({ problem, fix, code: ExitCode.badInput })

const render = (path: ReadonlyArray<string | number>): string =>
  path.map((part) => typeof part === "number" ? `[${part}]` : `.${part}`).join("")

// A path thousands of parts long (a value nested too deep) is shown by its ends.
const pathOf = (path: ReadonlyArray<string | number>): string =>
  path.length === 0
    ? "the top level"
    : (path.length <= 24 ? render(path) : `${render(path.slice(0, 12))}…(${path.length - 20} more)…${render(path.slice(-8))}`).replace(/^\./, "")

/**
 * A workflow validation error as a problem naming the file and the JSON path.
 *
 * @since 0.1.0
 */
export const invalidWorkflow = (file: string, error: Workflow.WorkflowError): Problem => {
  const detail = error._tag === "SchemaMismatch" ? error.message : describe(error)
  const edit = `edit ${file} at ${pathOf(error.path)}`
  return badInput(
    `${file} is not a valid workflow: ${error._tag} at ${pathOf(error.path)}${detail === "" ? "" : ` (${detail})`}`,
    error._tag === "LimitExceeded"
      ? `${edit}, or raise the cap: ${Workflow.limitVariables[error.limit]}=${error.value} ripple ...`
      : `${edit}; the format is described by packages/core/workflow.schema.json`
  )
}

// The fields that identify the offender (ids, references, the ids along a cycle), without the path already shown.
const describe = (error: Workflow.WorkflowError): string =>
  Object.entries(error)
    .flatMap(([key, value]) => {
      if (key === "_tag" || key === "path" || key === "firstPath") return []
      if (typeof value === "number") return [`${key} ${value}`]
      // An id thousands of characters long is shown by its start.
      if (typeof value === "string") return [`${key} ${value.length > 64 ? `${JSON.stringify(`${value.slice(0, 32)}…`)}` : JSON.stringify(value)}`]
      return Array.isArray(value) && value.every((id) => typeof id === "string") ? [`${key} ${value.join(" → ")}`] : []
    })
    .join(", ")

/**
 * A run id that is not in the database.
 *
 * @since 0.1.0
 */
export const unknownRun = (runId: string): Problem =>
  badInput(`unknown run ${JSON.stringify(runId)}`, "list the runs with `ripple runs` and pass one of their ids")

/**
 * The database could not be opened or reached.
 *
 * @since 0.1.0
 */
export const fromDatabaseError = (error: Database.DatabaseError): Problem =>
  badInput(`cannot open the database (${error.reason}): ${error.target}: ${error.detail}`, error.fix)

// What a workflow's run input may hold, for a fix line.
const declaredInputs = (workflow: Workflow.Workflow): string => {
  const entries = Object.entries(workflow.inputs ?? {})
  if (entries.length === 0) return `${workflow.id} declares no inputs (pass none)`
  const described = entries.map(([key, declaration]) => {
    const how = declaration.default !== undefined
      ? `default ${JSON.stringify(declaration.default)}`
      : declaration.required === false ? "optional" : "required"
    return `${key} (${declaration.type}, ${how})`
  })
  return `${workflow.id} declares ${described.join(", ")}`
}

/**
 * Every error the `Runs` facade refuses a request with, as a problem (all are bad input); with the
 * workflow, a refused input's fix line lists what it declares.
 *
 * @since 0.1.0
 */
export const fromRunsError = (file: string, error: Runs.RunsError, workflow?: Workflow.Workflow): Problem => {
  switch (error._tag) {
    case "InvalidWorkflow":
      return invalidWorkflow(file, error.cause)
    case "InvalidInput":
      return badInput(
        `invalid run input for ${error.workflowId}: ${error.cause._tag} at ${pathOf(error.cause.path)} (${describe(error.cause)})`,
        `pass the workflow's declared inputs as a JSON object: --input '{"name": "value"}'${workflow === undefined ? "" : `; ${declaredInputs(workflow)}`}`
      )
    case "PlanFailed":
      switch (error.cause._tag) {
        case "UnknownTarget":
          return unknownBlock(file, error.cause.target)
        case "UnknownDestination":
          return unknownBlock(file, error.cause.to, "--to")
        case "InvalidPin":
          return badInput(
            `--pin ${error.cause.pin} in ${file}: ${error.cause.reason}`,
            "pin a block of the workflow that a handler runs: --pin <block>=<json>, or <block>@<i>=<json> for one instance inside a loop or parallel"
          )
        case "DestinationNotDownstream":
          return badInput(
            `--to ${error.cause.to} does not depend on --from ${error.cause.target} in ${file}: a run to it would never run ${error.cause.target}`,
            `pass a --to block downstream of ${error.cause.target}, or leave --to out`
          )
        case "MissingTarget":
          return badInput(`${file}: a re-run needs --from <block>, --to <block>, or both`, "pass --from <block>, --to <block>, or both")
        default:
          return badInput(`cannot plan ${error.workflowId}: ${error.cause.message}`, "re-run from a run of this workflow (--run <id>)")
      }
    case "InvalidOption":
      return badInput(error.message, `pass ${error.option} as it says`)
    case "RunNotFound":
      return unknownRun(error.runId)
    case "WorkflowNotFound":
      return badInput(`the workflow version ${error.version} of that run is missing from the database`, "run the workflow again with `ripple run`")
    case "UnknownBlockType":
      return badInput(
        `${file}: ${error.message} (at ${pathOf(error.path)})`,
        "use a built-in type (trigger, value, template, condition, router, response, fail, http, approval, wait, sleep, child) or export a handler for it from an ES module workflow"
      )
    case "StoreUnavailable":
      return badInput(
        `the database failed ${error.operation} (${error.reason._tag}${error.reason.code === undefined ? "" : ` ${error.reason.code}`}): ${error.reason.message}`,
        "check that the database is reachable; a run that was executing is left running: continue it with `ripple resume <run>`"
      )
  }
}

/**
 * The store failed while a run executed in this process (its disk filled, its server went away):
 * the run is left `running` with everything it journaled, and `ripple resume` continues it. Exit 1,
 * as for a run that failed.
 *
 * @since 0.1.0
 */
export const executionStopped = (runId: string, error: RunStore.RunStoreError | Runs.InvalidOption): Problem => {
  if (error._tag !== "StoreUnavailable") return new Problem({ ...fromStoreError(runId, error), code: ExitCode.failed })
  const { code, message } = error.reason
  const diskFull = code === "53100" || /No space left on device|ENOSPC/.test(message)
  return new Problem({
    problem: diskFull
      ? `run ${runId} stopped: the disk holding the database is full (${message})`
      : `run ${runId} stopped: the database failed ${error.operation} (${error.reason._tag}${code === undefined ? "" : ` ${code}`}): ${message}`,
    fix: `${diskFull ? "free space on that disk" : "check that the database is reachable"}, then continue the run where it ` +
      `stopped: \`ripple resume ${runId}\` (the database keeps every block it finished)`,
    code: ExitCode.failed
  })
}

// What to change in a request (payload, name, reason) that no store can hold, after what is wrong with it.
const unstorableFix = (reason: string): string =>
  reason.startsWith("non-finite number")
    ? `send numbers a double holds (up to ±${Number.MAX_VALUE}); send larger ones as strings`
    : reason.startsWith("nested deeper than")
    ? "nest the payload less deeply, or send the deep part as a string"
    : "leave NUL characters (\\u0000) and unpaired surrogates (\\ud800-\\udfff) out of the payload, name and reason"

/**
 * An error of a request on a stored run (a signal, an approval, a resume...) as a problem.
 *
 * @since 0.1.0
 */
export const fromStoreError = (
  runId: string,
  error: RunStore.RunStoreError | Runs.PlanFailed | Runs.InvalidPayload | Runs.InvalidOption
): Problem => {
  switch (error._tag) {
    case "RunNotFound":
      return unknownRun(error.runId)
    case "InvalidPayload":
      return badInput(
        error.message,
        error.cause._tag === "ValueTooLarge"
          ? `send at most ${error.cause.limit} bytes of JSON; keep larger data elsewhere and send where it is`
          : unstorableFix(error.cause.reason)
      )
    case "IllegalTransition":
      return badInput(`run ${runId} is ${error.from}: ${error.event} is not allowed (${error.reason})`, `see the run with \`ripple show ${runId}\``)
    default:
      return fromRunsError(`run ${runId}`, error)
  }
}

/**
 * A `--from` block that the workflow does not have.
 *
 * @since 0.1.0
 */
export const unknownBlock = (file: string, block: string, flag: "--from" | "--to" = "--from"): Problem =>
  badInput(`unknown block ${JSON.stringify(block)} in ${file}`, `pass the id of one of the workflow's blocks to ${flag}`)

/**
 * A command line the parser refused (an unknown subcommand, flag or `--format`, a missing
 * argument): its messages and where to read the usage. The parser has printed the usage already.
 *
 * @since 0.1.0
 */
export const usage = (commandPath: ReadonlyArray<string>, errors: ReadonlyArray<CliError.CliError>): Problem => {
  const command = commandPath.join(" ")
  const unknownCommand = errors.some((error) => error._tag === "UnknownSubcommand")
  return badInput(
    errors.map((error) => error.message).join("; "),
    unknownCommand ? `run \`${command} --help\` for the list of commands` : `run \`${command} --help\` for its flags and arguments`
  )
}
