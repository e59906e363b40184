/**
 * Pausing a run from another process: the request goes through the store, and the process that
 * executes the run parks it at its next node boundary. Two `Runs` layers over one store stand for
 * the two processes; the same tests run on the memory store, PGlite and the real server.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import { SqlRunStore } from "@ripple/sql"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"
import * as EarlyClock from "../helpers/earlyClock.ts"

type Json = Workflow.Json

/** `a → gate → b → c → out`: `gate` holds until the test opens it. */
const chain: Workflow.Workflow = {
  id: "pause-chain",
  blocks: [
    { id: "a", type: "value", params: { value: 1 } },
    { id: "gate", type: "gate", params: { n: { $ref: "blocks.a.output" } } },
    { id: "b", type: "count", params: { n: { $ref: "blocks.gate.output" } } },
    { id: "c", type: "count", params: { n: { $ref: "blocks.b.output" } } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.c.output" } } }
  ],
  edges: [
    { source: "a", target: "gate" },
    { source: "gate", target: "b" },
    { source: "b", target: "c" },
    { source: "c", target: "out" }
  ]
}

/** The same shape with `b` in a count loop: a scope instance per iteration. */
const looped: Workflow.Workflow = {
  ...chain,
  id: "pause-loop",
  blocks: chain.blocks.map((b): Workflow.Block => b.id === "c" ? { id: "c", type: "value", params: { value: { $ref: "blocks.twice.output" } } } : b)
    .flatMap((b) => b.id === "b" ? [{ id: "body", type: "count", params: { n: { $ref: "loop.index" } } }] : [b]),
  edges: [
    { source: "a", target: "gate" },
    { source: "gate", target: "twice" },
    { source: "twice", target: "c" },
    { source: "c", target: "out" }
  ],
  loops: [{ id: "twice", kind: "count", count: 2, body: ["body"] }]
}

interface Process {
  readonly runs: Runs.Runs["Service"]
  /** Block instances this process executed (handlers `gate` and `count`), in order. */
  readonly executed: Array<string>
}

/** `gate → b` beside `hold → q`, both read by `out`: each of `gate` and `hold` holds until the test opens it. */
const forked: Workflow.Workflow = {
  id: "pause-forked",
  blocks: [
    { id: "gate", type: "gate", params: { n: 1 } },
    { id: "hold", type: "hold", params: { n: 10 } },
    { id: "b", type: "count", params: { n: { $ref: "blocks.gate.output" } } },
    { id: "q", type: "count", params: { n: { $ref: "blocks.hold.output" } } },
    { id: "out", type: "response", params: { b: { $ref: "blocks.b.output" }, q: { $ref: "blocks.q.output" } } }
  ],
  edges: [
    { source: "gate", target: "b" },
    { source: "hold", target: "q" },
    { source: "b", target: "out" },
    { source: "q", target: "out" }
  ]
}

/** `gate → c` beside `a → b`, `a` an approval. */
const approving: Workflow.Workflow = {
  id: "pause-approving",
  blocks: [
    { id: "gate", type: "gate", params: { n: 1 } },
    { id: "c", type: "count", params: { n: { $ref: "blocks.gate.output" } } },
    { id: "a", type: "approval" },
    { id: "b", type: "count", params: { n: 5 } }
  ],
  edges: [
    { source: "gate", target: "c" },
    { source: "a", target: "b" }
  ]
}

/** A `Runs` over the shared store, with `gate` held by `open` and `hold` by `release`. */
const processOver = (
  store: RunStore.RunStore["Service"],
  open: Deferred.Deferred<void>,
  entered: Deferred.Deferred<void>,
  release?: Deferred.Deferred<void>
) =>
  Effect.gen(function*() {
    const executed: Array<string> = []
    const holding = (until: Deferred.Deferred<void> | undefined, entered?: Deferred.Deferred<void>): Handler.Handler => (ctx) =>
      Effect.gen(function*() {
        executed.push(ctx.node)
        if (entered !== undefined) yield* Deferred.succeed(entered, undefined)
        if (until !== undefined) yield* Deferred.await(until)
        return ctx.inputs["n"] ?? null
      })
    const gate = holding(open, entered)
    const count: Handler.Handler = (ctx) => Effect.sync(() => {
      executed.push(ctx.node)
      return ((ctx.inputs["n"] as number | undefined) ?? 0) + 1
    })
    const context = yield* Layer.build(
      Runs.layer().pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer({ ...Builtins.handlers, gate, hold: holding(release), count }))
      )
    )
    const runs = Context.get(context, Runs.Runs)
    return { runs, executed } satisfies Process
  })

/**
 * Two processes over the test's store: `executing` started `workflow` and entered its `gate` (shut
 * until `open`; its `hold` blocks, if any, until `release`); `other` executes nothing of it.
 */
const twoProcesses = (workflow: Workflow.Workflow, release?: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const open = yield* Deferred.make<void>()
    const entered = yield* Deferred.make<void>()
    const executing = yield* processOver(store, open, entered, release)
    const other = yield* processOver(store, yield* Deferred.make<void>(), yield* Deferred.make<void>())
    const { runId } = yield* executing.runs.start(workflow)
    yield* Deferred.await(entered)
    return { store, open, executing, other, runId }
  })

const pausedElsewhere = (workflow: Workflow.Workflow, after: ReadonlyArray<string>, output: Json) =>
  Effect.gen(function*() {
    const { executing, open, other, runId, store } = yield* twoProcesses(workflow)
    // Asked from the process that does not execute the run: it only records the request.
    assert.strictEqual(yield* other.runs.pause(runId), "running")
    assert.isNumber((yield* store.getRun(runId)).pauseRequestedAt)
    yield* Deferred.succeed(open, undefined)
    assert.strictEqual(yield* executing.runs.wait(runId), "paused")
    // `gate` was running when the request came: it finished; nothing after it started.
    assert.deepStrictEqual(executing.executed, ["gate"])
    const snapshot = yield* store.snapshot(runId)
    assert.strictEqual(snapshot.nodes["gate"]?.status, "completed")
    assert.isTrue(snapshot.pauses.length > 0)
    assert.isUndefined((yield* store.getRun(runId)).pauseRequestedAt)
    // Unpaused by the other process, which finishes it; nothing runs twice.
    yield* other.runs.unpause(runId)
    assert.strictEqual(yield* other.runs.wait(runId), "completed")
    assert.deepStrictEqual(other.executed, after)
    assert.deepStrictEqual((yield* store.snapshot(runId)).nodes["out"]?.output, output)
  }).pipe(Effect.scoped)

/** Registers a test whose body gets the store it runs on. */
type Register = (name: string, body: Effect.Effect<void, unknown, RunStore.RunStore>) => void

const pauseTests = (test: Register) => {
  test("a pause asked for by another process parks the run at its next node boundary (at the top level)",
    pausedElsewhere(chain, ["b", "c"], 3))
  test("a pause asked for by another process parks the run at its next node boundary (in a loop)",
    pausedElsewhere(looped, ["body@0", "body@1"], [{ body: 1 }, { body: 2 }]))
  test("a pause asked for while a run sleeps takes effect when it wakes; a finished run takes no request",
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const open = yield* Deferred.make<void>()
      yield* Deferred.succeed(open, undefined)
      const process = yield* processOver(store, open, yield* Deferred.make<void>())
      const sleepy: Workflow.Workflow = {
        id: "pause-sleepy",
        blocks: [
          { id: "wait", type: "wait", params: { signal: "go" } },
          { id: "b", type: "count", params: { n: 1 } }
        ],
        edges: [{ source: "wait", target: "b" }]
      }
      const { runId } = yield* process.runs.start(sleepy)
      assert.strictEqual(yield* process.runs.wait(runId), "suspended")
      assert.strictEqual(yield* process.runs.pause(runId), "suspended")
      assert.isTrue(yield* process.runs.signal(runId, "go", null))
      assert.strictEqual(yield* process.runs.wait(runId), "paused")
      assert.deepStrictEqual(process.executed, [])
      assert.strictEqual((yield* store.snapshot(runId)).nodes["wait"]?.status, "completed")
      yield* process.runs.unpause(runId)
      assert.strictEqual(yield* process.runs.wait(runId), "completed")
      assert.deepStrictEqual(process.executed, ["b"])
      assert.strictEqual(yield* process.runs.pause(runId), "completed")
      assert.isUndefined((yield* store.getRun(runId)).pauseRequestedAt)
    }).pipe(Effect.scoped))
  test("resuming a crashed run that was asked to pause withdraws the request and completes it", crashedWithPauseAsked)
  test("resuming a crashed run that had parked a node for a pause completes it", Effect.gen(function*() {
    const { at, process, run, store } = yield* crashedRun(50)
    // Its executor parked `b` (a second Ctrl-C stopped it before the run settled).
    yield* store.transition(run.id, { type: "BRANCH_STARTED" }, at)
    yield* store.transition(run.id, { type: "BRANCH_DORMANT", branch: "b", reason: { _tag: "Pause", node: "b", reason: "paused" } }, at)
    yield* store.journal(run.id, [{ _tag: "Paused", node: "b", inputs: {}, fingerprints: { definition: "d", inputs: "i" }, reason: "paused", at }])
    yield* process.runs.resume(run.id)
    assert.strictEqual(yield* process.runs.wait(run.id), "completed")
    assert.deepStrictEqual(process.executed, ["gate", "b", "c"])
  }).pipe(Effect.scoped))
  test("an unpause from another process while the run still runs (a node parked, another running) is kept: the run goes on once it settles",
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const { executing, open, other, runId, store } = yield* twoProcesses(forked, release)
      assert.strictEqual(yield* other.runs.pause(runId), "running")
      // `hold` ends: `q` reaches its start with the pause requested and is parked, while `gate` still runs.
      yield* Deferred.succeed(release, undefined)
      for (let i = 0; i < 2_000 && (yield* store.snapshot(runId)).nodes["q"]?.status !== "paused"; i++) yield* Effect.sleep(5)
      assert.strictEqual((yield* store.snapshot(runId)).nodes["q"]?.status, "paused")
      assert.strictEqual((yield* store.getRun(runId)).status, "running")
      assert.strictEqual(yield* other.runs.unpause(runId), "running")
      // `gate` ends, `b` is parked too, the run settles `paused`: the kept unpause wakes it at once.
      yield* Deferred.succeed(open, undefined)
      assert.strictEqual(yield* executing.runs.wait(runId), "completed")
      assert.deepStrictEqual([...executing.executed].sort(), ["b", "gate", "hold", "q"])
      assert.deepStrictEqual(other.executed, [])
      const { nodes } = yield* store.snapshot(runId)
      assert.deepStrictEqual([nodes["b"]?.output, nodes["q"]?.output, nodes["out"]?.status], [2, 11, "completed"])
    }).pipe(Effect.scoped))
  test("a pause asked again after an unpause of a run that had not parked yet is honoured",
    Effect.gen(function*() {
      const { executing, open, other, runId, store } = yield* twoProcesses(chain)
      assert.strictEqual(yield* other.runs.pause(runId), "running")
      assert.strictEqual(yield* other.runs.unpause(runId), "running")
      assert.isUndefined((yield* store.getRun(runId)).pauseRequestedAt)
      // The newer request wins over the unpause kept before it.
      assert.strictEqual(yield* other.runs.pause(runId), "running")
      yield* Deferred.succeed(open, undefined)
      assert.strictEqual(yield* executing.runs.wait(runId), "paused")
      assert.deepStrictEqual(executing.executed, ["gate"])
      yield* other.runs.unpause(runId)
      assert.strictEqual(yield* other.runs.wait(runId), "completed")
      assert.deepStrictEqual(other.executed, ["b", "c"])
    }).pipe(Effect.scoped))
  test("an approval given while a pause holds the run is kept: nothing starts until the unpause, then the approval completes",
    Effect.gen(function*() {
      const { executing, open, other, runId, store } = yield* twoProcesses(approving)
      assert.strictEqual(yield* other.runs.pause(runId), "running")
      yield* Deferred.succeed(open, undefined)
      assert.strictEqual(yield* executing.runs.wait(runId), "paused")
      const statuses = Effect.map(store.snapshot(runId), ({ nodes }) => ["a", "b", "c"].map((node) => nodes[node]?.status))
      assert.deepStrictEqual(yield* statuses, ["paused", undefined, "paused"])
      // Approved from the other process, which wakes the run: the pause holds, so `a` parks again
      // (its approval kept), and nothing else starts.
      assert.isTrue(yield* other.runs.approve(runId, "a", 1))
      assert.strictEqual(yield* other.runs.wait(runId), "paused")
      assert.deepStrictEqual(yield* statuses, ["paused", undefined, "paused"])
      assert.deepStrictEqual(other.executed, [])
      yield* other.runs.unpause(runId)
      assert.strictEqual(yield* other.runs.wait(runId), "completed")
      assert.deepStrictEqual([...other.executed].sort(), ["b", "c"])
      assert.strictEqual((yield* store.snapshot(runId)).nodes["a"]?.output, 1)
      assert.deepStrictEqual(executing.executed, ["gate"])
    }).pipe(Effect.scoped))
  test("unpausing a run that has no pause to lift is refused and writes nothing",
    Effect.gen(function*() {
      const { executing, open, runId, store } = yield* twoProcesses(chain)
      const refused = yield* Effect.flip(executing.runs.unpause(runId))
      assert.strictEqual(refused._tag, "IllegalTransition")
      assert.deepStrictEqual(yield* store.deliveries(runId), [])
      yield* Deferred.succeed(open, undefined)
      assert.strictEqual(yield* executing.runs.wait(runId), "completed")
      assert.strictEqual((yield* Effect.flip(executing.runs.unpause(runId)))._tag, "IllegalTransition")
    }).pipe(Effect.scoped))
}

/**
 * A run of `chain` started by a process that died holding its lease for `ttlMs` more, and a live
 * process (its `gate` open) to resume it.
 */
const crashedRun = (ttlMs: number) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const open = yield* Deferred.make<void>()
    yield* Deferred.succeed(open, undefined)
    const process = yield* processOver(store, open, yield* Deferred.make<void>())
    const at = Date.now()
    const run = yield* store.createRun({ version: yield* store.saveWorkflow(chain), mode: "full", input: {}, at })
    yield* store.transition(run.id, { type: "START" }, at)
    yield* store.acquire(run.id, "dead", { ttlMs, at })
    return { store, process, run, at }
  })

/** A run whose process died after a pause was asked of it and before it parked (a second Ctrl-C). */
const crashedWithPauseAsked = Effect.gen(function*() {
  const { at, process, run, store } = yield* crashedRun(50)
  assert.isTrue(yield* store.requestPause(run.id, at))
  // Resumed: the dead owner's lease is waited out, the request withdrawn, the run completed.
  yield* process.runs.resume(run.id)
  assert.strictEqual(yield* process.runs.wait(run.id), "completed")
  assert.deepStrictEqual(process.executed, ["gate", "b", "c"])
  assert.isUndefined((yield* store.getRun(run.id)).pauseRequestedAt)
  // Withdrawing is idempotent; an unknown run is refused.
  yield* store.withdrawPause(run.id)
  assert.strictEqual((yield* Effect.flip(store.withdrawPause("no-such-run")))._tag, "RunNotFound")
}).pipe(Effect.scoped)

describe("pause from another process, memory store", () => {
  pauseTests((name, body) => it.live(name, () => Effect.provide(body, RunStore.layerMemory)))

  // A timer may end a little before the clock reads its deadline (Node's timers count from the
  // event loop's cached time). Here every sleep of the resuming fiber ends 20 ms early.
  it.live("resuming waits out a dead owner's lease until the clock has passed it, even when a timer ends early", () =>
    Effect.gen(function*() {
      const early = yield* EarlyClock.early(20)
      const { process, run } = yield* crashedRun(100)
      const resumed = yield* process.runs.resume(run.id).pipe(Effect.provideService(Clock.Clock, early))
      assert.isFalse("owner" in resumed && resumed.owner === "dead")
      assert.strictEqual(yield* process.runs.wait(run.id), "completed")
      assert.deepStrictEqual(process.executed, ["gate", "b", "c"])
    }).pipe(Effect.scoped, Effect.provide(RunStore.layerMemory)))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`pause from another process on ${backend}`, (it) => {
    pauseTests((name, body) => it.effect(name, () => Effect.provide(body, Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))))
  })
}
