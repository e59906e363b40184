/**
 * `ripple approve <run> <node>`: decides a paused approval (or rejects it with `--reject`).
 *
 * @since 0.1.0
 */
import type { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import * as Flags from "./Flags.ts"
import * as Follow from "./Follow.ts"
import * as Output from "./Output.ts"
import type { Session } from "./Session.ts"

// A rejection carries a reason, not a payload: a --payload beside --reject was dropped unsaid,
// and an empty reason (`--reject "$REASON"` with the variable unset) stored as the rejection's.
const checkReject = (reject: Option.Option<string>, payload: Option.Option<string>): Effect.Effect<void, Problem.Problem> => {
  if (Option.isNone(reject)) return Effect.void
  if (Option.isSome(payload)) {
    return Effect.fail(Problem.badInput(
      "--reject and --payload were both given: a rejection carries a reason, not a payload",
      "pass --payload to approve, or --reject <reason> to reject"
    ))
  }
  return reject.value.trim() === ""
    ? Effect.fail(Problem.badInput("--reject is empty", "give the reason for the rejection: --reject \"<reason>\""))
    : Effect.void
}

/**
 * The `approve` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("approve", {
    run: Flags.run,
    node: Argument.String("node").pipe(Argument.withDescription("The paused approval node")),
    payload: Flags.payload,
    reject: Flag.String("reject").pipe(Flag.withDescription("Reject instead, with this reason (the node fails)"), Flag.optional),
    handlers: Flags.handlers,
    wait: Flags.wait,
    ...Output.flags
  }, ({ node, reject, run, ...flags }) =>
    Output.report(flags.format, Effect.andThen(checkReject(reject, flags.payload), Follow.deliver(session, { run, ...flags }, {
      what: `the decision on ${JSON.stringify(node)}`,
      command: Option.match(reject, {
        onNone: () => `ripple approve ${run} ${node}`,
        onSome: () => `ripple approve ${run} ${node} --reject <reason>`
      }),
      awaits: (found: RunStore.Run) =>
        found.status === "paused" && Object.values(found.machine.context.dormant).some((r) => r._tag === "Approval" && r.node === node),
      refused: (status) =>
        Problem.badInput(
          `run ${run} (${status}) has no approval ${JSON.stringify(node)} waiting`,
          `see what the run awaits with \`ripple show ${run}\``
        ),
      send: (runs, payload) =>
        Option.match(reject, {
          onNone: () => runs.approve(run, node, payload),
          onSome: (reason) => runs.reject(run, node, reason)
        })
    })))).pipe(Command.withDescription("Approve (or --reject) a paused approval block; the run continues here"))
