/**
 * How an execution ends, written once for every part of the engine: the run settles by its
 * machine (`ALL_BRANCHES_FINISHED`, the `RunStatus` priority over dormant and failed branches), a
 * failed run runs its saga compensations first, and the diagnostics go out with the final event.
 */
import type { Snapshot } from "@ripple/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type { Execution, Options } from "../Engine.ts"
import * as Handler from "../Handler.ts"
import * as RunStatus from "../RunStatus.ts"
import { type CompensationEntry, type Run, RunStore } from "../RunStore.ts"
import * as Saga from "./saga.ts"

/** What the engine needs to finalize the run; filled in as the execution goes (it survives an interruption). */
export interface Outcome {
  failures: number
  readonly messages: Array<string>
  /** Rewritten in place as nodes start (`noteLast`): copied when the run finishes. */
  lastStarted: { node: string; at: number } | undefined
  /** Rewritten in place as nodes complete (`noteLast`): copied when the run finishes. */
  lastCompleted: { node: string; at: number } | undefined
}

/**
 * `last` rewritten to `node` at `at`, or made when there is none yet: an execution notes the last
 * started and completed node once per wave (once per node on a chain), one object each.
 */
export const noteLast = (last: { node: string; at: number } | undefined, node: string, at: number): { node: string; at: number } => {
  if (last === undefined) return { node, at }
  last.node = node
  last.at = at
  return last
}

/**
 * Whether a run stopped while compensating (or after its last compensation, before it was marked
 * failed): a compensation is pending, or some were made and its machine still holds the failures
 * that started them. Such a run only finishes compensating when resumed. A failed run resumed on
 * purpose has had its failures cleared (`RESUME`): it retries its failed nodes instead.
 */
export const compensating = (log: ReadonlyArray<CompensationEntry>, run: Run): boolean =>
  log.some((c) => c.status === "pending") || (log.length > 0 && run.machine.context.failures.length > 0)

/** Runs the saga compensations of a run that failed (`order`: this execution's completions). */
const compensateFailed = (
  execution: Execution,
  options: Options,
  order: ReadonlyArray<string>,
  messages: Array<string>
) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const handlers = yield* Handler.Handlers
    const clock = yield* Clock.Clock
    yield* Saga.compensate({
      runId: execution.runId,
      mode: execution.mode,
      workflow: execution.plan.workflow,
      input: execution.input,
      handlers,
      store,
      clock,
      tracing: options.tracing === true,
      order,
      messages,
      control: execution.control ?? { pauseRequested: false }
    })
  })

/**
 * Finishes compensating a run that stopped while compensating. A run with pending compensations
 * failed, whatever its machine says now: whoever resumed it may have reset the machine's failures (a
 * worker taking over a crashed run does), so it ends failed either way.
 */
export const resumeCompensation = (execution: Execution, options: Options) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const at = yield* Clock.currentTimeMillis
    const run = yield* store.getRun(execution.runId)
    execution.publish({ _tag: "RunStarted", runId: execution.runId, mode: execution.mode, at })
    // The crashed execution may not have written its diagnostics: its failures are in the journal.
    const messages = run.diagnostics.messages.length > 0
      ? [...run.diagnostics.messages]
      : Object.entries(execution.source?.nodes ?? {}).flatMap(([node, record]) =>
        record.status === "failed" && record.error !== undefined ? [`${node} failed: ${record.error.message}`] : []
      )
    const outcome: Outcome = { failures: 0, messages, lastStarted: undefined, lastCompleted: undefined }
    return yield* Effect.uninterruptible(Effect.flatMap(
      settling(execution.runId),
      (settled) =>
        finishRun(
          execution,
          options,
          outcome,
          "failed",
          settled === "failed" ? { type: "ALL_BRANCHES_FINISHED" } : { type: "FAIL", error: messages[0] ?? "failed, then compensated after a crash" },
          []
        )
    ))
  })

/** How an execution ended, as its diagnostics record it. */
export type Finalization = NonNullable<Snapshot.Diagnostics["finalization"]>

/**
 * Ends an execution: runs the saga compensations of a failed run (when `order` tracks them),
 * records the diagnostics and offers the final event in one store write, then publishes the status
 * change and `RunFinished`. Every way an execution ends goes through it.
 */
export const finishRun = (
  execution: Execution,
  options: Options,
  outcome: Outcome,
  finalization: Finalization,
  event: RunStatus.Event,
  order: ReadonlyArray<string> | undefined
) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    if (finalization === "failed" && order !== undefined) yield* compensateFailed(execution, options, order, outcome.messages)
    const at = yield* Clock.currentTimeMillis
    const { publish, runId } = execution
    const changed = yield* store.finish(runId, event, {
      ...(outcome.lastStarted === undefined ? {} : { lastStarted: { ...outcome.lastStarted } }),
      ...(outcome.lastCompleted === undefined ? {} : { lastCompleted: { ...outcome.lastCompleted } }),
      finalization,
      messages: outcome.messages
    }, at)
    if (changed.from !== changed.to) publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
    publish({ _tag: "RunFinished", runId, status: changed.to, at })
    return changed.to
  })

/** What `ALL_BRANCHES_FINISHED` will settle the run in, read from its stored machine. */
export const settling = (runId: string) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const run = yield* store.getRun(runId)
    const restored = RunStatus.restore(run.machine)
    if (Result.isFailure(restored)) return yield* Effect.die(restored.failure)
    const next = RunStatus.next(restored.success, { type: "ALL_BRANCHES_FINISHED" })
    return next._tag === "Accepted" ? next.status as Finalization : "failed"
  })
