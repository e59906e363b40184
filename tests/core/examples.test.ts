import { Dag, Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const folder = join(import.meta.dirname, "..", "..", "examples")
const files = readdirSync(folder).filter((name) => name.endsWith(".json") && name !== "tsconfig.json")

describe("examples/", () => {
  it("has example workflows", () => {
    assert.isAtLeast(files.length, 2)
  })
  for (const name of files) {
    it(`${name} is a valid workflow with a trigger and an observed output`, () => {
      const decoded = Workflow.decode(JSON.parse(readFileSync(join(folder, name), "utf8")))
      if (Result.isFailure(decoded)) assert.fail(`${name}: ${decoded.failure.message}`)
      const dag = Dag.make(decoded.success)
      assert.isAtLeast(Dag.triggers(dag).length, 1)
      assert.isAtLeast(Dag.observed(dag).length, 1)
    })
  }
})
