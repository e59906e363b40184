/**
 * The studio's JSON API, in process, through effect's HTTP client against a Node server on a free
 * port, over `SqlRunStore` on PGlite and on the real server (a fresh schema per test): the run
 * list and its filters, a run and its painted graph, the dry-run plan, start / approve / reject /
 * signal / re-run through `Runs`, the event stream, and RFC 9457 problems for bad requests.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { Plan, Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import { RunIndex, Studio } from "@ripple/studio"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Path from "node:path"
import * as TestDatabase from "../helpers/database.ts"

const root = Path.resolve(import.meta.dirname, "../..")
const pipeline = Result.getOrThrow(Workflow.decode(JSON.parse(Fs.readFileSync(Path.join(root, "examples/content-pipeline.json"), "utf8"))))
const pipelineJson = JSON.parse(Fs.readFileSync(Path.join(root, "examples/content-pipeline.json"), "utf8")) as Workflow.Json

// A workflow that waits for a signal, then answers with its payload.
const waiting = Result.getOrThrow(Workflow.decode({
  version: 1,
  id: "waits",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "hear", type: "wait", params: { signal: "go" } },
    { id: "done", type: "response", params: { value: { $ref: "blocks.hear.output" } } }
  ],
  edges: [{ source: "start", target: "hear" }, { source: "hear", target: "done" }]
}))

// `o` reads `a` but no observed output reads `o`: a re-run from `a` prunes it.
const pruning = Result.getOrThrow(Workflow.decode({
  version: 1,
  id: "prunes",
  outputs: ["b"],
  blocks: [
    { id: "start", type: "trigger" },
    { id: "a", type: "value", params: { value: 1 } },
    { id: "b", type: "response", params: { value: { $ref: "blocks.a.output" } } },
    { id: "o", type: "value", params: { value: { $ref: "blocks.a.output" } } }
  ],
  edges: [{ source: "start", target: "a" }, { source: "a", target: "b" }, { source: "a", target: "o" }]
}))

// A run that sleeps an hour.
const sleeping = Result.getOrThrow(Workflow.decode({
  version: 1,
  id: "sleeps",
  blocks: [{ id: "start", type: "trigger" }, { id: "nap", type: "sleep", params: { ms: 3_600_000 } }],
  edges: [{ source: "start", target: "nap" }]
}))

const server = HttpRouter.serve(Studio.routes({ pollMs: 100 }), { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provideMerge(Runs.layer()),
  Layer.provideMerge(Layer.mergeAll(SqlRunStore.layer, RunIndex.layerSql, Handler.layerBuiltins)),
  Layer.provide(TestDatabase.layer)
)

type Body = { readonly [key: string]: any }

const call = (method: "GET" | "POST", url: string, body?: unknown) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const request = method === "GET"
      ? HttpClientRequest.get(url)
      : typeof body === "string"
      ? HttpClientRequest.bodyText(HttpClientRequest.post(url), body)
      : HttpClientRequest.bodyJsonUnsafe(HttpClientRequest.post(url), body ?? {})
    const response = yield* client.execute(request)
    const text = yield* response.text
    return { status: response.status, type: response.headers["content-type"] ?? "", json: JSON.parse(text) as Body }
  }).pipe(Effect.orDie)

const get = (url: string) => call("GET", url)
const post = (url: string, body?: unknown) => call("POST", url, body)

// A problem response: its status, its type and the members naming what is wrong; never a stack.
const problem = (response: { readonly status: number; readonly type: string; readonly json: Body }, status: number, type: string, members: Body) => {
  assert.strictEqual(response.status, status, JSON.stringify(response.json))
  assert.strictEqual(response.type, "application/problem+json")
  assert.strictEqual(response.json.type, `urn:ripple:studio:${type}`)
  assert.strictEqual(response.json.status, status)
  assert.isString(response.json.detail)
  for (const [key, value] of Object.entries(members)) assert.deepStrictEqual(response.json[key], value, key)
  assert.notInclude(JSON.stringify(response.json), "    at ")
}

// Reads /api/events (in a fiber) up to the first event tagged `tag`; the stream is an event stream.
const eventsUntil = (tag: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get("/api/events")
    assert.strictEqual(response.headers["content-type"], "text/event-stream")
    const decoder = new TextDecoder()
    return yield* response.stream.pipe(
      Stream.map((bytes) => decoder.decode(bytes)),
      Stream.flatMap((text) => Stream.fromIterable(text.split("\n\n"))),
      Stream.filter((frame) => frame.startsWith("data: ")),
      Stream.map((frame) => JSON.parse(frame.slice(6)) as Body),
      Stream.takeUntil((event) => event._tag === tag),
      Stream.runCollect,
      Effect.forkChild
    )
  })

const startPaused = Effect.gen(function*() {
  const started = yield* post("/api/runs", { workflow: pipelineJson, input: { topic: "ripple" } })
  assert.strictEqual(started.status, 201, JSON.stringify(started.json))
  const runs = yield* Runs.Runs
  assert.strictEqual(yield* runs.wait(started.json.runId), "paused")
  return started.json.runId as string
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true, timeout: 120_000 })(`studio API on ${backend}`, (it) => {
    it.effect("a run waits for approval, is approved through the API and completes; its graph is painted", () =>
      Effect.gen(function*() {
        const runId = yield* startPaused
        const paused = yield* get(`/api/runs/${runId}`)
        assert.strictEqual(paused.status, 200)
        assert.strictEqual(paused.json.run.status, "paused")
        assert.deepStrictEqual(paused.json.run.suspension.approvals, ["review"])
        assert.strictEqual(paused.json.states.review, "waiting")
        assert.strictEqual(paused.json.states.newsletter, "skipped")
        assert.strictEqual(paused.json.states.publish, "pending")
        assert.strictEqual(paused.json.states.draft, "executed")
        assert.deepStrictEqual(
          paused.json.graph.containers.map((c: Body) => [c.id, c.kind]).sort(),
          [["refine", "loop"], ["summaries", "parallel"]]
        )
        assert.strictEqual(paused.json.graph.nodes.find((n: Body) => n.id === "draft").container, "refine")
        assert.strictEqual(paused.json.nodes.filter((n: Body) => n.block === "draft").length, 3)

        problem(yield* post(`/api/runs/${runId}/approve`, { node: "publish" }), 409, "refused", { runId, runStatus: "paused" })
        problem(yield* post(`/api/runs/${runId}/approve`, {}), 400, "bad-body", { field: "node" })
        problem(yield* post(`/api/runs/${runId}/approve`, "{not json"), 400, "bad-body", { field: "" })

        const approved = yield* post(`/api/runs/${runId}/approve`, { node: "review", payload: { by: "studio" } })
        assert.strictEqual(approved.status, 200, JSON.stringify(approved.json))
        assert.isTrue(approved.json.accepted)
        const runs = yield* Runs.Runs
        assert.strictEqual(yield* runs.wait(runId), "completed")
        const done = yield* get(`/api/runs/${runId}`)
        assert.strictEqual(done.json.states.publish, "executed")
        assert.strictEqual(done.json.states.review, "executed")
        assert.deepStrictEqual(done.json.outputs, yield* runs.outputs(runId))
        const review = yield* get(`/api/runs/${runId}/nodes/review`)
        assert.deepStrictEqual(review.json.nodes.map((n: Body) => [n.node, n.status, n.output]), [["review", "completed", { by: "studio" }]])
        problem(yield* get(`/api/runs/${runId}/nodes/nowhere`), 404, "not-found", { what: "node", id: "nowhere", runId })
      }).pipe(Effect.provide(server)))

    it.effect("lists runs newest first, filtered by workflow and status; refuses an unknown status", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const first = yield* startPaused
        const second = (yield* runs.start(waiting)).runId
        assert.strictEqual(yield* runs.wait(second), "suspended")
        const all = yield* get("/api/runs")
        assert.deepStrictEqual(all.json.runs.map((r: Body) => r.id), [second, first])
        const ofPipeline = yield* get("/api/runs?workflow=content-pipeline")
        assert.deepStrictEqual(ofPipeline.json.runs.map((r: Body) => r.id), [first])
        const suspended = yield* get("/api/runs?status=suspended")
        assert.deepStrictEqual(suspended.json.runs.map((r: Body) => [r.id, r.workflowId]), [[second, "waits"]])
        problem(yield* get("/api/runs?status=asleep"), 400, "bad-parameter", { parameter: "status", value: "asleep" })
        problem(yield* get("/api/runs/no-such-run"), 404, "not-found", { what: "run", id: "no-such-run" })
        problem(yield* get("/api/nothing-here"), 404, "not-found", { what: "route" })

        const view = yield* get(`/api/runs/${second}`)
        assert.strictEqual(view.json.states.hear, "waiting")
        problem(yield* post(`/api/runs/${second}/signal`, { name: "stop" }), 409, "refused", { runId: second })
        const signalled = yield* post(`/api/runs/${second}/signal`, { name: "go", payload: 7 })
        assert.isTrue(signalled.json.accepted)
        assert.strictEqual(yield* runs.wait(second), "completed")
        assert.deepStrictEqual(yield* runs.outputs(second), { done: 7 })
      }).pipe(Effect.provide(server)))

    it.effect("draws the run-from plan of a block as Runs.plan makes it, writing nothing; re-runs from it", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const runId = yield* startPaused
        yield* runs.approve(runId, "review")
        assert.strictEqual(yield* runs.wait(runId), "completed")

        const planned = yield* get(`/api/runs/${runId}/plan?from=draft`)
        assert.strictEqual(planned.status, 200, JSON.stringify(planned.json))
        const expected = Plan.toJson(yield* runs.plan(pipeline, { target: "draft", run: runId })) as Body
        assert.deepStrictEqual(planned.json.plan, expected)
        assert.deepStrictEqual(planned.json.counts, { rerun: expected.rerun.length, reused: expected.reused.length, pruned: expected.pruned.length })
        for (const node of expected.reused) assert.strictEqual(planned.json.states[node], "reused", node)
        for (const node of expected.rerun) assert.strictEqual(planned.json.states[node], "rerun", node)
        assert.strictEqual((yield* get("/api/runs")).json.runs.length, 1)

        problem(yield* get(`/api/runs/${runId}/plan`), 400, "bad-parameter", { parameter: "from" })
        problem(yield* get(`/api/runs/${runId}/plan?from=nowhere`), 404, "not-found", { what: "block", id: "nowhere" })
        problem(yield* post(`/api/runs/${runId}/rerun`, { from: 3 }), 400, "bad-body", { field: "from" })

        const rerun = yield* post(`/api/runs/${runId}/rerun`, { from: "draft" })
        assert.strictEqual(rerun.status, 201, JSON.stringify(rerun.json))
        assert.strictEqual(rerun.json.mode, "run-from")
        // The re-run draft wrote what it wrote before: the engine cuts the approval off and the run completes.
        assert.strictEqual(yield* runs.wait(rerun.json.runId), "completed")
        const view = yield* get(`/api/runs/${rerun.json.runId}`)
        assert.strictEqual(view.json.run.sourceRun, runId)
        assert.strictEqual(view.json.states.fetch, "reused")
        assert.strictEqual(view.json.states.draft, "executed")
        assert.strictEqual(view.json.states.review, "cutoff")
        assert.strictEqual((yield* store.getRun(rerun.json.runId)).target, "draft")
      }).pipe(Effect.provide(server)))

    it.effect("compares two runs of a workflow node by node", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const a = yield* startPaused
        const b = (yield* runs.start(pipeline, { topic: "durable execution" })).runId
        assert.strictEqual(yield* runs.wait(b), "paused")
        yield* runs.approve(b, "review")
        assert.strictEqual(yield* runs.wait(b), "completed")
        const other = (yield* runs.start(waiting)).runId

        const compared = yield* get(`/api/compare?a=${a}&b=${b}`)
        assert.strictEqual(compared.status, 200, JSON.stringify(compared.json))
        const { states } = compared.json
        assert.strictEqual(states.fetch, "same")
        assert.strictEqual(states.start, "output")
        assert.strictEqual(states.summarize, "inputs")
        assert.strictEqual(states.review, "inputs")
        assert.strictEqual(states.publish, "added")
        assert.strictEqual(states.newsletter, "same")
        const summarize = compared.json.nodes.filter((n: Body) => n.node.startsWith("summarize@"))
        assert.strictEqual(summarize.length, 3)
        for (const n of summarize) assert.deepStrictEqual(n.changes, ["inputs", "output"])
        assert.isFalse(compared.json.nodes.some((n: Body) => n.node === "fetch"))

        problem(yield* get(`/api/compare?a=${a}`), 400, "bad-parameter", { parameter: "b" })
        problem(yield* get(`/api/compare?a=${a}&b=${other}`), 400, "bad-parameter", { parameter: "b", value: other })
        problem(yield* get(`/api/compare?a=${a}&b=missing`), 404, "not-found", { what: "run", id: "missing" })
      }).pipe(Effect.provide(server)))

    it.effect("paints what a run-from pruned, in its plan and in the run", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const first = (yield* runs.start(pruning)).runId
        assert.strictEqual(yield* runs.wait(first), "completed")
        const planned = yield* get(`/api/runs/${first}/plan?from=a`)
        assert.deepStrictEqual(planned.json.counts, { rerun: 2, reused: 1, pruned: 1 })
        assert.strictEqual(planned.json.states.o, "pruned")
        const rerun = yield* post(`/api/runs/${first}/rerun`, { from: "a" })
        assert.strictEqual(yield* runs.wait(rerun.json.runId), "completed")
        const view = yield* get(`/api/runs/${rerun.json.runId}`)
        assert.deepStrictEqual(view.json.states, { start: "reused", a: "executed", b: "cutoff", o: "pruned" })
      }).pipe(Effect.provide(server)))

    it.effect("rejects an approval, resumes the failed run, and cancels a sleeping one", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const runId = yield* startPaused
        problem(yield* post(`/api/runs/${runId}/reject`, { node: "review" }), 400, "bad-body", { field: "reason" })
        const rejected = yield* post(`/api/runs/${runId}/reject`, { node: "review", reason: "not yet" })
        assert.strictEqual(rejected.status, 200, JSON.stringify(rejected.json))
        assert.strictEqual(yield* runs.wait(runId), "failed")
        const failed = yield* get(`/api/runs/${runId}`)
        assert.strictEqual(failed.json.states.review, "failed")
        assert.include(failed.json.nodes.find((n: Body) => n.node === "review").error.message, "not yet")

        const resumed = yield* post(`/api/runs/${runId}/resume`)
        assert.strictEqual(resumed.status, 200, JSON.stringify(resumed.json))
        assert.strictEqual(yield* runs.wait(runId), "paused")
        assert.strictEqual((yield* get(`/api/runs/${runId}`)).json.states.review, "waiting")
        problem(yield* post(`/api/runs/${runId}/resume`), 409, "refused", { runId, runStatus: "paused" })

        const napping = (yield* runs.start(sleeping)).runId
        assert.strictEqual(yield* runs.wait(napping), "suspended")
        assert.strictEqual((yield* get(`/api/runs/${napping}`)).json.states.nap, "sleeping")
        const cancelled = yield* post(`/api/runs/${napping}/cancel`)
        assert.strictEqual(cancelled.json._tag, "Cancelled")
        assert.strictEqual((yield* get(`/api/runs/${napping}`)).json.run.status, "cancelled")
      }).pipe(Effect.provide(server)))

    it.effect("serves no other site's page and no host name but this machine's", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const runId = yield* startPaused
        const address = new URL(yield* HttpServer.addressFormattedWith((url) => Effect.succeed(url)))
        // Through node:http: fetch may not set Host (nor, in browsers, Origin).
        const send = (headers: Record<string, string>) =>
          Effect.promise(() =>
            new Promise<{ status: number; type: string; json: Body }>((resolve, reject) => {
              const request = Http.request({ host: address.hostname, port: address.port, method: "POST", path: `/api/runs/${runId}/approve`, headers: { "content-type": "application/json", ...headers } }, (response) => {
                let text = ""
                response.on("data", (chunk) => (text += chunk))
                response.on("end", () => resolve({ status: response.statusCode!, type: response.headers["content-type"] ?? "", json: JSON.parse(text) }))
              })
              request.on("error", reject)
              request.end(JSON.stringify({ node: "review" }))
            })
          )
        problem(yield* send({ origin: "http://evil.example" }), 403, "forbidden", {})
        problem(yield* send({ host: "rebound.example:4400" }), 403, "forbidden", {})
        assert.strictEqual((yield* runs.status(runId)).status, "paused")
        // Its own page (the origin it is served from) may.
        const own = yield* send({ origin: address.origin })
        assert.strictEqual(own.status, 200, JSON.stringify(own.json))
        assert.strictEqual(yield* runs.wait(runId), "completed")
      }).pipe(Effect.provide(server)))

    it.effect("refuses an invalid workflow or input naming what is wrong, and writes nothing", () =>
      Effect.gen(function*() {
        problem(yield* post("/api/runs", {}), 400, "bad-body", { field: "workflow" })
        const broken = { ...(pipelineJson as Body), edges: [{ source: "start", target: "ghost" }] }
        const invalid = yield* post("/api/runs", { workflow: broken })
        problem(invalid, 422, "invalid", { error: "DanglingEdge" })
        assert.isArray(invalid.json.path)
        problem(yield* post("/api/runs", { workflow: pipelineJson, input: { topic: 3 } }), 422, "invalid", {})
        problem(yield* post("/api/runs", { workflow: pipelineJson, input: [1] }), 400, "bad-body", { field: "input" })
        assert.deepStrictEqual((yield* get("/api/runs")).json.runs, [])
      }).pipe(Effect.provide(server)))

    it.effect("streams run events as server-sent events", () =>
      Effect.gen(function*() {
        const reading = yield* eventsUntil("RunFinished")
        yield* Effect.sleep(300)
        const runs = yield* Runs.Runs
        const started = yield* runs.start(waiting)
        const events = yield* Fiber.join(reading)
        const tags = events.filter((e) => e.runId === started.runId).map((e) => e._tag)
        assert.include(tags, "RunStarted")
        assert.include(tags, "StatusChanged")
        assert.strictEqual(tags[tags.length - 1], "RunFinished")
      }).pipe(Effect.orDie, Effect.provide(server)))

    it.effect("tells the page when another process changed the runs (RunsChanged, polled)", () =>
      Effect.gen(function*() {
        const reading = yield* eventsUntil("RunsChanged")
        yield* Effect.sleep(300)
        // Another Runs over the same store: its events never reach this server's subscription.
        const elsewhere = Context.get(yield* Layer.build(Runs.layer()), Runs.Runs)
        const started = yield* elsewhere.start(waiting)
        assert.strictEqual(yield* elsewhere.wait(started.runId), "suspended")
        const events = yield* Fiber.join(reading)
        assert.isFalse(events.some((e) => e.runId === started.runId))
        assert.strictEqual(events[events.length - 1]!._tag, "RunsChanged")
      }).pipe(Effect.orDie, Effect.scoped, Effect.provide(server)))

    it.effect("tells the page when another process asked a dormant run to cancel (RunsChanged), and lists the request", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(waiting)
        assert.strictEqual(yield* runs.wait(runId), "suspended")
        const reading = yield* eventsUntil("RunsChanged")
        yield* Effect.sleep(300)
        // What `ripple cancel` records first in another process (the run's updated time stays).
        const at = Date.now()
        assert.isTrue(yield* (yield* RunStore.RunStore).requestCancel(runId, at))
        const events = yield* Fiber.join(reading)
        assert.strictEqual(events[events.length - 1]!._tag, "RunsChanged")
        const listed = (yield* get("/api/runs")).json.runs as ReadonlyArray<{ readonly id: string; readonly cancelRequestedAt?: number }>
        assert.deepStrictEqual(listed.map((r) => [r.id, r.cancelRequestedAt]), [[runId, at]])
      }).pipe(Effect.orDie, Effect.provide(server)))
  })
}
