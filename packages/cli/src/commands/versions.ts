/**
 * `ripple versions <workflow>`: the stored versions of a workflow (what `child` blocks may name).
 *
 * @since 0.1.0
 */
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import { existsSync, statSync } from "node:fs"
import * as Source from "../Source.ts"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { print, table } from "./Output.ts"
import { databaseOptions, type Session } from "./Session.ts"

// A workflow file names its workflow (and its current version); anything else is a workflow id.
const named = (workflow: string) =>
  existsSync(workflow) && statSync(workflow).isFile()
    ? Effect.map(Source.load(workflow), (source) => ({ workflowId: source.workflow.id, current: RunStore.versionOf(source.workflow) }))
    : Effect.succeed({ workflowId: workflow, current: undefined })

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
