/**
 * `Runs.resume` of a run another process's lease holds looks at the run as often as the lease
 * terms make worth it: once per expected renewal (a heartbeat) and at the expiry, not every few
 * milliseconds for the length of the lease. Its answers stay: a dead owner's run is taken over once
 * the lease expired; a live owner's renewal leaves it the run (`held`). Memory store, test clock;
 * the default lease (30 s, renewed every 10 s).
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Lease, Runs, RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"

// `gate → out`: `gate` holds until the test opens it.
const gated: Workflow.Workflow = {
  id: "resume-polling",
  blocks: [
    { id: "gate", type: "gate" },
    { id: "out", type: "response", params: { value: { $ref: "blocks.gate.output" } } }
  ],
  edges: [{ source: "gate", target: "out" }]
}

// Reads a resume may make besides looking at the lease: the first look, and the run read again to
// execute it (a look every 50 ms over a 30 s lease is 600).
const reads = 10

/** `store` with its `getRun` calls counted. */
const counted = (store: RunStore.RunStore["Service"]) => {
  const calls = { getRun: 0 }
  const port: RunStore.RunStore["Service"] = { ...store, getRun: (runId) => Effect.suspend(() => (calls.getRun++, store.getRun(runId))) }
  return { port, calls }
}

/** A `Runs` over `store` named `owner`, with `gate` held until `open`. */
const process = (owner: string, store: RunStore.RunStore["Service"], open: Deferred.Deferred<void>, entered: Deferred.Deferred<void>) =>
  Effect.map(
    Layer.build(
      Runs.layer({ owner }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer({
          ...Builtins.handlers,
          gate: () => Effect.andThen(Deferred.succeed(entered, undefined), Effect.as(Deferred.await(open), 1))
        }))
      )
    ),
    (context) => Context.get(context, Runs.Runs)
  )

/** Moves the test clock on a second at a time until `fiber` is done (at most two leases). */
const untilDone = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < (2 * Lease.defaultTtlMs) / 1_000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(1_000)
    return yield* Fiber.join(fiber)
  })

describe("resume looks at another owner's lease once per expected renewal", () => {
  it.effect("a dead owner's run is taken over once its lease expired, with a few reads", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const { calls, port } = counted(store)
      const at = yield* Clock.currentTimeMillis
      const run = yield* store.createRun({ version: yield* store.saveWorkflow(gated), mode: "full", input: {}, at })
      const dead = yield* store.acquire(run.id, "dead", { ttlMs: Lease.defaultTtlMs, at })
      const open = yield* Deferred.make<void>()
      yield* Deferred.succeed(open, undefined)
      const runs = yield* process("here", port, open, yield* Deferred.make<void>())
      const resumed = yield* untilDone(yield* Effect.forkChild(runs.resume(run.id)))
      assert.isTrue("plan" in resumed, "taken over here")
      assert.isAtLeast(yield* Clock.currentTimeMillis, dead.expiresAt)
      assert.isAtMost(calls.getRun, reads)
      assert.strictEqual(yield* runs.wait(run.id), "completed")
    }).pipe(Effect.scoped))

  it.effect("a live owner keeps the run: its renewal is seen before the lease it held expired, with a few reads", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const { calls, port } = counted(store)
      const open = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      const owner = yield* process("owner", store, open, entered)
      const other = yield* process("other", port, yield* Deferred.make<void>(), yield* Deferred.make<void>())
      const { runId } = yield* owner.start(gated)
      yield* Deferred.await(entered)
      const first = (yield* store.getRun(runId)).lease!
      const resumed = yield* untilDone(yield* Effect.forkChild(other.resume(runId)))
      assert.deepStrictEqual(resumed, { runId, owner: "owner", held: true })
      assert.isBelow(yield* Clock.currentTimeMillis, first.expiresAt)
      assert.isAtMost(calls.getRun, reads)
      yield* Deferred.succeed(open, undefined)
      assert.strictEqual(yield* owner.wait(runId), "completed")
    }).pipe(Effect.scoped))
})
