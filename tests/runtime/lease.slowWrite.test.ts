/**
 * One owner when the write that journals a block's start outlasts the lease (on PostgreSQL a large
 * write waits, and its run's renewals wait behind it): the start is checked again after that write,
 * so past the lease's expiry it is confirmed first, and a lease taken meanwhile starts nothing.
 * The write's duration is the test clock moved on inside it; nothing here depends on timing.
 */
import { assert, it } from "@effect/vitest"
import { Plan, type Workflow } from "@ripple/core"
import { Engine, Handler, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as TestClock from "effect/testing/TestClock"

const workflow: Workflow.Workflow = {
  id: "slow-write",
  blocks: [{ id: "b0", type: "step", params: {} }, { id: "b1", type: "step", params: { prev: { $ref: "blocks.b0.output" } } }],
  edges: [{ source: "b0", target: "b1" }]
}

const expiresAt = 1_000

it.effect("a block whose start was journaled past the lease's expiry starts only once the lease is confirmed", () =>
  Effect.gen(function*() {
    const started: Array<string> = []
    const confirmations: Array<number> = []
    const memory = yield* RunStore.makeMemory
    // The write that journals b1's start ends past the lease's expiry.
    const store: RunStore.RunStore["Service"] = {
      ...memory,
      journal: (runId, entries) =>
        Effect.tap(
          memory.journal(runId, entries),
          () => entries.some((entry) => entry._tag === "Started" && entry.node === "b1") ? TestClock.setTime(expiresAt + 1_000) : Effect.void
        )
    }
    // Another process took the lease meanwhile: confirming it fails as `Lease.hold`'s does.
    const control: Engine.Control = {
      pauseRequested: false,
      lease: {
        expiresAt,
        confirm: Effect.suspend(() => {
          confirmations.push(1)
          return Effect.die(new Error("lease lost"))
        })
      }
    }
    const version = yield* store.saveWorkflow(workflow)
    const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
    const exit = yield* Effect.exit(
      Engine.execute({ runId: run.id, mode: "full", plan: Result.getOrThrow(Plan.full(workflow)), input: {}, sourceRun: undefined, publish: () => {}, control })
        .pipe(
          Effect.provideService(RunStore.RunStore, store),
          Effect.provide(Handler.layer({ step: (ctx) => Effect.sync(() => started.push(ctx.node)) }))
        )
    )
    assert.isTrue(Exit.isFailure(exit), "the execution ends with the lost lease")
    assert.deepStrictEqual(started, ["b0"], "b1 never starts")
    assert.strictEqual(confirmations.length, 1, "confirmed once, after the slow write")
  }))
