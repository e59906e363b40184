/**
 * Records keyed by block and container ids must read back whatever the id (DESIGN.md, "Values
 * round-trip"): a snapshot's node records and scopes, a run's reasons, its observed outputs (the
 * record a `child` block gets) are all keyed by ids. `__proto__` is the one id no such record can
 * hold by assignment (`record[id] = value` sets the record's prototype): before it was refused, a
 * block named `__proto__` kept its record in memory but lost it from PGlite's and PostgreSQL's
 * snapshot (so a run-from re-ran it there and reused it in memory), and lost its output from the
 * run's outputs on every store. It is refused as `InvalidId` naming its path, by every store,
 * before anything is written; every other id keeps working, `constructor` and `toString` included
 * (a lookup of what was recorded for such a node must not find what every object inherits).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { NodeId, type Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestDatabase from "../helpers/database.ts"

/** `start → <id> → reader`, both observed; `reader` reads `<id>`'s output. */
const block = (id: string): Workflow.Workflow => ({
  id: "named-block",
  blocks: [
    { id: "start", type: "trigger" },
    { id, type: "value", params: { value: { n: 1, list: [2] } } },
    { id: "reader", type: "value", params: { value: { got: { $ref: `blocks.${id}.output` } } } }
  ],
  edges: [{ source: "start", target: id }, { source: id, target: "reader" }],
  outputs: [id, "reader"]
})

/** A loop named `id`, the workflow's observed output. */
const loop = (id: string): Workflow.Workflow => ({
  id: "named-loop",
  blocks: [{ id: "start", type: "trigger" }, { id: "b", type: "value", params: { value: 1 } }],
  edges: [{ source: "start", target: id }],
  loops: [{ id, kind: "count", count: 2, body: ["b"] }]
})

const refused = (workflow: Workflow.Workflow, path: ReadonlyArray<string | number>) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const attempts: ReadonlyArray<Effect.Effect<unknown, Runs.RunsError>> = [runs.start(workflow), runs.plan(workflow)]
    for (const attempt of attempts) {
      const error = yield* Effect.flip(attempt)
      assert.strictEqual(error._tag, "InvalidWorkflow")
      if (error._tag === "InvalidWorkflow") {
        assert.strictEqual(error.cause._tag, "InvalidId")
        assert.deepStrictEqual(error.cause.path, path)
      }
    }
    assert.isTrue(Option.isNone(yield* (yield* RunStore.RunStore).latestSnapshot(workflow.id)), "no run written")
  })

const scenario = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore
  yield* refused(block("__proto__"), ["blocks", 1, "id"])
  yield* refused(loop("__proto__"), ["loops", 0, "id"])
  assert.isFalse(NodeId.isValidId("__proto__"))
  // Ids an object inherits members for are ids like any other.
  for (const id of ["constructor", "toString", "__proto", "proto__"]) {
    const { runId } = yield* runs.start(block(id))
    assert.strictEqual(yield* runs.wait(runId), "completed")
    const snapshot = yield* store.snapshot(runId)
    assert.isTrue(Object.hasOwn(snapshot.nodes, id), id)
    assert.strictEqual(JSON.stringify(yield* runs.outputs(runId)), JSON.stringify({ [id]: { n: 1, list: [2] }, reader: { got: { n: 1, list: [2] } } }))
    assert.deepStrictEqual((yield* runs.plan(block(id), { target: "reader", run: runId })).rerun, ["reader"], id)
    // The run's view (`ripple show`, the studio) reads the reasons recorded for the node, none
    // here: not a member every object inherits.
    const views = yield* runs.nodes(runId)
    assert.deepStrictEqual(views.map((v) => [v.node, v.how, v.reasons]).sort(), [[id, "executed", ["full run"]], ["reader", "executed", ["full run"]], ["start", "executed", ["full run"]]].sort())
    assert.deepStrictEqual((yield* runs.node(runId, id)).map((v) => v.reasons), [["full run"]])
  }
})

const handlers = Handler.layer(Builtins.handlers)

describe("ids in memory", () => {
  it.effect("a block or loop named __proto__ is refused by path, nothing written; other ids key their records and views", () =>
    scenario.pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, handlers))))))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`ids on ${backend}`, (it) => {
    it.effect("a block or loop named __proto__ is refused by path, nothing written; other ids key their records and views", () =>
      scenario.pipe(
        Effect.provide(Runs.layer().pipe(Layer.provideMerge(Layer.merge(SqlRunStore.layer, handlers)), Layer.provideMerge(TestDatabase.layer)))
      ))
  })
}
