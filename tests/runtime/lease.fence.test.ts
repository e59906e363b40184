/**
 * Self-fencing (one owner through an outage): a process whose lease runs out unrenewed stops
 * executing the run — its handler in flight included — before the lease's expiry, so that a
 * process taking the run over after the expiry is its only executor; and the run still ends
 * `completed` once, with the outputs of a run without faults ("faults are not failures"), whoever
 * finishes it. Two `Runs` layers over one memory store stand for two processes; the first sees the
 * store through an outage switch. Time is the test clock; handlers count their running instances
 * across both processes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Builtins, Engine, Handler, Lease, Runs, RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import { counting, outputs, workflow } from "../helpers/journalOutage.ts"

const leaseMs = 600
const terms = Lease.terms({ ttlMs: leaseMs })

/** What both processes' handlers share: how many instances of each block run now, and the most ever. */
interface Shared {
  readonly running: Map<string, number>
  readonly most: Map<string, number>
  readonly open: Deferred.Deferred<void>
}

interface Process {
  readonly runs: Runs.Runs["Service"]
  /** Blocks whose handlers this process started, in order. */
  readonly started: Array<string>
  /** Blocks whose handlers were interrupted here, with the clock's time then. */
  readonly interrupted: Array<{ readonly node: string; readonly at: number }>
  /** Completes once this process entered `gate`. */
  readonly entered: Deferred.Deferred<void>
}

/** `store` as a process sees it through an outage: while `outage.down`, every call fails (a release does nothing). */
const behind = (store: RunStore.RunStore["Service"], outage: { down: boolean }): RunStore.RunStore["Service"] => {
  const wrapped: Record<string, unknown> = {}
  for (const [name, operation] of Object.entries(store) as ReadonlyArray<[string, unknown]>) {
    if (typeof operation !== "function") wrapped[name] = operation
    else if (name === "fenced") wrapped[name] = (lease: RunStore.Lease) => behind(store.fenced(lease), outage)
    else {
      wrapped[name] = (...args: ReadonlyArray<unknown>) =>
        Effect.suspend(() => {
          if (!outage.down) return operation.apply(store, args) as Effect.Effect<unknown, unknown>
          if (name === "release") return Effect.void
          return Effect.fail(new RunStore.StoreUnavailable({ reason: new RunStore.ConnectionLost({ message: "outage" }), operation: name }))
        })
    }
  }
  return RunStore.RunStore.of(wrapped as unknown as RunStore.RunStore["Service"])
}

const processOver = (name: string, store: RunStore.RunStore["Service"], shared: Shared, options: Runs.Options = {}) =>
  Effect.gen(function*() {
    const started: Array<string> = []
    const interrupted: Array<{ readonly node: string; readonly at: number }> = []
    const entered = yield* Deferred.make<void>()
    const counted = <A>(node: string, body: Effect.Effect<A>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          started.push(node)
          const now = (shared.running.get(node) ?? 0) + 1
          shared.running.set(node, now)
          shared.most.set(node, Math.max(now, shared.most.get(node) ?? 0))
        }),
        () => body,
        () => Effect.sync(() => shared.running.set(node, shared.running.get(node)! - 1))
      ).pipe(Effect.onInterrupt(() => Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => interrupted.push({ node, at })))))
    /** `gate` (of `journalOutage.workflow`) holds until the test opens it. */
    const gate: Handler.Handler = (ctx) =>
      counted(ctx.node, Effect.andThen(Deferred.succeed(entered, undefined), Effect.as(Deferred.await(shared.open), 1)))
    const count: Handler.Handler = (ctx) => counted(ctx.node, Effect.sync(() => ((ctx.inputs["n"] as number | undefined) ?? 0) + 1))
    const context = yield* Layer.build(
      Runs.layer({ ...options, leaseMs, owner: name }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer({ ...Builtins.handlers, gate, count }))
      )
    )
    return { runs: Context.get(context, Runs.Runs), started, interrupted, entered } satisfies Process
  })

/** Moves the test clock on, a step at a time, until `done` holds (at most `steps` steps). */
const until = (done: () => boolean, steps = 500) =>
  Effect.gen(function*() {
    for (let i = 0; i < steps && !done(); i++) yield* TestClock.adjust(10)
    assert.isTrue(done(), "did not happen in time")
  })

/** The outputs of the workflow run once without faults, on a store of its own. */
const faultFree = Effect.gen(function*() {
  const store = yield* RunStore.makeMemory
  const shared: Shared = { running: new Map(), most: new Map(), open: yield* Deferred.make<void>() }
  yield* Deferred.succeed(shared.open, undefined)
  const alone = yield* processOver("alone", store, shared)
  const { runId } = yield* alone.runs.start(workflow)
  assert.strictEqual(yield* alone.runs.wait(runId), "completed")
  return yield* outputs(store, runId)
})

/** Process `a` executes the run through an outage switch, process `b` sees the store as it is; `a` is inside `gate`. */
const twoProcesses = Effect.gen(function*() {
  const completions = { count: 0 }
  const store = counting(yield* RunStore.makeMemory, completions)
  const outage = { down: false }
  const shared: Shared = { running: new Map(), most: new Map(), open: yield* Deferred.make<void>() }
  const a = yield* processOver("a", behind(store, outage), shared)
  const b = yield* processOver("b", store, shared)
  const { runId } = yield* a.runs.start(workflow)
  yield* Deferred.await(a.entered)
  const lease = (yield* store.getRun(runId)).lease!
  assert.strictEqual(lease.owner, "a")
  return { store, outage, shared, a, b, runId, lease, completions }
})

/** `twoProcesses`, then `a`'s store goes down until `a` stopped its handler; with a fault-free run's outputs. */
const fencedByOutage = Effect.gen(function*() {
  const expected = yield* faultFree
  const world = yield* twoProcesses
  world.outage.down = true
  yield* until(() => world.a.interrupted.length > 0)
  assert.deepStrictEqual(world.a.interrupted.map((i) => i.node), ["gate"])
  assert.isBelow(world.a.interrupted[0]!.at, world.lease.expiresAt, "interrupted before the lease expired")
  return { ...world, expected }
})

describe("self-fencing, memory store", () => {
  it.effect("an outage longer than the lease: the holder stops its handler before the expiry, and the process that takes over is the only executor", () =>
    Effect.gen(function*() {
      const { a, b, completions, expected, lease, outage, runId, shared, store } = yield* fencedByOutage
      assert.strictEqual(shared.running.get("gate"), 0)
      // Nothing of the run was failed or ended: it is left running for whoever takes it next.
      assert.strictEqual((yield* store.getRun(runId)).status, "running")

      // `b` takes the run over once the lease expired (resume waits for it), while `a` cannot reach the store.
      yield* Deferred.succeed(shared.open, undefined)
      const resuming = yield* Effect.forkChild(b.runs.resume(runId))
      yield* until(() => resuming.pollUnsafe() !== undefined)
      const resumed = yield* Fiber.join(resuming)
      assert.isTrue("plan" in resumed, "resumed by b")
      assert.isAtLeast(yield* Clock.currentTimeMillis, lease.expiresAt)
      assert.strictEqual(yield* b.runs.wait(runId), "completed")

      // The store answers `a` again: the run is b's (ended); a starts nothing more.
      outage.down = false
      yield* TestClock.adjust(leaseMs * 3)
      assert.strictEqual(yield* a.runs.wait(runId), "completed")
      assert.deepStrictEqual(a.started, ["gate"])
      assert.deepStrictEqual(b.started, ["gate", "after"])
      assert.deepStrictEqual([...shared.most.values()], [1, 1], "never two instances of a block at once")
      assert.strictEqual(completions.count, 1)
      assert.deepStrictEqual(yield* outputs(store, runId), expected)
    }))

  it.effect("an outage longer than the lease that nobody takes the run over in: the holder executes it again from its journal once the store answers", () =>
    Effect.gen(function*() {
      const { a, b, completions, expected, outage, runId, shared, store } = yield* fencedByOutage
      yield* Deferred.succeed(shared.open, undefined)
      // Down for a while longer, then back: `a` takes the lease again and goes on from the journal.
      yield* TestClock.adjust(leaseMs * 2)
      outage.down = false
      const waiting = yield* Effect.forkChild(a.runs.wait(runId))
      yield* until(() => waiting.pollUnsafe() !== undefined)
      assert.strictEqual(yield* Fiber.join(waiting), "completed")
      assert.deepStrictEqual(a.started, ["gate", "gate", "after"])
      assert.deepStrictEqual(b.started, [])
      assert.deepStrictEqual([...shared.most.values()], [1, 1], "never two instances of a block at once")
      assert.strictEqual(completions.count, 1)
      assert.deepStrictEqual(yield* outputs(store, runId), expected)
      const run = yield* store.getRun(runId)
      assert.isUndefined(run.lease, "released once the run completed")
    }))

  // The margin is `Lease.terms`' default, or `Runs.Options.marginMs`.
  for (const marginMs of [undefined, 30]) {
    it.effect(`renewals that hang: the holder stops its handler at its deadline, before the expiry all the same (marginMs ${marginMs})`, () =>
      Effect.gen(function*() {
        const completions = { count: 0 }
        const memory = counting(yield* RunStore.makeMemory, completions)
        const hang = yield* Deferred.make<void>()
        const hanging = { on: false }
        const store = RunStore.RunStore.of({
          ...memory,
          renew: (held, renewal) => Effect.andThen(Effect.suspend(() => hanging.on ? Deferred.await(hang) : Effect.void), memory.renew(held, renewal))
        })
        const shared: Shared = { running: new Map(), most: new Map(), open: yield* Deferred.make<void>() }
        const a = yield* processOver("a", store, shared, { marginMs })
        const { runId } = yield* a.runs.start(workflow)
        yield* Deferred.await(a.entered)
        const lease = (yield* store.getRun(runId)).lease!
        hanging.on = true
        yield* until(() => a.interrupted.length > 0)
        const deadline = lease.expiresAt - (marginMs ?? terms.marginMs)
        assert.isAtLeast(a.interrupted[0]!.at, deadline, "not interrupted before the deadline")
        assert.isBelow(a.interrupted[0]!.at, Math.min(deadline + 10, lease.expiresAt), "interrupted at the deadline, before the lease expired")
        // The renewal that hung answers (late, renewing nothing): the holder takes the lease again and finishes the run.
        hanging.on = false
        yield* Deferred.succeed(shared.open, undefined)
        yield* Deferred.succeed(hang, undefined)
        const waiting = yield* Effect.forkChild(a.runs.wait(runId))
        yield* until(() => waiting.pollUnsafe() !== undefined)
        assert.strictEqual(yield* Fiber.join(waiting), "completed")
        assert.deepStrictEqual(a.started, ["gate", "gate", "after"])
        assert.strictEqual(completions.count, 1)
      }))
  }
})

/** A clock read from `time.now` whose timers never end: only what the test does moves anything on. */
const frozen = (time: { now: number }): Clock.Clock => ({
  currentTimeMillisUnsafe: () => time.now,
  currentTimeNanosUnsafe: () => BigInt(time.now) * 1_000_000n,
  monotonicTimeNanosUnsafe: () => BigInt(time.now) * 1_000_000n,
  currentTimeMillis: Effect.sync(() => time.now),
  currentTimeNanos: Effect.sync(() => BigInt(time.now) * 1_000_000n),
  monotonicTimeNanos: Effect.sync(() => BigInt(time.now) * 1_000_000n),
  sleep: () => Effect.never
})

describe("Lease.hold's confirmation before a start", () => {
  // The engine confirms the lease before a start past its deadline; a renewal it sends then may
  // answer after the expiry it grants. Timers never end here, so only the confirmation decides.
  const confirming = (answerMs: number) => {
    const time = { now: 0 }
    return Effect.gen(function*() {
      const memory = yield* RunStore.makeMemory
      const run = yield* memory.createRun({ version: yield* memory.saveWorkflow(workflow), mode: "full", input: {}, at: 0 })
      const lease = yield* memory.acquire(run.id, "a", { ttlMs: leaseMs, at: 0 })
      const store = RunStore.RunStore.of({
        ...memory,
        renew: (held, renewal) => Effect.andThen(Effect.sync(() => time.now += answerMs), memory.renew(held, renewal))
      })
      const exit = yield* Effect.exit(Lease.hold(store, lease, terms, (_, control: Engine.Control) =>
        Effect.gen(function*() {
          time.now = leaseMs - terms.marginMs
          yield* control.lease!.confirm
          return control.lease!.expiresAt
        })))
      return exit
    }).pipe(Effect.provideService(Clock.Clock, frozen(time)))
  }

  it.effect("a renewal answered in time moves the deadline on", () =>
    Effect.gen(function*() {
      const exit = yield* confirming(10)
      assert.deepStrictEqual(exit, Exit.succeed(leaseMs - terms.marginMs + leaseMs - terms.marginMs))
    }))

  it.effect("a renewal answered after the expiry it grants does not count: the execution stops, fenced", () =>
    Effect.gen(function*() {
      const exit = yield* confirming(leaseMs)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
      assert.strictEqual((error as { readonly error?: { readonly _tag?: string } } | undefined)?.error?._tag, "LeaseExpired")
    }))
})

describe("Lease.terms", () => {
  it("fences a sixth of the lease before its expiry, less when a heartbeat leaves less time before it", () => {
    assert.deepStrictEqual(Lease.terms({ ttlMs: 600 }), { ttlMs: 600, heartbeatMs: 200, marginMs: 100 })
    assert.strictEqual(Lease.terms({ ttlMs: 1_000, heartbeatMs: 900 }).marginMs, 50)
    assert.strictEqual(Lease.terms({ ttlMs: 1_000, heartbeatMs: 999 }).marginMs, 0)
    assert.strictEqual(Lease.terms({ ttlMs: 1_000, marginMs: 10 }).marginMs, 10)
  })
})
