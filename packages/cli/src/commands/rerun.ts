/**
 * `ripple rerun <workflow> --from <block> [--to <block>]`: re-runs a workflow from a block (or to one), reusing every prior
 * output that is still valid.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { RunStore } from "@ripple/runtime"
import * as Command from "effect/cli/Command"
import * as Problem from "../Problem.ts"
import * as Source from "../Source.ts"
import * as Flags from "./Flags.ts"
import * as Follow from "./Follow.ts"
import * as Output from "./Output.ts"
import type { Session } from "./Session.ts"

/**
 * Refuses a re-run with nothing to reuse: `run` (or, without it, the latest finished run of the
 * workflow) must exist and be a run of the source's workflow.
 *
 * @since 0.1.0
 */
export const requirePrior = (store: RunStore.RunStore["Service"], source: Source.Source, run: string | undefined): Effect.Effect<void, Problem.Problem> =>
  run !== undefined
    ? Effect.flatMap(store.getRun(run).pipe(Effect.mapError(() => Problem.unknownRun(run))), (found) =>
      found.workflowId === source.workflow.id ? Effect.void : Effect.fail(Problem.badInput(
        `run ${run} belongs to workflow ${found.workflowId}, not to ${source.workflow.id} (${source.file})`,
        `pass a run of ${source.workflow.id} (ripple runs --workflow ${source.workflow.id}), or re-run ${found.workflowId} from its own file`
      )))
    : store.latestSnapshot(source.workflow.id).pipe(
      Effect.orElseSucceed(() => Option.none()),
      Effect.flatMap((latest) =>
        Option.isSome(latest) ? Effect.void : Effect.fail(Problem.badInput(
          `no finished run of workflow ${source.workflow.id} to re-use`,
          `run it first: ripple run ${source.file}`
        ))
      )
    )

/**
 * The `rerun` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("rerun", {
    workflow: Flags.workflow,
    from: Flags.from,
    run: Flags.priorRun,
    input: Flags.changedInput,
    to: Flags.to,
    pin: Flags.pin,
    ...Output.flags
  }, ({ from, input, pin, run, to, workflow, ...output }) =>
    Output.report(output.format, Effect.gen(function*() {
      const source = yield* Source.load(workflow)
      const { from: target, to: destination } = yield* Flags.checkFromTo(source, from, to)
      const pins = yield* Flags.parsePins(pin)
      const prior = Flags.sourceRun(run)
      const changed = yield* Flags.parseChangedInput(input)
      // A re-run needs a prior run: a database without one is refused, not created.
      return yield* Follow.execute(session, source, { ...output, existing: true }, (runs, store) =>
        Effect.andThen(requirePrior(store, source, prior), runs.runFrom(source.workflow, { target, run: prior, input: changed, to: destination, pins })))
    }))).pipe(Command.withDescription("Re-run a workflow from a block, reusing every prior output that is still valid"))
