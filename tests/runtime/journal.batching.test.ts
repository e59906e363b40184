/**
 * The interpreter's journal writes: a completion and the start of the node that reads it go out in
 * one `journal` call, concurrent nodes share calls, and nothing is announced or started before the
 * writes it depends on are durable.
 */
import { assert, describe, it } from "@effect/vitest"
import { Plan, type Workflow } from "@ripple/core"
import { Engine, Handler, type RunEvent, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"

const size = 30

/** `b0 → b1 → …`; `edit` changes every block's definition, so a run-from re-runs them all. */
const chain = (edit: number): Workflow.Workflow => ({
  id: "batching",
  blocks: Array.from({ length: size }, (_, i) => ({
    id: `b${i}`,
    type: "add",
    params: { edit, prev: i === 0 ? 0 : { $ref: `blocks.b${i - 1}.output` } }
  })),
  edges: Array.from({ length: size - 1 }, (_, i) => ({ source: `b${i}`, target: `b${i + 1}` }))
})

/** `b0` then `width` independent blocks reading it. */
const fan = (width: number, edit: number): Workflow.Workflow => ({
  id: "batching-fan",
  blocks: [
    { id: "b0", type: "add", params: { edit, prev: 0 } },
    ...Array.from({ length: width }, (_, i) => ({ id: `w${i}`, type: "add", params: { edit, prev: { $ref: "blocks.b0.output" } } }))
  ],
  edges: Array.from({ length: width }, (_, i) => ({ source: "b0", target: `w${i}` }))
})

const handlers = Handler.layer({
  add: (ctx) => Effect.succeed((ctx.inputs["prev"] as number) + 1)
})

const latency = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

/** A store that counts `journal` calls and remembers which node instances' writes returned. */
const observed = (base: RunStore.RunStore["Service"]) => {
  const durable = new Set<string>()
  let calls = 0
  const store = RunStore.RunStore.of({
    ...base,
    // A call takes a few scheduler turns, like a round trip, so other fibers can queue writes meanwhile.
    journal: (runId, entries) =>
      Effect.tap(Effect.andThen(latency, base.journal(runId, entries)), () =>
        Effect.sync(() => {
          calls++
          for (const entry of entries) if ("node" in entry) durable.add(`${entry._tag} ${entry.node}`)
        }))
  })
  return { store, durable, calls: () => calls }
}

/** Runs `before` in full, then re-runs `after` from `b0`, watching the writes. */
const rerun = (before: Workflow.Workflow, after: Workflow.Workflow) =>
  Effect.gen(function*() {
    const base = yield* RunStore.makeMemory
    const watch = observed(base)
    const execute = (workflow: Workflow.Workflow, mode: "full" | "run-from", plan: Plan.Plan, publish: (event: RunEvent.RunEvent) => void) =>
      Effect.gen(function*() {
        const version = yield* base.saveWorkflow(workflow)
        const run = yield* base.createRun({ version, mode, input: {}, at: 0 })
        const status = yield* Engine.execute({ runId: run.id, mode, plan, input: {}, sourceRun: plan.state.runId, publish }, {}).pipe(
          Effect.provideService(RunStore.RunStore, watch.store)
        )
        return { runId: run.id, status }
      }).pipe(Effect.provide(handlers))
    const full = Plan.full(before)
    assert.isTrue(Result.isSuccess(full))
    const first = yield* execute(before, "full", Result.getOrThrow(full), () => {})
    const snapshot = yield* base.snapshot(first.runId)
    const plan = Result.getOrThrow(Plan.runFrom({ workflow: after, snapshot, target: "b0" }))
    assert.strictEqual(plan.rerun.length, after.blocks.length)
    const violations: Array<string> = []
    const callsBefore = watch.calls()
    const second = yield* execute(after, "run-from", plan, (event) => {
      // Announced only once durable; started only once what it reads is durable.
      if (event._tag === "NodeCompleted" && !watch.durable.has(`Completed ${event.node}`)) violations.push(`${event.node} announced early`)
      if (event._tag === "NodeStarted" && !watch.durable.has(`Started ${event.node}`)) violations.push(`${event.node} started early`)
    })
    return { ...second, calls: watch.calls() - callsBefore, violations, snapshot: yield* base.snapshot(second.runId) }
  })

describe("Journal batching in the interpreter", () => {
  it.effect("a chain's run-from makes about one journal call per node, never announcing or starting early", () =>
    Effect.gen(function*() {
      const { calls, snapshot, status, violations } = yield* rerun(chain(0), chain(1))
      assert.strictEqual(status, "completed")
      assert.deepStrictEqual(violations, [])
      assert.strictEqual(snapshot.nodes[`b${size - 1}`]?.output, size)
      // One call per node (its start with the completion before it), plus the reused records and the last completion.
      assert.isAtMost(calls, size + 2)
    }))

  it.effect("concurrent nodes share journal calls", () =>
    Effect.gen(function*() {
      const width = 12
      const { calls, snapshot, status, violations } = yield* rerun(fan(width, 0), fan(width, 1))
      assert.strictEqual(status, "completed")
      assert.deepStrictEqual(violations, [])
      for (let i = 0; i < width; i++) assert.strictEqual(snapshot.nodes[`w${i}`]?.output, 2)
      // Unbatched, each of the 13 nodes would cost two calls.
      assert.isBelow(calls, width)
    }))
})
