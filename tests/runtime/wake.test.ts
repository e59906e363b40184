import { assert, describe, layer, type Vitest } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"

// Two approvals the run parks on at once.
const approvals: Workflow.Workflow = {
  id: "two-approvals",
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "a", type: "approval" },
    { id: "b", type: "approval" }
  ],
  edges: [{ source: "trigger", target: "a" }, { source: "trigger", target: "b" }]
}

// `x0` fails at run time (the trigger has no `n`) and no observed output (`r`) needs it: a run-from
// of `middle` prunes it.
const pruning = (id: string, middle: Workflow.Block): Workflow.Workflow => ({
  id,
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "x0", type: "template", params: { template: "{{n}}", values: { n: { $ref: "blocks.trigger.output.n" } } } },
    middle,
    { id: "r", type: "response", params: { value: { $ref: `blocks.${middle.id}.output` } } }
  ],
  edges: [{ source: "trigger", target: "x0" }, { source: "trigger", target: middle.id }, { source: middle.id, target: "r" }]
})
const approved = pruning("pruned-approval", { id: "ap", type: "approval" })
const stepped = pruning("pruned-step", { id: "step", type: "step" })

// An observed `response` inside a parallel beside an approval, with an unobserved `side` block in the
// body: after `side` is edited, a run-from of `ap` reuses the parallel's start and body and prunes
// `side` and the parallel's end (no observed output is downstream of either).
const parallelBeside = (note: string): Workflow.Workflow => ({
  id: "parallel-beside",
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "ap", type: "approval" },
    { id: "inside", type: "response", params: { value: { $ref: "parallel.index" } } },
    { id: "side", type: "value", params: { value: note } }
  ],
  edges: [{ source: "trigger", target: "ap" }, { source: "trigger", target: "P" }],
  parallels: [{ id: "P", kind: "count", body: ["inside", "side"], count: 2 }]
})

// A `wait` and the observed `response` inside nested loops that the edit makes run (`L0` from 0 to 1
// iteration): a run-from of `w` suspends inside them, and waking it must finish the loops.
const nestedBefore: Workflow.Workflow = {
  id: "nested-wait",
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "w", type: "wait", params: { signal: "go" } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.w.output" } } }
  ],
  edges: [{ source: "trigger", target: "L0" }, { source: "w", target: "out" }],
  loops: [
    { id: "L0", kind: "count", body: ["L1"], count: 0 },
    { id: "L1", kind: "count", body: ["w", "out"], count: 1 }
  ]
}
const nestedAfter: Workflow.Workflow = {
  ...nestedBefore,
  loops: [{ id: "L0", kind: "count", body: ["L1"], count: 1 }, nestedBefore.loops![1]!]
}

// One process's `Runs` over a store that outlives it (closing it interrupts its executions).
const runsOver = (store: RunStore.RunStore["Service"], step: Handler.Handler) =>
  Runs.layer().pipe(
    Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
    Layer.provideMerge(Handler.layer({ ...Builtins.handlers, step }))
  )

const done: Handler.Handler = () => Effect.succeed("done")

const cases = <R>(it: Vitest.MethodsNonLive<R>, stores: Layer.Layer<RunStore.RunStore, unknown, R>) => {
  it.effect("a second approval recorded while the run executes the first one is taken once the run parks", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(approvals)
        assert.strictEqual(yield* runs.wait(runId), "paused")
        assert.isTrue(yield* runs.approve(runId, "a", 1))
        // Recorded while the run executes `a`'s approval: its executor takes it when it parks on `b`.
        assert.isTrue(yield* runs.approve(runId, "b", 2))
        assert.strictEqual((yield* runs.follow(runId)).status, "completed")
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.nodes["a"]?.output, 1)
        assert.strictEqual(snapshot.nodes["b"]?.output, 2)
        assert.deepStrictEqual(yield* store.deliveries(runId), [])
      }).pipe(Effect.provide(runsOver(store, done)))
    }).pipe(Effect.provide(stores)))

  it.effect("approving a run-from executes nothing its plan pruned", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const full = yield* runs.start(approved)
        yield* runs.wait(full.runId)
        assert.isTrue(yield* runs.approve(full.runId, "ap", "first"))
        assert.strictEqual((yield* runs.follow(full.runId)).status, "failed")
        assert.strictEqual((yield* store.snapshot(full.runId)).nodes["x0"]?.status, "failed")

        const from = yield* runs.runFrom(approved, { target: "ap", run: full.runId })
        assert.deepStrictEqual(from.plan.pruned, ["x0"])
        assert.strictEqual(yield* runs.wait(from.runId), "paused")
        assert.isTrue(yield* runs.approve(from.runId, "ap", "second"))
        assert.strictEqual((yield* runs.follow(from.runId)).status, "completed")
        const snapshot = yield* store.snapshot(from.runId)
        assert.isUndefined(snapshot.nodes["x0"])
        assert.strictEqual(snapshot.nodes["r"]?.output, "second")
      }).pipe(Effect.provide(runsOver(store, done)))
    }).pipe(Effect.provide(stores)))

  it.effect("approving a run-from re-runs no container its plan reused", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const full = yield* runs.start(parallelBeside("before"))
        yield* runs.wait(full.runId)
        assert.isTrue(yield* runs.approve(full.runId, "ap", "first"))
        assert.strictEqual((yield* runs.follow(full.runId)).status, "completed")

        const from = yield* runs.runFrom(parallelBeside("after"), { target: "ap", run: full.runId })
        assert.deepStrictEqual(from.plan.rerun, ["ap"])
        assert.includeMembers([...from.plan.reused], ["P#start", "inside"])
        assert.includeMembers([...from.plan.pruned], ["side", "P#end"])
        assert.strictEqual(yield* runs.wait(from.runId), "paused")
        assert.isTrue(yield* runs.approve(from.runId, "ap", "second"))
        assert.strictEqual((yield* runs.follow(from.runId)).status, "completed")
        const snapshot = yield* store.snapshot(from.runId)
        assert.strictEqual(snapshot.nodes["ap"]?.output, "second")
        for (const node of ["P#start", "inside@0", "inside@1"]) {
          assert.strictEqual(snapshot.nodes[node]?.reusedFrom, full.runId, `${node} is reused`)
        }
        assert.isUndefined(snapshot.nodes["P#end"])
      }).pipe(Effect.provide(runsOver(store, done)))
    }).pipe(Effect.provide(stores)))

  it.effect("waking a run-from suspended inside nested loops finishes the loops", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const full = yield* runs.start(nestedBefore)
        assert.strictEqual(yield* runs.wait(full.runId), "completed")
        const from = yield* runs.runFrom(nestedAfter, { target: "w", run: full.runId })
        assert.strictEqual(yield* runs.wait(from.runId), "suspended")
        assert.isTrue(yield* runs.signal(from.runId, "go", 7))
        assert.strictEqual((yield* runs.follow(from.runId)).status, "completed")
        const snapshot = yield* store.snapshot(from.runId)
        assert.strictEqual(snapshot.nodes["out@0.0"]?.output, 7)
        assert.strictEqual(snapshot.nodes["L0#end"]?.status, "completed")
      }).pipe(Effect.provide(runsOver(store, done)))
    }).pipe(Effect.provide(stores)))

  it.effect("resuming a crashed run-from executes nothing its plan pruned", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const full = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(stepped)
        assert.strictEqual(yield* runs.wait(runId), "failed")
        return runId
      }).pipe(Effect.provide(runsOver(store, done)))

      const entered = yield* Deferred.make<void>()
      const hang: Handler.Handler = () => Effect.andThen(Deferred.succeed(entered, undefined), Effect.never)
      const runId = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const from = yield* runs.runFrom(stepped, { target: "step", run: full })
        assert.deepStrictEqual(from.plan.pruned, ["x0"])
        yield* Deferred.await(entered)
        return from.runId
      }).pipe(Effect.provide(runsOver(store, hang)))
      assert.strictEqual((yield* store.getRun(runId)).status, "running")

      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        yield* runs.resume(runId)
        assert.strictEqual(yield* runs.wait(runId), "completed")
      }).pipe(Effect.provide(runsOver(store, done)))
      const snapshot = yield* store.snapshot(runId)
      assert.isUndefined(snapshot.nodes["x0"])
      assert.strictEqual(snapshot.nodes["r"]?.output, "done")
    }).pipe(Effect.provide(stores)))
}

describe("wake on memory", () => {
  layer(Layer.empty)("memory", (it) => cases(it, RunStore.layerMemory))
})
layer(TestDatabase.shared("pglite"), { excludeTestServices: true })("wake on pglite", (it) =>
  cases(it, Layer.provide(SqlRunStore.layer, TestDatabase.layer)))
