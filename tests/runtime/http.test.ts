/**
 * The `http` built-in against a node:http server started by each test on 127.0.0.1:0: JSON and
 * text bodies, the timeout, retries on 503 and on 429 with Retry-After (the engine's retry policy;
 * a Retry-After outranks its backoff and `maxDelayMs`), a 404 that fails the block for good, and
 * a secret whose value the server receives but that appears nowhere in the store (every row of
 * every table on PGlite) or the events.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, type RunEvent, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestClock from "effect/testing/TestClock"
import * as NodeHttp from "node:http"
import * as TestDatabase from "../helpers/database.ts"

type Json = Workflow.Json

interface Received {
  readonly method: string
  readonly url: string
  readonly headers: NodeHttp.IncomingHttpHeaders
  readonly body: string
  readonly at: number
}

type Reply = (request: Received, n: number, res: NodeHttp.ServerResponse) => void

/** A server on 127.0.0.1 (a free port) answering with `reply`; every request it received, in order. */
const serve = (reply: Reply) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly url: string; readonly received: Array<Received>; readonly server: NodeHttp.Server }>((resolve) => {
        const received: Array<Received> = []
        const server = NodeHttp.createServer((req, res) => {
          let body = ""
          req.on("data", (chunk) => (body += String(chunk)))
          req.on("end", () => {
            const request = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, at: Date.now() }
            received.push(request)
            reply(request, received.length, res)
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as { readonly port: number }
          resolve({ url: `http://127.0.0.1:${port}`, received, server })
        })
      })
    ),
    ({ server }) =>
      Effect.promise(() => {
        server.closeAllConnections()
        return new Promise<void>((resolve) => server.close(() => resolve()))
      })
  )

const json = (res: NodeHttp.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

const call = (params: { readonly [key: string]: Json }, retry?: Workflow.RetryPolicy): Workflow.Workflow => ({
  id: "call",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "call", type: "http", params, ...(retry === undefined ? {} : { retry }) }
  ],
  edges: [{ source: "start", target: "call" }]
})

const secret = "s3cr3t-Token-4711"
const config = ConfigProvider.layer(ConfigProvider.fromEnv({ env: { API_TOKEN: secret } }))

const memory = (handlers: Readonly<Record<string, Handler.Handler>> = {}) =>
  Runs.layer().pipe(
    Layer.provideMerge(RunStore.layerMemory),
    Layer.provideMerge(Handler.layer(handlers)),
    Layer.provideMerge(config)
  )

// Runs the workflow to its end: the final status and the node `call` as the store holds it.
const runToEnd = (workflow: Workflow.Workflow) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const { runId } = yield* runs.start(workflow)
    const status = yield* runs.wait(runId)
    const node = (yield* store.snapshot(runId)).nodes["call"]
    return { runId, status, node }
  })

describe("http block", () => {
  it.live("POSTs JSON with query, headers and a bearer secret; outputs status, headers and the JSON body", () =>
    Effect.gen(function*() {
      const server = yield* serve((request, _, res) =>
        json(res, 201, { got: JSON.parse(request.body), auth: request.headers.authorization, path: request.url }, { "x-request-id": "r-1" })
      )
      const { node, status } = yield* runToEnd(call({
        method: "POST",
        url: `${server.url}/items`,
        query: { page: 2, q: "a b" },
        headers: { "X-Trace": "t-1" },
        auth: { bearer: { $secret: "API_TOKEN" } },
        json: { name: "Ada", tags: ["x"] }
      }))
      assert.strictEqual(status, "completed")
      const [request] = server.received
      assert.strictEqual(request?.method, "POST")
      assert.strictEqual(request?.headers["authorization"], `Bearer ${secret}`)
      assert.strictEqual(request?.headers["x-trace"], "t-1")
      assert.match(String(request?.headers["content-type"]), /^application\/json/)
      const output = node?.output as { readonly status: number; readonly headers: Record<string, string>; readonly body: Json }
      assert.strictEqual(output.status, 201)
      assert.strictEqual(output.headers["x-request-id"], "r-1")
      // The server echoed the credential: the output keeps its name, not its value.
      assert.deepStrictEqual(output.body, { got: { name: "Ada", tags: ["x"] }, auth: "Bearer [secret API_TOKEN]", path: "/items?page=2&q=a+b" })
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("reads a text body as text, and response \"text\" keeps JSON as text", () =>
    Effect.gen(function*() {
      const server = yield* serve((request, _, res) => {
        if (request.url === "/json") return json(res, 200, { a: 1 })
        res.writeHead(200, { "content-type": "text/plain" })
        res.end("hello, world")
      })
      const text = yield* runToEnd(call({ url: `${server.url}/text` }))
      assert.strictEqual((text.node?.output as { readonly body: Json }).body, "hello, world")
      const kept = yield* runToEnd(call({ url: `${server.url}/json`, response: "text" }))
      assert.strictEqual((kept.node?.output as { readonly body: Json }).body, "{\"a\":1}")
      const parsed = yield* runToEnd(call({ url: `${server.url}/json` }))
      assert.deepStrictEqual((parsed.node?.output as { readonly body: Json }).body, { a: 1 })
      const sent = yield* runToEnd(call({ method: "PUT", url: `${server.url}/text`, text: "plain words" }))
      assert.strictEqual(sent.status, "completed")
      assert.strictEqual(server.received.at(-1)?.body, "plain words")
      assert.match(String(server.received.at(-1)?.headers["content-type"]), /^text\/plain/)
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("fails the block when no response comes within timeoutMs", () =>
    Effect.gen(function*() {
      // Never answers.
      const server = yield* serve(() => {})
      const started = Date.now()
      const { node, status } = yield* runToEnd(call({ url: `${server.url}/slow`, timeoutMs: 200 }))
      const took = Date.now() - started
      assert.strictEqual(status, "failed")
      assert.include(node?.error?.message, "no response within 200 ms")
      assert.isTrue(node?.error?.retryable)
      assert.isAtLeast(took, 200)
      assert.isBelow(took, 5_000)
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("retries a 503 with the block's retry policy until it succeeds", () =>
    Effect.gen(function*() {
      const server = yield* serve((_, n, res) => n <= 2 ? json(res, 503, { busy: true }) : json(res, 200, { ok: n }))
      const { node, status } = yield* runToEnd(call({ url: `${server.url}/flaky` }, { maxAttempts: 3, initialDelayMs: 5 }))
      assert.strictEqual(status, "completed")
      assert.strictEqual(server.received.length, 3)
      assert.strictEqual(node?.attempt, 3)
      assert.deepStrictEqual((node?.output as { readonly body: Json }).body, { ok: 3 })
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("a 503 without a retry policy fails the run, retryable, naming the status and the body", () =>
    Effect.gen(function*() {
      const server = yield* serve((_, __, res) => json(res, 503, { busy: true }))
      const { node, status } = yield* runToEnd(call({ url: `${server.url}/down` }))
      assert.strictEqual(status, "failed")
      assert.strictEqual(server.received.length, 1)
      assert.include(node?.error?.message, "503")
      assert.include(node?.error?.message, "busy")
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("a 429 waits its Retry-After, past the policy's backoff and maxDelayMs", () =>
    Effect.gen(function*() {
      const server = yield* serve((_, n, res) => n === 1 ? json(res, 429, { slow: "down" }, { "retry-after": "1" }) : json(res, 200, { ok: true }))
      const { status } = yield* runToEnd(call({ url: `${server.url}/limited` }, { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 5 }))
      assert.strictEqual(status, "completed")
      assert.strictEqual(server.received.length, 2)
      const waited = server.received[1]!.at - server.received[0]!.at
      assert.isAtLeast(waited, 1_000)
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("a 404 fails the block for good with the status and a body excerpt, never retried", () =>
    Effect.gen(function*() {
      const server = yield* serve((_, __, res) => {
        res.writeHead(404, { "content-type": "text/plain" })
        res.end(`no such item ${"x".repeat(500)}`)
      })
      const { node, status } = yield* runToEnd(call({ url: `${server.url}/missing` }, { maxAttempts: 5, initialDelayMs: 1 }))
      assert.strictEqual(status, "failed")
      assert.strictEqual(server.received.length, 1)
      assert.isFalse(node?.error?.retryable)
      assert.include(node?.error?.message, "404")
      assert.include(node?.error?.message, "no such item")
      assert.isBelow(node!.error!.message.length, 400)
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.live("a secret marker that arrives through a reference is data: sent as it is, never read", () =>
    Effect.gen(function*() {
      const server = yield* serve((request, _, res) => json(res, 200, { got: request.body }))
      const workflow: Workflow.Workflow = {
        id: "smuggle",
        inputs: { payload: { type: "json" } },
        blocks: [
          { id: "start", type: "trigger" },
          { id: "call", type: "http", params: { method: "POST", url: `${server.url}/x`, json: { $ref: "input.payload" } } }
        ],
        edges: [{ source: "start", target: "call" }]
      }
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(workflow, { payload: { $secret: "API_TOKEN" } })
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.strictEqual(server.received[0]?.body, "{\"$secret\":\"API_TOKEN\"}")
    }).pipe(Effect.scoped, Effect.provide(memory())))

  it.effect("the engine waits a BlockError's retryAfterMs on the effect Clock", () =>
    Effect.gen(function*() {
      let calls = 0
      const handlers = {
        limited: () => {
          calls++
          return calls === 1 ? Effect.fail(new BlockError.BlockError({ message: "later", retryAfterMs: 5_000 })) : Effect.succeed(calls)
        }
      }
      const workflow: Workflow.Workflow = {
        id: "later",
        blocks: [{ id: "start", type: "trigger" }, { id: "call", type: "limited", retry: { maxAttempts: 2, initialDelayMs: 10 } }],
        edges: [{ source: "start", target: "call" }]
      }
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(workflow)
        const done = yield* Effect.forkChild(runs.wait(runId))
        yield* TestClock.adjust(4_999)
        assert.strictEqual(calls, 1)
        yield* TestClock.adjust(1)
        assert.strictEqual(yield* Fiber.join(done), "completed")
        assert.strictEqual(calls, 2)
      }).pipe(Effect.provide(memory(handlers)))
    }))
})

const dump = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const tables = yield* sql.unsafe<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'ripple%' ORDER BY table_name"
  )
  const parts: Array<string> = []
  for (const { table_name } of tables) {
    const rows = yield* sql.unsafe<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t`)
    parts.push(`${table_name} (${rows.length})`, ...rows.map((r) => r.row))
  }
  return parts.join("\n")
})

layer(TestDatabase.shared("pglite"), { excludeTestServices: true })("http secrets on pglite", (it) => {
  it.effect("a secret's value reaches the server, and neither the store nor the events", () =>
    Effect.gen(function*() {
      const server = yield* serve((request, n, res) =>
        n === 1
          ? json(res, 503, { echo: request.headers["x-key"] })
          : json(res, 200, { echo: request.headers["x-key"], query: request.url, body: request.body })
      )
      const runs = yield* Runs.Runs
      const events: Array<RunEvent.RunEvent> = []
      const subscription = yield* runs.subscribe
      const collector = yield* Effect.forkChild(Stream.runForEach(subscription, (event) => Effect.sync(() => events.push(event))))
      const { runId } = yield* runs.start(call({
        method: "POST",
        url: `${server.url}/hook`,
        headers: { "X-Key": { $secret: "API_TOKEN" } },
        query: { key: { $secret: "API_TOKEN" } },
        json: { nested: [{ token: { $secret: "API_TOKEN" } }] }
      }, { maxAttempts: 2, initialDelayMs: 1 }))
      let status = yield* runs.wait(runId)
      for (let i = 0; i < 500 && status !== "completed" && status !== "failed"; i++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
        status = yield* runs.wait(runId)
      }
      assert.strictEqual(status, "completed")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      yield* Fiber.interrupt(collector)
      assert.strictEqual(server.received.length, 2)
      assert.strictEqual(server.received[1]?.headers["x-key"], secret)
      assert.include(server.received[1]?.body, secret)
      assert.include(server.received[1]?.url, secret)
      const stored = yield* dump
      assert.include(stored, "API_TOKEN")
      assert.include(stored, "[secret API_TOKEN]")
      assert.notInclude(stored, secret)
      assert.isAbove(events.length, 0)
      assert.notInclude(JSON.stringify(events), secret)
    }).pipe(
      Effect.scoped,
      Effect.provide(
        Runs.layer().pipe(
          Layer.provideMerge(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)),
          Layer.provideMerge(Handler.layerBuiltins),
          Layer.provideMerge(config)
        )
      )
    ))
})
