/**
 * `ripple pause <run>`: parks a run at its next node boundary, wherever it executes.
 *
 * @since 0.1.0
 */
import { Handler, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import * as Flags from "./Flags.ts"
import * as Follow from "./Follow.ts"
import { print } from "./Output.ts"
import type { Session } from "./Session.ts"

/**
 * The `pause` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("pause", {
    run: Flags.run,
    wait: Flag.Int("wait").pipe(
      Flag.withDescription("Seconds to wait for the run to park at its next node boundary (default 30; 0: do not wait)"),
      Flag.withDefault(30)
    )
  }, ({ run, wait }) =>
    Effect.gen(function*() {
      yield* Flags.checkWait(wait)
      const code = yield* session.withRuns(Handler.layerBuiltins, (runs, store) =>
        Effect.gen(function*() {
          const before = yield* store.getRun(run)
          if (before.status === "paused") {
            yield* print(`run ${run} is paused already`)
            return Problem.ExitCode.dormant
          }
          if (!RunStore.pausable.includes(before.status)) {
            return yield* Problem.badInput(
              `run ${run} already ended (${before.status}); nothing to pause`,
              "pause a pending, running or suspended run"
            )
          }
          // Stored: whichever process executes the run (`ripple run`, a worker) parks it.
          yield* runs.pause(run)
          if (before.status === "suspended") {
            yield* print(`run ${run} is suspended; pause requested: it pauses when it wakes`)
            return Problem.ExitCode.dormant
          }
          yield* print(`run ${run} is ${before.status}; pause requested: it parks at its next node boundary (running blocks finish)`)
          const deadline = Date.now() + wait * 1_000
          let now = before
          while ((now.status === "running" || now.status === "pending") && Date.now() < deadline) {
            yield* Effect.sleep(100)
            now = yield* store.getRun(run)
          }
          if (now.status === "running" || now.status === "pending") {
            yield* print(
              `run ${run} is still ${now.status} after ${wait}s; the request is kept. If no process executes it any more, \`ripple resume ${run}\` continues it and it pauses at once`
            )
            return Problem.ExitCode.completed
          }
          yield* print(`run ${run}: ${before.status} -> ${now.status}`)
          if (now.status === "paused" || now.status === "suspended") yield* Follow.printAwaiting(runs, run)
          return Follow.exitCodeOf(now.status)
        }).pipe(Effect.mapError((error) => error instanceof Problem.Problem ? error : Problem.fromStoreError(run, error))))
      return yield* Follow.ended(code)
    })).pipe(Command.withDescription("Pause a run wherever it executes: it parks at its next node boundary; `ripple resume` continues it"))
