/**
 * A cancel that outlives its canceller: `Runs.cancel` records the request (`RunStore.requestCancel`)
 * and then takes the lease to end the run; a process that went away in between leaves a dormant
 * run (suspended on a signal, paused at an approval) that nobody executes and no worker queue
 * holds, with the request recorded. The next process that looks at the run to wake it
 * (`Runs.wake`, which `ripple resume` calls) ends it `cancelled`, starting nothing, as a worker
 * ends a queued one it claims: the cancel a user asked for is not lost. On the memory store,
 * PGlite and the real server; two `Runs` layers over one store stand for two processes.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"

/** `a → w → b`: suspended on the signal `go` after `a`. */
const waiting: Workflow.Workflow = {
  id: "orphaned-waiting",
  blocks: [{ id: "a", type: "count" }, { id: "w", type: "wait", params: { signal: "go" } }, { id: "b", type: "count" }],
  edges: [{ source: "a", target: "w" }, { source: "w", target: "b" }]
}

/** `a → gate → b`: paused at the approval `gate` after `a`. */
const approving: Workflow.Workflow = {
  id: "orphaned-approving",
  blocks: [{ id: "a", type: "count" }, { id: "gate", type: "approval" }, { id: "b", type: "count" }],
  edges: [{ source: "a", target: "gate" }, { source: "gate", target: "b" }]
}

/** A `Runs` over the shared store (a process of its own); every block start goes to `started`. */
const processOver = (owner: string, store: RunStore.RunStore["Service"], started: Array<string>) =>
  Effect.map(
    Layer.build(
      Runs.layer({ owner, cancelPollMs: 20 }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer({
          ...Builtins.handlers,
          count: (ctx) => Effect.sync(() => started.push(`${owner} ${ctx.node}`)).pipe(Effect.as(1))
        }))
      )
    ),
    (context) => Context.get(context, Runs.Runs)
  )

const orphanedTests = (test: (name: string, body: Effect.Effect<void, unknown, RunStore.RunStore>) => void) => {
  for (const [workflow, dormant] of [[waiting, "suspended"], [approving, "paused"]] as const) {
    test(`a run ${dormant} whose canceller went away after recording the request is ended cancelled by the next process that wakes it`, Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const started: Array<string> = []
      const first = yield* processOver("first", store, started)
      const { runId } = yield* first.start(workflow)
      assert.strictEqual(yield* first.wait(runId), dormant)
      // What `Runs.cancel` writes first; its process stopped before it took the lease.
      assert.isTrue(yield* store.requestCancel(runId, yield* Clock.currentTimeMillis))
      const next = yield* processOver("next", store, started)
      assert.strictEqual(yield* next.wake(runId), "cancelled")
      const run = yield* store.getRun(runId)
      assert.strictEqual(run.status, "cancelled")
      assert.isUndefined(run.cancelRequestedAt)
      assert.isUndefined(run.lease, "the lease taken to end it is released")
      assert.deepStrictEqual(started, ["first a"], "nothing of it started after the request")
    }).pipe(Effect.scoped))
  }

  test("a dormant run queued for the workers is left to them: a worker claims it to end it", Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const version = yield* store.saveWorkflow(waiting)
    const { id: runId } = yield* store.createRun({ version, mode: "full", input: {}, at: 1, queued: true })
    // As a worker left it: suspended on `w`.
    yield* store.transition(runId, { type: "START" }, 2)
    yield* store.transition(runId, { type: "BRANCH_DORMANT", branch: "w", reason: { _tag: "Signal", node: "w", signal: "go" } }, 3)
    assert.strictEqual((yield* store.getRun(runId)).status, "suspended")
    assert.isTrue(yield* store.requestCancel(runId, 4))
    const next = yield* processOver("next", store, [])
    assert.strictEqual(yield* next.wake(runId), "suspended")
    const run = yield* store.getRun(runId)
    assert.deepStrictEqual({ status: run.status, asked: run.cancelRequestedAt !== undefined }, { status: "suspended", asked: true })
  }).pipe(Effect.scoped))

  test("a dormant run with no cancel recorded is left as it is when nothing wakes it", Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const started: Array<string> = []
    const first = yield* processOver("first", store, started)
    const { runId } = yield* first.start(waiting)
    assert.strictEqual(yield* first.wait(runId), "suspended")
    const next = yield* processOver("next", store, started)
    assert.strictEqual(yield* next.wake(runId), "suspended")
    assert.strictEqual((yield* store.getRun(runId)).status, "suspended")
  }).pipe(Effect.scoped))
}

describe("an orphaned cancel of a dormant run, memory store", () => {
  orphanedTests((name, body) => it.effect(name, () => Effect.provide(body, RunStore.layerMemory)))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`an orphaned cancel of a dormant run on ${backend}`, (it) => {
    orphanedTests((name, body) => it.effect(name, () => Effect.provide(body, Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))))
  })
}
