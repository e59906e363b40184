/**
 * `Worker.submit` refuses, with the typed error `Runs.start` gives and nothing written, a run the
 * workers would refuse: an invalid workflow, an unknown `to` block, a pin no handler output could
 * replace, a workflow over a cap; and `Worker.signal` a name or payload no store can hold, as
 * `Runs.signal` does (on PGlite and PostgreSQL).
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import * as fc from "fast-check"
import { unstorableText } from "../arbitraries/json.ts"
import { type Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"

const workflow: Workflow.Workflow = {
  version: 1,
  id: "submit-checks",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "gate", type: "condition", params: { left: { $ref: "input.n" }, op: "gt", right: 1 } },
    { id: "ok", type: "approval" },
    { id: "step", type: "value", params: { value: 1 } }
  ],
  edges: [
    { source: "start", target: "gate" },
    { source: "gate", target: "ok", handle: "true" },
    { source: "ok", target: "step" }
  ],
  inputs: { n: { type: "number" } },
  loops: []
}

// Every row of the tables a submitted run writes.
const rows = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const runs = yield* sql<{ readonly n: number | string }>`SELECT count(*) AS n FROM ripple_runs`
  const versions = yield* sql<{ readonly n: number | string }>`SELECT count(*) AS n FROM ripple_workflow_versions`
  return [Number(runs[0]!.n), Number(versions[0]!.n)]
})

const refusals: ReadonlyArray<readonly [string, () => ReturnType<typeof Worker.submit>, string, string]> = [
  // what, the submission, the error's tag, its cause's tag
  ["a cycle", () => Worker.submit({ ...workflow, edges: [...workflow.edges, { source: "step", target: "gate" }] }, { n: 2 }), "InvalidWorkflow", "Cycle"],
  ["no workflow", () => Worker.submit(null as unknown as Workflow.Workflow, { n: 2 }), "InvalidWorkflow", "SchemaMismatch"],
  ["a loop over a lowered cap", () =>
    Worker.submit({
      ...workflow,
      blocks: [...workflow.blocks, { id: "inner", type: "value", params: { value: 1 } }],
      edges: [...workflow.edges, { source: "start", target: "again" }],
      loops: [{ id: "again", kind: "count", count: 5, body: ["inner"] }]
    }, { n: 2 }, { limits: { maxIterations: 3 } }), "InvalidWorkflow", "LimitExceeded"],
  ["a bad input", () => Worker.submit(workflow, { n: "two" }), "InvalidInput", "InputTypeMismatch"],
  ["to an unknown block", () => Worker.submit(workflow, { n: 2 }, { to: "nope" }), "PlanFailed", "UnknownDestination"],
  ["a pin of an unknown block", () => Worker.submit(workflow, { n: 2 }, { pins: { nope: 1 } }), "PlanFailed", "InvalidPin"],
  ["a pin of a condition", () => Worker.submit(workflow, { n: 2 }, { pins: { gate: true } }), "PlanFailed", "InvalidPin"],
  ["a pin of an approval", () => Worker.submit(workflow, { n: 2 }, { pins: { ok: { by: "ada" } } }), "PlanFailed", "InvalidPin"]
]

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`Worker.submit on ${backend}`, (it) => {
    it.effect("refuses what the workers would refuse, with the typed error of Runs.start, writing nothing", () =>
      Effect.gen(function*() {
        for (const [what, submit, tag, cause] of refusals) {
          const error = yield* Effect.flip(submit())
          assert.strictEqual(error._tag, tag, what)
          assert.strictEqual("cause" in error ? (error.cause as { readonly _tag: string })._tag : undefined, cause, what)
          assert.deepStrictEqual(yield* rows, [0, 0], `${what}: nothing written`)
        }
        // What passes these checks is queued, with a pin and a destination.
        const runId = yield* Worker.submit(workflow, { n: 2 }, { to: "gate", pins: { step: 2 } })
        assert.isTrue((yield* (yield* SqlRunStore.SqlRunStore).store.getRun(runId)).queued)
        assert.deepStrictEqual(yield* rows, [1, 1])
      }).pipe(Effect.provide(SqlRunStore.layer.pipe(Layer.provideMerge(TestDatabase.layer)))))

    it.effect("Worker.signal refuses a name or payload no store can hold with InvalidPayload, and keeps nothing", () =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const runId = yield* Worker.submit(workflow, { n: 2 })
        const refused = (name: string, payload: Workflow.Json, path: ReadonlyArray<string | number>) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(Worker.signal(runId, name, payload))
            assert.strictEqual(error._tag, "InvalidPayload", `${JSON.stringify(name)} ${String(payload)}`)
            if (error._tag === "InvalidPayload") assert.deepStrictEqual(error.cause.path, path)
            assert.deepStrictEqual(yield* store.deliveries(runId), [], "nothing kept")
          })
        yield* refused("go", Number.NaN, ["payload"])
        yield* refused("go", { at: [1, Number.POSITIVE_INFINITY] }, ["payload", "at", 1])
        const context = yield* Effect.context<SqlRunStore.SqlRunStore | Database.Database>()
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(unstorableText, (bad) =>
              Effect.runPromise(Effect.andThen(refused(bad, null, ["name"]), refused("go", { text: bad }, ["payload", "text"])).pipe(
                Effect.provide(context)
              ))),
            { numRuns: 8 }
          )
        )
        assert.isTrue(yield* Worker.signal(runId, "go", { ok: true }))
        assert.strictEqual((yield* store.deliveries(runId)).length, 1)
      }).pipe(Effect.provide(SqlRunStore.layer.pipe(Layer.provideMerge(TestDatabase.layer)))))
  })
}
