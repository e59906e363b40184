/**
 * `ripple runs`: the stored runs, newest first.
 *
 * @since 0.1.0
 */
import { RunStatus } from "@ripple/runtime"
import type { RunSummary } from "../Cli.ts"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { print, table } from "./Output.ts"
import { databaseOptions, type Session } from "./Session.ts"

// A run whose cancel is pending (its owner ends it before its next block) says so.
const statusOf = (run: RunSummary) => run.cancelRequestedAt === undefined ? run.status : `${run.status}, cancel requested`

/**
 * The `runs` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("runs", {
    workflow: Flag.String("workflow").pipe(Flag.withDescription("Only runs of this workflow id"), Flag.optional),
    status: Flag.Literals("status", RunStatus.statuses).pipe(Flag.withDescription("Only runs in this status"), Flag.optional),
    format: Output.format
  }, ({ format, status, workflow }) =>
    Output.report(
      format,
      Effect.gen(function*() {
        yield* Flags.checkWorkflowId(Option.getOrUndefined(workflow), "--workflow")
        const listed = yield* session.backend.list({ ...(yield* databaseOptions), mustExist: true }, {
          workflowId: Option.getOrUndefined(workflow),
          status: Option.getOrUndefined(status)
        })
        if (listed.length === 0) yield* print("no runs")
        else {
          yield* print(table([
            ["RUN", "WORKFLOW", "STATUS", "MODE", "FROM", "CREATED"],
            ...listed.map((r) => [r.id, r.workflowId, statusOf(r), r.mode, r.target ?? "-", new Date(r.createdAt).toISOString()])
          ]))
        }
        return { code: 0, json: { runs: listed } }
      }),
      { answer: true }
    )).pipe(Command.withDescription("List runs, newest first"))
