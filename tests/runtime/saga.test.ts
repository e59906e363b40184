import { assert, describe, it } from "@effect/vitest"
import { Plan, type Workflow } from "@ripple/core"
import { BlockError, Engine, Handler, Ripple, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { crashable } from "../helpers/crashable.ts"

type Json = Workflow.Json

/** What the handlers saw: completions and compensations, in call order. */
interface Trace {
  readonly completed: Array<string>
  readonly compensated: Array<string>
}

const trace = (): Trace => ({ completed: [], compensated: [] })

/** `step` completes with its node id; `boom` fails permanently; `step` compensates by recording its output. */
const handlersOf = (t: Trace, crash?: { readonly at: number; count: number; readonly flag: { crashed: boolean } }) => ({
  handlers: {
    step: (ctx: Handler.HandlerContext) => Effect.sync(() => {
      t.completed.push(ctx.node)
      return ctx.node
    }),
    boom: () => Effect.fail(BlockError.permanent("boom"))
  } satisfies Record<string, Handler.Handler>,
  compensate: {
    step: (output: Json) =>
      Effect.suspend(() => {
        if (crash !== undefined && ++crash.count === crash.at) {
          crash.flag.crashed = true
          return Effect.die("process crashed")
        }
        t.compensated.push(output as string)
        return Effect.void
      })
  } satisfies Record<string, Handler.Compensation>
})

const runsOver = (store: RunStore.RunStore["Service"], t: Trace, crash?: Parameters<typeof handlersOf>[1]) => {
  const { compensate, handlers } = handlersOf(t, crash)
  return Runs.layer({ concurrency: 1 }).pipe(
    Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
    Layer.provideMerge(Handler.layer(handlers, { compensate }))
  )
}


/** A random DAG of `step` blocks (edges only forward) with one `boom` block. */
const arbitraryDag = fc.integer({ min: 1, max: 7 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    failAt: fc.nat({ max: n }),
    edges: fc.array(fc.tuple(fc.nat({ max: n }), fc.nat({ max: n })), { maxLength: 12 })
  })
).map(({ edges, failAt, n }): Workflow.Workflow => {
  const ids = Array.from({ length: n + 1 }, (_, i) => `s${i}`)
  const unique = new Map<string, Workflow.Edge>()
  for (const [a, b] of edges) if (a < b) unique.set(`${a}-${b}`, { source: ids[a]!, target: ids[b]! })
  return {
    id: "saga",
    blocks: ids.map((id, i) => ({ id, type: i === failAt ? "boom" : "step" })),
    edges: [...unique.values()]
  }
})

const chain = (types: ReadonlyArray<string>): Workflow.Workflow => ({
  id: "chain",
  blocks: types.map((type, i) => ({ id: `s${i}`, type })),
  edges: types.slice(1).map((_, i) => ({ source: `s${i}`, target: `s${i + 1}` }))
})

const runToEnd = (workflow: Workflow.Workflow) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const { runId } = yield* runs.start(workflow)
    const status = yield* runs.wait(runId)
    return { runId, status, info: yield* runs.status(runId) }
  })

describe("Saga compensation", () => {
  it.effect("a failed run compensates its completed steps in reverse completion order and reports it", () => {
    const t = trace()
    return Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const { info, status } = yield* runToEnd(chain(["step", "step", "step", "boom", "step"])).pipe(Effect.provide(runsOver(store, t)))
      assert.strictEqual(status, "failed")
      assert.deepStrictEqual(t.completed, ["s0", "s1", "s2"])
      assert.deepStrictEqual(t.compensated, ["s2", "s1", "s0"])
      assert.deepStrictEqual(info.compensations.map((c) => [c.node, c.status]), [["s2", "completed"], ["s1", "completed"], ["s0", "completed"]])
      assert.includeMembers([...info.diagnostics.messages], ["compensated s2", "compensated s1", "compensated s0"])
      assert.strictEqual(info.diagnostics.finalization, "failed")
    })
  })

  it.effect("a completed run compensates nothing; a failing compensation is reported and the others still run", () => {
    const t = trace()
    return Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const ok = yield* runToEnd(chain(["step", "step"])).pipe(Effect.provide(runsOver(store, t)))
      assert.strictEqual(ok.status, "completed")
      assert.deepStrictEqual(ok.info.compensations, [])
      assert.deepStrictEqual(t.compensated, [])
      const layer = Runs.layer().pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer(handlersOf(t).handlers, {
          compensate: {
            step: (output) =>
              output === "s1" ? Effect.fail(BlockError.permanent("refund refused")) : Effect.sync(() => t.compensated.push(output as string))
          }
        }))
      )
      const failed = yield* runToEnd(chain(["step", "step", "step", "boom"])).pipe(Effect.provide(layer))
      assert.deepStrictEqual(t.compensated, ["s2", "s0"])
      assert.deepStrictEqual(failed.info.compensations.map((c) => [c.node, c.status, c.error]), [
        ["s2", "completed", undefined],
        ["s1", "failed", "refund refused"],
        ["s0", "completed", undefined]
      ])
      assert.include([...failed.info.diagnostics.messages], "compensation of s1 failed: refund refused")
    })
  })

  it.effect("a crash after the last compensation, before the run is marked failed: resuming ends it failed, runs nothing again; a deliberate resume retries", () => {
    const t = trace()
    return Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const flag = { crashed: false }
      // The process dies on the write that would mark the run failed.
      // Executions write through their lease's fenced store: that one dies too.
      const dyingOver = (base: RunStore.Port): RunStore.Port => ({
        ...crashable(base, flag),
        fenced: (lease) => dyingOver(base.fenced(lease)),
        finish: () =>
          Effect.suspend(() => {
            flag.crashed = true
            return Effect.die("process crashed")
          })
      })
      const dying = RunStore.RunStore.of(dyingOver(store))
      const workflow = chain(["step", "step", "boom"])
      const runId = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(workflow)
        yield* Effect.exit(runs.wait(runId))
        return runId
      }).pipe(Effect.provide(runsOver(dying, t)))
      assert.isTrue(flag.crashed)
      assert.strictEqual((yield* store.getRun(runId)).status, "running")
      assert.deepStrictEqual(t.compensated, ["s1", "s0"])
      const boomCalls = { n: 0 }
      const resumed = Runs.layer({ concurrency: 1 }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer({
          ...handlersOf(t).handlers,
          boom: () => Effect.sync(() => ++boomCalls.n)
        }, { compensate: handlersOf(t).compensate }))
      )
      const info = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        yield* runs.resume(runId)
        assert.strictEqual(yield* runs.wait(runId), "failed")
        return yield* runs.status(runId)
      }).pipe(Effect.provide(resumed))
      // Undone steps stay undone: the failed step is not retried behind the compensations' back.
      assert.strictEqual(boomCalls.n, 0)
      assert.deepStrictEqual(t.completed, ["s0", "s1"])
      assert.deepStrictEqual(t.compensated, ["s1", "s0"])
      assert.strictEqual(info.diagnostics.finalization, "failed")
      assert.include(info.diagnostics.messages.join("\n"), "s2 failed: boom")
      // Resuming the failed run on purpose retries its failed step (now succeeding).
      const retried = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        yield* runs.resume(runId)
        return yield* runs.wait(runId)
      }).pipe(Effect.provide(resumed))
      assert.strictEqual(retried, "completed")
      assert.strictEqual(boomCalls.n, 1)
    })
  })

  it.effect("run-from never compensates reused steps", () => {
    const t = trace()
    let failing = false
    return Effect.gen(function*() {
      const store = yield* RunStore.makeMemory
      const { compensate, handlers } = handlersOf(t)
      const layer = Runs.layer().pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer({
          ...handlers,
          flaky: (ctx) => failing ? Effect.fail(BlockError.permanent("down")) : handlers.step(ctx)
        }, { compensate }))
      )
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        // `flaky` is volatile, so the early cutoff does not reuse it after s2 re-runs unchanged.
        const base = chain(["step", "step", "step", "flaky"])
        const wf = { ...base, blocks: base.blocks.map((b) => b.type === "flaky" ? { ...b, volatile: true } : b) }
        const first = yield* runs.start(wf)
        assert.strictEqual(yield* runs.wait(first.runId), "completed")
        failing = true
        t.completed.length = 0
        const again = yield* runs.runFrom(wf, { target: "s2", run: first.runId })
        assert.strictEqual(yield* runs.wait(again.runId), "failed")
        assert.deepStrictEqual(t.completed, ["s2"])
        assert.deepStrictEqual(t.compensated, ["s2"])
        assert.deepStrictEqual((yield* runs.status(again.runId)).compensations.map((c) => c.node), ["s2"])
      }).pipe(Effect.provide(layer))
    })
  })

  it.effect("the builder's compensate runs with the step's decoded output", () => {
    const undone: Array<string> = []
    const built = Ripple.workflow("order")
      .step("reserve", { handler: () => Effect.succeed({ id: "r1" }), compensate: (output) => Effect.sync(() => undone.push(`release ${output.id}`)) })
      .step("charge", {
        needs: ["reserve"],
        handler: () => Effect.succeed(10),
        compensate: (amount) => Effect.sync(() => undone.push(`refund ${amount}`))
      })
      .step("ship", { needs: ["charge"], handler: () => Effect.fail(BlockError.permanent("no truck")) })
      .build()
    assert.isTrue(Result.isSuccess(built))
    if (Result.isFailure(built)) return Effect.void
    return Effect.gen(function*() {
      const { info, status } = yield* runToEnd(built.success.workflow)
      assert.strictEqual(status, "failed")
      assert.deepStrictEqual(undone, ["refund 10", "release r1"])
      assert.strictEqual(info.compensations.length, 2)
    }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(built.success.handlers))))
  })

  it.effect("property: for any failure point, compensation order is the reverse of completion order, each completed step once", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(arbitraryDag, async (workflow) => {
          const t = trace()
          const { info, status } = await Effect.runPromise(
            Effect.flatMap(RunStore.makeMemory, (store) => runToEnd(workflow).pipe(Effect.provide(runsOver(store, t))))
          )
          assert.strictEqual(status, "failed")
          assert.deepStrictEqual(t.compensated, [...t.completed].reverse())
          assert.deepStrictEqual(info.compensations.map((c) => c.node), [...t.completed].reverse())
        }),
        { numRuns: 100 }
      )
    ))

  it.effect("property: a crash during compensation, then resume, completes every compensation exactly once", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(arbitraryDag, fc.integer({ min: 1, max: 8 }), async (workflow, crashAt) => {
          const t = trace()
          const outcome = await Effect.runPromise(Effect.gen(function*() {
            const base = yield* RunStore.makeMemory
            const flag = { crashed: false }
            const crash = { at: crashAt, count: 0, flag }
            const runId = yield* Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const { runId } = yield* runs.start(workflow)
              yield* Effect.exit(runs.wait(runId))
              return runId
            }).pipe(Effect.provide(runsOver(crashable(base, flag), t, crash)))
            const crashed = flag.crashed
            const resumed = crashed
              ? yield* Effect.gen(function*() {
                const runs = yield* Runs.Runs
                assert.strictEqual((yield* runs.status(runId)).status, "running")
                yield* runs.resume(runId)
                return yield* runs.wait(runId)
              }).pipe(Effect.provide(runsOver(base, t)))
              : (yield* base.getRun(runId)).status
            return { resumed, crashed, info: yield* base.getRun(runId), log: yield* base.compensations(runId) }
          }))
          assert.strictEqual(outcome.resumed, "failed")
          assert.strictEqual(outcome.crashed, crashAt <= t.completed.length)
          assert.deepStrictEqual(t.compensated, [...t.completed].reverse())
          assert.deepStrictEqual(outcome.log.map((c) => [c.node, c.status]), [...t.completed].reverse().map((n) => [n, "completed"]))
          assert.strictEqual(outcome.info.diagnostics.finalization, "failed")
        }),
        { numRuns: 100 }
      )
    ))

  it.effect("an exit of the compensating process leaves the run running, not finished", () =>
    Effect.gen(function*() {
      const t = trace()
      const base = yield* RunStore.makeMemory
      const flag = { crashed: false }
      const exit = yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const { runId } = yield* runs.start(chain(["step", "step", "boom"]))
        return yield* Effect.exit(runs.wait(runId))
      }).pipe(Effect.provide(runsOver(crashable(base, flag), t, { at: 2, count: 0, flag })))
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(t.compensated, ["s1"])
      const log = yield* base.compensations("run-1")
      assert.deepStrictEqual(log.map((c) => [c.node, c.status]), [["s1", "completed"], ["s0", "pending"]])
    }))

  describe("each compensation starts only as a block would", () => {
    /**
     * Executes `workflow` directly with `control`; the first compensation calls `during` (a request
     * acknowledged, a lease found expired) before it completes.
     */
    const compensatingWith = (workflow: Workflow.Workflow, control: Engine.Control, during: () => void) =>
      Effect.gen(function*() {
        const t = trace()
        const { handlers } = handlersOf(t)
        const compensate: Record<string, Handler.Compensation> = {
          step: (output) =>
            Effect.sync(() => {
              if (t.compensated.length === 0) during()
              t.compensated.push(output as string)
            })
        }
        const store = yield* RunStore.makeMemory
        const version = yield* store.saveWorkflow(workflow)
        const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
        const plan = Result.getOrThrow(Plan.full(workflow))
        const exit = yield* Effect.exit(
          Engine.execute({ runId: run.id, mode: "full", plan, input: {}, sourceRun: undefined, publish: () => {}, control }).pipe(
            Effect.provideService(RunStore.RunStore, store),
            Effect.provide(Handler.layer(handlers, { compensate }))
          )
        )
        const log = yield* store.compensations(run.id)
        return { exit, t, log: log.map((c) => [c.node, c.status]), status: (yield* store.getRun(run.id)).status }
      })

    const inLoop = (workflow: Workflow.Workflow): Workflow.Workflow => ({
      ...workflow,
      loops: [{ id: "once", kind: "count", count: 1, body: workflow.blocks.map((b) => b.id) }]
    })

    for (const [name, workflow, first, second] of [
      ["at the top level", chain(["step", "step", "boom"]), "s1", "s0"],
      ["in a loop", inLoop(chain(["step", "step", "boom"])), "s1@0", "s0@0"]
    ] as const) {
      it.effect(`a cancel request acknowledged during compensation starts no further compensation (${name})`, () =>
        Effect.gen(function*() {
          const control: Engine.Control = { pauseRequested: false }
          const { log, status, t } = yield* compensatingWith(workflow, control, () => {
            control.cancelRequested = true
          })
          assert.deepStrictEqual(t.compensated, [first])
          assert.deepStrictEqual(log, [[first, "completed"], [second, "pending"]])
          assert.strictEqual(status, "cancelled")
        }))
    }

    it.effect("a lease lost during compensation starts no further compensation", () =>
      Effect.gen(function*() {
        // Held until the first compensation runs; every compensation asks the store first.
        const lease = { lost: false }
        const control: Engine.Control = {
          pauseRequested: false,
          lease: { expiresAt: Number.POSITIVE_INFINITY, confirm: Effect.suspend(() => lease.lost ? Effect.die(new Error("lease lost")) : Effect.void) }
        }
        const { exit, log, t } = yield* compensatingWith(chain(["step", "step", "boom"]), control, () => {
          lease.lost = true
        })
        assert.isTrue(Exit.isFailure(exit))
        assert.deepStrictEqual(t.compensated, ["s1"])
        assert.deepStrictEqual(log, [["s1", "completed"], ["s0", "pending"]])
      }))

    // After a lost lease the test's store, unfenced, still takes the compensation's failure: a fenced one would refuse it.
    for (const [name, lose, log, status] of [
      ["a cancel request", (control: Engine.Control) => (control.cancelRequested = true), "pending", "cancelled"],
      ["a lost lease", (control: Engine.Control) => (control.lease = { expiresAt: Number.POSITIVE_INFINITY, confirm: Effect.die(new Error("lease lost")) }), "failed", "failed"]
    ] as const) {
      it.live(`${name} while a compensation waits out its retry backoff starts no retry`, () =>
        Effect.gen(function*() {
          // `s0`'s compensation fails (retryably) once it learns of the request; its block retries it.
          const workflow: Workflow.Workflow = {
            id: "retried-compensation",
            blocks: [{ id: "s0", type: "step", retry: { maxAttempts: 3, initialDelayMs: 1 } }, { id: "s1", type: "boom" }],
            edges: [{ source: "s0", target: "s1" }]
          }
          const control: Engine.Control = { pauseRequested: false }
          let attempts = 0
          const { handlers } = handlersOf(trace())
          const compensate: Record<string, Handler.Compensation> = {
            step: () =>
              Effect.suspend(() => {
                attempts++
                lose(control)
                return Effect.fail(new BlockError.BlockError({ message: "refund service busy" }))
              })
          }
          const store = yield* RunStore.makeMemory
          const run = yield* store.createRun({ version: yield* store.saveWorkflow(workflow), mode: "full", input: {}, at: 0 })
          yield* Effect.exit(
            Engine.execute({ runId: run.id, mode: "full", plan: Result.getOrThrow(Plan.full(workflow)), input: {}, sourceRun: undefined, publish: () => {}, control })
              .pipe(Effect.provideService(RunStore.RunStore, store), Effect.provide(Handler.layer(handlers, { compensate })))
          )
          assert.strictEqual(attempts, 1)
          assert.deepStrictEqual((yield* store.compensations(run.id)).map((c) => [c.node, c.status]), [["s0", log]])
          assert.strictEqual((yield* store.getRun(run.id)).status, status)
        }))
    }
  })
})
