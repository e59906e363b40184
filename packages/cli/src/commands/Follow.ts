/**
 * Following what a command did to a run: the run executes here (its lines, a summary, what it
 * awaits), or another process owns it (the request is handed over and waited for), or the request
 * was only recorded.
 *
 * @since 0.1.0
 */
import type { Workflow } from "@ripple/core"
import { Engine, Handler, type RunEvent, type Runs, type RunStatus, type RunStore, Wake } from "@ripple/runtime"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Command from "effect/cli/Command"
import * as Stream from "effect/Stream"
import * as Problem from "../Problem.ts"
import * as Progress from "../Progress.ts"
import * as Source from "../Source.ts"
import * as Awaiting from "./Awaiting.ts"
import * as Interrupt from "./Interrupt.ts"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { print, style as styleOf } from "./Output.ts"
import { continuation, type Session } from "./Session.ts"

/**
 * Refuses (exit 2, before anything changes) to execute run `run` here when its workflow has block
 * types that neither the engine nor `layer`'s handlers implement: the nodes would fail the run.
 * `unchanged` says what was left as it is, `command` is the command to repeat with `--handlers`.
 *
 * @since 0.1.0
 */
export const requireHandlers = (
  run: string,
  workflow: Workflow.Workflow,
  layer: Layer.Layer<Handler.Handlers>,
  options: { readonly unchanged: string; readonly command: string }
) =>
  Effect.gen(function*() {
    const handlers = yield* Handler.Handlers
    const missing = [...new Set(workflow.blocks.map((block) => block.type))]
      .filter((type) => !Engine.intrinsicTypes.has(type) && handlers.get(type) === undefined)
    if (missing.length > 0) {
      return yield* Problem.badInput(
        `run ${run} of workflow ${workflow.id} has blocks of type ${missing.map((type) => JSON.stringify(type)).join(", ")}, which have no handler here; ${options.unchanged}`,
        `pass the module that exports their handlers: ${options.command} --handlers <module.js>`
      )
    }
  }).pipe(Effect.provide(layer))

/**
 * What an action did to a run: it executes here; or another process owns it, which took the
 * request once `taken` holds for the run; or the request was only recorded (`message` says so);
 * or nothing executes it (its status is reported).
 *
 * @since 0.1.0
 */
export type Acted =
  | { readonly _tag: "Executing"; readonly runId: string }
  | { readonly _tag: "Delegated"; readonly runId: string; readonly owner: string; readonly taken: (run: RunStore.Run) => boolean }
  | { readonly _tag: "Recorded"; readonly runId: string; readonly message: string }
  | { readonly _tag: "Stopped"; readonly runId: string }

/**
 * A request another process carries out: taken once the run moves on from `after` (read after the
 * request was recorded) or a lease on it is seen.
 *
 * @since 0.1.0
 */
export const delegatedFrom = (after: RunStore.Run, owner: string, own: boolean): Acted => {
  // The request itself left the run running (resume, unpause); anything else means someone acted.
  const moved = own && (after.status !== "running" || Wake.holder(after, Date.now()) !== undefined)
  return {
    _tag: "Delegated",
    runId: after.id,
    owner,
    taken: (run) => moved || run.status !== after.status || run.updatedAt !== after.updatedAt
  }
}

/**
 * The exit code of a run's status.
 *
 * @since 0.1.0
 */
export const exitCodeOf = (status: RunStatus.Status): number =>
  status === "completed"
    ? Problem.ExitCode.completed
    : status === "paused" || status === "suspended"
    ? Problem.ExitCode.dormant
    : Problem.ExitCode.failed

/**
 * Prints what a dormant run awaits and the commands that continue it; returns it.
 *
 * @since 0.1.0
 */
export const printAwaiting = (store: RunStore.RunStore["Service"], runId: string, full: boolean, suffix: string) =>
  Effect.gen(function*() {
    const items = yield* Awaiting.of(store, runId, suffix)
    for (const line of Progress.awaiting(items, full)) yield* print(line)
    return items
  })

// Prints the lines of the runs executing here (the followed one, and its children prefixed with
// their id); remembers the status the followed run finished in and keeps its tally.
const printer = (runId: string) => {
  const style = styleOf()
  const followers = new Map<string, ReturnType<typeof Progress.follower>>()
  const followerOf = (id: string) => {
    let found = followers.get(id)
    if (found === undefined) followers.set(id, found = Progress.follower(style))
    return found
  }
  let finished: RunStatus.Status | undefined
  const run = (events: Stream.Stream<RunEvent.RunEvent>) =>
    Stream.runForEach(events, (event) => {
      if (event._tag === "RunFinished" && event.runId === runId) finished = event.status
      const text = followerOf(event.runId).line(event)
      if (text === undefined) return Effect.void
      return print(event.runId === runId ? text : `  [${event.runId.slice(0, 8)}] ${text}`)
    })
  return { style, run, finished: () => finished, tally: () => followerOf(runId).tally }
}

/**
 * Prints the events of the run `act` starts or continues (when it executes here), then a summary,
 * its observed outputs and what a dormant run awaits; returns the report (`Output.report`) of the
 * run, with the exit code of its status.
 *
 * **Details**
 *
 * Child runs execute in this process too: their lines are prefixed with their id, and the command
 * lasts until the run no longer waits for children of its own (and, when the run is a child that
 * ended, until the parent it woke stops). A request another process carries out is waited for, at
 * most `wait` seconds. `existing` (a command on a stored run): an embedded data directory without a
 * database is refused (`Session.withRuns`).
 *
 * @since 0.1.0
 */
export const follow = (
  session: Session,
  handlers: Layer.Layer<Handler.Handlers>,
  options: Output.Options & { readonly wait: number; readonly existing?: boolean | undefined },
  act: (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) => Effect.Effect<Acted, Problem.Problem>
): Effect.Effect<Output.Report, Problem.Problem, Command.CommandContext<"ripple">> =>
  session.withRuns(handlers, (runs, store) =>
    Effect.scoped(Effect.gen(function*() {
      const began = Date.now()
      // Subscribed before acting, so the run's first events cannot be missed.
      const events = yield* runs.subscribe
      const acted = yield* act(runs, store)
      if (acted._tag === "Recorded") {
        yield* print(acted.message)
        return { code: Problem.ExitCode.completed, json: { runId: acted.runId, recorded: acted.message } }
      }
      const reported: Effect.Effect<Output.Report, Problem.Problem | RunStore.RunStoreError | Runs.InvalidOption, Command.CommandContext<"ripple">> = acted._tag === "Delegated"
        ? handedOver(runs, store, acted, options)
        : followed(runs, store, events, acted, began, options)
      return yield* Effect.mapError(reported, (error) => error instanceof Problem.Problem ? error : Problem.fromStoreError(acted.runId, error))
    })), { existing: options.existing })

// The run's executor stopped on a store failure (a full disk, a lost server): the run is left to
// resume, and the command says so (exit 1).
const stopped = <A>(runId: string, following: Effect.Effect<A, RunStore.RunStoreError | Runs.InvalidOption>) =>
  Effect.mapError(following, (error) => Problem.executionStopped(runId, error))

// Follows a run executing here until it stops, or until the user asks to stop (`Interrupt.Stop`):
// then it is parked, and running blocks get `Interrupt.graceMs` to finish (none: the run is
// followed to its end).
const stoppable = (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"], runId: string) =>
  Effect.gen(function*() {
    const signal = yield* Interrupt.Stop
    const run = Effect.runForkWith(yield* Effect.context<never>())
    const parking = Deferred.makeUnsafe<Fiber.Fiber<void, RunStore.RunStoreError | Runs.InvalidOption>>()
    const unlisten = signal.listen(() => Deferred.doneUnsafe(parking, Exit.succeed(run(Interrupt.park(runs, store, runId)))))
    const outcome = yield* Effect.raceFirst(Effect.map(stopped(runId, runs.follow(runId)), Option.some), Effect.as(Deferred.await(parking), Option.none())).pipe(
      Effect.ensuring(Effect.sync(unlisten))
    )
    if (Option.isSome(outcome)) return outcome
    yield* Console.error(
      `stopping run ${runId}: no block starts any more, running blocks finish (for up to ${Interrupt.graceMs / 1_000} s; Ctrl-C again exits at once)`
    )
    yield* Effect.timeoutOption(Fiber.join(yield* Deferred.await(parking)), Duration.millis(Interrupt.graceMs))
    return Option.none()
  })

// The run executes here (or nothing executes it: its status is reported).
const followed = (
  runs: Runs.Runs["Service"],
  store: RunStore.RunStore["Service"],
  events: Stream.Stream<RunEvent.RunEvent>,
  acted: Extract<Acted, { readonly _tag: "Executing" | "Stopped" }>,
  began: number,
  options: Output.Options
) =>
  Effect.scoped(Effect.gen(function*() {
    const { runId } = acted
    const executing = acted._tag === "Executing"
    const lines = printer(runId)
    const printing = yield* Effect.forkScoped(executing ? lines.run(events) : Effect.void)
    // Followed while the executions are still known, so this joins them to their very end:
    // closing the layer before would leave a dormant run's children, or a woken parent, unfinished.
    // The user may stop it meanwhile (Ctrl-C): it parks instead.
    const outcome = executing ? yield* stoppable(runs, store, runId) : Option.some(yield* stopped(runId, runs.follow(runId)))
    const interrupted = Option.isNone(outcome)
    const ancestors = Option.isSome(outcome) ? outcome.value.ancestors : []
    const status = Option.isSome(outcome) ? outcome.value.status : (yield* store.getRun(runId)).status
    for (const ancestor of ancestors) yield* print(`parent run ${ancestor.runId} is ${ancestor.status}`)
    // The printer has seen the run's last event (it follows the publication at once).
    for (let i = 0; executing && lines.finished() !== status && i < 200; i++) yield* Effect.sleep(5)
    yield* Fiber.interrupt(printing)
    const run = yield* store.getRun(runId)
    const elapsedMs = Date.now() - began
    if (executing) yield* print(Progress.summary(lines.style, runId, status, lines.tally(), elapsedMs, run.pruned))
    else yield* print(`run ${runId} is ${status}`)
    const outputs = yield* runs.outputs(runId)
    yield* Output.printOutputs(outputs, status, options.full)
    const suffix = yield* continuation
    const awaiting = yield* printAwaiting(store, runId, options.full, suffix)
    if (interrupted) yield* print(`interrupted: ripple resume ${runId}${suffix}`)
    const code = interrupted ? Problem.ExitCode.interrupted : exitCodeOf(status)
    return {
      code,
      json: {
        ...(interrupted ? { interrupted: true, resume: `ripple resume ${runId}${suffix}` } : {}),
        runId,
        workflowId: run.workflowId,
        status,
        exitCode: code,
        mode: run.mode,
        ...(executing ? { elapsedMs, counts: { ...lines.tally() } } : {}),
        ...(run.pruned === undefined ? {} : { pruned: run.pruned }),
        outputs,
        awaiting,
        parents: ancestors
      }
    }
  }))

// Another process owns the run: its request is recorded and the owner notified; wait (at most
// `wait` seconds, saying so) for the owner to take it and report what became of the run. The
// command did its part either way: exit 0.
const handedOver = (
  runs: Runs.Runs["Service"],
  store: RunStore.RunStore["Service"],
  acted: Extract<Acted, { readonly _tag: "Delegated" }>,
  options: Output.Options & { readonly wait: number }
) =>
  Effect.gen(function*() {
    const { owner, runId } = acted
    const { wait } = options
    yield* print(`run ${runId} is owned by ${owner}: request recorded, waiting up to ${wait}s for it to take it`)
    const handover = yield* runs.handover(runId, {
      taken: acted.taken,
      timeout: Duration.seconds(wait),
      onWaiting: (waitedMs, taken) =>
        print(`  ${taken ? "taken; still executing" : "not taken yet"} after ${Math.round(waitedMs / 1_000)}s`)
    })
    const { status } = handover.run
    const json = { runId, owner: handover.owner ?? owner, taken: handover.taken, status }
    if (!handover.taken) {
      yield* print(`run ${runId}: not taken by ${owner} within ${wait}s; the request is kept and the owner acts on it when it runs`)
      return { code: Problem.ExitCode.completed, json }
    }
    yield* print(`run ${runId}: taken by ${handover.owner}; ${status === "running" || status === "pending" ? `still ${status}` : `now ${status}`}`)
    const awaiting = status === "paused" || status === "suspended" ? yield* printAwaiting(store, runId, options.full, yield* continuation) : []
    return { code: Problem.ExitCode.completed, json: { ...json, awaiting } }
  })

/**
 * Starts a new run of a loaded workflow (checked executable first) and follows it.
 *
 * @since 0.1.0
 */
export const execute = (
  session: Session,
  source: Source.Source,
  options: Output.Options & { readonly existing?: boolean | undefined },
  launch: (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) => Effect.Effect<Runs.Started, Runs.RunsError | Problem.Problem>
) =>
  Effect.andThen(
    Source.checkExecutable(source),
    follow(session, source.handlers, { ...options, wait: 0 }, (runs, store) =>
      launch(runs, store).pipe(
        Effect.map((started): Acted => ({ _tag: "Executing", runId: started.runId })),
        Effect.mapError((error) => error instanceof Problem.Problem ? error : Problem.fromRunsError(source.file, error, source.workflow))
      ))
  )

/**
 * Delivers something to a stored run (a signal, a decision). When that wakes it, the run continues
 * here, or its owner (another process) takes it; a delivery the run does not await yet is kept for it.
 *
 * @since 0.1.0
 */
export const deliver = (session: Session, flags: Output.Options & {
  readonly run: string
  readonly handlers: Option.Option<string>
  readonly wait: number
  readonly payload: Option.Option<string>
}, options: {
  /** What is delivered, for messages. */
  readonly what: string
  /** The command that delivers it (without `--payload`), to repeat with `--handlers`. */
  readonly command: string
  /** Whether the run, read before the delivery, awaits it. */
  readonly awaits: (run: RunStore.Run) => boolean
  readonly refused: (status: RunStatus.Status) => Problem.Problem
  /** Sends the `--payload` value. */
  readonly send: (
    runs: Runs.Runs["Service"],
    payload: Workflow.Json
  ) => Effect.Effect<boolean, RunStore.RunStoreError | Runs.PlanFailed | Runs.InvalidPayload | Runs.InvalidOption>
}) => {
  const { run: runId, wait } = flags
  return Effect.gen(function*() {
    const payload = yield* Flags.parseJson("--payload", Option.getOrUndefined(flags.payload))
    yield* Flags.checkWait(wait)
    return [payload, yield* Flags.handlersOf(flags.handlers)] as const
  }).pipe(Effect.flatMap(([payload, layer]) =>
    follow(session, layer, { ...flags, existing: true }, (runs, store) =>
      Effect.gen(function*() {
        const before = yield* store.getRun(runId)
        // A delivery that wakes a run nobody else owns executes it here: only with its handlers.
        if (options.awaits(before) && (yield* runs.handling(runId))._tag !== "Owner") {
          yield* requireHandlers(runId, yield* store.loadWorkflow(before.version), layer, {
            unchanged: `${options.what} was not delivered and the run is left as it is`,
            command: options.command
          })
        }
        const accepted = yield* options.send(runs, payload)
        if (!accepted) return yield* options.refused(before.status)
        const handling = yield* runs.handling(runId)
        if (handling._tag === "Here") return { _tag: "Executing", runId } as const
        if (!options.awaits(before)) {
          return {
            _tag: "Recorded",
            runId,
            message: `run ${runId} is ${before.status}; ${options.what} stored for delivery: the run takes it when it reaches the block awaiting it`
          } as const
        }
        if (handling._tag === "Owner") return delegatedFrom(before, handling.owner, false)
        return { _tag: "Stopped", runId } as const
      }).pipe(Effect.mapError((error) => error instanceof Problem.Problem ? error : Problem.fromStoreError(runId, error))))))
}
