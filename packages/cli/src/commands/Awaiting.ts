/**
 * What a dormant run awaits, and the exact command that continues it: an approval (with what is
 * to be approved), a signal, an unpause, a timer; for a run waiting on a child run, what the child
 * (or its own child) awaits and the command that continues it.
 *
 * @since 0.1.0
 */
import type { Workflow } from "@ripple/core"
import { Engine, RunStatus, type RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"

/**
 * One thing a dormant run awaits.
 *
 * @since 0.1.0
 */
export interface Awaited {
  readonly kind: "approval" | "signal" | "pause" | "sleep" | "child"
  /** The run the command acts on: the run itself, or a descendant it waits on (`through`). */
  readonly runId: string
  /** The child runs between the run asked about and `runId`, outermost first. */
  readonly through: ReadonlyArray<string>
  /** approval, pause: the node; child: the child run's status. */
  readonly node?: string | undefined
  readonly signal?: string | undefined
  /** sleep: when it is due (epoch ms). */
  readonly until?: number | undefined
  /** approval: its resolved params, what is to be approved. */
  readonly params?: Workflow.Json | undefined
  /** child (one that is not dormant itself): its status. */
  readonly status?: RunStatus.Status | undefined
  /** The command that continues the run. */
  readonly command: string
}

const childPrefix = Engine.childSignal("")

/**
 * Everything `runId` awaits (nothing unless it is paused or suspended). `suffix` is appended to
 * every command (the database options the user gave).
 *
 * @since 0.1.0
 */
export const of = (
  store: RunStore.RunStore["Service"],
  runId: string,
  suffix = ""
): Effect.Effect<ReadonlyArray<Awaited>, RunStore.RunNotFound | RunStore.WorkflowNotFound | RunStore.StoreUnavailable> =>
  awaiting(store, runId, [], suffix)

const awaiting = (
  store: RunStore.RunStore["Service"],
  runId: string,
  through: ReadonlyArray<string>,
  suffix: string
): Effect.Effect<ReadonlyArray<Awaited>, RunStore.RunNotFound | RunStore.WorkflowNotFound | RunStore.StoreUnavailable> =>
  Effect.gen(function*() {
    const run = yield* store.getRun(runId)
    const machine = RunStatus.restore(run.machine)
    if ((run.status !== "paused" && run.status !== "suspended") || Result.isFailure(machine)) {
      return through.length === 0
        ? []
        : [{ kind: "child", runId, through, status: run.status, command: `ripple show ${runId}${suffix}` } as const]
    }
    const suspension = RunStatus.suspension(machine.success)
    const snapshot = suspension.approvals.length === 0 ? undefined : yield* store.snapshot(runId)
    const found: Array<Awaited> = suspension.approvals.map((node) => ({
      kind: "approval",
      runId,
      through,
      node,
      params: snapshot?.nodes[node]?.inputs,
      command: `ripple approve ${runId} ${node}${suffix} [--payload <json>] (or --reject <reason>)`
    }))
    for (const signal of suspension.signals) {
      if (signal.startsWith(childPrefix)) {
        const child = signal.slice(childPrefix.length)
        found.push(...yield* awaiting(store, child, [...through, child], suffix))
      } else {
        found.push({ kind: "signal", runId, through, signal, command: `ripple signal ${runId} ${signal}${suffix} [--payload <json>]` })
      }
    }
    for (const node of suspension.pauses) found.push({ kind: "pause", runId, through, node, command: `ripple resume ${runId}${suffix}` })
    if (suspension.wakeAt !== null) {
      found.push({
        kind: "sleep",
        runId,
        through,
        until: suspension.wakeAt,
        command: `ripple worker${suffix} (or ripple resume ${runId}${suffix} once due)`
      })
    }
    return found
  })
