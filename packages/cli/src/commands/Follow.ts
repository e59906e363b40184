/**
 * Following what a command did to a run: the run executes here (its lines, a summary, what it
 * awaits), or another process owns it (the request is handed over and waited for), or the request
 * was only recorded.
 *
 * @since 0.1.0
 */
import type { Workflow } from "@ripple/core"
import { type Handler, type RunEvent, type Runs, type RunStatus, type RunStore, Wake } from "@ripple/runtime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Command from "effect/cli/Command"
import * as Stream from "effect/Stream"
import * as Problem from "../Problem.ts"
import * as Progress from "../Progress.ts"
import * as Source from "../Source.ts"
import * as Flags from "./Flags.ts"
import { print, style as styleOf } from "./Output.ts"
import type { Session } from "./Session.ts"

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
 * Ends the command with `code` (a silent problem when it is not 0).
 *
 * @since 0.1.0
 */
export const ended = (code: number): Effect.Effect<void, Problem.Problem> =>
  code === 0 ? Effect.void : Effect.fail(new Problem.Problem({ problem: "", fix: "", code }))

/**
 * Prints what a dormant run awaits and the commands that continue it.
 *
 * @since 0.1.0
 */
export const printAwaiting = (runs: Runs.Runs["Service"], runId: string): Effect.Effect<void> =>
  Effect.flatMap(runs.status(runId).pipe(Effect.orDie), (info) =>
    Effect.forEach(Progress.awaiting(runId, info.suspension), print, { discard: true }))

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
 * Prints the events of the run `act` starts or continues (when it executes here), then a summary
 * and what a dormant run awaits; ends with the exit code of the run's status.
 *
 * **Details**
 *
 * Child runs execute in this process too: their lines are prefixed with their id, and the command
 * lasts until the run no longer waits for children of its own (and, when the run is a child that
 * ended, until the parent it woke stops). A request another process carries out is waited for, at
 * most `wait` seconds.
 *
 * @since 0.1.0
 */
export const follow = (
  session: Session,
  handlers: Layer.Layer<Handler.Handlers>,
  wait: number,
  act: (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) => Effect.Effect<Acted, Problem.Problem>
): Effect.Effect<void, Problem.Problem, Command.CommandContext<"ripple">> =>
  session.withRuns(handlers, (runs, store) =>
    Effect.scoped(Effect.gen(function*() {
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
      const lines = printer(runId)
      const printing = yield* Effect.forkScoped(executing ? lines.run(events) : Effect.void)
      // Followed while the executions are still known, so this joins them to their very end:
      // closing the layer before would leave a dormant run's children, or a woken parent, unfinished.
      const { ancestors, status } = yield* runs.follow(runId).pipe(Effect.mapError((error) => Problem.executionStopped(runId, error)))
      for (const ancestor of ancestors) yield* print(`parent run ${ancestor.runId} is ${ancestor.status}`)
      // The printer has seen the run's last event (it follows the publication at once).
      for (let i = 0; executing && lines.finished() !== status && i < 200; i++) yield* Effect.sleep(5)
      yield* Fiber.interrupt(printing)
      if (executing) {
        const { pruned } = yield* store.getRun(runId).pipe(Effect.orDie)
        yield* print(Progress.summary(lines.style, runId, status, lines.tally(), Date.now() - began, pruned))
      } else yield* print(`run ${runId} is ${status}`)
      if (status === "paused" || status === "suspended") yield* printAwaiting(runs, runId)
      return exitCodeOf(status)
    }))).pipe(Effect.flatMap(ended))

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

/**
 * Starts a new run of a loaded workflow (checked executable first) and follows it.
 *
 * @since 0.1.0
 */
export const execute = (
  session: Session,
  source: Source.Source,
  launch: (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) => Effect.Effect<Runs.Started, Runs.RunsError | Problem.Problem>
) =>
  Effect.andThen(
    Source.checkExecutable(source),
    follow(session, source.handlers, 0, (runs, store) =>
      launch(runs, store).pipe(
        Effect.map((started): Acted => ({ _tag: "Executing", runId: started.runId })),
        Effect.mapError((error) => error instanceof Problem.Problem ? error : Problem.fromRunsError(source.file, error))
      ))
  )

/**
 * Delivers something to a stored run (a signal, a decision). When that wakes it, the run continues
 * here, or its owner (another process) takes it; a delivery the run does not await yet is kept for it.
 *
 * @since 0.1.0
 */
export const deliver = (session: Session, flags: {
  readonly run: string
  readonly handlers: Option.Option<string>
  readonly wait: number
  readonly payload: Option.Option<string>
}, options: {
  /** What is delivered, for messages. */
  readonly what: string
  /** Whether the run, read before the delivery, awaits it. */
  readonly awaits: (run: RunStore.Run) => boolean
  readonly refused: (status: RunStatus.Status) => Problem.Problem
  /** Sends the `--payload` value. */
  readonly send: (
    runs: Runs.Runs["Service"],
    payload: Workflow.Json
  ) => Effect.Effect<boolean, RunStore.RunStoreError | Runs.PlanFailed | Runs.InvalidPayload>
}) => {
  const { run: runId, wait } = flags
  return Effect.gen(function*() {
    const payload = yield* Flags.parseJson("--payload", Option.getOrUndefined(flags.payload))
    yield* Flags.checkWait(wait)
    return [payload, yield* Flags.handlersOf(flags.handlers)] as const
  }).pipe(Effect.flatMap(([payload, layer]) =>
    follow(session, layer, wait, (runs, store) =>
      Effect.gen(function*() {
        const before = yield* store.getRun(runId)
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
