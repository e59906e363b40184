/**
 * The stored runs of a database, newest first: what `ripple runs` and the studio list.
 *
 * **Details**
 *
 * Reads the runs table only (no journal, no snapshot), so a list of thousands of runs stays one
 * query. Ties on the creation time are broken by id, so the order is stable between calls.
 *
 * @since 0.1.0
 */
import type { RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import { asJson } from "./internal/rows.ts"
import * as Transact from "./internal/transact.ts"

/**
 * One stored run as a list shows it.
 *
 * @since 0.1.0
 */
export interface Summary {
  readonly id: string
  readonly workflowId: string
  readonly status: RunStatus.Status
  readonly mode: string
  /** The block a run-from re-ran from. */
  readonly target: string | undefined
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * Which runs to list: of one workflow and/or in one status (`undefined`: any).
 *
 * @since 0.1.0
 */
export interface Filter {
  readonly workflowId?: string | undefined
  readonly status?: RunStatus.Status | undefined
}

interface Row {
  readonly id: string
  readonly workflow_id: string
  readonly status: RunStatus.Status
  readonly mode: string
  readonly target: string | null
  readonly created_at: number | string
  readonly updated_at: number | string
}

/**
 * The runs matching `filter`, newest first (the migrations must have been applied). A transient
 * fault (a lost connection, a serialization failure) is retried like every statement of the store
 * (`RunStore.RetryPolicy`); one that persists, or any other database error, fails it with
 * `RunStore.StoreUnavailable`.
 *
 * @since 0.1.0
 */
export const list = (filter: Filter = {}): Effect.Effect<ReadonlyArray<Summary>, RunStore.StoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { sql, transact } = yield* Transact.make
    const conditions = [
      ...(filter.workflowId === undefined ? [] : [sql`workflow_id = ${filter.workflowId}`]),
      ...(filter.status === undefined ? [] : [sql`status = ${filter.status}`])
    ]
    const rows = yield* transact(
      "list",
      sql<Row>`SELECT id, ${sql.literal(asJson("workflow_id", "workflow_id"))}, status, mode, target, created_at, updated_at
        FROM ripple_runs ${conditions.length === 0 ? sql`` : sql`WHERE ${sql.and(conditions)}`}
        ORDER BY created_at DESC, id`
    )
    return rows.map((row): Summary => ({
      id: row.id,
      workflowId: row.workflow_id,
      status: row.status,
      mode: row.mode,
      target: row.target ?? undefined,
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at)
    }))
  })
