/**
 * Every value round-trips (the project's invariant): what a handler returns reads back identical
 * from every store — memory, PGlite, PostgreSQL — in the node's record and in what a block reading
 * it receives. The oracle is JSON itself: a handler's value reads back as
 * `JSON.parse(JSON.stringify(value))`, key order included, so a JavaScript value JSON normalises
 * (`-0`, an `undefined` member or element, `undefined`) is normalised the same way by every store,
 * and one JSON would lose or cannot write (a bigint, a `Date`, a `Map`, a function, a class
 * instance) fails its node on every store with the same message naming it and its path.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fc from "fast-check"
import { storableJson, storableText } from "../arbitraries/json.ts"
import * as TestDatabase from "../helpers/database.ts"

type Json = Workflow.Json

// What the handler of `emit` returns next, and what it did with it afterwards.
const next: { value: unknown; afterwards: (value: unknown) => void } = { value: null, afterwards: () => {} }

const handlers = Handler.layer({
  ...Builtins.handlers,
  emit: () =>
    Effect.sync(() => {
      const value = next.value
      // Runs once the engine took the value: what was stored must not change with it.
      queueMicrotask(() => next.afterwards(value))
      return value as Json
    })
})

/** `emit → copy`: `copy` receives the output as a resolved input and outputs it again. */
const workflow: Workflow.Workflow = {
  id: "roundtrip",
  blocks: [
    { id: "emit", type: "emit" },
    { id: "copy", type: "value", params: { value: { $ref: "blocks.emit.output" } } }
  ],
  edges: [{ source: "emit", target: "copy" }]
}

// Text every store can hold: no NUL, no lone surrogate (both are refused, tested elsewhere).
const text = fc.string({ unit: "binary" })
  .map((s) => s.replace(/\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/gu, ""))

// JSON with what JavaScript adds that JSON normalises: -0, undefined members and elements.
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, true, false, -0, 0, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53 + 1, -1e-7, undefined),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    text,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.oneof(text, fc.constantFrom("__proto__", "0", "10", "01", "constructor")), tie("value"), { maxKeys: 5 })
  )
})).value

/** The output of `emit` and of `copy` as stored, and the run's status. */
const roundTrip = (emitted: unknown, afterwards: (value: unknown) => void = () => {}) =>
  Effect.gen(function*() {
    next.value = emitted
    next.afterwards = afterwards
    const runs = yield* Runs.Runs
    const { runId } = yield* runs.start(workflow)
    const status = yield* runs.wait(runId)
    const snapshot = yield* (yield* RunStore.RunStore).snapshot(runId)
    return { status, emit: snapshot.nodes["emit"]!, copy: snapshot.nodes["copy"] }
  })

const sameJson = (actual: Json | undefined, expected: Json, label: string) => {
  assert.strictEqual(JSON.stringify(actual), JSON.stringify(expected), `${label}: text and key order`)
  assert.deepStrictEqual(actual, expected, `${label}: value (-0 is not 0)`)
}

const refused: ReadonlyArray<readonly [string, unknown, string]> = [
  ["a bigint", { n: [1, 2n ** 64n] }, `["n",1]`],
  ["a Date", { at: new Date(0) }, `["at"]`],
  ["a Map", new Map([["k", 1]]), "[]"],
  ["a function", { toJSON: () => "x" }, `["toJSON"]`],
  ["a Point", [{ p: new (class Point { x = 1 })() }], `[0,"p"]`]
]

const properties = (test: (name: string, body: Effect.Effect<void, unknown, Runs.Runs | RunStore.RunStore>) => void) => {
  test("what a handler returns reads back as its JSON, key order included, in its record and downstream", Effect.gen(function*() {
    const samples = fc.sample(value, { numRuns: 60 })
    for (const emitted of samples) {
      const expected = JSON.parse(JSON.stringify(emitted) ?? "null") as Json
      const { status, emit, copy } = yield* roundTrip(emitted)
      assert.strictEqual(status, "completed", JSON.stringify(emitted))
      sameJson(emit.output, expected, "emit")
      sameJson(copy?.output, expected, "copy")
    }
  }))
  test("a value the handler mutates after returning it is stored as returned", Effect.gen(function*() {
    const { emit, copy } = yield* roundTrip({ list: [1], at: { k: "v" } }, (value) => {
      const mutable = value as { list: Array<number>; at: Record<string, string> }
      mutable.list.push(2)
      mutable.at["k"] = "changed"
    })
    sameJson(emit.output, { list: [1], at: { k: "v" } }, "emit")
    sameJson(copy?.output, { list: [1], at: { k: "v" } }, "copy")
  }))
  test("a signal payload and a run input read back as their JSON too; what JSON would lose is refused", Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const waiting: Workflow.Workflow = {
      id: "roundtrip-signal",
      blocks: [
        { id: "w", type: "wait", params: { signal: "go" } },
        { id: "c", type: "value", params: { value: { got: { $ref: "blocks.w.output" }, in: { $ref: "input.n" } } } }
      ],
      edges: [{ source: "w", target: "c" }],
      inputs: { n: { type: "object" } }
    }
    const input = { n: { z: -0, gone: undefined, list: [undefined] } } as unknown as { readonly [key: string]: Json }
    const { runId } = yield* runs.start(waiting, input)
    assert.strictEqual(yield* runs.wait(runId), "suspended")
    const payload = { x: -0, y: undefined, d: [undefined, 1] } as unknown as Json
    const date = yield* Effect.flip(runs.signal(runId, "go", { at: new Date(0) } as unknown as Json))
    assert.strictEqual(date._tag, "InvalidPayload")
    assert.isTrue(yield* runs.signal(runId, "go", payload))
    ;(payload as { d: Array<unknown> }).d.push(2)
    assert.strictEqual(yield* runs.wait(runId), "completed")
    const snapshot = yield* (yield* RunStore.RunStore).snapshot(runId)
    sameJson(snapshot.nodes["c"]?.output, { got: JSON.parse(JSON.stringify({ x: 0, d: [null, 1] })), in: { z: 0, list: [null] } }, "c")
    sameJson(snapshot.input as Json, { n: { z: 0, list: [null] } }, "input")
  }))
  test("a run input reads back with every key it was given, \"__proto__\" and \"constructor\" included", Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const entries = fc.uniqueArray(fc.tuple(fc.oneof(storableText, fc.constantFrom("__proto__", "constructor", "toString")), storableJson), {
      selector: ([key]) => key,
      minLength: 1,
      maxLength: 4
    })
    for (const given of fc.sample(entries, { numRuns: 20 })) {
      // Object.fromEntries defines own members: "__proto__" is a key like any other.
      const input = Object.fromEntries(given) as { readonly [key: string]: Json }
      const declared: Workflow.Workflow = {
        id: "roundtrip-input",
        blocks: [{ id: "start", type: "trigger" }],
        edges: [],
        inputs: Object.fromEntries(given.map(([key]) => [key, { type: "json" as const }]))
      }
      const { runId } = yield* runs.start(declared, input)
      assert.strictEqual(yield* runs.wait(runId), "completed", JSON.stringify(given))
      const snapshot = yield* store.snapshot(runId)
      // JSON.parse defines "__proto__" as an own member too.
      const expected = JSON.parse(JSON.stringify(input)) as Json
      sameJson(snapshot.input as Json, expected, "input")
      sameJson((yield* store.getRun(runId)).input as Json, expected, "run input")
      sameJson(snapshot.nodes["start"]?.output, expected, "trigger")
      // Planned again over the stored run: the same input, so nothing but the target re-runs.
      const plan = yield* runs.plan(declared, { target: "start", run: runId })
      assert.deepStrictEqual(plan.rerun, ["start"])
    }
  }))
  test("what JSON would lose fails the node, naming what and where, with nothing stored", Effect.gen(function*() {
    for (const [kind, emitted, path] of refused) {
      const { status, emit, copy } = yield* roundTrip(emitted)
      assert.strictEqual(status, "failed", kind)
      assert.strictEqual(emit.status, "failed", kind)
      assert.isUndefined(emit.output, kind)
      assert.include(emit.error?.message, `emit block emit: output ${kind}, which is not JSON data`, kind)
      assert.include(emit.error?.message, `at ${path}`, kind)
      assert.notStrictEqual(copy?.status, "completed", kind)
    }
  }))
}

describe("values round-trip in memory", () => {
  properties((name, body) =>
    it.live(name, () => Effect.provide(body, Runs.layer().pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, handlers))))))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`values round-trip on ${backend}`, (it) => {
    properties((name, body) =>
      it.effect(name, () =>
        Effect.provide(
          body,
          Runs.layer().pipe(Layer.provideMerge(Layer.merge(SqlRunStore.layer, handlers)), Layer.provideMerge(TestDatabase.layer))
        )))
  })
}
