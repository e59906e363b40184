/**
 * `ripple show <run>`: a stored run, node by node.
 *
 * @since 0.1.0
 */
import type { Snapshot } from "@ripple/core"
import { RunStatus, type RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Command from "effect/cli/Command"
import * as Problem from "../Problem.ts"
import * as Progress from "../Progress.ts"
import * as Flags from "./Flags.ts"
import { print, table } from "./Output.ts"
import type { Session } from "./Session.ts"

// One row per node, in execution order: reused nodes keep their first run's times, skipped ones
// have an end only.
const rows = (run: RunStore.Run, snapshot: Snapshot.Snapshot, reasons: Readonly<Record<string, ReadonlyArray<string>>>) => {
  const when = (record: Snapshot.NodeRecord) => record.startedAt ?? record.finishedAt ?? Number.MAX_SAFE_INTEGER
  return Object.entries(snapshot.nodes).sort(([, a], [, b]) => when(a) - when(b)).map(([node, record]) => {
    const reused = record.reusedFrom !== undefined && (reasons[node] !== undefined || run.sourceRun !== undefined)
    const how = record.status === "skipped"
      ? "skipped"
      : !reused
      ? "executed"
      : record.reusedFrom === run.sourceRun
      ? "reused"
      : `reused from ${record.reusedFrom}`
    const why = reasons[node]?.join("; ") ??
      (record.status === "skipped"
        ? "branch not taken"
        : run.mode === "full"
        ? "full run"
        : node === run.target
        ? "target"
        : reused
        ? ""
        : "in the re-run scope")
    const took = record.startedAt !== undefined && record.finishedAt !== undefined && !reused
      ? Progress.duration(record.finishedAt - record.startedAt)
      : "-"
    return [node, record.status, how, why === "" ? "-" : why, took, String(record.attempt)]
  })
}

/**
 * The `show` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("show", { run: Flags.run }, ({ run }) =>
    session.withStore((store) =>
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
        yield* print(table([["NODE", "STATUS", "HOW", "WHY", "DURATION", "ATTEMPT"], ...rows(found, snapshot, reasons)]))
        const failed = Object.entries(snapshot.nodes).filter(([, record]) => record.error !== undefined)
        for (const [node, record] of failed) yield* print(`${node}: ${record.error!.message}`)
        const machine = RunStatus.restore(found.machine)
        if ((found.status === "paused" || found.status === "suspended") && Result.isSuccess(machine)) {
          for (const text of Progress.awaiting(run, RunStatus.suspension(machine.success))) yield* print(text)
        }
      }))).pipe(Command.withDescription("Show a run: each node's status, whether it re-ran or was reused and why, duration, attempt"))
