/**
 * What the `ripple` executable runs (`bin.ts` imports it): the command tree of `Cli` over the SQL
 * backend, on Node.
 *
 * **Details**
 *
 * Ctrl-C and SIGTERM: the first one, while the command follows a run it executes, stops that run (`Cli.Stop`:
 * nothing more starts, running blocks finish, the run is parked and the command exits 130 naming
 * the command that resumes it); otherwise it interrupts the command. A second one exits at once,
 * leaving the run resumable from its journal.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"
import * as Cli from "./Cli.ts"
import * as Platform from "./Platform.ts"
import * as Store from "./Store.ts"

const stop = Cli.makeStop()

const fiber = Effect.runFork(
  Cli.main(Store.backend)(process.argv.slice(2)).pipe(
    Effect.provide(Platform.layer),
    Effect.provideService(Cli.Stop, stop.signal)
  )
)

// Keeps the process alive while the command waits on nothing but a fiber.
const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
let signalled = 0

const onSignal = () => {
  signalled++
  if (signalled > 1) process.exit(Cli.exitCodes.interrupted)
  if (stop.listening()) stop.stop()
  else fiber.interruptUnsafe(fiber.id)
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)

fiber.addObserver((exit) => {
  clearInterval(keepAlive)
  process.removeListener("SIGINT", onSignal)
  process.removeListener("SIGTERM", onSignal)
  // `main` turns every expected outcome into an exit code; anything else is a defect (exit 1, its
  // cause printed), an interruption 130.
  const teardown = (code: number) => {
    if (signalled > 0 || code !== 0) process.exit(code)
  }
  if (Exit.isSuccess(exit)) return teardown(exit.value)
  // Nothing else prints a defect: without this, the command ended with exit 1 and not a word.
  if (!Cause.hasInterruptsOnly(exit.cause)) {
    process.stderr.write(`ripple: internal error (a bug in Ripple; please report it with what follows)\n${Cause.pretty(exit.cause)}\n`)
  }
  Runtime.defaultTeardown(exit, teardown)
})
