/**
 * One owner: every execution holds its run's lease, and a cancel asked for by a process that does
 * not execute the run stops it before its next block — once `cancel` returns, no block of the run
 * starts. Two `Runs` layers over one store stand for two processes (the memory store, PGlite and
 * the real server); the blocks each process's handlers started are recorded outside Ripple, in
 * plain arrays.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Lease, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"
import * as TestDatabase from "../helpers/database.ts"
import * as EarlyClock from "../helpers/earlyClock.ts"

/** `gate → b → c → out`: `gate` holds until the test opens it. */
const chain: Workflow.Workflow = {
  id: "lease-chain",
  blocks: [
    { id: "gate", type: "gate" },
    { id: "b", type: "count", params: { n: { $ref: "blocks.gate.output" } } },
    { id: "c", type: "count", params: { n: { $ref: "blocks.b.output" } } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.c.output" } } }
  ],
  edges: [
    { source: "gate", target: "b" },
    { source: "b", target: "c" },
    { source: "c", target: "out" }
  ]
}

/** The same shape with `b` in a count loop: a scope instance per iteration. */
const looped: Workflow.Workflow = {
  id: "lease-loop",
  blocks: [
    { id: "gate", type: "gate" },
    { id: "body", type: "count", params: { n: { $ref: "loop.index" } } },
    { id: "c", type: "count", params: { n: 1 } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.c.output" } } }
  ],
  edges: [
    { source: "gate", target: "twice" },
    { source: "twice", target: "c" },
    { source: "c", target: "out" }
  ],
  loops: [{ id: "twice", kind: "count", count: 2, body: ["body"] }]
}

interface Process {
  readonly runs: Runs.Runs["Service"]
  /** Block instances whose handlers this process started, in order. */
  readonly started: Array<string>
  /** Block instances whose handlers were interrupted (the execution stopped while they ran). */
  readonly interrupted: Array<string>
}

/**
 * How a test moves time on and how long its leases last: short on the test clock, so renewals happen within
 * the test; longer on the live clock, so that a loaded machine does not starve the owner's renewals and
 * turn an acknowledged cancel into an expired lease.
 */
interface Time {
  readonly advance: Advance
  readonly leaseMs: number
}

/** A `Runs` over the shared store, with `gate` held by `open`. */
const processOver = (
  name: string,
  leaseMs: number,
  store: RunStore.RunStore["Service"],
  open: Deferred.Deferred<void>,
  entered: Deferred.Deferred<void>
) =>
  Effect.gen(function*() {
    const started: Array<string> = []
    const interrupted: Array<string> = []
    const gate: Handler.Handler = (ctx) =>
      Effect.gen(function*() {
        started.push(ctx.node)
        yield* Deferred.succeed(entered, undefined)
        yield* Deferred.await(open)
        return 1
      }).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push(ctx.node))))
    const count: Handler.Handler = (ctx) =>
      Effect.sync(() => {
        started.push(ctx.node)
        return ((ctx.inputs["n"] as number | undefined) ?? 0) + 1
      })
    const context = yield* Layer.build(
      Runs.layer({ leaseMs, cancelPollMs: 20, owner: name }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer({ ...Builtins.handlers, gate, count }))
      )
    )
    return { runs: Context.get(context, Runs.Runs), started, interrupted } satisfies Process
  })

/**
 * Two processes over the test's store: `owner` started `workflow` and entered its `gate` (shut until
 * `open`); `refused` completes once `other` was refused the run's lease (it has seen the owner).
 */
const ownerAndOther = (workflow: Workflow.Workflow, leaseMs: number) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const open = yield* Deferred.make<void>()
    const entered = yield* Deferred.make<void>()
    const refused = yield* Deferred.make<void>()
    const watched: RunStore.RunStore["Service"] = {
      ...store,
      acquire: (runId, holder, terms) =>
        Effect.tapError(store.acquire(runId, holder, terms), (error) => error._tag === "LeaseHeld" ? Deferred.succeed(refused, undefined) : Effect.void)
    }
    const owner = yield* processOver("owner", leaseMs, store, open, entered)
    const other = yield* processOver("other", leaseMs, watched, yield* Deferred.make<void>(), yield* Deferred.make<void>())
    const { runId } = yield* owner.runs.start(workflow)
    yield* Deferred.await(entered)
    return { store, open, owner, other, runId, refused }
  })

/** Moves time on (the test clock on the memory store, the live one on SQL stores) until `fiber` is done. */
type Advance = (ms: number) => Effect.Effect<void>

const untilDone = <A, E>(fiber: Fiber.Fiber<A, E>, advance: Advance) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && fiber.pollUnsafe() === undefined; i++) yield* advance(20)
    return yield* Fiber.join(fiber)
  })

/**
 * Process `owner` executes the run and holds `gate` open or shut; process `other` cancels it. What
 * `owner` started when `cancel` returned is all it ever starts.
 */
const cancelledElsewhere = (workflow: Workflow.Workflow, { advance, leaseMs }: Time, opensGate: boolean) =>
  Effect.gen(function*() {
    const { store, open, owner, other, refused, runId } = yield* ownerAndOther(workflow, leaseMs)
    const cancelling = yield* Effect.forkChild(other.runs.cancel(runId))
    // Recorded first: then the owner's next journal write (the gate's completion) or lease renewal sees it.
    for (let i = 0; i < 500 && (yield* store.getRun(runId)).cancelRequestedAt === undefined; i++) yield* advance(1)
    // And `other` has seen the owner hold the lease: an owner that honours the request and lets go
    // before that would leave `other` a run nobody holds, already cancelled (`Cancelled`, not `Acknowledged`).
    yield* Deferred.await(refused)
    if (opensGate) yield* Deferred.succeed(open, undefined)
    assert.deepStrictEqual(yield* untilDone(cancelling, advance), { _tag: "Acknowledged", owner: "owner", status: "cancelled" })
    // `cancel` returned once the owner stopped: a gate still shut was interrupted by then.
    assert.deepStrictEqual(owner.interrupted, opensGate ? [] : ["gate"])
    const startedWhenReturned = [...owner.started]
    // Whatever the owner would still do: the gate opens, time passes, the owner's execution ends.
    yield* Deferred.succeed(open, undefined)
    assert.strictEqual(yield* owner.runs.wait(runId), "cancelled")
    yield* advance(leaseMs * 2)
    assert.deepStrictEqual(owner.started, startedWhenReturned)
    assert.deepStrictEqual(owner.started, ["gate"])
    assert.deepStrictEqual(other.started, [])
    const run = yield* store.getRun(runId)
    assert.strictEqual(run.status, "cancelled")
    assert.isUndefined(run.cancelRequestedAt)
    assert.strictEqual(run.diagnostics.finalization, "cancelled")
  }).pipe(Effect.scoped)

/** Registers a test whose body gets the store it runs on and how to move time on. */
type Register = (name: string, body: (time: Time) => Effect.Effect<void, unknown, RunStore.RunStore>) => void

const leaseTests = (test: Register) => {
  for (const [path, workflow] of [["at the top level", chain], ["in a loop", looped]] as const) {
    test(`a cancel from another process stops the run at its next block: none starts after cancel returns (${path})`, (time) =>
      cancelledElsewhere(workflow, time, true))
    test(`a cancel from another process stops a run waiting on a handler, through the owner's renewal (${path})`, (time) =>
      cancelledElsewhere(workflow, time, false))
  }
  test("every execution holds the run's lease: another process can neither take it nor execute the run beside it", ({ advance, leaseMs }) =>
    Effect.gen(function*() {
      const { store, open, owner, other, runId } = yield* ownerAndOther(chain, leaseMs)
      yield* advance(leaseMs * 2)
      // Renewed by the owner past its first expiry: still held.
      const held = yield* Effect.flip(store.acquire(runId, "intruder", { ttlMs: 1, at: yield* Clock.currentTimeMillis }))
      assert.strictEqual(held._tag, "LeaseHeld")
      // Resumed from the other process: the owner renews its lease, so it is handed to it, not executed beside it.
      const resuming = yield* Effect.forkChild(other.runs.resume(runId))
      const resumed = yield* untilDone(resuming, advance)
      assert.isTrue("owner" in resumed && !("plan" in resumed) && resumed.held === true)
      assert.strictEqual((yield* other.runs.handling(runId))._tag, "Owner")
      yield* Deferred.succeed(open, undefined)
      assert.strictEqual(yield* owner.runs.wait(runId), "completed")
      assert.deepStrictEqual(owner.started, ["gate", "b", "c"])
      assert.deepStrictEqual(other.started, [])
      // Released once the execution ended.
      const lease = yield* store.acquire(runId, "after", { ttlMs: 1, at: 0 })
      assert.strictEqual(lease.owner, "after")
    }).pipe(Effect.scoped))
  test("resuming a run a live owner executes answers with the owner at its next renewal, before the lease it held runs out", ({ advance, leaseMs }) =>
    Effect.gen(function*() {
      const { store, open, owner, other, runId } = yield* ownerAndOther(chain, leaseMs)
      const first = (yield* store.getRun(runId)).lease!
      const resuming = yield* Effect.forkChild(other.runs.resume(runId))
      // Time moves on only while the lease the owner held when asked lasts: waiting it out, as for a
      // dead owner, would not answer within it.
      while (resuming.pollUnsafe() === undefined && (yield* Clock.currentTimeMillis) + 20 < first.expiresAt) yield* advance(20)
      assert.isDefined(resuming.pollUnsafe(), "resume did not answer before the lease the owner held when asked ran out")
      // `held`: the answer says the owner is alive, which is why nothing was resumed.
      assert.deepStrictEqual(yield* Fiber.join(resuming), { runId, owner: "owner", held: true })
      // Nothing taken from the owner: still running under its lease, nothing executed by the other.
      assert.strictEqual((yield* store.getRun(runId)).status, "running")
      const held = yield* Effect.flip(store.acquire(runId, "intruder", { ttlMs: 1, at: yield* Clock.currentTimeMillis }))
      assert.strictEqual(held._tag === "LeaseHeld" ? held.owner : held._tag, "owner")
      yield* Deferred.succeed(open, undefined)
      assert.strictEqual(yield* owner.runs.wait(runId), "completed")
      assert.deepStrictEqual(owner.started, ["gate", "b", "c"])
      assert.deepStrictEqual(other.started, [])
    }).pipe(Effect.scoped))
}

describe("one owner, memory store", () => {
  leaseTests((name, body) =>
    it.effect(name, () => Effect.provide(body({ advance: (ms) => TestClock.adjust(ms), leaseMs: 600 }), RunStore.layerMemory)))

  it.live("Lease.take waiting out a dead owner's lease takes it even when its timer ends before the clock passes the expiry", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const workflow: Workflow.Workflow = { id: "held", blocks: [{ id: "a", type: "value", params: { value: 1 } }], edges: [] }
      const at = Date.now()
      const run = yield* store.createRun({ version: yield* store.saveWorkflow(workflow), mode: "full", input: {}, at })
      yield* store.acquire(run.id, "dead", { ttlMs: 100, at })
      const lease = yield* Lease.take(store, run.id, "me", 1_000, { waitExpiry: true }).pipe(
        Effect.provideService(Clock.Clock, yield* EarlyClock.early(20))
      )
      assert.strictEqual(lease.owner, "me")
      assert.isAtLeast(Date.now(), at + 100)
    }))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`one owner on ${backend}`, (it) => {
    leaseTests((name, body) =>
      it.effect(name, () =>
        Effect.provide(
          body({ advance: (ms) => Effect.sleep(ms), leaseMs: 2_000 }),
          Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)
        )))
  })
}
