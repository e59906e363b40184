/**
 * `ripple pause <run>`: parks a run at its next node boundary, wherever it executes.
 *
 * @since 0.1.0
 */
import { Handler, type RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import type * as Awaiting from "./Awaiting.ts"
import * as Flags from "./Flags.ts"
import * as Follow from "./Follow.ts"
import * as Output from "./Output.ts"
import { print } from "./Output.ts"
import { continuation, type Session } from "./Session.ts"

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
    ),
    format: Output.format
  }, ({ format, run, wait }) =>
    Output.report(
      format,
      Effect.andThen(
        Flags.checkWait(wait),
        session.withRuns(Handler.layerBuiltins, (runs, store) =>
          Effect.gen(function*() {
            const before = yield* store.getRun(run)
            const report = (status: RunStatus.Status, code: number, requested: boolean, awaiting: ReadonlyArray<Awaiting.Awaited> = []) => ({
              code,
              json: { runId: run, before: before.status, status, requested, awaiting }
            })
            if (before.status === "paused") {
              yield* print(`run ${run} is paused already`)
              return report("paused", Problem.ExitCode.dormant, false)
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
              return report("suspended", Problem.ExitCode.dormant, true)
            }
            yield* print(`run ${run} is ${before.status}; pause requested: it parks at its next node boundary (running blocks finish)`)
            const deadline = Date.now() + wait * 1_000
            const now = yield* Effect.scoped(Effect.gen(function*() {
              // Subscribed before reading again: a change after the read is not missed.
              const next = yield* RunStore.changes(store, run)
              let now = yield* store.getRun(run)
              while ((now.status === "running" || now.status === "pending") && Date.now() < deadline) {
                yield* Effect.raceFirst(next, Effect.sleep(Math.max(0, deadline - Date.now())))
                now = yield* store.getRun(run)
              }
              return now
            }))
            if (now.status === "running" || now.status === "pending") {
              yield* print(
                `run ${run} is still ${now.status} after ${wait}s; the request is kept. If no process executes it any more, \`ripple resume ${run}\` continues it and it pauses at once`
              )
              return report(now.status, Problem.ExitCode.completed, true)
            }
            yield* print(`run ${run}: ${before.status} -> ${now.status}`)
            const awaiting = yield* Follow.printAwaiting(store, run, false, yield* continuation)
            return report(now.status, Follow.exitCodeOf(now.status), true, awaiting)
          }).pipe(Effect.mapError((error) => error instanceof Problem.Problem ? error : Problem.fromStoreError(run, error))), { existing: true })
      )
    )).pipe(Command.withDescription("Pause a run wherever it executes: it parks at its next node boundary; `ripple resume` continues it"))
