/**
 * The `ripple` command tree (effect/cli) and `main`, which runs it on an argument list and returns
 * the process exit code.
 *
 * **Details**
 *
 * - The database comes from `--db <url>`, else `DATABASE_URL`, else embedded PGlite in
 *   `--data-dir` (default `.ripple/` in the current directory). Which `RunStore` sits on it is the
 *   `Backend`'s choice, so the same commands run on any store.
 * - Input is checked before the database is opened (file, workflow, `--from` block), so bad input
 *   writes nothing; `plan` never writes.
 * - Exit codes: see `Problem.ExitCode`.
 *
 * @since 0.1.0
 */
import { Plan, Workflow } from "@ripple/core"
import { Engine, Handler, type RunEvent, Runs, RunStatus, RunStore, Wake } from "@ripple/runtime"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as Argument from "effect/cli/Argument"
import * as CliError from "effect/cli/CliError"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import { readFileSync } from "node:fs"
import * as Problem from "./Problem.ts"
import * as Progress from "./Progress.ts"
import * as Source from "./Source.ts"

/**
 * Where the database is, as given on the command line.
 *
 * @since 0.1.0
 */
export interface DatabaseOptions {
  /** `--db`: a PostgreSQL URL; `undefined` falls back to `DATABASE_URL`, then to PGlite. */
  readonly url: string | undefined
  /** `--data-dir`: the PGlite data directory (default `.ripple`). */
  readonly dataDir: string | undefined
}

/**
 * A stored run as `ripple runs` lists it.
 *
 * @since 0.1.0
 */
export interface RunSummary {
  readonly id: string
  readonly workflowId: string
  readonly status: RunStatus.Status
  readonly mode: string
  readonly target: string | undefined
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * The persistence the commands run on.
 *
 * @since 0.1.0
 */
export interface Backend {
  /** The run store for the database options (opening the database, applying migrations). */
  readonly store: (options: DatabaseOptions) => Layer.Layer<RunStore.RunStore, Problem.Problem>
  /** Stored runs, newest first, optionally of one workflow and/or in one status. */
  readonly list: (
    options: DatabaseOptions,
    filter: { readonly workflowId: string | undefined; readonly status: RunStatus.Status | undefined }
  ) => Effect.Effect<ReadonlyArray<RunSummary>, Problem.Problem>
  /** Stores a queued run for the workers; returns its id. */
  readonly submit: (
    options: DatabaseOptions,
    workflow: Workflow.Workflow,
    input: { readonly [key: string]: Json }
  ) => Effect.Effect<string, Problem.Problem>
  /**
   * Hands a run back to the workers (`Worker.requeue`): a paused run unpaused, a failed one
   * resumed, a crashed one as it is; returns the status it was handed over in.
   */
  readonly requeue: (
    options: DatabaseOptions,
    runId: string
  ) => Effect.Effect<RunStatus.Status, Problem.Problem | RunStore.RunStoreError>
  /** Runs a worker until interrupted: it executes queued, crashed and woken runs with `handlers`. */
  readonly work: (
    options: DatabaseOptions,
    handlers: Layer.Layer<Handler.Handlers>,
    settings: {
      readonly concurrency: number | undefined
      /** Caps on the work of each run (see `Source.limits`). */
      readonly limits: Partial<Workflow.Limits>
      /** Prints a line about the worker itself. */
      readonly announce: (text: string) => void
      readonly publish: (event: RunEvent.RunEvent) => void
    }
  ) => Effect.Effect<never, Problem.Problem>
  /**
   * Applies pending schema migrations; returns where the database is (`pglite:<dir>` or the
   * redacted URL) and the migrations applied (none when up to date).
   */
  readonly migrate: (
    options: DatabaseOptions
  ) => Effect.Effect<{ readonly database: string; readonly applied: ReadonlyArray<string> }, Problem.Problem>
}

/**
 * The version `ripple --version` prints.
 *
 * @since 0.1.0
 */
export const version = "0.1.0"

// What an action did to a run: it executes here; or another process owns it, which took the
// request once `taken` holds for the run; or the request was only recorded (`message` says so);
// or nothing executes it (its status is reported).
type Acted =
  | { readonly _tag: "Executing"; readonly runId: string }
  | { readonly _tag: "Delegated"; readonly runId: string; readonly owner: string; readonly taken: (run: RunStore.Run) => boolean }
  | { readonly _tag: "Recorded"; readonly runId: string; readonly message: string }
  | { readonly _tag: "Stopped"; readonly runId: string }

// A request another process carries out: taken once the run moves on from `after` (read after the
// request was recorded) or a lease on it is seen.
const delegatedFrom = (after: RunStore.Run, owner: string, own: boolean): Acted => {
  // The request itself left the run running (resume, unpause); anything else means someone acted.
  const moved = own && (after.status !== "running" || Wake.holder(after, Date.now()) !== undefined)
  return {
    _tag: "Delegated",
    runId: after.id,
    owner,
    taken: (run) => moved || run.status !== after.status || run.updatedAt !== after.updatedAt
  }
}

const problemOfStore = (runId: string, error: RunStore.RunStoreError | Runs.PlanFailed | Runs.InvalidPayload): Problem.Problem => {
  switch (error._tag) {
    case "RunNotFound":
      return Problem.unknownRun(error.runId)
    case "InvalidPayload":
      return Problem.badInput(error.message, "leave NUL characters (\\u0000) and unpaired surrogates (\\ud800-\\udfff) out of the payload, name and reason")
    case "IllegalTransition":
      return Problem.badInput(`run ${runId} is ${error.from}: ${error.event} is not allowed (${error.reason})`, `see the run with \`ripple show ${runId}\``)
    default:
      return Problem.fromRunsError(`run ${runId}`, error)
  }
}

// A `ripple` process that dies leaves the leases of the runs it executed; another `ripple` process
// takes a crashed run over once its lease expires, so the lease is short (renewed every ~1.7 s).
const runsOptions: Runs.Options = { leaseMs: 5_000 }

const statusOf = (status: RunStatus.Status): number =>
  status === "completed"
    ? Problem.ExitCode.completed
    : status === "paused" || status === "suspended"
    ? Problem.ExitCode.dormant
    : Problem.ExitCode.failed

const ended = (code: number) => code === 0 ? Effect.void : Effect.fail(new Problem.Problem({ problem: "", fix: "", code }))

const print = (text: string) => Console.log(text)

type Json = Workflow.Json

const formats = ["text", "json", "mermaid", "dot"] as const

/**
 * Builds the command tree over a backend.
 *
 * @since 0.1.0
 */
export const make = (backend: Backend) => {
  const ripple = Command.make("ripple").pipe(
    Command.withSharedFlags({
      db: Flag.String("db").pipe(
        Flag.withDescription("PostgreSQL URL (default: DATABASE_URL, else the embedded database in --data-dir)"),
        Flag.optional
      ),
      dataDir: Flag.String("data-dir").pipe(
        Flag.withDescription("Directory of the embedded database (default: .ripple)"),
        Flag.optional
      )
    }),
    Command.withDescription("Ripple: incremental, durable workflow runs. Re-run from any block; only what changed runs again.")
  )

  const databaseOptions = Effect.map(ripple, (root): DatabaseOptions => ({
    url: Option.getOrUndefined(root.db),
    dataDir: Option.getOrUndefined(root.dataDir)
  }))

  // Runs over the backend's store, with the handlers of the workflow being run.
  const withRuns = <A>(
    handlers: Layer.Layer<Handler.Handlers>,
    use: (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) => Effect.Effect<A, Problem.Problem>
  ) =>
    Effect.flatMap(Effect.all([databaseOptions, Source.limits]), ([options, limits]) =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        return yield* use(runs, store)
      }).pipe(
        Effect.provide(Runs.layer({ limits, ...runsOptions }).pipe(Layer.provideMerge(Layer.merge(backend.store(options), handlers))))
      ))

  const withStore = <A>(use: (store: RunStore.RunStore["Service"]) => Effect.Effect<A, Problem.Problem>) =>
    Effect.flatMap(databaseOptions, (options) =>
      Effect.gen(function*() {
        return yield* use(yield* RunStore.RunStore)
      }).pipe(Effect.provide(backend.store(options))))

  const styleOf = (): Progress.Style => process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined ? "tty" : "plain"

  // Prints the events of the run `act` starts or continues (when it executes here), then a summary
  // and what a dormant run awaits; ends with the exit code of the run's status. Child runs execute
  // in this process too: their lines are prefixed with their id, and the command lasts until the
  // run no longer waits for children of its own (and, when the run is a child that ended, until the
  // parent it woke stops). A request another process carries out is waited for (`handedOver`).
  const follow = (
    handlers: Layer.Layer<Handler.Handlers>,
    wait: number,
    act: (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) => Effect.Effect<Acted, Problem.Problem>
  ) =>
    withRuns(handlers, (runs, store) =>
      Effect.scoped(Effect.gen(function*() {
        const style = styleOf()
        const followers = new Map<string, ReturnType<typeof Progress.follower>>()
        const followerOf = (id: string) => {
          let found = followers.get(id)
          if (found === undefined) followers.set(id, found = Progress.follower(style))
          return found
        }
        const began = Date.now()
        // Subscribed before acting, so the run's first events cannot be missed.
        const events = yield* runs.subscribe
        const acted = yield* act(runs, store)
        if (acted._tag === "Delegated") return yield* handedOver(runs, acted, wait)
        if (acted._tag === "Recorded") {
          yield* print(acted.message)
          return Problem.ExitCode.completed
        }
        const { runId } = acted
        const executing = acted._tag === "Executing"
        let finished: RunStatus.Status | undefined
        const printer = yield* Effect.forkScoped(
          executing
            ? Stream.runForEach(events, (event) => {
              if (event._tag === "RunFinished" && event.runId === runId) finished = event.status
              const text = followerOf(event.runId).line(event)
              if (text === undefined) return Effect.void
              return print(event.runId === runId ? text : `  [${event.runId.slice(0, 8)}] ${text}`)
            })
            : Effect.void
        )
        // Followed while the executions are still known, so this joins them to their very end:
        // closing the layer before would leave a dormant run's children, or a woken parent, unfinished.
        const { ancestors, status } = yield* runs.follow(runId).pipe(Effect.orDie)
        for (const ancestor of ancestors) yield* print(`parent run ${ancestor.runId} is ${ancestor.status}`)
        // The printer has seen the run's last event (it follows the publication at once).
        for (let i = 0; executing && finished !== status && i < 200; i++) yield* Effect.sleep(5)
        yield* Fiber.interrupt(printer)
        if (executing) {
          const { pruned } = yield* store.getRun(runId).pipe(Effect.orDie)
          yield* print(Progress.summary(style, runId, status, followerOf(runId).tally, Date.now() - began, pruned))
        }
        else yield* print(`run ${runId} is ${status}`)
        if (status === "paused" || status === "suspended") yield* printAwaiting(runs, runId)
        return statusOf(status)
      }))).pipe(Effect.flatMap(ended))

  const printAwaiting = (runs: Runs.Runs["Service"], runId: string) =>
    Effect.flatMap(runs.status(runId).pipe(Effect.orDie), (info) =>
      Effect.forEach(Progress.awaiting(runId, info.suspension), print, { discard: true }))

  // Another process owns the run: its request is recorded and the owner notified; wait (at most
  // `wait` seconds, saying so) for the owner to take it and report what became of the run. The
  // command did its part either way: exit 0.
  const handedOver = (runs: Runs.Runs["Service"], acted: Extract<Acted, { readonly _tag: "Delegated" }>, wait: number) =>
    Effect.gen(function*() {
      const { owner, runId } = acted
      yield* print(`run ${runId} is owned by ${owner}: request recorded, waiting up to ${wait}s for it to take it`)
      const handover = yield* runs.handover(runId, {
        taken: acted.taken,
        timeout: Duration.seconds(wait),
        onWaiting: (waitedMs, taken) =>
          print(`  ${taken ? "taken; still executing" : "not taken yet"} after ${Math.round(waitedMs / 1_000)}s`)
      }).pipe(Effect.orDie)
      if (!handover.taken) {
        yield* print(`run ${runId}: not taken by ${owner} within ${wait}s; the request is kept and the owner acts on it when it runs`)
        return Problem.ExitCode.completed
      }
      const { status } = handover.run
      yield* print(`run ${runId}: taken by ${handover.owner}; ${status === "running" || status === "pending" ? `still ${status}` : `now ${status}`}`)
      if (status === "paused" || status === "suspended") yield* printAwaiting(runs, runId)
      return Problem.ExitCode.completed
    })

  // Starts a new run of a loaded workflow.
  const execute = (
    source: Source.Source,
    launch: (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) => Effect.Effect<Runs.Started, Runs.RunsError | Problem.Problem>
  ) =>
    Effect.andThen(
      Source.checkExecutable(source),
      follow(source.handlers, 0, (runs, store) =>
        launch(runs, store).pipe(
          Effect.map((started): Acted => ({ _tag: "Executing", runId: started.runId })),
          Effect.mapError((error) => error instanceof Problem.Problem ? error : Problem.fromRunsError(source.file, error))
        ))
    )

  const handlersFlag = Flag.String("handlers").pipe(
    Flag.withDescription("An ES module exporting `handlers` (a Layer), for runs of workflows with custom block types"),
    Flag.optional
  )
  const handlersOf = (file: Option.Option<string>) =>
    Option.match(file, { onNone: () => Effect.succeed(Handler.layerBuiltins), onSome: Source.loadHandlers })
  const payloadFlag = Flag.String("payload").pipe(
    Flag.withDescription("A JSON payload (default null); @file reads it from a file, - from stdin"),
    Flag.optional
  )
  const runArgument = Argument.String("run").pipe(Argument.withDescription("The run id"))

  const waitFlag = Flag.Int("wait").pipe(
    Flag.withDescription("Seconds to wait for the process that owns the run (a worker) to take the request (default 30)"),
    Flag.withDefault(30)
  )
  const checkWait = (wait: number) =>
    wait < 0 ? Effect.fail(Problem.badInput(`--wait ${wait} is negative`, "give the seconds to wait, or 0 not to wait")) : Effect.void

  // Delivers something to a stored run. When that wakes it, the run continues here, or its owner
  // (another process) takes it; a delivery the run does not await yet is kept for it.
  const deliver = (
    runId: string,
    handlers: Option.Option<string>,
    wait: number,
    what: string,
    awaits: (run: RunStore.Run) => boolean,
    refused: (status: RunStatus.Status) => Problem.Problem,
    send: (runs: Runs.Runs["Service"]) => Effect.Effect<boolean, RunStore.RunStoreError | Runs.PlanFailed | Runs.InvalidPayload>
  ) =>
    Effect.andThen(checkWait(wait), Effect.flatMap(handlersOf(handlers), (layer) =>
      follow(layer, wait, (runs, store) =>
        Effect.gen(function*() {
          const before = yield* store.getRun(runId)
          const accepted = yield* send(runs)
          if (!accepted) return yield* refused(before.status)
          const handling = yield* runs.handling(runId)
          if (handling._tag === "Here") return { _tag: "Executing", runId } as const
          if (!awaits(before)) {
            return {
              _tag: "Recorded",
              runId,
              message: `run ${runId} is ${before.status}; ${what} stored for delivery: the run takes it when it reaches the block awaiting it`
            } as const
          }
          if (handling._tag === "Owner") return delegatedFrom(before, handling.owner, false)
          return { _tag: "Stopped", runId } as const
        }).pipe(Effect.mapError((error) => error instanceof Problem.Problem ? error : problemOfStore(runId, error))))))

  const workflowArgument = Argument.String("workflow").pipe(
    Argument.withDescription("A workflow .json file, or an ES module (.js/.mjs) exporting `workflow` and `handlers`")
  )
  const fromFlag = Flag.String("from").pipe(Flag.withDescription("The block to re-run from (an edited block, usually)"))
  const runFlag = Flag.String("run").pipe(
    Flag.withDescription("The run whose results are reused (default: latest, the last finished run of the workflow)"),
    Flag.optional
  )
  const sourceRun = (run: Option.Option<string>) => Option.getOrUndefined(Option.filter(run, (id) => id !== "latest"))

  const run = Command.make("run", {
    workflow: workflowArgument,
    input: Flag.String("input").pipe(
      Flag.withDescription("The run input as a JSON object, e.g. '{\"topic\": \"ripple\"}'; @file reads it from a file, - from stdin"),
      Flag.optional
    ),
    queue: Flag.Boolean("queue").pipe(
      Flag.withDescription("Store the run for `ripple worker` processes instead of executing it here"),
      Flag.withDefault(false)
    )
  }, ({ input, queue, workflow }) =>
    Effect.gen(function*() {
      const source = yield* Source.load(workflow)
      const parsed = yield* parseInput(Option.getOrUndefined(input))
      const checked = Workflow.inputsFor(source.workflow, parsed)
      if (Result.isFailure(checked)) {
        return yield* Problem.fromRunsError(source.file, new Runs.InvalidInput({ workflowId: source.workflow.id, cause: checked.failure }))
      }
      if (queue) {
        yield* Source.checkExecutable(source)
        // Stored with the declared defaults applied, as `Runs.start` would.
        const runId = yield* backend.submit(yield* databaseOptions, source.workflow, checked.success)
        return yield* print(`run ${runId} queued for \`ripple worker\``)
      }
      yield* execute(source, (runs) => runs.start(source.workflow, parsed))
    })).pipe(Command.withDescription("Run a workflow from scratch, printing each block as it runs"))

  const plan = Command.make("plan", {
    workflow: workflowArgument,
    from: fromFlag,
    run: runFlag,
    format: Flag.Literals("format", formats).pipe(Flag.withDescription("Output format"), Flag.withDefault("text"))
  }, ({ format, from, run, workflow }) =>
    Effect.gen(function*() {
      const source = yield* Source.load(workflow)
      yield* Source.checkBlock(source, from)
      const planned = yield* withRuns(source.handlers, (runs, store) =>
        Effect.andThen(
          requirePrior(store, source, sourceRun(run)),
          runs.plan(source.workflow, { target: from, run: sourceRun(run) }).pipe(
            Effect.mapError((error) => Problem.fromRunsError(source.file, error))
          )
        ))
      yield* print(render(planned, format))
    })).pipe(Command.withDescription("Show what a re-run from a block would re-execute and reuse, and why (writes nothing)"))

  const rerun = Command.make("rerun", {
    workflow: workflowArgument,
    from: fromFlag,
    run: runFlag
  }, ({ from, run, workflow }) =>
    Effect.gen(function*() {
      const source = yield* Source.load(workflow)
      yield* Source.checkBlock(source, from)
      yield* execute(source, (runs, store) =>
        Effect.andThen(requirePrior(store, source, sourceRun(run)), runs.runFrom(source.workflow, { target: from, run: sourceRun(run) })))
    })).pipe(Command.withDescription("Re-run a workflow from a block, reusing every prior output that is still valid"))

  const runs = Command.make("runs", {
    workflow: Flag.String("workflow").pipe(Flag.withDescription("Only runs of this workflow id"), Flag.optional),
    status: Flag.Literals("status", RunStatus.statuses).pipe(Flag.withDescription("Only runs in this status"), Flag.optional)
  }, ({ status, workflow }) =>
    Effect.gen(function*() {
      const options = yield* databaseOptions
      const listed = yield* backend.list(options, {
        workflowId: Option.getOrUndefined(workflow),
        status: Option.getOrUndefined(status)
      })
      if (listed.length === 0) return yield* print("no runs")
      yield* print(table([
        ["RUN", "WORKFLOW", "STATUS", "MODE", "FROM", "CREATED"],
        ...listed.map((r) => [r.id, r.workflowId, r.status, r.mode, r.target ?? "-", new Date(r.createdAt).toISOString()])
      ]))
    })).pipe(Command.withDescription("List runs, newest first"))

  const show = Command.make("show", {
    run: Argument.String("run").pipe(Argument.withDescription("The run id"))
  }, ({ run }) =>
    withStore((store) =>
      Effect.gen(function*() {
        const found = yield* store.getRun(run).pipe(Effect.mapError(() => Problem.unknownRun(run)))
        const snapshot = yield* store.snapshot(run).pipe(Effect.mapError(() => Problem.unknownRun(run)))
        const reasons = yield* store.reasons(run).pipe(Effect.mapError(() => Problem.unknownRun(run)))
        yield* print(`run ${found.id}  workflow ${found.workflowId}  ${found.status}  (${found.mode}` +
          `${found.target === undefined ? "" : ` from ${found.target}`}${found.sourceRun === undefined ? "" : `, reusing ${found.sourceRun}`})`)
        yield* print(`created ${new Date(found.createdAt).toISOString()}  updated ${new Date(found.updatedAt).toISOString()}`)
        if (found.pruned !== undefined) {
          yield* print(`${Progress.pruned("plain", found.pruned)}: needed by no observed output, neither run nor reused`)
        }
        if (found.pauseRequestedAt !== undefined) {
          yield* print(`pause requested ${new Date(found.pauseRequestedAt).toISOString()}: it parks at its next node boundary`)
        }
        // In execution order: reused nodes keep their first run's times, skipped ones have an end only.
        const when = (record: (typeof snapshot.nodes)[string]) => record.startedAt ?? record.finishedAt ?? Number.MAX_SAFE_INTEGER
        const rows = Object.entries(snapshot.nodes).sort(([, a], [, b]) => when(a) - when(b)).map(([node, record]) => {
          const reused = record.reusedFrom !== undefined && (reasons[node] !== undefined || found.sourceRun !== undefined)
          const how = record.status === "skipped"
            ? "skipped"
            : !reused
            ? "executed"
            : record.reusedFrom === found.sourceRun
            ? "reused"
            : `reused from ${record.reusedFrom}`
          const why = reasons[node]?.join("; ") ??
            (record.status === "skipped"
              ? "branch not taken"
              : found.mode === "full"
              ? "full run"
              : node === found.target
              ? "target"
              : reused
              ? ""
              : "in the re-run scope")
          const took = record.startedAt !== undefined && record.finishedAt !== undefined && !reused
            ? Progress.duration(record.finishedAt - record.startedAt)
            : "-"
          return [node, record.status, how, why === "" ? "-" : why, took, String(record.attempt)]
        })
        yield* print(table([["NODE", "STATUS", "HOW", "WHY", "DURATION", "ATTEMPT"], ...rows]))
        const failed = Object.entries(snapshot.nodes).filter(([, record]) => record.error !== undefined)
        for (const [node, record] of failed) yield* print(`${node}: ${record.error!.message}`)
        const machine = RunStatus.restore(found.machine)
        if ((found.status === "paused" || found.status === "suspended") && Result.isSuccess(machine)) {
          for (const text of Progress.awaiting(run, RunStatus.suspension(machine.success))) yield* print(text)
        }
      }))).pipe(Command.withDescription("Show a run: each node's status, whether it re-ran or was reused and why, duration, attempt"))

  const cancel = Command.make("cancel", {
    run: Argument.String("run").pipe(Argument.withDescription("The run id"))
  }, ({ run }) =>
    Effect.flatMap(databaseOptions, (options) =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const before = yield* store.getRun(run).pipe(Effect.mapError(() => Problem.unknownRun(run)))
        if (!RunStatus.isAllowed(before.status, "cancelled")) {
          return yield* Problem.badInput(`run ${run} already ended (${before.status}); nothing to cancel`, "cancel a pending, running, suspended or paused run")
        }
        const status = yield* runs.cancel(run).pipe(Effect.mapError(() => Problem.unknownRun(run)))
        yield* print(`run ${run}: ${before.status} -> ${status}`)
      }).pipe(
        Effect.provide(Runs.layer(runsOptions).pipe(Layer.provideMerge(Layer.merge(backend.store(options), Handler.layerBuiltins))))
      ))).pipe(Command.withDescription("Cancel a run that has not ended"))

  const pause = Command.make("pause", {
    run: runArgument,
    wait: Flag.Int("wait").pipe(
      Flag.withDescription("Seconds to wait for the run to park at its next node boundary (default 30; 0: do not wait)"),
      Flag.withDefault(30)
    )
  }, ({ run, wait }) =>
    Effect.gen(function*() {
      if (wait < 0) return yield* Problem.badInput(`--wait ${wait} is negative`, "give the seconds to wait, or 0 not to wait")
      const code = yield* withRuns(Handler.layerBuiltins, (runs, store) =>
        Effect.gen(function*() {
          const before = yield* store.getRun(run)
          if (before.status === "paused") {
            yield* print(`run ${run} is paused already`)
            return Problem.ExitCode.dormant
          }
          if (!RunStore.pausable.includes(before.status)) {
            return yield* Problem.badInput(
              `run ${run} already ended (${before.status}); nothing to pause`,
              "pause a pending, running or suspended run"
            )
          }
          // Stored: whichever process executes the run (`ripple run`, a worker) parks it.
          yield* runs.pause(run)
          if (before.status === "suspended") {
            yield* print(`run ${run} is suspended; pause requested: it pauses when it wakes`)
            return Problem.ExitCode.dormant
          }
          yield* print(`run ${run} is ${before.status}; pause requested: it parks at its next node boundary (running blocks finish)`)
          const deadline = Date.now() + wait * 1_000
          let now = before
          while ((now.status === "running" || now.status === "pending") && Date.now() < deadline) {
            yield* Effect.sleep(100)
            now = yield* store.getRun(run)
          }
          if (now.status === "running" || now.status === "pending") {
            yield* print(
              `run ${run} is still ${now.status} after ${wait}s; the request is kept. If no process executes it any more, \`ripple resume ${run}\` continues it and it pauses at once`
            )
            return Problem.ExitCode.completed
          }
          yield* print(`run ${run}: ${before.status} -> ${now.status}`)
          if (now.status === "paused" || now.status === "suspended") {
            const info = yield* runs.status(run)
            for (const text of Progress.awaiting(run, info.suspension)) yield* print(text)
          }
          return statusOf(now.status)
        }).pipe(Effect.mapError((error) => error instanceof Problem.Problem ? error : problemOfStore(run, error))))
      return yield* ended(code)
    })).pipe(Command.withDescription("Pause a run wherever it executes: it parks at its next node boundary; `ripple resume` continues it"))

  const signal = Command.make("signal", {
    run: runArgument,
    name: Argument.String("name").pipe(Argument.withDescription("The signal a `wait` block awaits")),
    payload: payloadFlag,
    handlers: handlersFlag,
    wait: waitFlag
  }, ({ handlers, name, payload, run, wait }) =>
    Effect.gen(function*() {
      const value = yield* parseJson("--payload", Option.getOrUndefined(payload))
      const awaits = (found: RunStore.Run) =>
        found.status === "suspended" && Object.values(found.machine.context.dormant).some((r) => r._tag === "Signal" && r.signal === name)
      yield* deliver(run, handlers, wait, `signal ${JSON.stringify(name)}`, awaits, (status) =>
        Problem.badInput(
          `run ${run} (${status}) does not take signal ${JSON.stringify(name)}: no wait block awaits it, it was already delivered, or the run has ended`,
          `see what the run awaits with \`ripple show ${run}\``
        ), (runs) => runs.signal(run, name, value))
    })).pipe(Command.withDescription("Send a signal to a run's `wait` blocks; a suspended run continues here"))

  const approve = Command.make("approve", {
    run: runArgument,
    node: Argument.String("node").pipe(Argument.withDescription("The paused approval node")),
    payload: payloadFlag,
    reject: Flag.String("reject").pipe(Flag.withDescription("Reject instead, with this reason (the node fails)"), Flag.optional),
    handlers: handlersFlag,
    wait: waitFlag
  }, ({ handlers, node, payload, reject, run, wait }) =>
    Effect.gen(function*() {
      const value = yield* parseJson("--payload", Option.getOrUndefined(payload))
      const awaits = (found: RunStore.Run) =>
        found.status === "paused" && Object.values(found.machine.context.dormant).some((r) => r._tag === "Approval" && r.node === node)
      yield* deliver(run, handlers, wait, `the decision on ${JSON.stringify(node)}`, awaits, (status) =>
        Problem.badInput(
          `run ${run} (${status}) has no approval ${JSON.stringify(node)} waiting`,
          `see what the run awaits with \`ripple show ${run}\``
        ), (runs) =>
        Option.match(reject, {
          onNone: () => runs.approve(run, node, value),
          onSome: (reason) => runs.reject(run, node, reason)
        }))
    })).pipe(Command.withDescription("Approve (or --reject) a paused approval block; the run continues here"))

  const resume = Command.make("resume", {
    run: runArgument,
    handlers: handlersFlag,
    queue: Flag.Boolean("queue").pipe(
      Flag.withDescription("Hand the run back to `ripple worker` processes instead of continuing it here"),
      Flag.withDefault(false)
    ),
    wait: waitFlag
  }, ({ handlers, queue, run, wait }) =>
    queue ? requeue(run) : Effect.andThen(checkWait(wait), Effect.flatMap(handlersOf(handlers), (layer) =>
      follow(layer, wait, (runs, store) =>
        Effect.gen(function*() {
          const found = yield* store.getRun(run)
          const pausedByPause = Object.values(found.machine.context.dormant).some((reason) => reason._tag === "Pause")
          // Executes here, or (another process owns the run) was recorded for its owner.
          const continued = (owner: string | undefined) =>
            owner === undefined
              ? Effect.succeed<Acted>({ _tag: "Executing", runId: run })
              : Effect.map(store.getRun(run), (after) => delegatedFrom(after, owner, true))
          switch (found.status) {
            case "failed":
            case "running": {
              // Without them the resumed nodes would fail the run: refused before anything changes.
              yield* requireHandlers(run, yield* store.loadWorkflow(found.version), layer)
              const resumed = yield* runs.resume(run)
              return yield* continued("owner" in resumed ? resumed.owner : undefined)
            }
            case "paused":
              if (pausedByPause) {
                yield* runs.unpause(run)
                const handling = yield* runs.handling(run)
                return yield* continued(handling._tag === "Owner" ? handling.owner : undefined)
              }
              break
            case "suspended": {
              const after = yield* runs.wake(run)
              const handling = yield* runs.handling(run)
              if (handling._tag === "Owner") {
                // Its owner wakes it when it can; with nothing to wake it now, there is nothing to hand over.
                if (Wake.event(found, yield* store.deliveries(run), Date.now()) === undefined) break
                return delegatedFrom(found, handling.owner, false)
              }
              if (after !== "suspended") return { _tag: "Executing", runId: run } as const
              // Waiting on children that crashed (a process died while they executed): they go on here.
              const crashed = (yield* store.children(run)).filter((c) => c.status === "running" || c.status === "pending")
              if (crashed.length === 0) break
              for (const child of crashed) yield* runs.resume(child.runId)
              return { _tag: "Executing", runId: run } as const
            }
          }
          return yield* Problem.badInput(
            `run ${run} is ${found.status}; nothing to resume now`,
            found.status === "paused" || found.status === "suspended"
              ? `it awaits an approval, a signal or a timer: see \`ripple show ${run}\``
              : "resume continues failed, crashed, paused or due sleeping runs"
          )
        }).pipe(Effect.mapError((error) => error instanceof Problem.Problem ? error : problemOfStore(run, error))))))
  ).pipe(Command.withDescription("Continue a failed or crashed run (only unfinished nodes re-run), a paused run, a due sleeper, or a run whose child runs crashed; a run a worker owns is handed to it"))

  // `resume --queue`: the workers continue the run.
  const requeue = (run: string) =>
    Effect.gen(function*() {
      const options = yield* databaseOptions
      const status = yield* backend.requeue(options, run).pipe(Effect.mapError((error) =>
        error instanceof Problem.Problem
          ? error
          : error._tag === "IllegalTransition"
          ? Problem.badInput(
            `run ${run} is ${error.from}; only a paused (by ripple pause), failed or crashed run can be handed to the workers`,
            `see the run with \`ripple show ${run}\``
          )
          : problemOfStore(run, error)
      ))
      yield* print(`run ${run} queued for \`ripple worker\` (${status})`)
    })

  const worker = Command.make("worker", {
    concurrency: Flag.Int("concurrency").pipe(Flag.withDescription("Runs executed at once (default 16)"), Flag.optional),
    handlers: handlersFlag
  }, ({ concurrency, handlers }) =>
    Effect.gen(function*() {
      // 0 would claim nothing and wait forever: refused before a database is opened.
      if (Option.isSome(concurrency) && concurrency.value < 1) {
        return yield* Problem.badInput(`--concurrency ${concurrency.value} is not a positive number`, "pass the number of runs to execute at once, at least 1 (default 16)")
      }
      const layer = yield* handlersOf(handlers)
      const options = yield* databaseOptions
      const style = styleOf()
      const progress = Progress.follower(style)
      const limits = yield* Source.limits
      yield* backend.work(options, layer, {
        concurrency: Option.getOrUndefined(concurrency),
        limits,
        announce: (text) => process.stdout.write(`${text}\n`),
        publish: (event) => {
          const text = event._tag === "RunFinished" ? `run ${event.runId} ${event.status}` : progress.line(event)
          if (text !== undefined) process.stdout.write(`${event._tag.startsWith("Node") ? `${event.runId.slice(0, 8)} ` : ""}${text}\n`)
        }
      })
    })).pipe(Command.withDescription("Execute queued, crashed and woken runs until stopped (Ctrl-C); run many on one PostgreSQL"))

  const migrate = Command.make("migrate", {}, () =>
    Effect.gen(function*() {
      const options = yield* databaseOptions
      const { applied, database } = yield* backend.migrate(options)
      yield* print(applied.length === 0 ? `${database}: schema up to date` : `${database}: applied ${applied.join(", ")}`)
    })).pipe(Command.withDescription("Create or upgrade the database schema (every command also does it when needed)"))

  return ripple.pipe(Command.withSubcommands([run, plan, rerun, runs, show, signal, approve, pause, resume, cancel, worker, migrate]))
}

// Re-running from a block needs a finished run to reuse; without `--run`, the latest one.
// Every block type of the workflow that neither the engine nor the given handlers implement.
const requireHandlers = (run: string, workflow: Workflow.Workflow, layer: Layer.Layer<Handler.Handlers>) =>
  Effect.gen(function*() {
    const handlers = yield* Handler.Handlers
    const missing = [...new Set(workflow.blocks.map((block) => block.type))]
      .filter((type) => !Engine.intrinsicTypes.has(type) && handlers.get(type) === undefined)
    if (missing.length > 0) {
      return yield* Problem.badInput(
        `run ${run} of workflow ${workflow.id} has blocks of type ${missing.map((type) => JSON.stringify(type)).join(", ")}, which have no handler here; the run is left as it is`,
        `pass the module that exports their handlers: ripple resume ${run} --handlers <module.js>`
      )
    }
  }).pipe(Effect.provide(layer))

const requirePrior = (store: RunStore.RunStore["Service"], source: Source.Source, run: string | undefined) =>
  run !== undefined
    ? Effect.flatMap(store.getRun(run).pipe(Effect.mapError(() => Problem.unknownRun(run))), (found) =>
      found.workflowId === source.workflow.id ? Effect.void : Effect.fail(Problem.badInput(
        `run ${run} belongs to workflow ${found.workflowId}, not to ${source.workflow.id} (${source.file})`,
        `pass a run of ${source.workflow.id} (ripple runs --workflow ${source.workflow.id}), or re-run ${found.workflowId} from its own file`
      )))
    : store.latestSnapshot(source.workflow.id).pipe(
      Effect.orElseSucceed(() => Option.none()),
      Effect.flatMap((latest) =>
        Option.isSome(latest) ? Effect.void : Effect.fail(Problem.badInput(
          `no finished run of workflow ${source.workflow.id} to re-use`,
          `run it first: ripple run ${source.file}`
        ))
      )
    )

// `@file` reads the JSON from a file and `-` from stdin: a value of megabytes does not fit in an
// argument list (the shell refuses to start the command).
const jsonText = (flag: string, text: string): Effect.Effect<string, Problem.Problem> => {
  if (text !== "-" && !text.startsWith("@")) return Effect.succeed(text)
  const from = text === "-" ? "stdin" : text.slice(1)
  return Effect.try({
    try: () => readFileSync(text === "-" ? 0 : from, "utf8"),
    catch: (error) =>
      Problem.badInput(`cannot read ${flag} from ${from}: ${(error as Error).message}`, `pass a readable file (${flag} @input.json), - for stdin, or the JSON itself`)
  })
}

const parseJson = (flag: string, text: string | undefined): Effect.Effect<Json, Problem.Problem> =>
  text === undefined ? Effect.succeed(null) : Effect.flatMap(jsonText(flag, text), (json) =>
    Effect.try({
      try: () => JSON.parse(json) as Json,
      catch: (error) => Problem.badInput(`${flag} is not valid JSON: ${(error as Error).message}`, `pass JSON, e.g. ${flag} '{"ok": true}' or ${flag} @payload.json`)
    }))

const parseInput = (text: string | undefined): Effect.Effect<{ readonly [key: string]: Json }, Problem.Problem> => {
  if (text === undefined) return Effect.succeed({})
  const fix = "pass a JSON object, e.g. --input '{\"subject\": \"Login fails\"}' or --input @input.json"
  return jsonText("--input", text).pipe(Effect.flatMap((json) => Effect.try({
    try: () => JSON.parse(json) as Json,
    catch: (error) => Problem.badInput(`--input is not valid JSON: ${(error as Error).message}`, fix)
  })), Effect.flatMap((json) =>
    typeof json === "object" && json !== null && !Array.isArray(json)
      ? Effect.succeed(json as { readonly [key: string]: Json })
      : Effect.fail(Problem.badInput("--input must be a JSON object", fix))
  ))
}

const render = (plan: Plan.Plan, format: (typeof formats)[number]): string => {
  switch (format) {
    case "text":
      return Plan.explain(plan)
    case "json":
      return JSON.stringify(Plan.toJson(plan), null, 2)
    case "mermaid":
      return Plan.toMermaid(plan)
    case "dot":
      return Plan.toDot(plan)
  }
}

// Left-aligned columns separated by two spaces.
const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n")
}

/**
 * Runs the command tree on `args` (without the `node` and script paths) and returns the exit code.
 * Problems are printed on stderr; usage errors print the command's help and exit 2.
 *
 * @since 0.1.0
 */
export const main = (backend: Backend) => {
  const command = make(backend)
  const runWith = Command.runWith(command, { version })
  return (args: ReadonlyArray<string>) =>
    runWith(args).pipe(
      Effect.as(Problem.ExitCode.completed as number),
      Effect.catch((error): Effect.Effect<number> => {
        if (error instanceof Problem.Problem) {
          return error.message === "" ? Effect.succeed(error.code) : Effect.as(Console.error(`ripple: ${error.message}`), error.code)
        }
        if (CliError.isCliError(error) && error._tag === "ShowHelp") {
          if (error.errors.length === 0) return Effect.succeed(Problem.ExitCode.completed)
          const usage = Problem.usage(error.commandPath, error.errors)
          return Effect.as(Console.error(`ripple: ${usage.message}`), usage.code)
        }
        return Effect.succeed(Problem.ExitCode.badInput)
      })
    )
}
