import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { TestClock } from "effect/testing"

type Json = Workflow.Json

const workflow = (
  blocks: ReadonlyArray<Workflow.Block>,
  edges: ReadonlyArray<Workflow.Edge>,
  extra: Partial<Workflow.Workflow> = {}
): Workflow.Workflow => ({ id: "wf", blocks, edges, ...extra })

const edge = (source: string, target: string, handle?: string): Workflow.Edge =>
  handle === undefined ? { source, target } : { source, target, handle }

const layer = (
  handlers: Readonly<Record<string, Handler.Handler>> = {},
  options: Runs.Options = {},
  handlerOptions: Handler.Options = {}
) => Runs.layer(options).pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers, handlerOptions)))

const counting = (calls: Map<string, number>): Handler.Handler => (ctx) =>
  Effect.sync(() => {
    calls.set(ctx.node, (calls.get(ctx.node) ?? 0) + 1)
    return ctx.inputs["value"] ?? null
  })

const started = (wf: Workflow.Workflow, input: Record<string, Json> = {}) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const { runId } = yield* runs.start(wf, input)
    const status = yield* runs.wait(runId)
    return { runId, status }
  })

const snapshotOf = (runId: string) => Effect.flatMap(RunStore.RunStore, (store) => store.snapshot(runId))

describe("Loops and parallels", () => {
  it.effect("count, forEach over an upstream array and while loops: per-iteration records and an aggregated output", () =>
    Effect.gen(function*() {
      const wf = workflow(
        [
          { id: "list", type: "value", params: { value: ["a", "b", "c"] } },
          { id: "twice", type: "value", params: { value: { $ref: "loop.index" } } },
          { id: "each", type: "value", params: { value: { i: { $ref: "loop.index" }, item: { $ref: "loop.item" } } } },
          { id: "step", type: "value", params: { value: { $ref: "loop.index" } } }
        ],
        [edge("list", "forEach")],
        {
          loops: [
            { id: "count", kind: "count", count: 2, body: ["twice"] },
            { id: "forEach", kind: "forEach", items: { $ref: "blocks.list.output" }, body: ["each"] },
            { id: "until", kind: "while", condition: { left: { $ref: "blocks.step.output" }, op: "lt", right: 2 }, maxIterations: 10, body: ["step"] }
          ]
        }
      )
      const { runId, status } = yield* started(wf)
      assert.strictEqual(status, "completed")
      const snapshot = yield* snapshotOf(runId)
      assert.deepStrictEqual(snapshot.nodes["count#end"]?.output, [{ twice: 0 }, { twice: 1 }])
      assert.deepStrictEqual(snapshot.nodes["each@2"]?.output, { i: 2, item: "c" })
      assert.deepStrictEqual(snapshot.nodes["forEach#start"]?.output, { items: ["a", "b", "c"] })
      assert.deepStrictEqual(snapshot.loops["forEach"]?.items, ["a", "b", "c"])
      // The condition reads the iteration just finished: 0 < 2, 1 < 2, then 2 < 2 stops.
      assert.deepStrictEqual(snapshot.nodes["until#end"]?.output, [{ step: 0 }, { step: 1 }, { step: 2 }])
      assert.strictEqual(snapshot.loops["until"]?.iterations, 3)
      assert.isTrue(snapshot.loops["until"]?.done)
    }).pipe(Effect.provide(layer())))

  it.effect("nested loops: loop.index reads the innermost loop; instances are numbered outer to inner", () =>
    Effect.gen(function*() {
      const wf = workflow(
        [{ id: "cell", type: "value", params: { value: { $ref: "loop.index" } } }],
        [],
        {
          loops: [
            { id: "rows", kind: "count", count: 2, body: ["cols"] },
            { id: "cols", kind: "count", count: 3, body: ["cell"] }
          ]
        }
      )
      const { runId } = yield* started(wf)
      const snapshot = yield* snapshotOf(runId)
      assert.strictEqual(snapshot.nodes["cell@1.2"]?.output, 2)
      assert.deepStrictEqual(snapshot.nodes["cols#end@1"]?.output, [{ cell: 0 }, { cell: 1 }, { cell: 2 }])
      assert.deepStrictEqual(snapshot.nodes["rows#end"]?.output, [
        { cols: [{ cell: 0 }, { cell: 1 }, { cell: 2 }] },
        { cols: [{ cell: 0 }, { cell: 1 }, { cell: 2 }] }
      ])
    }).pipe(Effect.provide(layer())))

  it.effect("a parallel runs its branches at most `concurrency` at once and aggregates them in branch order", () => {
    const active = { now: 0, peak: 0 }
    const slow: Handler.Handler = (ctx) =>
      Effect.gen(function*() {
        active.now++
        active.peak = Math.max(active.peak, active.now)
        yield* Effect.sleep(`${10 * (5 - (ctx.parallel?.index ?? 0))} millis`)
        active.now--
        return { branch: ctx.parallel?.index ?? -1, item: ctx.parallel?.item ?? null }
      })
    return Effect.gen(function*() {
      const wf = workflow([{ id: "work", type: "slow" }], [], {
        parallels: [{ id: "fan", kind: "collection", items: ["x", "y", "z", "w"], concurrency: 2, body: ["work"] }]
      })
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(wf)
      const waiting = yield* Effect.forkChild(runs.wait(runId))
      for (let i = 0; i < 20; i++) yield* TestClock.adjust("10 millis")
      assert.strictEqual(yield* Fiber.join(waiting), "completed")
      const snapshot = yield* snapshotOf(runId)
      assert.strictEqual(active.peak, 2)
      assert.deepStrictEqual(snapshot.nodes["fan#end"]?.output, [
        { work: { branch: 0, item: "x" } },
        { work: { branch: 1, item: "y" } },
        { work: { branch: 2, item: "z" } },
        { work: { branch: 3, item: "w" } }
      ])
    }).pipe(Effect.provide(layer({ slow })))
  })

  it.effect("a runFrom that resets a loop restarts it from iteration 0", () => {
    const calls = new Map<string, number>()
    return Effect.gen(function*() {
      const before = workflow(
        [{ id: "seed", type: "count", params: { value: 1 } }, { id: "body", type: "count", params: { value: { $ref: "blocks.seed.output" } } }],
        [edge("seed", "loop")],
        { loops: [{ id: "loop", kind: "count", count: 3, body: ["body"] }] }
      )
      const after = { ...before, blocks: [{ id: "seed", type: "count", params: { value: 2 } }, before.blocks[1]!] }
      const runs = yield* Runs.Runs
      const { runId } = yield* started(before)
      const again = yield* runs.runFrom(after, { target: "seed", run: runId })
      assert.deepStrictEqual(again.plan.resets, [{ _tag: "loop", container: "loop", restart: "whole", why: "upstream-re-runs" }])
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      const snapshot = yield* snapshotOf(again.runId)
      assert.deepStrictEqual(snapshot.nodes["loop#end"]?.output, [{ body: 2 }, { body: 2 }, { body: 2 }])
      for (const i of [0, 1, 2]) assert.strictEqual(calls.get(`body@${i}`), 2)
    }).pipe(Effect.provide(layer({ count: counting(calls) })))
  })
})

describe("Parallel resets", () => {
  it.effect("a runFrom that changes one item of a parallel re-runs that branch only and reuses the others", () => {
    const calls = new Map<string, number>()
    return Effect.gen(function*() {
      const fan = (items: ReadonlyArray<Json>) =>
        workflow(
          [
            { id: "other", type: "value", params: { value: 1 } },
            { id: "work", type: "count", params: { value: { $ref: "parallel.item" } } }
          ],
          [],
          { parallels: [{ id: "fan", kind: "collection", items: [...items], body: ["work"] }] }
        )
      const runs = yield* Runs.Runs
      const { runId } = yield* started(fan(["a", "b", "c"]))
      // The parallel's own items changed (not the target): only the branch whose item changed re-runs.
      const again = yield* runs.runFrom(fan(["a", "X", "c"]), { target: "other", run: runId })
      assert.deepStrictEqual(again.plan.resets, [{ _tag: "parallel", container: "fan", branches: [1], restart: "per-instance", why: "items-changed" }])
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      const snapshot = yield* snapshotOf(again.runId)
      assert.deepStrictEqual(snapshot.nodes["fan#end"]?.output, [{ work: "a" }, { work: "X" }, { work: "c" }])
      assert.deepStrictEqual([...calls.entries()].sort(), [["work@0", 1], ["work@1", 2], ["work@2", 1]])
      assert.strictEqual(snapshot.nodes["work@0"]?.reusedFrom, runId)
    }).pipe(Effect.provide(layer({ count: counting(calls) })))
  })
})

describe("Per-instance reuse inside containers", () => {
  it.effect("a target Q in a parallel whose body is P → Q re-runs Q in every branch and reuses P", () => {
    const calls = new Map<string, number>()
    return Effect.gen(function*() {
      const fan = workflow(
        [
          { id: "p", type: "count", params: { value: { $ref: "parallel.item" } } },
          { id: "q", type: "count", params: { value: { $ref: "blocks.p.output" } } }
        ],
        [edge("p", "q")],
        { parallels: [{ id: "fan", kind: "collection", items: ["a", "b", "c"], body: ["p", "q"] }] }
      )
      const runs = yield* Runs.Runs
      const { runId } = yield* started(fan)
      const again = yield* runs.runFrom(fan, { target: "q", run: runId })
      assert.deepStrictEqual(again.plan.resets, [{ _tag: "parallel", container: "fan", branches: "all", restart: "per-instance", why: "independent-instances" }])
      assert.deepStrictEqual(again.plan.rerun, ["q", "fan#end"])
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      const snapshot = yield* snapshotOf(again.runId)
      assert.deepStrictEqual(snapshot.nodes["fan#end"]?.output, [{ q: "a" }, { q: "b" }, { q: "c" }])
      assert.deepStrictEqual([...calls.entries()].sort(), [["p@0", 1], ["p@1", 1], ["p@2", 1], ["q@0", 2], ["q@1", 2], ["q@2", 2]])
      for (const i of [0, 1, 2]) assert.strictEqual(snapshot.nodes[`p@${i}`]?.reusedFrom, runId)
      assert.strictEqual(snapshot.nodes["fan#start"]?.reusedFrom, runId)
    }).pipe(Effect.provide(layer({ count: counting(calls) })))
  })

  it.effect("a block that failed in one iteration of a loop nested in a parallel re-runs in that instance only", () => {
    const calls = new Map<string, number>()
    let failing = true
    const flaky: Handler.Handler = (ctx) =>
      Effect.suspend(() => {
        calls.set(ctx.node, (calls.get(ctx.node) ?? 0) + 1)
        return failing && ctx.node === "work@1.1"
          ? Effect.fail(BlockError.permanent("flaky"))
          : Effect.succeed(ctx.inputs["value"] ?? null)
      })
    return Effect.gen(function*() {
      const nested = workflow(
        [
          { id: "other", type: "count", params: { value: 0 } },
          { id: "first", type: "count", params: { value: { $ref: "loop.index" } } },
          { id: "work", type: "flaky", params: { value: { $ref: "blocks.first.output" } } }
        ],
        [edge("first", "work")],
        {
          loops: [{ id: "each", kind: "count", count: 2, body: ["first", "work"] }],
          parallels: [{ id: "fan", kind: "count", count: 2, body: ["each"] }]
        }
      )
      const runs = yield* Runs.Runs
      const { runId, status } = yield* started(nested)
      assert.strictEqual(status, "failed")
      failing = false
      calls.clear()
      const again = yield* runs.runFrom(nested, { target: "other", run: runId })
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      assert.deepStrictEqual(again.plan.resets.map((r) => [r.container, r.restart, r.why]), [
        ["each", "per-instance", "independent-instances"],
        ["fan", "per-instance", "independent-instances"]
      ])
      // Only the failed instance re-runs; its loop and parallel instances re-aggregate.
      assert.deepStrictEqual([...calls.keys()].sort(), ["other", "work@1.1"])
      const snapshot = yield* snapshotOf(again.runId)
      assert.deepStrictEqual(snapshot.nodes["fan#end"]?.output, [{ each: [{ work: 0 }, { work: 1 }] }, { each: [{ work: 0 }, { work: 1 }] }])
      for (const key of ["each#start@1", "each#end@0", "first@1.1", "work@1.0"]) assert.strictEqual(snapshot.nodes[key]?.reusedFrom, runId, key)
    }).pipe(Effect.provide(layer({ count: counting(calls), flaky })))
  })
})

describe("Approvals, signals and sleeps", () => {
  const approval = workflow(
    [
      { id: "start", type: "trigger" },
      { id: "review", type: "approval", params: { reason: "manager sign-off" } },
      { id: "after", type: "value", params: { value: { $ref: "blocks.review.output" } } }
    ],
    [edge("start", "review"), edge("review", "after")]
  )

  it.effect("an approval pauses the run with its reason; approve resumes it with the payload", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId, status } = yield* started(approval)
      assert.strictEqual(status, "paused")
      const info = yield* runs.status(runId)
      assert.deepStrictEqual(info.suspension.approvals, ["review"])
      const paused = yield* snapshotOf(runId)
      assert.deepStrictEqual(paused.pauses.map((p) => [p.node, p.reason]), [["review", "manager sign-off"]])
      assert.isUndefined(paused.nodes["after"])
      assert.isFalse(yield* runs.approve(runId, "after", null))
      assert.isTrue(yield* runs.approve(runId, "review", { ok: true }))
      assert.isFalse(yield* runs.approve(runId, "review", { ok: true }))
      assert.strictEqual(yield* runs.wait(runId), "completed")
      const done = yield* snapshotOf(runId)
      assert.deepStrictEqual(done.nodes["after"]?.output, { ok: true })
      assert.deepStrictEqual(done.pauses, [])
    }).pipe(Effect.provide(layer())))

  it.effect("reject fails the approval node with the reason", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* started(approval)
      assert.isTrue(yield* runs.reject(runId, "review", "too expensive"))
      assert.strictEqual(yield* runs.wait(runId), "failed")
      const snapshot = yield* snapshotOf(runId)
      assert.strictEqual(snapshot.nodes["review"]?.error?.message, "rejected: too expensive")
      assert.strictEqual(snapshot.nodes["after"]?.status, "skipped")
    }).pipe(Effect.provide(layer())))

  const waiting = workflow(
    [
      { id: "start", type: "gate" },
      { id: "w", type: "wait", params: { signal: "go" } },
      { id: "after", type: "value", params: { value: { $ref: "blocks.w.output" } } }
    ],
    [edge("start", "w"), edge("w", "after")]
  )

  it.effect("a wait suspends until its signal; a mismatched or duplicate signal is refused and changes nothing", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const { runId, status } = yield* started(waiting)
      assert.strictEqual(status, "suspended")
      assert.deepStrictEqual((yield* runs.status(runId)).suspension.signals, ["go"])
      assert.deepStrictEqual((yield* snapshotOf(runId)).waits.map((w) => [w.node, w.kind, w.signal]), [["w", "signal", "go"]])
      assert.isFalse(yield* runs.signal(runId, "stop", 1))
      assert.strictEqual((yield* runs.status(runId)).status, "suspended")
      assert.deepStrictEqual(yield* store.deliveries(runId), [])
      assert.isTrue(yield* runs.signal(runId, "go", 42))
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.strictEqual((yield* snapshotOf(runId)).nodes["after"]?.output, 42)
      assert.isFalse(yield* runs.signal(runId, "go", 43))
      assert.deepStrictEqual(yield* store.deliveries(runId), [])
    }).pipe(Effect.provide(layer({ gate: () => Effect.succeed(null) }))))

  it.effect("a signal that arrives before the run suspends is kept and taken by the wait", () => {
    const gate = Deferred.makeUnsafe<void>()
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(waiting)
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.strictEqual((yield* runs.status(runId)).status, "running")
      assert.isTrue(yield* runs.signal(runId, "go", "early"))
      assert.isFalse(yield* runs.signal(runId, "go", "again"))
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.strictEqual((yield* snapshotOf(runId)).nodes["after"]?.output, "early")
    }).pipe(Effect.provide(layer({ gate: () => Effect.as(Deferred.await(gate), null) })))
  })

  it.effect("a wait inside a loop takes one signal per iteration; completed iterations are not re-executed", () => {
    const calls = new Map<string, number>()
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const wf = workflow(
        [
          { id: "before", type: "count", params: { value: { $ref: "loop.index" } } },
          { id: "w", type: "wait", params: { signal: "next" } },
          { id: "after", type: "count", params: { value: { $ref: "blocks.w.output" } } }
        ],
        [edge("before", "w"), edge("w", "after")],
        { loops: [{ id: "rounds", kind: "count", count: 2, body: ["before", "w", "after"] }] }
      )
      const { runId, status } = yield* started(wf)
      assert.strictEqual(status, "suspended")
      assert.isTrue(yield* runs.signal(runId, "next", "first"))
      assert.strictEqual(yield* runs.wait(runId), "suspended")
      assert.deepStrictEqual((yield* runs.status(runId)).suspension.branches.map((b) => b.reason.node), ["w@1"])
      assert.isTrue(yield* runs.signal(runId, "next", "second"))
      assert.strictEqual(yield* runs.wait(runId), "completed")
      const snapshot = yield* snapshotOf(runId)
      assert.deepStrictEqual(snapshot.nodes["rounds#end"]?.output, [{ after: "first" }, { after: "second" }])
      assert.deepStrictEqual([...calls.entries()].sort(), [["after@0", 1], ["after@1", 1], ["before@0", 1], ["before@1", 1]])
    }).pipe(Effect.provide(layer({ count: counting(calls) })))
  })

  it.effect("a sleep suspends with a wake time and the Clock wakes it; the store lists it as wakeable when due", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(10_000)
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const wf = workflow(
        [{ id: "nap", type: "sleep", params: { ms: 1_000 } }, { id: "after", type: "value", params: { value: 1 } }],
        [edge("nap", "after")]
      )
      const { runId, status } = yield* started(wf)
      assert.strictEqual(status, "suspended")
      assert.strictEqual((yield* runs.status(runId)).suspension.wakeAt, 11_000)
      assert.deepStrictEqual(yield* store.wakeable(10_999), [])
      assert.deepStrictEqual(yield* store.wakeable(11_000), [{ runId, status: "suspended", wakeAt: 11_000 }])
      yield* TestClock.adjust(999)
      assert.strictEqual((yield* runs.status(runId)).status, "suspended")
      yield* TestClock.adjust(1)
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      assert.strictEqual(yield* runs.wait(runId), "completed")
      const snapshot = yield* snapshotOf(runId)
      assert.deepStrictEqual(snapshot.nodes["nap"]?.output, { wakeAt: 11_000 })
      assert.strictEqual(snapshot.nodes["after"]?.status, "completed")
    }).pipe(Effect.provide(layer())))
})

describe("Pause, resume and early cutoff", () => {
  it.effect("pause parks the run at the next node boundary; unpause runs the rest, each node once", () => {
    const calls = new Map<string, number>()
    const gate = Deferred.makeUnsafe<void>()
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const wf = workflow(
        [{ id: "a", type: "gated" }, { id: "b", type: "count" }, { id: "c", type: "count" }],
        [edge("a", "b"), edge("b", "c")]
      )
      const { runId } = yield* runs.start(wf)
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      const pausing = yield* Effect.forkChild(runs.pause(runId))
      // The request is recorded before `a` finishes.
      for (let i = 0; i < 10 && (yield* store.getRun(runId)).pauseRequestedAt === undefined; i++) yield* Effect.yieldNow
      assert.isDefined((yield* store.getRun(runId)).pauseRequestedAt)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(pausing), "paused")
      const info = yield* runs.status(runId)
      assert.deepStrictEqual(info.suspension.pauses, ["b"])
      assert.strictEqual((yield* snapshotOf(runId)).nodes["b"]?.status, "paused")
      assert.strictEqual(calls.get("a"), 1)
      assert.isUndefined(calls.get("b"))
      assert.strictEqual(yield* runs.unpause(runId), "running")
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.deepStrictEqual([...calls.entries()].sort(), [["a", 1], ["b", 1], ["c", 1]])
    }).pipe(Effect.provide(layer({
      count: counting(calls),
      gated: (ctx) => Effect.andThen(Deferred.await(gate), counting(calls)(ctx))
    })))
  })

  it.effect("resume of a failed run re-runs the failed node (and what it blocked) only", () => {
    const calls = new Map<string, number>()
    let failing = true
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const wf = workflow(
        [{ id: "a", type: "count" }, { id: "b", type: "flaky" }, { id: "c", type: "count" }, { id: "d", type: "count" }],
        [edge("a", "b"), edge("b", "c"), edge("a", "d")],
        { loops: [] }
      )
      const { runId, status } = yield* started(wf)
      assert.strictEqual(status, "failed")
      failing = false
      const resumed = yield* runs.resume(runId)
      assert.strictEqual(resumed.runId, runId)
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.deepStrictEqual([...calls.entries()].sort(), [["a", 1], ["b", 2], ["c", 1], ["d", 1]])
      // Resuming a completed run is refused by RunStatus.
      const refused = yield* Effect.flip(runs.resume(runId))
      assert.strictEqual(refused._tag, "IllegalTransition")
    }).pipe(Effect.provide(layer({
      count: counting(calls),
      flaky: (ctx) =>
        Effect.andThen(counting(calls)(ctx), failing ? Effect.fail(BlockError.permanent("down")) : Effect.succeed("up"))
    })))
  })

  const stamped = workflow(
    [
      { id: "a", type: "stamp" },
      { id: "b", type: "count", params: { value: { $ref: "blocks.a.output.value" } } },
      { id: "c", type: "count", params: { value: { $ref: "blocks.b.output" } } }
    ],
    [edge("a", "b"), edge("b", "c")]
  )
  let clock = 0
  const stamp: Handler.Handler = () => Effect.sync(() => ({ value: 1, at: ++clock }))

  it.effect("early cutoff: with an output equality, a re-run whose output means the same reuses downstream (reason cutoff)", () => {
    const calls = new Map<string, number>()
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const { runId } = yield* started(stamped)
      const again = yield* runs.runFrom(stamped, { target: "a", run: runId })
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      const reasons = yield* store.reasons(again.runId)
      assert.deepStrictEqual(reasons["b"], ["cutoff"])
      assert.deepStrictEqual(reasons["c"], ["cutoff"])
      assert.strictEqual(calls.get("b"), 1)
      // The equal output keeps its prior value, so what reads it is unchanged.
      const snapshot = yield* snapshotOf(again.runId)
      assert.strictEqual(snapshot.nodes["a"]?.output, (yield* snapshotOf(runId)).nodes["a"]?.output)
    }).pipe(Effect.provide(layer({ stamp, count: counting(calls) }, {}, {
      equality: { stamp: (x, y) => (x as { value: Json }).value === (y as { value: Json }).value }
    })))
  })

  it.effect("without an equality the timestamped output changes and downstream re-runs; a volatile block never cuts off", () => {
    const calls = new Map<string, number>()
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      // b reads only `value`, which is equal: b is reused by cutoff, unless it is volatile.
      const { runId } = yield* started(stamped)
      const again = yield* runs.runFrom(stamped, { target: "a", run: runId })
      yield* runs.wait(again.runId)
      assert.deepStrictEqual((yield* store.reasons(again.runId))["b"], ["cutoff"])
      const volatile = { ...stamped, blocks: stamped.blocks.map((b) => b.id === "b" ? { ...b, volatile: true } : b) }
      const first = yield* started(volatile)
      const third = yield* runs.runFrom(volatile, { target: "a", run: first.runId })
      yield* runs.wait(third.runId)
      assert.isUndefined((yield* store.reasons(third.runId))["b"])
      assert.deepStrictEqual((yield* store.reasons(third.runId))["c"], ["cutoff"])
      assert.strictEqual(calls.get("b"), 3)
    }).pipe(Effect.provide(layer({ stamp, count: counting(calls) })))
  })
})
