/**
 * Control requests for runs a worker owns.
 *
 * - On PGlite, in one process: a `Worker` and a `Runs` layer with handlers of their own share the
 *   store; `Runs.signal` / `approve` / `unpause` / `resume` of a queued run record the request and
 *   the worker executes what follows, never `Runs`.
 * - On the real server: a `ripple worker` process executes queued runs of
 *   `tests/cli/fixtures/control.mjs`, whose blocks log every execution (pid, run, node) to a file
 *   outside Ripple's transactions, and `ripple signal`, `approve`, `resume` (of a paused and of a
 *   failed run) run as separate processes. No block may be executed by two processes, nor by the
 *   command's process; the command exits 0 saying the owner took the request. `ripple cancel` of a
 *   run the worker is executing returns once the worker stopped it: no block starts after, not even
 *   a retry of a block waiting out its backoff (which then ends the run `cancelled`, not `failed`). Uses the compiled
 *   binary (`packages/cli/dist`, built by `tsc -b`).
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { BlockError, Handler, Runs, RunStore } from "@ripple/runtime"
import { type Database, SqlRunStore, Worker } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { bin, type Result, ripple, spawnRipple, type Where } from "../cli/ripple.ts"
import * as TestDatabase from "../helpers/database.ts"
import { ensureBuilt, root, schemaUrl, spawnWorker, waitFor } from "../helpers/workerProcess.ts"

const fixture = Path.join(root, "tests", "cli", "fixtures", "control.mjs")

interface Execution {
  readonly pid: number
  readonly node: string
}

interface Setting {
  readonly where: Where
  readonly worker: ChildProcess | undefined
  readonly runId: string
  readonly fixed: string
  /** The blocks of the run executed so far, in order, with the process that executed each. */
  readonly executions: () => ReadonlyArray<Execution>
  /** Runs `ripple <args>` as its own process. */
  readonly command: (...args: ReadonlyArray<string>) => Effect.Effect<Result>
  /** Starts the worker process (when the test started without one). */
  readonly startWorker: Effect.Effect<ChildProcess, never, Scope.Scope>
  readonly statusIs: (status: string) => Effect.Effect<void>
}

type Requirements = SqlClient.SqlClient | Database.Database | SqlRunStore.SqlRunStore | Scope.Scope

const ok = (result: Result) => assert.strictEqual(result.code, 0, `exit ${result.code}\n${result.stdout}\n${result.stderr}`)

// Every node of `nodes` executed exactly once, all of them (and nothing else) by the worker.
const onceByWorker = (executions: ReadonlyArray<Execution>, worker: ChildProcess, nodes: ReadonlyArray<string>) => {
  for (const node of nodes) {
    assert.strictEqual(executions.filter((e) => e.node === node).length, 1, `${node}: ${JSON.stringify(executions)}`)
  }
  assert.deepStrictEqual(executions.filter((e) => e.pid !== worker.pid), [], "executed outside the worker")
}

/** What the test decides for the blocks: whether `flaky` ones are fixed, which `held` ones may end. */
interface Fixed {
  ok: boolean
  readonly opened: Array<string>
}

// Each execution as "<who> <node>": who is the worker or `Runs`, each with its own handlers.
const recording = (who: string, log: Array<string>, fixed: Fixed) =>
  Handler.layer({
    step: (ctx) => Effect.as(Effect.andThen(Effect.sync(() => log.push(`${who} ${ctx.node}`)), Effect.sleep(20)), ctx.node),
    held: (ctx) =>
      Effect.gen(function*() {
        log.push(`${who} ${ctx.node}`)
        while (!fixed.opened.includes(ctx.node)) yield* Effect.sleep(10)
        return ctx.node
      }),
    flaky: (ctx) =>
      Effect.andThen(
        Effect.sync(() => log.push(`${who} ${ctx.node}`)),
        fixed.ok ? Effect.succeed(ctx.node) : Effect.fail(BlockError.permanent("not fixed yet"))
      )
  })

const chainOf = (id: string, blocks: ReadonlyArray<Workflow.Block>): Workflow.Workflow => ({
  version: 1,
  id,
  blocks: [...blocks],
  edges: blocks.slice(1).map((block, i) => ({ source: blocks[i]!.id, target: block.id }))
})
const step = (id: string): Workflow.Block => ({ id, type: "step" })

layer(TestDatabase.shared("pglite"), { excludeTestServices: true })("control requests in the process of a worker's runs (PGlite)", (it) => {
  const test = (
    name: string,
    workflow: Workflow.Workflow,
    body: (
      runs: Runs.Runs["Service"],
      runId: string,
      fixed: Fixed
    ) => Effect.Effect<void, unknown, RunStore.RunStore | SqlRunStore.SqlRunStore>,
    expected: ReadonlyArray<string>
  ) =>
    it.effect(name, () =>
      Effect.gen(function*() {
        const log: Array<string> = []
        const fixed: Fixed = { ok: false, opened: [] }
        yield* Worker.make({ pollMs: 100, leaseMs: 2_000 }).pipe(Effect.provide(recording("worker", log, fixed)))
        const runs = Context.get(yield* Layer.build(Runs.layer().pipe(Layer.provide(recording("runs", log, fixed)))), Runs.Runs)
        const runId = yield* Worker.submit(workflow)
        yield* body(runs, runId, fixed)
        assert.deepStrictEqual(log, expected)
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))
      ), 60_000)

  const statusIs = (runId: string, status: string) =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* waitFor(Effect.map(Effect.orDie(store.getRun(runId)), (run) => run.status === status), `run ${runId} to be ${status}`)
    })

  // The worker takes the request: the run moves on from `from` and ends completed.
  const handedOver = (runs: Runs.Runs["Service"], runId: string, from: RunStore.Run) =>
    Effect.gen(function*() {
      const handover = yield* runs.handover(runId, {
        taken: (run) => run.status !== from.status || run.updatedAt !== from.updatedAt,
        timeout: Duration.seconds(30),
        onWaiting: () => Effect.void
      })
      assert.isTrue(handover.taken)
      assert.strictEqual(handover.run.status, "completed")
    })

  test("signal", chainOf("c-wait", [step("a"), { id: "w", type: "wait", params: { signal: "go" } }, step("b")]), (runs, runId) =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* statusIs(runId, "suspended")
      const before = yield* store.getRun(runId)
      assert.isTrue(yield* runs.signal(runId, "go"))
      yield* handedOver(runs, runId, before)
    }), ["worker a", "worker b"])

  test("approve", chainOf("c-approval", [step("a"), { id: "gate", type: "approval" }, step("b")]), (runs, runId) =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* statusIs(runId, "paused")
      const before = yield* store.getRun(runId)
      assert.isTrue(yield* runs.approve(runId, "gate"))
      yield* handedOver(runs, runId, before)
    }), ["worker a", "worker b"])

  test("unpause", chainOf("c-pause", [step("a"), { id: "w", type: "wait", params: { signal: "go" } }, step("b"), step("c")]), (runs, runId) =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* statusIs(runId, "suspended")
      // Asked to pause while it waits: once signalled, it parks before `b`.
      assert.isTrue(yield* store.requestPause(runId, Date.now()))
      assert.isTrue(yield* runs.signal(runId, "go"))
      yield* statusIs(runId, "paused")
      const status = yield* runs.unpause(runId)
      assert.strictEqual(status, "running")
      yield* handedOver(runs, runId, yield* store.getRun(runId))
    }), ["worker a", "worker b", "worker c"])

  // `g → b` beside `h → q`: `q` is parked while `g` still runs.
  const forked: Workflow.Workflow = {
    version: 1,
    id: "c-forked",
    blocks: [{ id: "g", type: "held" }, { id: "h", type: "held" }, step("b"), step("q")],
    edges: [{ source: "g", target: "b" }, { source: "h", target: "q" }]
  }
  test("unpause of a run that has not settled paused yet", forked, (runs, runId, fixed) =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      const nodeIs = (node: string, status: string) =>
        waitFor(Effect.map(Effect.orDie(store.snapshot(runId)), (snapshot) => snapshot.nodes[node]?.status === status), `${node} to be ${status}`)
      yield* nodeIs("h", "running")
      assert.strictEqual(yield* runs.pause(runId), "running")
      fixed.opened.push("h")
      yield* nodeIs("q", "paused")
      // Kept: the worker takes it once the run settles `paused` (after `g` ends and `b` parks).
      assert.strictEqual(yield* runs.unpause(runId), "running")
      fixed.opened.push("g")
      yield* statusIs(runId, "completed")
    }), ["worker g", "worker h", "worker b", "worker q"])

  test("resume", chainOf("c-flaky", [step("a"), { id: "f", type: "flaky" }, step("b")]), (runs, runId, fixed) =>
    Effect.gen(function*() {
      const store = yield* RunStore.RunStore
      yield* statusIs(runId, "failed")
      fixed.ok = true
      const resumed = yield* runs.resume(runId)
      assert.isTrue("owner" in resumed)
      yield* handedOver(runs, runId, yield* store.getRun(runId))
    }), ["worker a", "worker f", "worker f", "worker b"])
})

layer(TestDatabase.shared("postgres"), { excludeTestServices: true })("control commands from a second process", (it) => {
  const test = (
    name: string,
    shape: "wait" | "approval" | "flaky" | "held" | "retrying",
    withWorker: boolean,
    body: (setting: Setting) => Effect.Effect<void, unknown, Requirements>
  ) =>
    it.effect(name, () =>
      Effect.gen(function*() {
        yield* ensureBuilt([bin])
        const { schema } = yield* TestDatabase.TestDatabase
        const { store } = yield* SqlRunStore.SqlRunStore
        const url = schemaUrl(schema)
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-control-"))),
          (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
        )
        const log = Path.join(dir, "executions.log")
        Fs.writeFileSync(log, "")
        const env = { RIPPLE_CONTROL_LOG: log, RIPPLE_CONTROL_FIXED: Path.join(dir, "fixed"), RIPPLE_CONTROL_WORKFLOW: shape }
        const where: Where = { cwd: dir, db: ["--db", url], env }
        const command = (...args: ReadonlyArray<string>) => Effect.promise(() => ripple(where, ...args))
        const startWorker = spawnWorker(bin, url, env, { args: ["worker", "--handlers", fixture, "--db", url], ready: "waiting for runs" })
        const worker = withWorker ? yield* startWorker : undefined
        const queued = yield* command("run", fixture, "--queue")
        ok(queued)
        const runId = /^run (\S+) queued/m.exec(queued.stdout)![1]!
        yield* body({
          where,
          worker,
          runId,
          fixed: env.RIPPLE_CONTROL_FIXED,
          command,
          startWorker,
          executions: () =>
            Fs.readFileSync(log, "utf8").split("\n").filter((line) => line !== "").map((line) => line.split(" "))
              .filter(([, run]) => run === runId).map(([pid, , node]) => ({ pid: Number(pid), node: node! })),
          statusIs: (status) =>
            waitFor(Effect.map(Effect.orDie(store.getRun(runId)), (run) => run.status === status), `run ${runId} to be ${status}`)
        })
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))
      ), 120_000)

  test("signal to a suspended run a worker owns: the worker executes what follows the wait, the command says so", "wait", true, (s) =>
    Effect.gen(function*() {
      yield* s.statusIs("suspended")
      const sent = yield* s.command("signal", s.runId, "go", "--handlers", fixture)
      ok(sent)
      assert.match(sent.stdout, /taken by \S+/)
      yield* s.statusIs("completed")
      onceByWorker(s.executions(), s.worker!, ["a", "b", "c"])
    }))

  test("signal to a run that has not reached its wait: stored for delivery, exit 0; the worker takes it", "wait", false, (s) =>
    Effect.gen(function*() {
      const sent = yield* s.command("signal", s.runId, "go", "--handlers", fixture)
      ok(sent)
      assert.match(sent.stdout, /stored for delivery/)
      const worker = yield* s.startWorker
      yield* s.statusIs("completed")
      onceByWorker(s.executions(), worker, ["a", "b", "c"])
    }))

  test("resume of a suspended run a worker owns, with nothing to wake it: refused at once, nothing executed", "wait", true, (s) =>
    Effect.gen(function*() {
      yield* s.statusIs("suspended")
      const refused = yield* s.command("resume", s.runId, "--handlers", fixture, "--wait", "1")
      assert.strictEqual(refused.code, 2, refused.stdout + refused.stderr)
      assert.include(refused.stderr, "nothing to resume now")
      assert.deepStrictEqual(s.executions().map((e) => e.node), ["a"])
    }))

  test("approve of a run a worker owns: the worker executes what follows the approval", "approval", true, (s) =>
    Effect.gen(function*() {
      yield* s.statusIs("paused")
      const sent = yield* s.command("approve", s.runId, "gate", "--handlers", fixture)
      ok(sent)
      assert.match(sent.stdout, /taken by \S+/)
      yield* s.statusIs("completed")
      onceByWorker(s.executions(), s.worker!, ["a", "b", "c"])
    }))

  test("resume (unpause) of a run a worker paused: the worker continues it", "held", true, (s) =>
    Effect.gen(function*() {
      // `h` holds until the test lets it go, so the pause is recorded while the run is surely mid-flight
      // however slowly the `ripple pause` process starts: `b` then parks at its start.
      yield* waitFor(Effect.sync(() => s.executions().some((e) => e.node === "h")), "h to start")
      const pausing = yield* Effect.forkChild(s.command("pause", s.runId))
      const { store } = yield* SqlRunStore.SqlRunStore
      yield* waitFor(
        Effect.map(Effect.orDie(store.getRun(s.runId)), (run) => run.pauseRequestedAt !== undefined),
        "the pause request to be recorded"
      )
      Fs.writeFileSync(s.fixed, "")
      const paused = yield* Fiber.join(pausing)
      // Exit 3: the run is dormant (paused).
      assert.strictEqual(paused.code, 3, paused.stdout + paused.stderr)
      yield* s.statusIs("paused")
      assert.deepStrictEqual(s.executions().map((e) => e.node), ["a", "h"])
      const sent = yield* s.command("resume", s.runId, "--handlers", fixture)
      ok(sent)
      assert.match(sent.stdout, /taken by \S+/)
      yield* s.statusIs("completed")
      onceByWorker(s.executions(), s.worker!, ["a", "h", "b", "c"])
    }))

  // `ripple cancel` once `node` started: it exits 0 saying the owner stopped the run. Then `after`
  // gives an execution still going on its chance to start more; the worker lets the run go,
  // cancelled, and what had started when the command returned is all that ever starts, all of it
  // in the worker. Returns that.
  const cancelledOnceStarted = (s: Setting, node: string, after: Effect.Effect<void>) =>
    Effect.gen(function*() {
      yield* waitFor(Effect.sync(() => s.executions().some((e) => e.node === node)), `${node} to start`)
      const cancelled = yield* s.command("cancel", s.runId)
      ok(cancelled)
      assert.match(cancelled.stdout, /-> cancelled \(cancelled by its owner \S+\)/)
      const startedWhenReturned = s.executions()
      yield* after
      const { store } = yield* SqlRunStore.SqlRunStore
      yield* waitFor(Effect.map(Effect.orDie(store.getRun(s.runId)), (run) => run.lease === undefined), "the worker to let the run go")
      assert.strictEqual((yield* store.getRun(s.runId)).status, "cancelled")
      assert.deepStrictEqual(s.executions(), startedWhenReturned, "a block started after cancel returned")
      assert.deepStrictEqual(startedWhenReturned.filter((e) => e.pid !== s.worker!.pid), [], "executed outside the worker")
      return startedWhenReturned
    })

  test("cancel of a run a worker owns mid-flight: no block starts after the command returns; the run ends cancelled", "held", true, (s) =>
    Effect.gen(function*() {
      // `h` may finish once the command returned: an execution still going on would start `b`.
      const started = yield* cancelledOnceStarted(s, "h", Effect.sync(() => Fs.writeFileSync(s.fixed, "")))
      assert.deepStrictEqual(started.map((e) => e.node), ["a", "h"])
    }))

  test("cancel of a run a worker owns while a block waits out its retry backoff: no retry starts after; the run ends cancelled, not failed", "retrying", true, (s) =>
    Effect.gen(function*() {
      // A retry comes every 200 ms: an execution still going on would start one.
      const started = yield* cancelledOnceStarted(s, "r", Effect.sleep(Duration.millis(500)))
      // Well before its 30 attempts ran out.
      assert.isBelow(started.filter((e) => e.node === "r").length, 30)
    }))

  test("resume of a run a worker is executing: answered naming the worker, nothing executed here; the worker finishes it", "held", true, (s) =>
    Effect.gen(function*() {
      yield* waitFor(Effect.sync(() => s.executions().some((e) => e.node === "h")), "h to start")
      const resumed = yield* s.command("resume", s.runId, "--handlers", fixture)
      ok(resumed)
      const named = /is running in the worker (\S+), which holds its lease \(should it have stopped, another worker takes the run over when the lease expires\): nothing to resume/
        .exec(resumed.stdout)
      assert.isNotNull(named, resumed.stdout)
      // Named while `h` still holds the run: the worker's lease, untouched.
      const { store } = yield* SqlRunStore.SqlRunStore
      const run = yield* store.getRun(s.runId)
      assert.strictEqual(run.status, "running")
      assert.strictEqual(run.lease?.owner, named![1])
      Fs.writeFileSync(s.fixed, "")
      yield* s.statusIs("completed")
      onceByWorker(s.executions(), s.worker!, ["a", "h", "b", "c"])
    }))

  test("resume of a run another `ripple run` process is executing: answered naming it, nothing executed here; that process finishes it", "held", false, (s) =>
    Effect.gen(function*() {
      // Not queued: the process that started it executes it, under a lease it renews.
      const runner = yield* Effect.acquireRelease(
        Effect.sync(() => spawnRipple(s.where, "run", fixture)),
        (runner) => Effect.sync(() => runner.child.kill("SIGKILL"))
      )
      yield* waitFor(Effect.sync(() => /^run \S+ started/m.test(runner.output())), "the run to start")
      const runId = /^run (\S+) started/m.exec(runner.output())![1]!
      const executions = () =>
        Fs.readFileSync(s.where.env!["RIPPLE_CONTROL_LOG"]!, "utf8").split("\n").map((line) => line.split(" "))
          .filter(([, run]) => run === runId).map(([pid, , node]) => ({ pid: Number(pid), node: node! }))
      yield* waitFor(Effect.sync(() => executions().some((e) => e.node === "h")), "h to start")
      const resumed = yield* s.command("resume", runId, "--handlers", fixture)
      ok(resumed)
      const named = /is running in (\S+), which renews its lease: nothing to resume/.exec(resumed.stdout)
      assert.isNotNull(named, resumed.stdout)
      const { store } = yield* SqlRunStore.SqlRunStore
      const run = yield* store.getRun(runId)
      assert.strictEqual(run.status, "running")
      assert.strictEqual(run.lease?.owner, named![1])
      Fs.writeFileSync(s.fixed, "")
      assert.strictEqual(yield* Effect.promise(() => runner.exited), 0, runner.output())
      assert.deepStrictEqual(executions(), ["a", "h", "b", "c"].map((node) => ({ pid: runner.child.pid!, node })))
    }))

  test("resume of a failed run a worker owns: the worker retries it", "flaky", true, (s) =>
    Effect.gen(function*() {
      yield* s.statusIs("failed")
      Fs.writeFileSync(s.fixed, "")
      const sent = yield* s.command("resume", s.runId, "--handlers", fixture)
      ok(sent)
      assert.match(sent.stdout, /taken by \S+/)
      yield* s.statusIs("completed")
      const executions = s.executions()
      assert.deepStrictEqual(executions.map((e) => e.node), ["a", "f", "f", "b"])
      assert.deepStrictEqual(executions.filter((e) => e.pid !== s.worker!.pid), [], "executed outside the worker")
    }))
})
