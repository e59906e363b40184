/**
 * One owner, at the moment a cancel is recorded: once another process's `RunStore.requestCancel`
 * has returned (the request is durable), the process executing the run starts nothing more of it —
 * no block, no retry of a block, no compensation, no child run — whether or not `cancel` has
 * returned yet. Handlers already running may finish. Two `Runs` layers over one store stand for
 * two processes (the memory store, PGlite and the real server); every handler start and the moment
 * the request was recorded go to one trace, in the order they happened.
 *
 * The starts that no journal write acknowledges (a retry after its backoff, a compensation, a child
 * run) are the ones these tests are about: the owner asks the store (`control.confirmed`) before each.
 * The others (queued blocks of a wide run; a suspended run woken by a third process's signal after
 * the request was recorded) rely on the acknowledgement of the write that journals a block's start.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import * as TestDatabase from "../helpers/database.ts"

/**
 * `a` fails every attempt (retryable), retried after a fixed backoff well inside the owner's lease
 * renewal period (a third of `leaseMs`): only a check before each retry can see the cancel in time.
 */
const retrying: Workflow.Workflow = {
  id: "recorded-retrying",
  blocks: [
    { id: "a", type: "flaky", retry: { maxAttempts: 10, initialDelayMs: 500, backoffFactor: 1 } },
    { id: "b", type: "count" }
  ],
  edges: [{ source: "a", target: "b" }]
}

const kid: Workflow.Workflow = {
  id: "recorded-kid",
  blocks: [{ id: "k1", type: "count" }, { id: "k2", type: "count" }],
  edges: [{ source: "k1", target: "k2" }]
}

/** `held` holds until the test opens it; the child run `sub` starts after it. */
const parent: Workflow.Workflow = {
  id: "recorded-parent",
  blocks: [
    { id: "held", type: "held" },
    { id: "sub", type: "child", params: { workflow: kid as unknown as Workflow.Json } }
  ],
  edges: [{ source: "held", target: "sub" }]
}

/** `s1 → s2 → x`: `x` fails, so `s2` then `s1` are compensated; `s2`'s compensation holds until the test opens it. */
const saga: Workflow.Workflow = {
  id: "recorded-saga",
  blocks: [{ id: "s1", type: "step" }, { id: "s2", type: "step" }, { id: "x", type: "boom" }],
  edges: [{ source: "s1", target: "s2" }, { source: "s2", target: "x" }]
}

/** `a → w → b`: suspended on the signal `go` after `a`. */
const waiting: Workflow.Workflow = {
  id: "recorded-waiting",
  blocks: [{ id: "a", type: "count" }, { id: "w", type: "wait", params: { signal: "go" } }, { id: "b", type: "count" }],
  edges: [{ source: "a", target: "w" }, { source: "w", target: "b" }]
}

/** Eight independent `held` blocks, two at a time: two in flight and six queued when the test cancels. */
const wide: Workflow.Workflow = {
  id: "recorded-wide",
  blocks: Array.from({ length: 8 }, (_, i) => ({ id: `h${i}`, type: "held" })),
  edges: []
}

/** What happened, in order: `start <process> <node>#<attempt>`, `compensate <process> <node>`, `cancel recorded`. */
type Trace = Array<string>

/** A `Runs` over the shared store whose holding handlers (`held`, `s2`'s compensation) signal `entered` and wait for `open`. */
const processOver = (
  name: string,
  leaseMs: number,
  store: RunStore.RunStore["Service"],
  trace: Trace,
  gate: { readonly entered: Deferred.Deferred<void>; readonly open: Deferred.Deferred<void> }
) =>
  Effect.gen(function*() {
    const hold = Effect.andThen(Deferred.succeed(gate.entered, undefined), Deferred.await(gate.open))
    // Recorded as the engine calls the handler, not when its effect first runs (a fiber later).
    const starting = (output: Effect.Effect<Handler.Output, BlockError.BlockError>): Handler.Handler => (ctx) => {
      trace.push(`start ${name} ${ctx.node}#${ctx.attempt}`)
      return output
    }
    const handlers: Record<string, Handler.Handler> = {
      ...Builtins.handlers,
      held: starting(Effect.as(hold, 1)),
      count: starting(Effect.succeed(1)),
      step: starting(Effect.succeed("done")),
      boom: starting(Effect.fail(BlockError.permanent("boom"))),
      flaky: starting(Effect.andThen(Deferred.succeed(gate.entered, undefined), Effect.fail(new BlockError.BlockError({ message: "flaky" }))))
    }
    const compensate: Record<string, Handler.Compensation> = {
      step: (_output, ctx) => {
        trace.push(`compensate ${name} ${ctx.node}`)
        return ctx.node === "s2" ? hold : Effect.void
      }
    }
    const context = yield* Layer.build(
      Runs.layer({ leaseMs, cancelPollMs: 20, concurrency: 2, owner: name }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer(handlers, { compensate }))
      )
    )
    return Context.get(context, Runs.Runs)
  })

/** How a test moves time on (the test clock on the memory store, the live one on SQL stores) and how long leases last. */
interface Time {
  readonly advance: (ms: number) => Effect.Effect<void>
  readonly leaseMs: number
}

/**
 * Process `owner` starts `workflow` and enters a holding handler (or a first failing attempt);
 * process `other` cancels the run, its store recording in the trace when the request is durable;
 * then the hold opens. Returns the trace, the store and the run once `cancel` returned.
 */
const cancelledWhileHeld = (workflow: Workflow.Workflow, { advance, leaseMs }: Time) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const trace: Trace = []
    const recording: RunStore.RunStore["Service"] = {
      ...store,
      requestCancel: (runId, at) => Effect.tap(store.requestCancel(runId, at), () => Effect.sync(() => trace.push("cancel recorded")))
    }
    const gate = { entered: yield* Deferred.make<void>(), open: yield* Deferred.make<void>() }
    const owner = yield* processOver("owner", leaseMs, store, trace, gate)
    const other = yield* processOver("other", leaseMs, recording, trace, { entered: yield* Deferred.make<void>(), open: yield* Deferred.make<void>() })
    const { runId } = yield* owner.start(workflow)
    yield* Deferred.await(gate.entered)
    const cancelling = yield* Effect.forkChild(other.cancel(runId))
    for (let i = 0; i < 500 && !trace.includes("cancel recorded"); i++) yield* advance(1)
    assert.include(trace, "cancel recorded")
    yield* Deferred.succeed(gate.open, undefined)
    for (let i = 0; i < 500 && cancelling.pollUnsafe() === undefined; i++) yield* advance(20)
    const cancellation = yield* Fiber.join(cancelling)
    // Whatever the owner would still do once its execution ended.
    assert.strictEqual(yield* owner.wait(runId), "cancelled")
    yield* advance(1_000)
    return { trace, store, runId, cancellation }
  })

/** What the trace holds after the cancel was recorded. */
const afterRecorded = (trace: Trace): Trace => trace.slice(trace.indexOf("cancel recorded") + 1)

/**
 * A run suspended on its `wait` with no process executing it: `other` cancels it, and as soon as
 * the request is recorded — before `other` asks for the lease — process `third` signals it, so
 * `third` takes the lease and wakes it. Returns the trace, the store, the run, how `cancel` went
 * and whether the signal was accepted.
 */
const signalledWhileCancelled = ({ advance, leaseMs }: Time) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const trace: Trace = []
    const gate = () => Effect.map(Effect.all([Deferred.make<void>(), Deferred.make<void>()]), ([entered, open]) => ({ entered, open }))
    const owner = yield* processOver("owner", leaseMs, store, trace, yield* gate())
    const third = yield* processOver("third", leaseMs, store, trace, yield* gate())
    let signalled: boolean | undefined
    const recording: RunStore.RunStore["Service"] = {
      ...store,
      requestCancel: (runId, at) =>
        Effect.tap(store.requestCancel(runId, at), () =>
          Effect.andThen(
            Effect.sync(() => trace.push("cancel recorded")),
            Effect.map(Effect.orDie(third.signal(runId, "go")), (accepted) => (signalled = accepted))
          ))
    }
    const other = yield* processOver("other", leaseMs, recording, trace, yield* gate())
    const { runId } = yield* owner.start(waiting)
    assert.strictEqual(yield* owner.wait(runId), "suspended")
    const cancelling = yield* Effect.forkChild(other.cancel(runId))
    for (let i = 0; i < 500 && cancelling.pollUnsafe() === undefined; i++) yield* advance(20)
    const cancellation = yield* Fiber.join(cancelling)
    for (const process of [owner, third, other]) yield* process.wait(runId)
    yield* advance(1_000)
    return { trace, store, runId, cancellation, signalled }
  })

/** `held → b`. */
const heldThenB: Workflow.Workflow = {
  id: "recorded-held",
  blocks: [{ id: "held", type: "held" }, { id: "b", type: "count" }],
  edges: [{ source: "held", target: "b" }]
}

/**
 * Process `owner` executes `held → b` and waits in `held` while its lease calls fail (its
 * connection is lost): it stops its execution before the lease runs out (`Lease.hold` fences
 * itself), and process `other` resumes the run, waiting in its own `held`. Then the connection
 * comes back and `owner` — whose execution, fenced, is still trying to take the lease again — is
 * asked to cancel the run. Returns the trace, the store, the run and how `cancel` went.
 */
const cancelledByZombie = ({ advance, leaseMs }: Time) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const trace: Trace = []
    let partitioned = false
    const lost = new RunStore.StoreUnavailable({ reason: new RunStore.ConnectionLost({ message: "partitioned" }), operation: "renew" })
    const cut: RunStore.RunStore["Service"] = {
      ...store,
      renew: (lease, terms) => partitioned ? Effect.fail(lost) : store.renew(lease, terms),
      acquire: (runId, owner, terms) => partitioned ? Effect.fail(lost) : store.acquire(runId, owner, terms),
      release: (lease) => partitioned ? Effect.void : store.release(lease),
      requestCancel: (runId, at) => Effect.tap(store.requestCancel(runId, at), () => Effect.sync(() => trace.push("cancel recorded")))
    }
    const gates = { owner: { entered: yield* Deferred.make<void>(), open: yield* Deferred.make<void>() }, other: { entered: yield* Deferred.make<void>(), open: yield* Deferred.make<void>() } }
    const owner = yield* processOver("owner", leaseMs, cut, trace, gates.owner)
    const other = yield* processOver("other", leaseMs, store, trace, gates.other)
    const { runId } = yield* owner.start(heldThenB)
    yield* Deferred.await(gates.owner.entered)
    partitioned = true
    const resuming = yield* Effect.forkChild(other.resume(runId))
    for (let i = 0; i < 500 && !(yield* Deferred.isDone(gates.other.entered)); i++) yield* advance(20)
    yield* Fiber.join(resuming)
    partitioned = false
    const cancelling = yield* Effect.forkChild(owner.cancel(runId))
    for (let i = 0; i < 50 && cancelling.pollUnsafe() === undefined; i++) yield* advance(1)
    yield* Deferred.succeed(gates.other.open, undefined)
    yield* Deferred.succeed(gates.owner.open, undefined)
    for (let i = 0; i < 500 && cancelling.pollUnsafe() === undefined; i++) yield* advance(20)
    const cancellation = yield* Fiber.join(cancelling)
    for (const process of [owner, other]) yield* process.wait(runId)
    yield* advance(1_000)
    return { trace, store, runId, cancellation }
  })

/** Registers a test whose body gets the store it runs on and how to move time on. */
type Register = (name: string, body: (time: Time) => Effect.Effect<void, unknown, RunStore.RunStore>) => void

const recordedTests = (test: Register) => {
  test("a cancel recorded while a block waits out its retry backoff: no retry starts, the run ends cancelled", (time) =>
    Effect.gen(function*() {
      const { cancellation, runId, store, trace } = yield* cancelledWhileHeld(retrying, time)
      assert.deepStrictEqual(afterRecorded(trace), [])
      assert.deepStrictEqual(trace, ["start owner a#1", "cancel recorded"])
      assert.deepStrictEqual(cancellation, { _tag: "Acknowledged", owner: "owner", status: "cancelled" })
      const run = yield* store.getRun(runId)
      assert.strictEqual(run.status, "cancelled")
      // The retry it did not start is no failure of `a`.
      assert.deepStrictEqual(run.diagnostics.messages, ["cancelled"])
    }).pipe(Effect.scoped))

  test("a cancel recorded before a child block is reached: no child run is started, nothing of one runs", (time) =>
    Effect.gen(function*() {
      const { cancellation, runId, store, trace } = yield* cancelledWhileHeld(parent, time)
      assert.deepStrictEqual(afterRecorded(trace), [])
      assert.deepStrictEqual(cancellation, { _tag: "Acknowledged", owner: "owner", status: "cancelled" })
      assert.deepStrictEqual(yield* store.children(runId), [])
    }).pipe(Effect.scoped))

  test("a cancel recorded while a failed run compensates: no further compensation starts, the run ends cancelled", (time) =>
    Effect.gen(function*() {
      const { cancellation, runId, store, trace } = yield* cancelledWhileHeld(saga, time)
      assert.deepStrictEqual(afterRecorded(trace), [])
      assert.deepStrictEqual(trace, ["start owner s1#1", "start owner s2#1", "start owner x#1", "compensate owner s2", "cancel recorded"])
      assert.deepStrictEqual(cancellation, { _tag: "Acknowledged", owner: "owner", status: "cancelled" })
      // The compensation it did not start stays pending in the log.
      assert.deepStrictEqual((yield* store.compensations(runId)).map((c) => [c.node, c.status]), [["s2", "completed"], ["s1", "pending"]])
    }).pipe(Effect.scoped))

  test("a cancel recorded while a wide run has blocks in flight and more queued: the queued ones never start", (time) =>
    Effect.gen(function*() {
      const { cancellation, trace } = yield* cancelledWhileHeld(wide, time)
      assert.deepStrictEqual(afterRecorded(trace), [])
      assert.deepStrictEqual(trace, ["start owner h0#1", "start owner h1#1", "cancel recorded"])
      assert.deepStrictEqual(cancellation, { _tag: "Acknowledged", owner: "owner", status: "cancelled" })
    }).pipe(Effect.scoped))

  test("a signal from a third process wakes a suspended run between its cancel request and the canceller's lease: nothing of it runs", (time) =>
    Effect.gen(function*() {
      const { cancellation, runId, signalled, store, trace } = yield* signalledWhileCancelled(time)
      assert.isTrue(signalled)
      assert.deepStrictEqual(trace, ["start owner a#1", "cancel recorded"])
      assert.deepStrictEqual(cancellation, { _tag: "Acknowledged", owner: "third", status: "cancelled" })
      // Woken by the signal: the wait took it before the run ended.
      assert.strictEqual((yield* store.snapshot(runId)).nodes["w"]?.status, "completed")
    }).pipe(Effect.scoped))

  test("a cancel asked of a process whose execution lost its lease to another is recorded, and the new owner ends the run", (time) =>
    Effect.gen(function*() {
      const { cancellation, runId, store, trace } = yield* cancelledByZombie(time)
      assert.deepStrictEqual(trace, ["start owner held#1", "start other held#1", "cancel recorded"])
      assert.deepStrictEqual(cancellation, { _tag: "Acknowledged", owner: "other", status: "cancelled" })
      assert.strictEqual((yield* store.getRun(runId)).status, "cancelled")
    }).pipe(Effect.scoped))
}

describe("no start after a cancel is recorded, memory store", () => {
  recordedTests((name, body) =>
    it.effect(name, () => Effect.provide(body({ advance: (ms) => TestClock.adjust(ms), leaseMs: 6_000 }), RunStore.layerMemory)))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`no start after a cancel is recorded on ${backend}`, (it) => {
    recordedTests((name, body) =>
      it.effect(name, () =>
        Effect.provide(
          body({ advance: (ms) => Effect.sleep(ms), leaseMs: 6_000 }),
          Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)
        )))
  })
}
