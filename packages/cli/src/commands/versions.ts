/**
 * `ripple versions <workflow>`: the stored versions of a workflow (what `child` blocks may name).
 *
 * @since 0.1.0
 */
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Problem from "../Problem.ts"
import * as Source from "../Source.ts"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { print, table } from "./Output.ts"
import { databaseOptions, type Session } from "./Session.ts"

// A name with a path separator or a workflow file's extension is meant as a file. A workflow id
// may look like one too: a missing file is refused only when no workflow has that id either.
const pathLike = (name: string) => /[\\/]/.test(name) || /\.(json|m?js)$/i.test(name)

// What the argument names: a workflow file (its workflow, and its current version), a path that is
// no file (a folder, a device: refused before the database is opened), or a workflow id.
const named = (workflow: string) =>
  Effect.suspend((): Effect.Effect<{ readonly workflowId: string; readonly current: string | undefined }, Problem.Problem> => {
    // A name stat cannot take (too long for a path) is no file, but may be an id.
    const stat = Source.statOf(workflow)
    return stat instanceof Error
      ? Effect.succeed({ workflowId: workflow, current: undefined })
      : stat?.isFile() === true || (stat !== undefined && pathLike(workflow))
      ? Effect.map(Source.load(workflow), (source) => ({ workflowId: source.workflow.id, current: RunStore.versionOf(source.workflow) }))
      : Effect.succeed({ workflowId: workflow, current: undefined })
  })

// A path-like name with no stored versions: the file it names is missing (`Source.existing` says
// how), and no workflow has it as its id.
const missing = (workflow: string) =>
  Effect.mapError(Source.existing(workflow, "workflow file"), (problem) =>
    Problem.badInput(
      `${problem.problem}; no workflow has the id ${JSON.stringify(workflow)} either`,
      `${problem.fix}, or pass a workflow id (see \`ripple runs\`)`
    ))

/**
 * The `versions` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("versions", {
    workflow: Argument.String("workflow").pipe(Argument.withDescription("A workflow id, or a workflow file (its id; its current version is marked)")),
    format: Output.format
  }, ({ format, workflow }) =>
    Output.report(
      format,
      Effect.gen(function*() {
        yield* Flags.checkWorkflowId(workflow, "the workflow")
        const { current, workflowId } = yield* named(workflow)
        const listed = yield* session.backend.versions({ ...(yield* databaseOptions), mustExist: true }, workflowId)
        if (listed.length === 0 && current === undefined && pathLike(workflow)) yield* missing(workflow)
        const at = (ms: number | undefined) => ms === undefined ? "-" : new Date(ms).toISOString()
        if (listed.length === 0) yield* print(`no stored versions of workflow ${workflowId}`)
        else {
          yield* print(table([
            ["VERSION", "CREATED", "RUNS", "LAST RUN", ""],
            ...listed.map((v) => [v.version, at(v.createdAt), String(v.runs), at(v.lastRunAt), v.version === current ? "(this file)" : ""])
          ]))
        }
        if (current !== undefined && !listed.some((v) => v.version === current)) {
          yield* print(`${workflow} is version ${current}, not stored yet (it is stored when it runs)`)
        }
        return { code: 0, json: { workflowId, current, versions: listed } }
      }),
      { answer: true }
    )).pipe(Command.withDescription("List the stored versions of a workflow (a child block's `workflow` may name one), newest first"))
