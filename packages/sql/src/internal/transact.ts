/**
 * The one place a statement of the store (or of a worker) meets the database: a `SqlError` becomes
 * `RunStore.StoreUnavailable` (reason by SQLSTATE) and the retryable ones are sent again with
 * backoff on the effect `Clock` (`RunStore.RetryPolicy`, read when this is built).
 */
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import { storeUnavailable } from "./errors.ts"

/** The client and its retrying runner, shared by the store's statement modules. */
export interface Db {
  readonly sql: SqlClient.SqlClient
  /**
   * Runs `statement` (its own implicit transaction, so a failed attempt wrote nothing or, after a
   * lost connection, possibly everything) under the retry policy.
   *
   * **Gotchas**
   *
   * It is sent again after a lost connection too, so it must be replayable: applying it twice
   * leaves what applying it once does, and answers the same (the writes that are not so by nature
   * find their committed first attempt by a token: leases, machine writes, deliveries).
   */
  readonly transact: <A>(operation: string, statement: Effect.Effect<A, SqlError>) => Effect.Effect<A, RunStore.StoreUnavailable>
}

/**
 * `statement` with the `SqlError` effect/sql raises as a defect made its failure: a transaction
 * (`sql.withTransaction`) whose connection is lost loses its ROLLBACK too, and effect/sql dies
 * with that error. Nothing was committed (the transaction was rolling back), so it is the
 * statement's lost connection, to be retried like any other.
 */
export const failing = <A, E, R>(statement: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  Effect.catchDefect(statement, (defect) => isSqlError(defect) ? Effect.fail(defect) : Effect.die(defect))

/** `Db["transact"]` under `policy`. */
export const retrying = (policy: Schedule.Schedule<unknown, RunStore.StoreUnavailable>): Db["transact"] =>
(operation, statement) =>
  RunStore.retry(
    Effect.mapError(failing(statement), (error) => storeUnavailable(error, operation)),
    { policy, replayable: true }
  )

/** The `Db` over the current `SqlClient` and `RunStore.RetryPolicy`. */
export const make: Effect.Effect<Db, never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return { sql, transact: retrying(yield* RunStore.RetryPolicy) }
})

/** A parameter value as JSON text (cast in SQL to `json` / `jsonb`). */
export const json = (value: unknown): string => JSON.stringify(value)

/**
 * The characters of user values (JSON text) one batched statement carries at most, unless one
 * request or row alone holds more: a batch travels as one `jsonb` parameter, which holds at most
 * 256 MiB, and 64 Mi characters are at most 192 MiB of UTF-8. One value is at most
 * `Workflow.maxValueBytes`.
 */
export const maxStatementChars = 64 * 1024 * 1024
