/**
 * A `SqlClient` over another whose statements can be made to lose their connection *after* they
 * ran: the statement executes (and, outside a transaction, commits), then the caller gets the
 * `ConnectionError` a dropped connection gives. That is the one fault a retry must not blindly
 * repeat, since the first attempt's effects are already durable. They can also be refused: the
 * caller gets that error and the statement never reaches the database (a server that is down).
 *
 * **Example**
 *
 * ```ts
 * const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
 * losing.loseAfter((sql) => sql.includes("FOR UPDATE"), 1)
 * const store = yield* SqlRunStore.make.pipe(Effect.provideService(SqlClient.SqlClient, losing.client))
 * ```
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlConnection from "effect/sql/SqlConnection"
import { ConnectionError, SqlError } from "effect/sql/SqlError"

/** A client that loses its connection after (or before) chosen statements, and how often it did. */
export interface LosingConnection {
  readonly client: SqlClient.SqlClient
  /** The next `times` statements whose SQL `matches` run, then fail as if the connection dropped. */
  readonly loseAfter: (matches: (sql: string) => boolean, times?: number) => void
  /** The next `times` statements whose SQL `matches` fail as if the connection dropped, unrun. */
  readonly refuse: (matches: (sql: string) => boolean, times?: number) => void
  /** How many statements were reported lost (run or not). */
  readonly lost: () => number
}

/** Wraps `client` (statements go through its connections; only the outcome they report changes). */
export const make = (client: SqlClient.SqlClient): Effect.Effect<LosingConnection> =>
  Effect.gen(function*() {
    let matches: (sql: string) => boolean = () => false
    let left = 0
    let ran = true
    let lost = 0
    const dropped = Effect.suspend(() => {
      lost++
      return Effect.fail(
        new SqlError({
          reason: new ConnectionError({
            cause: Object.assign(new Error("connection lost (injected)"), { code: "08006" }),
            message: "connection lost (injected)",
            operation: "execute"
          })
        })
      )
    })
    const lose = <A, E, R>(sql: string, run: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> => {
      if (left === 0 || !matches(sql)) return run
      left--
      return ran ? Effect.andThen(run, dropped) : dropped
    }
    const wrap = (conn: SqlConnection.Connection): SqlConnection.Connection => ({
      ...conn,
      execute: (sql, params, transformRows) => lose(sql, conn.execute(sql, params, transformRows)),
      executeUnprepared: (sql, params, transformRows) => lose(sql, conn.executeUnprepared(sql, params, transformRows)),
      executeValues: (sql, params) => lose(sql, conn.executeValues(sql, params)),
      executeRaw: (sql, params) => lose(sql, conn.executeRaw(sql, params))
    })
    const wrapped = yield* SqlClient.make({
      acquirer: Effect.map(client.reserve, wrap),
      compiler: PgClient.makeCompiler(),
      driver: client.driver,
      spanAttributes: []
    }).pipe(Effect.provide(Reactivity.layer))
    return {
      client: wrapped,
      loseAfter: (next, times = 1) => {
        matches = next
        left = times
        ran = true
      },
      refuse: (next, times = 1) => {
        matches = next
        left = times
        ran = false
      },
      lost: () => lost
    }
  })

/** The SQL store over `losing`'s client, giving up after three retries 10 ms apart on the `Clock`. */
export const sqlStore = (losing: LosingConnection): Effect.Effect<SqlRunStore.SqlRunStore["Service"]> =>
  SqlRunStore.make.pipe(
    Effect.provideService(SqlClient.SqlClient, losing.client),
    Effect.provideService(RunStore.RetryPolicy, Schedule.spaced("10 millis").pipe(Schedule.upTo({ times: 3 })))
  )

/** `sqlStore` as a `RunStore` layer. */
export const store = (losing: LosingConnection): Layer.Layer<RunStore.RunStore> =>
  Layer.effect(RunStore.RunStore, Effect.map(sqlStore(losing), ({ store }) => store))
