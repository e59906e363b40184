import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Edits, Laws } from "@ripple/core/testing"
import { type RunEvent, Runs } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import * as Stream from "effect/Stream"
import { arbitraryWorkflow } from "../arbitraries/workflow.ts"
import { assertFullRunIsModel, essence, executedIn, runOnEngine, SEED, withModel } from "./model.ts"

const withContainers = arbitraryWorkflow({ containers: true, maxMembers: 5 })

const scenario = withContainers.chain((before) =>
  fc.record({
    before: fc.constant(before as unknown as Workflow.Workflow),
    edits: Edits.arbitraryEdits({ kinds: Edits.safeKinds }),
    pick: fc.nat()
  }).map(({ before, edits, pick }) => {
    const after = Edits.apply(before, edits)
    const targets = [...after.blocks.map((b) => b.id), ...(after.loops ?? []).map((l) => l.id), ...(after.parallels ?? []).map((p) => p.id)]
    return { before, after, target: targets[pick % targets.length]! }
  })
)

/** A prior run of `before`, then `runFrom(after)` with cutoff on and off, then a fresh run of `after`. */
const playOnEngine = (before: Workflow.Workflow, after: Workflow.Workflow, target: string) => {
  const input = Laws.inputFor(before)
  const incremental = (cutoff: boolean) =>
    withModel((current) =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const prior = yield* runOnEngine(current, runs.start(before, input), before)
        const run = yield* runOnEngine(current, runs.runFrom(after, { target, run: prior.started.runId }), after)
        const fresh = yield* runOnEngine(current, runs.start(after, prior.snapshot.input), after)
        return { run, fresh }
      }), { cutoff })
  return Effect.all({ on: incremental(true), off: incremental(false) })
}

describe("Engine properties with loops and parallels", () => {
  it.effect("a full run equals the reference executor, instance by instance (loop and parallel scopes too)", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(withContainers, (json) => assertFullRunIsModel(json as unknown as Workflow.Workflow)),
        { numRuns: 150 }
      )
    ))

  it.effect("runFrom equals a full run on observed outputs; cutoff changes no observed output and executes a subset", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(scenario, async ({ after, before, target }) => {
          const trial = Laws.trial({ before, after, target, seed: SEED })
          const { off, on } = await Effect.runPromise(playOnEngine(before, after, target))
          for (const outcome of [on, off]) {
            const law = Laws.soundness({
              ...trial,
              replay: { snapshot: outcome.run.snapshot, executed: executedIn(outcome.run.snapshot) },
              fresh: { snapshot: outcome.fresh.snapshot, executed: [] }
            })
            assert.deepStrictEqual(law, [])
          }
          // Without cutoff the engine executes exactly what the reference executor does for the plan.
          assert.deepStrictEqual(executedIn(off.run.snapshot), [...new Set(trial.replay.executed)].sort())
          const executedOff = new Set(executedIn(off.run.snapshot))
          for (const key of executedIn(on.run.snapshot)) assert.isTrue(executedOff.has(key), `${key} executed with cutoff only`)
          const keys = new Set([...Object.keys(on.run.snapshot.nodes), ...Object.keys(off.run.snapshot.nodes)])
          for (const key of keys) assert.strictEqual(essence(on.run.snapshot.nodes[key]), essence(off.run.snapshot.nodes[key]), key)
        }),
        { numRuns: 100 }
      )
    ))

  it.effect("events keep dependency order: a top-level node starts only after each predecessor is announced done", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(scenario, async ({ after, before, target }) => {
          const input = Laws.inputFor(before)
          const events = await Effect.runPromise(withModel((current) =>
            Effect.scoped(Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const prior = yield* runOnEngine(current, runs.start(before, input), before)
              const seen: Array<RunEvent.RunEvent> = []
              const stream = yield* runs.subscribe
              yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => seen.push(event))))
              const run = yield* runOnEngine(current, runs.runFrom(after, { target, run: prior.started.runId }), after)
              for (let i = 0; i < 20; i++) yield* Effect.yieldNow
              return seen.filter((event) => event.runId === run.started.runId)
            }))
          ))
          // Only nodes outside containers: their instance ids are their node ids.
          const nested = new Set([...(after.loops ?? []), ...(after.parallels ?? [])].flatMap((c) => c.body))
          const containers = new Set([...(after.loops ?? []), ...(after.parallels ?? [])].map((c) => c.id))
          const done = new Map<string, number>()
          events.forEach((event, i) => {
            if (event._tag === "NodeCompleted" || event._tag === "NodeSkipped" || event._tag === "NodeReused" || event._tag === "NodeFailed") {
              if (!done.has(event.node)) done.set(event.node, i)
            }
          })
          events.forEach((event, i) => {
            if (event._tag !== "NodeStarted") return
            for (const edge of after.edges) {
              if (nested.has(edge.source) || nested.has(edge.target)) continue
              const targetNode = containers.has(edge.target) ? `${edge.target}#start` : edge.target
              if (targetNode !== event.node) continue
              const sourceNode = containers.has(edge.source) ? `${edge.source}#end` : edge.source
              const finished = done.get(sourceNode)
              assert.isTrue(finished !== undefined && finished < i, `${event.node} started before ${sourceNode} was announced done`)
            }
          })
        }),
        { numRuns: 100 }
      )
    ))
})
