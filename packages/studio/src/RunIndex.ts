/**
 * The runs the studio lists: a port over whatever holds them, with `layerSql` over the database of
 * the `RunStore` (`RunList`).
 *
 * @since 0.1.0
 */
import type { RunStatus } from "@ripple/runtime"
import { RunList } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as Problem from "./Problem.ts"

/**
 * The run list service.
 *
 * @since 0.1.0
 */
export class RunIndex extends Context.Service<RunIndex, {
  /** The runs of one workflow and/or in one status (`undefined`: any), newest first. */
  readonly list: (filter: {
    readonly workflowId?: string | undefined
    readonly status?: RunStatus.Status | undefined
  }) => Effect.Effect<ReadonlyArray<RunList.Summary>, Problem.Unavailable>
}>()("ripple/studio/RunIndex") {}

/**
 * The run list of the SQL database the store uses (its migrations applied by the store's layer).
 *
 * @since 0.1.0
 */
export const layerSql: Layer.Layer<RunIndex, never, SqlClient.SqlClient> = Layer.effect(
  RunIndex,
  Effect.map(SqlClient.SqlClient, (sql) =>
    RunIndex.of({
      list: (filter) =>
        RunList.list(filter).pipe(
          Effect.provideService(SqlClient.SqlClient, sql),
          Effect.mapError((error) => new Problem.Unavailable({ operation: "list runs", reason: error.message }))
        )
    }))
)
