import { Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import * as fs from "node:fs"
import * as path from "node:path"
import { arbitraryBrokenWorkflow, arbitraryWorkflow } from "../arbitraries/workflow.ts"

const root = path.resolve(import.meta.dirname, "../..")
const schemaFile = path.join(root, "packages/core/workflow.schema.json")
const expected = `${JSON.stringify(Workflow.jsonSchema(), null, 2)}\n`

// `npm run schema` sets UPDATE_SCHEMA=1 to rewrite the checked-in file from `WorkflowSchema`.
if (process.env.UPDATE_SCHEMA === "1") fs.writeFileSync(schemaFile, expected)

describe("workflow.schema.json", () => {
  it("is current with WorkflowSchema", () => {
    const current = fs.existsSync(schemaFile) ? fs.readFileSync(schemaFile, "utf8") : ""
    assert.isTrue(
      current === expected,
      "packages/core/workflow.schema.json is stale: regenerate it with `npm run schema` and commit it"
    )
  })

  it("describes the top-level keys of the format and rejects unknown ones", () => {
    const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8")) as {
      readonly properties: Record<string, unknown>
      readonly required: ReadonlyArray<string>
      readonly additionalProperties: unknown
    }
    assert.deepStrictEqual(Object.keys(schema.properties).sort(), [
      "$schema", "blocks", "edges", "id", "inputs", "loops", "name", "outputs", "parallels", "variables", "version"
    ])
    assert.deepStrictEqual([...schema.required].sort(), ["blocks", "edges", "id"])
    assert.strictEqual(schema.additionalProperties, false)
  })

  it("the example workflows decode and point at the schema", () => {
    const dir = path.join(root, "examples")
    // Every JSON file of examples/ is a workflow, except the TypeScript/npm configuration files.
    const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json") && !/^(tsconfig.*|package)\.json$/.test(f))
    assert.isAbove(files.length, 0)
    for (const file of files) {
      const json = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as { readonly $schema?: string }
      const result = Workflow.decode(json)
      assert.isTrue(Result.isSuccess(result), `${file}: ${Result.isFailure(result) ? JSON.stringify(result.failure) : ""}`)
      assert.strictEqual(path.resolve(dir, json.$schema ?? ""), schemaFile, file)
    }
  })

  it("decode rejects unknown keys with their path", () => {
    const result = Workflow.decode({ id: "w", blocks: [{ id: "a", type: "fn", parms: {} }], edges: [] })
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) {
      assert.strictEqual(result.failure._tag, "SchemaMismatch")
      assert.deepStrictEqual(result.failure.path, ["blocks", 0, "parms"])
    }
  })
})

// The checked-in schema under a real JSON Schema validator (strict about keywords; `strictTypes` and
// `strictRequired` off: the schema puts object and array keywords side by side, as JSON Schema allows).
const validate = new Ajv2020({ strictTypes: false, strictRequired: false, allErrors: true }).compile(
  JSON.parse(fs.readFileSync(schemaFile, "utf8")) as object
)
const valid = (document: unknown): boolean => validate(document)

type Json = Workflow.Json
const ref = { $ref: "input.x" }
const secret = { $secret: "API_TOKEN" }
const one = (type: string, params: { readonly [key: string]: Json } | undefined, disabled?: boolean) => ({
  id: "w",
  inputs: { x: { type: "json" } },
  blocks: [{ id: "b", type, ...(params === undefined ? {} : { params }), ...(disabled === undefined ? {} : { disabled }) }],
  edges: []
})

// A sleep's `until` string is a date for `Date.parse`, which no JSON Schema keyword states.
const untilGap = (type: string, params: { readonly [key: string]: Json } | undefined) =>
  type === "sleep" && typeof params?.["until"] === "string" && !Number.isFinite(Date.parse(params["until"]))

describe("workflow.schema.json under a JSON Schema validator", () => {
  it("accepts the example workflows", () => {
    const dir = path.join(root, "examples")
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".json") && !/^(tsconfig.*|package)\.json$/.test(f))) {
      const document: unknown = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"))
      assert.isTrue(valid(document), `${file}: ${JSON.stringify(validate.errors)}`)
    }
  })

  it("flags each built-in type's wrong params, and leaves references, secrets and custom types where decode does", () => {
    const url = "https://api.example.com"
    const cases: ReadonlyArray<readonly [string, { readonly [key: string]: Json } | undefined, boolean, boolean?]> = [
      ["sleep", { ms: "soon" }, false],
      ["sleep", { ms: -1 }, false],
      ["sleep", {}, false],
      ["sleep", { ms: ref }, true],
      ["sleep", { until: "2026-12-24T10:00:00Z" }, true],
      ["sleep", { ms: "soon" }, false, true], // a disabled sleep's times are still checked
      ["wait", undefined, false],
      ["wait", { signal: 3 }, false],
      ["wait", { signal: ["a", ref] }, true],
      ["wait", { signal: 3 }, true, true], // a disabled block's params are not
      ["wait", { signal: "s", note: secret }, false],
      ["wait", { signal: { $ref: "nowhere.x" } }, false],
      ["condition", { op: "approx" }, false],
      ["condition", { op: ref }, true],
      ["template", { template: "x", values: [1] }, false],
      ["router", { routes: [] }, false],
      ["router", { routes: [{ handle: 3, equals: ref }] }, false],
      ["router", { routes: [{ handle: "h", equals: ref }] }, true],
      ["router", { routes: ref }, true],
      ["child", { workflow: 3 }, false],
      ["child", { workflow: [ref] }, true],
      ["http", { url: "ftp://example.com" }, false],
      ["http", { url, header: { a: "b" } }, false],
      ["http", { url, header: ref }, false],
      ["http", { url, json: {} }, false],
      ["http", { url, method: "POST", json: {}, text: "x" }, false],
      ["http", { url, timeoutMs: 300_001 }, false],
      ["http", { url: secret, headers: { a: secret, b: ref }, auth: { basic: { username: ref, password: secret } }, method: "POST", json: { deep: [secret] } }, true],
      ["http", { url, headers: { a: { $secret: "not a name" } } }, false],
      ["http", { url, auth: { bearer: 3, basic: ref } }, false],
      ["my-handler", { anything: [1, { a: ref }], at: { all: true } }, true],
      ["my-handler", { token: secret }, false]
    ]
    for (const [type, params, expected, disabled] of cases) {
      const document = one(type, params, disabled)
      const label = JSON.stringify(document.blocks[0])
      assert.strictEqual(Result.isSuccess(Workflow.decode(document)), expected, `decode: ${label}`)
      assert.strictEqual(valid(document), expected, `schema: ${label} ${JSON.stringify(validate.errors)}`)
    }
  })

  it("agrees with decode on one block's params of any built-in type (but a sleep's until string)", () => {
    const keys: { readonly [type: string]: ReadonlyArray<string> } = {
      value: ["value"],
      template: ["template", "values"],
      condition: ["op", "left"],
      router: ["routes", "default", "value"],
      fail: ["message"],
      http: ["method", "url", "query", "headers", "auth", "json", "text", "timeoutMs", "response"],
      approval: ["reason"],
      wait: ["signal"],
      sleep: ["ms", "until"],
      child: ["workflow", "input"],
      "my-handler": ["anything"]
    }
    const values: ReadonlyArray<Json> = [
      1, -1, 0.5, 400_000, "s", "https://x.org", "ftp://x.org", "GET", "POST", "eq", "json", "2026-12-24", true, null,
      [], {}, [1], { a: 1 }, { a: "b" }, ref, [ref], { a: ref }, secret, { a: secret }, [secret], { $secret: "1X" },
      { $ref: 3 }, { $ref: "nowhere.x" }, { $ref: "input.x", more: 1 },
      [{ handle: "h", equals: 1 }], [{ handle: 3 }], [{ equals: ref }], [{ handle: ref }],
      { bearer: "t" }, { bearer: secret }, { bearer: 3, x: ref }, { basic: { username: ref, password: "p" } }, { basic: { username: "u" } }
    ]
    const block = fc.constantFrom(...Object.keys(keys)).chain((type) =>
      fc.record({
        type: fc.constant(type),
        params: fc.option(fc.uniqueArray(fc.tuple(fc.constantFrom(...keys[type]!, "extra"), fc.constantFrom(...values)), { selector: ([key]) => key, maxLength: 4 })
          .map((entries) => Object.fromEntries(entries) as { readonly [key: string]: Json }), { nil: undefined }),
        disabled: fc.option(fc.boolean(), { nil: undefined })
      }))
    fc.assert(fc.property(block, ({ type, params, disabled }) => {
      const document = one(type, params, disabled)
      const decoded = Result.isSuccess(Workflow.decode(document))
      if (untilGap(type, params)) assert.isTrue(valid(document) || !decoded)
      else assert.strictEqual(valid(document), decoded, JSON.stringify(validate.errors))
    }), { numRuns: 2000 })
  })

  it("never flags a workflow that decode accepts", () => {
    fc.assert(fc.property(fc.oneof(arbitraryWorkflow(), arbitraryBrokenWorkflow().map(({ workflow }) => workflow)), (document) => {
      if (Result.isSuccess(Workflow.decode(document))) assert.isTrue(valid(document), JSON.stringify(validate.errors))
    }))
  })
})
