/**
 * The saga compensation log of a run: planned, then each compensation's outcome, fenced like every
 * execution write.
 */
import type { Workflow } from "@ripple/core"
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import { asJson } from "./rows.ts"
import type { Runs } from "./runs.ts"
import { type Db, json } from "./transact.ts"

type Json = Workflow.Json
type Lease = RunStore.Lease

/** The compensation log statements of one store. */
export const make = ({ sql, transact }: Db, { notWritten }: Runs) => {
  // The fence of a compensation-log write: the run row locked for share (holding the lease, when fenced).
  const fencedRun = (lease: Lease | undefined, runId: string) =>
    lease === undefined
      ? sql`SELECT id FROM ripple_runs WHERE id = ${runId} FOR SHARE`
      : sql`SELECT id FROM ripple_runs WHERE id = ${runId} AND lease_owner = ${lease.owner}
          AND lease_generation = ${lease.generation} FOR SHARE`

  const planCompensations = (lease: Lease | undefined) => (runId: string, nodes: ReadonlyArray<string>, at: number) =>
    Effect.gen(function*() {
      const rows = yield* transact("planCompensations", sql<{ readonly found: boolean }>`WITH run AS (
          ${fencedRun(lease, runId)}
        ), planned AS (
          INSERT INTO ripple_compensations (run_id, node, seq, status, at)
          SELECT run.id, n.node, COALESCE((SELECT max(seq) FROM ripple_compensations WHERE run_id = run.id), 0) + n.i, 'pending', ${at}
          FROM run, jsonb_array_elements_text(${json(nodes as Array<Json>)}::jsonb) WITH ORDINALITY AS n(node, i)
          ON CONFLICT (run_id, node) DO NOTHING
          RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM run) AS found`)
      if (rows[0]?.found !== true) return yield* notWritten(lease, runId)
    })

  const compensated = (lease: Lease | undefined) => (
    runId: string,
    node: string,
    outcome: { readonly status: "completed" | "failed"; readonly error?: string | undefined },
    at: number
  ) =>
    Effect.gen(function*() {
      const rows = yield* transact("compensated", sql<{ readonly found: boolean }>`WITH run AS (
          ${fencedRun(lease, runId)}
        ), written AS (
          INSERT INTO ripple_compensations (run_id, node, seq, status, error, at)
          SELECT run.id, ${node}, COALESCE((SELECT max(seq) FROM ripple_compensations WHERE run_id = run.id), 0) + 1,
            ${outcome.status}, ${outcome.error ?? null}, ${at}
          FROM run
          ON CONFLICT (run_id, node) DO UPDATE SET status = excluded.status, error = excluded.error, at = excluded.at
          RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM run) AS found`)
      if (rows[0]?.found !== true) return yield* notWritten(lease, runId)
    })
  const compensations = (runId: string) =>
    Effect.gen(function*() {
      // The error as JSON (`asJson`): a handler's message may start with U+FEFF.
      const rows = yield* transact("compensations", sql<{
        readonly node: string | null
        readonly status: RunStore.CompensationEntry["status"]
        readonly error: string | null
        readonly at: number
      }>`SELECT c.node, c.status, ${sql.literal(asJson("c.error", "error"))}, c.at FROM ripple_runs r
        LEFT JOIN ripple_compensations c ON c.run_id = r.id
        WHERE r.id = ${runId} ORDER BY c.seq`)
      if (rows.length === 0) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows.flatMap((row): Array<RunStore.CompensationEntry> =>
        row.node === null ? [] : [{ node: row.node, status: row.status, error: row.error ?? undefined, at: Number(row.at) }]
      )
    })

  return { planCompensations, compensated, compensations }
}
