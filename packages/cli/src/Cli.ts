/**
 * The `ripple` command tree (effect/cli) and `main`, which runs it on an argument list and returns
 * the process exit code.
 *
 * **Details**
 *
 * - The database comes from `--db <url>`, else `DATABASE_URL`, else embedded PGlite in
 *   `--data-dir` (default `.ripple/` in the current directory). Which `RunStore` sits on it is the
 *   `Backend`'s choice, so the same commands run on any store.
 * - Input is checked before the database is opened (file, workflow, `--from` block), so bad input
 *   writes nothing; `plan` never writes.
 * - Exit codes: see `Problem.ExitCode`.
 *
 * @since 0.1.0
 */
import type { Workflow } from "@ripple/core"
import type { Handler, RunEvent, RunStatus, RunStore } from "@ripple/runtime"
import type { RunList } from "@ripple/sql"
import type { RunIndex } from "@ripple/studio"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as CliError from "effect/cli/CliError"
import * as Command from "effect/cli/Command"
import * as Approve from "./commands/approve.ts"
import * as Cancel from "./commands/cancel.ts"
import * as Migrate from "./commands/migrate.ts"
import * as Pause from "./commands/pause.ts"
import * as PlanCommand from "./commands/plan.ts"
import * as Rerun from "./commands/rerun.ts"
import * as Resume from "./commands/resume.ts"
import * as Run from "./commands/run.ts"
import * as RunsCommand from "./commands/runs.ts"
import * as Session from "./commands/Session.ts"
import * as Show from "./commands/show.ts"
import * as Signal from "./commands/signal.ts"
import * as StudioCommand from "./commands/studio.ts"
import * as Versions from "./commands/versions.ts"
import * as WorkerCommand from "./commands/worker.ts"
import * as Problem from "./Problem.ts"

/**
 * Where the database is, as given on the command line.
 *
 * @since 0.1.0
 */
export interface DatabaseOptions {
  /** `--db`: a PostgreSQL URL; `undefined` falls back to `DATABASE_URL`, then to PGlite. */
  readonly url: string | undefined
  /** `--data-dir`: the PGlite data directory (default `.ripple`). */
  readonly dataDir: string | undefined
  /** Set by commands that only read: an embedded data directory without a database is refused, not created. */
  readonly mustExist?: boolean | undefined
}

/**
 * A stored run as `ripple runs` lists it.
 *
 * @since 0.1.0
 */
export type RunSummary = RunList.Summary

/**
 * A stored workflow version as `ripple versions` lists it.
 *
 * @since 0.1.0
 */
export type VersionSummary = RunList.VersionSummary

/**
 * The persistence the commands run on.
 *
 * @since 0.1.0
 */
export interface Backend {
  /** The run store for the database options (opening the database, applying migrations). */
  readonly store: (options: DatabaseOptions) => Layer.Layer<RunStore.RunStore, Problem.Problem>
  /** The store and the run list the studio serves (`ripple studio`), over one database. */
  readonly browse: (options: DatabaseOptions) => Layer.Layer<RunStore.RunStore | RunIndex.RunIndex, Problem.Problem>
  /** Stored runs, newest first, optionally of one workflow and/or in one status. */
  readonly list: (
    options: DatabaseOptions,
    filter: { readonly workflowId: string | undefined; readonly status: RunStatus.Status | undefined }
  ) => Effect.Effect<ReadonlyArray<RunSummary>, Problem.Problem>
  /** The stored versions of a workflow, newest first. */
  readonly versions: (options: DatabaseOptions, workflowId: string) => Effect.Effect<ReadonlyArray<VersionSummary>, Problem.Problem>
  /** Stores a queued run for the workers; returns its id. */
  readonly submit: (
    options: DatabaseOptions,
    workflow: Workflow.Workflow,
    input: { readonly [key: string]: Workflow.Json },
    run?: {
      readonly to?: string | undefined
      readonly pins?: { readonly [node: string]: Workflow.Json } | undefined
      /** The caps the workflow was checked against (`Source.limits`). */
      readonly limits?: Partial<Workflow.Limits> | undefined
    }
  ) => Effect.Effect<string, Problem.Problem>
  /**
   * Hands a run back to the workers (`Worker.requeue`): a paused run unpaused, a failed one
   * resumed, a crashed one as it is; returns the status it was handed over in.
   */
  readonly requeue: (
    options: DatabaseOptions,
    runId: string
  ) => Effect.Effect<RunStatus.Status, Problem.Problem | RunStore.RunStoreError>
  /** Runs a worker until interrupted: it executes queued, crashed and woken runs with `handlers`. */
  readonly work: (
    options: DatabaseOptions,
    handlers: Layer.Layer<Handler.Handlers>,
    settings: {
      readonly concurrency: number | undefined
      /** Caps on the work of each run (see `Source.limits`). */
      readonly limits: Partial<Workflow.Limits>
      /** Prints a line about the worker itself. */
      readonly announce: (text: string) => void
      readonly publish: (event: RunEvent.RunEvent) => void
    }
  ) => Effect.Effect<never, Problem.Problem>
  /**
   * Applies pending schema migrations; returns where the database is (`pglite:<dir>` or the
   * redacted URL) and the migrations applied (none when up to date).
   */
  readonly migrate: (
    options: DatabaseOptions
  ) => Effect.Effect<{ readonly database: string; readonly applied: ReadonlyArray<string> }, Problem.Problem>
}

/**
 * Where commands hear the user ask to stop the run they execute (Ctrl-C, SIGTERM), and how to make
 * such a signal: see `commands/Interrupt.ts`.
 *
 * @since 0.1.0
 */
export { make as makeStop, type Signal as StopSignal, Stop } from "./commands/Interrupt.ts"

/**
 * The exit codes of `ripple`.
 *
 * @since 0.1.0
 */
export const exitCodes = Problem.ExitCode

/**
 * The version `ripple --version` prints.
 *
 * @since 0.1.0
 */
export const version = "0.1.0"


/**
 * Builds the command tree over a backend.
 *
 * @since 0.1.0
 */
export const make = (backend: Backend) => {
  const session = Session.make(backend)
  return Session.root.pipe(Command.withSubcommands([
    Run.command(session),
    PlanCommand.command(session),
    Rerun.command(session),
    RunsCommand.command(session),
    Show.command(session),
    Signal.command(session),
    Approve.command(session),
    Pause.command(session),
    Resume.command(session),
    Cancel.command(session),
    Versions.command(session),
    WorkerCommand.command(session),
    StudioCommand.command(session),
    Migrate.command(session)
  ]))
}

// Paths (the default data directory, a workflow file) resolve against the current directory:
// deleted under the shell, `process.cwd()` throws, and every command died with "uv_cwd".
const checkCwd = Effect.suspend(() => {
  try {
    process.cwd()
    return Effect.void
  } catch (error) {
    return Effect.fail(Problem.badInput(
      `the current directory no longer exists (it was deleted or moved): ${(error as Error).message}`,
      "cd to an existing directory, then run the command again"
    ))
  }
})

/**
 * Runs the command tree on `args` (without the `node` and script paths) and returns the exit code.
 * Problems are printed on stderr; usage errors print the command's help and exit 2.
 *
 * @since 0.1.0
 */
export const main = (backend: Backend) => {
  const command = make(backend)
  const runWith = Command.runWith(command, { version })
  return (args: ReadonlyArray<string>) =>
    Effect.andThen(checkCwd, runWith(args)).pipe(
      Effect.as(Problem.ExitCode.completed as number),
      Effect.catch((error): Effect.Effect<number> => {
        if (error instanceof Problem.Problem) {
          return error.message === "" ? Effect.succeed(error.code) : Effect.as(Console.error(`ripple: ${error.message}`), error.code)
        }
        if (CliError.isCliError(error) && error._tag === "ShowHelp") {
          if (error.errors.length === 0) return Effect.succeed(Problem.ExitCode.completed)
          const usage = Problem.usage(error.commandPath, error.errors)
          return Effect.as(Console.error(`ripple: ${usage.message}`), usage.code)
        }
        return Effect.succeed(Problem.ExitCode.badInput)
      })
    )
}
