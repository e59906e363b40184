/**
 * The scenario every store must pass for a write of a stopped execution that reaches the store late:
 * the journal write of `gate`'s completion loses its connection in flight — the execution of `Runs`
 * is told `StoreUnavailable` and stops, while the write itself is held back (by the test) to reach
 * the store later. The lease is taken again (`Taker`): by the process, still the run's executor (the
 * same owner, a new generation), which executes the run from its journal; or first by another
 * process whose clock runs ahead, which then stops renewing it (it crashed). Only then does a write
 * of the stopped execution reach the store, under the first generation (a `Late`: the held journal
 * write, or a run-row write the stopped execution could have had in flight — a status transition,
 * `finish`, `setDiagnostics`): it is refused (`LeaseLost`, a typed failure) and changes nothing,
 * neither the run row nor its journal; the run completes once, with the outputs of a run without
 * faults. `takenOverStops` is the other side: the live execution's own next write once another
 * process took its lease.
 *
 * Within one process a write the engine waits for is never cut short (tests/sql/LeaseFence.test.ts),
 * so the execution does not stop before it answers; a write that reaches the store after the
 * execution stopped is one whose answer was lost on the way (a connection dropped in flight), as here.
 * A run-row write is made, like the held journal write, through the store fenced by the first
 * lease, when the test lets it reach the store; each one would change the run if it landed (the
 * machine accepts its event while the run is `running`).
 *
 * The store is given as a layer (the memory store: tests/runtime/runs.lateWrite.test.ts; PGlite and
 * PostgreSQL: tests/sql/LateWrite.test.ts). Time is a `TestClock` moved on in steps, with real
 * pauses between them so a SQL store's I/O goes on.
 */
import { assert } from "@effect/vitest"
import type { Snapshot } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import { TestClock } from "effect/testing"
import { asWithoutFaults, counting, workflow } from "./journalOutage.ts"
import { pass, until } from "./timerOutage.ts"

const leaseMs = 30_000

/** An execution the store was fenced for: its lease, and the store fenced by it (not wrapped by the test). */
interface Execution {
  readonly lease: RunStore.Lease
  readonly store: RunStore.RunStore["Service"]
}

/** What the store saw of the executions. */
interface Held {
  /** The executions (the fenced stores asked for), in order. */
  readonly executions: Array<Execution>
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
      const fenced = store.fenced(next)
      held.executions.push({ lease: next, store: fenced })
      return inFlight(fenced, held, next)
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

/**
 * A write of the stopped execution that reaches the store late: made through `stopped`, the store
 * fenced by its lease, at `at`; `journal` is its journal write held in flight.
 */
export interface Late {
  readonly name: string
  readonly write: (
    stopped: RunStore.RunStore["Service"],
    runId: string,
    at: number,
    journal: Effect.Effect<RunStore.JournalAck, unknown>
  ) => Effect.Effect<unknown, unknown>
}

// A branch to park (any id: the machine only keys dormant branches by it), and the diagnostics a late write would leave.
const branch = "root"
const diagnostics: Snapshot.Diagnostics = { messages: ["written by the stopped execution"] }

/** Every late write the scenario is run with: the held journal write, then each run-row write. */
export const lates: ReadonlyArray<Late> = [
  { name: "the journal write completing gate", write: (_stopped, _runId, _at, journal) => journal },
  {
    name: "a transition running → suspended",
    write: (stopped, runId, at) =>
      stopped.transition(runId, { type: "BRANCH_DORMANT", branch, reason: { _tag: "Sleep", node: "gate", until: at + 60_000 } }, at)
  },
  {
    name: "a transition running → paused",
    write: (stopped, runId, at) => stopped.transition(runId, { type: "BRANCH_DORMANT", branch, reason: { _tag: "Pause", node: "gate", reason: "late" } }, at)
  },
  { name: "a transition running → completed", write: (stopped, runId, at) => stopped.transition(runId, { type: "ALL_BRANCHES_FINISHED" }, at) },
  { name: "a finish running → completed", write: (stopped, runId, at) => stopped.finish(runId, { type: "ALL_BRANCHES_FINISHED" }, diagnostics, at) },
  { name: "a finish running → failed", write: (stopped, runId, at) => stopped.finish(runId, { type: "FAIL", error: "late" }, diagnostics, at) },
  { name: "setDiagnostics", write: (stopped, runId, at) => stopped.setDiagnostics(runId, diagnostics, at) }
]

/** The typed failure a refused write ended with (a defect is not a refusal). */
const failureOf = (exit: Exit.Exit<unknown, unknown>): unknown => Exit.isFailure(exit) ? Result.getOrUndefined(Cause.findError(exit.cause)) : undefined

/** The workflow's handlers: each call of `gate` holds until the test opens the next of `opens`; `started` lists the nodes started. */
const gated = (started: Array<string>, opens: ReadonlyArray<Deferred.Deferred<void>>) => {
  let gates = 0
  return Handler.layer({
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
}

/** Starts the workflow (the test clock at 10 s) and waits until its `gate` started. */
const startedAtGate = (started: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(10_000)
    const runs = yield* Runs.Runs
    const stored = yield* RunStore.RunStore
    const { runId } = yield* runs.start(workflow)
    yield* until(Effect.sync(() => started.length === 1), 10_000, "gate did not start")
    return { runId, runs, stored }
  })

/** What a late write must leave as it was: the run row and its journal (the snapshot's node records). */
const stateOf = (stored: RunStore.RunStore["Service"], runId: string) =>
  Effect.all({ run: stored.getRun(runId), snapshot: stored.snapshot(runId) })

/**
 * Who holds the lease when the late write reaches the store: the run's executor here, which took
 * it again; or another process (its clock ahead) that took it before, and stops renewing it (it
 * crashed), so that the executor here takes the run up again once it expired.
 */
export type Taker = "its owner" | "another process"

/** Every `Taker`. */
export const takers: ReadonlyArray<Taker> = ["its owner", "another process"]

/**
 * Runs the scenario of the module documentation on `store`, with the late write `late` (default:
 * the held journal write), the lease taken by `by` (default: the executor here) before it lands.
 */
export const lateWriteRefused = <E, R>(
  store: Layer.Layer<RunStore.RunStore, E, R>,
  late: Late = lates[0]!,
  by: Taker = "its owner"
): Effect.Effect<void, unknown, R> => {
  const completions = { count: 0 }
  const held: Held = { executions: [] }
  const started: Array<string> = []
  return Effect.gen(function*() {
    const opens = [yield* Deferred.make<void>(), yield* Deferred.make<void>(), yield* Deferred.make<void>()]
    const handlers = gated(started, opens)
    const wrapped = Layer.effect(RunStore.RunStore, Effect.map(RunStore.RunStore, (inner) => counting(inFlight(inner, held), completions))).pipe(
      Layer.provide(store)
    )
    yield* Effect.gen(function*() {
      const { runId, runs, stored } = yield* startedAtGate(started)
      const first = held.executions[0]!
      const waiting = yield* Effect.forkChild(runs.wait(runId))

      // `gate` completes; its completion's write is held in flight, and the execution stops.
      yield* Deferred.succeed(opens[0]!, undefined)
      yield* until(Effect.sync(() => held.write !== undefined), 20_000, "the write of gate's completion was not made")
      // The run taken up again under the next generation (`gate` runs again and holds), by the
      // process here after a heartbeat; after `lost` generations taken by others before it.
      const takenUpAgain = (lost: number) =>
        Effect.gen(function*() {
          yield* until(Effect.sync(() => started.length === 2), 20_000 + lost * leaseMs * 2, "the run was not taken up again")
          assert.deepStrictEqual(started, ["gate", "gate"])
          const second = held.executions[1]!.lease
          assert.deepStrictEqual(
            [held.executions.length, second.owner, second.generation],
            [2, first.lease.owner, first.lease.generation + 1 + lost],
            "taken again by the same owner, under the next generation it was granted"
          )
          return second
        })
      if (by === "its owner") {
        const second = yield* takenUpAgain(0)
        assert.deepStrictEqual((yield* stored.getRun(runId)).lease, { owner: second.owner, expiresAt: second.expiresAt })
      } else {
        // Another process, its clock past the lease's expiry, takes the run before the process here does.
        const other = yield* stored.acquire(runId, "another process", { ttlMs: leaseMs, at: first.lease.expiresAt })
        assert.deepStrictEqual((yield* stored.getRun(runId)).lease, { owner: other.owner, expiresAt: other.expiresAt })
      }
      const write = held.write!
      assert.strictEqual(write.lease, first.lease, "the held write was made under the first lease")
      const before = yield* stateOf(stored, runId)
      assert.strictEqual(before.run.status, "running")
      assert.notStrictEqual(before.snapshot.nodes["gate"]?.status, "completed")

      // The late write reaches the store now: refused, and nothing of it lands.
      const exit = yield* Effect.exit(late.write(first.store, runId, yield* Clock.currentTimeMillis, write.reach))
      const lost = failureOf(exit)
      assert.instanceOf(lost, RunStore.LeaseLost, `the late write was refused with LeaseLost (got ${String(exit)})`)
      assert.strictEqual((lost as RunStore.LeaseLost).generation, first.lease.generation)
      assert.deepStrictEqual(yield* stateOf(stored, runId), before, "the late write changed nothing")
      // The other process stops renewing (it crashed): the process here takes the run up again once that lease expired.
      if (by === "another process") yield* takenUpAgain(1)

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

/**
 * Another process takes the lease of a run this process executes, while `gate` runs here: its clock
 * ahead past the lease's expiry (expiries are compared on the callers' clocks), it finds the lease
 * expired. The next write of the execution here (`gate`'s completion) is refused with `LeaseLost`,
 * a typed failure, and the execution stops as one that lost its lease, not as a crash: `Runs.wait`
 * reports the run's stored status (`running`, the other process's now), no block starts here after
 * it, and nothing of it is written.
 */
export const takenOverStops = <E, R>(store: Layer.Layer<RunStore.RunStore, E, R>): Effect.Effect<void, unknown, R> => {
  const started: Array<string> = []
  return Effect.gen(function*() {
    const opens = [yield* Deferred.make<void>()]
    yield* Effect.gen(function*() {
      const { runId, runs, stored } = yield* startedAtGate(started)
      const held = (yield* stored.getRun(runId)).lease!
      yield* stored.acquire(runId, "another process", { ttlMs: leaseMs, at: held.expiresAt })
      const before = yield* stateOf(stored, runId)
      // Waiting on the execution itself (it is executing here), as a caller of `Runs.wait` does.
      const waiting = yield* Effect.forkChild(runs.wait(runId))
      yield* pass(100)

      yield* Deferred.succeed(opens[0]!, undefined)
      yield* until(Effect.sync(() => waiting.pollUnsafe() !== undefined), 20_000, "the execution did not stop")
      const exit = yield* Fiber.await(waiting)
      assert.isTrue(Exit.isSuccess(exit), `the execution stopped, not crashed (got ${String(exit)})`)
      assert.strictEqual(Exit.isSuccess(exit) ? exit.value : undefined, "running", "the run's stored status")
      assert.deepStrictEqual(started, ["gate"], "no block started after the lease was lost")
      assert.deepStrictEqual(yield* stateOf(stored, runId), before, "nothing written")
    }).pipe(
      Effect.provide(Runs.layer({ leaseMs }).pipe(Layer.provideMerge(store), Layer.provideMerge(gated(started, opens))))
    )
  }).pipe(Effect.provide(TestClock.layer()))
}
