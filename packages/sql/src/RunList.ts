/**
 * The stored runs of a database, newest first: what `ripple runs` and the studio list; and the
 * stored versions of a workflow with their runs, what `ripple versions` lists.
 *
 * **Details**
 *
 * Reads the runs table only (no journal, no snapshot), so a list of thousands of runs stays one
 * query. Ties on the creation time are broken by id, so the order is stable between calls. Both
 * lists go through the store's retries (`RunStore.RetryPolicy`): a transient fault costs a retry.
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
  /** When a cancel was requested that the run has not ended for yet (its owner ends it before its next block). */
  readonly cancelRequestedAt?: number | undefined
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
  readonly cancel_requested_at: number | string | null
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
      sql<Row>`SELECT id, ${sql.literal(asJson("workflow_id", "workflow_id"))}, status, mode, target, created_at, updated_at, cancel_requested_at
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
      updatedAt: Number(row.updated_at),
      ...(row.cancel_requested_at === null ? {} : { cancelRequestedAt: Number(row.cancel_requested_at) })
    }))
  })

/**
 * One stored version of a workflow as `versions` lists it.
 *
 * @since 0.1.0
 */
export interface VersionSummary {
  /** The content address (`RunStore.versionOf`); a `child` block's `workflow` may name it. */
  readonly version: string
  readonly workflowId: string
  readonly createdAt: number
  /** How many runs executed it. */
  readonly runs: number
  readonly lastRunAt: number | undefined
}

interface VersionRow {
  readonly version: string
  readonly workflow_id: string
  readonly created_ms: number | string
  readonly runs: number | string
  readonly last_run: number | string | null
}

/**
 * The stored versions of workflow `workflowId`, newest first, with how many runs executed each
 * (the migrations must have been applied). Retried like `list`; a fault that persists, or any
 * other database error, fails it with `RunStore.StoreUnavailable`.
 *
 * @since 0.1.0
 */
export const versions = (
  workflowId: string
): Effect.Effect<ReadonlyArray<VersionSummary>, RunStore.StoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { sql, transact } = yield* Transact.make
    const rows = yield* transact(
      "versions",
      sql<VersionRow>`SELECT v.version, v.workflow_id,
          (extract(epoch FROM v.created_at) * 1000)::bigint AS created_ms,
          count(r.id) AS runs, max(r.created_at) AS last_run
        FROM ripple_workflow_versions v LEFT JOIN ripple_runs r ON r.version = v.version
        WHERE v.workflow_id = ${workflowId}
        GROUP BY v.version, v.workflow_id, v.created_at
        ORDER BY v.created_at DESC, v.version`
    )
    return rows.map((row): VersionSummary => ({
      version: row.version,
      workflowId: row.workflow_id,
      createdAt: Number(row.created_ms),
      runs: Number(row.runs),
      lastRunAt: row.last_run === null ? undefined : Number(row.last_run)
    }))
  })
