/**
 * `ripple run <workflow>`: runs a workflow from scratch here, or queues it for workers.
 *
 * @since 0.1.0
 */
import { Workflow } from "@ripple/core"
import { Runs } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Command from "effect/cli/Command"
import * as Problem from "../Problem.ts"
import * as Source from "../Source.ts"
import * as Flags from "./Flags.ts"
import * as Follow from "./Follow.ts"
import * as Output from "./Output.ts"
import { print } from "./Output.ts"
import { databaseOptions, type Session } from "./Session.ts"

/**
 * The `run` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("run", {
    workflow: Flags.workflow,
    input: Flags.input,
    queue: Flags.queue("Store the run for `ripple worker` processes instead of executing it here"),
    to: Flags.to,
    pin: Flags.pin,
    ...Output.flags
  }, ({ input, pin, queue, to, workflow, ...output }) =>
    Output.report(output.format, Effect.gen(function*() {
      const source = yield* Source.load(workflow)
      const destination = yield* Flags.checkTo(source, to)
      const pins = yield* Flags.parsePins(pin)
      const parsed = yield* Flags.parseInput(Option.getOrUndefined(input))
      const checked = Workflow.inputsFor(source.workflow, parsed)
      if (Result.isFailure(checked)) {
        return yield* Problem.fromRunsError(source.file, new Runs.InvalidInput({ workflowId: source.workflow.id, cause: checked.failure }), source.workflow)
      }
      // Checked before the database is opened (a refused run, here or queued, must not create an
      // embedded one) and named after the file; `start` or `submit` checks the same again, as it
      // does for every caller.
      const limits = yield* Source.limits
      yield* Effect.mapError(
        Runs.admit(source.workflow, parsed, { to: destination, pins, limits }),
        (error) => Problem.fromRunsError(source.file, error, source.workflow)
      )
      if (queue) {
        yield* Source.checkExecutable(source)
        // Stored with the declared defaults applied, as `Runs.start` would.
        const runId = yield* session.backend.submit(yield* databaseOptions, source.workflow, checked.success, { to: destination, pins, limits })
        yield* print(`run ${runId} queued for \`ripple worker\``)
        return { code: Problem.ExitCode.completed, json: { runId, workflowId: source.workflow.id, status: "pending", queued: true } }
      }
      return yield* Follow.execute(session, source, output, (runs) => runs.start(source.workflow, parsed, { to: destination, pins }))
    }))).pipe(Command.withDescription("Run a workflow from scratch, printing each block as it runs"))
