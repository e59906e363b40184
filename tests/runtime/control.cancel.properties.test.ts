/**
 * Cancel among concurrent control requests from three processes: three `Runs` layers over one
 * memory store, each with its own handlers, and a long-lived run that any of them may be asked to
 * cancel, signal, approve, pause, unpause or resume — the requests of a batch made at the same time.
 * Once a cancel is recorded (`RunStore.requestCancel` accepted it), no handler starts in any
 * process; every other request is carried out or refused with `IllegalTransition`; no node
 * instance's handler runs twice; and a run asked to cancel before it ended ends `cancelled`.
 * Handler starts and the recorded requests go to one trace, in the order they happened.
 */
import { assert, describe, it } from "@effect/vitest"
import { Laws } from "@ripple/core/testing"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { longLived } from "../arbitraries/longLived.ts"
import { quiet, request } from "../helpers/control.ts"
import { modelHandlers } from "./model.ts"

/** A request, and which of the three processes makes it. */
type Op =
  | { readonly _tag: "signal"; readonly by: number; readonly name: string }
  | { readonly _tag: "approve"; readonly by: number; readonly pick: number }
  | { readonly _tag: "pause" | "unpause" | "resume" | "cancel"; readonly by: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ _tag: fc.constant("signal" as const), by: fc.nat({ max: 2 }), name: fc.constantFrom("s0", "s1") }),
  fc.record({ _tag: fc.constant("approve" as const), by: fc.nat({ max: 2 }), pick: fc.nat() }),
  fc.record({ _tag: fc.constantFrom("pause" as const, "unpause" as const, "resume" as const, "cancel" as const), by: fc.nat({ max: 2 }) })
)

/** What happened, in order: `start <node>` as a handler is called, `cancel` once a request is recorded. */
type Trace = Array<string>

/** Model handlers that note each call in `trace` as the engine makes it. */
const tracing = (trace: Trace) => {
  const out: Record<string, Handler.Handler> = {}
  for (const [type, inner] of Object.entries(modelHandlers())) {
    out[type] = (ctx) => {
      trace.push(`start ${ctx.node}`)
      return inner(ctx)
    }
  }
  return out
}

// Short leases: a resume of a run another (live) process executes waits out that process's lease.
const processOver = (store: RunStore.RunStore["Service"], owner: string, trace: Trace) =>
  Effect.map(
    Layer.build(Runs.layer({ concurrency: 3, owner, cancelPollMs: 1, leaseMs: 300 }).pipe(
      Layer.provideMerge(Layer.succeed(RunStore.RunStore, {
        ...store,
        requestCancel: (runId, at) => Effect.tap(store.requestCancel(runId, at), (recorded) => Effect.sync(() => recorded && trace.push("cancel")))
      })),
      Layer.provideMerge(Handler.layer(tracing(trace)))
    )),
    (context) => Context.get(context, Runs.Runs)
  )

describe("cancel among control requests from three processes", () => {
  it.effect("once a cancel is recorded no handler starts anywhere; every request is carried out or refused; a run asked to cancel ends cancelled", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(longLived, fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { maxLength: 5 }), async (workflow, batches) => {
          const trace: Trace = []
          await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
            const store = yield* RunStore.makeMemory
            const processes = [
              yield* processOver(store, "p0", trace),
              yield* processOver(store, "p1", trace),
              yield* processOver(store, "p2", trace)
            ]
            const { runId } = yield* processes[0]!.start(workflow, Laws.inputFor(workflow))
            let endedBeforeCancel = false
            for (const batch of batches) {
              const snapshot = yield* store.snapshot(runId)
              if (!trace.includes("cancel") && RunStore.consumesCancel.includes(snapshot.status)) endedBeforeCancel = true
              const paused = Object.entries(snapshot.nodes).filter(([, r]) => r.status === "paused").map(([k]) => k).sort()
              const results = yield* Effect.all(
                batch.map((o) => {
                  const runs = processes[o.by]!
                  const target = o._tag === "signal" ? o.name : paused.length === 0 ? "none" : paused[("pick" in o ? o.pick : 0) % paused.length]!
                  return Effect.result(request(runs, runId, o._tag, target, target))
                }),
                { concurrency: "unbounded" }
              )
              results.forEach((result, k) => {
                if (Result.isFailure(result)) assert.strictEqual(result.failure._tag, "IllegalTransition", `${batch[k]!._tag} by p${batch[k]!.by}`)
              })
              yield* quiet(processes, runId)
            }
            yield* quiet(processes, runId)
            const recorded = trace.indexOf("cancel")
            if (recorded !== -1) {
              assert.deepStrictEqual(trace.slice(recorded + 1).filter((e) => e.startsWith("start")), [], "started after the cancel was recorded")
              const run = yield* store.getRun(runId)
              // Asked while it had not ended: nothing ends it but the cancel, once no handler runs.
              if (!endedBeforeCancel) assert.include(["cancelled", "completed"], run.status)
            }
          })))
          const calls = new Map<string, number>()
          for (const e of trace) if (e.startsWith("start ")) calls.set(e, (calls.get(e) ?? 0) + 1)
          for (const [node, count] of calls) assert.strictEqual(count, 1, `${node} ran ${count} times`)
        }),
        { numRuns: 100 }
      )
    ))
})
