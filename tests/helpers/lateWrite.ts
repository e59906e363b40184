/**
 * The scenario every store must pass for a write of a stopped execution that reaches the store late:
 * the journal write of `gate`'s completion loses its connection in flight — the execution of `Runs`
 * is told `StoreUnavailable` and stops, while the write itself is held back (by the test) to reach
 * the store later. The process, still the run's executor, takes the lease again (the same owner, a
 * new generation) and executes the run from its journal. Only then does the held write reach the
 * store, under the first generation: it is refused (`LeaseLost`) and changes nothing, neither the
 * run row nor its journal; the run completes once, with the outputs of a run without faults.
 *
 * Within one process a write the engine waits for is never cut short (tests/sql/LeaseFence.test.ts),
 * so the execution does not stop before it answers; a write that reaches the store after the
 * execution stopped is one whose answer was lost on the way (a connection dropped in flight), as here.
 *
 * The store is given as a layer (the memory store: tests/runtime/runs.lateWrite.test.ts; PGlite and
 * PostgreSQL: tests/sql/LateWrite.test.ts). Time is a `TestClock` moved on in steps, with real
 * pauses between them so a SQL store's I/O goes on.
 */
import { assert } from "@effect/vitest"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import { asWithoutFaults, counting, workflow } from "./journalOutage.ts"
import { until } from "./timerOutage.ts"

const leaseMs = 30_000

/** What the store saw of the executions. */
interface Held {
  /** The leases executions were given (the fenced stores asked for), in order. */
  readonly leases: Array<RunStore.Lease>
  /** The write held back: what reaches the store once the test lets it go, and the lease it was made under. */
  write?: { readonly lease: RunStore.Lease; readonly reach: Effect.Effect<RunStore.JournalAck, unknown> }
}

/**
 * `store`, whose first journal write completing `gate` (through a fenced store) loses its
 * connection in flight: the caller is told `StoreUnavailable`, and the write is kept in `held` to
 * reach the store when the test lets it.
 */
const inFlight = (store: RunStore.RunStore["Service"], held: Held, lease?: RunStore.Lease): RunStore.RunStore["Service"] =>
  RunStore.RunStore.of({
    ...store,
    fenced: (next) => {
      held.leases.push(next)
      return inFlight(store.fenced(next), held, next)
    },
    journal: (runId, entries) =>
      lease !== undefined && held.write === undefined && entries.some((entry) => entry._tag === "Completed" && entry.node === "gate")
        ? Effect.suspend(() => {
          held.write = { lease, reach: store.journal(runId, entries) }
          return Effect.fail(
            new RunStore.StoreUnavailable({ reason: new RunStore.ConnectionLost({ message: "lost with the write in flight (injected)" }), operation: "journal" })
          )
        })
        : store.journal(runId, entries)
  })

/** The `LeaseLost` a refused write ended with (the stores refuse a fenced write as a defect or a failure). */
const leaseLostOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit)
    ? exit.cause.reasons.map((reason) => Cause.isFailReason(reason) ? reason.error : Cause.isDieReason(reason) ? reason.defect : undefined)
      .find((error) => error instanceof RunStore.LeaseLost)
    : undefined

/** Runs the scenario of the module documentation on `store`. */
export const lateWriteRefused = <E, R>(store: Layer.Layer<RunStore.RunStore, E, R>): Effect.Effect<void, unknown, R> => {
  const completions = { count: 0 }
  const held: Held = { leases: [] }
  const started: Array<string> = []
  return Effect.gen(function*() {
    const opens = [yield* Deferred.make<void>(), yield* Deferred.make<void>(), yield* Deferred.make<void>()]
    let gates = 0
    // Each call of `gate` holds until the test opens it.
    const handlers = Handler.layer({
      ...Builtins.handlers,
      gate: (ctx) =>
        Effect.suspend(() => {
          started.push(ctx.node)
          return Effect.as(Deferred.await(opens[gates++]!), 1)
        }),
      count: (ctx) =>
        Effect.sync(() => {
          started.push(ctx.node)
          return ((ctx.inputs["n"] as number | undefined) ?? 0) + 1
        })
    })
    const wrapped = Layer.effect(RunStore.RunStore, Effect.map(RunStore.RunStore, (inner) => counting(inFlight(inner, held), completions))).pipe(
      Layer.provide(store)
    )
    yield* Effect.gen(function*() {
      yield* TestClock.setTime(10_000)
      const runs = yield* Runs.Runs
      const stored = yield* RunStore.RunStore
      const { runId } = yield* runs.start(workflow)
      yield* until(Effect.sync(() => started.length === 1), 10_000, "gate did not start")
      const first = held.leases[0]!
      const waiting = yield* Effect.forkChild(runs.wait(runId))

      // `gate` completes; its completion's write is held in flight, the execution stops, and the
      // process takes the run up again under a new generation: `gate` runs again and holds.
      yield* Deferred.succeed(opens[0]!, undefined)
      yield* until(Effect.sync(() => started.length === 2), 20_000, "the run was not taken up again")
      assert.deepStrictEqual(started, ["gate", "gate"])
      const write = held.write!
      assert.strictEqual(write.lease, first, "the held write was made under the first lease")
      const [, second] = held.leases
      assert.deepStrictEqual([held.leases.length, second!.owner, second!.generation], [2, first.owner, first.generation + 1], "taken again by the same owner, under the next generation")
      const before = { run: yield* stored.getRun(runId), snapshot: yield* stored.snapshot(runId) }
      assert.deepStrictEqual(before.run.lease, { owner: second!.owner, expiresAt: second!.expiresAt })
      assert.notStrictEqual(before.snapshot.nodes["gate"]?.status, "completed")

      // The held write reaches the store now: refused, and nothing of it lands.
      const exit = yield* Effect.exit(write.reach)
      const lost = leaseLostOf(exit)
      assert.instanceOf(lost, RunStore.LeaseLost, `the late write was refused with LeaseLost (got ${String(exit)})`)
      assert.strictEqual((lost as RunStore.LeaseLost).generation, first.generation)
      assert.deepStrictEqual({ run: yield* stored.getRun(runId), snapshot: yield* stored.snapshot(runId) }, before, "the late write changed nothing")

      // The execution under the new generation completes the run, once, as a run without faults would.
      yield* Deferred.succeed(opens[1]!, undefined)
      yield* until(Effect.sync(() => waiting.pollUnsafe() !== undefined), 20_000, "the run did not complete")
      assert.strictEqual(yield* Fiber.join(waiting), "completed")
      assert.deepStrictEqual(started, ["gate", "gate", "after"])
      assert.strictEqual(completions.count, 1, "completed once")
      yield* Deferred.succeed(opens[2]!, undefined)
      yield* asWithoutFaults(runs, stored, runId)
    }).pipe(
      Effect.provide(Runs.layer({ leaseMs }).pipe(Layer.provideMerge(wrapped), Layer.provideMerge(handlers)))
    )
  }).pipe(Effect.provide(TestClock.layer()))
}
