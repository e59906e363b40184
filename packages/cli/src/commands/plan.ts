/**
 * `ripple plan <workflow> --from <block> [--to <block>]`: what a re-run would re-execute and reuse, and why.
 *
 * @since 0.1.0
 */
import { Plan } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import * as Source from "../Source.ts"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { print } from "./Output.ts"
import { requirePrior } from "./rerun.ts"
import type { Session } from "./Session.ts"

const formats = ["text", "json", "mermaid", "dot"] as const

const render = (plan: Plan.Plan, format: Exclude<(typeof formats)[number], "json">): string => {
  switch (format) {
    case "text":
      return Plan.explain(plan)
    case "mermaid":
      return Plan.toMermaid(plan)
    case "dot":
      return Plan.toDot(plan)
  }
}

/**
 * The `plan` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("plan", {
    workflow: Flags.workflow,
    from: Flags.from,
    run: Flags.priorRun,
    input: Flags.changedInput,
    to: Flags.to,
    pin: Flags.pin,
    format: Flag.Literals("format", formats).pipe(Flag.withDescription("text, json (one JSON document), mermaid or dot"), Flag.withDefault("text"))
  }, ({ format, from, input, pin, run, to, workflow }) =>
    Effect.gen(function*() {
      const source = yield* Source.load(workflow)
      // Before the prior run is looked up: a workflow no run could execute has nothing to plan.
      yield* Source.checkExecutable(source)
      const { from: target, to: destination } = yield* Flags.checkFromTo(source, from, to)
      const pins = yield* Flags.parsePins(pin)
      const prior = Flags.sourceRun(run)
      const changed = yield* Flags.parseChangedInput(input)
      const planned = yield* session.withRuns(source.handlers, (runs, store) =>
        Effect.andThen(
          requirePrior(store, source, prior),
          runs.plan(source.workflow, { target, run: prior, input: changed, to: destination, pins }).pipe(
            Effect.mapError((error) => Problem.fromRunsError(source.file, error, source.workflow))
          )
        ), { existing: true })
      if (format !== "json") yield* print(render(planned, format))
      return { code: 0, json: Plan.toJson(planned) }
    }).pipe((body) => Output.report(format === "json" ? "json" : "text", body))).pipe(Command.withDescription("Show what a re-run from a block would re-execute and reuse, and why (writes nothing)"))
