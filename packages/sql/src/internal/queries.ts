/**
 * Read-only queries over many runs: a run's children, and how many unfinished runs of a workflow
 * are at each block.
 */
import { type RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import type { Db } from "./transact.ts"

/** The queries of one store. */
export const make = ({ sql, transact }: Db) => {
  const children = (runId: string) =>
    Effect.gen(function*() {
      const rows = yield* transact("children", sql<{ readonly id: string | null; readonly parent_node: string | null; readonly status: RunStatus.Status | null }>`
        SELECT c.id, c.parent_node, c.status FROM ripple_runs r
        LEFT JOIN ripple_runs c ON c.parent_run = r.id
        WHERE r.id = ${runId} ORDER BY c.created_at, c.id`)
      if (rows.length === 0) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows.flatMap((row): Array<RunStore.Child> =>
        row.id === null || row.status === null ? [] : [{ runId: row.id, node: row.parent_node ?? "", status: row.status }]
      )
    })
  const atBlocks = (workflowId: string) =>
    Effect.map(
      transact("atBlocks", sql<{ readonly node: string; readonly n: number | bigint | string }>`SELECT j.node, count(*) AS n
        FROM ripple_runs r JOIN ripple_journal j ON j.run_id = r.id AND j.status = 'running'
        WHERE r.workflow_id = ${workflowId} AND r.status IN ('pending', 'running', 'suspended', 'paused')
        GROUP BY j.node`),
      (rows) => Object.fromEntries(rows.map((row) => [row.node, Number(row.n)]))
    )

  return { children, atBlocks }
}
