import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Dag } from "@ripple/core"
import { Edits, Laws } from "@ripple/core/testing"
import { Handler, type RunEvent, Runs, RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import { longLived } from "../arbitraries/longLived.ts"
import { arbitraryWorkflow } from "../arbitraries/workflow.ts"
import { essence, modelHandlers } from "./model.ts"
import { quiet, request } from "../helpers/control.ts"
import { crashable } from "../helpers/crashable.ts"

const withContainers = arbitraryWorkflow({ containers: true, maxMembers: 5 })


/** Model handlers that count calls per node instance, and crash the process at call number `crashAt`. */
const instrumented = (
  calls: Map<string, number>,
  crash?: { readonly at: number; readonly flag: { crashed: boolean }; count: number }
) => {
  const out: Record<string, Handler.Handler> = {}
  for (const [type, inner] of Object.entries(modelHandlers())) {
    out[type] = (ctx) =>
      Effect.suspend(() => {
        if (crash !== undefined && ++crash.count === crash.at) {
          crash.flag.crashed = true
          return Effect.die("process crashed")
        }
        calls.set(ctx.node, (calls.get(ctx.node) ?? 0) + 1)
        return inner(ctx)
      })
  }
  return out
}

const runsOver = (store: RunStore.RunStore["Service"], handlers: Record<string, Handler.Handler>) =>
  Runs.layer({ concurrency: 3 }).pipe(
    Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
    Layer.provideMerge(Handler.layer(handlers))
  )

describe("Engine durability properties", () => {
  it.effect("a crash at a random node boundary, resumed from the store, yields the uninterrupted result and re-executes no completed node", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(withContainers, fc.integer({ min: 0, max: 12 }), async (json, crashAt) => {
          const workflow = json as unknown as Workflow.Workflow
          const input = Laws.inputFor(workflow)
          const outcome = await Effect.runPromise(Effect.gen(function*() {
            // The uninterrupted run.
            const reference = yield* Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const store = yield* RunStore.RunStore
              const { runId } = yield* runs.start(workflow, input)
              yield* runs.wait(runId)
              return yield* store.snapshot(runId)
            }).pipe(Effect.provide(runsOver(yield* RunStore.makeMemory, instrumented(new Map()))))
            // The crashing process, then a new one over the same store.
            const base = yield* RunStore.makeMemory
            // 0: the process dies before the run starts.
            const flag = { crashed: crashAt === 0 }
            const before = new Map<string, number>()
            const runId = yield* Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const { runId } = yield* runs.start(workflow, input)
              yield* Effect.exit(runs.wait(runId))
              return runId
            }).pipe(Effect.provide(runsOver(crashable(base, flag), instrumented(before, { at: crashAt, flag, count: 0 }))))
            const atCrash = yield* base.snapshot(runId)
            const after = new Map<string, number>()
            const final = yield* Effect.gen(function*() {
              const runs = yield* Runs.Runs
              if (atCrash.status === "running" || atCrash.status === "pending") {
                yield* runs.resume(runId)
                yield* runs.wait(runId)
              }
              return yield* base.snapshot(runId)
            }).pipe(Effect.provide(runsOver(base, instrumented(after))))
            return { reference, atCrash, final, after, crashed: flag.crashed }
          }))
          const { after, atCrash, crashed, final, reference } = outcome
          if (crashed) assert.include(["running", "pending"], atCrash.status)
          assert.strictEqual(final.status, reference.status)
          const keys = new Set([...Object.keys(final.nodes), ...Object.keys(reference.nodes)])
          for (const key of keys) assert.strictEqual(essence(final.nodes[key]), essence(reference.nodes[key]), key)
          for (const [key, record] of Object.entries(atCrash.nodes)) {
            if (record.status === "completed") assert.isUndefined(after.get(key), `${key} completed before the crash but ran again`)
          }
        }),
        { numRuns: 150 }
      )
    ))

  /** What a user may do to a long-lived run. */
  type Op =
    | { readonly _tag: "signal"; readonly name: string; readonly payload: number }
    | { readonly _tag: "approve" | "reject"; readonly pick: number }
    | { readonly _tag: "pause" | "unpause" | "cancel" | "resume" }

  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ _tag: fc.constant("signal" as const), name: fc.constantFrom("s0", "s1", "nobody"), payload: fc.nat({ max: 3 }) }),
    fc.record({ _tag: fc.constantFrom("approve" as const, "reject" as const), pick: fc.nat() }),
    fc.record({ _tag: fc.constantFrom("pause" as const, "unpause" as const, "cancel" as const, "resume" as const) })
  )

  it.effect("any interleaving of signal / approve / reject / pause / unpause / cancel / resume respects RunStatus", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(longLived, fc.array(op, { maxLength: 8 }), async (workflow, ops) => {
          await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
            const runs = yield* Runs.Runs
            const store = yield* RunStore.RunStore
            const events: Array<RunEvent.RunEvent> = []
            const stream = yield* runs.subscribe
            const collector = yield* Effect.forkChild(Stream.runForEach(stream, (event) => Effect.sync(() => events.push(event))))
            const { runId } = yield* runs.start(workflow, Laws.inputFor(workflow))
            yield* quiet([runs], runId)
            const statuses: Array<RunStatus.Status> = [(yield* store.getRun(runId)).status]
            for (const o of ops) {
              const snapshot = yield* store.snapshot(runId)
              const paused = Object.entries(snapshot.nodes).filter(([, r]) => r.status === "paused").map(([k]) => k).sort()
              const node = paused.length === 0 ? "none" : paused[("pick" in o ? o.pick : 0) % paused.length]!
              const result = yield* Effect.result(
                o._tag === "signal" ? request(runs, runId, "signal", o.name, o.payload) : request(runs, runId, o._tag, node, 1)
              )
              // The only refusal is RunStatus refusing the event in the current status.
              if (Result.isFailure(result)) assert.strictEqual(result.failure._tag, "IllegalTransition", o._tag)
              yield* quiet([runs], runId)
              const run = yield* store.getRun(runId)
              const before = statuses[statuses.length - 1]!
              if (RunStatus.terminal.includes(before)) assert.strictEqual(run.status, before)
              statuses.push(run.status)
            }
            for (let j = 0; j < 20; j++) yield* Effect.yieldNow
            yield* Fiber.interrupt(collector)
            const run = yield* store.getRun(runId)
            assert.isTrue(Result.isSuccess(RunStatus.restore(run.machine)))
            // Every status change was one the machine allows, and they chain up to the stored status.
            const changes = events.flatMap((e) => e._tag === "StatusChanged" && e.runId === runId ? [e] : [])
            let at: RunStatus.Status = "pending"
            for (const change of changes) {
              assert.strictEqual(change.from, at)
              assert.isTrue(RunStatus.isAllowed(change.from, change.to), `${change.from} → ${change.to}`)
              at = change.to
            }
            assert.strictEqual(at, run.status)
            const snapshot = yield* store.snapshot(runId)
            const dormant = Object.values(snapshot.nodes).filter((r) => r.status === "waiting" || r.status === "paused").length
            if (run.status === "completed") assert.strictEqual(dormant, 0)
            if (run.status === "suspended") assert.isTrue(RunStatus.suspension(RunStatus.restore(run.machine).pipe(Result.getOrThrow)).signals.length > 0)
          }).pipe(Effect.provide(
            Runs.layer({ concurrency: 3 }).pipe(
              Layer.provideMerge(RunStore.layerMemory),
              Layer.provideMerge(Handler.layer(modelHandlers()))
            )
          ))))
        }),
        { numRuns: 150 }
      )
    ))
  /** Drives a run to its end: sends every signal and approves every paused node until it finishes. */
  const autopilot = (runId: string) =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      for (let round = 0; round < 50; round++) {
        const status = yield* runs.wait(runId)
        for (let j = 0; j < 5; j++) yield* Effect.yieldNow
        if (status === "suspended") {
          for (const name of ["s0", "s1"]) yield* runs.signal(runId, name, `payload-${name}`)
        } else if (status === "paused") {
          const snapshot = yield* store.snapshot(runId)
          for (const [node, record] of Object.entries(snapshot.nodes)) {
            if (record.status === "paused") yield* runs.approve(runId, node, "approved")
          }
        } else if (status !== "running") {
          return status
        }
      }
      return yield* runs.wait(runId)
    })

  it.effect("with waits and approvals too, runFrom (signals and approvals given again) equals a full run on observed outputs", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(longLived, Edits.arbitraryEdits({ kinds: ["params", "volatile", "add", "remove", "variable", "container"] }), fc.nat(), async (before, edits, pick) => {
          const after = Edits.apply(before, edits)
          const targets = after.blocks.map((b) => b.id)
          const target = targets[pick % targets.length]!
          const { fresh, incremental } = await Effect.runPromise(Effect.gen(function*() {
            const runs = yield* Runs.Runs
            const store = yield* RunStore.RunStore
            const input = Laws.inputFor(before)
            const prior = yield* runs.start(before, input)
            yield* autopilot(prior.runId)
            const again = yield* runs.runFrom(after, { target, run: prior.runId })
            yield* autopilot(again.runId)
            const scratch = yield* runs.start(after, (yield* store.snapshot(prior.runId)).input)
            yield* autopilot(scratch.runId)
            return { incremental: yield* store.snapshot(again.runId), fresh: yield* store.snapshot(scratch.runId) }
          }).pipe(Effect.provide(
            Runs.layer({ concurrency: 3 }).pipe(
              Layer.provideMerge(RunStore.layerMemory),
              Layer.provideMerge(Handler.layer(modelHandlers()))
            )
          )))
          // Statuses may differ: a failing node no observed output needs is pruned from the run-from.
          const trial = { scenario: { before, after, target }, dag: Dag.make(after), replay: { snapshot: incremental, executed: [] }, fresh: { snapshot: fresh, executed: [] } }
          assert.deepStrictEqual(Laws.soundness(trial as unknown as Laws.Trial), [])
        }),
        { numRuns: 100 }
      )
    ))
})
