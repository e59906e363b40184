/**
 * What a JavaScript caller passes to `Runs` where the types forbid it: `runs.plan(w, null)` and
 * `runs.start(w, input, { to: 5 })` threw a `TypeError` (a defect), a number as options or a
 * misspelt option was ignored. Every entry that takes options, an input, a name, a node or a
 * reason refuses a wrongly typed one (and `reject` an empty reason) with `InvalidOption` naming
 * it, its value and what it must be, and writes nothing; so does every entry given a run id that is
 * no string (it answered
 * `RunNotFound`, and `events` an empty stream), on the memory store and the SQL stores.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Options, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as TestDatabase from "../helpers/database.ts"

const workflow: Workflow.Workflow = {
  id: "arguments",
  blocks: [{ id: "start", type: "trigger" }, { id: "v", type: "value", params: { value: 1 } }],
  edges: [{ source: "start", target: "v" }]
}

// The types forbid every value below: a JavaScript caller passes them anyway.
const untyped = <A>(value: unknown): A => value as A

type Call = (runs: Runs.Runs["Service"], runId: string) => Effect.Effect<unknown, unknown>

// Every entry that takes a run id, given one that is no string: it answered `RunNotFound` (or, on
// a SQL store, whatever the driver made of the value) where every other argument is `InvalidOption`.
const runIdRefusals = (): ReadonlyArray<readonly [name: string, call: Call, option: string, expected: string]> => {
  const handover = { taken: () => true, timeout: Duration.millis(10), onWaiting: () => Effect.void }
  const entries: ReadonlyArray<readonly [string, unknown, Call]> = [
    ["status", 5, (runs) => runs.status(untyped(5))],
    ["outputs", null, (runs) => runs.outputs(untyped(null))],
    ["nodes", {}, (runs) => runs.nodes(untyped({}))],
    ["node", 5, (runs) => runs.node(untyped(5), "v")],
    ["wait", [], (runs) => runs.wait(untyped([]))],
    ["signal", 5, (runs) => runs.signal(untyped(5), "go")],
    ["approve", 5, (runs) => runs.approve(untyped(5), "v")],
    ["reject", 5, (runs) => runs.reject(untyped(5), "v", "no")],
    ["pause", 5, (runs) => runs.pause(untyped(5))],
    ["unpause", 5, (runs) => runs.unpause(untyped(5))],
    ["resume", undefined, (runs) => runs.resume(untyped(undefined))],
    ["handling", 5, (runs) => runs.handling(untyped(5))],
    ["handover", 5, (runs) => runs.handover(untyped(5), handover)],
    ["follow", 5, (runs) => runs.follow(untyped(5))],
    ["wake", 5, (runs) => runs.wake(untyped(5))],
    ["cancel", 5, (runs) => runs.cancel(untyped(5))],
    ["events", 5, (runs) => Stream.runCollect(runs.events(untyped(5)))]
  ]
  return entries.map(([entry, value, call]) => [`${entry}(${JSON.stringify(value)})`, call, "runId", "a run id (a string)"] as const)
}

const refusals: ReadonlyArray<readonly [name: string, call: Call, option: string, expected: string]> = [
  ["plan(w, null)", (runs) => runs.plan(workflow, untyped(null)), "options", "an object of target, run, input, to, pins"],
  ["plan(w, 5)", (runs) => runs.plan(workflow, untyped(5)), "options", "an object of"],
  ["plan(w, { target: 5 })", (runs) => runs.plan(workflow, untyped({ target: 5 })), "options.target", "a block id (a string)"],
  ["plan(w, { run: 5 })", (runs) => runs.plan(workflow, untyped({ target: "v", run: 5 })), "options.run", "a run id (a string)"],
  ["plan(w, { input: 'x' })", (runs) => runs.plan(workflow, untyped({ target: "v", input: "x" })), "options.input", "an object of input keys"],
  ["plan(w, { pins: null })", (runs) => runs.plan(workflow, untyped({ target: "v", pins: null })), "options.pins", "an object of block ids"],
  ["plan(w, { taget: 'v' })", (runs) => runs.plan(workflow, untyped({ taget: "v" })), "options.taget", "an option named one of target, run, input, to, pins"],
  ["start(w, input, { to: 5 })", (runs) => runs.start(workflow, {}, untyped({ to: 5 })), "options.to", "a block id (a string)"],
  ["start(w, input, null)", (runs) => runs.start(workflow, {}, untyped(null)), "options", "an object of to, pins"],
  ["start(w, input, { pins: 5 })", (runs) => runs.start(workflow, {}, untyped({ pins: 5 })), "options.pins", "an object of block ids"],
  ["start(w, input, { too: 'v' })", (runs) => runs.start(workflow, {}, untyped({ too: "v" })), "options.too", "an option named one of to, pins"],
  ["start(w, null)", (runs) => runs.start(workflow, untyped(null)), "input", "an object of input keys"],
  ["start(w, [1])", (runs) => runs.start(workflow, untyped([1])), "input", "an object of input keys"],
  ["runFrom(w, undefined)", (runs) => runs.runFrom(workflow, untyped(undefined)), "options", "an object of target, run, input, to, pins"],
  ["runFrom(w, null)", (runs) => runs.runFrom(workflow, untyped(null)), "options", "an object of"],
  ["runFrom(w, { target: 5 })", (runs) => runs.runFrom(workflow, untyped({ target: 5 })), "options.target", "a block id (a string)"],
  ["signal(run, 5)", (runs, runId) => runs.signal(runId, untyped(5)), "name", "a signal name (a string)"],
  ["approve(run, 5)", (runs, runId) => runs.approve(runId, untyped(5)), "node", "a node id (a string)"],
  ["reject(run, node, 5)", (runs, runId) => runs.reject(runId, "v", untyped(5)), "reason", "a reason (a string that is not empty"],
  ["reject(run, node)", (runs, runId) => runs.reject(runId, "v", untyped(undefined)), "reason", "a reason (a string that is not empty"],
  // Well typed, but no reason: what an unset variable gives (`process.env.REASON ?? ""`).
  ["reject(run, node, '')", (runs, runId) => runs.reject(runId, "v", ""), "reason", "not empty or only white space"],
  ["reject(run, node, ' \\n')", (runs, runId) => runs.reject(runId, "v", " \n"), "reason", "not empty or only white space"],
  ["node(run, 5)", (runs, runId) => runs.node(runId, untyped(5)), "node", "a node id (a string)"],
  ["handover(run, null)", (runs, runId) => runs.handover(runId, untyped(null)), "options", "an object of taken, timeout, onWaiting"],
  [
    "handover(run, { timeout: 5 })",
    (runs, runId) => runs.handover(runId, untyped({ taken: () => true, timeout: 5, onWaiting: () => Effect.void })),
    "options.timeout",
    "a Duration"
  ],
  ...runIdRefusals()
]

const services = Runs.layer().pipe(Layer.provideMerge(Layer.merge(RunStore.layerMemory, Handler.layer(Builtins.handlers))))

/**
 * Every entry refused with nothing written: no run but the one started below. Memory names runs
 * `run-1`, `run-2`, ...; a SQL store is asked for its count of runs.
 */
const refusesAll = <R>(runCount: Effect.Effect<number, unknown, R>) => Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore
  const { runId } = yield* runs.start(workflow)
  assert.strictEqual(yield* runs.wait(runId), "completed")
  const before = JSON.stringify([yield* store.getRun(runId), yield* store.snapshot(runId), yield* store.deliveries(runId)])
  for (const [name, call, option, expected] of refusals) {
    const exit = yield* Effect.exit(Effect.suspend(() => call(runs, runId)))
    assert.isTrue(Exit.isFailure(exit) && exit.cause.reasons.every((reason) => reason._tag === "Fail"), `${name}: ${String(exit)}`)
    const error = yield* Effect.flip(Effect.suspend(() => call(runs, runId)))
    assert.instanceOf(error, Options.InvalidOption, name)
    assert.instanceOf(error, Runs.InvalidOption, name)
    const invalid = error as Options.InvalidOption
    assert.strictEqual(invalid.option, option, name)
    assert.include(invalid.message, `option ${option} is `, name)
    assert.include(invalid.message, expected, name)
  }
  assert.strictEqual(JSON.stringify([yield* store.getRun(runId), yield* store.snapshot(runId), yield* store.deliveries(runId)]), before)
  assert.strictEqual(yield* runCount, 1, "no run created")
})

const memoryRunCount = Effect.flatMap(RunStore.RunStore, (store) =>
  Effect.map(Effect.exit(store.getRun("run-2")), (exit) => Exit.isSuccess(exit) ? 2 : 1))

const sqlRunCount = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ripple_runs`, (rows) => rows[0]!.n))

describe("Runs: wrongly typed arguments", () => {
  it.effect("are refused with InvalidOption naming the argument and the value, not a TypeError, and nothing is written", () =>
    refusesAll(memoryRunCount).pipe(Effect.provide(services)))

  for (const backend of TestDatabase.backends) {
    it.effect(`are refused on a SQL store (${backend})`, () =>
      refusesAll(sqlRunCount).pipe(
        Effect.provide(Runs.layer().pipe(
          Layer.provideMerge(Layer.merge(SqlRunStore.layer, Handler.layer(Builtins.handlers))),
          Layer.provideMerge(TestDatabase.layer),
          Layer.provide(TestDatabase.shared(backend))
        ))
      ))
  }

  it.effect("a rejection with an empty reason of a paused approval is refused: the run stays paused, no decision kept", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const { runId } = yield* runs.start({ id: "arguments-approval", blocks: [{ id: "gate", type: "approval" }], edges: [] })
      assert.strictEqual(yield* runs.wait(runId), "paused")
      for (const reason of ["", "  "]) {
        const error = yield* Effect.flip(runs.reject(runId, "gate", reason))
        assert.instanceOf(error, Options.InvalidOption)
        assert.strictEqual((error as Options.InvalidOption).option, "reason")
      }
      assert.deepStrictEqual(yield* store.deliveries(runId), [])
      assert.strictEqual((yield* store.getRun(runId)).status, "paused")
      assert.isTrue(yield* runs.reject(runId, "gate", "not now"))
      assert.strictEqual(yield* runs.wait(runId), "failed")
      assert.include((yield* runs.nodes(runId))[0]?.error?.message ?? "", "not now")
    }).pipe(Effect.provide(services)))

  it.effect("well-typed arguments work as before, options left out included", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(workflow, {}, { to: "v" })
      assert.strictEqual(yield* runs.wait(runId), "completed")
      assert.strictEqual((yield* runs.plan(workflow)).mode, "full")
      assert.strictEqual((yield* runs.plan(workflow, { target: "v", run: runId, input: {}, pins: { v: 2 } })).mode, "run-from")
      const rerun = yield* runs.runFrom(workflow, { target: "v" })
      assert.strictEqual(yield* runs.wait(rerun.runId), "completed")
      assert.strictEqual((yield* runs.node(rerun.runId, "v")).length, 1)
      assert.isFalse(yield* runs.signal(rerun.runId, "go"))
      const handover = yield* runs.handover(rerun.runId, { taken: () => true, timeout: Duration.millis(10), onWaiting: () => Effect.void })
      assert.strictEqual(handover.run.status, "completed")
    }).pipe(Effect.provide(services)))
})
