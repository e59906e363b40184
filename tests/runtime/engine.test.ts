import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, Plan, type Workflow } from "@ripple/core"
import { BlockError, Engine, Handler, type RunEvent, Runs, RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"
import * as Tracer from "effect/Tracer"

const workflow = (
  blocks: ReadonlyArray<Workflow.Block>,
  edges: ReadonlyArray<Workflow.Edge>,
  extra: Partial<Workflow.Workflow> = {}
): Workflow.Workflow => ({ id: "wf", blocks, edges, ...extra })

const edge = (source: string, target: string, handle?: string): Workflow.Edge =>
  handle === undefined ? { source, target } : { source, target, handle }

const layer = (handlers: Readonly<Record<string, Handler.Handler>> = {}, options: Runs.Options = {}) =>
  Runs.layer(options).pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers)))

const runToEnd = (wf: Workflow.Workflow, input: Record<string, Workflow.Json> = {}) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const { runId } = yield* runs.start(wf, input)
    const status = yield* runs.wait(runId)
    const snapshot = yield* store.snapshot(runId)
    return { runId, status, snapshot }
  })

/** Lets forked fibers run until they block. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

/** Moves the test clock forward in steps, letting fibers woken at each step run. */
const advance = (ms: number, step = 100) =>
  Effect.gen(function*() {
    for (let t = 0; t < ms; t += step) {
      yield* TestClock.adjust(step)
      yield* settle
    }
  })

const branching = workflow(
  [
    { id: "start", type: "trigger" },
    { id: "check", type: "condition", params: { left: { $ref: "input.n" }, op: "gt", right: 10 } },
    { id: "big", type: "value", params: { value: "big" } },
    { id: "small", type: "value", params: { value: "small" } },
    { id: "smaller", type: "value", params: { value: { $ref: "blocks.small.output" } } },
    { id: "join", type: "response", params: { value: { big: { $ref: "blocks.big.output" }, small: { $ref: "blocks.smaller.output" } } } }
  ],
  [
    edge("start", "check"),
    edge("check", "big", "true"),
    edge("check", "small", "false"),
    edge("small", "smaller"),
    edge("big", "join"),
    edge("smaller", "join")
  ],
  { inputs: { n: { type: "number" } } }
)

describe("Engine", () => {
  it.effect("runs a trigger → template → response chain", () =>
    Effect.gen(function*() {
      const wf = workflow(
        [
          { id: "start", type: "trigger" },
          { id: "greet", type: "template", params: { template: "Hi {{name}}", values: { name: { $ref: "input.name" } } } },
          { id: "out", type: "response", params: { value: { $ref: "blocks.greet.output" } } }
        ],
        [edge("start", "greet"), edge("greet", "out")],
        { inputs: { name: { type: "string" } } }
      )
      const { runId, snapshot, status } = yield* runToEnd(wf, { name: "Ada" })
      assert.strictEqual(status, "completed")
      assert.strictEqual(snapshot.status, "completed")
      assert.strictEqual(snapshot.runId, runId)
      assert.strictEqual(snapshot.nodes["out"]?.output, "Hi Ada")
      assert.deepStrictEqual(snapshot.nodes["greet"]?.inputs, { template: "Hi {{name}}", values: { name: "Ada" } })
      assert.deepStrictEqual(snapshot.nodes["start"]?.output, { name: "Ada" })
      for (const record of Object.values(snapshot.nodes)) {
        assert.strictEqual(record.attempt, 1)
        assert.isDefined(record.fingerprints.inputs)
        assert.isDefined(record.fingerprints.output)
      }
    }).pipe(Effect.provide(layer())))

  it.effect("a condition takes only the edges of its decision; untaken branches are skipped recursively", () =>
    Effect.gen(function*() {
      const { snapshot, status } = yield* runToEnd(branching, { n: 42 })
      assert.strictEqual(status, "completed")
      assert.strictEqual(snapshot.nodes["check"]?.decision, "true")
      assert.strictEqual(snapshot.nodes["check"]?.output, true)
      assert.strictEqual(snapshot.nodes["big"]?.status, "completed")
      assert.strictEqual(snapshot.nodes["small"]?.status, "skipped")
      assert.strictEqual(snapshot.nodes["smaller"]?.status, "skipped")
      assert.strictEqual(snapshot.nodes["smaller"]?.attempt, 0)
      // The join waited only for its live branch, and the skipped branch's output reads null.
      assert.deepStrictEqual(snapshot.nodes["join"]?.output, { big: "big", small: null })
    }).pipe(Effect.provide(layer())))

  it.effect("the other decision takes the other branch", () =>
    Effect.gen(function*() {
      const { snapshot } = yield* runToEnd(branching, { n: 1 })
      assert.strictEqual(snapshot.nodes["check"]?.decision, "false")
      assert.strictEqual(snapshot.nodes["big"]?.status, "skipped")
      assert.deepStrictEqual(snapshot.nodes["join"]?.output, { big: null, small: "small" })
    }).pipe(Effect.provide(layer())))

  it.effect("a router activates its chosen route and unhandled edges; a node with no live edge is skipped", () =>
    Effect.gen(function*() {
      const wf = workflow(
        [
          { id: "start", type: "trigger" },
          {
            id: "route",
            type: "router",
            params: { value: { $ref: "input.kind" }, routes: [{ handle: "a", equals: "A" }, { handle: "b", equals: "B" }], default: "other" }
          },
          { id: "a", type: "value", params: { value: 1 } },
          { id: "b", type: "value", params: { value: 2 } },
          { id: "other", type: "value", params: { value: 3 } },
          { id: "always", type: "value", params: { value: 4 } },
          { id: "afterB", type: "value", params: { value: 5 } }
        ],
        [
          edge("start", "route"),
          edge("route", "a", "a"),
          edge("route", "b", "b"),
          edge("route", "other", "other"),
          edge("route", "always"),
          edge("b", "afterB")
        ],
        { inputs: { kind: { type: "string" } } }
      )
      const { snapshot } = yield* runToEnd(wf, { kind: "B" })
      assert.strictEqual(snapshot.nodes["route"]?.decision, "b")
      assert.strictEqual(snapshot.nodes["route"]?.output, "b")
      const statuses = Object.fromEntries(Object.entries(snapshot.nodes).map(([id, r]) => [id, r.status]))
      assert.deepStrictEqual(statuses, {
        start: "completed",
        route: "completed",
        a: "skipped",
        b: "completed",
        other: "skipped",
        always: "completed",
        afterB: "completed"
      })
      const fallback = yield* runToEnd(wf, { kind: "Z" })
      assert.strictEqual(fallback.snapshot.nodes["other"]?.status, "completed")
      assert.strictEqual(fallback.snapshot.nodes["afterB"]?.status, "skipped")
    }).pipe(Effect.provide(layer())))

  it.effect("a join of a live and a skipped branch runs once the live one completes", () =>
    Effect.gen(function*() {
      const wf = workflow(
        [
          { id: "c", type: "condition", params: { left: 1, op: "eq", right: 1 } },
          { id: "slow", type: "slow" },
          { id: "dead", type: "value", params: { value: 0 } },
          { id: "join", type: "value", params: { value: { $ref: "blocks.slow.output" } } }
        ],
        [edge("c", "slow", "true"), edge("c", "dead", "false"), edge("slow", "join"), edge("dead", "join")]
      )
      const { snapshot } = yield* runToEnd(wf)
      assert.strictEqual(snapshot.nodes["dead"]?.status, "skipped")
      assert.strictEqual(snapshot.nodes["join"]?.output, "slow done")
      assert.isAtLeast(snapshot.nodes["join"]!.startedAt!, snapshot.nodes["slow"]!.finishedAt!)
    }).pipe(Effect.provide(layer({ slow: () => Effect.as(Effect.sleep(0), "slow done") }))))

  it.effect("a node failure fails the run, skips what depends only on it, and lets other branches finish", () =>
    Effect.gen(function*() {
      const wf = workflow(
        [
          { id: "boom", type: "fail", params: { message: "no" } },
          { id: "after", type: "value", params: { value: 1 } },
          { id: "other", type: "value", params: { value: 2 } }
        ],
        [edge("boom", "after")]
      )
      const { snapshot, status } = yield* runToEnd(wf)
      assert.strictEqual(status, "failed")
      assert.strictEqual(snapshot.status, "failed")
      assert.deepStrictEqual(snapshot.nodes["boom"]?.error, { message: "no", retryable: false })
      assert.strictEqual(snapshot.nodes["after"]?.status, "skipped")
      assert.strictEqual(snapshot.nodes["other"]?.status, "completed")
      assert.strictEqual(snapshot.diagnostics.finalization, "failed")
      assert.deepStrictEqual(snapshot.diagnostics.messages, ["boom failed: no"])
    }).pipe(Effect.provide(layer())))

  it.effect("an \"error\" edge handles a failure: it is live only when its source failed", () =>
    Effect.gen(function*() {
      const wf = workflow(
        [
          { id: "boom", type: "fail", params: { message: "no" } },
          { id: "recover", type: "value", params: { value: "recovered" } },
          { id: "next", type: "value", params: { value: 1 } },
          { id: "fine", type: "value", params: { value: 2 } },
          { id: "onFineError", type: "value", params: { value: 3 } }
        ],
        [edge("boom", "recover", "error"), edge("boom", "next"), edge("fine", "onFineError", "error")]
      )
      const { snapshot, status } = yield* runToEnd(wf)
      assert.strictEqual(status, "completed")
      assert.strictEqual(snapshot.nodes["boom"]?.status, "failed")
      assert.strictEqual(snapshot.nodes["recover"]?.output, "recovered")
      assert.strictEqual(snapshot.nodes["next"]?.status, "skipped")
      assert.strictEqual(snapshot.nodes["onFineError"]?.status, "skipped")
    }).pipe(Effect.provide(layer())))

  it.effect("an unresolvable reference fails the node without calling its handler", () =>
    Effect.gen(function*() {
      let calls = 0
      const wf = workflow(
        [
          { id: "c", type: "condition", params: { left: 1, op: "eq", right: 2 } },
          { id: "dead", type: "value", params: { value: { x: 1 } } },
          { id: "reader", type: "count", params: { x: { $ref: "blocks.dead.output.x" } } }
        ],
        [edge("c", "dead", "true"), edge("c", "reader"), edge("dead", "reader")]
      )
      const { snapshot, status } = yield* runToEnd(wf).pipe(
        Effect.provide(layer({ count: () => Effect.sync(() => ++calls) }))
      )
      assert.strictEqual(status, "failed")
      assert.strictEqual(calls, 0)
      assert.include(snapshot.nodes["reader"]?.error?.message ?? "", "blocks.dead.output.x")
      // Nothing resolved, so nothing is recorded as its inputs: the same record on both schedulers.
      assert.strictEqual(snapshot.nodes["reader"]?.inputs, undefined)
      assert.strictEqual(snapshot.nodes["reader"]?.fingerprints.inputs, undefined)
      const contained = yield* runToEnd({
        ...wf,
        parallels: [{ id: "p", kind: "count", count: 1, body: ["inner"] }],
        blocks: [...wf.blocks, { id: "inner", type: "count" }]
      }).pipe(Effect.provide(layer({ count: () => Effect.sync(() => ++calls) })))
      assert.strictEqual(contained.status, "failed")
      assert.deepStrictEqual(contained.snapshot.nodes["reader"], snapshot.nodes["reader"])
    }))

  it.effect("handlers see resolved inputs, raw params, ids and the attempt", () =>
    Effect.gen(function*() {
      const seen: Array<Handler.HandlerContext> = []
      const wf = workflow(
        [{ id: "v", type: "value", params: { value: 7 } }, { id: "spy", type: "spy", params: { x: { $ref: "blocks.v.output" } } }],
        [edge("v", "spy")]
      )
      const { runId } = yield* runToEnd(wf).pipe(
        Effect.provide(layer({ spy: (ctx) => Effect.sync(() => seen.push(ctx)).pipe(Effect.as(null)) }))
      )
      assert.strictEqual(seen.length, 1)
      const ctx = seen[0]!
      assert.deepStrictEqual(ctx.inputs, { x: 7 })
      assert.deepStrictEqual(ctx.params, { x: { $ref: "blocks.v.output" } })
      assert.strictEqual(ctx.runId, runId)
      assert.strictEqual(ctx.node, "spy")
      assert.strictEqual(ctx.attempt, 1)
      assert.isUndefined(ctx.loop)
      assert.isFalse(ctx.signal.aborted)
    }))

  // A block without references that outputs null completes with fingerprints the engine makes once
  // per workflow value: the second run reads them back, and they must be the full set each time.
  it.effect("a completed record's fingerprints are its definition's, its inputs' and its output's, run after run", () =>
    Effect.gen(function*() {
      const blocks: ReadonlyArray<Workflow.Block> = [
        { id: "sink", type: "nothing", params: { k: 1 } },
        { id: "bare", type: "nothing" },
        { id: "v", type: "value", params: { value: 7 } },
        { id: "read", type: "nothing", params: { x: { $ref: "blocks.v.output" } } }
      ]
      const wf = workflow(blocks, [edge("v", "read")])
      for (let run = 0; run < 2; run++) {
        const { snapshot, status } = yield* runToEnd(wf)
        assert.strictEqual(status, "completed")
        for (const block of blocks) {
          const record = snapshot.nodes[block.id]!
          assert.deepStrictEqual(record.fingerprints, {
            definition: Fingerprint.ofBlock(block),
            inputs: Fingerprint.hash(record.inputs ?? null),
            output: Fingerprint.hash(record.output ?? null)
          }, `${block.id}, run ${run}`)
        }
      }
    }).pipe(Effect.provide(layer({ nothing: () => Effect.succeed(null) }))))

  it.effect("a handler defect fails its node with the defect's message", () =>
    Effect.gen(function*() {
      const wf = workflow([{ id: "bad", type: "bad" }], [])
      const { snapshot, status } = yield* runToEnd(wf).pipe(
        Effect.provide(layer({
          bad: () => {
            throw new Error("bug in handler")
          }
        }))
      )
      assert.strictEqual(status, "failed")
      assert.strictEqual(snapshot.nodes["bad"]?.error?.message, "bug in handler")
    }))
})

describe("Engine: what a handler does is its block's", () => {
  // The engine's own store faults stop an execution; a handler's defect is its block's failure,
  // whatever value it dies with — one shaped like a store's error too (a handler may use a store of
  // its own). Its retry follows a lease check, where the engine's store faults could arise.
  it.effect("a handler that dies with a StoreUnavailable on a retry fails its block, and the run fails", () =>
    Effect.gen(function*() {
      const wf = workflow([{ id: "own", type: "own", retry: { maxAttempts: 3, initialDelayMs: 1 } }], [])
      const own = new RunStore.StoreUnavailable({ reason: new RunStore.ConnectionLost({ message: "the handler's own database" }), operation: "own" })
      const running = yield* Effect.forkChild(runToEnd(wf).pipe(
        Effect.provide(layer({
          own: (ctx) => ctx.attempt === 1 ? Effect.fail(new BlockError.BlockError({ message: "try again" })) : Effect.die(own)
        }, { leaseMs: 60_000 }))
      ))
      yield* advance(1_000)
      const { snapshot, status } = yield* Fiber.join(running)
      assert.strictEqual(status, "failed")
      assert.strictEqual(snapshot.nodes["own"]?.status, "failed")
      assert.strictEqual(snapshot.nodes["own"]?.attempt, 2)
    }))
})

describe("Engine: a store failure before a block's retry", () => {
  // Before a retry the engine renews its lease (no journal write acknowledges a retry); a store
  // still unavailable once its own retries are spent stops the execution: it is no failure of the
  // block's to retry by the block's policy, nor to record. The process takes the run up again a
  // heartbeat later.
  it.effect("stops the execution at once: the renewal is not sent again as the block's next attempt, the block is not failed; taken up again, the run completes", () =>
    Effect.gen(function*() {
      let renewals = 0
      const down = { renewals: true }
      const unavailable = new RunStore.StoreUnavailable({ reason: new RunStore.SerializationFailure({ message: "injected" }), operation: "renew" })
      const failingRenewals = Layer.effect(
        RunStore.RunStore,
        Effect.map(RunStore.makeMemory, (store): RunStore.Port => ({
          ...store,
          renew: (lease, terms) => Effect.suspend(() => down.renewals ? Effect.fail((renewals++, unavailable)) : store.renew(lease, terms))
        }))
      )
      const wf = workflow([{ id: "f", type: "flaky", retry: { maxAttempts: 3, initialDelayMs: 1 } }], [])
      const flaky: Handler.Handler = (ctx) => ctx.attempt === 1 ? Effect.fail(new BlockError.BlockError({ message: "try again" })) : Effect.succeed(ctx.attempt)
      const program = Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const { runId } = yield* runs.start(wf)
        const waiting = yield* Effect.forkChild(runs.wait(runId))
        yield* advance(1_000)
        assert.strictEqual(renewals, 1)
        assert.strictEqual((yield* store.getRun(runId)).status, "running")
        assert.notStrictEqual((yield* store.snapshot(runId)).nodes["f"]?.status, "failed")
        // The store answers again: the process takes the run up again a heartbeat later.
        down.renewals = false
        yield* advance(30_000)
        assert.strictEqual(yield* Fiber.join(waiting), "completed")
        assert.strictEqual(renewals, 1)
      })
      yield* program.pipe(
        Effect.provide(Runs.layer({ leaseMs: 60_000 }).pipe(Layer.provideMerge(failingRenewals), Layer.provideMerge(Handler.layer({ flaky }))))
      )
    }))
})

describe("Engine retries", () => {
  const flaky = (failures: number, times: Array<number>, retryable = true): Handler.Handler => (ctx) =>
    Effect.gen(function*() {
      times.push(yield* Clock.currentTimeMillis)
      if (ctx.attempt <= failures) return yield* Effect.fail(new BlockError.BlockError({ message: `attempt ${ctx.attempt}`, retryable }))
      return ctx.attempt
    })

  const retrying = (retry: Workflow.RetryPolicy) => workflow([{ id: "f", type: "flaky", retry }], [])

  it.effect("retries with exponential backoff on the effect Clock", () => {
    const times: Array<number> = []
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const stream = yield* runs.subscribe
      const { runId } = yield* runs.start(retrying({ maxAttempts: 4, initialDelayMs: 1_000, backoffFactor: 3 }))
      yield* settle
      assert.deepStrictEqual(times, [0])
      yield* advance(900)
      assert.deepStrictEqual(times, [0])
      yield* advance(100)
      assert.deepStrictEqual(times, [0, 1_000])
      yield* advance(3_000)
      assert.deepStrictEqual(times, [0, 1_000, 4_000])
      assert.strictEqual(yield* runs.wait(runId), "completed")
      const record = (yield* store.snapshot(runId)).nodes["f"]!
      assert.strictEqual(record.attempt, 3)
      assert.strictEqual(record.output, 3)
      const events = yield* Stream.runCollect(stream.pipe(Stream.takeUntil((e: RunEvent.RunEvent) => e._tag === "RunFinished")))
      const starts = events.flatMap((e) => e._tag === "NodeStarted" ? [[e.attempt, e.at]] : [])
      assert.deepStrictEqual(starts, [[1, 0], [2, 1_000], [3, 4_000]])
    }).pipe(Effect.scoped, Effect.provide(layer({ flaky: flaky(2, times) })))
  })

  it.effect("caps each delay at maxDelayMs and stops after maxAttempts", () => {
    const times: Array<number> = []
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const { runId } = yield* runs.start(retrying({ maxAttempts: 3, initialDelayMs: 1_000, backoffFactor: 10, maxDelayMs: 1_500 }))
      yield* settle
      yield* advance(5_000)
      assert.deepStrictEqual(times, [0, 1_000, 2_500])
      assert.strictEqual(yield* runs.wait(runId), "failed")
      const record = (yield* store.snapshot(runId)).nodes["f"]!
      assert.strictEqual(record.attempt, 3)
      assert.deepStrictEqual(record.error, { message: "attempt 3", retryable: true })
    }).pipe(Effect.provide(layer({ flaky: flaky(10, times) })))
  })

  it.effect("does not retry a non-retryable error", () => {
    const times: Array<number> = []
    return Effect.gen(function*() {
      const { snapshot, status } = yield* runToEnd(retrying({ maxAttempts: 5, initialDelayMs: 10 }))
      assert.strictEqual(status, "failed")
      assert.deepStrictEqual(times, [0])
      assert.strictEqual(snapshot.nodes["f"]?.attempt, 1)
    }).pipe(Effect.provide(layer({ flaky: flaky(10, times, false) })))
  })
})

describe("Engine concurrency and cancellation", () => {
  const wide = (n: number, type: string) =>
    workflow(Array.from({ length: n }, (_, i) => ({ id: `n${i}`, type })), [])

  it.effect("never runs more handlers at once than the bound", () => {
    let active = 0
    let peak = 0
    const counting: Handler.Handler = () =>
      Effect.gen(function*() {
        active++
        peak = Math.max(peak, active)
        yield* Effect.sleep(10)
        active--
        return null
      })
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(wide(20, "counting"))
      yield* advance(100, 10)
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.strictEqual(peak, 3)
      assert.strictEqual(active, 0)
    }).pipe(Effect.provide(layer({ counting }, { concurrency: 3 })))
  })

  it.effect("cancellation interrupts running handlers, starts nothing more and ends cancelled", () => {
    let started = 0
    let interrupted = 0
    const signals: Array<AbortSignal> = []
    const hang: Handler.Handler = (ctx) => {
      started++
      signals.push(ctx.signal)
      return Effect.onInterrupt(Effect.never, () => Effect.sync(() => interrupted++))
    }
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const { runId } = yield* runs.start(wide(6, "hang"))
      yield* settle
      assert.strictEqual(started, 2)
      assert.deepStrictEqual(yield* runs.cancel(runId), { _tag: "Cancelled", status: "cancelled" })
      assert.strictEqual(interrupted, 2)
      assert.isTrue(signals.every((signal) => signal.aborted))
      yield* settle
      assert.strictEqual(started, 2)
      assert.strictEqual(yield* runs.wait(runId), "cancelled")
      const snapshot = yield* store.snapshot(runId)
      assert.strictEqual(snapshot.status, "cancelled")
      assert.strictEqual(snapshot.diagnostics.finalization, "cancelled")
      assert.strictEqual(Object.keys(snapshot.nodes).length, 2)
      const again = yield* Effect.flip(runs.cancel(runId))
      assert.strictEqual(again._tag, "IllegalTransition")
    }).pipe(Effect.provide(layer({ hang }, { concurrency: 2 })))
  })
})

describe("Engine events and diagnostics", () => {
  it.effect("publishes run and node events in order, ending with RunFinished", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const stream = yield* runs.subscribe
      const { runId } = yield* runs.start(branching, { n: 42 })
      const events = yield* Stream.runCollect(stream.pipe(Stream.takeUntil((e: RunEvent.RunEvent) => e._tag === "RunFinished")))
      const tags = events.map((e) => `${e._tag}${"node" in e ? ` ${e.node}` : ""}${e._tag === "StatusChanged" ? ` ${e.from}>${e.to}` : ""}`)
      assert.strictEqual(tags[0], "RunStarted")
      assert.strictEqual(tags[1], "StatusChanged pending>running")
      assert.deepStrictEqual(tags.slice(-2), ["StatusChanged running>completed", "RunFinished"])
      for (const node of ["start", "check", "big", "join"]) {
        assert.isBelow(tags.indexOf(`NodeStarted ${node}`), tags.indexOf(`NodeCompleted ${node}`))
      }
      assert.include(tags, "NodeSkipped small")
      assert.include(tags, "NodeSkipped smaller")
      assert.isTrue(events.every((e) => e.runId === runId))
      const completed = events.find((e) => e._tag === "NodeCompleted" && e.node === "check")
      assert.strictEqual(completed?._tag === "NodeCompleted" ? completed.decision : undefined, "true")
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.effect("a failing or stalled subscriber does not change the run's outcome", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      yield* runs.subscribe
      const failing = yield* runs.subscribe
      yield* Effect.forkChild(Stream.runForEach(failing, () => Effect.fail("subscriber bug")))
      const { snapshot, status } = yield* runToEnd(branching, { n: 42 })
      assert.strictEqual(status, "completed")
      assert.strictEqual(snapshot.nodes["join"]?.status, "completed")
    }).pipe(Effect.scoped, Effect.provide(layer({}, { eventBuffer: 2 }))))

  it.effect("stores diagnostics before the run is finalized", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(5_000)
      const { snapshot } = yield* runToEnd(branching, { n: 1 })
      assert.strictEqual(snapshot.diagnostics.finalization, "completed")
      assert.strictEqual(snapshot.diagnostics.lastStarted?.node, "join")
      assert.deepStrictEqual(snapshot.diagnostics.lastCompleted, { node: "join", at: 5_000 })
    }).pipe(Effect.provide(layer())))
})

describe("Engine refusals and tracing", () => {
  it.effect("a workflow with a container is executed, not refused", () =>
    Effect.gen(function*() {
      const wf = workflow([{ id: "a", type: "value", params: { value: { $ref: "loop.index" } } }], [], {
        loops: [{ id: "each", kind: "count", count: 2, body: ["a"] }]
      })
      const { snapshot, status } = yield* runToEnd(wf)
      assert.strictEqual(status, "completed")
      assert.deepStrictEqual(snapshot.nodes["each#end"]?.output, [{ a: 0 }, { a: 1 }])
    }).pipe(Effect.provide(layer())))

  it.effect("a block type without handler is refused before anything is written", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const error = yield* Effect.flip(runs.start(workflow([{ id: "x", type: "mystery" }], [])))
      assert.strictEqual(error._tag, "UnknownBlockType")
      if (error._tag === "UnknownBlockType") assert.deepStrictEqual(error.path, ["blocks", 0, "type"])
      assert.strictEqual((yield* Effect.flip(store.getRun("run-1")))._tag, "RunNotFound")
    }).pipe(Effect.provide(layer())))

  const recordingTracer = (names: Array<string>, spans: Array<Tracer.NativeSpan> = []) =>
    Tracer.make({
      span(options) {
        names.push(options.name)
        const span = new Tracer.NativeSpan(options)
        spans.push(span)
        return span
      }
    })

  it.effect("creates a span per node only when tracing is enabled", () =>
    Effect.gen(function*() {
      const wf = workflow([{ id: "a", type: "value", params: { value: 1 } }, { id: "b", type: "value", params: { value: 2 } }], [edge("a", "b")])
      const off: Array<string> = []
      yield* runToEnd(wf).pipe(Effect.provide(layer()), Effect.withTracer(recordingTracer(off)))
      assert.deepStrictEqual(off.filter((name) => name.startsWith("ripple")), [])
      const on: Array<string> = []
      const spans: Array<Tracer.NativeSpan> = []
      const { runId } = yield* runToEnd(wf).pipe(Effect.provide(layer({}, { tracing: true })), Effect.withTracer(recordingTracer(on, spans)))
      assert.deepStrictEqual(on.filter((name) => name.startsWith("ripple")), ["ripple.node a", "ripple.node b"])
      const b = spans.find((span) => span.name === "ripple.node b")!
      assert.deepStrictEqual(Object.fromEntries(b.attributes), { "ripple.run_id": runId, "ripple.node_id": "b", "ripple.block_type": "value" })
    }))
})

describe("Engine plans", () => {
  it.effect("executes a resume plan: completed nodes are reused, the failed one and its downstream re-run", () => {
    let failing = true
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const wf = workflow(
        [
          { id: "a", type: "value", params: { value: 1 } },
          { id: "b", type: "flaky" },
          { id: "c", type: "value", params: { value: { $ref: "blocks.b.output" } } }
        ],
        [edge("a", "b"), edge("b", "c")]
      )
      const first = yield* runs.start(wf)
      assert.strictEqual(yield* runs.wait(first.runId), "failed")
      const snapshot = yield* store.snapshot(first.runId)
      failing = false
      const plan = Plan.resume(wf, snapshot)
      assert.isTrue(Result.isSuccess(plan))
      if (Result.isFailure(plan)) return
      const version = yield* store.saveWorkflow(wf)
      const run = yield* store.createRun({ version, mode: "resume", sourceRun: first.runId, input: {}, at: 0 })
      const status = yield* Engine.execute({
        runId: run.id,
        mode: "resume",
        plan: plan.success,
        input: {},
        sourceRun: first.runId,
        publish: () => {}
      })
      assert.strictEqual(status, "completed")
      const resumed = yield* store.snapshot(run.id)
      assert.strictEqual(resumed.nodes["a"]?.reusedFrom, first.runId)
      assert.strictEqual(resumed.nodes["b"]?.output, "recovered")
      assert.strictEqual(resumed.nodes["c"]?.output, "recovered")
      assert.isUndefined(resumed.nodes["c"]?.reusedFrom)
    }).pipe(Effect.provide(layer({
      flaky: () => failing ? Effect.fail(BlockError.permanent("down")) : Effect.succeed("recovered")
    })))
  })
})

/**
 * The memory store with its journal calls going through `around`, including those of executions,
 * which write through their lease's fenced store.
 */
const journalling = (around: (journal: RunStore.Port["journal"]) => RunStore.Port["journal"]) =>
  Layer.effect(
    RunStore.RunStore,
    Effect.map(RunStore.makeMemory, (memory) => {
      const wrapped = (store: RunStore.Port): RunStore.Port => ({
        ...store,
        fenced: (lease) => wrapped(store.fenced(lease)),
        journal: around((runId, entries) => store.journal(runId, entries))
      })
      return RunStore.RunStore.of(wrapped(memory))
    })
  )

describe("Engine journal batching", () => {
  it.effect("writes the journal once per wave, not once per node", () => {
    const calls: Array<number> = []
    const counting = journalling((journal) => (runId, entries) => {
      calls.push(entries.length)
      return journal(runId, entries)
    })
    const blocks: Array<Workflow.Block> = [{ id: "start", type: "trigger" }, { id: "join", type: "value", params: { value: 0 } }]
    const edges: Array<Workflow.Edge> = []
    for (let i = 0; i < 100; i++) {
      blocks.push({ id: `b${i}`, type: "value", params: { value: i } })
      edges.push(edge("start", `b${i}`), edge(`b${i}`, "join"))
    }
    return Effect.gen(function*() {
      const { snapshot, status } = yield* runToEnd(workflow(blocks, edges))
      assert.strictEqual(status, "completed")
      assert.strictEqual(Object.keys(snapshot.nodes).length, 102)
      // trigger start | trigger done + 100 starts | 100 done + join start | join done
      assert.deepStrictEqual(calls, [1, 101, 101, 1])
    }).pipe(Effect.provide(Runs.layer({ concurrency: 100 }).pipe(Layer.provideMerge(counting), Layer.provideMerge(Handler.layerBuiltins))))
  })
})

describe("Engine store failures", () => {
  // In a loop, the failing write is one of `quick`'s completion that no start waits for: the body
  // instance is waiting for `hang` when it fails.
  for (const [where, extra] of [["at the top level", {}], ["in a loop", { loops: [{ id: "l", kind: "count" as const, count: 1, body: ["hang", "quick"] }] }]] as const) {
    it.effect(`a failing journal write fails the execution and interrupts the handlers still running (${where})`, () => {
      let interrupted = 0
      let journalCalls = 0
      const flaky = journalling((journal) => (runId, entries) =>
        ++journalCalls === 2 ? Effect.fail(new RunStore.RunNotFound({ runId })) : journal(runId, entries)
      )
      return Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(workflow([{ id: "hang", type: "hang" }, { id: "quick", type: "value", params: { value: 1 } }], [], extra))
        const error = yield* Effect.flip(runs.wait(runId))
        assert.strictEqual(error._tag, "RunNotFound")
        assert.strictEqual(interrupted, 1)
      }).pipe(Effect.provide(Runs.layer().pipe(
        Layer.provideMerge(flaky),
        Layer.provideMerge(Handler.layer({ hang: () => Effect.onInterrupt(Effect.never, () => Effect.sync(() => interrupted++)) }))
      )))
    })
  }
})
