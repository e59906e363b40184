/**
 * Deliveries (signals and approval decisions kept until a node consumes them) and the runs that
 * can wake now.
 */
import type { Workflow } from "@ripple/core"
import { type RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import { asJson, wakingDelivery } from "./rows.ts"
import { type Db, json } from "./transact.ts"

type Json = Workflow.Json

/** The delivery statements of one store. */
export const make = ({ sql, transact }: Db) => {
  const deliver = (runId: string, delivery: RunStore.Delivery) =>
    Effect.gen(function*() {
      // Sent again after a lost connection, it finds the delivery its committed first attempt kept
      // (by this call's token, consumed since or not) and reports it kept, instead of refused as
      // a duplicate or, once consumed, kept a second time.
      const token = crypto.randomUUID()
      const rows = yield* transact("deliver", sql<{ readonly kept: boolean; readonly found: boolean }>`WITH run AS (
          SELECT id FROM ripple_runs WHERE id = ${runId}
        ), mine AS (
          SELECT 1 FROM ripple_deliveries WHERE token = ${token}
        ), kept AS (
          INSERT INTO ripple_deliveries (run_id, kind, name, payload, at, token)
          SELECT id, ${delivery.kind}, ${delivery.name}, ${json(delivery.payload)}::json, ${delivery.at}, ${token} FROM run
          WHERE NOT EXISTS (SELECT 1 FROM mine)
          ON CONFLICT (run_id, kind, name) WHERE consumed_at IS NULL DO NOTHING
          RETURNING seq
        )
        SELECT EXISTS (SELECT 1 FROM kept) OR EXISTS (SELECT 1 FROM mine) AS kept, EXISTS (SELECT 1 FROM run) AS found`)
      if (rows[0]?.found !== true) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows[0].kept
    })

  const deliveries = (runId: string) =>
    Effect.gen(function*() {
      const rows = yield* transact("deliveries", sql<{
        readonly kind: RunStore.DeliveryKind | null
        readonly name: string
        readonly payload: Json
        readonly at: number
      }>`SELECT d.kind, ${sql.literal(asJson("d.name", "name"))}, d.payload, d.at FROM ripple_runs r
        LEFT JOIN ripple_deliveries d ON d.run_id = r.id AND d.consumed_at IS NULL
        WHERE r.id = ${runId} ORDER BY d.seq`)
      if (rows.length === 0) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows.flatMap((row): Array<RunStore.Delivery> =>
        row.kind === null ? [] : [{ kind: row.kind, name: row.name, payload: row.payload, at: Number(row.at) }]
      )
    })

  const wakeable = (now: number) =>
    Effect.map(
      transact("wakeable", sql<{ readonly id: string; readonly status: RunStatus.Status; readonly wake_at: number | null }>`
        SELECT id, status, wake_at FROM ripple_runs
        WHERE status = 'suspended' AND wake_at <= ${now}
        UNION
        SELECT r.id, r.status, r.wake_at FROM ripple_deliveries d JOIN ripple_runs r ON r.id = d.run_id
        WHERE d.consumed_at IS NULL AND r.status IN ('suspended', 'paused')
          AND ${sql.literal(wakingDelivery)}`),
      (rows) => rows.map((row): RunStore.Wakeable => ({ runId: row.id, status: row.status, wakeAt: row.wake_at === null ? null : Number(row.wake_at) }))
    )

  return { deliver, deliveries, wakeable }
}
