/**
 * `ripple cancel <run>`: cancels a run that has not ended and says how (`Runs.Cancellation`).
 *
 * @since 0.1.0
 */
import { Handler, type Runs, RunStatus } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Command from "effect/cli/Command"
import * as Problem from "../Problem.ts"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { print } from "./Output.ts"
import type { Session } from "./Session.ts"

// How a cancellation ended, in words: who ended the run, or why it has not ended yet.
const describe = (cancellation: Runs.Cancellation): string => {
  switch (cancellation._tag) {
    case "Cancelled":
      return "cancelled here"
    case "Acknowledged":
      return cancellation.status === "cancelled"
        ? `cancelled by its owner ${cancellation.owner}`
        : `its owner ${cancellation.owner} ended it ${cancellation.status} before taking the request`
    case "Expired":
      return `its owner ${cancellation.owner} stopped renewing its lease; cancelled here`
    case "Unanswered":
      return `its owner ${cancellation.owner} holds its lease (renewed past ${new Date(cancellation.waitedUntil).toISOString()}) ` +
        "and has not ended it yet: the request stays recorded, and the owner ends the run before its next block"
  }
}

// 0 once the run ended (whoever ended it), 3 while its owner has not answered (the run has not
// ended; the request stays recorded).
const exitCode = (cancellation: Runs.Cancellation): number =>
  cancellation._tag === "Unanswered" ? Problem.ExitCode.dormant : Problem.ExitCode.completed

/**
 * The `cancel` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("cancel", { run: Flags.run, format: Output.format }, ({ format, run }) =>
    Output.report(format, session.withRuns(Handler.layerBuiltins, (runs, store) =>
      Effect.gen(function*() {
        const before = yield* store.getRun(run).pipe(Effect.mapError(() => Problem.unknownRun(run)))
        if (!RunStatus.isAllowed(before.status, "cancelled")) {
          return yield* Problem.badInput(`run ${run} already ended (${before.status}); nothing to cancel`, "cancel a pending, running, suspended or paused run")
        }
        const cancellation = yield* runs.cancel(run).pipe(Effect.mapError(() => Problem.unknownRun(run)))
        const { status } = cancellation
        yield* print(
          cancellation._tag === "Unanswered"
            ? `run ${run} (${status}): cancel requested; ${describe(cancellation)}`
            : `run ${run}: ${before.status} -> ${status} (${describe(cancellation)})`
        )
        return {
          code: exitCode(cancellation),
          json: {
            runId: run,
            before: before.status,
            status,
            cancellation: cancellation._tag,
            ...(cancellation._tag === "Cancelled" ? {} : { owner: cancellation.owner }),
            ...(cancellation._tag === "Unanswered" ? { waitedUntil: cancellation.waitedUntil } : {})
          }
        }
      }), { existing: true }))).pipe(Command.withDescription(
        "Cancel a run that has not ended. Exit 0 once it ended: cancelled here (nobody executes it), by its owner " +
          "(the process executing it, before its next block), or here after the owner's lease expired; exit 3 when " +
          "the owner keeps its lease without ending the run (the request stays recorded); exit 2 when the run had already ended"
      ))
