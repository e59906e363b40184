/**
 * What the store reads back: the run row and snapshot row types and their decoding into
 * `RunStore.Run` and `Snapshot.Snapshot`, and the SQL fragments that read node records and a run's
 * journal marks.
 */
import { Snapshot, type Workflow } from "@ripple/core"
import { type RunStatus, RunStore } from "@ripple/runtime"
import * as Data from "effect/Data"

type Json = Workflow.Json

/**
 * A stored run or journal row does not decode: the run cannot be resumed.
 *
 * @since 0.1.0
 */
export class CorruptRun extends Data.TaggedError("CorruptRun")<{
  readonly runId: string
  readonly reason: string
}> {
  override get message() {
    return `run ${this.runId} is corrupt: ${this.reason}`
  }
}

/**
 * A `ripple_runs` row, with the journal marks `journalMarks` adds and its user texts as JSON
 * (`runTexts`).
 */
export interface RunRow {
  readonly id: string
  readonly workflow_id: string
  /** `workflow_id` read as JSON: a text value loses a leading U+FEFF on the way (see `runTexts`). */
  readonly workflow: string
  /** `trigger` read as JSON (see `runTexts`). */
  readonly triggered_by: string | null
  /** `lease_owner` read as JSON (see `runTexts`). */
  readonly holder: string | null
  readonly version: string
  readonly mode: RunStore.Run["mode"]
  readonly source_run: string | null
  readonly target: string | null
  readonly destination?: string | null
  readonly pins?: { readonly [node: string]: Json } | null
  readonly trigger: string | null
  readonly input: { readonly [key: string]: Json }
  readonly status: RunStatus.Status
  readonly machine: RunStatus.Persisted
  readonly revision: number | bigint | string
  readonly last_started_node: string | null
  readonly last_started_at: number | null
  readonly last_completed_node: string | null
  readonly last_completed_at: number | null
  readonly finalization: Snapshot.Diagnostics["finalization"] | null
  readonly messages: ReadonlyArray<string>
  readonly created_at: number
  readonly updated_at: number
  readonly lease_owner: string | null
  readonly lease_generation: number | bigint | string
  readonly parent_run?: string | null
  readonly parent_node?: string | null
  readonly pause_requested_at?: number | null
  readonly cancel_requested_at?: number | null
  readonly pruned?: Snapshot.Pruned | null
  readonly queued?: boolean
  readonly lease_expires_at?: number | null
  readonly journal_started?: Mark | null
  readonly journal_completed?: Mark | null
}

/** A node and when it started or completed. */
export type Mark = { readonly node: string; readonly at: number }

// The later of the run's diagnostics columns and what its journal shows (the journal is not made to
// rewrite the run row on every node; a run cut short still reads its last started/completed node).
const later = (node: string | null, at: number | null, journal: Mark | null | undefined): Mark | undefined => {
  const stored = node === null || at === null ? undefined : { node, at: Number(at) }
  if (journal === null || journal === undefined) return stored
  return stored === undefined || journal.at > stored.at ? { node: journal.node, at: Number(journal.at) } : stored
}

/** A run's diagnostics: its columns, or its journal where that is later. */
export const diagnosticsOf = (row: RunRow): Snapshot.Diagnostics => {
  const lastStarted = later(row.last_started_node, row.last_started_at, row.journal_started)
  const lastCompleted = later(row.last_completed_node, row.last_completed_at, row.journal_completed)
  return {
    ...(lastStarted === undefined ? {} : { lastStarted }),
    ...(lastCompleted === undefined ? {} : { lastCompleted }),
    ...(row.finalization === null || row.finalization === undefined ? {} : { finalization: row.finalization }),
    messages: row.messages
  }
}

/** The run a run row holds. */
export const runOf = (row: RunRow): RunStore.Run => ({
  id: row.id,
  workflowId: row.workflow,
  version: row.version,
  mode: row.mode,
  sourceRun: row.source_run ?? undefined,
  target: row.target ?? undefined,
  ...(row.destination === undefined || row.destination === null ? {} : { to: row.destination }),
  ...(row.pins === undefined || row.pins === null ? {} : { pins: row.pins }),
  trigger: row.triggered_by ?? undefined,
  input: row.input,
  status: row.status,
  machine: row.machine,
  diagnostics: diagnosticsOf(row),
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at),
  ...(row.parent_run === undefined || row.parent_run === null ? {} : { parentRun: row.parent_run, parentNode: row.parent_node ?? "" }),
  ...(row.pause_requested_at === undefined || row.pause_requested_at === null ? {} : { pauseRequestedAt: Number(row.pause_requested_at) }),
  ...(row.cancel_requested_at === undefined || row.cancel_requested_at === null ? {} : { cancelRequestedAt: Number(row.cancel_requested_at) }),
  ...prunedOf(row),
  ...(row.queued === true ? { queued: true } : {}),
  ...(row.holder === null ? {} : { lease: { owner: row.holder, expiresAt: Number(row.lease_expires_at ?? 0) } })
})

/** What a run-from pruned, when it pruned anything. */
export const prunedOf = (row: RunRow): { readonly pruned?: Snapshot.Pruned } =>
  row.pruned === undefined || row.pruned === null ? {} : { pruned: row.pruned }

/**
 * SQL: the kept delivery `d` wakes the dormant run `r` now (`Wake.event`): a signal one of its
 * branches awaits while it is suspended, an approval decision one awaits while it is paused, or an
 * unpause of a run paused by a pause request. (RunStatus takes a signal only in `suspended`: a
 * paused run keeps it until it is unpaused or approved.)
 */
export const wakingDelivery = `((d.kind = 'signal' AND r.status = 'suspended' AND d.name = ANY (r.awaited_signals))
  OR (d.kind = 'approval' AND r.status = 'paused' AND d.name = ANY (r.awaited_approvals))
  OR (d.kind = 'unpause' AND r.status = 'paused' AND jsonb_path_exists(r.machine, '$.context.dormant.* ? (@._tag == "Pause")')))`


/** Statuses whose machine write makes a run the latest of its (workflow, trigger). */
export const settled: ReadonlyArray<RunStatus.Status> = ["completed", "failed"]

// Postgres text[] literals of the statuses that consume a pause or a cancel request.
export const consumesPause = `{${RunStore.consumesPause.join(",")}}`
export const consumesCancel = `{${RunStore.consumesCancel.join(",")}}`

/** The key of a (workflow, trigger) in `ripple_latest`. */
export const triggerKey = (trigger: string | undefined | null): string => (trigger === undefined || trigger === null ? "" : `=${trigger}`)

// A node record as one jsonb object without its inputs and output (the part row's own text
// columns), absent fields left out: a SQL NULL column is an absent field.
export const recordSql = `jsonb_build_object('status', j.status, 'fingerprints', j.fingerprints, 'attempt', j.attempt)
  || CASE WHEN j.started_at IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('startedAt', j.started_at) END
  || CASE WHEN j.finished_at IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('finishedAt', j.finished_at) END
  || CASE WHEN j.decision IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('decision', j.decision) END
  || CASE WHEN j.error IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('error', j.error) END
  || CASE WHEN j.reused_from IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('reusedFrom', j.reused_from) END`

/**
 * A user's text (a workflow id, a signal name, a trigger, a lease owner, a handler's message)
 * selected as JSON text, which the client parses back
 * to the string: read as text, each client's UTF-8 decoder would drop a leading byte order mark
 * (U+FEFF) — PGlite's always, PostgreSQL's when the text also holds U+FFFD — where JSON text
 * starts with a quote.
 */
export const asJson = (column: string, name: string): string => `to_json(${column}) AS ${name}`

/**
 * The run row's user texts as `RunRow` reads them (`asJson`): its workflow id, trigger and lease
 * owner, for a query whose run row is `row` (`r.`, or `""` for a `RETURNING` clause).
 */
export const runTexts = (row: string): string =>
  [asJson(`${row}workflow_id`, "workflow"), asJson(`${row}trigger`, "triggered_by"), asJson(`${row}lease_owner`, "holder")].join(", ")

// The run's own last started and last completed node, from its journal (rows copied from another
// run are not its own); the primary key's run prefix bounds the scan to the run's rows.
export const journalMarks = `(SELECT jsonb_build_object('node', j.node, 'at', j.started_at) FROM ripple_journal j
    WHERE j.run_id = r.id AND j.reused_from IS NULL AND j.started_at IS NOT NULL
    ORDER BY j.started_at DESC, j.written DESC LIMIT 1) AS journal_started,
  (SELECT jsonb_build_object('node', j.node, 'at', j.finished_at) FROM ripple_journal j
    WHERE j.run_id = r.id AND j.reused_from IS NULL AND j.status = 'completed'
    ORDER BY j.finished_at DESC, j.written DESC LIMIT 1) AS journal_completed`

/**
 * One part of a run's snapshot, a row of its own so that no single row (one wire message) holds
 * more than one node's values: a node record (`recordSql`, its inputs and output as JSON text, a
 * SQL NULL being an absent field and a JSON `null` a present one) or a loop or parallel scope
 * (`value`, JSON text).
 */
export type PartRow =
  | {
    readonly kind: "node"
    readonly key: string
    readonly record: Omit<Snapshot.NodeRecord, "inputs" | "output">
    readonly inputs: string | null
    readonly output: string | null
  }
  | { readonly kind: "loop" | "parallel"; readonly key: string; readonly value: string }

/** The parts of a snapshot, their JSON text parsed (node inputs and outputs keep their key order). */
export const partsOf = (rows: ReadonlyArray<PartRow>) => {
  const nodes: Record<string, Snapshot.NodeRecord> = {}
  const loops: Record<string, Snapshot.LoopScope> = {}
  const parallels: Record<string, Snapshot.ParallelScope> = {}
  for (const row of rows) {
    switch (row.kind) {
      case "node":
        nodes[row.key] = {
          ...row.record,
          ...(row.inputs === null ? {} : { inputs: JSON.parse(row.inputs) as Json }),
          ...(row.output === null ? {} : { output: JSON.parse(row.output) as Json })
        }
        break
      case "loop":
        loops[row.key] = JSON.parse(row.value) as Snapshot.LoopScope
        break
      case "parallel":
        parallels[row.key] = JSON.parse(row.value) as Snapshot.ParallelScope
    }
  }
  return { nodes, loops, parallels }
}

/** The run row's `error` column for a machine. */
export const errorOfMachine = (machine: RunStatus.Persisted): string | null =>
  machine.context.error ?? machine.context.failures.at(-1)?.error ?? null

/** A run row with its dormancies; its node records and scopes are `PartRow`s. */
export interface SnapshotRow extends RunRow {
  readonly dormancies: ReadonlyArray<{ readonly wait?: Snapshot.Wait; readonly pause?: Snapshot.Pause }> | null
}

/** The snapshot a snapshot row and its parts hold, over the workflow version it ran. */
export const snapshotOf = (
  row: SnapshotRow,
  parts: ReadonlyArray<PartRow>,
  workflow: Workflow.Workflow
): Snapshot.Snapshot => {
  const { loops, nodes, parallels } = partsOf(parts)
  return {
    schemaVersion: Snapshot.schemaVersion,
    runId: row.id,
    workflow,
    ...(row.triggered_by === null ? {} : { trigger: row.triggered_by }),
    input: row.input,
    status: row.status,
    nodes,
    loops,
    parallels,
    pending: [],
    waits: (row.dormancies ?? []).flatMap((d) => d.wait === undefined ? [] : [d.wait]),
    pauses: (row.dormancies ?? []).flatMap((d) => d.pause === undefined ? [] : [d.pause]),
    diagnostics: diagnosticsOf(row),
    ...prunedOf(row),
    startedAt: Number(row.created_at),
    updatedAt: Number(row.updated_at)
  }
}
