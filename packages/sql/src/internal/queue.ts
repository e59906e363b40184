/**
 * The workers' queue: a run is queued by marking it and notifying the workers on `channel`; a new
 * run is created queued (the store notifies the workers with its insert). A worker takes a run it
 * holds the lease of off the queue (`dequeue`) when only an operator can help it on.
 */
import type { Workflow } from "@ripple/core"
import { type RunStatus, RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import * as Database from "../Database.ts"
import { channel, SqlRunStore } from "../SqlRunStore.ts"
import { leaseLost } from "./runs.ts"
import * as Transact from "./transact.ts"

type Json = Workflow.Json

/**
 * Stores a queued pending run (a child run when `parentRun` is given) and notifies the workers, in
 * the run's one insert: an outage leaves the run queued or not stored, never pending unqueued.
 */
export const queue = (
  workflow: Workflow.Workflow,
  input: { readonly [key: string]: Json },
  options: {
    readonly trigger?: string | undefined
    readonly to?: string | undefined
    readonly pins?: { readonly [node: string]: Json } | undefined
    readonly parentRun?: string | undefined
    readonly parentNode?: string | undefined
  }
): Effect.Effect<string, RunStore.WorkflowNotFound | RunStore.StoreUnavailable, SqlRunStore | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore
    const version = yield* store.saveWorkflow(workflow)
    const at = yield* Clock.currentTimeMillis
    const run = yield* store.createRun({ version, mode: "full", input, at, ...options, queued: true })
    return run.id
  })

/**
 * Marks a run queued for the workers and notifies them, in one statement (the notification goes
 * out when it commits); retried like a store statement (sending it twice is harmless).
 */
export const announce = (runId: string): Effect.Effect<void, RunStore.StoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { sql, transact } = yield* Transact.make
    yield* transact(
      "announce",
      sql`WITH queued AS (UPDATE ripple_runs SET queued = TRUE WHERE id = ${runId})
      SELECT pg_notify(${channel}, ${runId})`
    )
  })

/**
 * Takes a run off the workers' queue, in one statement fenced by `lease` (the worker's): no worker
 * claims it again until it is queued again (`Worker.requeue`), and any process's `Runs` may
 * continue it (`Wake.ownerOf`). Returns the run's status; a lease no longer held fails it with
 * `LeaseLost`. Retried like a store statement (sending it twice is harmless).
 */
export const dequeue = (
  { sql, transact }: Transact.Db,
  lease: RunStore.Lease
): Effect.Effect<RunStatus.Status, RunStore.LeaseLost | RunStore.StoreUnavailable> =>
  Effect.gen(function*() {
    const rows = yield* transact(
      "dequeue",
      sql<{ readonly status: RunStatus.Status }>`UPDATE ripple_runs SET queued = FALSE
        WHERE id = ${lease.runId} AND lease_owner = ${lease.owner} AND lease_generation = ${lease.generation}
        RETURNING status`
    )
    const row = rows[0]
    return row === undefined ? yield* Effect.fail(leaseLost(lease)) : row.status
  })

/** Notifies the workers on `channel`, retried like a store statement (a notification twice is harmless). */
export const notify = (payload: string): Effect.Effect<void, RunStore.StoreUnavailable, Database.Database> =>
  Effect.gen(function*() {
    const db = yield* Database.Database
    yield* Transact.retrying(yield* RunStore.RetryPolicy)("notify", db.notify(channel, payload))
  })
