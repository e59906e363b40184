/**
 * `ripple cancel` says how the run ended (`Runs.Cancellation`), in words and under `--format json`,
 * with its exit code: a run nobody executes is cancelled here (exit 0); a run a worker executes
 * (here a `Worker` in this process on the server, the command in-process as another owner) is
 * ended by its owner (`Acknowledged`, exit 0), or, while the owner keeps renewing its lease inside
 * a block it cannot interrupt, left recorded for it (`Unanswered`, exit 3).
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, RunStore } from "@ripple/runtime"
import { SqlRunStore, Worker } from "@ripple/sql"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"
import { waitFor } from "../helpers/workerProcess.ts"
import { example, rippleInProcess, runIdOf, tempDir, type Where, withSchema } from "./ripple.ts"

const workflow: Workflow.Workflow = {
  version: 1,
  id: "held",
  blocks: [{ id: "start", type: "trigger" }, { id: "h", type: "hold" }, { id: "b", type: "value", params: { value: 1 } }],
  edges: [{ source: "start", target: "h" }, { source: "h", target: "b" }]
}

/** Where `ripple` runs: a directory of its own, on the test's schema of the server. */
const commandLine = Effect.gen(function*() {
  const { schema } = yield* TestDatabase.TestDatabase
  const { dir, remove } = tempDir("cancel")
  yield* Effect.addFinalizer(() => Effect.sync(remove))
  return { cwd: dir, db: ["--db", withSchema(TestDatabase.serverUrl(), schema)] } satisfies Where
})

/** `ripple run` of the content pipeline, paused at its approval (exit 3): where it ran, and the run. */
const pausedAtApproval = Effect.gen(function*() {
  const where = yield* commandLine
  const paused = yield* Effect.promise(() => rippleInProcess(where, "run", example("content-pipeline.json")))
  assert.strictEqual(paused.code, 3, paused.stdout + paused.stderr)
  return { where, runId: runIdOf(paused) }
})

/**
 * A worker whose `hold` block announces it started and holds until `release` (`stubborn`: even when
 * the worker interrupts it, as it does a run asked to cancel); the run it executes.
 */
const heldByWorker = (leaseMs: number, stubborn: boolean) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const held = stubborn ? Effect.uninterruptible(Deferred.await(release)) : Deferred.await(release)
    const hold = Handler.layer({ hold: () => Effect.as(Effect.andThen(Deferred.succeed(started, undefined), held), null) })
    yield* Worker.make({ pollMs: 100, leaseMs }).pipe(Effect.provide(hold))
    const runId = yield* Worker.submit(workflow)
    yield* Deferred.await(started)
    const where = yield* commandLine
    const cancel = (...flags: ReadonlyArray<string>) => Effect.promise(() => rippleInProcess(where, "cancel", runId, ...flags))
    return { runId, release: Deferred.succeed(release, undefined), cancel, where }
  })

const stored = Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)

layer(TestDatabase.shared("postgres"), { excludeTestServices: true })("ripple cancel on the server", (it) => {
  it.effect("a run nobody executes: cancelled here, exit 0", () =>
    Effect.gen(function*() {
      const { runId, where } = yield* pausedAtApproval
      const json = yield* Effect.promise(() => rippleInProcess(where, "cancel", runId, "--format", "json"))
      assert.strictEqual(json.code, 0, json.stderr)
      assert.deepStrictEqual(JSON.parse(json.stdout), { runId, before: "paused", status: "cancelled", cancellation: "Cancelled" })
      assert.include(json.stderr, `run ${runId}: paused -> cancelled (cancelled here)`)
    }).pipe(Effect.scoped, Effect.provide(stored)), 60_000)

  it.effect("a run whose owner died: Expired once its lease ran out, cancelled here, exit 0", () =>
    Effect.gen(function*() {
      const { runId, where } = yield* pausedAtApproval
      // A process that took the lease and died: nobody renews it.
      const store = yield* RunStore.RunStore
      yield* store.acquire(runId, "ghost", { at: Date.now(), ttlMs: 1_000 })
      const json = yield* Effect.promise(() => rippleInProcess(where, "cancel", runId, "--format", "json"))
      assert.strictEqual(json.code, 0, json.stderr)
      assert.deepStrictEqual(JSON.parse(json.stdout), { runId, before: "paused", status: "cancelled", cancellation: "Expired", owner: "ghost" })
      assert.include(json.stderr, "(its owner ghost stopped renewing its lease; cancelled here)")
    }).pipe(Effect.scoped, Effect.provide(stored)), 60_000)

  it.effect("a paused run whose canceller went away after recording the request: ripple resume ends it cancelled, nothing resumed", () =>
    Effect.gen(function*() {
      const { runId, where } = yield* pausedAtApproval
      // What `ripple cancel` writes first; its process stopped before it took the lease.
      const store = yield* RunStore.RunStore
      assert.isTrue(yield* store.requestCancel(runId, Date.now()))
      const nodes = Object.keys((yield* store.snapshot(runId)).nodes)
      const resumed = yield* Effect.promise(() => rippleInProcess(where, "resume", runId, "--format", "json"))
      assert.strictEqual(JSON.parse(resumed.stdout).status, "cancelled", resumed.stdout + resumed.stderr)
      // A command that follows a run to its end exits 1 when it ended cancelled, as when it failed
      // (the README's exit table); only `ripple cancel`, whose request it is, exits 0 for it.
      assert.deepStrictEqual([resumed.code, JSON.parse(resumed.stdout).exitCode], [1, 1])
      assert.include(resumed.stderr, `run ${runId} was asked to cancel`)
      assert.strictEqual((yield* store.getRun(runId)).status, "cancelled")
      assert.deepStrictEqual(Object.keys((yield* store.snapshot(runId)).nodes), nodes, "no node of it ran")
    }).pipe(Effect.scoped, Effect.provide(stored)), 60_000)

  it.effect("a dormant run whose cancel is pending: ripple runs and ripple show say so, in text and JSON", () =>
    Effect.gen(function*() {
      const { runId, where } = yield* pausedAtApproval
      // What `ripple cancel` records for a run another process owns, until that process ends it.
      const store = yield* RunStore.RunStore
      const at = Date.now()
      assert.isTrue(yield* store.requestCancel(runId, at))
      const run = (...args: ReadonlyArray<string>) => Effect.promise(() => rippleInProcess(where, ...args))
      const listed = yield* run("runs")
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.match(listed.stdout, new RegExp(`${runId}\\s+content-pipeline\\s+paused, cancel requested\\s`))
      const listedJson = JSON.parse((yield* run("runs", "--format", "json")).stdout)
      assert.deepStrictEqual(listedJson.runs.map((r: { id: string; cancelRequestedAt?: number }) => [r.id, r.cancelRequestedAt]), [[runId, at]])
      const shown = yield* run("show", runId)
      assert.strictEqual(shown.code, 0, shown.stderr)
      assert.include(shown.stdout, `cancel requested ${new Date(at).toISOString()}: not ended yet; \`ripple resume ${runId}\` ends it`)
      assert.strictEqual(JSON.parse((yield* run("show", runId, "--format", "json")).stdout).run.cancelRequestedAt, at)
      // Once the run ended, no request is pending.
      yield* run("resume", runId)
      const ended = yield* run("runs")
      assert.match(ended.stdout, new RegExp(`${runId}\\s+content-pipeline\\s+cancelled\\s`))
      assert.notInclude((yield* run("show", runId)).stdout, "cancel requested")
    }).pipe(Effect.scoped, Effect.provide(stored)), 60_000)

  it.effect("a run whose owner keeps its lease inside a block it cannot stop: Unanswered, exit 3, the request stays recorded", () =>
    Effect.gen(function*() {
      const { cancel, release, runId } = yield* heldByWorker(1_000, true)
      const text = yield* cancel()
      assert.strictEqual(text.code, 3, text.stdout + text.stderr)
      assert.match(text.stdout, new RegExp(`run ${runId} \\(running\\): cancel requested; its owner \\S+ holds its lease`))
      const json = yield* cancel("--format", "json")
      assert.strictEqual(json.code, 3, json.stderr)
      const document = JSON.parse(json.stdout)
      assert.deepStrictEqual([document.runId, document.status, document.cancellation], [runId, "running", "Unanswered"])
      assert.isString(document.owner)
      assert.isNumber(document.waitedUntil)
      const store = yield* RunStore.RunStore
      assert.isDefined((yield* store.getRun(runId)).cancelRequestedAt)
      // Let go, the owner honours the recorded request before its next block.
      yield* release
      yield* waitFor(Effect.map(Effect.orDie(store.getRun(runId)), (run) => run.status === "cancelled"), "the owner to end the run")
      assert.isUndefined((yield* store.snapshot(runId)).nodes["b"])
    }).pipe(Effect.scoped, Effect.provide(stored)), 60_000)

  it.effect("a run whose owner ends it: Acknowledged, exit 0, naming the owner", () =>
    Effect.gen(function*() {
      // A long lease: the owner answers long before it runs out, however loaded the machine.
      const { cancel, release, runId } = yield* heldByWorker(30_000, false)
      const store = yield* RunStore.RunStore
      const asked = yield* Effect.forkChild(cancel("--format", "json"))
      yield* waitFor(Effect.map(Effect.orDie(store.getRun(runId)), (run) => run.cancelRequestedAt !== undefined), "the request")
      yield* release
      const json = yield* Fiber.join(asked)
      assert.strictEqual(json.code, 0, json.stderr)
      const document = JSON.parse(json.stdout)
      assert.deepStrictEqual([document.before, document.status, document.cancellation], ["running", "cancelled", "Acknowledged"])
      assert.include(json.stderr, `running -> cancelled (cancelled by its owner ${document.owner})`)
    }).pipe(Effect.scoped, Effect.provide(stored)), 60_000)
})
