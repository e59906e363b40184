/**
 * Snapshot reads: a run's snapshot (its row and dormancies, then its node records and scopes a row
 * each, in one transaction), checked or not, the latest snapshot of a (workflow, trigger), and a run's reasons.
 */
import { Snapshot } from "@ripple/core"
import { RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as SqlClient from "effect/sql/SqlClient"
import {
  CorruptRun,
  journalMarks,
  type PartRow,
  recordSql,
  runTexts,
  type SnapshotRow,
  snapshotOf as decode,
  triggerKey
} from "./rows.ts"
import type { Db } from "./transact.ts"
import type { Workflows } from "./workflows.ts"

/** The snapshot reads of one store. */
export const make = ({ sql, transact }: Db, { loadWorkflow }: Workflows) => {
  // The run row, then its node records and scopes a row each (no row, so no wire message, holds
  // more than one node's values), both in one repeatable-read transaction so they agree (inside a
  // caller's transaction, a savepoint of it, under the caller's isolation).
  const readSnapshot = (runId: string) =>
    Effect.gen(function*() {
      const [rows, parts] = yield* transact(
        "snapshot",
        sql.withTransaction(Effect.gen(function*() {
          const rows = yield* sql<SnapshotRow>`SELECT r.*,
              (SELECT jsonb_agg(j.dormancy ORDER BY j.written) FROM ripple_journal j
                WHERE j.run_id = r.id AND j.dormancy IS NOT NULL) AS dormancies
              , ${sql.literal(journalMarks)}, ${sql.literal(runTexts("r."))}
            FROM ripple_runs r WHERE r.id = ${runId}`
          if (rows.length === 0) return [rows, []] as const
          // Nodes in the order jsonb gives object keys (shorter first, then bytewise), as when
          // they were one jsonb object.
          const parts = yield* sql<PartRow>`SELECT * FROM (
              SELECT 'node' AS kind, j.node AS key, ${sql.literal(recordSql)} AS record,
                j.inputs::text AS inputs, j.output::text AS output, NULL AS value
              FROM ripple_journal j WHERE j.run_id = ${runId}
              UNION ALL
              SELECT s.kind, s.scope, NULL, NULL, NULL, s.value::text
              FROM ripple_scopes s WHERE s.run_id = ${runId}
            ) p ORDER BY p.kind = 'node' DESC, octet_length(p.key), p.key COLLATE "C"`
          return [rows, parts] as const
        })).pipe(Effect.provideService(SqlClient.BeginTransaction, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
      )
      const row = rows[0]
      if (row === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return { row, parts }
    })

  // The workflow version is read (once per store) to complete the row's snapshot.
  const snapshotOf = ({ parts, row }: { readonly row: SnapshotRow; readonly parts: ReadonlyArray<PartRow> }) =>
    Effect.map(loadWorkflow(row.version), (workflow) => decode(row, parts, workflow))

  const snapshot = (runId: string) => Effect.flatMap(readSnapshot(runId), snapshotOf)

  const reasons = (runId: string) =>
    Effect.gen(function*() {
      const rows = yield* transact("reasons", sql<{ readonly node: string | null; readonly reasons: ReadonlyArray<string> | null }>`
        SELECT j.node, j.reasons FROM ripple_runs r
        LEFT JOIN ripple_journal j ON j.run_id = r.id AND j.reasons IS NOT NULL
        WHERE r.id = ${runId}`)
      if (rows.length === 0) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      const found: Record<string, ReadonlyArray<string>> = {}
      for (const row of rows) if (row.node !== null && row.reasons !== null) found[row.node] = row.reasons
      return found
    })

  const latestSnapshot = (workflowId: string, trigger?: string | undefined) =>
    Effect.gen(function*() {
      const rows = yield* transact("latestSnapshot", sql<{ readonly run_id: string }>`SELECT run_id FROM ripple_latest
        WHERE workflow_id = ${workflowId} AND trigger_key = ${triggerKey(trigger)}`)
      const row = rows[0]
      if (row === undefined) return Option.none()
      // The latest run exists (a foreign key holds it), so only its workflow version can be missing.
      return Option.some(yield* Effect.catchTag(snapshot(row.run_id), "RunNotFound", Effect.die))
    })

  const checkedSnapshot = (runId: string) =>
    Effect.gen(function*() {
      const read = yield* readSnapshot(runId)
      const restored = RunStatus.restore(read.row.machine)
      if (Result.isFailure(restored)) {
        return yield* Effect.fail(new CorruptRun({ runId, reason: `run status: ${restored.failure.message}` }))
      }
      const decoded = Snapshot.decode(yield* snapshotOf(read))
      if (Result.isFailure(decoded)) return yield* Effect.fail(new CorruptRun({ runId, reason: decoded.failure.message }))
      return decoded.success
    })

  return { snapshot, checkedSnapshot, latestSnapshot, reasons }
}
