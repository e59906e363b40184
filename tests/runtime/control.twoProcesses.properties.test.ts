/**
 * Control requests from two processes: two `Runs` layers over one memory store, each with its own
 * handlers, and a long-lived run that either may be asked to signal, approve, pause, unpause or
 * resume, in any order. Every request is carried out or refused by `RunStatus` (the only refusal),
 * and an unpause is never refused while a pause was asked of the run; while a pause holds the run, only an unpause or a resume starts a handler; no node instance's
 * handler runs twice, in either process; and once driven to its end, the run's every node record
 * (status, decision, output) equals that of a run nobody paused or resumed.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Laws } from "@ripple/core/testing"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { longLived } from "../arbitraries/longLived.ts"
import { quiet, request } from "../helpers/control.ts"
import { essence, modelHandlers } from "./model.ts"

/** A request, and which of the two processes makes it. */
type Op =
  | { readonly _tag: "signal"; readonly by: number; readonly name: string }
  | { readonly _tag: "approve"; readonly by: number; readonly pick: number }
  | { readonly _tag: "pause" | "unpause" | "resume"; readonly by: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ _tag: fc.constant("signal" as const), by: fc.nat({ max: 1 }), name: fc.constantFrom("s0", "s1") }),
  fc.record({ _tag: fc.constant("approve" as const), by: fc.nat({ max: 1 }), pick: fc.nat() }),
  fc.record({ _tag: fc.constantFrom("pause" as const, "unpause" as const, "resume" as const), by: fc.nat({ max: 1 }) })
)

/** The same payload for a signal or an approval whoever gives it, so that outputs can be compared. */
const payloadOf = (name: string): Workflow.Json => `payload-${name}`

/** Model handlers that count calls per node instance, in `calls`. */
const counting = (calls: Map<string, number>) => {
  const out: Record<string, Handler.Handler> = {}
  for (const [type, inner] of Object.entries(modelHandlers())) {
    out[type] = (ctx) => Effect.suspend(() => {
      calls.set(ctx.node, (calls.get(ctx.node) ?? 0) + 1)
      return inner(ctx)
    })
  }
  return out
}

const processOver = (store: RunStore.RunStore["Service"], owner: string, calls: Map<string, number>) =>
  Effect.map(
    Layer.build(Runs.layer({ concurrency: 3, owner }).pipe(
      Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
      Layer.provideMerge(Handler.layer(counting(calls)))
    )),
    (context) => Context.get(context, Runs.Runs)
  )

/** Drives a run to its end from `runs`: unpauses it, gives every signal and approves every approval. */
const drive = (runs: Runs.Runs["Service"], others: ReadonlyArray<Runs.Runs["Service"]>, store: RunStore.RunStore["Service"], runId: string) =>
  Effect.gen(function*() {
    for (let round = 0; round < 50; round++) {
      yield* quiet([runs, ...others], runId)
      const run = yield* store.getRun(runId)
      if (run.status === "suspended") {
        for (const name of ["s0", "s1"]) yield* runs.signal(runId, name, payloadOf(name))
      } else if (run.status === "paused") {
        if (Object.values(run.machine.context.dormant).some((r) => r._tag === "Pause")) yield* runs.unpause(runId)
        const snapshot = yield* store.snapshot(runId)
        for (const [node, record] of Object.entries(snapshot.nodes)) {
          if (record.status === "paused") yield* runs.approve(runId, node, payloadOf(node))
        }
      } else if (run.status === "running") {
        yield* runs.resume(runId)
      } else {
        return run.status
      }
    }
    return (yield* store.getRun(runId)).status
  })

describe("control requests from two processes", () => {
  it.effect("any interleaving from either process is carried out or refused; no handler runs twice; the end equals an undisturbed run", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(longLived, fc.array(op, { maxLength: 8 }), async (workflow, ops) => {
          const input = Laws.inputFor(workflow)
          const calls = new Map<string, number>()
          const disturbed = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
            const store = yield* RunStore.makeMemory
            const processes = [yield* processOver(store, "p0", calls), yield* processOver(store, "p1", calls)]
            const { runId } = yield* processes[0]!.start(workflow, input)
            yield* quiet(processes, runId)
            for (const o of ops) {
              const runs = processes[o.by]!
              const run = yield* store.getRun(runId)
              const held = run.status === "paused" && Object.values(run.machine.context.dormant).some((r) => r._tag === "Pause")
              const ran = [...calls.values()].reduce((a, b) => a + b, 0)
              const snapshot = yield* store.snapshot(runId)
              const paused = Object.entries(snapshot.nodes).filter(([, r]) => r.status === "paused").map(([k]) => k).sort()
              const target = o._tag === "signal" ? o.name : paused.length === 0 ? "none" : paused[("pick" in o ? o.pick : 0) % paused.length]!
              const result = yield* Effect.result(request(runs, runId, o._tag, target, payloadOf(target)))
              if (Result.isFailure(result)) {
                assert.strictEqual(result.failure._tag, "IllegalTransition", `${o._tag} by p${o.by}`)
                assert.isFalse(o._tag === "unpause" && (held || run.pauseRequestedAt !== undefined), `unpause by p${o.by} refused in ${run.status}`)
              }
              yield* quiet(processes, runId)
              if (held && o._tag !== "unpause" && o._tag !== "resume") {
                assert.strictEqual([...calls.values()].reduce((a, b) => a + b, 0), ran, `${o._tag} by p${o.by} started a handler while paused`)
              }
            }
            assert.strictEqual(yield* drive(processes[0]!, [processes[1]!], store, runId), "completed")
            return yield* store.snapshot(runId)
          })))
          for (const [node, count] of calls) assert.strictEqual(count, 1, `${node} ran ${count} times`)
          const undisturbed = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
            const store = yield* RunStore.makeMemory
            const runs = yield* processOver(store, "alone", new Map())
            const { runId } = yield* runs.start(workflow, input)
            assert.strictEqual(yield* drive(runs, [], store, runId), "completed")
            return yield* store.snapshot(runId)
          })))
          const nodes = [...new Set([...Object.keys(disturbed.nodes), ...Object.keys(undisturbed.nodes)])].sort()
          for (const node of nodes) assert.strictEqual(essence(disturbed.nodes[node]), essence(undisturbed.nodes[node]), node)
        }),
        { numRuns: 100 }
      )
    ))
})
