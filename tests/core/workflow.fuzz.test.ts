/**
 * `Workflow.decode` over mutated example workflows (issue 15): whatever the file holds, it returns
 * a `Result` (it never throws), and what it accepts has nothing a store cannot hold, no sleep Ripple
 * cannot wait for and no stated work past the default `Limits`. And its hand-written fast path
 * decides exactly as the `effect/Schema` decoder (issue 18): same workflow, same error and path.
 */
import { Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryBrokenWorkflow, arbitraryWorkflow } from "../arbitraries/workflow.ts"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const folder = join(import.meta.dirname, "..", "..", "examples")
const examples: ReadonlyArray<unknown> = readdirSync(folder)
  .filter((name) => name.endsWith(".json"))
  .map((name) => JSON.parse(readFileSync(join(folder, name), "utf8")))

// Every path to a value inside a JSON document (the root excluded).
const pathsOf = (value: unknown, at: ReadonlyArray<string | number> = []): Array<ReadonlyArray<string | number>> => {
  if (typeof value !== "object" || value === null || at.length > 40) return []
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value)
  return entries.flatMap(([key, inner]) => [[...at, key], ...pathsOf(inner, [...at, key])])
}

const deep = (depth: number): unknown => {
  let value: unknown = 0
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

// What a careless or hostile edit puts somewhere in a file.
const replacement: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom("a\u0000b", "\ud800", "x\udc00", "sleep", "count", "forEach", "collection", "while", "+275761-01-01", "not a date"),
  fc.constantFrom(1e9, 1e7, 1e17, -1, 0, 8.64e15 + 1, Number.POSITIVE_INFINITY, Number.NaN, 10_001, 100_001),
  // Stands for a value nested past `Workflow.maxDepth` (built in `mutate`: fast-check prints values recursively).
  fc.constant("<deep>")
)

// Keys an edit adds to an object: every field name of the format (valid in some objects, excess in
// others), a stranger, and `__proto__` as an own key (what `JSON.parse` makes of it).
const addedKey = fc.constantFrom(
  "id", "type", "params", "name", "volatile", "retry", "maxAttempts", "initialDelayMs", "source", "target", "handle",
  "body", "kind", "count", "items", "condition", "maxIterations", "concurrency", "required", "default", "description",
  "$schema", "version", "blocks", "edges", "loops", "parallels", "inputs", "outputs", "variables", "$ref", "extra",
  "__proto__"
)

const mutation = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom("replace", "delete", "key", "add", "sleep", "count"),
  value: replacement,
  key: addedKey
})

const mutate = (file: unknown, mutations: ReadonlyArray<typeof mutation extends fc.Arbitrary<infer M> ? M : never>): unknown => {
  const copy = structuredClone(file) as Record<string, unknown>
  const list = (key: string): Array<Record<string, unknown>> => Array.isArray(copy[key]) ? copy[key] as Array<Record<string, unknown>> : []
  for (const mutation of mutations) {
    const { at, kind } = mutation
    // A copy: the generated value must not become part of the file (a later edit would change the
    // counterexample fast-check reports, or add a key to an object inside itself).
    const value = mutation.value === "<deep>" ? deep(Workflow.maxDepth + 5) : structuredClone(mutation.value)
    // A sleep or a container count lands on a block or container (a random path rarely would).
    if (kind === "sleep" || kind === "count") {
      const targets = kind === "sleep" ? list("blocks") : [...list("loops"), ...list("parallels")]
      const target = targets[at % Math.max(1, targets.length)]
      // An earlier edit may have replaced the block or container by something else.
      if (typeof target !== "object" || target === null || Array.isArray(target)) continue
      if (kind === "sleep") {
        target["type"] = "sleep"
        target["params"] = { [typeof value === "string" ? "until" : "ms"]: value }
      } else {
        const loop = list("loops").includes(target)
        target["kind"] = loop && at % 2 === 0 ? "while" : "count"
        target["count"] = value
        if (loop) target["maxIterations"] = value
      }
      continue
    }
    const paths = pathsOf(copy)
    if (paths.length === 0) return copy
    const path = paths[at % paths.length]!
    let parent = copy as Record<string | number, unknown>
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
    const key = path[path.length - 1]!
    if (kind === "delete") {
      if (Array.isArray(parent)) parent.splice(key as number, 1)
      else delete parent[key]
    } else if (kind === "add") {
      // Into the object at the path (or holding it), as an own enumerable key whatever its name.
      const inner = parent[key]
      const target = typeof inner === "object" && inner !== null && !Array.isArray(inner) ? inner : parent
      if (!Array.isArray(target)) Object.defineProperty(target, mutation.key, { value, enumerable: true, writable: true, configurable: true })
    } else if (kind === "key" && !Array.isArray(parent) && typeof value === "string") {
      parent[value] = parent[key]
      delete parent[key]
    } else {
      parent[key] = value
    }
  }
  return copy
}

// Iterations and branches the file states, each with its default cap (what data decides is not stated).
const statedWork = (workflow: Workflow.Workflow): ReadonlyArray<[number, number]> => {
  const { maxBranches, maxIterations } = Workflow.defaultLimits
  const out: Array<[number, number]> = []
  for (const l of workflow.loops ?? []) {
    if (l.kind === "count" && typeof l.count === "number") out.push([l.count, maxIterations])
    if (l.kind === "forEach" && Array.isArray(l.items)) out.push([l.items.length, maxIterations])
    if (l.kind === "while") out.push([l.maxIterations ?? 0, maxIterations])
  }
  for (const p of workflow.parallels ?? []) {
    if (p.kind === "count" && typeof p.count === "number") out.push([p.count, maxBranches])
    if (p.kind === "collection" && Array.isArray(p.items)) out.push([p.items.length, maxBranches])
  }
  return out
}

// Independent of the implementation: PostgreSQL text holds well-formed UTF-16 without NUL.
const storableText = (text: string): boolean =>
  !text.includes("\u0000") && (text as string & { isWellFormed(): boolean }).isWellFormed()

const everyStringStorable = (value: unknown): boolean => {
  const stack = [value]
  while (stack.length > 0) {
    const current = stack.pop()
    if (typeof current === "string" && !storableText(current)) return false
    if (typeof current === "number" && !Number.isFinite(current)) return false
    if (typeof current === "object" && current !== null) {
      for (const [key, inner] of Object.entries(current)) {
        if (!storableText(key)) return false
        stack.push(inner)
      }
    }
  }
  return true
}

describe("Workflow.decode over mutated examples", () => {
  it("never throws, and accepts nothing a store cannot hold, no impossible sleep, no work past the limits", () => {
    fc.assert(
      fc.property(fc.constantFrom(...examples), fc.array(mutation, { minLength: 1, maxLength: 4 }), (example, mutations) => {
        const file = mutate(example, mutations)
        let decoded: Result.Result<Workflow.Workflow, Workflow.WorkflowError> | undefined
        assert.doesNotThrow(() => (decoded = Workflow.decode(file)))
        assert.isTrue(Result.isResult(decoded))
        if (decoded === undefined || Result.isFailure(decoded)) return
        const workflow = decoded.success
        assert.isTrue(everyStringStorable(workflow), "accepted an unstorable value")
        for (const [stated, max] of statedWork(workflow)) assert.isAtMost(stated, max, "accepted work past a limit")
        for (const block of workflow.blocks) {
          if (block.type !== "sleep") continue
          const { ms, until } = block.params ?? {}
          if (typeof ms === "number") assert.isTrue(ms >= 0 && ms <= Workflow.maxSleepMs, `accepted sleep ms ${ms}`)
          if (typeof until === "number") assert.isAtMost(Math.abs(until), Workflow.maxTime)
          if (typeof until === "string") assert.isTrue(Number.isFinite(Date.parse(until)), `accepted until ${until}`)
        }
      })
    )
  })
})

// A decode result as plain data: the workflow as text (key order counts, fingerprints see it), or
// the error's tag, message and every field (path included).
const outcome = (result: Result.Result<Workflow.Workflow, Workflow.WorkflowError>): unknown =>
  Result.isSuccess(result)
    ? { workflow: JSON.stringify(result.success) }
    : { error: { ...result.failure, _tag: result.failure._tag, message: result.failure.message } }

const agree = (file: unknown): void => {
  const fast = Workflow.decode(file)
  const schema = Workflow.decode(file, { fastPath: false })
  assert.deepStrictEqual(outcome(fast), outcome(schema))
  // A fresh workflow either way: nothing of the decoded structure is the input's own object.
  if (Result.isSuccess(fast)) assert.notStrictEqual<unknown>(fast.success, file)
}

describe("Workflow.decode's fast path", () => {
  it("agrees with the Schema decoder on random valid workflows", () => {
    fc.assert(fc.property(arbitraryWorkflow(), agree))
  })

  it("agrees with the Schema decoder on random workflows with disabled blocks", () => {
    fc.assert(fc.property(arbitraryWorkflow({ disabled: true }), (workflow) => {
      assert.isTrue(Result.isSuccess(Workflow.decode(workflow)))
      agree(workflow)
    }))
  })

  it("agrees with the Schema decoder on random broken workflows", () => {
    fc.assert(fc.property(arbitraryBrokenWorkflow(), ({ workflow }) => agree(workflow)))
  })

  it("agrees with the Schema decoder on mutated examples and random workflows", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(...examples), arbitraryWorkflow()),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (file, mutations) => agree(mutate(file, mutations))
      )
    )
  })
})
