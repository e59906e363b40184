/**
 * The engine on a store whose calls complete in an order fast-check chooses (issue 14, item 3):
 * every run settles, and settles as the same run does on the synchronous memory store: full runs,
 * containers and run-from, whose journal writer coalesces writes while a call is in flight.
 */
import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, type Snapshot, type Workflow } from "@ripple/core"
import { Laws } from "@ripple/core/testing"
import { BlockError, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as fc from "fast-check"
import { arbitraryScenario } from "../helpers/scenario.ts"
import { scheduledStore } from "../helpers/scheduledStore.ts"
import { essence, modelHandlers } from "./model.ts"

const scenario = fc.boolean().chain((containers) => arbitraryScenario({ containers, maxMembers: 6 }))

/** A full run of `before`, a run-from of `after` against it, a full run of `after`: each run's snapshot. */
const play = (before: Workflow.Workflow, after: Workflow.Workflow, target: string) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const settled = (runId: string) => Effect.andThen(runs.wait(runId), store.snapshot(runId))
    const prior = yield* settled((yield* runs.start(before, Laws.inputFor(before))).runId)
    const incremental = yield* settled((yield* runs.runFrom(after, { target, run: prior.runId })).runId)
    const fresh = yield* settled((yield* runs.start(after, prior.input)).runId)
    return [prior, incremental, fresh]
  })

/**
 * The model's handlers, except that about a quarter of the `fn` calls fail (a pure function of the
 * block and its inputs): a failure is journaled by a writer that waits, with nothing queued for later.
 */
const handlers: Record<string, Handler.Handler> = Object.fromEntries(Object.entries(modelHandlers()).map(([type, handler]) => [
  type,
  type !== "fn" ? handler : (ctx) =>
    Fingerprint.hash([Fingerprint.ofBlock(ctx.block), ctx.inputs]).charCodeAt(0) % 4 === 0
      ? Effect.fail(BlockError.permanent(`${ctx.node} fails`))
      : handler(ctx)
]))

const runtimeOver = (store: Layer.Layer<RunStore.RunStore>) =>
  ManagedRuntime.make(
    Runs.layer({ concurrency: 3 }).pipe(
      Layer.provideMerge(store),
      Layer.provideMerge(Handler.layer(handlers))
    )
  )

/** What a run's result is made of: its status and every node instance's status, decision and output. */
const outcome = (snapshot: Snapshot.Snapshot) => ({
  status: snapshot.status,
  nodes: Object.fromEntries(Object.entries(snapshot.nodes).map(([id, record]) => [id, essence(record)]))
})

/**
 * Releases scheduled store calls, in the scheduler's order, until `task` settles; `"stalled"` once
 * nothing is scheduled and a good many turns of the event loop (where the effect runtime resumes
 * its fibers) go by with none scheduled: with no timer pending (these workflows do not sleep and
 * their failures are permanent, so nothing is retried later) nothing can settle it any more. Counted in turns, not time, so a loaded machine cannot
 * make a slow run look stalled.
 */
const settleOrStall = async <A>(s: fc.Scheduler, task: Promise<A>): Promise<{ readonly value: A } | "stalled"> => {
  let settled: { readonly value: A } | undefined
  let failure: { readonly error: unknown } | undefined
  task.then((value) => settled = { value }, (error) => failure = { error })
  for (let idle = 0; idle < 100;) {
    if (failure !== undefined) throw failure.error
    if (settled !== undefined) return settled
    if (s.count() > 0) {
      idle = 0
      await s.waitNext(1)
    } else {
      idle++
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  return "stalled"
}

describe("The engine on a store that completes calls out of order", () => {
  it.effect("every run settles, as it does on the synchronous memory store", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(scenario, fc.scheduler(), async ({ after, before, target }, s) => {
          const synchronous = runtimeOver(RunStore.layerMemory)
          const expected = await settleOrStall(s, synchronous.runPromise(play(before, after, target)))
          // A stalled execution cannot be disposed of either: its interruption flushes a journal that never drains.
          assert.notStrictEqual(expected, "stalled", "a run never settled on the synchronous memory store")
          await synchronous.dispose()
          const scheduled = runtimeOver(Layer.effect(
            RunStore.RunStore,
            Effect.map(RunStore.makeMemory, (base) =>
              scheduledStore(base, (operation) => Effect.promise(() => s.schedule(Promise.resolve(operation), operation))))
          ))
          const actual = await settleOrStall(s, scheduled.runPromise(play(before, after, target)))
          assert.notStrictEqual(actual, "stalled", "a run never settled (the counterexample's scheduler lists the order store calls completed in)")
          await scheduled.dispose()
          if (actual !== "stalled" && expected !== "stalled") assert.deepStrictEqual(actual.value.map(outcome), expected.value.map(outcome))
        }),
        { numRuns: 150 }
      )
    ))
})
