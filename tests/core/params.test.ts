/**
 * `Workflow.decode` checks built-in blocks' literal params (`Params.builtins`) and where secrets
 * may appear: each refusal names the block and the JSON path; a value read through a reference is
 * left to run time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Params, Workflow } from "@ripple/core"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

type Json = Workflow.Json

const one = (block: { readonly [key: string]: Json }, extra: { readonly [key: string]: Json } = {}) =>
  Workflow.decode({
    id: "w",
    blocks: [{ id: "start", type: "trigger" }, { id: "b", ...block }],
    edges: [{ source: "start", target: "b" }],
    ...extra
  })

const refused = (block: { readonly [key: string]: Json }, tag: string, path: ReadonlyArray<string | number>, extra = {}) => {
  const result = one(block, extra)
  assert.isTrue(Result.isFailure(result), JSON.stringify(block))
  if (Result.isFailure(result)) {
    assert.strictEqual(result.failure._tag, tag, JSON.stringify(block))
    assert.deepStrictEqual(result.failure.path, ["blocks", 1, "params", ...path], JSON.stringify(block))
    assert.strictEqual((result.failure as { readonly block?: string; readonly owner?: string }).block ?? (result.failure as { readonly owner?: string }).owner, "b")
  }
}

const accepted = (block: { readonly [key: string]: Json }, extra = {}) => {
  const result = one(block, extra)
  assert.isTrue(Result.isSuccess(result), Result.isFailure(result) ? result.failure.message : "")
}

const url = "https://api.example.com/v1"

describe("Workflow.decode: params", () => {
  it("refuses built-in params that no reference can fix", () => {
    refused({ type: "value" }, "InvalidParams", ["value"])
    refused({ type: "template", params: { template: 3 } }, "InvalidParams", ["template"])
    refused({ type: "template", params: { template: "x", values: [1] } }, "InvalidParams", ["values"])
    refused({ type: "condition", params: { left: 1, op: "approx", right: 2 } }, "InvalidParams", ["op"])
    refused({ type: "router", params: { value: 1 } }, "InvalidParams", ["routes"])
    refused({ type: "router", params: { value: 1, routes: [] } }, "InvalidParams", ["routes"])
    refused({ type: "router", params: { value: 1, routes: [{ equals: 1 }] } }, "InvalidParams", ["routes", 0, "handle"])
    refused({ type: "fail", params: { message: 3 } }, "InvalidParams", ["message"])
    refused({ type: "wait", params: {} }, "InvalidParams", ["signal"])
    refused({ type: "approval", params: { reason: ["x"] } }, "InvalidParams", ["reason"])
    refused({ type: "sleep", params: {} }, "InvalidParams", ["ms"])
    refused({ type: "child", params: { workflow: 3 } }, "InvalidParams", ["workflow"])
    refused({ type: "http", params: {} }, "InvalidParams", ["url"])
    refused({ type: "http", params: { url, method: "FETCH" } }, "InvalidParams", ["method"])
    refused({ type: "http", params: { url, timeoutMs: 300_001 } }, "InvalidParams", ["timeoutMs"])
    refused({ type: "http", params: { url, timeoutMs: 0 } }, "InvalidParams", ["timeoutMs"])
    refused({ type: "http", params: { url, json: {} } }, "InvalidParams", ["json"])
    refused({ type: "http", params: { url, method: "POST", json: {}, text: "x" } }, "InvalidParams", ["text"])
    refused({ type: "http", params: { url: "ftp://example.com" } }, "InvalidParams", ["url"])
    refused({ type: "http", params: { url, header: { a: "b" } } }, "InvalidParams", ["header"])
    // No value a reference reads makes an unknown key known.
    refused({ type: "http", params: { url, header: { $ref: "input.x" } } }, "InvalidParams", ["header"], { inputs: { x: { type: "json" } } })
    refused({ type: "http", params: { url, headers: { a: 1 } } }, "InvalidParams", ["headers", "a"])
  })

  it("leaves what references supply to run time", () => {
    accepted({ type: "value", params: { value: { $ref: "input.x" } } }, { inputs: { x: { type: "json" } } })
    accepted({ type: "template", params: { template: { $ref: "input.x" } } }, { inputs: { x: { type: "json" } } })
    accepted({ type: "condition", params: { left: 1, op: { $ref: "input.x" } } }, { inputs: { x: { type: "json" } } })
    accepted({ type: "router", params: { value: 1, routes: { $ref: "input.x" } } }, { inputs: { x: { type: "json" } } })
    accepted({ type: "router", params: { value: 1, routes: [{ handle: { $ref: "input.x" }, equals: 1 }] } }, { inputs: { x: { type: "json" } } })
    accepted({ type: "router", params: { value: 1, default: "other" } })
    accepted({ type: "sleep", params: { until: { $ref: "input.x" } } }, { inputs: { x: { type: "json" } } })
    accepted({ type: "http", params: { url: { $ref: "input.x" }, method: { $ref: "input.x" }, json: 1 } }, { inputs: { x: { type: "json" } } })
    accepted({ type: "http", params: { url, headers: { a: { $ref: "input.x" } }, timeoutMs: { $ref: "input.x" } } }, { inputs: { x: { type: "json" } } })
    // One member of a union fits once references are set aside: the union fits (auth is bearer or basic).
    accepted({ type: "http", params: { url, auth: { basic: { username: { $ref: "input.x" }, password: "p" } } } }, { inputs: { x: { type: "json" } } })
    refused({ type: "http", params: { url, auth: { basic: { username: { $ref: "input.x" } } } } }, "InvalidParams", ["auth", "basic"], { inputs: { x: { type: "json" } } })
    // A disabled block never runs its type.
    accepted({ type: "value", disabled: true })
    // Extra params of the older types are theirs to ignore (an approval shows them to its approver).
    accepted({ type: "approval", params: { reason: "ship?", amount: 3 } })
  })

  it("reads secrets only in an http block's url, query, headers, auth, json and text", () => {
    const token = { $secret: "API_TOKEN" }
    accepted({ type: "http", params: { url: token, query: { k: token }, headers: { a: token }, auth: { bearer: token }, method: "POST", json: { deep: [token] } } })
    accepted({ type: "http", params: { url, auth: { basic: { username: "u", password: token } }, method: "PUT", text: token } })
    refused({ type: "value", params: { value: token } }, "InvalidSecret", ["value"])
    refused({ type: "template", params: { template: "x", values: { k: token } } }, "InvalidSecret", ["values", "k"])
    refused({ type: "http", params: { url, method: token } }, "InvalidSecret", ["method"])
    refused({ type: "http", params: { url, headers: { a: { $secret: "not a name" } } } }, "InvalidSecret", ["headers", "a"])
    refused({ type: "http", params: { url, headers: { a: { $secret: "A", b: 1 } } } }, "InvalidSecret", ["headers", "a"])
    const container = Workflow.decode({
      id: "w",
      blocks: [{ id: "b", type: "value", params: { value: 1 } }],
      edges: [],
      loops: [{ id: "l", kind: "count", count: { $secret: "N" }, body: ["b"] }]
    })
    assert.isTrue(Result.isFailure(container) && container.failure._tag === "InvalidSecret")
  })

  it("Params.problem checks any schema the same way (custom handlers' params)", () => {
    const schema = Schema.Struct({ to: Schema.String, count: Schema.Number })
    assert.deepStrictEqual(Params.problem(schema, { to: "a" })?.path, ["count"])
    assert.deepStrictEqual(Params.problem(schema, { to: 1, count: 1 })?.path, ["to"])
    assert.isUndefined(Params.problem(schema, { to: { $ref: "input.to" }, count: 2 }))
    assert.isUndefined(Params.problem(schema, { to: "a", count: 1 }))
  })
})
