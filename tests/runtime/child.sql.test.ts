import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"
import { parent } from "../sql/fixtures/parentChild.ts"

type Json = Workflow.Json

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`child runs on ${backend}`, (it) => {
    it.effect("a child run is stored linked to its parent and its output flows into the parent", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const { runId } = yield* runs.start(parent)
        let status = yield* runs.wait(runId)
        for (let i = 0; i < 500 && status !== "completed" && status !== "failed"; i++) {
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
          status = yield* runs.wait(runId)
        }
        assert.strictEqual(status, "completed")
        assert.deepStrictEqual((yield* store.snapshot(runId)).nodes["sub"]?.output, { double: 42 } as Json)
        const [linked] = (yield* runs.status(runId)).children
        assert.strictEqual(linked?.status, "completed")
        assert.strictEqual((yield* store.getRun(linked!.runId)).parentRun, runId)
      }).pipe(Effect.provide(
        Runs.layer().pipe(
          Layer.provideMerge(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)),
          Layer.provideMerge(Handler.layer({ double: (ctx) => Effect.succeed((ctx.input["n"] as number) * 2) }))
        )
      )))
  })
}
