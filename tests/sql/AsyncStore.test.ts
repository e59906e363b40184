/**
 * Runs settle on stores whose writes yield (issue 14, item 3). The journal writer once decided
 * whether to write again before it woke the writers waiting on its call; a writer woken that way
 * wrote while the call still counted as in flight, only queued, and nothing ever wrote it: the run
 * stayed `running` for ever. The synchronous memory store never showed it, PGlite did.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"
import { scheduledStore } from "../helpers/scheduledStore.ts"

/** The smallest case found: `u`, and a one-iteration loop whose body `v → f` fails at `f`. */
const failingLoop: Workflow.Workflow = {
  id: "failing-loop",
  blocks: [
    { id: "u", type: "value", params: { value: 1 } },
    { id: "v", type: "value", params: { value: 2 } },
    { id: "f", type: "fail", params: { message: "boom" } }
  ],
  edges: [{ source: "v", target: "f" }],
  loops: [{ id: "L", kind: "count", count: 1, body: ["v", "f"] }]
}

// Hangs (and the test times out) when a write is stranded.
const settlesFailed = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore
  const { runId } = yield* runs.start(failingLoop)
  assert.strictEqual(yield* runs.wait(runId), "failed")
  const snapshot = yield* store.snapshot(runId)
  assert.strictEqual(snapshot.status, "failed")
  assert.strictEqual(snapshot.nodes["f@0"]?.status, "failed")
  assert.strictEqual(snapshot.nodes["f@0"]?.error?.message, "boom")
  assert.strictEqual(snapshot.nodes["v@0"]?.status, "completed")
  assert.strictEqual(snapshot.nodes["u"]?.status, "completed")
})

const running = <E, R>(store: Layer.Layer<RunStore.RunStore, E, R>) =>
  Runs.layer().pipe(Layer.provideMerge(store), Layer.provideMerge(Handler.layer(Builtins.handlers)))

describe("A run on a memory store whose calls yield", () => {
  it.effect("settles failed, with the failure journaled", () =>
    settlesFailed.pipe(Effect.provide(running(
      Layer.effect(RunStore.RunStore, Effect.map(RunStore.makeMemory, (base) => scheduledStore(base, () => Effect.yieldNow)))
    ))))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`A run on ${backend}`, (it) => {
    it.effect("settles failed, with the failure journaled", () =>
      settlesFailed.pipe(Effect.provide(running(SqlRunStore.layer).pipe(Layer.provide(TestDatabase.layer)))))
  })
}
