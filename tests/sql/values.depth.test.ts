/**
 * Every value round-trips, however deeply it nests (DESIGN.md, "Values round-trip"): a value nested
 * `Workflow.maxDepth` levels deep — a handler's output, what a block reading it receives and outputs
 * again, a run's input and a signal request (which hold their value one level down) — reads back identical from the memory store, PGlite and
 * PostgreSQL, and fingerprints the same after the round trip (a run-from re-running its producer
 * cuts off before its reader). One level deeper is refused on every store as `UnstorableValue`
 * naming the path of the level too deep, before anything is written — never as a misreported size.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fc from "fast-check"
import { storableText } from "../arbitraries/json.ts"
import * as TestDatabase from "../helpers/database.ts"

type Json = Workflow.Json

/** A value of `depth` nested containers: at each level an array (index 0) or an object (one key). */
interface Deep {
  readonly value: Json
  /** The path of the innermost container. */
  readonly innermost: ReadonlyArray<string | number>
}

const deep = (depth: number): fc.Arbitrary<Deep> =>
  fc.tuple(fc.array(fc.option(storableText, { nil: undefined }), { minLength: depth, maxLength: depth }), storableText).map(([levels, leaf]) => {
    let value: Json = leaf
    for (let i = levels.length - 1; i >= 0; i--) {
      const key = levels[i]
      value = key === undefined ? [value] : (Object.fromEntries([[key, value]]) as Json)
    }
    return { value, innermost: levels.slice(0, -1).map((key) => key ?? 0) }
  })

const next: { value: Json } = { value: null }

const handlers = Handler.layer({ ...Builtins.handlers, emit: () => Effect.sync(() => next.value) })

/** `emit → copy`: `copy` receives the output as its resolved input and outputs it again. */
const workflow: Workflow.Workflow = {
  id: "deep-values",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "emit", type: "emit" },
    { id: "copy", type: "value", params: { value: { $ref: "blocks.emit.output" } } }
  ],
  edges: [{ source: "start", target: "emit" }, { source: "emit", target: "copy" }]
}

const waiting: Workflow.Workflow = {
  id: "deep-payload",
  blocks: [
    { id: "w", type: "wait", params: { signal: "go" } },
    { id: "c", type: "value", params: { value: { $ref: "blocks.w.output" } } }
  ],
  edges: [{ source: "w", target: "c" }],
  inputs: { n: { type: "json", required: false } }
}

const sameText = (actual: Json | undefined, expected: Json, label: string) =>
  assert.isTrue(JSON.stringify(actual) === JSON.stringify(expected), `${label} reads back as written`)

const tooDeep = (error: { readonly _tag: string; readonly path?: ReadonlyArray<string | number> }, path: ReadonlyArray<string | number>, label: string) => {
  assert.strictEqual(error._tag, "UnstorableValue", label)
  assert.deepStrictEqual(error.path, path, label)
}

const scenario = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore
  for (const { value } of fc.sample(deep(Workflow.maxDepth), { numRuns: 2 })) {
    next.value = value
    const { runId } = yield* runs.start(workflow)
    assert.strictEqual(yield* runs.wait(runId), "completed")
    const snapshot = yield* store.snapshot(runId)
    sameText(snapshot.nodes["emit"]?.output, value, "emit")
    sameText(snapshot.nodes["copy"]?.output, value, "copy")
    // Re-running the producer gives the same output: its fingerprint matches the stored one, so
    // the reader is cut off (reused), whichever store the snapshot came from.
    const again = yield* runs.runFrom(workflow, { target: "emit", run: runId })
    assert.strictEqual(yield* runs.wait(again.runId), "completed")
    const copy = (yield* runs.node(again.runId, "copy"))[0]
    assert.strictEqual(copy?.how, "reused")
    sameText(copy?.output, value, "copy after run-from")

  }
  // A run's input and a signal request hold the value one level down: maxDepth with it.
  for (const { value } of fc.sample(deep(Workflow.maxDepth - 1), { numRuns: 2 })) {
    const parked = yield* runs.start(waiting, { n: value })
    assert.strictEqual(yield* runs.wait(parked.runId), "suspended")
    assert.isTrue(yield* runs.signal(parked.runId, "go", value))
    assert.strictEqual(yield* runs.wait(parked.runId), "completed")
    const delivered = yield* store.snapshot(parked.runId)
    sameText(delivered.nodes["c"]?.output, value, "signal payload")
    sameText(delivered.input?.["n"], value, "run input")
  }
  for (const { innermost, value } of fc.sample(deep(Workflow.maxDepth + 1), { numRuns: 2 })) {
    next.value = value
    const { runId } = yield* runs.start(workflow)
    assert.strictEqual(yield* runs.wait(runId), "failed")
    const emit = (yield* store.snapshot(runId)).nodes["emit"]
    assert.isFalse(emit !== undefined && Object.hasOwn(emit, "output"), "nothing stored")
    assert.include(emit?.error?.message, `emit block emit: output nested deeper than ${Workflow.maxDepth} levels at ${JSON.stringify(innermost)}`)
  }
  for (const { innermost, value } of fc.sample(deep(Workflow.maxDepth), { numRuns: 2 })) {
    const input = yield* Effect.flip(runs.start(waiting, { n: value }))
    assert.strictEqual(input._tag, "InvalidInput")
    if (input._tag === "InvalidInput") tooDeep(input.cause, ["n", ...innermost], "run input")

    const parked = yield* runs.start(waiting)
    assert.strictEqual(yield* runs.wait(parked.runId), "suspended")
    const payload = yield* Effect.flip(runs.signal(parked.runId, "go", value))
    assert.strictEqual(payload._tag, "InvalidPayload")
    if (payload._tag === "InvalidPayload") tooDeep(payload.cause, ["payload", ...innermost], "signal payload")
    assert.deepStrictEqual(yield* store.deliveries(parked.runId), [])
  }
})

describe("deep values in memory", () => {
  it.effect("a value maxDepth deep round-trips through output, reader, run-from, input and payload; deeper is refused by path", () =>
    scenario.pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, handlers))))))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`deep values on ${backend}`, (it) => {
    it.effect("a value maxDepth deep round-trips through output, reader, run-from, input and payload; deeper is refused by path", () =>
      scenario.pipe(
        Effect.provide(Runs.layer().pipe(Layer.provideMerge(Layer.merge(SqlRunStore.layer, handlers)), Layer.provideMerge(TestDatabase.layer)))
      ))
  })
}
