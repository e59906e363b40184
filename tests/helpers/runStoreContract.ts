/**
 * The `RunStore` contract: every store (memory, Postgres, PGlite) must pass these tests.
 *
 * Call `runStoreContract("memory", RunStore.layerMemory)` from a test file; the layer is built
 * afresh for every test, so each test starts from an empty store.
 */
import { assert, describe, it } from "@effect/vitest"
import { Snapshot, type Workflow } from "@ripple/core"
import { Handler, RunStatus, Runs, RunStore, Wake } from "@ripple/runtime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { storableJson, unstorableText } from "../arbitraries/json.ts"

type Json = Workflow.Json

const workflow: Workflow.Workflow = {
  id: "contract",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "pick", type: "condition", params: { left: { $ref: "input.n" }, op: "gt", right: 1 } },
    { id: "yes", type: "value", params: { value: "big" } },
    { id: "no", type: "value", params: { value: "small" } }
  ],
  edges: [
    { source: "start", target: "pick" },
    { source: "pick", target: "yes", handle: "true" },
    { source: "pick", target: "no", handle: "false" }
  ],
  inputs: { n: { type: "number" } }
}

const fingerprints = { definition: "0000000000000001", inputs: "0000000000000002" }

/** A started-then-completed journal for the contract workflow (pick → yes, no skipped). */
const completedJournal = (at: number): ReadonlyArray<RunStore.JournalEntry> => [
  { _tag: "Started", node: "start", attempt: 1, inputs: {}, fingerprints, at },
  {
    _tag: "Completed",
    node: "start",
    attempt: 1,
    inputs: {},
    output: { n: 2 },
    decision: undefined,
    fingerprints: { ...fingerprints, output: "0000000000000003" },
    startedAt: at,
    at: at + 1
  },
  {
    _tag: "Completed",
    node: "pick",
    attempt: 2,
    inputs: { left: 2, op: "gt", right: 1 },
    output: true,
    decision: "true",
    fingerprints: { ...fingerprints, output: "0000000000000004" },
    startedAt: at + 1,
    at: at + 2
  },
  { _tag: "Skipped", node: "no", fingerprints: { definition: "0000000000000005" }, at: at + 2 }
]

const startRun = (
  store: RunStore.RunStore["Service"],
  options: { readonly trigger?: string; readonly at?: number; readonly workflow?: Workflow.Workflow } = {}
) =>
  Effect.gen(function*() {
    const version = yield* store.saveWorkflow(options.workflow ?? workflow)
    return yield* store.createRun({
      version,
      mode: "full",
      trigger: options.trigger,
      input: { n: 2 },
      at: options.at ?? 1_000
    })
  })

// Creates child runs of `workflow` in `store`: `childOf(parentRun, parentNode, at)`.
const childOfIn = (store: RunStore.RunStore["Service"]) =>
  Effect.map(store.saveWorkflow(workflow), (version) => (parentRun: string, parentNode: string, at: number) =>
    store.createRun({ version, mode: "full", input: {}, at, parentRun, parentNode }))

const finish = (store: RunStore.RunStore["Service"], runId: string, outcome: "completed" | "failed", at = 2_000) =>
  Effect.gen(function*() {
    yield* store.transition(runId, { type: "START" }, at)
    if (outcome === "failed") yield* store.transition(runId, { type: "NODE_FAILED", node: "pick", at, error: "boom" }, at)
    return yield* store.transition(runId, { type: "ALL_BRANCHES_FINISHED" }, at)
  })

// What no store can hold, and the JSON path at which it sits inside `value`.
const unstorablePlaced: fc.Arbitrary<{ readonly value: Json; readonly path: ReadonlyArray<string | number> }> = fc.tuple(
  unstorableText,
  storableJson,
  fc.constantFrom("value", "key", "nested")
).map(([bad, ok, where]) =>
  where === "value"
    ? { value: bad, path: [] }
    : where === "key"
    ? { value: { ok, [bad]: 1 }, path: [] }
    : { value: { ok: [ok, { deep: bad }] }, path: ["ok", 1, "deep"] }
)

// `parse` outputs the value its `text` param holds as JSON text (an escaped NUL is storable text).
const refusals: Workflow.Workflow = {
  id: "refusals",
  blocks: [
    { id: "start", type: "trigger" },
    { id: "w", type: "wait", params: { signal: "go" } },
    { id: "parse", type: "parse", params: { text: { $ref: "input.text" } } }
  ],
  edges: [{ source: "start", target: "w" }, { source: "start", target: "parse" }],
  inputs: { text: { type: "string" }, extra: { type: "json", required: false } }
}

const refusalHandlers = Handler.layer({ parse: (ctx) => Effect.sync(() => JSON.parse(String(ctx.inputs["text"])) as Json) })

/**
 * Registers the contract tests for one store implementation.
 */
export const runStoreContract = <E>(name: string, layer: Layer.Layer<RunStore.RunStore, E>): void => {
  const test = (title: string, body: Effect.Effect<void, unknown, RunStore.RunStore>) =>
    it.effect(title, () => Effect.provide(body, layer))

  describe(`RunStore contract: ${name}`, () => {
    test("workflow versions are content-addressed and read back equal", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const v1 = yield* store.saveWorkflow(workflow)
      const again = yield* store.saveWorkflow(JSON.parse(JSON.stringify(workflow)))
      const other = yield* store.saveWorkflow({ ...workflow, blocks: workflow.blocks.slice(0, 1), edges: [] })
      assert.strictEqual(v1, again)
      assert.notStrictEqual(v1, other)
      assert.strictEqual(v1, RunStore.versionOf(workflow))
      assert.deepStrictEqual(yield* store.loadWorkflow(v1), workflow)
      const missing = yield* Effect.flip(store.loadWorkflow("ffffffffffffffff"))
      assert.strictEqual(missing._tag, "WorkflowNotFound")
    }))

    test("a new run is pending with what it was created with", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store, { trigger: "start" })
      const read = yield* store.getRun(run.id)
      assert.strictEqual(read.status, "pending")
      assert.strictEqual(read.workflowId, "contract")
      assert.strictEqual(read.mode, "full")
      assert.strictEqual(read.trigger, "start")
      assert.deepStrictEqual(read.input, { n: 2 })
      assert.strictEqual(read.createdAt, 1_000)
      const second = yield* startRun(store)
      assert.notStrictEqual(second.id, run.id)
      const missing = yield* Effect.flip(store.getRun("no-such-run"))
      assert.strictEqual(missing._tag, "RunNotFound")
    }))

    test("what a run's plan pruned is kept with the run, through its end and in its snapshot", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const source = yield* startRun(store)
      yield* finish(store, source.id, "failed")
      const pruned: Snapshot.Pruned = { count: 3, failed: [{ node: "no", run: source.id }, { node: "yes@1.0" }] }
      const run = yield* store.createRun({
        version: source.version,
        mode: "run-from",
        sourceRun: source.id,
        target: "pick",
        input: { n: 2 },
        at: 3_000,
        pruned
      })
      assert.deepStrictEqual(run.pruned, pruned)
      yield* store.transition(run.id, { type: "START" }, 3_100)
      yield* store.finish(run.id, { type: "ALL_BRANCHES_FINISHED" }, { finalization: "completed", messages: [] }, 3_200)
      const read = yield* store.getRun(run.id)
      assert.strictEqual(read.status, "completed")
      assert.deepStrictEqual(read.pruned, pruned)
      const snapshot = yield* store.snapshot(run.id)
      assert.deepStrictEqual(snapshot.pruned, pruned)
      assert.deepStrictEqual(Result.map(Snapshot.decode(JSON.parse(JSON.stringify(snapshot))), (s) => s.pruned), Result.succeed(pruned))
      // A run whose plan pruned nothing has no report, and its snapshot none either.
      assert.isUndefined((yield* store.getRun(source.id)).pruned)
      assert.isFalse(Object.hasOwn(yield* store.snapshot(source.id), "pruned"))
    }))

    test("a run created queued is queued from its first row; one created without is not", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const version = yield* store.saveWorkflow(workflow)
      const queued = yield* store.createRun({ version, mode: "full", input: { n: 2 }, at: 1_000, queued: true })
      assert.isTrue(queued.queued)
      assert.isTrue((yield* store.getRun(queued.id)).queued)
      const plain = yield* store.createRun({ version, mode: "full", input: { n: 2 }, at: 1_000 })
      assert.notStrictEqual((yield* store.getRun(plain.id)).queued, true)
    }))

    test("a run to a block keeps its destination, and a pending one is planned again with it", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const version = yield* store.saveWorkflow(workflow)
      const run = yield* store.createRun({ version, mode: "full", to: "pick", input: { n: 2 }, at: 1_000 })
      const read = yield* store.getRun(run.id)
      assert.strictEqual(read.to, "pick")
      // What a worker claiming the pending run plans: only what the destination needs.
      const stored = Result.getOrThrow(yield* Wake.plan(store, read))
      assert.deepStrictEqual([stored.plan.to, stored.plan.rerun, stored.plan.pruned], ["pick", ["start", "pick"], ["yes", "no"]])
      assert.isUndefined((yield* startRun(store)).to)
    }))

    test("a run keeps its pins (key order too), and a pending one is planned again with them", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const version = yield* store.saveWorkflow(workflow)
      const pins = { yes: { z: 1, a: [2, "x"] }, no: null }
      const run = yield* store.createRun({ version, mode: "full", pins, input: { n: 2 }, at: 1_000 })
      const read = yield* store.getRun(run.id)
      assert.strictEqual(JSON.stringify(read.pins), JSON.stringify(pins))
      const stored = Result.getOrThrow(yield* Wake.plan(store, read))
      assert.strictEqual(JSON.stringify(stored.plan.pins), JSON.stringify(pins))
      assert.isUndefined((yield* startRun(store)).pins)
      // The journal marks a pinned completion: its reasons say so.
      yield* store.transition(run.id, { type: "START" }, 1_100)
      const [start, startDone, pick] = completedJournal(1_200)
      yield* store.journal(run.id, [start!, startDone!, pick!, {
        _tag: "Completed",
        node: "yes",
        attempt: 1,
        inputs: { value: "big" },
        output: pins.yes,
        decision: undefined,
        fingerprints: { ...fingerprints, output: "0000000000000006" },
        startedAt: 1_203,
        at: 1_204,
        pinned: true
      }])
      assert.deepStrictEqual(yield* store.reasons(run.id), { yes: ["pinned"] })
      assert.strictEqual(JSON.stringify((yield* store.snapshot(run.id)).nodes["yes"]?.output), JSON.stringify(pins.yes))
    }))

    test("creating a run of an unsaved version fails and creates nothing", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const error = yield* Effect.flip(store.createRun({ version: "ffffffffffffffff", mode: "full", input: {}, at: 0 }))
      assert.strictEqual(error._tag, "WorkflowNotFound")
    }))

    test("transitions follow RunStatus; an illegal one writes nothing", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const started = yield* store.transition(run.id, { type: "START" }, 1_500)
      assert.deepStrictEqual(started, { from: "pending", to: "running" })
      const before = yield* store.getRun(run.id)
      const again = yield* Effect.flip(store.transition(run.id, { type: "START" }, 1_600))
      assert.strictEqual(again._tag, "IllegalTransition")
      if (again._tag === "IllegalTransition") {
        assert.strictEqual(again.from, "running")
        assert.strictEqual(again.reason, "already-started")
      }
      assert.deepStrictEqual(yield* store.getRun(run.id), before)
      const done = yield* store.transition(run.id, { type: "ALL_BRANCHES_FINISHED" }, 1_700)
      assert.deepStrictEqual(done, { from: "running", to: "completed" })
      const terminal = yield* Effect.exit(store.transition(run.id, { type: "CANCEL" }, 1_800))
      assert.isTrue(Exit.isFailure(terminal))
      const after = yield* store.getRun(run.id)
      assert.strictEqual(after.status, "completed")
      assert.strictEqual(after.updatedAt, 1_700)
      assert.isTrue(Result.isSuccess(RunStatus.restore(after.machine)))
    }))

    test("a node failure settles the run as failed", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const settled = yield* finish(store, run.id, "failed")
      assert.strictEqual(settled.to, "failed")
      const missing = yield* Effect.flip(store.transition("no-such-run", { type: "START" }, 0))
      assert.strictEqual(missing._tag, "RunNotFound")
    }))

    test("finish writes the final event and the diagnostics together; a refused event writes neither", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      yield* store.transition(run.id, { type: "START" }, 1)
      const diagnostics = {
        lastStarted: { node: "pick", at: 2 },
        lastCompleted: { node: "yes", at: 3 },
        finalization: "completed" as const,
        messages: ["done"]
      }
      assert.deepStrictEqual(yield* store.finish(run.id, { type: "ALL_BRANCHES_FINISHED" }, diagnostics, 4), { from: "running", to: "completed" })
      const finished = yield* store.getRun(run.id)
      assert.strictEqual(finished.status, "completed")
      assert.strictEqual(finished.updatedAt, 4)
      assert.deepStrictEqual(finished.diagnostics, diagnostics)
      // Completed is final: the cancel is refused and its diagnostics are not written.
      const refused = yield* Effect.flip(store.finish(run.id, { type: "CANCEL" }, { finalization: "cancelled", messages: ["late"] }, 5))
      assert.strictEqual(refused._tag, "IllegalTransition")
      assert.deepStrictEqual((yield* store.getRun(run.id)).diagnostics, diagnostics)
      // The latest finished run of the workflow, as after `transition`.
      const latest = yield* store.latestSnapshot(workflow.id)
      assert.strictEqual(Option.getOrThrow(latest).runId, run.id)
      const missing = yield* Effect.flip(store.finish("no-such-run", { type: "CANCEL" }, { messages: [] }, 1))
      assert.strictEqual(missing._tag, "RunNotFound")
    }))

    test("journal batches become node records of a valid snapshot", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store, { trigger: "start" })
      yield* store.transition(run.id, { type: "START" }, 1_000)
      yield* store.journal(run.id, completedJournal(1_000))
      yield* store.setDiagnostics(run.id, {
        lastStarted: { node: "pick", at: 1_001 },
        lastCompleted: { node: "pick", at: 1_002 },
        finalization: "completed",
        messages: ["ok"]
      }, 1_003)
      const snapshot = yield* store.snapshot(run.id)
      assert.isTrue(Result.isSuccess(Snapshot.decode(JSON.parse(JSON.stringify(snapshot)))))
      assert.deepStrictEqual(JSON.parse(JSON.stringify(snapshot)), snapshot)
      assert.strictEqual(snapshot.runId, run.id)
      assert.strictEqual(snapshot.trigger, "start")
      assert.deepStrictEqual(snapshot.workflow, workflow)
      assert.deepStrictEqual(snapshot.input, { n: 2 })
      assert.strictEqual(snapshot.status, "running")
      assert.deepStrictEqual(snapshot.nodes["start"], {
        status: "completed",
        inputs: {},
        output: { n: 2 },
        fingerprints: { ...fingerprints, output: "0000000000000003" },
        attempt: 1,
        startedAt: 1_000,
        finishedAt: 1_001
      })
      assert.strictEqual(snapshot.nodes["pick"]?.decision, "true")
      assert.strictEqual(snapshot.nodes["pick"]?.attempt, 2)
      assert.deepStrictEqual(snapshot.nodes["no"], {
        status: "skipped",
        fingerprints: { definition: "0000000000000005" },
        attempt: 0,
        finishedAt: 1_002
      })
      assert.isUndefined(snapshot.nodes["yes"])
      assert.deepStrictEqual(snapshot.diagnostics.messages, ["ok"])
      assert.strictEqual(snapshot.diagnostics.finalization, "completed")
      assert.deepStrictEqual(snapshot.diagnostics.lastCompleted, { node: "pick", at: 1_002 })
    }))

    test("a started node reads as running until it completes or fails", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      yield* store.journal(run.id, [{ _tag: "Started", node: "yes", attempt: 1, inputs: { value: "big" }, fingerprints, at: 5 }])
      assert.strictEqual((yield* store.snapshot(run.id)).nodes["yes"]?.status, "running")
      yield* store.journal(run.id, [{
        _tag: "Failed",
        node: "yes",
        attempt: 3,
        inputs: { value: "big" },
        error: { message: "boom", retryable: true },
        fingerprints,
        startedAt: 5,
        at: 9
      }])
      const record = (yield* store.snapshot(run.id)).nodes["yes"]
      assert.strictEqual(record?.status, "failed")
      assert.deepStrictEqual(record?.error, { message: "boom", retryable: true })
      assert.strictEqual(record?.attempt, 3)
      const missing = yield* Effect.flip(store.journal("no-such-run", []))
      assert.strictEqual(missing._tag, "RunNotFound")
    }))

    test("reused records keep the run that produced them, with reasons", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const first = yield* startRun(store)
      yield* store.journal(first.id, completedJournal(1_000))
      const source = yield* store.snapshot(first.id)
      const second = yield* startRun(store)
      yield* store.journal(second.id, [
        { _tag: "Reused", node: "start", from: first.id, record: source.nodes["start"]!, reasons: ["unchanged"] }
      ])
      const third = yield* startRun(store)
      const copied = (yield* store.snapshot(second.id)).nodes["start"]!
      yield* store.journal(third.id, [{ _tag: "Reused", node: "start", from: second.id, record: copied, reasons: [] }])
      assert.deepStrictEqual(copied, { ...source.nodes["start"]!, reusedFrom: first.id })
      assert.strictEqual((yield* store.snapshot(third.id)).nodes["start"]?.reusedFrom, first.id)
      assert.deepStrictEqual(yield* store.reasons(second.id), { start: ["unchanged"] })
      assert.deepStrictEqual(yield* store.reasons(first.id), {})
    }))

    test("the latest snapshot is per workflow and trigger, among finished runs", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      assert.isTrue(Option.isNone(yield* store.latestSnapshot("contract")))
      const a = yield* startRun(store, { at: 1 })
      const b = yield* startRun(store, { at: 2 })
      const c = yield* startRun(store, { at: 3 })
      const byTrigger = yield* startRun(store, { at: 4, trigger: "start" })
      // b finishes before a, but "latest" follows creation order.
      yield* finish(store, b.id, "failed")
      yield* finish(store, a.id, "completed")
      yield* store.transition(c.id, { type: "START" }, 3)
      yield* finish(store, byTrigger.id, "completed")
      const latest = yield* store.latestSnapshot("contract")
      assert.strictEqual(Option.getOrUndefined(latest)?.runId, b.id)
      assert.strictEqual(Option.getOrUndefined(latest)?.status, "failed")
      assert.strictEqual(Option.getOrUndefined(yield* store.latestSnapshot("contract", "start"))?.runId, byTrigger.id)
      assert.isTrue(Option.isNone(yield* store.latestSnapshot("another-workflow")))
    }))
    test("deliveries are kept once per kind and name until a Consumed entry takes the oldest", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      assert.deepStrictEqual(yield* store.deliveries(run.id), [])
      assert.isTrue(yield* store.deliver(run.id, { kind: "signal", name: "go", payload: { n: 1 }, at: 5 }))
      // A duplicate is refused and changes nothing; the same name of another kind is another delivery.
      assert.isFalse(yield* store.deliver(run.id, { kind: "signal", name: "go", payload: { n: 2 }, at: 6 }))
      assert.isTrue(yield* store.deliver(run.id, { kind: "approval", name: "go", payload: { approved: true }, at: 7 }))
      assert.isTrue(yield* store.deliver(run.id, { kind: "signal", name: "other", payload: null, at: 8 }))
      assert.deepStrictEqual(yield* store.deliveries(run.id), [
        { kind: "signal", name: "go", payload: { n: 1 }, at: 5 },
        { kind: "approval", name: "go", payload: { approved: true }, at: 7 },
        { kind: "signal", name: "other", payload: null, at: 8 }
      ])
      yield* store.journal(run.id, [
        { _tag: "Consumed", kind: "signal", name: "go" },
        { _tag: "Completed", node: "start", attempt: 1, inputs: {}, output: { n: 1 }, decision: undefined, fingerprints, startedAt: 9, at: 9 }
      ])
      assert.deepStrictEqual((yield* store.deliveries(run.id)).map((d) => `${d.kind}:${d.name}`), ["approval:go", "signal:other"])
      assert.isTrue(yield* store.deliver(run.id, { kind: "signal", name: "go", payload: 3, at: 10 }))
      const missing = yield* Effect.flip(store.deliver("no-such-run", { kind: "signal", name: "go", payload: null, at: 1 }))
      assert.strictEqual(missing._tag, "RunNotFound")
    }))

    test("Waiting, Paused and Scope entries make the snapshot's waits, pauses, loops and parallels", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const loop = { iterations: 2, items: ["a", "b"], outputs: [{ x: 1 }, { x: 2 }], done: true }
      const parallel = { count: 2, outputs: [{ y: 1 }, null], done: false }
      yield* store.journal(run.id, [
        { _tag: "Waiting", node: "pick", inputs: { signal: "go" }, fingerprints, wait: { kind: "signal", signal: "go" }, at: 10 },
        { _tag: "Waiting", node: "yes", inputs: { ms: 5 }, fingerprints, wait: { kind: "timer", wakeAt: 99 }, at: 11 },
        { _tag: "Paused", node: "no", inputs: {}, fingerprints, reason: "manager", at: 12 },
        { _tag: "Scope", scope: "each", scopeOf: { _tag: "loop", loop } },
        { _tag: "Scope", scope: "fan@1", scopeOf: { _tag: "parallel", parallel } }
      ])
      const snapshot = yield* store.snapshot(run.id)
      assert.strictEqual(snapshot.nodes["pick"]?.status, "waiting")
      assert.strictEqual(snapshot.nodes["no"]?.status, "paused")
      assert.deepStrictEqual([...snapshot.waits].sort((a, b) => a.since - b.since), [
        { node: "pick", kind: "signal", signal: "go", since: 10 },
        { node: "yes", kind: "timer", wakeAt: 99, since: 11 }
      ])
      assert.deepStrictEqual(snapshot.pauses, [{ node: "no", reason: "manager", since: 12 }])
      assert.deepStrictEqual(snapshot.loops, { each: loop })
      assert.deepStrictEqual(snapshot.parallels, { "fan@1": parallel })
      assert.isTrue(Result.isSuccess(Snapshot.decode(JSON.parse(JSON.stringify(snapshot)))))
      // A later write for a node ends its wait or pause.
      yield* store.journal(run.id, [
        { _tag: "Completed", node: "pick", attempt: 1, inputs: {}, output: 1, decision: undefined, fingerprints, startedAt: 13, at: 13 },
        { _tag: "Skipped", node: "no", fingerprints, at: 13 }
      ])
      const later = yield* store.snapshot(run.id)
      assert.deepStrictEqual(later.waits.map((w) => w.node), ["yes"])
      assert.deepStrictEqual(later.pauses, [])
    }))

    test("wakeable lists dormant runs with a due sleeper or an awaited delivery", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const sleeper = yield* startRun(store)
      const waiter = yield* startRun(store)
      const dormant = (runId: string, reason: RunStatus.DormantReason) =>
        Effect.gen(function*() {
          yield* store.transition(runId, { type: "START" }, 1)
          yield* store.transition(runId, { type: "BRANCH_DORMANT", branch: reason.node, reason }, 2)
        })
      yield* dormant(sleeper.id, { _tag: "Sleep", node: "yes", until: 100 })
      yield* dormant(waiter.id, { _tag: "Signal", node: "pick", signal: "go" })
      assert.strictEqual((yield* store.getRun(sleeper.id)).status, "suspended")
      assert.deepStrictEqual(yield* store.wakeable(99), [])
      assert.deepStrictEqual(yield* store.wakeable(100), [{ runId: sleeper.id, status: "suspended", wakeAt: 100 }])
      assert.isTrue(yield* store.deliver(waiter.id, { kind: "signal", name: "other", payload: null, at: 3 }))
      assert.deepStrictEqual((yield* store.wakeable(99)).map((w) => w.runId), [])
      assert.isTrue(yield* store.deliver(waiter.id, { kind: "signal", name: "go", payload: null, at: 4 }))
      assert.deepStrictEqual((yield* store.wakeable(99)).map((w) => w.runId), [waiter.id])
      assert.deepStrictEqual((yield* store.wakeable(100)).map((w) => w.runId).sort(), [sleeper.id, waiter.id].sort())
    }))
    test("a paused run is not wakeable by a due sleeper or a kept signal, which only wake a suspended run, but by its approval", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      yield* store.transition(run.id, { type: "START" }, 1)
      yield* store.transition(run.id, { type: "BRANCH_STARTED" }, 1)
      yield* store.transition(run.id, { type: "BRANCH_STARTED" }, 1)
      for (const reason of [
        { _tag: "Sleep", node: "nap", until: 50 },
        { _tag: "Signal", node: "gate", signal: "go" },
        { _tag: "Approval", node: "review" }
      ] satisfies ReadonlyArray<RunStatus.DormantReason>) {
        yield* store.transition(run.id, { type: "BRANCH_DORMANT", branch: reason.node, reason }, 2)
      }
      assert.strictEqual((yield* store.getRun(run.id)).status, "paused")
      assert.isTrue(yield* store.deliver(run.id, { kind: "signal", name: "go", payload: null, at: 3 }))
      // RunStatus takes neither TIMER_FIRED nor SIGNAL in `paused`: a worker claiming the run for them
      // could not wake it, and would claim it again at every poll.
      assert.deepStrictEqual(yield* store.wakeable(100), [])
      assert.isTrue(yield* store.deliver(run.id, { kind: "approval", name: "review", payload: null, at: 4 }))
      assert.deepStrictEqual((yield* store.wakeable(100)).map((w) => w.runId), [run.id])
    }))
    test("a kept unpause makes a run paused by a pause request wakeable, and a newer pause request drops it", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const approving = yield* startRun(store)
      const unpause: RunStore.Delivery = { kind: "unpause", name: "", payload: null, at: 3 }
      yield* store.transition(run.id, { type: "START" }, 1)
      yield* store.transition(approving.id, { type: "START" }, 1)
      assert.isTrue(yield* store.deliver(run.id, unpause))
      assert.isFalse(yield* store.deliver(run.id, { ...unpause, at: 4 }))
      assert.isTrue(yield* store.deliver(approving.id, unpause))
      // Running: nothing to wake yet.
      assert.deepStrictEqual(yield* store.wakeable(10), [])
      const pause: RunStatus.DormantReason = { _tag: "Pause", node: "p", reason: "paused" }
      yield* store.transition(run.id, { type: "BRANCH_DORMANT", branch: "p", reason: pause }, 5)
      // Paused at an approval only: an unpause does not wake it.
      yield* store.transition(approving.id, { type: "BRANCH_DORMANT", branch: "a", reason: { _tag: "Approval", node: "a" } }, 5)
      assert.strictEqual((yield* store.getRun(approving.id)).status, "paused")
      assert.deepStrictEqual(yield* store.wakeable(10), [{ runId: run.id, status: "paused", wakeAt: null }])
      // A newer pause request (of the run running again) drops the kept unpause.
      yield* store.transition(run.id, { type: "UNPAUSE", node: "p", payload: null }, 6)
      assert.isTrue(yield* store.requestPause(run.id, 7))
      assert.deepStrictEqual(yield* store.deliveries(run.id), [])
      yield* store.transition(run.id, { type: "BRANCH_DORMANT", branch: "p", reason: pause }, 8)
      assert.strictEqual((yield* store.getRun(run.id)).status, "paused")
      assert.deepStrictEqual(yield* store.wakeable(10), [])
      assert.deepStrictEqual(yield* store.deliveries(approving.id), [unpause])
    }))
    test("a pause request is acknowledged by every journal write until the run settles paused, and kept while it sleeps", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const other = yield* startRun(store)
      const started: RunStore.JournalEntry = { _tag: "Started", node: "start", attempt: 1, inputs: {}, fingerprints, at: 2 }
      assert.deepStrictEqual(yield* store.journal(run.id, [started]), { pauseRequested: false, cancelRequested: false })
      assert.isTrue(yield* store.requestPause(run.id, 5))
      // Asking again keeps the first request.
      assert.isTrue(yield* store.requestPause(run.id, 6))
      assert.strictEqual((yield* store.getRun(run.id)).pauseRequestedAt, 5)
      assert.deepStrictEqual(yield* store.journal(run.id, [started]), { pauseRequested: true, cancelRequested: false })
      assert.deepStrictEqual(yield* store.journal(run.id, []), { pauseRequested: true, cancelRequested: false })
      assert.deepStrictEqual(yield* store.journal(other.id, [started]), { pauseRequested: false, cancelRequested: false })
      assert.isUndefined((yield* store.getRun(other.id)).pauseRequestedAt)
      // Suspended (a sleeper): the request stays, for when it wakes.
      yield* store.transition(run.id, { type: "START" }, 7)
      yield* store.transition(run.id, { type: "BRANCH_DORMANT", branch: "yes", reason: { _tag: "Sleep", node: "yes", until: 50 } }, 8)
      assert.strictEqual((yield* store.getRun(run.id)).status, "suspended")
      assert.strictEqual((yield* store.getRun(run.id)).pauseRequestedAt, 5)
      yield* store.transition(run.id, { type: "TIMER_FIRED", at: 50 }, 50)
      assert.deepStrictEqual(yield* store.journal(run.id, [started]), { pauseRequested: true, cancelRequested: false })
      // Settling paused consumes it; a paused run takes no request.
      yield* store.transition(run.id, { type: "BRANCH_DORMANT", branch: "no", reason: { _tag: "Pause", node: "no", reason: "paused" } }, 51)
      const paused = yield* store.getRun(run.id)
      assert.strictEqual(paused.status, "paused")
      assert.isUndefined(paused.pauseRequestedAt)
      assert.deepStrictEqual(yield* store.journal(run.id, []), { pauseRequested: false, cancelRequested: false })
      assert.isFalse(yield* store.requestPause(run.id, 52))
      assert.isUndefined((yield* store.getRun(run.id)).pauseRequestedAt)
      // Ending a run consumes a request too, and an ended run takes none.
      assert.isTrue(yield* store.requestPause(other.id, 60))
      yield* store.transition(other.id, { type: "START" }, 61)
      yield* store.transition(other.id, { type: "ALL_BRANCHES_FINISHED" }, 62)
      const completed = yield* store.getRun(other.id)
      assert.strictEqual(completed.status, "completed")
      assert.isUndefined(completed.pauseRequestedAt)
      assert.isFalse(yield* store.requestPause(other.id, 63))
      const missing = yield* Effect.flip(store.requestPause("no-such-run", 1))
      assert.strictEqual(missing._tag, "RunNotFound")
    }))
    test("the compensation log keeps its planned order; planning again appends only new nodes; outcomes are recorded", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const other = yield* startRun(store)
      assert.deepStrictEqual(yield* store.compensations(run.id), [])
      yield* store.planCompensations(run.id, ["yes", "pick@2", "no"], 10)
      yield* store.compensated(run.id, "yes", { status: "completed" }, 11)
      yield* store.planCompensations(run.id, ["no", "pick", "yes"], 12)
      yield* store.compensated(run.id, "pick@2", { status: "failed", error: "refund refused" }, 13)
      assert.deepStrictEqual(yield* store.compensations(run.id), [
        { node: "yes", status: "completed", error: undefined, at: 11 },
        { node: "pick@2", status: "failed", error: "refund refused", at: 13 },
        { node: "no", status: "pending", error: undefined, at: 10 },
        { node: "pick", status: "pending", error: undefined, at: 12 }
      ])
      assert.deepStrictEqual(yield* store.compensations(other.id), [])
      const missing = yield* Effect.flip(store.compensations("no-such-run"))
      assert.strictEqual(missing._tag, "RunNotFound")
      const unplanned = yield* Effect.flip(store.planCompensations("no-such-run", ["a"], 1))
      assert.strictEqual(unplanned._tag, "RunNotFound")
    }))
    test("a lease is granted to one owner until it expires or is released; each grant is the next generation", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const a = yield* store.acquire(run.id, "a", { ttlMs: 100, at: 10 })
      assert.deepStrictEqual(a, { runId: run.id, owner: "a", generation: 1, expiresAt: 110 })
      // Held: refused for anyone, the holder included, naming who holds it until when.
      for (const owner of ["b", "a"]) {
        const held = yield* Effect.flip(store.acquire(run.id, owner, { ttlMs: 100, at: 109 }))
        assert.deepStrictEqual(held, new RunStore.LeaseHeld({ runId: run.id, owner: "a", expiresAt: 110 }))
      }
      // Renewed (even after its expiry, while nobody took it): held longer, with the run's requests.
      const renewed = yield* store.renew(a, { ttlMs: 100, at: 150 })
      assert.deepStrictEqual(renewed, { lease: { ...a, expiresAt: 250 }, ack: { pauseRequested: false, cancelRequested: false } })
      assert.strictEqual((yield* Effect.flip(store.acquire(run.id, "b", { ttlMs: 100, at: 249 })))._tag, "LeaseHeld")
      // Expired: the next owner gets the next generation; the stale holder can neither renew nor release it.
      const b = yield* store.acquire(run.id, "b", { ttlMs: 100, at: 250 })
      assert.deepStrictEqual(b, { runId: run.id, owner: "b", generation: 2, expiresAt: 350 })
      assert.deepStrictEqual(yield* Effect.flip(store.renew(a, { ttlMs: 100, at: 251 })), new RunStore.LeaseLost({ runId: run.id, owner: "a", generation: 1 }))
      yield* store.release(a)
      assert.strictEqual((yield* Effect.flip(store.acquire(run.id, "c", { ttlMs: 100, at: 252 })))._tag, "LeaseHeld")
      // Released by its holder: free at once.
      yield* store.release(b)
      assert.deepStrictEqual(yield* store.acquire(run.id, "c", { ttlMs: 100, at: 253 }), { runId: run.id, owner: "c", generation: 3, expiresAt: 353 })
      assert.strictEqual((yield* Effect.flip(store.acquire("no-such-run", "a", { ttlMs: 1, at: 1 })))._tag, "RunNotFound")
      assert.strictEqual((yield* Effect.flip(store.renew({ ...a, runId: "no-such-run" }, { ttlMs: 1, at: 1 })))._tag, "RunNotFound")
    }))

    test("a renewal under a lease its owner has taken again (the next generation) is refused with LeaseLost and extends nothing", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      // A process whose lease expired unrenewed takes the run again: its first execution, still
      // running somewhere in it, holds the stale generation and must not keep the run by renewing.
      const first = yield* store.acquire(run.id, "a", { ttlMs: 10, at: 0 })
      const again = yield* store.acquire(run.id, "a", { ttlMs: 10, at: 10 })
      assert.deepStrictEqual([again.owner, again.generation], ["a", first.generation + 1])
      assert.deepStrictEqual(
        yield* Effect.flip(store.renew(first, { ttlMs: 100, at: 11 })),
        new RunStore.LeaseLost({ runId: run.id, owner: "a", generation: first.generation })
      )
      // The lease taken again still ends when it did: another owner takes it then.
      assert.strictEqual((yield* Effect.flip(store.acquire(run.id, "b", { ttlMs: 10, at: 19 })))._tag, "LeaseHeld")
      const b = yield* store.acquire(run.id, "b", { ttlMs: 10, at: 20 })
      assert.strictEqual(b.generation, again.generation + 1)
    }))

    test("a fenced store writes only while its lease is held; every write under a lease taken by another owner, taken again by its owner or released is refused with LeaseLost, typed, writing nothing", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const stale = yield* store.acquire(run.id, "a", { ttlMs: 10, at: 0 })
      const started = (at: number): RunStore.JournalEntry => ({ _tag: "Started", node: "start", attempt: 1, inputs: {}, fingerprints, at })
      const a = store.fenced(stale)
      assert.deepStrictEqual(yield* a.journal(run.id, [started(1)]), { pauseRequested: false, cancelRequested: false })
      yield* a.transition(run.id, { type: "START" }, 2)
      // Every fenced write of an execution, each one the machine would accept from `running`.
      const writes = (fenced: RunStore.RunStore["Service"], at: number): ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> => [
        ["journal", fenced.journal(run.id, [started(at)])],
        ["transition", fenced.transition(run.id, { type: "ALL_BRANCHES_FINISHED" }, at)],
        ["finish", fenced.finish(run.id, { type: "CANCEL" }, { messages: ["stale"] }, at)],
        ["setDiagnostics", fenced.setDiagnostics(run.id, { messages: ["stale"] }, at)],
        ["planCompensations", fenced.planCompensations(run.id, ["start"], at)],
        ["compensated", fenced.compensated(run.id, "start", { status: "completed" }, at)]
      ]
      // Each write under `lease` fails with its `LeaseLost` (a failure, not a defect) and leaves the run as it was.
      const refusedAll = (lease: RunStore.Lease, at: number) =>
        Effect.gen(function*() {
          const before = { run: yield* store.getRun(run.id), snapshot: yield* store.snapshot(run.id), compensations: yield* store.compensations(run.id) }
          for (const [name, write] of writes(store.fenced(lease), at)) {
            const exit = yield* Effect.exit(write)
            assert.isTrue(Exit.isFailure(exit), `${name} under generation ${lease.generation}`)
            if (Exit.isFailure(exit)) {
              assert.deepStrictEqual(
                Result.getOrUndefined(Cause.findError(exit.cause)),
                new RunStore.LeaseLost({ runId: run.id, owner: lease.owner, generation: lease.generation }),
                `${name} under generation ${lease.generation}: ${Cause.pretty(exit.cause)}`
              )
            }
          }
          const after = { run: yield* store.getRun(run.id), snapshot: yield* store.snapshot(run.id), compensations: yield* store.compensations(run.id) }
          assert.deepStrictEqual(after, before, `the writes under generation ${lease.generation} changed nothing`)
        })
      // Taken by another owner once expired.
      const b = yield* store.acquire(run.id, "b", { ttlMs: 10, at: 10 })
      yield* refusedAll(stale, 11)
      // The current holder writes; reads through a stale fenced store still work.
      yield* store.fenced(b).journal(run.id, [started(12)])
      assert.strictEqual((yield* a.snapshot(run.id)).nodes["start"]?.startedAt, 12)
      // Taken again by its owner (the next generation): the previous generation of the same owner is stale.
      const again = yield* store.acquire(run.id, "b", { ttlMs: 10, at: 30 })
      assert.deepStrictEqual([again.owner, again.generation], ["b", b.generation + 1])
      yield* refusedAll(b, 31)
      yield* refusedAll(stale, 31)
      // Released: nobody holds it, and its last holder's writes are refused too.
      yield* store.release(again)
      yield* refusedAll(again, 32)
      const last = yield* store.acquire(run.id, "c", { ttlMs: 10, at: 33 })
      yield* store.fenced(last).transition(run.id, { type: "ALL_BRANCHES_FINISHED" }, 34)
      assert.strictEqual((yield* a.getRun(run.id)).status, "completed")
    }))

    test("a fenced transition or finish whose event the run's machine refuses is refused with LeaseLost, not IllegalTransition, once the lease is lost", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const stale = yield* store.acquire(run.id, "a", { ttlMs: 10, at: 0 })
      yield* store.fenced(stale).transition(run.id, { type: "START" }, 1)
      // Another owner takes the run once the lease expired and ends it: no event is accepted any more.
      const b = yield* store.acquire(run.id, "b", { ttlMs: 10, at: 10 })
      yield* store.fenced(b).transition(run.id, { type: "ALL_BRANCHES_FINISHED" }, 11)
      const lost = new RunStore.LeaseLost({ runId: run.id, owner: "a", generation: stale.generation })
      const signal: RunStatus.Event = { type: "SIGNAL", name: "go", payload: null }
      // `write` fails with `lost`, and the run is as it was.
      const refused = (what: string, write: Effect.Effect<unknown, unknown>) =>
        Effect.gen(function*() {
          const before = yield* store.getRun(run.id)
          const exit = yield* Effect.exit(write)
          assert.deepStrictEqual(Exit.isFailure(exit) ? Result.getOrUndefined(Cause.findError(exit.cause)) : exit, lost, what)
          assert.deepStrictEqual(yield* store.getRun(run.id), before, `${what}: nothing written`)
        })
      yield* refused("transition, the lease held by another", store.fenced(stale).transition(run.id, signal, 12))
      yield* refused("finish, the lease held by another", store.fenced(stale).finish(run.id, { type: "CANCEL" }, { messages: ["stale"] }, 12))
      yield* store.release(b)
      yield* refused("transition, the lease released", store.fenced(stale).transition(run.id, { type: "ALL_BRANCHES_FINISHED" }, 13))
      // Its holder is told what the machine refuses.
      const c = yield* store.acquire(run.id, "c", { ttlMs: 10, at: 14 })
      assert.strictEqual((yield* Effect.flip(store.fenced(c).transition(run.id, signal, 15)))._tag, "IllegalTransition")
    }))

    test("concurrent acquires grant at most one lease; an expired lease is taken with the next generation; stale holders cannot write", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const owners = ["a", "b", "c", "d"]
      const round = fc.record({
        advance: fc.integer({ min: 0, max: 30 }),
        ttlMs: fc.integer({ min: 1, max: 40 }),
        contenders: fc.subarray(owners, { minLength: 1 }),
        release: fc.boolean()
      })
      yield* Effect.promise(() =>
        fc.assert(fc.asyncProperty(fc.array(round, { minLength: 1, maxLength: 8 }), (rounds) =>
          Effect.runPromise(Effect.gen(function*() {
            const run = yield* startRun(store)
            let holder: RunStore.Lease | undefined
            let generation = 0
            let at = 0
            const stale: Array<RunStore.Lease> = []
            for (const r of rounds) {
              at += r.advance
              const results = yield* Effect.all(
                r.contenders.map((owner) => Effect.result(store.acquire(run.id, owner, { ttlMs: r.ttlMs, at }))),
                { concurrency: "unbounded" }
              )
              const granted = results.filter(Result.isSuccess).map((g) => g.success)
              const live = holder !== undefined && holder.expiresAt > at
              assert.strictEqual(granted.length, live ? 0 : 1)
              for (const refused of results.filter(Result.isFailure)) {
                assert.strictEqual(refused.failure._tag, "LeaseHeld")
                if (refused.failure._tag === "LeaseHeld") {
                  const winner = live ? holder! : granted[0]!
                  assert.strictEqual(refused.failure.owner, winner.owner)
                  assert.strictEqual(refused.failure.expiresAt, winner.expiresAt)
                }
              }
              if (!live) {
                const lease = granted[0]!
                assert.strictEqual(lease.generation, ++generation)
                assert.strictEqual(lease.expiresAt, at + r.ttlMs)
                if (holder !== undefined) stale.push(holder)
                holder = lease
              }
              for (const old of stale) {
                const write = yield* Effect.exit(store.fenced(old).journal(run.id, []))
                assert.isTrue(Exit.isFailure(write) && Result.getOrUndefined(Cause.findError(write.cause)) instanceof RunStore.LeaseLost)
              }
              yield* store.fenced(holder!).journal(run.id, [])
              if (r.release) {
                yield* store.release(holder!)
                stale.push(holder!)
                holder = undefined
              }
            }
          }))), { numRuns: 40 })
      )
    }))

    test("a cancel request is acknowledged by journal writes and renewals until the run ends; an ended run takes none", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const run = yield* startRun(store)
      const other = yield* startRun(store)
      const lease = yield* store.acquire(run.id, "a", { ttlMs: 100, at: 1 })
      const fenced = store.fenced(lease)
      yield* fenced.transition(run.id, { type: "START" }, 2)
      assert.isTrue(yield* store.requestCancel(run.id, 5))
      assert.isTrue(yield* store.requestCancel(run.id, 6))
      assert.strictEqual((yield* store.getRun(run.id)).cancelRequestedAt, 5)
      assert.deepStrictEqual(yield* fenced.journal(run.id, []), { pauseRequested: false, cancelRequested: true })
      assert.deepStrictEqual((yield* store.renew(lease, { ttlMs: 100, at: 7 })).ack, { pauseRequested: false, cancelRequested: true })
      assert.deepStrictEqual(yield* store.journal(other.id, []), { pauseRequested: false, cancelRequested: false })
      // Ending the run consumes it; an ended run takes none.
      yield* fenced.finish(run.id, { type: "CANCEL" }, { messages: ["cancelled"] }, 8)
      const cancelled = yield* store.getRun(run.id)
      assert.strictEqual(cancelled.status, "cancelled")
      assert.isUndefined(cancelled.cancelRequestedAt)
      assert.isFalse(yield* store.requestCancel(run.id, 9))
      // A cancelled run acknowledges a cancel whoever cancelled it.
      assert.deepStrictEqual(yield* store.journal(run.id, []), { pauseRequested: false, cancelRequested: true })
      assert.strictEqual((yield* Effect.flip(store.requestCancel("no-such-run", 1)))._tag, "RunNotFound")
    }))

    test("a run settling cancelled asks its unfinished descendants to cancel in the same write; ended ones and other runs are left alone", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const parent = yield* startRun(store)
      const childOf = yield* childOfIn(store)
      const running = yield* childOf(parent.id, "a", 1_001)
      const suspended = yield* childOf(parent.id, "b", 1_002)
      const done = yield* childOf(parent.id, "c", 1_003)
      const grandchild = yield* childOf(suspended.id, "a", 1_004)
      const stranger = yield* startRun(store)
      for (const run of [parent, running, suspended, done, grandchild, stranger]) yield* store.transition(run.id, { type: "START" }, 1_010)
      yield* store.transition(suspended.id, { type: "BRANCH_DORMANT", branch: "a", reason: { _tag: "Signal", node: "a", signal: "go" } }, 1_011)
      yield* store.transition(done.id, { type: "ALL_BRANCHES_FINISHED" }, 1_012)
      assert.strictEqual((yield* store.getRun(suspended.id)).status, "suspended")
      // Nothing is asked before the parent settles: a pause is no cancel.
      yield* store.requestPause(parent.id, 1_013)
      assert.isUndefined((yield* store.getRun(running.id)).cancelRequestedAt)
      const lease = yield* store.acquire(parent.id, "owner", { ttlMs: 1_000, at: 1_014 })
      yield* store.fenced(lease).finish(parent.id, { type: "CANCEL" }, { messages: ["cancelled"] }, 1_020)
      const requests = (runId: string) => Effect.map(store.getRun(runId), (run) => [run.status, run.cancelRequestedAt])
      assert.deepStrictEqual(yield* requests(running.id), ["running", 1_020])
      assert.deepStrictEqual(yield* requests(suspended.id), ["suspended", 1_020])
      assert.deepStrictEqual(yield* requests(grandchild.id), ["running", 1_020])
      assert.deepStrictEqual(yield* requests(done.id), ["completed", undefined])
      assert.deepStrictEqual(yield* requests(stranger.id), ["running", undefined])
      // Their owners hear it with their next journal write or renewal.
      assert.deepStrictEqual(yield* store.journal(running.id, []), { pauseRequested: false, cancelRequested: true })
    }))

    test("a cancel request on a run is recorded on its unfinished descendants in the same write; an ended run's request asks none", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const parent = yield* startRun(store)
      const childOf = yield* childOfIn(store)
      const child = yield* childOf(parent.id, "a", 1_001)
      const done = yield* childOf(parent.id, "b", 1_002)
      const grandchild = yield* childOf(child.id, "a", 1_003)
      const ended = yield* startRun(store)
      const endedChild = yield* childOf(ended.id, "a", 1_004)
      for (const run of [parent, child, done, grandchild, ended]) yield* store.transition(run.id, { type: "START" }, 1_010)
      yield* store.transition(done.id, { type: "ALL_BRANCHES_FINISHED" }, 1_011)
      yield* store.transition(ended.id, { type: "ALL_BRANCHES_FINISHED" }, 1_012)
      assert.isTrue(yield* store.requestCancel(parent.id, 1_020))
      const requested = (runId: string) => Effect.map(store.getRun(runId), (run) => run.cancelRequestedAt)
      assert.deepStrictEqual(
        [yield* requested(parent.id), yield* requested(child.id), yield* requested(grandchild.id), yield* requested(done.id)],
        [1_020, 1_020, 1_020, undefined]
      )
      // Asking again keeps the first request, on the descendants too.
      assert.isTrue(yield* store.requestCancel(parent.id, 1_030))
      assert.strictEqual(yield* requested(grandchild.id), 1_020)
      assert.isFalse(yield* store.requestCancel(ended.id, 1_040))
      assert.isUndefined(yield* requested(endedChild.id))
    }))

    test("a child run records its parent run and node; children lists them oldest first", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const parent = yield* startRun(store)
      const version = yield* store.saveWorkflow(workflow)
      const first = yield* store.createRun({ version, mode: "full", input: {}, at: 1_001, parentRun: parent.id, parentNode: "pick@1" })
      const second = yield* store.createRun({ version, mode: "full", input: {}, at: 1_002, parentRun: parent.id, parentNode: "yes" })
      const read = yield* store.getRun(first.id)
      assert.strictEqual(read.parentRun, parent.id)
      assert.strictEqual(read.parentNode, "pick@1")
      assert.isUndefined((yield* store.getRun(parent.id)).parentRun)
      yield* store.transition(second.id, { type: "START" }, 1_003)
      assert.deepStrictEqual(yield* store.children(parent.id), [
        { runId: first.id, node: "pick@1", status: "pending" },
        { runId: second.id, node: "yes", status: "running" }
      ])
      assert.deepStrictEqual(yield* store.children(first.id), [])
      const missing = yield* Effect.flip(store.children("no-such-run"))
      assert.strictEqual(missing._tag, "RunNotFound")
    }))

    // DESIGN.md, "Values round-trip": compared as JSON text, so key order counts. A number reads
    // back as the double `JSON.stringify` wrote (-0 as 0: its text is "0" on every store).
    test("values read back as written, key order included: run input, node inputs and output, copies, scopes, payloads", Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const version = yield* store.saveWorkflow(workflow)
      const same = (read: Json | undefined, written: Json, what: string) =>
        assert.strictEqual(JSON.stringify(read), JSON.stringify(written), what)
      const roundTrip = (value: Json) =>
        Effect.gen(function*() {
          const input = { n: value }
          const run = yield* store.createRun({ version, mode: "full", input, at: 1 })
          same((yield* store.getRun(run.id)).input, input, "run input")
          yield* store.journal(run.id, [
            {
              _tag: "Completed",
              node: "yes",
              attempt: 1,
              inputs: { value },
              output: value,
              decision: undefined,
              fingerprints: { ...fingerprints, output: "0000000000000003" },
              startedAt: 1,
              at: 2
            },
            { _tag: "Scope", scope: "each", scopeOf: { _tag: "loop", loop: { iterations: 1, items: [value], outputs: [{ yes: value }], done: true } } }
          ])
          assert.isTrue(yield* store.deliver(run.id, { kind: "signal", name: "go", payload: value, at: 3 }))
          const snapshot = yield* store.snapshot(run.id)
          same(snapshot.input, input, "snapshot input")
          same(snapshot.nodes["yes"]?.inputs, { value }, "node inputs")
          same(snapshot.nodes["yes"]?.output, value, "node output")
          same(snapshot.loops["each"] as unknown as Json, { iterations: 1, items: [value], outputs: [{ yes: value }], done: true }, "loop scope")
          same((yield* store.deliveries(run.id))[0]?.payload, value, "signal payload")
          // A reused record copied from the run that produced it.
          const copy = yield* store.createRun({ version, mode: "run-from", sourceRun: run.id, input, at: 4 })
          yield* store.journal(copy.id, [{ _tag: "Reused", node: "yes", from: run.id, record: snapshot.nodes["yes"]!, reasons: ["unchanged"] }])
          same((yield* store.snapshot(copy.id)).nodes["yes"]?.output, value, "copied output")
        })
      yield* Effect.promise(() =>
        fc.assert(fc.asyncProperty(storableJson, (value) => Effect.runPromise(roundTrip(value))), { numRuns: 100 })
      )
    }))

    // DESIGN.md: what a store cannot hold (NUL, lone surrogates) is refused at the boundary for
    // every store, with the same typed error naming the JSON path, and nothing of it is written.
    it.effect("NUL and lone surrogates are refused with UnstorableValue naming the path: run input, handler output, signal payload and name, workflow", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const refused = ({ path, value }: { readonly value: Json; readonly path: ReadonlyArray<string | number> }) =>
          Effect.gen(function*() {
            const input = yield* Effect.flip(runs.start(refusals, { text: "null", extra: value }))
            assert.strictEqual(input._tag, "InvalidInput")
            if (input._tag === "InvalidInput") {
              assert.strictEqual(input.cause._tag, "UnstorableValue")
              assert.deepStrictEqual(input.cause.path, ["extra", ...path])
            }
            const badParams = yield* Effect.flip(runs.start({ ...refusals, variables: { v: value } }, { text: "null" }))
            assert.strictEqual(badParams._tag, "InvalidWorkflow")
            if (badParams._tag === "InvalidWorkflow") {
              assert.strictEqual(badParams.cause._tag, "UnstorableValue")
              assert.deepStrictEqual(badParams.cause.path, ["variables", "v", ...path])
            }
            // The output holds the value; the input held it only as (storable) JSON text.
            const started = yield* runs.start(refusals, { text: JSON.stringify(value) })
            yield* runs.wait(started.runId)
            const parse = (yield* store.snapshot(started.runId)).nodes["parse"]
            assert.strictEqual(parse?.status, "failed")
            assert.isFalse(parse !== undefined && Object.hasOwn(parse, "output"))
            assert.include(parse?.error?.message, `at ${JSON.stringify(path)}: no store can hold it`)
            assert.isFalse(parse?.error?.retryable)
            for (const [name, payload, at] of [["go", { p: value }, ["payload", "p", ...path]], [value, null, ["name"]]] as const) {
              if (typeof name !== "string") continue
              const signal = yield* Effect.flip(runs.signal(started.runId, name, payload))
              assert.strictEqual(signal._tag, "InvalidPayload")
              if (signal._tag === "InvalidPayload") assert.deepStrictEqual(signal.cause.path, at)
            }
            assert.deepStrictEqual(yield* store.deliveries(started.runId), [])
          })
        yield* Effect.promise(() =>
          fc.assert(fc.asyncProperty(unstorablePlaced, (placed) => Effect.runPromise(refused(placed))), { numRuns: 15 })
        )
      }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(layer), Layer.provideMerge(refusalHandlers)))))

    // A run id is stored like any text: one holding what no store can hold names no run, on every
    // store alike (not a database error).
    it.effect("a run id holding NUL or a lone surrogate names no run: RunNotFound from the store and from every Runs request", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const existing = yield* runs.start(refusals, { text: "null" })
        const requests = (id: string) => [
          ["getRun", store.getRun(id)],
          ["snapshot", store.snapshot(id)],
          ["deliveries", store.deliveries(id)],
          ["deliver", store.deliver(id, { kind: "signal", name: "go", payload: null, at: 1 })],
          ["requestPause", store.requestPause(id, 1)],
          ["withdrawPause", store.withdrawPause(id)],
          ["requestCancel", store.requestCancel(id, 1)],
          ["acquire", store.acquire(id, "owner", { ttlMs: 1_000, at: 1 })],
          ["reasons", store.reasons(id)],
          ["children", store.children(id)],
          ["compensations", store.compensations(id)],
          ["status", runs.status(id)],
          ["outputs", runs.outputs(id)],
          ["signal", runs.signal(id, "go", null)],
          ["approve", runs.approve(id, "w", null)],
          ["pause", runs.pause(id)],
          ["unpause", runs.unpause(id)],
          ["resume", runs.resume(id)],
          ["cancel", runs.cancel(id)]
        ] as const
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.string({ maxLength: 4 }), unstorableText, fc.string({ maxLength: 4 }), (before, bad, after) =>
              Effect.runPromise(Effect.gen(function*() {
                const id = `${before}${existing.runId}${bad}${after}`
                for (const [name, request] of requests(id)) {
                  const error = yield* Effect.flip(request as Effect.Effect<unknown, { readonly _tag: string; readonly runId?: string }>)
                  assert.strictEqual(error._tag, "RunNotFound", `${name}(${JSON.stringify(id)}): ${String(error)}`)
                  assert.strictEqual(error.runId, id, name)
                }
              }))),
            { numRuns: 6 }
          )
        )
        const run = yield* store.getRun(existing.runId)
        assert.isUndefined(run.pauseRequestedAt)
        assert.isUndefined(run.cancelRequestedAt)
        assert.deepStrictEqual(yield* store.deliveries(existing.runId), [])
      }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(layer), Layer.provideMerge(refusalHandlers)))))

    it.effect("Runs.start and Runs.runFrom to a block execute only what the destination needs, and record it", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const first = yield* runs.start(workflow, { n: 2 }, { to: "pick" })
        assert.strictEqual(yield* runs.wait(first.runId), "completed")
        assert.deepStrictEqual((yield* runs.nodes(first.runId)).map((v) => v.node).sort(), ["pick", "start"])
        assert.strictEqual((yield* store.getRun(first.runId)).to, "pick")
        const second = yield* runs.runFrom(workflow, { target: "pick", to: "yes", run: first.runId })
        assert.strictEqual(yield* runs.wait(second.runId), "completed")
        const views = (yield* runs.nodes(second.runId)).map((v) => `${v.node}:${v.how}`).sort()
        assert.deepStrictEqual(views, ["pick:executed", "start:reused", "yes:executed"])
        assert.deepStrictEqual(second.plan.pruned, ["no"])
        const refused = yield* Effect.flip(runs.runFrom(workflow, { target: "yes", to: "no" }))
        assert.deepStrictEqual([refused._tag, refused._tag === "PlanFailed" ? refused.cause._tag : undefined], ["PlanFailed", "DestinationNotDownstream"])
      }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(layer), Layer.provideMerge(Handler.layer({}))))))

    it.effect("Runs.runFrom and Runs.plan from a run of another workflow fail with SnapshotOfAnotherWorkflow, not the prior input's error, writing nothing", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const other = yield* runs.start(workflow, { n: 2 })
        assert.strictEqual(yield* runs.wait(other.runId), "completed")
        const before = yield* store.getRun(other.runId)
        // The prior run's input ({ n: 2 }) is not one `refusals` declares: that is not what is wrong.
        const requests: ReadonlyArray<Effect.Effect<unknown, Runs.RunsError>> = [
          runs.runFrom(refusals, { target: "parse", run: other.runId }),
          runs.plan(refusals, { target: "parse", run: other.runId })
        ]
        for (const request of requests) {
          const refused = yield* Effect.flip(request)
          assert.strictEqual(refused._tag, "PlanFailed", String(refused))
          if (refused._tag === "PlanFailed") {
            assert.strictEqual(refused.cause._tag, "SnapshotOfAnotherWorkflow")
            assert.include(refused.cause.message, `belongs to workflow "contract", not "refusals"`)
          }
        }
        assert.deepStrictEqual(yield* store.getRun(other.runId), before)
        assert.isTrue(Option.isNone(yield* store.latestSnapshot("refusals")), "no run of refusals was written")
      }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(layer), Layer.provideMerge(refusalHandlers)))))

    it.effect("Runs.start and Runs.runFrom with pins write the pin instead of executing; a pin equal to the prior output re-runs nothing", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const first = yield* runs.start(workflow, { n: 2 }, { pins: { yes: "pinned" } })
        assert.strictEqual(yield* runs.wait(first.runId), "completed")
        assert.deepStrictEqual(yield* runs.outputs(first.runId), { yes: "pinned", no: null })
        const [yes] = yield* runs.node(first.runId, "yes")
        assert.deepStrictEqual([yes?.how, yes?.reasons, yes?.output], ["pinned", ["pinned"], "pinned"])
        const same = yield* runs.runFrom(workflow, { target: "pick", run: first.runId, pins: { yes: "pinned" } })
        assert.strictEqual(yield* runs.wait(same.runId), "completed")
        assert.deepStrictEqual(same.plan.reasons.get("yes"), [{ _tag: "downstream", root: "pick" }, { _tag: "pinned" }])
        assert.deepStrictEqual(yield* runs.outputs(same.runId), { yes: "pinned", no: null })
        // From a block that does not reach it: the same pin is reused, another one is written.
        const kept = yield* runs.plan(workflow, { target: "no", run: first.runId, pins: { yes: "pinned" } })
        assert.deepStrictEqual([kept.rerun, kept.reused.includes("yes")], [["no"], true])
        const other = yield* runs.plan(workflow, { target: "no", run: first.runId, pins: { yes: "other" } })
        assert.deepStrictEqual([other.rerun, other.reasons.get("yes")], [["yes", "no"], [{ _tag: "pinned" }]])
        const refused = yield* Effect.flip(runs.start(workflow, { n: 2 }, { pins: { pick: true } }))
        assert.deepStrictEqual([refused._tag, refused._tag === "PlanFailed" ? refused.cause._tag : undefined], ["PlanFailed", "InvalidPin"])
      }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(layer), Layer.provideMerge(Handler.layer({}))))))

    // What `ripple show --node` and the studio read back: a run-from's reused node names its source
    // run and the planner's reason, a re-run one its inputs resolved against the reused output.
    it.effect("Runs.outputs and Runs.nodes read a run-from back from the store: outputs, resolved inputs, reused-from and reasons", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const labelled = (label: string): Workflow.Workflow => ({
          ...workflow,
          blocks: [...workflow.blocks, { id: "label", type: "value", params: { value: label } }, {
            id: "out",
            type: "template",
            params: { template: "{{l}}{{n}}", values: { l: { $ref: "blocks.label.output" }, n: { $ref: "input.n" } } }
          }],
          edges: [...workflow.edges, { source: "start", target: "label" }, { source: "label", target: "out" }],
          outputs: ["out", "yes"]
        })
        const first = yield* runs.start(labelled("a"), { n: 2 })
        assert.strictEqual(yield* runs.wait(first.runId), "completed")
        const second = yield* runs.runFrom(labelled("b"), { target: "label" })
        assert.strictEqual(yield* runs.wait(second.runId), "completed")
        assert.deepStrictEqual(yield* runs.outputs(second.runId), { out: "b2", yes: "big" })
        const views = new Map((yield* runs.nodes(second.runId)).map((v) => [v.node, v]))
        const pick = views.get("pick")
        assert.deepStrictEqual([pick?.how, pick?.reusedFrom, pick?.reasons, pick?.decision], ["reused", first.runId, ["unchanged"], "true"])
        const [out] = yield* runs.node(second.runId, "out")
        assert.deepStrictEqual([out?.how, out?.reasons, out?.inputs, out?.attempts], ["executed", ["in the re-run scope"], { template: "{{l}}{{n}}", values: { l: "b", n: 2 } }, 1])
      }).pipe(Effect.provide(Runs.layer().pipe(Layer.provideMerge(layer), Layer.provideMerge(Handler.layer({}))))))
  })
}
