/**
 * Child runs and cancellation under workers (issue 9): `child` blocks of worker-executed runs queue
 * their child runs for the workers, a child's end wakes its parent through the database, a child
 * whose worker stopped before telling its parent is found by the sweep, and a run cancelled from
 * another process stops executing.
 */
import { assert, layer } from "@effect/vitest"
import { Plan, type Workflow } from "@ripple/core"
import { Engine, Handler, Runs, RunStore } from "@ripple/runtime"
import { type Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import { waitFor } from "../helpers/workerProcess.ts"
import { chain, expectedOutputs } from "./fixtures/chain.ts"

type Json = Workflow.Json

type Services = SqlClient.SqlClient | Database.Database | SqlRunStore.SqlRunStore | RunStore.RunStore | Handler.Handlers | Scope.Scope

const fast = { leaseMs: 2_000, heartbeatMs: 100, pollMs: 50, shutdownGraceMs: 200 }

/** Executions per `run/node`; `stall` nodes never return. */
interface Probe {
  readonly executions: Map<string, number>
  readonly stall: Set<string>
}

const handlers = (probe: Probe) =>
  Handler.layer({
    step: (ctx) =>
      Effect.gen(function*() {
        const key = `${ctx.runId}/${ctx.node}`
        probe.executions.set(key, (probe.executions.get(key) ?? 0) + 1)
        if (probe.stall.has(ctx.node)) return yield* Effect.never
        const prev = ctx.inputs["prev"] as { readonly v: number } | undefined
        return { v: ((prev?.v ?? 0) * 31 + Number(ctx.inputs["i"]) + 7) % 1_000_003 }
      })
  })

/** A parent whose `sub` block runs `child` (inline) and outputs what the child's sinks output. */
const parentOf = (id: string, child: Workflow.Workflow): Workflow.Workflow => ({
  id,
  blocks: [
    { id: "n", type: "value", params: { value: 1 } },
    { id: "sub", type: "child", params: { workflow: JSON.stringify(child), input: {} } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.sub.output" } } }
  ],
  edges: [{ source: "n", target: "sub" }, { source: "sub", target: "out" }]
})

const statusOf = (runId: string) =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore.SqlRunStore
    return (yield* store.getRun(runId)).status
  })

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`workers and child runs on ${backend}`, (it) => {
    const test = (name: string, body: (probe: Probe) => Effect.Effect<void, unknown, Services>) =>
      it.effect(name, () => {
        const probe: Probe = { executions: new Map(), stall: new Set() }
        return Effect.scoped(body(probe)).pipe(
          Effect.provide(Layer.mergeAll(SqlRunStore.layer, handlers(probe)).pipe(Layer.provideMerge(TestDatabase.layer)))
        )
      })

    test("a child block of a worker-executed run queues its child for the workers; its output flows to the parent", (probe) =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const parentId = yield* Worker.submit(parentOf("worker-parent", chain("worker-child", 4)))
        yield* Worker.make({ ...fast, concurrency: 4 })
        yield* waitFor(Effect.map(statusOf(parentId), (s) => s === "completed" || s === "failed"), "the parent to finish", 30_000)
        assert.strictEqual(yield* statusOf(parentId), "completed")
        const [child] = yield* store.children(parentId)
        assert.isDefined(child)
        assert.strictEqual(child!.node, "sub")
        assert.strictEqual(child!.status, "completed")
        assert.strictEqual((yield* store.getRun(child!.runId)).parentRun, parentId)
        // The child's sink (b3) is what the parent's block outputs.
        const expected = expectedOutputs(4)
        assert.deepStrictEqual((yield* store.snapshot(parentId)).nodes["out"]?.output, { b3: expected["b3"]! } as Json)
        for (let i = 0; i < 4; i++) assert.strictEqual(probe.executions.get(`${child!.runId}/b${i}`), 1)
      }))

    test("a child whose worker stopped before telling its parent is found by the sweep, and the parent completes", () =>
      Effect.gen(function*() {
        const { store } = yield* SqlRunStore.SqlRunStore
        const waiting: Workflow.Workflow = {
          id: "worker-child-waits",
          blocks: [{ id: "go", type: "wait", params: { signal: "go" } }, { id: "done", type: "value", params: { value: "done" } }],
          edges: [{ source: "go", target: "done" }]
        }
        const parentId = yield* Worker.submit(parentOf("worker-parent-sweep", waiting))
        // First worker: the parent suspends on its child, the child on its signal.
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Worker.make(fast)
          yield* waitFor(
            Effect.flatMap(store.children(parentId), (children) =>
              children.length === 1 ? Effect.map(statusOf(children[0]!.runId), (s) => s === "suspended") : Effect.succeed(false)),
            "the child to suspend",
            30_000
          )
          yield* waitFor(Effect.map(statusOf(parentId), (s) => s === "suspended"), "the parent to suspend", 30_000)
        }))
        const [child] = yield* store.children(parentId)
        // A process finishes the child and stops before delivering to the parent: the engine alone,
        // which knows nothing of parents.
        yield* store.deliver(child!.runId, { kind: "signal", name: "go", payload: null, at: 1 })
        yield* store.transition(child!.runId, { type: "SIGNAL", name: "go", payload: null }, 1)
        const snapshot = yield* store.snapshot(child!.runId)
        const plan = Plan.resume(snapshot.workflow, snapshot)
        assert.isTrue(Result.isSuccess(plan))
        if (Result.isFailure(plan)) return
        const finished = yield* Engine.execute({
          runId: child!.runId,
          mode: "resume",
          plan: plan.success,
          input: {},
          sourceRun: child!.runId,
          source: snapshot,
          publish: () => {}
        }, {})
        assert.strictEqual(finished, "completed")
        assert.deepStrictEqual(yield* store.deliveries(parentId), [])
        // A second worker's sweep delivers, and the parent completes with the child's output.
        yield* Worker.make(fast)
        yield* waitFor(Effect.map(statusOf(parentId), (s) => s === "completed"), "the parent to complete", 30_000)
        assert.deepStrictEqual((yield* store.snapshot(parentId)).nodes["out"]?.output, { done: "done" } as Json)
      }))

    test("a parent a worker cancels on a request recorded by a process that then went away: its worker-executed child ends cancelled too", (probe) =>
      Effect.gen(function*() {
        probe.stall.add("b1")
        probe.stall.add("hang")
        const { store } = yield* SqlRunStore.SqlRunStore
        // The parent runs a block of its own beside its child, so a worker executes it throughout.
        const base = parentOf("worker-parent-cancelled", chain("worker-child-of-cancelled", 3))
        const parentId = yield* Worker.submit({ ...base, blocks: [...base.blocks, { id: "hang", type: "step", params: { i: 0 } }] })
        yield* Worker.make({ ...fast, concurrency: 4 })
        yield* waitFor(Effect.map(store.children(parentId), (children) => children.length === 1), "the child to be queued", 30_000)
        const childId = (yield* store.children(parentId))[0]!.runId
        yield* waitFor(Effect.sync(() => probe.executions.has(`${childId}/b1`) && probe.executions.has(`${parentId}/hang`)), "b1 and hang to start", 30_000)
        // All the requesting process did before it went away: nobody follows the run tree down.
        yield* store.requestCancel(parentId, yield* Clock.currentTimeMillis)
        yield* store.notify(parentId)
        yield* waitFor(Effect.map(statusOf(parentId), (s) => s === "cancelled"), "the parent to end cancelled", 10_000)
        yield* waitFor(Effect.map(statusOf(childId), (s) => s !== "running"), "the child to end", 10_000)
        assert.strictEqual(yield* statusOf(childId), "cancelled")
        assert.isUndefined(probe.executions.get(`${childId}/b2`))
      }))

    test("a run cancelled by another process while a worker executes it stops executing", (probe) =>
      Effect.gen(function*() {
        probe.stall.add("b1")
        const { store } = yield* SqlRunStore.SqlRunStore
        const runId = yield* Worker.submit(chain("worker-cancelled", 3))
        const worker = yield* Worker.make(fast)
        yield* waitFor(Effect.map(store.snapshot(runId), (s) => s.nodes["b1"]?.status === "running"), "b1 to start", 30_000)
        // Another process: a Runs facade over the same database.
        const cancellation = yield* Effect.gen(function*() {
          const runs = yield* Runs.Runs
          return yield* runs.cancel(runId)
        }).pipe(Effect.provide(Runs.layer()))
        // The worker executing it ended it.
        assert.deepStrictEqual([cancellation._tag, cancellation.status], ["Acknowledged", "cancelled"])
        yield* waitFor(Effect.map(worker.active, (active) => !active.includes(runId)), "the worker to stop executing it", 10_000)
        const snapshot = yield* store.snapshot(runId)
        assert.strictEqual(snapshot.status, "cancelled")
        assert.isUndefined(snapshot.nodes["b2"])
        assert.isUndefined(probe.executions.get(`${runId}/b2`))
      }))
  })
}
