/**
 * `ripple cancel <run>`.
 *
 * @since 0.1.0
 */
import { Handler, RunStatus } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Command from "effect/cli/Command"
import * as Problem from "../Problem.ts"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { print } from "./Output.ts"
import type { Session } from "./Session.ts"

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
        const { status } = yield* runs.cancel(run).pipe(Effect.mapError(() => Problem.unknownRun(run)))
        yield* print(`run ${run}: ${before.status} -> ${status}`)
        return { code: 0, json: { runId: run, before: before.status, status } }
      })))).pipe(Command.withDescription("Cancel a run that has not ended"))
