/**
 * Run rows: reading one (and remembering its machine for the next compare-and-set), creating runs
 * (group-committed), and telling a write that found no row from one refused for its lease.
 */
import { RunStatus, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as GroupCommit from "./groupCommit.ts"
import { journalMarks, type RunRow, runOf, runTexts } from "./rows.ts"
import { type Db, json, maxStatementChars } from "./transact.ts"
import type { Workflows } from "./workflows.ts"

type Lease = RunStore.Lease

/** The `LeaseLost` of a write refused for `lease`. */
export const leaseLost = (lease: Lease) => new RunStore.LeaseLost({ runId: lease.runId, owner: lease.owner, generation: lease.generation })

/** Whether a run row holds `lease`. */
export const holds = (row: RunRow, lease: Lease) =>
  row.holder === lease.owner && Number(row.lease_generation) === lease.generation

const newId = (): string => globalThis.crypto.randomUUID()

/** A machine as last read or written, with the row revision it had. */
export interface CachedMachine {
  readonly revision: string
  readonly machine: RunStatus.Persisted
}

/** Run rows of one store (see `make`). */
export type Runs = ReturnType<typeof make>

/**
 * Reads and creates run rows; keeps the machine cache the store's transitions use. A run created
 * `queued` is announced to the workers on `channel` by the statement that inserts it.
 */
export const make = ({ sql, transact }: Db, { loadWorkflow }: Workflows, channel: string) => {
  // The last machine this store read or wrote per run, so a transition is one compare-and-set
  // statement; a stale entry (another process wrote) only makes the update miss and re-read.
  const machines = new Map<string, CachedMachine>()
  const remember = (runId: string, revision: RunRow["revision"], machine: RunStatus.Persisted) => {
    machines.delete(runId)
    if (machines.size >= 10_000) machines.delete(machines.keys().next().value!)
    machines.set(runId, { revision: String(revision), machine })
  }

  const readRun = (runId: string) =>
    Effect.flatMap(
      transact("getRun", sql<RunRow>`SELECT r.*, ${sql.literal(journalMarks)}, ${sql.literal(runTexts("r."))} FROM ripple_runs r WHERE r.id = ${runId}`),
      (rows) => {
        const row = rows[0]
        if (row === undefined) return Effect.fail(new RunStore.RunNotFound({ runId }))
        remember(runId, row.revision, row.machine)
        return Effect.succeed(row)
      }
    )

  // Runs created while an insert is in flight go out together in the next one (group commit), in
  // the order they were created (their `seq`, which workers claim by), up to `maxStatementChars` of
  // inputs. Ids are fresh, so a conflict is this insert sent again after a lost connection: the row
  // it wrote is returned as it is now (and a queued one announced again, which is harmless).
  // A queued run is queued by its insert, not by a later update: an outage between the two would
  // leave a pending run no worker claims. The notification goes out when the insert commits (a
  // CTE that only reads runs when it is read: the count makes the notifications happen).
  const insertRuns = GroupCommit.make((batch: ReadonlyArray<{ readonly key: string; readonly request: Record<string, unknown> }>) =>
    Effect.map(
      transact("createRun", sql<RunRow>`WITH inserted AS (INSERT INTO ripple_runs
        (id, workflow_id, version, mode, source_run, target, destination, pins, trigger, input, status, machine, created_at,
          updated_at, parent_run, parent_node, pruned, queued)
        SELECT id, workflow_id, version, mode, source_run, target, destination, pins::json, trigger, input::json, status, machine, at,
          at, parent_run, parent_node, pruned, queued
        FROM jsonb_to_recordset(${json(batch.map((b, ord) => ({ ...b.request, ord })))}::jsonb) AS x(id text, workflow_id text, version text,
          mode text, source_run text, target text, destination text, pins text, trigger text, input text, status text, machine jsonb,
          at double precision, parent_run text, parent_node text, pruned jsonb, queued boolean, ord integer)
        ORDER BY ord
        ON CONFLICT (id) DO UPDATE SET id = excluded.id
        RETURNING *, ${sql.literal(runTexts(""))}),
      announced AS (SELECT pg_notify(${channel}, id) FROM inserted WHERE queued)
      SELECT * FROM inserted WHERE (SELECT count(*) FROM announced) >= 0`),
      (rows) => {
        const byId = new Map(rows.map((row) => [row.id, row]))
        return batch.map(({ key }) => byId.get(key)!)
      }
    ), { weigh: (request) => String(request["input"]).length, maxWeight: maxStatementChars })

  const createRun = (input: RunStore.NewRun) =>
    Effect.gen(function*() {
      const workflow = yield* loadWorkflow(input.version)
      const machine = RunStatus.persist(RunStatus.initial())
      const id = newId()
      const row = yield* insertRuns(id, {
        id,
        workflow_id: workflow.id,
        version: input.version,
        mode: input.mode,
        source_run: input.sourceRun ?? null,
        target: input.target ?? null,
        destination: input.to ?? null,
        // As text, like the input: json keeps the pins' key order exactly.
        pins: input.pins === undefined ? null : json(input.pins),
        trigger: input.trigger ?? null,
        input: json(input.input),
        status: machine.status,
        machine,
        at: input.at,
        parent_run: input.parentRun ?? null,
        parent_node: input.parentRun === undefined ? null : input.parentNode ?? "",
        pruned: input.pruned ?? null,
        queued: input.queued === true
      })
      remember(row.id, row.revision, row.machine)
      return runOf(row)
    })

  const isCurrent = (runId: string, revision: string) =>
    Effect.map(
      transact("transition", sql<{ readonly revision: RunRow["revision"] }>`SELECT revision FROM ripple_runs WHERE id = ${runId}`),
      (rows) => rows[0] !== undefined && String(rows[0].revision) === revision
    )

  // Not written: the run does not exist, or (fenced) it exists without the lease; told apart for the error.
  const notWritten = (lease: Lease | undefined, runId: string) =>
    lease === undefined
      ? Effect.fail(new RunStore.RunNotFound({ runId }))
      : Effect.flatMap(readRun(runId), () => Effect.fail(leaseLost(lease)))

  return { machines, remember, readRun, createRun, isCurrent, notWritten }
}
