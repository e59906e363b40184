import { Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fs from "node:fs"
import * as path from "node:path"

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
