import { Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"

// A small valid workflow: trigger → fetch → loop L { item → (P { leaf }) } → out, with references.
const base = () => ({
  id: "w",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "fetch", type: "fn", params: { url: { $ref: "input.url" } } },
    { id: "item", type: "fn", params: { x: { $ref: "loop.item" }, base: { $ref: "blocks.fetch.output.base" } } },
    { id: "leaf", type: "fn", params: { i: { $ref: "parallel.index" }, v: { $ref: "blocks.item.output" } } },
    { id: "out", type: "response", params: { all: { $ref: "blocks.L.output" }, n: { $ref: "vars.n" } } }
  ] as Array<Record<string, unknown>>,
  edges: [
    { source: "start", target: "fetch" },
    { source: "fetch", target: "L" },
    { source: "item", target: "P" },
    { source: "L", target: "out" }
  ] as Array<Record<string, unknown>>,
  loops: [{ id: "L", kind: "forEach", items: { $ref: "blocks.fetch.output.items" }, body: ["item", "P"] }] as Array<
    Record<string, unknown>
  >,
  parallels: [{ id: "P", kind: "count", count: 2, body: ["leaf"] }] as Array<Record<string, unknown>>,
  inputs: { url: { type: "string" }, limit: { type: "number", default: 5 } } as Record<string, unknown>,
  variables: { n: 1 },
  outputs: ["out"] as Array<string>
})

const failure = (input: unknown): Workflow.WorkflowError => {
  const result = Workflow.decode(input)
  if (Result.isSuccess(result)) assert.fail("expected decode to fail")
  return result.failure
}

describe("Workflow.decode examples", () => {
  it("accepts the base workflow and encodes it back", () => {
    const workflow = Result.getOrThrow(Workflow.decode(base()))
    assert.deepStrictEqual(Workflow.encode(workflow), base() as unknown)
  })

  it("SchemaMismatch with the schema issue path", () => {
    const w = base()
    w.blocks[2] = { id: "item", type: 7 }
    const error = failure(w)
    assert.strictEqual(error._tag, "SchemaMismatch")
    assert.deepStrictEqual(error.path, ["blocks", 2, "type"])
  })

  it("InvalidId and ReservedCharacter", () => {
    const w = base()
    w.blocks[1] = { id: "", type: "fn" }
    assert.deepInclude(failure(w), { _tag: "InvalidId", id: "", path: ["blocks", 1, "id"] })
    for (const id of ["", "  "]) assert.deepInclude(failure({ ...base(), id }), { _tag: "InvalidId", id, path: ["id"] })
    // 256 bytes pass, 257 do not; counted in UTF-8 (an "é" takes 2).
    assert.isTrue(Result.isSuccess(Workflow.decode({ ...base(), id: "w".repeat(Workflow.maxIdBytes) })))
    assert.deepInclude(failure({ ...base(), id: "w".repeat(Workflow.maxIdBytes + 1) }), { _tag: "IdTooLong", bytes: 257, limit: 256, path: ["id"] })
    const t = base()
    t.blocks[1] = { id: "é".repeat(129), type: "fn" }
    assert.deepInclude(failure(t), { _tag: "IdTooLong", bytes: 258, path: ["blocks", 1, "id"] })
    const v = base()
    v.loops[0] = { ...v.loops[0], id: "L.1" }
    assert.deepInclude(failure(v), { _tag: "ReservedCharacter", id: "L.1", character: ".", path: ["loops", 0, "id"] })
    const u = base()
    u.blocks[0] = { id: "my start", type: "trigger" }
    assert.deepInclude(failure(u), { _tag: "ReservedCharacter", character: " " })
  })

  it("DuplicateId across blocks and containers", () => {
    const w = base()
    w.parallels[0] = { ...w.parallels[0], id: "fetch" }
    assert.deepInclude(failure(w), {
      _tag: "DuplicateId",
      id: "fetch",
      path: ["parallels", 0, "id"],
      firstPath: ["blocks", 1, "id"]
    })
  })

  it("EmptyParallel, EmptyLoop, MissingMaxIterations, MissingContainerField", () => {
    const w = base()
    w.parallels[0] = { ...w.parallels[0], body: [] }
    assert.deepInclude(failure(w), { _tag: "EmptyParallel", id: "P", path: ["parallels", 0, "body"] })
    const v = base()
    v.loops.push({ id: "L2", kind: "count", count: 1, body: [] })
    assert.deepInclude(failure(v), { _tag: "EmptyLoop", id: "L2", path: ["loops", 1, "body"] })
    const u = base()
    u.loops[0] = { id: "L", kind: "while", condition: { left: 1, op: "eq", right: 1 }, body: ["item", "P"] }
    assert.deepInclude(failure(u), { _tag: "MissingMaxIterations", id: "L", path: ["loops", 0, "maxIterations"] })
    const t = base()
    t.loops[0] = { id: "L", kind: "forEach", body: ["item", "P"] }
    assert.deepInclude(failure(t), { _tag: "MissingContainerField", id: "L", field: "items", path: ["loops", 0, "items"] })
  })

  it("UnknownBodyMember, BlockInTwoContainers, ContainerNestedInItself", () => {
    const w = base()
    w.parallels[0] = { ...w.parallels[0], body: ["leaf", "ghost"] }
    assert.deepInclude(failure(w), { _tag: "UnknownBodyMember", container: "P", id: "ghost", path: ["parallels", 0, "body", 1] })
    const v = base()
    v.parallels[0] = { ...v.parallels[0], body: ["leaf", "item"] }
    assert.deepInclude(failure(v), {
      _tag: "BlockInTwoContainers",
      id: "item",
      containers: ["L", "P"],
      path: ["parallels", 0, "body", 1]
    })
    const u = base()
    u.parallels[0] = { ...u.parallels[0], body: ["leaf", "L"] }
    const error = failure(u)
    assert.strictEqual(error._tag, "ContainerNestedInItself")
    if (error._tag === "ContainerNestedInItself") assert.deepStrictEqual(error.chain, ["L", "P", "L"])
  })

  it("DanglingEdge and EdgeCrossesContainer", () => {
    const w = base()
    w.edges.push({ source: "out", target: "nowhere" })
    assert.deepInclude(failure(w), { _tag: "DanglingEdge", missing: "nowhere", path: ["edges", 4, "target"] })
    const v = base()
    v.edges.push({ source: "fetch", target: "leaf" })
    assert.deepInclude(failure(v), {
      _tag: "EdgeCrossesContainer",
      source: "fetch",
      target: "leaf",
      sourceContainer: undefined,
      targetContainer: "P",
      path: ["edges", 4]
    })
  })

  it("UnknownOutput and a mistyped input default", () => {
    const w = base()
    w.outputs = ["out", "nope"]
    assert.deepInclude(failure(w), { _tag: "UnknownOutput", id: "nope", path: ["outputs", 1] })
    const v = base()
    v.inputs = { ...v.inputs, limit: { type: "number", default: "five" } }
    assert.deepInclude(failure(v), { _tag: "InputTypeMismatch", key: "limit", path: ["inputs", "limit", "default"] })
  })

  it("Cycle names the cycle and one of its edges", () => {
    const w = base()
    w.edges.push({ source: "out", target: "fetch" })
    const error = failure(w)
    assert.strictEqual(error._tag, "Cycle")
    if (error._tag === "Cycle") {
      assert.deepStrictEqual([...new Set(error.cycle)].sort(), ["L", "fetch", "out"])
      assert.strictEqual(error.cycle.length, 4)
      assert.strictEqual(error.cycle[0], error.cycle[error.cycle.length - 1])
      assert.strictEqual(error.path[0], "edges")
    }
    const v = base()
    v.edges.push({ source: "leaf", target: "leaf" })
    assert.deepInclude(failure(v), { _tag: "Cycle", cycle: ["leaf", "leaf"], path: ["edges", 4] })
  })

  it("reference errors name the owner, the reference and its path", () => {
    const w = base()
    w.blocks[1] = { id: "fetch", type: "fn", params: { a: [0, { $ref: "blocks.ghost.output" }] } }
    assert.deepInclude(failure(w), {
      _tag: "UnknownReference",
      owner: "fetch",
      target: "ghost",
      path: ["blocks", 1, "params", "a", 1]
    })
    const v = base()
    v.blocks[1] = { id: "fetch", type: "fn", params: { a: { $ref: "blocks.out.output" } } }
    assert.deepInclude(failure(v), { _tag: "NonAncestorReference", owner: "fetch", target: "out" })
    const u = base()
    u.blocks[4] = { id: "out", type: "response", params: { a: { $ref: "blocks.leaf.output" } } }
    assert.deepInclude(failure(u), { _tag: "NonAncestorReference", owner: "out", target: "leaf" })
    const t = base()
    t.blocks[1] = { id: "fetch", type: "fn", params: { i: { $ref: "loop.index" } } }
    assert.deepInclude(failure(t), { _tag: "ReferenceOutsideScope", owner: "fetch", scope: "loop", path: ["blocks", 1, "params", "i"] })
    const s = base()
    s.blocks[2] = { id: "item", type: "fn", params: { i: { $ref: "parallel.item" } } }
    assert.deepInclude(failure(s), { _tag: "ReferenceOutsideScope", owner: "item", scope: "parallel" })
    const r = base()
    r.blocks[1] = { id: "fetch", type: "fn", params: { x: { $ref: "input.nope" }, y: { $ref: "vars.n" } } }
    assert.deepInclude(failure(r), { _tag: "UnknownReference", target: "input.nope" })
    const q = base()
    q.blocks[1] = { id: "fetch", type: "fn", params: { x: { $ref: "blocks.start" } } }
    assert.deepInclude(failure(q), { _tag: "InvalidReference", owner: "fetch", path: ["blocks", 1, "params", "x"] })
    const p = base()
    p.loops[0] = { ...p.loops[0], items: { $ref: "blocks.item.output" } }
    assert.deepInclude(failure(p), { _tag: "NonAncestorReference", owner: "L", path: ["loops", 0, "items"] })
  })

  it("a while condition may read the loop's own body and index", () => {
    const w = base()
    w.loops[0] = {
      id: "L",
      kind: "while",
      maxIterations: 10,
      condition: { left: { $ref: "blocks.item.output" }, op: "lt", right: { $ref: "loop.index" } },
      body: ["item", "P"]
    }
    w.blocks[2] = { id: "item", type: "fn", params: { i: { $ref: "loop.index" } } }
    assert.isTrue(Result.isSuccess(Workflow.decode(w)))
  })
})

describe("Workflow.inputsFor", () => {
  const workflow = Result.getOrThrow(Workflow.decode(base()))

  it("fills defaults", () => {
    assert.deepStrictEqual(Result.getOrThrow(Workflow.inputsFor(workflow, { url: "u" })), { url: "u", limit: 5 })
    assert.deepStrictEqual(Result.getOrThrow(Workflow.inputsFor(workflow, { url: "u", limit: 9 })), { url: "u", limit: 9 })
  })

  it("reports missing, unknown and mistyped inputs", () => {
    assert.deepStrictEqual(Workflow.inputsFor(workflow, {}), Result.fail(new Workflow.MissingInput({ key: "url", path: ["url"] })))
    assert.deepStrictEqual(
      Workflow.inputsFor(workflow, { url: "u", extra: 1 }),
      Result.fail(new Workflow.UnknownInput({ key: "extra", path: ["extra"] }))
    )
    assert.deepStrictEqual(
      Workflow.inputsFor(workflow, { url: 3 }),
      Result.fail(new Workflow.InputTypeMismatch({ key: "url", expected: "string", actual: "number", path: ["url"] }))
    )
  })

  it("an input declared required: false may be absent", () => {
    const w = Result.getOrThrow(Workflow.decode({ ...base(), inputs: { url: { type: "string", required: false } } }))
    assert.deepStrictEqual(Result.getOrThrow(Workflow.inputsFor(w, {})), {})
  })
})
