/**
 * The studio server: the API (`Api`) and the app (`Assets`) on a Node HTTP server, bound to
 * 127.0.0.1 unless told otherwise.
 *
 * **Details**
 *
 * The server is built over services the caller provides: `Runs` (which executes what the page
 * starts, approves or resumes, in this process, under the same leases as the CLI), `RunStore` and
 * `RunIndex`. Closing the layer closes the server, and with `Runs`, interrupts the executions it
 * owns without cancelling them: `ripple resume` (or another studio, a worker) continues them.
 *
 * **Example**
 *
 * ```ts
 * Layer.launch(Studio.layer({ port: 4400 }).pipe(
 *   Layer.provide(Runs.layer()),
 *   Layer.provideMerge(Layer.mergeAll(SqlRunStore.layer, RunIndex.layerSql, Handler.layerBuiltins)),
 *   Layer.provide(Database.layerFromConfig())
 * ))
 * ```
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { Runs, RunStore } from "@ripple/runtime"
import * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServer from "effect/http/HttpServer"
import type * as HttpServerError from "effect/http/HttpServerError"
import * as Http from "node:http"
import * as Api from "./Api.ts"
import * as Assets from "./Assets.ts"
import type { RunIndex } from "./RunIndex.ts"

/**
 * Options of the server.
 *
 * @since 0.1.0
 */
export interface Options extends Api.Options {
  /** The address to listen on (default `127.0.0.1`: nothing is reachable from another host). */
  readonly host?: string | undefined
  /** The port (default 4400; 0 picks a free one). */
  readonly port?: number | undefined
}

/**
 * The default port.
 *
 * @since 0.1.0
 */
export const defaultPort = 4400

/**
 * Every route of the studio, for any `HttpRouter` (the server's, or a test's).
 *
 * @since 0.1.0
 */
export const routes = (options: Api.Options = {}) => Layer.mergeAll(Api.layer(options), Assets.layer)

// The names a request may address: the loopback ones, and the host it listens on (any name for
// every interface, which is reached by the machine's addresses and names).
const hostsFor = (host: string | undefined): Api.Options["hosts"] => {
  if (host === undefined) return Api.loopback
  if (host === "0.0.0.0" || host === "::") return "any"
  const name = host.includes(":") ? `[${host}]` : host
  return Api.loopback.includes(name) ? Api.loopback : [...Api.loopback, name]
}

/**
 * The Node HTTP server bound to `host:port`, answering 503 until routes are served on it
 * (`serve`): bound first, so that a caller can refuse a bad address before it opens a database.
 *
 * @since 0.1.0
 */
export const listen = (options: Pick<Options, "host" | "port"> = {}) =>
  NodeHttpServer.layer(() => Http.createServer(), {
    host: options.host ?? "127.0.0.1",
    port: options.port ?? defaultPort,
    // A page keeps its event stream open: closing waits a second for requests, not 20 s for the streams.
    gracefulShutdownTimeout: "1 second"
  })

/**
 * The studio's routes served on the `HttpServer` provided (`listen`). It answers requests
 * addressed to the loopback names or to `host` (any, for `0.0.0.0` and `::`), unless `hosts` says
 * otherwise.
 *
 * @since 0.1.0
 */
export const serve = (
  options: Options = {}
) => HttpRouter.serve(routes({ ...options, hosts: options.hosts ?? hostsFor(options.host) }), { disableLogger: true, disableListenLog: true })

/**
 * The studio listening on `host:port`; the `HttpServer` it provides tells the address. It answers
 * requests addressed to the loopback names or to `host` (any, for `0.0.0.0` and `::`), unless
 * `hosts` says otherwise.
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, Runs.Runs | RunStore.RunStore | RunIndex> =>
  serve(options).pipe(Layer.provideMerge(listen(options)))
