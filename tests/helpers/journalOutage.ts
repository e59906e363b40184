/**
 * The scenario every store must pass for an execution of `Runs` whose journal write fails with
 * `StoreUnavailable` past the store's retries well before its lease's deadline, the store down a
 * few seconds: the process, healthy and still the run's executor, takes the lease again once the
 * store answers and executes the run from its journal. The run completes once, with the outputs of
 * a run without faults, never two instances of a block at once, never `failed` ("faults are not
 * failures"); `Runs.wait` follows it throughout.
 *
 * The store is given as a layer with an `Outage` (tests/helpers/timerOutage.ts) that makes it fail
 * (the memory store: tests/helpers/memoryOutage.ts; a SQL store through its client). Time is a
 * `TestClock` moved on in steps, with real pauses between them so a SQL store's I/O goes on.
 */
import { assert } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import { type Outage, pass, until } from "./timerOutage.ts"

/** `gate → after → out`: `gate` holds until the test opens it (a `gate` and a `count` handler). */
export const workflow: Workflow.Workflow = {
  id: "journal-outage",
  blocks: [
    { id: "gate", type: "gate" },
    { id: "after", type: "count", params: { n: { $ref: "blocks.gate.output" } } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.after.output" } } }
  ],
  edges: [{ source: "gate", target: "after" }, { source: "after", target: "out" }]
}

/** The lease: its deadline (less the fencing margin) is far from the outage. */
const leaseMs = 30_000

/** `store`, counting the writes that finished a run `completed` (through any fenced store too). */
export const counting = (store: RunStore.RunStore["Service"], completions: { count: number }): RunStore.RunStore["Service"] =>
  RunStore.RunStore.of({
    ...store,
    fenced: (lease) => counting(store.fenced(lease), completions),
    finish: (runId, event, diagnostics, at) =>
      Effect.tap(store.finish(runId, event, diagnostics, at), (changed) =>
        Effect.sync(() => {
          if (changed.to === "completed") completions.count++
        }))
  })

/** The outputs of every node of a run. */
export const outputs = (store: RunStore.RunStore["Service"], runId: string) =>
  Effect.map(store.snapshot(runId), (snapshot) => Object.fromEntries(Object.entries(snapshot.nodes).map(([node, record]) => [node, record.output])))

/** Checks that `runId` (of `workflow`) has the outputs of a run of `workflow` without faults, which it starts. */
export const asWithoutFaults = (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"], runId: string) =>
  Effect.gen(function*() {
    const faulty = yield* outputs(store, runId)
    const again = yield* runs.start(workflow)
    assert.strictEqual(yield* runs.wait(again.runId), "completed")
    assert.deepStrictEqual(faulty, yield* outputs(store, again.runId), "the outputs of a run without faults")
  })

/**
 * Starts the run, makes the store unavailable while `gate` runs, opens `gate` (its completion's
 * write fails past the retries), keeps the store down 5 s of the test clock, then makes it
 * available: the run completes as described above, and a run of the same workflow without faults
 * has the same outputs.
 */
export const runTakenUpAfterOutage = <E, R>(
  store: Layer.Layer<RunStore.RunStore, E, R>,
  outage: Outage
): Effect.Effect<void, unknown, R> => {
  const completions = { count: 0 }
  const running = new Map<string, number>()
  const most = new Map<string, number>()
  const started: Array<string> = []
  return Effect.gen(function*() {
    const entered = yield* Deferred.make<void>()
    const open = yield* Deferred.make<void>()
    const counted = <A>(node: string, body: Effect.Effect<A>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          started.push(node)
          const now = (running.get(node) ?? 0) + 1
          running.set(node, now)
          most.set(node, Math.max(now, most.get(node) ?? 0))
        }),
        () => body,
        () => Effect.sync(() => running.set(node, running.get(node)! - 1))
      )
    const handlers = Handler.layer({
      ...Builtins.handlers,
      gate: (ctx) => counted(ctx.node, Effect.andThen(Deferred.succeed(entered, undefined), Effect.as(Deferred.await(open), 1))),
      count: (ctx) => counted(ctx.node, Effect.sync(() => ((ctx.inputs["n"] as number | undefined) ?? 0) + 1))
    })
    const countedStore = Layer.effect(RunStore.RunStore, Effect.map(RunStore.RunStore, (inner) => counting(inner, completions))).pipe(
      Layer.provide(store)
    )
    yield* Effect.gen(function*() {
      yield* TestClock.setTime(10_000)
      const runs = yield* Runs.Runs
      const { getRun } = yield* RunStore.RunStore
      const { runId } = yield* runs.start(workflow)
      yield* Deferred.await(entered)
      const lease = (yield* getRun(runId)).lease!
      const waiting = yield* Effect.forkChild(runs.wait(runId))
      yield* outage.begin
      yield* Deferred.succeed(open, undefined)
      yield* pass(5_000)
      yield* outage.end
      assert.isAbove(outage.failed(), 0, "the store refused the execution's writes")
      assert.isBelow(yield* Clock.currentTimeMillis, lease.expiresAt - leaseMs / 6, "the outage ended before the lease's deadline")
      assert.strictEqual((yield* getRun(runId)).status, "running", "not failed by the outage")
      yield* until(Effect.sync(() => waiting.pollUnsafe() !== undefined), 60_000, "the run did not complete")
      assert.strictEqual(yield* Fiber.join(waiting), "completed")
      assert.deepStrictEqual(started, ["gate", "gate", "after"], "the block whose completion was not written ran again")
      assert.deepStrictEqual([...most.values()], [1, 1], "never two instances of a block at once")
      assert.strictEqual(completions.count, 1, "completed once")
      const stored = yield* RunStore.RunStore
      assert.isUndefined((yield* getRun(runId)).lease, "released once the run completed")
      yield* asWithoutFaults(runs, stored, runId)
    }).pipe(
      Effect.provide(Runs.layer({ leaseMs }).pipe(Layer.provideMerge(countedStore), Layer.provideMerge(handlers)))
    )
  }).pipe(Effect.provide(TestClock.layer()))
}
