/**
 * `ripple worker`: executes queued, crashed and woken runs until stopped.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import * as Progress from "../Progress.ts"
import * as Source from "../Source.ts"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { style } from "./Output.ts"
import { databaseOptions, type Session } from "./Session.ts"

/**
 * The `worker` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("worker", {
    concurrency: Flag.Int("concurrency").pipe(Flag.withDescription("Runs executed at once (default 16)"), Flag.optional),
    handlers: Flags.handlers,
    format: Output.format
  }, ({ concurrency, format, handlers }) =>
    Effect.gen(function*() {
      // 0 would claim nothing and wait forever: refused before a database is opened.
      if (Option.isSome(concurrency) && concurrency.value < 1) {
        return yield* Problem.badInput(`--concurrency ${concurrency.value} is not a positive number`, "pass the number of runs to execute at once, at least 1 (default 16)")
      }
      const layer = yield* Flags.handlersOf(handlers)
      const options = yield* databaseOptions
      const progress = Progress.follower(style())
      const limits = yield* Source.limits
      yield* session.backend.work(options, layer, {
        concurrency: Option.getOrUndefined(concurrency),
        limits,
        announce: (text) => (format === "json" ? process.stderr : process.stdout).write(`${text}\n`),
        // A worker never ends: under --format json, one JSON document per event and line.
        publish: format === "json" ? (event) => process.stdout.write(`${JSON.stringify(event)}\n`) : (event) => {
          const text = event._tag === "RunFinished" ? `run ${event.runId} ${event.status}` : progress.line(event)
          if (text !== undefined) process.stdout.write(`${event._tag.startsWith("Node") ? `${event.runId.slice(0, 8)} ` : ""}${text}\n`)
        }
      })
    })).pipe(Command.withDescription("Execute queued, crashed and woken runs until stopped (Ctrl-C); run many on one PostgreSQL"))
