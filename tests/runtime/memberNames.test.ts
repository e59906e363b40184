/**
 * Blocks and containers named after members every object inherits (`constructor`, `toString`,
 * `valueOf`, `hasOwnProperty`, ...) behave exactly as the same workflow with plain names, on every
 * store: the full run, a run-from after an edit, the approval that holds one, the views
 * (`Runs.nodes`, `Runs.outputs`) and the plan. A lookup of a record by id that finds an inherited
 * member (`snapshot.nodes["constructor"]` is `Object`) instead of "no record" shows up here as a
 * difference between the two namings.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"

const inherited = [
  "constructor",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__lookupSetter__",
  "__defineSetter__"
] as const
const plain = inherited.map((_, k) => `n${k}`)

/**
 * A trigger, a router with a taken and an untaken route, a count loop and a count parallel whose
 * bodies read their index, an approval, and a join that reads all of them; `names[k]` names the
 * k-th, `edited` changes the value of the routed block.
 */
const workflowOf = (names: ReadonlyArray<string>, edited = false): Workflow.Workflow => {
  const [trigger, route, taken, untaken, loop, inLoop, parallel, inParallel, review, join] = names as [string, ...Array<string>]
  const output = (id: string | undefined) => ({ $ref: `blocks.${id}.output` })
  return {
    id: "member-names",
    inputs: { kind: { type: "string" } },
    blocks: [
      { id: trigger, type: "trigger" },
      { id: route!, type: "router", params: { value: { $ref: "input.kind" }, routes: [{ handle: "a", equals: "A" }], default: "other" } },
      { id: taken!, type: "value", params: { value: edited ? "taken, edited" : "taken" } },
      { id: untaken!, type: "value", params: { value: "untaken" } },
      { id: inLoop!, type: "value", params: { value: { $ref: "loop.index" } } },
      { id: inParallel!, type: "value", params: { value: { $ref: "parallel.index" } } },
      { id: review!, type: "approval" },
      { id: join!, type: "value", params: { value: { taken: output(taken), review: output(review), loop: output(loop), parallel: output(parallel) } } }
    ],
    loops: [{ id: loop!, kind: "count", count: 2, body: [inLoop!] }],
    parallels: [{ id: parallel!, kind: "count", count: 2, body: [inParallel!] }],
    edges: [
      { source: trigger, target: route! },
      { source: route!, target: taken!, handle: "a" },
      { source: route!, target: untaken!, handle: "other" },
      { source: trigger, target: loop! },
      { source: trigger, target: parallel! },
      { source: taken!, target: review! },
      { source: review!, target: join! },
      { source: loop!, target: join! },
      { source: parallel!, target: join! }
    ]
  }
}

/** Replaces every inherited name in a value's keys and strings by its plain counterpart. */
const renamed = (value: unknown): unknown => {
  const name = (s: string) => s.replace(/[A-Za-z_]+/gu, (word) => {
    const k = (inherited as ReadonlyArray<string>).indexOf(word)
    return k < 0 ? word : plain[k]!
  })
  if (typeof value === "string") return name(value)
  if (Array.isArray(value)) return value.map(renamed)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [name(key), renamed(v)]))
  }
  return value
}

/** What a naming's runs leave: statuses, outputs, decisions and the plan, with run ids left out. */
const played = (names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const runs = Context.get(yield* Layer.build(Runs.layer()), Runs.Runs)
    const store = yield* RunStore.RunStore
    const review = names[8]!
    const finish = (runId: string) =>
      Effect.gen(function*() {
        assert.strictEqual(yield* runs.wait(runId), "paused", `${runId} waits for ${review}`)
        assert.isTrue(yield* runs.approve(runId, review, { by: "editor" }), `approve ${review}`)
        return yield* runs.wait(runId)
      })
    const first = yield* runs.start(workflowOf(names), { kind: "A" })
    const firstStatus = yield* finish(first.runId)
    const again = yield* runs.runFrom(workflowOf(names, true), { target: names[2]!, run: first.runId })
    const againStatus = yield* finish(again.runId)
    const summary = (runId: string) =>
      Effect.gen(function*() {
        const snapshot = yield* store.snapshot(runId)
        const records = Object.fromEntries(
          Object.entries(snapshot.nodes).map(([key, r]) => [key, { status: r.status, output: r.output, decision: r.decision, reused: r.reusedFrom !== undefined }])
        )
        // By node, not in the journal's order, which varies with which concurrent block finished first.
        const views = Object.fromEntries((yield* runs.nodes(runId)).map((v) => [v.node, { status: v.status, reasons: v.reasons }]))
        return { status: snapshot.status, records, views, outputs: yield* runs.outputs(runId) }
      })
    return {
      statuses: [firstStatus, againStatus],
      first: yield* summary(first.runId),
      again: yield* summary(again.runId),
      plan: { rerun: again.plan.rerun, reused: again.plan.reused, pruned: again.plan.pruned, reasons: Object.fromEntries(again.plan.reasons) }
    }
  }).pipe(Effect.scoped)

const check = Effect.gen(function*() {
  const expected = yield* played(plain)
  const actual = yield* played(inherited)
  assert.deepStrictEqual(expected.statuses, ["completed", "completed"])
  assert.deepStrictEqual(renamed(actual), expected)
})

const handlers = Handler.layer(Builtins.handlers)

describe("inherited member names, memory store", () => {
  it.effect("behave as plain names: runs, run-from, approval, views and plan", () =>
    Effect.provide(check, Layer.merge(RunStore.layerMemory, handlers)))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`inherited member names on ${backend}`, (it) => {
    it.effect("behave as plain names: runs, run-from, approval, views and plan", () =>
      Effect.provide(check, Layer.mergeAll(SqlRunStore.layer, handlers).pipe(Layer.provideMerge(TestDatabase.layer))))
  })
}
