/**
 * The studio's JSON API, as `HttpRouter` routes over the public `Runs` facade, the `RunStore` and
 * the `RunIndex`: what the page shows and every action it offers.
 *
 * **Details**
 *
 * - `GET /api/runs?workflow=&status=`: the runs, newest first (`RunList.Summary`: with
 *   `cancelRequestedAt` while a recorded cancel has not ended the run).
 * - `GET /api/runs/:run`: the run (status, diagnostics, what it is dormant on, children,
 *   compensations), its graph with each node's state (`Graph.paint`), its node instances
 *   (`Runs.nodes`) and observed outputs (`Runs.outputs`).
 * - `GET /api/runs/:run/nodes/:node`: the instances of one node or block (`Runs.node`).
 * - `GET /api/runs/:run/plan?from=<block>`: the run-from plan from a block against this run
 *   (`Runs.plan`, a dry run: it writes nothing), drawn on the run's graph (`Graph.planned`).
 * - `POST /api/runs` `{workflow, input?}`, `POST /api/runs/:run/rerun` `{from}`: start a run, or
 *   re-run this run's workflow version from a block reusing this run (`Runs.start`, `Runs.runFrom`).
 * - `POST /api/runs/:run/approve` `{node, payload?}`, `/reject` `{node, reason}`, `/signal`
 *   `{name, payload?}`, `/resume`, `/cancel`: the `Runs` operations the CLI uses, with the same
 *   ownership rules (a run another process owns gets the request recorded and its owner notified).
 * - `GET /api/compare?a=<run>&b=<run>`: two runs of one workflow, node by node (`Compare`).
 * - `GET /api/events`: server-sent events, one `data:` JSON document each: every `RunEvent` of the
 *   runs this process executes (`Runs.subscribe`), and `{"_tag": "RunsChanged"}` when the run list
 *   changed otherwise (another process, a worker), polled every `pollMs`.
 * - Anything wrong with a request is an RFC 9457 problem (`Problem`), never a stack.
 * - Only requests addressed to an allowed host (`Options.hosts`: this machine's loopback names by
 *   default) and sent by no other site's page (`Origin`) are served: `Forbidden` otherwise.
 *
 * @since 0.1.0
 */
import { Plan, Workflow } from "@ripple/core"
import { Runs, RunStatus, RunStore } from "@ripple/runtime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Compare from "./Compare.ts"
import * as Graph from "./Graph.ts"
import * as Problem from "./Problem.ts"
import { RunIndex } from "./RunIndex.ts"

type Json = Workflow.Json

/**
 * Options of the API.
 *
 * @since 0.1.0
 */
export interface Options {
  /** How often the event stream looks for run list changes made by other processes (default 2000). */
  readonly pollMs?: number | undefined
  /**
   * The host names a request may be addressed to (its `Host` header): default this machine's
   * loopback names (`localhost`, `127.0.0.1`, `[::1]`); `"any"` for a studio listening on every
   * interface.
   */
  readonly hosts?: ReadonlyArray<string> | "any" | undefined
}

/**
 * The loopback host names, which a request to a studio bound to 127.0.0.1 names.
 *
 * @since 0.1.0
 */
export const loopback: ReadonlyArray<string> = ["localhost", "127.0.0.1", "[::1]"]

// Any page the browser shows may send a simple POST to this port (a form, a no-cors fetch), and a
// DNS name rebound to 127.0.0.1 may even read the answers: the API serves only requests addressed
// to an allowed host, and from no page but its own (a browser names the page in `Origin`).
const guard = (hosts: ReadonlyArray<string> | "any") =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const host = request.headers.host
    if (host === undefined) return Effect.fail(new Problem.Forbidden({ reason: "the request names no Host" }))
    const hostname = URL.canParse(`http://${host}`) ? new URL(`http://${host}`).hostname : host
    if (hosts !== "any" && !hosts.includes(hostname)) {
      return Effect.fail(new Problem.Forbidden({ reason: `host ${host} is not one this studio serves (${hosts.join(", ")})` }))
    }
    const origin = request.headers.origin
    if (origin !== undefined && origin !== `http://${host}`) {
      return Effect.fail(new Problem.Forbidden({ reason: `a page of ${origin} may not use this studio` }))
    }
    return Effect.void
  })

/**
 * A JSON response, or the problem response of a failure; a defect is logged and answered with an
 * `Internal` problem (no stack leaves the server).
 *
 * @since 0.1.0
 */
export const respond = <R>(
  effect: Effect.Effect<unknown, Problem.Problem, R>,
  status = 200
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  effect.pipe(
    Effect.flatMap((body) => Effect.orDie(HttpServerResponse.json(body, { status }))),
    Effect.catchCause((cause) => {
      const failure = Cause.findError(cause)
      if (Result.isSuccess(failure)) return Effect.succeed(Problem.toResponse(failure.success))
      return Effect.as(Effect.logError("studio request failed", cause), Problem.toResponse(new Problem.Internal()))
    })
  )

const param = (name: string) =>
  Effect.flatMap(HttpRouter.params, (params) => {
    const value = params[name]
    return value === undefined || value === ""
      ? Effect.fail(new Problem.BadParameter({ parameter: name, value, expected: `a ${name} id` }))
      : Effect.succeed(value)
  })

const query = (name: string): Effect.Effect<string | undefined, Problem.BadParameter, HttpServerRequest.ParsedSearchParams> =>
  Effect.flatMap(HttpServerRequest.ParsedSearchParams, (params) => {
    const value = params[name]
    if (Array.isArray(value)) return Effect.fail(new Problem.BadParameter({ parameter: name, value: value.join(","), expected: "one value" }))
    return Effect.succeed(value === "" ? undefined : value as string | undefined)
  })

const statuses: ReadonlyArray<string> = RunStatus.statuses

const statusQuery = Effect.flatMap(query("status"), (value) =>
  value === undefined || statuses.includes(value)
    ? Effect.succeed(value as RunStatus.Status | undefined)
    : Effect.fail(new Problem.BadParameter({ parameter: "status", value, expected: `one of ${statuses.join(", ")}` })))

type Body = { readonly [key: string]: Json }

// The JSON object of the body; an empty body is `{}`.
const body: Effect.Effect<Body, Problem.BadBody, HttpServerRequest.HttpServerRequest> = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const text = yield* Effect.mapError(request.text, () => new Problem.BadBody({ field: "", reason: "could not be read" }))
  if (text.trim() === "") return {}
  const parsed = yield* Effect.try({
    try: () => JSON.parse(text) as Json,
    catch: (error) => new Problem.BadBody({ field: "", reason: `is not valid JSON: ${(error as Error).message}` })
  })
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return yield* new Problem.BadBody({ field: "", reason: "must be a JSON object" })
  }
  return parsed as Body
})

const stringField = (fields: Body, name: string): Effect.Effect<string, Problem.BadBody> => {
  const value = fields[name]
  return typeof value === "string" && value !== ""
    ? Effect.succeed(value)
    : Effect.fail(new Problem.BadBody({ field: name, reason: value === undefined ? "is missing: give a string" : "must be a non-empty string" }))
}

const objectField = (fields: Body, name: string): Effect.Effect<Body | undefined, Problem.BadBody> => {
  const value = fields[name]
  if (value === undefined) return Effect.succeed(undefined)
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? Effect.succeed(value as Body)
    : Effect.fail(new Problem.BadBody({ field: name, reason: "must be a JSON object" }))
}

const runsError = Effect.mapError(Problem.fromRuns)

const loaded = (runId: string) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const info = yield* runsError(runs.status(runId))
    const workflow = yield* runsError(store.loadWorkflow(info.version))
    return { runs, info, workflow }
  })

const summary = (info: Runs.RunInfo) => ({
  id: info.id,
  workflowId: info.workflowId,
  version: info.version,
  mode: info.mode,
  status: info.status,
  sourceRun: info.sourceRun,
  target: info.target,
  input: info.input,
  diagnostics: info.diagnostics,
  pruned: info.pruned,
  parentRun: info.parentRun,
  createdAt: info.createdAt,
  updatedAt: info.updatedAt,
  suspension: info.suspension,
  children: info.children,
  compensations: info.compensations,
  cancelRequestedAt: info.cancelRequestedAt
})

const runDetail = Effect.gen(function*() {
  const { info, runs, workflow } = yield* Effect.flatMap(param("run"), loaded)
  const [nodes, outputs] = yield* runsError(Effect.all([runs.nodes(info.id), runs.outputs(info.id)]))
  const graph = Graph.of(workflow)
  return {
    run: { ...summary(info), workflowName: workflow.name },
    blocks: [...workflow.blocks.map((b) => b.id), ...(workflow.loops ?? []).map((c) => c.id), ...(workflow.parallels ?? []).map((c) => c.id)],
    graph,
    states: Graph.paint(graph, info, nodes, info.suspension),
    nodes,
    outputs
  }
})

const names = (workflow: Workflow.Workflow, id: string): boolean =>
  [...workflow.blocks, ...(workflow.loops ?? []), ...(workflow.parallels ?? [])].some((b) => b.id === id)

const fromBlock = (workflow: Workflow.Workflow, from: string | undefined): Effect.Effect<string, Problem.BadParameter | Problem.NotFound> =>
  from === undefined
    ? Effect.fail(new Problem.BadParameter({ parameter: "from", value: undefined, expected: "the block to re-run from" }))
    : names(workflow, from)
    ? Effect.succeed(from)
    : Effect.fail(new Problem.NotFound({ what: "block", id: from }))

const planOf = Effect.gen(function*() {
  const { info, runs, workflow } = yield* Effect.flatMap(param("run"), loaded)
  const from = yield* Effect.flatMap(query("from"), (value) => fromBlock(workflow, value))
  const plan = yield* runsError(runs.plan(workflow, { target: from, run: info.id }))
  return { graph: Graph.of(workflow), ...Graph.planned(Plan.toJson(plan)), target: plan.target }
})

const start = Effect.gen(function*() {
  const fields = yield* body
  if (fields.workflow === undefined) return yield* new Problem.BadBody({ field: "workflow", reason: "is missing: give the workflow JSON" })
  const decoded = Workflow.decode(fields.workflow)
  if (Result.isFailure(decoded)) {
    const error = decoded.failure
    return yield* new Problem.Invalid({ error: error._tag, detail: error.message, path: (error as { readonly path?: ReadonlyArray<string | number> }).path })
  }
  const input = yield* objectField(fields, "input")
  const runs = yield* Runs.Runs
  const started = yield* runsError(runs.start(decoded.success, input ?? {}))
  return { runId: started.runId, mode: started.mode }
})

const rerun = Effect.gen(function*() {
  const { info, runs, workflow } = yield* Effect.flatMap(param("run"), loaded)
  const from = yield* Effect.flatMap(body, (fields) => Effect.flatMap(stringField(fields, "from"), (value) => fromBlock(workflow, value)))
  const started = yield* runsError(runs.runFrom(workflow, { target: from, run: info.id }))
  return { runId: started.runId, mode: started.mode }
})

// A delivery the run refused (`false`): nothing awaited it.
const delivered = (runId: string, what: string) => (accepted: boolean) =>
  accepted
    ? Effect.flatMap(Runs.Runs, (runs) => Effect.map(runsError(runs.status(runId)), (info) => ({ accepted, status: info.status })))
    : Effect.flatMap(Runs.Runs, (runs) =>
      Effect.flatMap(runsError(runs.status(runId)), (info) =>
        Effect.fail(new Problem.Refused({ runId, status: info.status, reason: `no ${what} waiting` }))))

const decide = (approved: boolean) =>
  Effect.gen(function*() {
    const runId = yield* param("run")
    const fields = yield* body
    const node = yield* stringField(fields, "node")
    const reason = approved ? undefined : yield* stringField(fields, "reason")
    const runs = yield* Runs.Runs
    const accepted = yield* runsError(reason === undefined ? runs.approve(runId, node, fields.payload ?? null) : runs.reject(runId, node, reason))
    return yield* delivered(runId, `approval ${JSON.stringify(node)}`)(accepted)
  })

const signal = Effect.gen(function*() {
  const runId = yield* param("run")
  const fields = yield* body
  const name = yield* stringField(fields, "name")
  const runs = yield* Runs.Runs
  const accepted = yield* runsError(runs.signal(runId, name, fields.payload ?? null))
  return yield* delivered(runId, `wait for signal ${JSON.stringify(name)}`)(accepted)
})

const resume = Effect.gen(function*() {
  const runId = yield* param("run")
  const runs = yield* Runs.Runs
  const resumed = yield* runsError(runs.resume(runId))
  return "owner" in resumed ? { runId, delegatedTo: resumed.owner } : { runId, mode: resumed.mode }
})

const cancel = Effect.gen(function*() {
  const runId = yield* param("run")
  const runs = yield* Runs.Runs
  return yield* runsError(runs.cancel(runId))
})

const queriedRun = (name: "a" | "b") =>
  Effect.flatMap(Effect.zip(query(name), Runs.Runs), ([id, runs]) =>
    id === undefined
      ? Effect.fail(new Problem.BadParameter({ parameter: name, value: undefined, expected: "a run id" }))
      : runsError(runs.status(id)))

// `a` and `b`: two runs of one workflow, drawn on `b`'s graph.
const comparison = Effect.gen(function*() {
  const store = yield* RunStore.RunStore
  const a = yield* queriedRun("a")
  const b = yield* queriedRun("b")
  if (a.workflowId !== b.workflowId) {
    return yield* new Problem.BadParameter({ parameter: "b", value: b.id, expected: `a run of workflow ${a.workflowId}, as run a is` })
  }
  const [before, after, workflow] = yield* runsError(Effect.all([store.snapshot(a.id), store.snapshot(b.id), store.loadWorkflow(b.version)]))
  const graph = Graph.of(workflow)
  const { nodes, states } = Compare.compare(graph, before, after)
  return { a: summary(a), b: summary(b), graph, states, nodes }
})

const list = Effect.gen(function*() {
  const workflowId = yield* query("workflow")
  const status = yield* statusQuery
  const index = yield* RunIndex
  return { runs: yield* index.list({ workflowId, status }) }
})

const nodeDetail = Effect.gen(function*() {
  const runId = yield* param("run")
  const node = yield* param("node")
  const runs = yield* Runs.Runs
  return { nodes: yield* runsError(runs.node(runId, node)) }
})

const encoder = new TextEncoder()
const frame = (event: unknown): Uint8Array => encoder.encode(`data: ${JSON.stringify(event)}\n\n`)

// The run list as a fingerprint: ids, statuses, update times and pending cancels (recording a
// cancel request leaves the update time as it is).
const fingerprint = (index: RunIndex["Service"]) =>
  Effect.map(index.list({}), (runs) => runs.map((r) => `${r.id}:${r.status}:${r.updatedAt}:${r.cancelRequestedAt ?? ""}`).join(","))

const events = (pollMs: number) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const index = yield* RunIndex
    const published = Stream.unwrap(runs.subscribe).pipe(Stream.map(frame))
    let last: string | undefined
    // Every poll sends a comment line too, which keeps the connection open through idle proxies.
    const polled = Stream.tick(pollMs).pipe(
      Stream.mapEffect(() => Effect.orElseSucceed(fingerprint(index), () => last)),
      Stream.map((current) => {
        const changed = last !== undefined && current !== last
        last = current
        return changed ? frame({ _tag: "RunsChanged" }) : encoder.encode(": poll\n\n")
      })
    )
    return HttpServerResponse.stream(Stream.merge(published, polled), {
      contentType: "text/event-stream",
      headers: { "cache-control": "no-cache", connection: "keep-alive" }
    })
  })

/**
 * The API routes.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}) => {
  const checked = guard(options.hosts ?? loopback)
  const route = <R>(method: "GET" | "POST", path: HttpRouter.PathInput, effect: Effect.Effect<unknown, Problem.Problem, R>, status?: number) =>
    HttpRouter.route(method, path, respond(Effect.andThen(checked, effect), status))
  return HttpRouter.addAll([
    route("GET", "/api/runs", list),
    route("POST", "/api/runs", start, 201),
    route("GET", "/api/runs/:run", runDetail),
    route("GET", "/api/runs/:run/nodes/:node", nodeDetail),
    route("GET", "/api/runs/:run/plan", planOf),
    route("POST", "/api/runs/:run/rerun", rerun, 201),
    route("POST", "/api/runs/:run/approve", decide(true)),
    route("POST", "/api/runs/:run/reject", decide(false)),
    route("POST", "/api/runs/:run/signal", signal),
    route("POST", "/api/runs/:run/resume", resume),
    route("POST", "/api/runs/:run/cancel", cancel),
    route("GET", "/api/compare", comparison),
    HttpRouter.route("GET", "/api/events", Effect.catch(Effect.andThen(checked, events(options.pollMs ?? 2_000)), (problem) => Effect.succeed(Problem.toResponse(problem)))),
    HttpRouter.route("*", "/api/*", respond(Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.fail(new Problem.NotFound({ what: "route", id: `${request.method} ${request.url}` })))))
  ])
}
