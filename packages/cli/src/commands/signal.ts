/**
 * `ripple signal <run> <name>`: wakes the `wait` blocks awaiting a signal.
 *
 * @since 0.1.0
 */
import type { RunStore } from "@ripple/runtime"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Problem from "../Problem.ts"
import * as Flags from "./Flags.ts"
import * as Follow from "./Follow.ts"
import * as Output from "./Output.ts"
import type { Session } from "./Session.ts"

/**
 * The `signal` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("signal", {
    run: Flags.run,
    name: Argument.String("name").pipe(Argument.withDescription("The signal a `wait` block awaits")),
    payload: Flags.payload,
    handlers: Flags.handlers,
    wait: Flags.wait,
    ...Output.flags
  }, ({ name, run, ...flags }) =>
    Output.report(flags.format, Follow.deliver(session, { run, ...flags }, {
      what: `signal ${JSON.stringify(name)}`,
      command: `ripple signal ${run} ${name}`,
      awaits: (found: RunStore.Run) =>
        found.status === "suspended" && Object.values(found.machine.context.dormant).some((r) => r._tag === "Signal" && r.signal === name),
      refused: (status) =>
        Problem.badInput(
          `run ${run} (${status}) does not take signal ${JSON.stringify(name)}: no wait block awaits it, it was already delivered, or the run has ended`,
          `see what the run awaits with \`ripple show ${run}\``
        ),
      send: (runs, payload) => runs.signal(run, name, payload)
    }))).pipe(Command.withDescription("Send a signal to a run's `wait` blocks; a suspended run continues here"))
