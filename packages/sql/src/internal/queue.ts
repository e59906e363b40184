/**
 * The workers' queue: a run is queued by marking it and notifying the workers on `channel`.
 */
import type { Workflow } from "@ripple/core"
import type { RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { channel, SqlRunStore } from "../SqlRunStore.ts"

type Json = Workflow.Json

/** Stores a queued pending run (a child run when `parentRun` is given) and notifies the workers. */
export const queue = (
  workflow: Workflow.Workflow,
  input: { readonly [key: string]: Json },
  options: { readonly trigger?: string | undefined; readonly parentRun?: string | undefined; readonly parentNode?: string | undefined }
): Effect.Effect<string, RunStore.WorkflowNotFound | RunStore.StoreUnavailable | SqlError, SqlRunStore | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { store } = yield* SqlRunStore
    const version = yield* store.saveWorkflow(workflow)
    const at = yield* Clock.currentTimeMillis
    const run = yield* store.createRun({ version, mode: "full", input, at, ...options })
    yield* announce(run.id)
    return run.id
  })


/**
 * Marks a run queued for the workers and notifies them, in one statement (the notification goes
 * out when it commits).
 */
export const announce = (runId: string): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`WITH queued AS (UPDATE ripple_runs SET queued = TRUE WHERE id = ${runId})
      SELECT pg_notify(${channel}, ${runId})`
  })

