/**
 * Options no execution can work with are refused when `Runs.layer` is built (and by `Engine.execute`,
 * the low-level interpreter), with an
 * `InvalidOption` naming the option, the value and what it must be, before any run starts: a `NaN`
 * concurrency (no handler ever got a permit), a heartbeat no shorter than the lease (the lease
 * expired between renewals and the run stopped with `LeaseLost` in its only process), durations
 * and counts that are zero, negative, infinite or not numbers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Plan, type Workflow } from "@ripple/core"
import { Builtins, Engine, Handler, Options, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"

const workflow: Workflow.Workflow = { id: "options", blocks: [{ id: "v", type: "value", params: { value: 1 } }], edges: [] }

const build = (options: Runs.Options) =>
  Effect.scoped(Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const { runId } = yield* runs.start(workflow)
    return yield* runs.wait(runId)
  }).pipe(Effect.provide(Runs.layer(options).pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, Handler.layer(Builtins.handlers)))))))

const refusals: ReadonlyArray<readonly [options: Runs.Options, option: string, expected: string]> = [
  [{ concurrency: Number.NaN }, "concurrency", "whole number of at least 1"],
  [{ concurrency: 0 }, "concurrency", "whole number of at least 1"],
  [{ concurrency: 1.5 }, "concurrency", "whole number of at least 1"],
  [{ concurrency: "4" as unknown as number }, "concurrency", "whole number of at least 1"],
  [{ limits: { maxNodes: 0 } }, "limits.maxNodes", "whole number of at least 1"],
  // An undefined limit overrode the default and turned the cap off; a misspelt one was ignored.
  [{ limits: { maxNodes: undefined } as unknown as Partial<Workflow.Limits> }, "limits.maxNodes", "whole number of at least 1"],
  [{ limits: { maxNode: 5 } as unknown as Partial<Workflow.Limits> }, "limits.maxNode", "a limit named one of"],
  [{ eventBuffer: -1 }, "eventBuffer", "whole number of at least 1"],
  [{ leaseMs: 0 }, "leaseMs", "greater than 0"],
  [{ leaseMs: Number.POSITIVE_INFINITY }, "leaseMs", "greater than 0"],
  [{ heartbeatMs: -5 }, "heartbeatMs", "greater than 0"],
  [{ cancelPollMs: Number.NaN }, "cancelPollMs", "greater than 0"],
  [{ leaseMs: 1_000, heartbeatMs: 1_000 }, "heartbeatMs", "less than leaseMs (1000)"],
  [{ heartbeatMs: 60_000 }, "heartbeatMs", "less than leaseMs (30000)"],
  [{ marginMs: -1 }, "marginMs", "at least 0"],
  [{ marginMs: Number.NaN }, "marginMs", "at least 0"],
  // A third of the lease is the default heartbeat: the deadline would come before the first renewal.
  [{ leaseMs: 900, marginMs: 600 }, "marginMs", "less than leaseMs less heartbeatMs (600)"],
  [{ leaseMs: 1_000, heartbeatMs: 900, marginMs: 100 }, "marginMs", "less than leaseMs less heartbeatMs (100)"]
]

describe("Runs options", () => {
  it.effect("an option out of range is refused when the layer is built, naming it, its value and its range", () =>
    Effect.gen(function*() {
      for (const [options, option, expected] of refusals) {
        const refused = yield* Effect.flip(build(options))
        assert.instanceOf(refused, Options.InvalidOption, JSON.stringify(options))
        const invalid = refused as Options.InvalidOption
        assert.strictEqual(invalid.option, option)
        assert.include(invalid.message, `option ${option} is `)
        assert.include(invalid.message, expected)
      }
      assert.strictEqual(
        (yield* Effect.flip(build({ concurrency: "4" as unknown as number }))).message,
        `option concurrency is "4": expected a whole number of at least 1`
      )
    }))

  it.effect("options in range run as before, the defaults and a heartbeat just under the lease included", () =>
    Effect.gen(function*() {
      for (const options of [{}, { concurrency: 1, leaseMs: 1_000, heartbeatMs: 999, eventBuffer: 1, cancelPollMs: 1 }, { limits: { maxNodes: 1 } }, {
        leaseMs: 1_000,
        heartbeatMs: 900,
        marginMs: 99
      }, { marginMs: 0 }]) {
        assert.strictEqual(yield* build(options), "completed", JSON.stringify(options))
      }
    }))

  it.effect("Engine.execute refuses an engine option out of range before anything is written; in range it runs", () =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const plan = Plan.full(workflow)
      assert.isTrue(Result.isSuccess(plan))
      if (Result.isFailure(plan)) return
      const execute = (options: Engine.Options) =>
        Effect.gen(function*() {
          const run = yield* store.createRun({ version: yield* store.saveWorkflow(workflow), mode: "full", input: {}, at: 0 })
          const status = yield* Effect.result(Engine.execute({ runId: run.id, mode: "full", plan: plan.success, input: {}, sourceRun: undefined, publish: () => {} }, options))
          return { status, after: yield* store.getRun(run.id), snapshot: yield* store.snapshot(run.id) }
        })
      const engineRefusals: ReadonlyArray<readonly [Engine.Options, string]> = [
        [{ concurrency: Number.NaN }, "concurrency"],
        [{ concurrency: 0 }, "concurrency"],
        [{ limits: { maxIterations: -1 } }, "limits.maxIterations"],
        [{ limits: { maxIterations: undefined } as unknown as Partial<Workflow.Limits> }, "limits.maxIterations"]
      ]
      for (const [options, option] of engineRefusals) {
        const { after, snapshot, status } = yield* execute(options)
        assert.isTrue(Result.isFailure(status), JSON.stringify(options))
        if (Result.isSuccess(status)) return
        assert.instanceOf(status.failure, Options.InvalidOption)
        assert.strictEqual((status.failure as Options.InvalidOption).option, option)
        // Nothing written: still pending, no node journaled.
        assert.strictEqual(after.status, "pending")
        assert.deepStrictEqual(Object.keys(snapshot.nodes), [])
      }
      const { status } = yield* execute({ concurrency: 1 })
      assert.deepStrictEqual(status, Result.succeed("completed"))
    }).pipe(Effect.provide(Layer.merge(RunStore.layerMemory, Handler.layer(Builtins.handlers)))))

  it.effect("Runs.admit (what Worker.submit checks) refuses a limit that is no cap with InvalidOption", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.flip(Runs.admit(workflow, {}, { limits: { maxNodes: Number.NaN } }))
      assert.instanceOf(refused, Options.InvalidOption)
      assert.strictEqual(refused.message, "option limits.maxNodes is NaN: expected a whole number of at least 1")
      assert.strictEqual((yield* Runs.admit(workflow, {}, { limits: { maxNodes: 1 } })).workflow.id, workflow.id)
    }))
})
