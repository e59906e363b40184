/**
 * `ripple resume <run>`: continues a failed, crashed, paused or due run here, or hands it back to
 * the workers (`--queue`). A dormant run asked to cancel by a process that went away before it
 * ended it is ended `cancelled` instead (`Runs.wake`), nothing of it resumed.
 *
 * @since 0.1.0
 */
import { type Handler, type Runs, type RunStore, Wake } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Command from "effect/cli/Command"
import * as Problem from "../Problem.ts"
import * as Flags from "./Flags.ts"
import * as Follow from "./Follow.ts"
import * as Output from "./Output.ts"
import { print } from "./Output.ts"
import { databaseOptions, type Session } from "./Session.ts"

const pausedByPause = (found: RunStore.Run) => Object.values(found.machine.context.dormant).some((reason) => reason._tag === "Pause")

// Continues the run here, or records the request for the process that owns it.
const resumeHere = (run: string, layer: Layer.Layer<Handler.Handlers>) => (runs: Runs.Runs["Service"], store: RunStore.RunStore["Service"]) =>
  Effect.gen(function*() {
    const found = yield* store.getRun(run)
    // Continuing the run here needs the handlers of its block types; its owner has its own.
    const handlersHere = Effect.gen(function*() {
      if ((yield* runs.handling(run))._tag === "Owner") return
      yield* Follow.requireHandlers(run, yield* store.loadWorkflow(found.version), layer, {
        unchanged: "the run is left as it is",
        command: `ripple resume ${run}`
      })
    })
    const continued = (owner: string | undefined) =>
      owner === undefined
        ? Effect.succeed<Follow.Acted>({ _tag: "Executing", runId: run })
        : Effect.map(store.getRun(run), (after) => Follow.delegatedFrom(after, owner, true))
    // Asked to cancel by a process that went away before it ended the run: the cancel wins over
    // resuming it, and `wake` ends it (unless something wakes it, or another process owns it).
    if (Wake.canWake(found.status) && found.cancelRequestedAt !== undefined && Wake.event(found, yield* store.deliveries(run), Date.now()) === undefined) {
      if ((yield* runs.wake(run)) === "cancelled") {
        yield* print(`run ${run} was asked to cancel and nobody had ended it: cancelled here, nothing of it resumed`)
        return { _tag: "Stopped", runId: run } as const
      }
    }
    switch (found.status) {
      case "failed": {
        yield* handlersHere
        const resumed = yield* runs.resume(run)
        return yield* continued("owner" in resumed ? resumed.owner : undefined)
      }
      case "running": {
        yield* handlersHere
        const holder = Wake.holder(found, Date.now())
        // Another process's lease: `resume` waits for its renewal (a live owner) or its expiry (a dead one).
        if (holder !== undefined) {
          yield* print(
            `run ${run} is leased by ${holder}: waiting for it to renew the lease (alive: it keeps the run) or for the lease to expire (then the run continues here)`
          )
        }
        const resumed = yield* runs.resume(run)
        if (!("owner" in resumed)) return yield* continued(undefined)
        if (resumed.held !== true) return yield* continued(resumed.owner)
        // A queued run's worker holds its lease (not seen renewing it: should it have died, another
        // worker takes the run over when the lease expires); any other owner renewed it.
        const holding = found.queued === true
          ? `the worker ${resumed.owner}, which holds its lease (should it have stopped, another worker takes the run over when the lease expires)`
          : `${resumed.owner}, which renews its lease`
        return {
          _tag: "Recorded",
          runId: run,
          message: `run ${run} is running in ${holding}: nothing to resume${
            Wake.pauseAsked(found) ? " (the pause asked of it is withdrawn)" : ""
          }; see it with \`ripple show ${run}\``
        } as const
      }
      case "paused":
        if (pausedByPause(found)) {
          yield* handlersHere
          yield* runs.unpause(run)
          const handling = yield* runs.handling(run)
          return yield* continued(handling._tag === "Owner" ? handling.owner : undefined)
        }
        break
      case "suspended": {
        if (Wake.event(found, yield* store.deliveries(run), Date.now()) !== undefined) yield* handlersHere
        const after = yield* runs.wake(run)
        const handling = yield* runs.handling(run)
        if (handling._tag === "Owner") {
          // Its owner wakes it when it can; with nothing to wake it now, there is nothing to hand over.
          if (Wake.event(found, yield* store.deliveries(run), Date.now()) === undefined) break
          return Follow.delegatedFrom(found, handling.owner, false)
        }
        if (after !== "suspended") return { _tag: "Executing", runId: run } as const
        // Waiting on children that crashed (a process died while they executed) or were paused
        // (`ripple pause`, Ctrl-C): they go on here.
        const children = yield* store.children(run)
        const crashed = children.filter((c) => c.status === "running" || c.status === "pending")
        const parked: Array<string> = []
        for (const child of children) {
          if (child.status === "paused" && pausedByPause(yield* store.getRun(child.runId))) parked.push(child.runId)
        }
        if (crashed.length === 0 && parked.length === 0) break
        for (const child of crashed) yield* runs.resume(child.runId)
        for (const child of parked) yield* runs.unpause(child)
        return { _tag: "Executing", runId: run } as const
      }
    }
    return yield* Problem.badInput(
      `run ${run} is ${found.status}; nothing to resume now`,
      found.status === "paused" || found.status === "suspended"
        ? `it awaits an approval, a signal or a timer: see \`ripple show ${run}\``
        : found.status === "pending" && found.queued === true
        ? "it waits in the workers' queue: `ripple worker` on the same database executes it"
        : "resume continues failed, crashed, paused or due sleeping runs"
    )
  }).pipe(Effect.mapError((error) => error instanceof Problem.Problem ? error : Problem.fromStoreError(run, error)))

// `resume --queue`: the workers continue the run.
const requeue = (session: Session, run: string) =>
  Effect.gen(function*() {
    const status = yield* session.backend.requeue({ ...(yield* databaseOptions), mustExist: true }, run).pipe(Effect.mapError((error) =>
      error instanceof Problem.Problem
        ? error
        : error._tag === "IllegalTransition"
        ? Problem.badInput(
          `run ${run} is ${error.from}; only a paused (by ripple pause), failed or crashed run can be handed to the workers`,
          `see the run with \`ripple show ${run}\``
        )
        : Problem.fromStoreError(run, error)
    ))
    yield* print(`run ${run} queued for \`ripple worker\` (${status})`)
    return { code: Problem.ExitCode.completed, json: { runId: run, queued: true, status } }
  })

/**
 * The `resume` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("resume", {
    run: Flags.run,
    handlers: Flags.handlers,
    queue: Flags.queue("Hand the run back to `ripple worker` processes instead of continuing it here"),
    wait: Flags.wait,
    ...Output.flags
  }, ({ handlers, queue, run, ...options }) =>
    Output.report(
      options.format,
      queue
        ? requeue(session, run)
        : Effect.andThen(
          Flags.checkWait(options.wait),
          Effect.flatMap(Flags.handlersOf(handlers), (layer) => Follow.follow(session, layer, { ...options, existing: true }, resumeHere(run, layer)))
        )
    )).pipe(Command.withDescription(
      "Continue a failed or crashed run (only unfinished nodes re-run), a paused run, a due sleeper, or a run whose child runs crashed; a run a worker owns is handed to it"
    ))
