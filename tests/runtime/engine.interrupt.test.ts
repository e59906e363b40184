import { assert, describe, it } from "@effect/vitest"
import { Plan, type Workflow } from "@ripple/core"
import { Engine, Handler, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as Scheduler from "effect/Scheduler"

const length = 2_000
// Which block's start triggers the interruption.
const at = 10

const chain = (loop: boolean): Workflow.Workflow => {
  const blocks: Array<Workflow.Block> = Array.from({ length }, (_, i) => ({ id: `b${i}`, type: "step" }))
  const edges = blocks.slice(1).map((b, i) => ({ source: `b${i}`, target: b.id }))
  return loop
    ? { id: "chain", blocks, edges, loops: [{ id: "once", kind: "count", count: 1, body: blocks.map((b) => b.id) }] }
    : { id: "chain", blocks, edges }
}

/**
 * A chain of synchronous blocks whose `at`-th start schedules an interruption of the execution the
 * way a Ctrl-C handler does: as a macrotask, which runs only once the engine gives the event loop
 * a turn. The fiber runtime's own yielding is turned off (`MaxOpsBeforeYield`), so only the
 * engine's yielding between blocks lets it through.
 */
const interruptedChain = (loop: boolean) =>
  Effect.gen(function*() {
    let started = 0
    let interrupt: () => void = () => {}
    const handlers = Handler.layer({
      step: () =>
        Effect.sync(() => {
          if (++started === at) setImmediate(() => interrupt())
          return null
        })
    })
    const store = yield* RunStore.makeMemory
    const workflow = chain(loop)
    const plan = Result.getOrThrow(Plan.full(workflow))
    const version = yield* store.saveWorkflow(workflow)
    const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
    const fiber = yield* Effect.forkChild(
      Engine.execute({ runId: run.id, mode: "full", plan, input: {}, sourceRun: undefined, publish: () => {} }).pipe(
        Effect.provideService(RunStore.RunStore, store),
        Effect.provide(handlers),
        Effect.provideService(Scheduler.MaxOpsBeforeYield, Number.MAX_SAFE_INTEGER)
      )
    )
    interrupt = () => fiber.interruptUnsafe()
    yield* Fiber.await(fiber)
    const stored = yield* store.getRun(run.id)
    return { started, status: stored.status }
  })

describe("Engine interruption", () => {
  for (const [name, loop] of [["at the top level", false], ["in a loop", true]] as const) {
    it.effect(`a chain of synchronous blocks is interrupted between blocks, most of it never started (${name})`, () =>
      Effect.gen(function*() {
        const { started, status } = yield* interruptedChain(loop)
        assert.strictEqual(status, "cancelled")
        assert.isAtLeast(started, at)
        assert.isBelow(started, length / 2)
      }))
  }
})

/**
 * An execution handed a run that has ended before it began (cancelled, or completed by another
 * execution) starts no block and writes nothing: it returns the status the run holds.
 */
describe("Engine on a run that has already ended", () => {
  const workflow: Workflow.Workflow = {
    id: "ended",
    blocks: [{ id: "a", type: "step" }, { id: "b", type: "step" }],
    edges: [{ source: "a", target: "b" }]
  }
  /** A fresh run of `workflow` and how to execute it, counting the blocks that start. */
  const fresh = Effect.gen(function*() {
    let started = 0
    const handlers = Handler.layer({ step: () => Effect.sync(() => ++started) })
    const store = yield* RunStore.makeMemory
    const plan = Result.getOrThrow(Plan.full(workflow))
    const run = yield* store.createRun({ version: yield* store.saveWorkflow(workflow), mode: "full", input: {}, at: 0 })
    const execute = (mode: Engine.Execution["mode"]) =>
      Engine.execute({ runId: run.id, mode, plan, input: {}, sourceRun: undefined, publish: () => {} }).pipe(
        Effect.provideService(RunStore.RunStore, store),
        Effect.provide(handlers)
      )
    return { store, runId: run.id, execute, started: () => started }
  })

  for (const mode of ["full", "resume"] as const) {
    it.effect(`a cancelled run (${mode}): no block starts, it stays cancelled`, () =>
      Effect.gen(function*() {
        const { execute, runId, started, store } = yield* fresh
        yield* store.transition(runId, { type: "CANCEL" }, 1)
        const before = yield* store.getRun(runId)
        assert.strictEqual(yield* execute(mode), "cancelled")
        assert.strictEqual(started(), 0)
        assert.deepStrictEqual(yield* store.getRun(runId), before)
        assert.deepStrictEqual(Object.keys((yield* store.snapshot(runId)).nodes), [])
      }))
  }

  it.effect("a completed run executed again (full): no block starts, the run is left as it was", () =>
    Effect.gen(function*() {
      const { execute, runId, started, store } = yield* fresh
      assert.strictEqual(yield* execute("full"), "completed")
      assert.strictEqual(started(), 2)
      const before = yield* store.snapshot(runId)
      assert.strictEqual(yield* execute("full"), "completed")
      assert.strictEqual(started(), 2)
      assert.deepStrictEqual(yield* store.snapshot(runId), before)
    }))
})
