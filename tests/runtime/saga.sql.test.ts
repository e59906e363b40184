import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"
import { crashable } from "../helpers/crashable.ts"

type Json = Workflow.Json

const workflow: Workflow.Workflow = {
  id: "saga-sql",
  blocks: [
    { id: "reserve", type: "step" },
    { id: "charge", type: "step" },
    { id: "notify", type: "step" },
    { id: "ship", type: "boom" }
  ],
  edges: [{ source: "reserve", target: "charge" }, { source: "charge", target: "notify" }, { source: "notify", target: "ship" }]
}

/** `step` outputs its node id; `step`'s compensation records it and, at call `crashAt`, the process dies. */
const handlers = (undone: Array<string>, crash: { readonly at: number; count: number; readonly flag: { crashed: boolean } }) =>
  Handler.layer({
    step: (ctx) => Effect.succeed(ctx.node),
    boom: () => Effect.fail(BlockError.permanent("no truck"))
  }, {
    compensate: {
      step: (output: Json) =>
        Effect.suspend(() => {
          if (++crash.count === crash.at) {
            crash.flag.crashed = true
            return Effect.die("process crashed")
          }
          undone.push(output as string)
          return Effect.void
        })
    }
  })


for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`saga on ${backend}`, (it) => {
    it.effect("a crash during compensation, resumed by another process over the same database, compensates each step exactly once", () =>
      Effect.gen(function*() {
        const store = yield* RunStore.RunStore
        const undone: Array<string> = []
        const flag = { crashed: false }
        const runsOver = (s: RunStore.RunStore["Service"], crashAt: number) =>
          Runs.layer().pipe(
            Layer.provideMerge(Layer.succeed(RunStore.RunStore, s)),
            Layer.provideMerge(handlers(undone, { at: crashAt, count: 0, flag }))
          )
        const runId = yield* Effect.gen(function*() {
          const runs = yield* Runs.Runs
          const { runId } = yield* runs.start(workflow)
          yield* Effect.exit(runs.wait(runId))
          return runId
        }).pipe(Effect.provide(runsOver(crashable(store, flag), 2)))
        assert.isTrue(flag.crashed)
        assert.deepStrictEqual(undone, ["notify"])
        assert.strictEqual((yield* store.getRun(runId)).status, "running")
        const status = yield* Effect.gen(function*() {
          const runs = yield* Runs.Runs
          yield* runs.resume(runId)
          const status = yield* runs.wait(runId)
          const info = yield* runs.status(runId)
          assert.deepStrictEqual(info.compensations.map((c) => [c.node, c.status]), [
            ["notify", "completed"],
            ["charge", "completed"],
            ["reserve", "completed"]
          ])
          return status
        }).pipe(Effect.provide(runsOver(store, 0)))
        assert.strictEqual(status, "failed")
        assert.deepStrictEqual(undone, ["notify", "charge", "reserve"])
        assert.strictEqual((yield* store.getRun(runId)).diagnostics.finalization, "failed")
      }).pipe(Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))))
  })
}
