/**
 * Control requests: pause and cancel are recorded on the run row by any process (a cancel on the
 * rows of its unfinished descendants too); the executing one sees them in the acknowledgement of
 * its next journal write or lease renewal. A pause request drops a kept `unpause` delivery (the
 * newer request wins).
 */
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import { consumesCancel } from "./rows.ts"
import type { Db } from "./transact.ts"

/** The control request statements of one store. */
export const make = ({ sql, transact }: Db) => {
  const requestPause = (runId: string, at: number) =>
    Effect.gen(function*() {
      const rows = yield* transact("requestPause", sql<{ readonly requested: boolean | null }>`WITH requested AS (
          UPDATE ripple_runs SET pause_requested_at = COALESCE(pause_requested_at, ${at})
          WHERE id = ${runId} AND status = ANY (${`{${RunStore.pausable.join(",")}}`}::text[])
          RETURNING id
        ), dropped AS (
          UPDATE ripple_deliveries SET consumed_at = now()
          WHERE run_id = ${runId} AND kind = 'unpause' AND consumed_at IS NULL AND EXISTS (SELECT 1 FROM requested)
        )
        SELECT EXISTS (SELECT 1 FROM requested) AS requested FROM ripple_runs WHERE id = ${runId}`)
      if (rows[0] === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows[0].requested === true
    })

  const requestCancel = (runId: string, at: number) =>
    Effect.gen(function*() {
      // The run and every unfinished run below it (children, theirs, ...): asked in one statement,
      // so no child is left running for a parent whose cancel was recorded.
      const rows = yield* transact("requestCancel", sql<{ readonly requested: boolean | null }>`WITH RECURSIVE below (id) AS (
          SELECT c.id FROM ripple_runs c WHERE c.parent_run = ${runId}
          UNION
          SELECT c.id FROM below b JOIN ripple_runs c ON c.parent_run = b.id
        ), requested AS (
          UPDATE ripple_runs SET cancel_requested_at = COALESCE(cancel_requested_at, ${at})
          WHERE id = ${runId} AND NOT (status = ANY (${consumesCancel}::text[]))
          RETURNING id
        ), asked AS (
          UPDATE ripple_runs c SET cancel_requested_at = COALESCE(c.cancel_requested_at, ${at})
          FROM below WHERE c.id = below.id AND NOT (c.status = ANY (${consumesCancel}::text[])) AND EXISTS (SELECT 1 FROM requested)
        )
        SELECT EXISTS (SELECT 1 FROM requested) AS requested FROM ripple_runs WHERE id = ${runId}`)
      if (rows[0] === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows[0].requested === true
    })

  const withdrawPause = (runId: string) =>
    Effect.gen(function*() {
      const rows = yield* transact("withdrawPause", sql<{ readonly id: string }>`
        UPDATE ripple_runs SET pause_requested_at = NULL WHERE id = ${runId} RETURNING id`)
      if (rows[0] === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
    })

  return { requestPause, withdrawPause, requestCancel }
}
