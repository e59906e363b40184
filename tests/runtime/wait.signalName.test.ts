/**
 * A `wait` block whose signal name comes from a reference is checked when it runs: a name over
 * `Params.maxSignalBytes` UTF-8 bytes (which the SQL stores cannot key a delivery by, so the run
 * could never be signalled) fails the block, named, instead of suspending the run; a name at the
 * limit suspends it and is delivered. The same on the memory store, PGlite and the real server.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Params, type Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"

/** `trigger → w → after`: `w` waits for the signal the run input names. */
const named: Workflow.Workflow = {
  id: "wait-named-signal",
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "w", type: "wait", params: { signal: { $ref: "input.name" } } },
    { id: "after", type: "value", params: { value: { $ref: "blocks.w.output" } } }
  ],
  edges: [{ source: "trigger", target: "w" }, { source: "w", target: "after" }],
  inputs: { name: { type: "string" } }
}

const runsOver = <R>(store: Layer.Layer<RunStore.RunStore, unknown, R>) =>
  Runs.layer().pipe(Layer.provideMerge(store), Layer.provideMerge(Handler.layer(Builtins.handlers)))

const tests = (test: (name: string, body: Effect.Effect<void, unknown, Runs.Runs | RunStore.RunStore>) => void) => {
  test("a signal name over the limit fails the wait block, naming its size and the limit; the run fails, what follows is skipped", Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    // "é" takes 2 bytes: 129 of them are 258 bytes in 129 characters.
    for (const name of ["x".repeat(Params.maxSignalBytes + 1), "é".repeat(129), "x".repeat(10_000)]) {
      const { runId } = yield* runs.start(named, { name })
      assert.strictEqual(yield* runs.wait(runId), "failed")
      const snapshot = yield* store.snapshot(runId)
      const w = snapshot.nodes["w"]
      assert.strictEqual(w?.status, "failed")
      const bytes = new TextEncoder().encode(name).length
      assert.include(w?.error?.message, `takes ${bytes} bytes, at most ${Params.maxSignalBytes}`)
      assert.strictEqual(snapshot.nodes["after"]?.status, "skipped")
    }
  }))

  test("a signal name at the limit suspends the run, and its signal is delivered", Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const name = "é".repeat(Params.maxSignalBytes / 2)
    const { runId } = yield* runs.start(named, { name })
    assert.strictEqual(yield* runs.wait(runId), "suspended")
    assert.isTrue(yield* runs.signal(runId, name, { ok: 1 }))
    assert.strictEqual(yield* runs.wait(runId), "completed")
    assert.deepStrictEqual((yield* store.snapshot(runId)).nodes["after"]?.output, { ok: 1 })
  }))
}

describe("wait signal names on the memory store", () => {
  tests((name, body) => it.effect(name, () => Effect.provide(body, runsOver(RunStore.layerMemory))))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`wait signal names on ${backend}`, (it) => {
    tests((name, body) => it.effect(name, () => Effect.provide(body, runsOver(SqlRunStore.layer).pipe(Layer.provideMerge(TestDatabase.layer)))))
  })
}
