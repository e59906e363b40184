/**
 * What a user gives reads back as every store holds it (DESIGN.md, "Values round-trip"): JSON has
 * no `-0`, so PGlite and PostgreSQL read back `0` wherever one was written; a handler's `-0` is
 * stored as `0` on every store (values.roundtrip.test.ts). A `-0` written in a workflow's literal
 * params or an input's declared default, or given as a run input, a pinned output, a signal or an
 * approval payload, must read back `0` from the memory store too — in the frozen workflow, the run's
 * input and pins, each node's resolved inputs and outputs — and every handler must be given `0`,
 * not `-0` on one store and `0` on another when the run is resumed. Checked on `start`, `runFrom`
 * and the `plan` of a dry run. A pinned output no store can hold is refused before anything is
 * written, like a run input.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Plan, type Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestDatabase from "../helpers/database.ts"

type Json = Workflow.Json

// The `-0`s anywhere in a value, by path (none in what every store holds).
const negativeZeros = (value: unknown, at = "$"): Array<string> => {
  if (Object.is(value, -0)) return [at]
  if (typeof value !== "object" || value === null) return []
  return Object.entries(value).flatMap(([key, item]) => negativeZeros(item, `${at}.${key}`))
}

// Every input a handler of `seen` was given.
const given: Array<unknown> = []
const handlers = Handler.layer({
  ...Builtins.handlers,
  seen: (ctx) => Effect.sync(() => {
    given.push(ctx.inputs)
    return null
  })
})

const workflow: Workflow.Workflow = {
  id: "negative-zero",
  inputs: { d: { type: "number", default: -0 }, n: { type: "json" } },
  blocks: [
    { id: "v", type: "value", params: { value: -0 } },
    { id: "s", type: "seen", params: { literal: { a: -0, b: [-0, 1] }, d: { $ref: "input.d" }, n: { $ref: "input.n" } } },
    { id: "p", type: "value", params: { value: 1 } },
    { id: "w", type: "wait", params: { signal: "go" } },
    { id: "a", type: "approval" },
    { id: "r", type: "seen", params: { v: { $ref: "blocks.v.output" }, p: { $ref: "blocks.p.output" }, w: { $ref: "blocks.w.output" }, a: { $ref: "blocks.a.output" } } }
  ],
  edges: [
    { source: "v", target: "r" },
    { source: "s", target: "r" },
    { source: "p", target: "r" },
    { source: "w", target: "r" },
    { source: "a", target: "r" }
  ]
}

const input = { n: { m: -0, l: [-0] } }

// Everything a store keeps of the run, and what the handlers were given.
const kept = (runId: string) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const snapshot = yield* store.snapshot(runId)
    const run = yield* store.getRun(runId)
    return {
      workflow: snapshot.workflow,
      input: snapshot.input,
      runInput: run.input,
      pins: run.pins ?? null,
      nodes: Object.fromEntries(Object.entries(snapshot.nodes).map(([id, n]) => [id, { inputs: n.inputs ?? null, output: n.output ?? null }])),
      given
    }
  })

const scenario = Effect.gen(function*() {
  given.length = 0
  const runs = yield* Runs.Runs
  const planned = yield* runs.plan(workflow, { input })
  assert.deepStrictEqual(negativeZeros({ workflow: planned.workflow, state: planned.state }), [], "the plan of a dry run")
  const { runId } = yield* runs.start(workflow, input, { pins: { p: -0 } })
  // Paused (the approval) outranks suspended (the wait).
  assert.strictEqual(yield* runs.wait(runId), "paused")
  assert.isTrue(yield* runs.approve(runId, "a", [-0]))
  assert.strictEqual(yield* runs.wait(runId), "suspended")
  assert.isTrue(yield* runs.signal(runId, "go", { g: -0 }))
  assert.strictEqual(yield* runs.wait(runId), "completed")
  const first = yield* kept(runId)
  assert.deepStrictEqual(negativeZeros(first), [], "start")
  assert.deepStrictEqual(first.nodes["s"]?.inputs, { literal: { a: 0, b: [0, 1] }, d: 0, n: { m: 0, l: [0] } })
  assert.deepStrictEqual(first.nodes["r"]?.inputs, { v: 0, p: 0, w: { g: 0 }, a: [0] } as Json)

  given.length = 0
  const again = yield* runs.runFrom(workflow, { run: runId, target: "s", input: { n: [-0] } })
  yield* runs.wait(again.runId)
  assert.deepStrictEqual(negativeZeros(yield* kept(again.runId)), [], "run-from")

  // A pin no store can hold is refused like any bad pin, before anything is written.
  const other = { ...workflow, id: "unstorable-pin" }
  const refused = yield* Effect.flip(runs.start(other, input, { pins: { p: { x: "a\u0000" } } }))
  assert.strictEqual(refused._tag, "PlanFailed")
  assert.deepStrictEqual(refused._tag === "PlanFailed" ? refused.cause : undefined, new Plan.InvalidPin({ pin: "p", reason: "NUL character (\\u0000)", path: ["pins", "p", "x"] }))
  assert.isTrue(Option.isNone(yield* (yield* RunStore.RunStore).latestSnapshot(other.id)))
})

const provided = <E, R>(store: Layer.Layer<RunStore.RunStore, E, R>) =>
  Effect.provide(Runs.layer().pipe(Layer.provideMerge(Layer.merge(store, handlers))))

describe("-0 given by a user in memory", () => {
  it.effect("reads back 0, as every store holds it", () => scenario.pipe(provided(RunStore.layerMemory)))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`-0 given by a user on ${backend}`, (it) => {
    it.effect("reads back 0, as every store holds it", () =>
      scenario.pipe(provided(SqlRunStore.layer), Effect.provide(TestDatabase.layer)))

    it.effect("a run queued for the workers reads back 0 too, in this process as in any other", () =>
      Effect.gen(function*() {
        const runId = yield* Worker.submit(workflow, input)
        const snapshot = yield* (yield* RunStore.RunStore).snapshot(runId)
        assert.deepStrictEqual(negativeZeros({ workflow: snapshot.workflow, input: snapshot.input }), [])
      }).pipe(Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))))
  })
}
