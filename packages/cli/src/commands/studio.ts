/**
 * `ripple studio`: serves the local web inspector (`@ripple/studio`) over the database the other
 * commands use, until interrupted (Ctrl-C).
 *
 * @since 0.1.0
 */
import { Runs } from "@ripple/runtime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import * as Source from "../Source.ts"
import * as Flags from "./Flags.ts"
import { databaseOptions, runsOptions, type Session } from "./Session.ts"

/**
 * The studio's default port, `Studio.defaultPort`: stated here so that the command tree (and
 * `--help`) does not load the studio, an HTTP server with websockets, that only this command runs.
 * tests/studio/command.test.ts checks that the two agree.
 *
 * @since 0.1.0
 */
export const defaultPort = 4400

// An address the machine does not have (or a name that resolves to none) is the host's fault, not the port's.
const listenFix = (cause: unknown): string => {
  const code = (cause as { readonly code?: unknown } | undefined)?.code
  return code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN"
    ? "pass a --host this machine has: 127.0.0.1 (only this machine), 0.0.0.0 (every interface) or one of its addresses"
    : "pick another --port (or stop what uses it)"
}

const cannotListen = (host: string, port: number, cause: unknown): Problem.Problem =>
  Problem.badInput(`cannot listen on ${host}:${port}: ${cause instanceof Error ? cause.message : String(cause)}`, listenFix(cause))

/**
 * The `studio` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("studio", {
    host: Flag.String("host").pipe(
      Flag.withDescription("The address to listen on (default 127.0.0.1: only this machine; 0.0.0.0 opens it to the network)"),
      Flag.withDefault("127.0.0.1")
    ),
    port: Flag.Int("port").pipe(Flag.withDescription(`The port (default ${defaultPort}; 0 picks a free one)`), Flag.withDefault(defaultPort)),
    handlers: Flags.handlers
  }, ({ handlers, host, port }) =>
    Effect.gen(function*() {
      if (port < 0 || port > 65535) return yield* Problem.badInput(`--port ${port} is not a port`, "give a port from 1 to 65535, or 0 for a free one")
      // Node listens on every interface for an empty host: an unset `--host "$HOST"` would open
      // the studio to the network.
      if (host.trim() === "") {
        return yield* Problem.badInput("--host is empty", "pass 127.0.0.1 (only this machine), 0.0.0.0 (every interface) or one of its addresses; or leave --host out")
      }
      const registry = yield* Flags.handlersOf(handlers)
      const options = yield* databaseOptions
      const limits = yield* Source.limits
      const [{ Studio }, HttpServer] = yield* Effect.promise(() => Promise.all([import("@ripple/studio"), import("effect/http/HttpServer")]))
      // Bound before the database is opened (which creates an embedded one's data directory): an
      // address the machine lacks, or a port in use, is bad input and leaves nothing behind. The
      // server keeps the address, answering 503 until the routes are served on it.
      const server = Studio.serve({ host, port }).pipe(
        Layer.provide(Layer.orDie(Runs.layer({ limits, ...runsOptions }))),
        Layer.provideMerge(Layer.merge(session.backend.browse(options), registry)),
        Layer.provideMerge(Studio.listen({ host, port }))
      )
      return yield* Effect.scoped(Effect.gen(function*() {
        const address = yield* HttpServer.addressFormattedWith((url) => Effect.succeed(url))
        yield* Console.log(`ripple studio: ${address}/ (Ctrl-C stops)`)
        return yield* Effect.never
      }).pipe(
        Effect.provide(server),
        Effect.catchTag("ServeError", (error) =>
          Effect.fail(cannotListen(host, port, error.cause)))
      ))
    })).pipe(Command.withDescription("Serve the studio: a local web page of runs, their graphs and plans (approve, signal, re-run from a block)"))
