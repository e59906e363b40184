/**
 * A worker's child runs: a `child` block's run is queued for the workers (any of them executes it)
 * and linked to its parent; a child that ends tells its parent and notifies the workers, one of
 * which wakes the parent; a sweep finds children whose worker stopped before telling.
 */
import { Workflow } from "@ripple/core"
import { Child, Engine, Runs, type RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as SqlClient from "effect/sql/SqlClient"
import { notify, queue } from "./queue.ts"
import type { WorkerEnv } from "./workerEnv.ts"
import * as Database from "../Database.ts"
import { SqlRunStore } from "../SqlRunStore.ts"

/** The child-run parts of one worker. */
export const make = ({ db, handlers, sql, sqlStore, transact }: WorkerEnv) => {
  // A `child` block's run: queued for the workers (any of them executes it) and linked to its
  // parent; the child a node instance started before, and that can still succeed, is reused.
  const spawnFor = (parentRun: string, store: RunStore.RunStore["Service"]): Engine.Spawn =>
    Child.spawner(store, parentRun, (child, input, node) =>
      Effect.gen(function*() {
        const unsupported = Engine.check(child, handlers)
        if (unsupported !== undefined) return Result.fail(`child run not started: ${unsupported.message}`)
        const inputs = Workflow.inputsFor(child, input)
        if (Result.isFailure(inputs)) {
          return Result.fail(`child run not started: ${new Runs.InvalidInput({ workflowId: child.id, cause: inputs.failure }).message}`)
        }
        const queued = queue(child, inputs.success, { parentRun, parentNode: node }).pipe(
          // The child's version was saved just before: it cannot be missing.
          Effect.catchTag("WorkflowNotFound", Effect.die)
        )
        return Result.succeed(yield* queued)
      }).pipe(Effect.provideService(SqlRunStore, sqlStore), Effect.provideService(SqlClient.SqlClient, sql)))

  // A child run that ended tells its parent, and the workers, one of which wakes the parent.
  const notifyParent = (runId: string) =>
    Effect.ignore(Effect.flatMap(
      Child.deliverToParent(sqlStore.store, runId),
      (parent) => parent === undefined ? Effect.void : notify(parent)
    )).pipe(Effect.provideService(Database.Database, db))

  // Children that ended without their parent hearing of it: their worker stopped between the
  // child's last write and the delivery. Rare, so looked for every few polls.
  const unheard = Effect.gen(function*() {
    const prefix = Engine.childSignal("")
    const rows = yield* transact("unheard", sql<{ readonly id: string }>`SELECT c.id FROM ripple_runs p
      JOIN ripple_runs c ON c.parent_run = p.id
      WHERE p.status = 'suspended' AND c.status IN ('completed', 'failed', 'cancelled')
        AND ${prefix} || c.id = ANY (p.awaited_signals)
        AND NOT EXISTS (SELECT 1 FROM ripple_deliveries d
          WHERE d.run_id = p.id AND d.kind = 'signal' AND d.name = ${prefix} || c.id)`)
    yield* Effect.forEach(rows, (row) => notifyParent(row.id), { discard: true })
  })

  return { spawnFor, notifyParent, unheard }
}
