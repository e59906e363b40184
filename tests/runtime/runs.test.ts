import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, type RunEvent, Runs, RunStore, Wake } from "@ripple/runtime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"

const layer = (handlers: Readonly<Record<string, Handler.Handler>> = {}) =>
  Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(handlers)))

const pipeline = (greeting: string): Workflow.Workflow => ({
  id: "pipeline",
  inputs: { name: { type: "string" }, loud: { type: "boolean", default: false } },
  blocks: [
    { id: "start", type: "trigger" },
    { id: "greeting", type: "value", params: { value: greeting } },
    { id: "name", type: "value", params: { value: { $ref: "input.name" } } },
    { id: "greet", type: "template", params: { template: "{{g}}, {{n}}", values: { g: { $ref: "blocks.greeting.output" }, n: { $ref: "blocks.name.output" } } } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.greet.output" } } }
  ],
  edges: [
    { source: "start", target: "greeting" },
    { source: "start", target: "name" },
    { source: "greeting", target: "greet" },
    { source: "name", target: "greet" },
    { source: "greet", target: "out" }
  ]
})

const outputsOf = (nodes: Readonly<Record<string, { readonly status: string; readonly output?: Workflow.Json }>>) =>
  Object.fromEntries(Object.entries(nodes).map(([id, r]) => [id, [r.status, r.output ?? null]]))

describe("Runs", () => {
  it.effect("start validates the input (defaults applied) and runs to completion", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const { mode, runId } = yield* runs.start(pipeline("Hello"), { name: "Ada" })
      assert.strictEqual(mode, "full")
      assert.strictEqual(yield* runs.wait(runId), "completed")
      const run = yield* runs.status(runId)
      assert.strictEqual(run.status, "completed")
      assert.deepStrictEqual(run.input, { name: "Ada", loud: false })
      assert.strictEqual((yield* store.snapshot(runId)).nodes["out"]?.output, "Hello, Ada")
    }).pipe(Effect.provide(layer())))

  // What an untyped caller may pass for a workflow (JSON.parse of a file holding null, a string...).
  it.effect("start and plan of something that is not a workflow object fail with InvalidWorkflow, writing nothing", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      for (const notAWorkflow of [null, undefined, "workflow.json", 3, [pipeline("Hello")]]) {
        const what = JSON.stringify(notAWorkflow) ?? "undefined"
        for (const request of [runs.start(notAWorkflow as unknown as Workflow.Workflow), runs.plan(notAWorkflow as unknown as Workflow.Workflow)]) {
          const error = yield* Effect.flip(request as Effect.Effect<unknown, Runs.RunsError>)
          assert.strictEqual(error._tag, "InvalidWorkflow", what)
          if (error._tag === "InvalidWorkflow") assert.strictEqual(error.cause._tag, "SchemaMismatch", what)
        }
      }
      assert.strictEqual((yield* Effect.flip(store.getRun("run-1")))._tag, "RunNotFound")
    }).pipe(Effect.provide(layer())))

  it.effect("a missing, unknown or mistyped input is refused before anything is written", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const missing = yield* Effect.flip(runs.start(pipeline("Hello"), {}))
      const unknown = yield* Effect.flip(runs.start(pipeline("Hello"), { name: "Ada", extra: 1 }))
      const mistyped = yield* Effect.flip(runs.start(pipeline("Hello"), { name: 3 }))
      assert.deepStrictEqual([missing, unknown, mistyped].map((e) => e._tag), ["InvalidInput", "InvalidInput", "InvalidInput"])
      const causes = [missing, unknown, mistyped].map((e) => (e._tag === "InvalidInput" ? e.cause._tag : e._tag))
      assert.deepStrictEqual(causes, ["MissingInput", "UnknownInput", "InputTypeMismatch"])
      assert.strictEqual((yield* Effect.flip(store.getRun("run-1")))._tag, "RunNotFound")
      assert.strictEqual((yield* Effect.flip(store.loadWorkflow(RunStore.versionOf(pipeline("Hello")))))._tag, "WorkflowNotFound")
    }).pipe(Effect.provide(layer())))

  it.effect("an invalid workflow is refused before anything is written", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const cyclic: Workflow.Workflow = {
        id: "cyclic",
        blocks: [{ id: "a", type: "value", params: { value: 1 } }, { id: "b", type: "value", params: { value: 2 } }],
        edges: [{ source: "a", target: "b" }, { source: "b", target: "a" }]
      }
      const error = yield* Effect.flip(runs.start(cyclic))
      assert.strictEqual(error._tag, "InvalidWorkflow")
      if (error._tag === "InvalidWorkflow") assert.strictEqual(error.cause._tag, "Cycle")
      const dangling = yield* Effect.flip(runs.plan({ ...cyclic, edges: [{ source: "a", target: "zz" }] }))
      assert.strictEqual(dangling._tag, "InvalidWorkflow")
      assert.strictEqual((yield* Effect.flip(store.getRun("run-1")))._tag, "RunNotFound")
    }).pipe(Effect.provide(layer())))

  it.effect("runFrom re-runs the changed part against the latest run and equals a full run of the edit", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const first = yield* runs.start(pipeline("Hello"), { name: "Ada" })
      yield* runs.wait(first.runId)
      const edited = pipeline("Bonjour")
      const stream = yield* runs.subscribe
      const again = yield* runs.runFrom(edited, { target: "greeting" })
      const events = yield* Stream.runCollect(stream.pipe(Stream.takeUntil((e: RunEvent.RunEvent) => e._tag === "RunFinished")))
      const reused = events.flatMap((e) => e._tag === "NodeReused" ? [[e.node, e.from, e.reasons] as const] : [])
      assert.deepStrictEqual(reused, [["start", first.runId, ["unchanged"]], ["name", first.runId, ["unchanged"]]])
      assert.deepStrictEqual(events.flatMap((e) => e._tag === "NodeStarted" ? [e.node] : []).sort(), ["greet", "greeting", "out"])
      assert.strictEqual(again.mode, "run-from")
      assert.deepStrictEqual([...again.plan.rerun].sort(), ["greet", "greeting", "out"])
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      const incremental = yield* store.snapshot(again.runId)
      assert.strictEqual(incremental.nodes["name"]?.reusedFrom, first.runId)
      assert.strictEqual(incremental.nodes["start"]?.reusedFrom, first.runId)
      assert.isUndefined(incremental.nodes["greet"]?.reusedFrom)
      assert.deepStrictEqual(yield* store.reasons(again.runId), { start: ["unchanged"], name: ["unchanged"] })
      const run = yield* runs.status(again.runId)
      assert.strictEqual(run.sourceRun, first.runId)
      assert.strictEqual(run.target, "greeting")
      const scratch = yield* runs.start(edited, { name: "Ada" })
      yield* runs.wait(scratch.runId)
      assert.deepStrictEqual(outputsOf(incremental.nodes), outputsOf((yield* store.snapshot(scratch.runId)).nodes))
      assert.strictEqual(incremental.nodes["out"]?.output, "Bonjour, Ada")
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.effect("status says what a run-from pruned and which pruned node failed last time, and in which run", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      // `audit` fails, but no observed output (`out`) needs it.
      const audited = (greeting: string): Workflow.Workflow => ({
        ...pipeline(greeting),
        blocks: [...pipeline(greeting).blocks, { id: "audit", type: "fail", params: { message: "audit is down" } }],
        edges: [...pipeline(greeting).edges, { source: "start", target: "audit" }]
      })
      const first = yield* runs.start(audited("Hello"), { name: "Ada" })
      assert.strictEqual(yield* runs.wait(first.runId), "failed")
      assert.isUndefined((yield* runs.status(first.runId)).pruned)
      const again = yield* runs.runFrom(audited("Bonjour"), { target: "greeting" })
      assert.strictEqual(yield* runs.wait(again.runId), "completed")
      const status = yield* runs.status(again.runId)
      assert.deepStrictEqual(status.pruned, { count: 1, failed: [{ node: "audit", run: first.runId }] })
      // A full run of the same workflow fails: the completed run-from is not the whole story.
      const scratch = yield* runs.start(audited("Bonjour"), { name: "Ada" })
      assert.strictEqual(yield* runs.wait(scratch.runId), "failed")
      // Run from the run-from: `audit` has no record there, and its failure is still reported.
      const third = yield* runs.runFrom(audited("Hi"), { target: "greeting", run: again.runId })
      assert.strictEqual(yield* runs.wait(third.runId), "completed")
      assert.deepStrictEqual((yield* runs.status(third.runId)).pruned, { count: 1, failed: [{ node: "audit", run: first.runId }] })
    }).pipe(Effect.provide(layer())))

  it.effect("runFrom a named run plans against that run; without any prior run it is a full run", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const fresh = yield* runs.runFrom(pipeline("Hi"), { target: "greet", input: { name: "Bo" } })
      assert.strictEqual(fresh.mode, "full")
      yield* runs.wait(fresh.runId)
      const later = yield* runs.start(pipeline("Hi"), { name: "Cy" })
      yield* runs.wait(later.runId)
      const fromFirst = yield* runs.runFrom(pipeline("Hi"), { target: "out", run: fresh.runId })
      assert.deepStrictEqual([...fromFirst.plan.rerun], ["out"])
      yield* runs.wait(fromFirst.runId)
      const store = yield* RunStore.RunStore
      assert.strictEqual((yield* store.snapshot(fromFirst.runId)).nodes["out"]?.output, "Hi, Bo")
      const unknown = yield* Effect.flip(runs.runFrom(pipeline("Hi"), { target: "nope" }))
      assert.strictEqual(unknown._tag, "PlanFailed")
      const missingRun = yield* Effect.flip(runs.runFrom(pipeline("Hi"), { target: "out", run: "run-99" }))
      assert.strictEqual(missingRun._tag, "RunNotFound")
    }).pipe(Effect.provide(layer())))

  it.effect("runFrom to a block without a target re-runs only what changed against the prior run; neither is MissingTarget", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const first = yield* runs.start(pipeline("Hello"), { name: "Ada" })
      yield* runs.wait(first.runId)
      const same = yield* runs.plan(pipeline("Hello"), { to: "greet" })
      assert.deepStrictEqual([same.mode, same.target, same.rerun, same.pruned], ["run-from", undefined, [], []])
      const edited = yield* runs.runFrom(pipeline("Salut"), { to: "greet" })
      assert.deepStrictEqual([edited.mode, [...edited.plan.rerun], [...edited.plan.pruned]], ["run-from", ["greeting", "greet"], ["out"]])
      yield* runs.wait(edited.runId)
      const run = yield* store.getRun(edited.runId)
      assert.deepStrictEqual([run.target, run.to, run.sourceRun], [undefined, "greet", first.runId])
      const nodes = (yield* store.snapshot(edited.runId)).nodes
      assert.deepStrictEqual([nodes["greet"]?.output, nodes["name"]?.reusedFrom, nodes["out"]], ["Salut, Ada", first.runId, undefined])
      // A pending run of the kind a worker claims is planned again against its source run.
      const queued = yield* store.createRun({ version: RunStore.versionOf(pipeline("Salut")), mode: "run-from", sourceRun: first.runId, to: "greet", input: { name: "Ada" }, at: 1 })
      const stored = Result.getOrThrow(yield* Wake.plan(store, queued))
      assert.deepStrictEqual([stored.plan.mode, stored.plan.rerun, stored.plan.pruned], ["run-from", ["greeting", "greet"], ["out"]])
      const neither = yield* Effect.flip(runs.runFrom(pipeline("Salut"), {}))
      assert.deepStrictEqual([neither._tag, neither._tag === "PlanFailed" ? neither.cause._tag : undefined], ["PlanFailed", "MissingTarget"])
      const planNeither = yield* Effect.flip(runs.plan(pipeline("Salut"), { run: first.runId }))
      assert.deepStrictEqual([planNeither._tag, planNeither._tag === "PlanFailed" ? planNeither.cause._tag : undefined], ["PlanFailed", "MissingTarget"])
    }).pipe(Effect.provide(layer())))

  it.effect("plan is a dry run: it writes nothing", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const store = yield* RunStore.RunStore
      const first = yield* runs.start(pipeline("Hello"), { name: "Ada" })
      yield* runs.wait(first.runId)
      const full = yield* runs.plan(pipeline("Hello"), { input: { name: "Ada" } })
      assert.strictEqual(full.mode, "full")
      const planned = yield* runs.plan(pipeline("Salut"), { target: "greeting" })
      assert.strictEqual(planned.mode, "run-from")
      assert.deepStrictEqual([...planned.rerun].sort(), ["greet", "greeting", "out"])
      assert.strictEqual((yield* Effect.flip(store.getRun("run-2")))._tag, "RunNotFound")
      assert.strictEqual((yield* Effect.flip(store.loadWorkflow(RunStore.versionOf(pipeline("Salut")))))._tag, "WorkflowNotFound")
    }).pipe(Effect.provide(layer())))

  it.effect("events(runId) streams one run's events and ends with its RunFinished", () => {
    const gate = Deferred.makeUnsafe<void>()
    return Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const wf: Workflow.Workflow = { id: "gated", blocks: [{ id: "g", type: "gate" }], edges: [] }
      const { runId } = yield* runs.start(wf)
      const other = yield* runs.start(pipeline("Hello"), { name: "Ada" })
      const collecting = yield* Effect.forkChild(Stream.runCollect(runs.events(runId)))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      yield* runs.wait(other.runId)
      yield* Deferred.succeed(gate, undefined)
      const events: ReadonlyArray<RunEvent.RunEvent> = yield* Fiber.join(collecting)
      assert.deepStrictEqual(events.map((e) => e._tag), ["NodeCompleted", "StatusChanged", "RunFinished"])
      assert.isTrue(events.every((e) => e.runId === runId))
      assert.deepStrictEqual(yield* Stream.runCollect(runs.events(runId)), [])
      assert.deepStrictEqual(yield* Stream.runCollect(runs.events("run-404")), [])
    }).pipe(Effect.provide(layer({ gate: () => Effect.as(Deferred.await(gate), null) })))
  })

  it.effect("cancel of a finished run is refused; of an unknown run is RunNotFound", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(pipeline("Hello"), { name: "Ada" })
      yield* runs.wait(runId)
      assert.strictEqual((yield* Effect.flip(runs.cancel(runId)))._tag, "IllegalTransition")
      assert.strictEqual((yield* Effect.flip(runs.cancel("run-404")))._tag, "RunNotFound")
      const store = yield* RunStore.RunStore
      assert.isTrue(Option.isSome(yield* store.latestSnapshot("pipeline")))
    }).pipe(Effect.provide(layer())))
})
