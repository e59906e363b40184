/**
 * The `RunStore` over effect/sql, for a PostgreSQL server or embedded PGlite (see `Migrations`
 * for the tables).
 *
 * **Details**
 *
 * - `journal` is one statement (one implicit transaction): the run row is locked for share (and
 *   must hold the lease, when fenced) and the batch is upserted into `ripple_journal`; a `Reused`
 *   entry whose source run is stored is copied server-side (`INSERT … SELECT` from the source
 *   run's rows), its record is never read back. The run row is not rewritten per node: the last
 *   started and completed node are read from the journal, and diagnostics only move forward.
 * - `transition` restores the persisted `RunStatus` machine (cached from this store's last read or
 *   write), offers the event and writes the result with a compare-and-set on the row's revision:
 *   concurrent writers never lose an update, a stale cache only costs a re-read, and an illegal
 *   event writes nothing. A run settling as completed or failed becomes the latest of its
 *   (workflow, trigger) in the same statement.
 * - Group commit: journal writes and machine writes of different runs that arrive while one is in
 *   flight go out together in one statement, so many concurrent runs cost far less than a round
 *   trip per node; a caller still returns only once its own write is committed (a node's
 *   completion is durable before its dependents start).
 * - Leases are columns of the run row (owner, generation, expiry in epoch ms on the callers'
 *   clocks): `acquire` is one conditional update (concurrent acquires serialize on the row lock,
 *   and the loser re-checks the condition on the winner's row, so one is granted). `fenced(lease)`
 *   is the same store for one run whose every write (journal, machine, diagnostics, compensation
 *   log) also requires the lease (owner, generation): a process that lost its lease cannot write
 *   (`LeaseLost`).
 * - Pause and cancel requests are columns of the run row: `requestPause` / `requestCancel` set
 *   them, the journal statement and lease renewals return them (the row is read there anyway), and
 *   the machine write that settles the run `paused` (a pause) or ends it clears them.
 * - Values keep their JSON text (DESIGN.md, "Values round-trip"): user values travel inside the
 *   batched `jsonb` parameters as JSON *strings* (a `jsonb` string is kept as is, a `jsonb` object
 *   would have its keys reordered), are cast to the `json` columns that keep the text, and are read
 *   back the same way (`json_object_agg`, or a string parsed here).
 * - Every statement is its own transaction and goes through one place that turns a `SqlError` into
 *   `RunStore.StoreUnavailable` (reason by SQLSTATE) and retries the retryable ones with backoff
 *   on the effect `Clock` (`RunStore.RetryPolicy`, read when the store is built). After a lost
 *   connection a statement is sent again only if applying it twice is harmless: journal rows and
 *   scopes are upserts, a machine write already applied is recognised, a run insert returns the
 *   row it made; a write that consumes a delivery, `deliver` and `markFailed` are not sent again.
 *
 * @since 0.1.0
 */
import { Snapshot, type Workflow } from "@ripple/core"
import { RunStatus, RunStore } from "@ripple/runtime"
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type { MigrationError } from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as Database from "./Database.ts"
import { storeUnavailable } from "./internal/errors.ts"
import * as GroupCommit from "./internal/groupCommit.ts"
import * as Migrations from "./Migrations.ts"

type Json = Workflow.Json

/**
 * The channel workers listen on: submitters and control requests (`RunStore.notify`) notify it
 * with the run id.
 *
 * @since 0.1.0
 */
export const channel = "ripple_runs"

/**
 * A run's lease (`RunStore.Lease`).
 *
 * @since 0.1.0
 */
export type Lease = RunStore.Lease

/**
 * The lease was taken by another owner (or released): the write was refused (`RunStore.LeaseLost`).
 *
 * @since 0.1.0
 */
export const LeaseLost = RunStore.LeaseLost

/**
 * The lease was taken by another owner (or released): the write was refused (`RunStore.LeaseLost`).
 *
 * @since 0.1.0
 */
export type LeaseLost = RunStore.LeaseLost

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
 * The SQL store: the `RunStore` port plus what workers and dashboards need.
 *
 * @since 0.1.0
 */
export class SqlRunStore extends Context.Service<SqlRunStore, {
  /** The port, unfenced (for `Runs`, submitters and tools). */
  readonly store: RunStore.RunStore["Service"]
  /** The port for one leased run: every write also requires the lease; a lost lease dies with `LeaseLost`. */
  readonly fenced: (lease: Lease) => RunStore.RunStore["Service"]
  /** The run's snapshot, decoded and checked: a row that does not decode is `CorruptRun`. */
  readonly checkedSnapshot: (
    runId: string
  ) => Effect.Effect<Snapshot.Snapshot, RunStore.RunNotFound | RunStore.WorkflowNotFound | RunStore.StoreUnavailable | CorruptRun>
  /**
   * Offers several events to a leased run and writes the outcome once (all accepted, or nothing
   * written); a lost lease dies with `LeaseLost`.
   */
  readonly transitionAll: (
    lease: Lease,
    events: ReadonlyArray<RunStatus.Event>,
    at: number
  ) => Effect.Effect<{ readonly from: RunStatus.Status; readonly to: RunStatus.Status }, RunStore.RunNotFound | RunStore.IllegalTransition | RunStore.StoreUnavailable>
  /** Marks a run failed with `reason`, whatever its stored machine holds (a corrupt run included), unless it is terminal. */
  readonly markFailed: (lease: Lease, reason: string, at: number) => Effect.Effect<void, LeaseLost | RunStore.StoreUnavailable>
  /**
   * Tells the store a run's machine as just read by the caller (a worker's claim returns it), so
   * the run's first transition needs no read of its own. A stale one only costs a re-read.
   */
  readonly prime: (runId: string, revision: number | bigint | string, machine: RunStatus.Persisted) => void
  /**
   * `RunStore.acquire` over the workers' queue: takes, for `owner`, the leases of up to `limit`
   * queued runs with work — pending, running without a live lease (their worker stopped), dormant
   * ones that can wake at `terms.at` (a sleeper due, an awaited delivery kept) — oldest first, with
   * the same condition and grant as `acquire`, skipping rows another worker is claiming.
   */
  readonly claim: (owner: string, terms: RunStore.LeaseTerms, limit: number) => Effect.Effect<ReadonlyArray<Claimed>, SqlError>
  /** How many unfinished runs of a workflow are at each block right now (nodes journaled as running). */
  readonly atBlocks: (workflowId: string) => Effect.Effect<{ readonly [node: string]: number }, SqlError>
}>()("ripple/sql/SqlRunStore") {}

/**
 * A run `claim` took the lease of, as its row was when claimed.
 *
 * @since 0.1.0
 */
export interface Claimed {
  readonly lease: Lease
  readonly id: string
  readonly status: RunStatus.Status
  readonly version: string
  readonly mode: RunStore.Run["mode"]
  readonly source_run: string | null
  readonly target: string | null
  readonly input: { readonly [key: string]: Json }
  readonly parent_run: string | null
  readonly revision: number | bigint | string
  readonly machine: RunStatus.Persisted
}

interface RunRow {
  readonly id: string
  readonly workflow_id: string
  readonly version: string
  readonly mode: RunStore.Run["mode"]
  readonly source_run: string | null
  readonly target: string | null
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

type Mark = { readonly node: string; readonly at: number }

// The later of the run's diagnostics columns and what its journal shows (the journal is not made to
// rewrite the run row on every node; a run cut short still reads its last started/completed node).
const later = (node: string | null, at: number | null, journal: Mark | null | undefined): Mark | undefined => {
  const stored = node === null || at === null ? undefined : { node, at: Number(at) }
  if (journal === null || journal === undefined) return stored
  return stored === undefined || journal.at > stored.at ? { node: journal.node, at: Number(journal.at) } : stored
}

const diagnosticsOf = (row: RunRow): Snapshot.Diagnostics => {
  const lastStarted = later(row.last_started_node, row.last_started_at, row.journal_started)
  const lastCompleted = later(row.last_completed_node, row.last_completed_at, row.journal_completed)
  return {
    ...(lastStarted === undefined ? {} : { lastStarted }),
    ...(lastCompleted === undefined ? {} : { lastCompleted }),
    ...(row.finalization === null || row.finalization === undefined ? {} : { finalization: row.finalization }),
    messages: row.messages
  }
}

const runOf = (row: RunRow): RunStore.Run => ({
  id: row.id,
  workflowId: row.workflow_id,
  version: row.version,
  mode: row.mode,
  sourceRun: row.source_run ?? undefined,
  target: row.target ?? undefined,
  trigger: row.trigger ?? undefined,
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
  ...(row.lease_owner === null ? {} : { lease: { owner: row.lease_owner, expiresAt: Number(row.lease_expires_at ?? 0) } })
})

const prunedOf = (row: RunRow): { readonly pruned?: Snapshot.Pruned } =>
  row.pruned === undefined || row.pruned === null ? {} : { pruned: row.pruned }

const settled: ReadonlyArray<RunStatus.Status> = ["completed", "failed"]

// Postgres text[] literals of the statuses that consume a pause or a cancel request.
const consumesPause = `{${RunStore.consumesPause.join(",")}}`
const consumesCancel = `{${RunStore.consumesCancel.join(",")}}`

const triggerKey = (trigger: string | undefined | null): string => (trigger === undefined || trigger === null ? "" : `=${trigger}`)

const newId = (): string => globalThis.crypto.randomUUID()

// A node record as one jsonb object, absent fields left out (a SQL NULL column is an absent field;
// a json `null` output is a present null). Inputs and output are their JSON text (`recordOfRow`
// parses them), so their key order survives the jsonb record.
const recordSql = `jsonb_build_object('status', j.status, 'fingerprints', j.fingerprints, 'attempt', j.attempt)
  || CASE WHEN j.inputs IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('inputs', j.inputs::text) END
  || CASE WHEN j.output IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('output', j.output::text) END
  || CASE WHEN j.started_at IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('startedAt', j.started_at) END
  || CASE WHEN j.finished_at IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('finishedAt', j.finished_at) END
  || CASE WHEN j.decision IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('decision', j.decision) END
  || CASE WHEN j.error IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('error', j.error) END
  || CASE WHEN j.reused_from IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('reusedFrom', j.reused_from) END`

// The run's own last started and last completed node, from its journal (rows copied from another
// run are not its own); the primary key's run prefix bounds the scan to the run's rows.
const journalMarks = `(SELECT jsonb_build_object('node', j.node, 'at', j.started_at) FROM ripple_journal j
    WHERE j.run_id = r.id AND j.reused_from IS NULL AND j.started_at IS NOT NULL
    ORDER BY j.started_at DESC, j.written DESC LIMIT 1) AS journal_started,
  (SELECT jsonb_build_object('node', j.node, 'at', j.finished_at) FROM ripple_journal j
    WHERE j.run_id = r.id AND j.reused_from IS NULL AND j.status = 'completed'
    ORDER BY j.finished_at DESC, j.written DESC LIMIT 1) AS journal_completed`

interface Batch {
  /** Rows written from records: JSON objects with short keys, absent fields left out, inputs and output as JSON text. */
  readonly rows: Array<Record<string, unknown>>
  /** Reused nodes copied from the source run's rows. */
  readonly copies: Array<{ readonly n: string; readonly s: string; readonly r: ReadonlyArray<string> }>
  /** Loop and parallel instances (`v`: the scope's JSON text). */
  readonly scopes: Array<{ readonly s: string; readonly k: "loop" | "parallel"; readonly v: string }>
  /** Deliveries consumed, one per entry. */
  readonly consumed: Array<{ readonly k: RunStore.DeliveryKind; readonly n: string }>
}

const rowOf = (
  node: string,
  record: Snapshot.NodeRecord,
  reasons: ReadonlyArray<string> | undefined,
  dormancy: unknown
) => {
  const row: Record<string, unknown> = { n: node, s: record.status, a: record.attempt, f: record.fingerprints }
  if (record.inputs !== undefined) row.i = JSON.stringify(record.inputs)
  if (Object.hasOwn(record, "output")) row.o = JSON.stringify(record.output)
  if (record.startedAt !== undefined) row.sa = record.startedAt
  if (record.finishedAt !== undefined) row.fa = record.finishedAt
  if (record.decision !== undefined) row.d = record.decision
  if (record.error !== undefined) row.e = record.error
  if (record.reusedFrom !== undefined) row.rf = record.reusedFrom
  if (reasons !== undefined) row.r = reasons
  if (dormancy !== undefined) row.w = dormancy
  return row
}

const batchOf = (runId: string, entries: ReadonlyArray<RunStore.JournalEntry>): Batch => {
  // Later entries for a node replace earlier ones, so only the last one per node is written (in
  // the order of the last writes).
  const last = new Map<string, RunStore.JournalEntry>()
  const scopes = new Map<string, Batch["scopes"][number]>()
  const consumed: Batch["consumed"] = []
  for (const entry of entries) {
    switch (entry._tag) {
      case "Consumed":
        consumed.push({ k: entry.kind, n: entry.name })
        break
      case "Scope":
        scopes.set(entry.scope, {
          s: entry.scope,
          k: entry.scopeOf._tag,
          v: JSON.stringify(entry.scopeOf._tag === "loop" ? entry.scopeOf.loop : entry.scopeOf.parallel)
        })
        break
      default:
        last.delete(entry.node)
        last.set(entry.node, entry)
    }
  }
  const rows: Batch["rows"] = []
  const copies: Batch["copies"] = []
  for (const entry of last.values()) {
    switch (entry._tag) {
      case "Consumed":
      case "Scope":
        break
      case "Reused": {
        // A run resumed in place keeps its own rows as they are.
        if (entry.from === runId) break
        if (entry.from !== undefined && entry.record.reusedFrom === undefined) {
          copies.push({ n: entry.node, s: entry.from, r: entry.reasons })
        } else {
          const producer = entry.record.reusedFrom ?? entry.from
          const record = producer === undefined ? entry.record : { ...entry.record, reusedFrom: producer }
          rows.push(rowOf(entry.node, record, entry.reasons, undefined))
        }
        break
      }
      case "Waiting":
      case "Paused":
        rows.push(rowOf(entry.node, RunStore.recordOf(entry), undefined, RunStore.dormancyOf(entry)))
        break
      default:
        rows.push(rowOf(entry.node, RunStore.recordOf(entry), undefined, undefined))
    }
  }
  return { rows, copies, scopes: [...scopes.values()], consumed }
}

/** Node records as `recordSql` reads them: inputs and output are JSON text. */
type StoredNodes = {
  readonly [node: string]: Omit<Snapshot.NodeRecord, "inputs" | "output"> & { readonly inputs?: string; readonly output?: string }
}

// The node records, inputs and output parsed from their JSON text.
const nodesOf = (rows: StoredNodes | null): Record<string, Snapshot.NodeRecord> => {
  const nodes: Record<string, Snapshot.NodeRecord> = {}
  if (rows === null) return nodes
  for (const node in rows) {
    const record = rows[node]!
    nodes[node] = {
      ...record,
      ...(record.inputs === undefined ? {} : { inputs: JSON.parse(record.inputs) as Json }),
      ...(record.output === undefined ? {} : { output: JSON.parse(record.output) as Json })
    }
  }
  return nodes
}

const errorOfMachine = (machine: RunStatus.Persisted): string | null =>
  machine.context.error ?? machine.context.failures.at(-1)?.error ?? null

/**
 * Builds the store over the `SqlClient` (migrations must have run: see `layer`).
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<SqlRunStore["Service"], never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const policy = yield* RunStore.RetryPolicy
  // Every statement of the store goes through here, the one place it retries: each is its own
  // implicit transaction, so an attempt that failed wrote nothing (or, after a lost connection,
  // possibly everything: `replayable` says whether sending it again is then safe).
  const transact = <A>(operation: string, statement: Effect.Effect<A, SqlError>, replayable = true) =>
    RunStore.retry(
      Effect.mapError(statement, (error) => storeUnavailable(error, operation)),
      { policy, replayable }
    )
  // Versions are immutable: once read, a version never needs reading again.
  const workflows = new Map<string, Workflow.Workflow>()

  const json = (value: unknown) => JSON.stringify(value)

  const saveWorkflow = (workflow: Workflow.Workflow) =>
    Effect.suspend(() => {
      const version = RunStore.versionOf(workflow)
      if (workflows.has(version)) return Effect.succeed(version)
      return transact(
        "saveWorkflow",
        sql`INSERT INTO ripple_workflow_versions (version, workflow_id, definition)
        VALUES (${version}, ${workflow.id}, ${json(workflow)}::json) ON CONFLICT (version) DO NOTHING`
      ).pipe(
        Effect.tap(() => Effect.sync(() => workflows.set(version, workflow))),
        Effect.as(version)
      )
    })

  const loadWorkflow = (version: string): Effect.Effect<Workflow.Workflow, RunStore.WorkflowNotFound | RunStore.StoreUnavailable> =>
    Effect.suspend(() => {
      const cached = workflows.get(version)
      if (cached !== undefined) return Effect.succeed(cached)
      return transact(
        "loadWorkflow",
        sql<{ readonly definition: Workflow.Workflow }>`SELECT definition FROM ripple_workflow_versions WHERE version = ${version}`
      )
        .pipe(
          Effect.flatMap((rows) => {
            const row = rows[0]
            if (row === undefined) return Effect.fail(new RunStore.WorkflowNotFound({ version }))
            workflows.set(version, row.definition)
            return Effect.succeed(row.definition)
          })
        )
    })

  // The last machine this store read or wrote per run, so a transition is one compare-and-set
  // statement; a stale entry (another process wrote) only makes the update miss and re-read.
  const machines = new Map<string, { readonly revision: string; readonly machine: RunStatus.Persisted }>()
  const remember = (runId: string, revision: RunRow["revision"], machine: RunStatus.Persisted) => {
    machines.delete(runId)
    if (machines.size >= 10_000) machines.delete(machines.keys().next().value!)
    machines.set(runId, { revision: String(revision), machine })
  }

  const readRun = (runId: string) =>
    Effect.flatMap(
      transact("getRun", sql<RunRow>`SELECT r.*, ${sql.literal(journalMarks)} FROM ripple_runs r WHERE r.id = ${runId}`),
      (rows) => {
        const row = rows[0]
        if (row === undefined) return Effect.fail(new RunStore.RunNotFound({ runId }))
        remember(runId, row.revision, row.machine)
        return Effect.succeed(row)
      }
    )

  // Runs created while an insert is in flight go out together in the next one (group commit), in
  // the order they were created (their `seq`, which workers claim by). Ids are fresh, so a conflict
  // is this insert sent again after a lost connection: the row it wrote is returned as it is now.
  const insertRuns = GroupCommit.make((batch: ReadonlyArray<{ readonly key: string; readonly request: Record<string, unknown> }>) =>
    Effect.map(
      transact("createRun", sql<RunRow>`INSERT INTO ripple_runs
        (id, workflow_id, version, mode, source_run, target, trigger, input, status, machine, created_at, updated_at,
          parent_run, parent_node, pruned)
        SELECT id, workflow_id, version, mode, source_run, target, trigger, input::json, status, machine, at, at, parent_run, parent_node,
          pruned
        FROM jsonb_to_recordset(${json(batch.map((b, ord) => ({ ...b.request, ord })))}::jsonb) AS x(id text, workflow_id text, version text,
          mode text, source_run text, target text, trigger text, input text, status text, machine jsonb, at double precision,
          parent_run text, parent_node text, pruned jsonb, ord integer)
        ORDER BY ord
        ON CONFLICT (id) DO UPDATE SET id = excluded.id
        RETURNING *`),
      (rows) => {
        const byId = new Map(rows.map((row) => [row.id, row]))
        return batch.map(({ key }) => byId.get(key)!)
      }
    ))

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
        trigger: input.trigger ?? null,
        input: json(input.input),
        status: machine.status,
        machine,
        at: input.at,
        parent_run: input.parentRun ?? null,
        parent_node: input.parentRun === undefined ? null : input.parentNode ?? "",
        pruned: input.pruned ?? null
      })
      remember(row.id, row.revision, row.machine)
      return runOf(row)
    })

  interface MachineWrite {
    readonly revision: string
    readonly lease: Lease | undefined
    readonly machine: RunStatus.Persisted
    readonly suspension: RunStatus.Suspension
    readonly at: number
    /** Written with the machine (`finish`). */
    readonly diagnostics: Snapshot.Diagnostics | undefined
  }

  // Accepted machines of many runs, each written if its row still has the revision it was computed
  // from (and the lease, when fenced). Rows are locked in id order (as every multi-row writer
  // here), and a run settling completed or failed becomes the latest of its (workflow, trigger) in
  // the same statement: per (workflow, trigger) only the batch's latest-created run competes. A row
  // already one revision on with exactly the machine requested is this write sent again after a
  // lost connection (its first attempt committed): it counts as written, not as a lost race.
  const writeMachines = GroupCommit.make((batch: ReadonlyArray<{ readonly key: string; readonly request: MachineWrite }>) => {
    const requests = batch.map(({ key, request }) => ({
      id: key,
      revision: request.revision,
      owner: request.lease?.owner ?? null,
      gen: request.lease?.generation ?? null,
      status: request.machine.status,
      machine: request.machine,
      error: errorOfMachine(request.machine),
      wake_at: request.suspension.wakeAt,
      signals: request.suspension.signals,
      approvals: request.suspension.approvals,
      at: request.at,
      latest: settled.includes(request.machine.status),
      d: request.diagnostics !== undefined,
      ls_node: request.diagnostics?.lastStarted?.node ?? null,
      ls_at: request.diagnostics?.lastStarted?.at ?? null,
      lc_node: request.diagnostics?.lastCompleted?.node ?? null,
      lc_at: request.diagnostics?.lastCompleted?.at ?? null,
      fin: request.diagnostics?.finalization ?? null,
      msgs: request.diagnostics?.messages ?? null
    }))
    return Effect.map(
      transact("transition", sql<{ readonly id: string }>`WITH req AS (
          SELECT * FROM jsonb_to_recordset(${json(requests)}::jsonb) AS x(id text, revision bigint, owner text, gen bigint,
            status text, machine jsonb, error text, wake_at double precision, signals jsonb, approvals jsonb,
            at double precision, latest boolean, d boolean, ls_node text, ls_at double precision, lc_node text,
            lc_at double precision, fin text, msgs jsonb)
        ), locked AS (
          SELECT r.id FROM ripple_runs r JOIN req ON req.id = r.id ORDER BY r.id FOR UPDATE OF r
        ), updated AS (
          UPDATE ripple_runs r SET status = req.status, machine = req.machine, revision = r.revision + 1,
            updated_at = req.at, error = req.error, wake_at = req.wake_at,
            awaited_signals = ARRAY(SELECT jsonb_array_elements_text(req.signals)),
            awaited_approvals = ARRAY(SELECT jsonb_array_elements_text(req.approvals)),
            pause_requested_at = CASE WHEN req.status = ANY (${consumesPause}::text[]) THEN NULL ELSE r.pause_requested_at END,
            cancel_requested_at = CASE WHEN req.status = ANY (${consumesCancel}::text[]) THEN NULL ELSE r.cancel_requested_at END,
            last_started_node = CASE WHEN req.d AND req.ls_at >= COALESCE(r.last_started_at, '-Infinity')
              THEN req.ls_node ELSE r.last_started_node END,
            last_started_at = CASE WHEN req.d THEN GREATEST(r.last_started_at, req.ls_at) ELSE r.last_started_at END,
            last_completed_node = CASE WHEN req.d AND req.lc_at >= COALESCE(r.last_completed_at, '-Infinity')
              THEN req.lc_node ELSE r.last_completed_node END,
            last_completed_at = CASE WHEN req.d THEN GREATEST(r.last_completed_at, req.lc_at) ELSE r.last_completed_at END,
            finalization = CASE WHEN req.d THEN req.fin ELSE r.finalization END,
            messages = CASE WHEN req.d THEN req.msgs ELSE r.messages END
          FROM req JOIN locked ON locked.id = req.id
          WHERE r.id = req.id AND r.revision = req.revision
            AND (req.owner IS NULL OR (r.lease_owner = req.owner AND r.lease_generation = req.gen))
          RETURNING r.id, r.workflow_id, CASE WHEN r.trigger IS NULL THEN '' ELSE '=' || r.trigger END AS trigger_key,
            r.created_at, r.seq, req.latest
        ), latest AS (
          INSERT INTO ripple_latest (workflow_id, trigger_key, run_id, created_at, seq)
          SELECT DISTINCT ON (workflow_id, trigger_key) workflow_id, trigger_key, id, created_at, seq
          FROM updated WHERE latest
          ORDER BY workflow_id, trigger_key, created_at DESC, seq DESC
          ON CONFLICT (workflow_id, trigger_key) DO UPDATE SET run_id = excluded.run_id, created_at = excluded.created_at,
            seq = excluded.seq
          WHERE (ripple_latest.created_at, ripple_latest.seq) <= (excluded.created_at, excluded.seq)
        ), replayed AS (
          SELECT r.id FROM ripple_runs r JOIN req ON req.id = r.id
          WHERE r.revision = req.revision + 1 AND r.machine = req.machine
            AND (req.owner IS NULL OR (r.lease_owner = req.owner AND r.lease_generation = req.gen))
        )
        SELECT id FROM updated UNION ALL SELECT id FROM replayed`),
      (rows) => {
        const written = new Set(rows.map((row) => row.id))
        return batch.map(({ key }) => written.has(key))
      }
    )
  })

  const writeMachine = (
    runId: string,
    revision: string,
    accepted: RunStatus.Snapshot,
    at: number,
    lease: Lease | undefined,
    diagnostics: Snapshot.Diagnostics | undefined
  ) =>
    writeMachines(runId, {
      revision,
      lease,
      machine: RunStatus.persist(accepted),
      suspension: RunStatus.suspension(accepted),
      at,
      diagnostics
    })

  const restoreOrDie = (runId: string, machine: unknown) => {
    const restored = RunStatus.restore(machine)
    return Result.isFailure(restored)
      ? Effect.die(new CorruptRun({ runId, reason: `run status: ${restored.failure.message}` }))
      : Effect.succeed(restored.success)
  }

  const leaseLost = (lease: Lease) => new LeaseLost({ runId: lease.runId, owner: lease.owner, generation: lease.generation })

  const holds = (row: RunRow, lease: Lease) =>
    row.lease_owner === lease.owner && Number(row.lease_generation) === lease.generation

  // Offers the events in order and writes the outcome once: all of them are accepted or nothing is written.
  const transitionAll = (lease: Lease | undefined) =>
  (
    runId: string,
    events: ReadonlyArray<RunStatus.Event>,
    at: number,
    diagnostics?: Snapshot.Diagnostics
  ): Effect.Effect<{ readonly from: RunStatus.Status; readonly to: RunStatus.Status }, RunStore.RunNotFound | RunStore.IllegalTransition | RunStore.StoreUnavailable> =>
    Effect.gen(function*() {
      // Compare-and-set: a concurrent writer (or a stale cache) makes the update miss, and the
      // events are offered again to the machine as stored.
      let cached = machines.get(runId)
      // Whether `cached` was just read from the row rather than taken from the cache.
      let fresh = false
      for (;;) {
        if (cached === undefined) {
          const row = yield* readRun(runId)
          if (lease !== undefined && !holds(row, lease)) return yield* Effect.die(leaseLost(lease))
          cached = { revision: String(row.revision), machine: row.machine }
          fresh = true
        }
        let machine = yield* restoreOrDie(runId, cached.machine)
        let refused: RunStore.IllegalTransition | undefined
        for (const event of events) {
          const applied = RunStore.applyEvent(runId, machine, event)
          if (Result.isFailure(applied)) {
            refused = applied.failure
            break
          }
          machine = applied.success
        }
        if (refused !== undefined) {
          // Refused by what may be a stale cache: refuse only what the stored machine refuses.
          if (fresh || (yield* isCurrent(runId, cached.revision))) return yield* Effect.fail(refused)
          cached = undefined
          continue
        }
        if (yield* writeMachine(runId, cached.revision, machine, at, lease, diagnostics)) {
          remember(runId, BigInt(cached.revision) + 1n, RunStatus.persist(machine))
          return { from: cached.machine.status, to: RunStatus.status(machine) }
        }
        machines.delete(runId)
        cached = undefined
      }
    })

  const transition = (lease: Lease | undefined) => (runId: string, event: RunStatus.Event, at: number) =>
    transitionAll(lease)(runId, [event], at)

  const isCurrent = (runId: string, revision: string) =>
    Effect.map(
      transact("transition", sql<{ readonly revision: RunRow["revision"] }>`SELECT revision FROM ripple_runs WHERE id = ${runId}`),
      (rows) => rows[0] !== undefined && String(rows[0].revision) === revision
    )

  interface JournalWrite {
    readonly lease: Lease | undefined
    readonly batch: Batch
  }

  // Journal writes of different runs that arrive while one is in flight go out together in one
  // statement; each run's rows are written only if its row exists (and holds the lease, when
  // fenced), locked for share in id order until the statement commits. Node rows and scopes are
  // upserts keyed by (run, node) and (run, scope), so the statement may be sent again after a lost
  // connection, unless it consumes a delivery: a second one of that name may have arrived since.
  const writeJournals = GroupCommit.make((batch: ReadonlyArray<{ readonly key: string; readonly request: JournalWrite }>) => {
    const requests = batch.map(({ key, request }) => ({
      run: key,
      owner: request.lease?.owner ?? null,
      gen: request.lease?.generation ?? null,
      rows: request.batch.rows,
      copies: request.batch.copies,
      scopes: request.batch.scopes,
      consumed: request.batch.consumed
    }))
    const replayable = requests.every((request) => request.consumed.length === 0)
    return Effect.map(
      transact("journal", sql<{ readonly id: string; readonly pause: boolean; readonly cancel: boolean }>`WITH req AS (
        SELECT * FROM jsonb_to_recordset(${json(requests)}::jsonb) AS x(run text, owner text, gen bigint,
          rows jsonb, copies jsonb, scopes jsonb, consumed jsonb)
      ), locked AS (
        SELECT r.id, r.pause_requested_at, r.cancel_requested_at IS NOT NULL OR r.status = 'cancelled' AS cancel
        FROM ripple_runs r JOIN req ON req.run = r.id
        WHERE req.owner IS NULL OR (r.lease_owner = req.owner AND r.lease_generation = req.gen)
        ORDER BY r.id
        FOR SHARE OF r
      ), run AS (
        SELECT req.*, locked.pause_requested_at, locked.cancel FROM req JOIN locked ON locked.id = req.run
      ), incoming AS (
        SELECT run.run AS run_id, e->>'n' AS node, e->>'s' AS status, (e->>'a')::integer AS attempt, (e->>'i')::json AS inputs,
          (e->>'o')::json AS output, e->'f' AS fingerprints, e->>'d' AS decision, e->'e' AS error,
          (e->>'sa')::double precision AS started_at, (e->>'fa')::double precision AS finished_at,
          e->>'rf' AS reused_from, e->'r' AS reasons, e->'w' AS dormancy, o AS ord
        FROM run, jsonb_array_elements(run.rows) WITH ORDINALITY AS x(e, o)
        UNION ALL
        SELECT run.run, s.node, s.status, s.attempt, s.inputs, s.output, s.fingerprints, s.decision, s.error,
          s.started_at, s.finished_at, COALESCE(s.reused_from, s.run_id), c->'r', NULL, 0
        FROM run, jsonb_array_elements(run.copies) c
        JOIN ripple_journal s ON s.run_id = c->>'s' AND s.node = c->>'n'
      ), written AS (
        INSERT INTO ripple_journal AS j (run_id, node, status, attempt, inputs, output, fingerprints, decision, error,
          started_at, finished_at, reused_from, reasons, dormancy)
        SELECT run_id, node, status, attempt, inputs, output, fingerprints, decision, error, started_at, finished_at,
          reused_from, reasons, dormancy FROM incoming ORDER BY run_id, ord
        ON CONFLICT (run_id, node) DO UPDATE SET status = excluded.status, attempt = excluded.attempt,
          inputs = excluded.inputs, output = excluded.output, fingerprints = excluded.fingerprints,
          decision = excluded.decision, error = excluded.error, started_at = excluded.started_at,
          finished_at = excluded.finished_at, reused_from = excluded.reused_from, reasons = excluded.reasons,
          dormancy = excluded.dormancy, written = excluded.written
      ), scoped AS (
        INSERT INTO ripple_scopes (run_id, scope, kind, value)
        SELECT run.run, c->>'s', c->>'k', (c->>'v')::json FROM run, jsonb_array_elements(run.scopes) c
        ON CONFLICT (run_id, scope) DO UPDATE SET kind = excluded.kind, value = excluded.value
      ), consumed AS (
        UPDATE ripple_deliveries d SET consumed_at = now()
        FROM run, jsonb_array_elements(run.consumed) c
        WHERE d.run_id = run.run AND d.kind = c->>'k' AND d.name = c->>'n' AND d.consumed_at IS NULL
      )
      SELECT run AS id, pause_requested_at IS NOT NULL AS pause, cancel FROM run`, replayable),
      (rows) => {
        const found = new Map(rows.map((row) => [row.id, row]))
        return batch.map(({ key }): RunStore.JournalAck | undefined => {
          const row = found.get(key)
          return row === undefined ? undefined : { pauseRequested: row.pause, cancelRequested: row.cancel }
        })
      }
    )
  })

  // Not written: the run does not exist, or (fenced) it exists without the lease; told apart for the error.
  const notWritten = (lease: Lease | undefined, runId: string) =>
    lease === undefined
      ? Effect.fail(new RunStore.RunNotFound({ runId }))
      : Effect.flatMap(readRun(runId), () => Effect.die(leaseLost(lease)))

  const journal = (lease: Lease | undefined) => (runId: string, entries: ReadonlyArray<RunStore.JournalEntry>) =>
    Effect.flatMap(
      writeJournals(runId, { lease, batch: batchOf(runId, entries) }),
      (ack) => ack !== undefined ? Effect.succeed(ack) : notWritten(lease, runId)
    )

  const setDiagnostics = (lease: Lease | undefined) => (runId: string, diagnostics: Snapshot.Diagnostics, at: number) =>
    Effect.suspend(() => {
      const fence = lease === undefined
        ? sql`TRUE`
        : sql`lease_owner = ${lease.owner} AND lease_generation = ${lease.generation}`
      const ls = diagnostics.lastStarted
      const lc = diagnostics.lastCompleted
      // Last started and last completed only move forward; a stale write leaves them as they are.
      return transact("setDiagnostics", sql<{ readonly id: string }>`UPDATE ripple_runs SET
          last_started_node = CASE WHEN ${ls?.at ?? null}::double precision >= COALESCE(last_started_at, '-Infinity')
            THEN ${ls?.node ?? null} ELSE last_started_node END,
          last_started_at = GREATEST(last_started_at, ${ls?.at ?? null}::double precision),
          last_completed_node = CASE WHEN ${lc?.at ?? null}::double precision >= COALESCE(last_completed_at, '-Infinity')
            THEN ${lc?.node ?? null} ELSE last_completed_node END,
          last_completed_at = GREATEST(last_completed_at, ${lc?.at ?? null}::double precision),
          finalization = ${diagnostics.finalization ?? null}, messages = ${json(diagnostics.messages)}::jsonb,
          updated_at = ${at}
        WHERE id = ${runId} AND ${fence} RETURNING id`).pipe(
        Effect.flatMap((rows) => rows.length === 1 ? Effect.void : notWritten(lease, runId))
      )
    })

  interface SnapshotRow extends RunRow {
    readonly nodes: StoredNodes | null
    readonly dormancies: ReadonlyArray<{ readonly wait?: Snapshot.Wait; readonly pause?: Snapshot.Pause }> | null
    readonly loops: { readonly [scope: string]: Snapshot.LoopScope } | null
    readonly parallels: { readonly [scope: string]: Snapshot.ParallelScope } | null
  }

  const readSnapshot = (runId: string) =>
    Effect.gen(function*() {
      const rows = yield* transact("snapshot", sql<SnapshotRow>`SELECT r.*,
          (SELECT jsonb_object_agg(j.node, ${sql.literal(recordSql)}) FROM ripple_journal j WHERE j.run_id = r.id) AS nodes,
          (SELECT jsonb_agg(j.dormancy ORDER BY j.written) FROM ripple_journal j
            WHERE j.run_id = r.id AND j.dormancy IS NOT NULL) AS dormancies,
          (SELECT json_object_agg(s.scope, s.value) FROM ripple_scopes s WHERE s.run_id = r.id AND s.kind = 'loop') AS loops,
          (SELECT json_object_agg(s.scope, s.value) FROM ripple_scopes s WHERE s.run_id = r.id AND s.kind = 'parallel') AS parallels
          , ${sql.literal(journalMarks)}
        FROM ripple_runs r WHERE r.id = ${runId}`)
      const row = rows[0]
      if (row === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return row
    })

  const snapshotOf = (row: SnapshotRow) =>
    Effect.map(loadWorkflow(row.version), (workflow): Snapshot.Snapshot => ({
      schemaVersion: Snapshot.schemaVersion,
      runId: row.id,
      workflow,
      ...(row.trigger === null ? {} : { trigger: row.trigger }),
      input: row.input,
      status: row.status,
      nodes: nodesOf(row.nodes),
      loops: row.loops ?? {},
      parallels: row.parallels ?? {},
      pending: [],
      waits: (row.dormancies ?? []).flatMap((d) => d.wait === undefined ? [] : [d.wait]),
      pauses: (row.dormancies ?? []).flatMap((d) => d.pause === undefined ? [] : [d.pause]),
      diagnostics: diagnosticsOf(row),
      ...prunedOf(row),
      startedAt: Number(row.created_at),
      updatedAt: Number(row.updated_at)
    }))

  const snapshot = (runId: string) => Effect.flatMap(readSnapshot(runId), snapshotOf)

  const reasons = (runId: string) =>
    Effect.gen(function*() {
      const rows = yield* transact("reasons", sql<{ readonly node: string | null; readonly reasons: ReadonlyArray<string> | null }>`
        SELECT j.node, j.reasons FROM ripple_runs r
        LEFT JOIN ripple_journal j ON j.run_id = r.id AND j.reasons IS NOT NULL
        WHERE r.id = ${runId}`)
      if (rows.length === 0) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      const found: Record<string, ReadonlyArray<string>> = {}
      for (const row of rows) if (row.node !== null && row.reasons !== null) found[row.node] = row.reasons
      return found
    })

  const latestSnapshot = (workflowId: string, trigger?: string | undefined) =>
    Effect.gen(function*() {
      const rows = yield* transact("latestSnapshot", sql<{ readonly run_id: string }>`SELECT run_id FROM ripple_latest
        WHERE workflow_id = ${workflowId} AND trigger_key = ${triggerKey(trigger)}`)
      const row = rows[0]
      if (row === undefined) return Option.none()
      // The latest run exists (a foreign key holds it), so only its workflow version can be missing.
      return Option.some(yield* Effect.catchTag(snapshot(row.run_id), "RunNotFound", Effect.die))
    })

  const deliver = (runId: string, delivery: RunStore.Delivery) =>
    Effect.gen(function*() {
      // Not replayable: sent again after a committed first attempt it would report the delivery refused.
      const rows = yield* transact("deliver", sql<{ readonly kept: boolean; readonly found: boolean }>`WITH run AS (
          SELECT id FROM ripple_runs WHERE id = ${runId}
        ), kept AS (
          INSERT INTO ripple_deliveries (run_id, kind, name, payload, at)
          SELECT id, ${delivery.kind}, ${delivery.name}, ${json(delivery.payload)}::json, ${delivery.at} FROM run
          ON CONFLICT (run_id, kind, name) WHERE consumed_at IS NULL DO NOTHING
          RETURNING seq
        )
        SELECT EXISTS (SELECT 1 FROM kept) AS kept, EXISTS (SELECT 1 FROM run) AS found`, false)
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
      }>`SELECT d.kind, d.name, d.payload, d.at FROM ripple_runs r
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
        WHERE status IN ('suspended', 'paused') AND wake_at <= ${now}
        UNION
        SELECT r.id, r.status, r.wake_at FROM ripple_deliveries d JOIN ripple_runs r ON r.id = d.run_id
        WHERE d.consumed_at IS NULL AND r.status IN ('suspended', 'paused')
          AND ((d.kind = 'signal' AND d.name = ANY (r.awaited_signals))
            OR (d.kind = 'approval' AND d.name = ANY (r.awaited_approvals)))`),
      (rows) => rows.map((row): RunStore.Wakeable => ({ runId: row.id, status: row.status, wakeAt: row.wake_at === null ? null : Number(row.wake_at) }))
    )

  // The fence of a compensation-log write: the run row locked for share (holding the lease, when fenced).
  const fencedRun = (lease: Lease | undefined, runId: string) =>
    lease === undefined
      ? sql`SELECT id FROM ripple_runs WHERE id = ${runId} FOR SHARE`
      : sql`SELECT id FROM ripple_runs WHERE id = ${runId} AND lease_owner = ${lease.owner}
          AND lease_generation = ${lease.generation} FOR SHARE`

  const planCompensations = (lease: Lease | undefined) => (runId: string, nodes: ReadonlyArray<string>, at: number) =>
    Effect.gen(function*() {
      const rows = yield* transact("planCompensations", sql<{ readonly found: boolean }>`WITH run AS (
          ${fencedRun(lease, runId)}
        ), planned AS (
          INSERT INTO ripple_compensations (run_id, node, seq, status, at)
          SELECT run.id, n.node, COALESCE((SELECT max(seq) FROM ripple_compensations WHERE run_id = run.id), 0) + n.i, 'pending', ${at}
          FROM run, jsonb_array_elements_text(${json(nodes as Array<Json>)}::jsonb) WITH ORDINALITY AS n(node, i)
          ON CONFLICT (run_id, node) DO NOTHING
          RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM run) AS found`)
      if (rows[0]?.found !== true) return yield* notWritten(lease, runId)
    })

  const compensated = (lease: Lease | undefined) => (
    runId: string,
    node: string,
    outcome: { readonly status: "completed" | "failed"; readonly error?: string | undefined },
    at: number
  ) =>
    Effect.gen(function*() {
      const rows = yield* transact("compensated", sql<{ readonly found: boolean }>`WITH run AS (
          ${fencedRun(lease, runId)}
        ), written AS (
          INSERT INTO ripple_compensations (run_id, node, seq, status, error, at)
          SELECT run.id, ${node}, COALESCE((SELECT max(seq) FROM ripple_compensations WHERE run_id = run.id), 0) + 1,
            ${outcome.status}, ${outcome.error ?? null}, ${at}
          FROM run
          ON CONFLICT (run_id, node) DO UPDATE SET status = excluded.status, error = excluded.error, at = excluded.at
          RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM run) AS found`)
      if (rows[0]?.found !== true) return yield* notWritten(lease, runId)
    })

  const requestPause = (runId: string, at: number) =>
    Effect.gen(function*() {
      const rows = yield* transact("requestPause", sql<{ readonly requested: boolean | null }>`WITH requested AS (
          UPDATE ripple_runs SET pause_requested_at = COALESCE(pause_requested_at, ${at})
          WHERE id = ${runId} AND status = ANY (${`{${RunStore.pausable.join(",")}}`}::text[])
          RETURNING id
        )
        SELECT EXISTS (SELECT 1 FROM requested) AS requested FROM ripple_runs WHERE id = ${runId}`)
      if (rows[0] === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows[0].requested === true
    })

  const requestCancel = (runId: string, at: number) =>
    Effect.gen(function*() {
      const rows = yield* transact("requestCancel", sql<{ readonly requested: boolean | null }>`WITH requested AS (
          UPDATE ripple_runs SET cancel_requested_at = COALESCE(cancel_requested_at, ${at})
          WHERE id = ${runId} AND NOT (status = ANY (${consumesCancel}::text[]))
          RETURNING id
        )
        SELECT EXISTS (SELECT 1 FROM requested) AS requested FROM ripple_runs WHERE id = ${runId}`)
      if (rows[0] === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows[0].requested === true
    })

  // A lease can be granted on a row nobody holds or whose holder's lease expired by `at`; granting
  // it is the next generation. Shared by `acquire` and `claim`, the two ways a lease is taken (both
  // update `ripple_runs r`).
  const grantable = (at: number) => sql`(r.lease_owner IS NULL OR r.lease_expires_at <= ${at})`
  const grant = (owner: string, terms: RunStore.LeaseTerms) =>
    sql`lease_owner = ${owner}, lease_expires_at = ${terms.at + terms.ttlMs}, lease_generation = r.lease_generation + 1`

  // One conditional update: a concurrent acquire waits for this one's row lock, then re-checks the
  // condition against the row this one wrote and grants nothing. The holder is read from the
  // statement's snapshot, so a refusal after a race (snapshot older than the winner) reads it again.
  const acquire = (
    runId: string,
    owner: string,
    terms: RunStore.LeaseTerms
  ): Effect.Effect<Lease, RunStore.RunNotFound | RunStore.LeaseHeld | RunStore.StoreUnavailable> =>
    Effect.gen(function*() {
      const expiresAt = terms.at + terms.ttlMs
      for (;;) {
        // Not replayable: sent again after a committed first attempt it would find its own lease held.
        const rows = yield* transact("acquire", sql<{
          readonly generation: number | bigint | string | null
          readonly lease_owner: string | null
          readonly lease_expires_at: number | null
        }>`WITH taken AS (
            UPDATE ripple_runs r SET ${grant(owner, terms)}
            WHERE r.id = ${runId} AND ${grantable(terms.at)}
            RETURNING r.lease_generation
          )
          SELECT (SELECT lease_generation FROM taken) AS generation, lease_owner, lease_expires_at
          FROM ripple_runs WHERE id = ${runId}`, false)
        const row = rows[0]
        if (row === undefined) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
        if (row.generation !== null) return { runId, owner, generation: Number(row.generation), expiresAt }
        if (row.lease_owner !== null && row.lease_expires_at !== null && Number(row.lease_expires_at) > terms.at) {
          return yield* Effect.fail(new RunStore.LeaseHeld({ runId, owner: row.lease_owner, expiresAt: Number(row.lease_expires_at) }))
        }
      }
    })

  // Runs with work, each found through its own index. The lease and status conditions are repeated
  // on the locked row, so a row claimed by another worker since this statement's snapshot is
  // re-checked and left alone.
  const claim = (owner: string, terms: RunStore.LeaseTerms, limit: number) =>
    Effect.map(
      sql<Omit<Claimed, "lease"> & { readonly lease_generation: number | bigint | string }>`WITH candidates AS (
          SELECT id, seq FROM ripple_runs WHERE queued AND status IN ('pending', 'running')
          UNION
          SELECT id, seq FROM ripple_runs WHERE queued AND status IN ('suspended', 'paused') AND wake_at <= ${terms.at}
          UNION
          SELECT r.id, r.seq FROM ripple_deliveries d JOIN ripple_runs r ON r.id = d.run_id
          WHERE d.consumed_at IS NULL AND r.queued AND r.status IN ('suspended', 'paused')
            AND ((d.kind = 'signal' AND d.name = ANY (r.awaited_signals))
              OR (d.kind = 'approval' AND d.name = ANY (r.awaited_approvals)))
        ), locked AS (
          SELECT r.id FROM ripple_runs r JOIN candidates c ON c.id = r.id
          WHERE r.queued AND r.status IN ('pending', 'running', 'suspended', 'paused') AND ${grantable(terms.at)}
          ORDER BY c.seq LIMIT ${limit}
          FOR UPDATE OF r SKIP LOCKED
        )
        UPDATE ripple_runs r SET ${grant(owner, terms)}
        FROM locked WHERE r.id = locked.id
        RETURNING r.id, r.status, r.lease_generation, r.version, r.mode, r.source_run, r.target, r.input, r.parent_run,
          r.revision, r.machine`,
      (rows) =>
        rows.map(({ lease_generation, ...row }): Claimed => ({
          ...row,
          lease: { runId: row.id, owner, generation: Number(lease_generation), expiresAt: terms.at + terms.ttlMs }
        }))
    )

  const renew = (
    lease: Lease,
    terms: RunStore.LeaseTerms
  ): Effect.Effect<RunStore.Renewal, RunStore.RunNotFound | RunStore.LeaseLost | RunStore.StoreUnavailable> =>
    Effect.gen(function*() {
      const expiresAt = terms.at + terms.ttlMs
      const rows = yield* transact("renew", sql<{ readonly pause: boolean; readonly cancel: boolean }>`UPDATE ripple_runs
        SET lease_expires_at = ${expiresAt}
        WHERE id = ${lease.runId} AND lease_owner = ${lease.owner} AND lease_generation = ${lease.generation}
        RETURNING pause_requested_at IS NOT NULL AS pause, cancel_requested_at IS NOT NULL OR status = 'cancelled' AS cancel`)
      const row = rows[0]
      if (row === undefined) {
        yield* readRun(lease.runId)
        return yield* Effect.fail(leaseLost(lease))
      }
      return { lease: { ...lease, expiresAt }, ack: { pauseRequested: row.pause, cancelRequested: row.cancel } }
    })

  // Leases released while a release is in flight go out together (rows locked in id order, like
  // every multi-row writer, so releases never deadlock with journal writes).
  const releases = GroupCommit.make((batch: ReadonlyArray<{ readonly key: string; readonly request: Lease }>) =>
    Effect.as(
      transact("release", sql`WITH req AS (
          SELECT * FROM jsonb_to_recordset(${json(batch.map((b) => b.request))}::jsonb)
            AS x("runId" text, owner text, generation bigint)
        ), locked AS (
          SELECT r.id FROM ripple_runs r JOIN req ON req."runId" = r.id
          WHERE r.lease_owner = req.owner AND r.lease_generation = req.generation
          ORDER BY r.id FOR UPDATE OF r
        )
        UPDATE ripple_runs r SET lease_owner = NULL, lease_expires_at = NULL FROM locked WHERE r.id = locked.id`),
      batch.map(() => undefined)
    ))
  // A release that fails only leaves the lease to expire.
  const release = (lease: Lease) =>
    Effect.ignoreCause(releases(lease.runId, lease), { log: true, message: "releasing a lease failed" })

  const children = (runId: string) =>
    Effect.gen(function*() {
      const rows = yield* transact("children", sql<{ readonly id: string | null; readonly parent_node: string | null; readonly status: RunStatus.Status | null }>`
        SELECT c.id, c.parent_node, c.status FROM ripple_runs r
        LEFT JOIN ripple_runs c ON c.parent_run = r.id
        WHERE r.id = ${runId} ORDER BY c.created_at, c.id`)
      if (rows.length === 0) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows.flatMap((row): Array<RunStore.Child> =>
        row.id === null || row.status === null ? [] : [{ runId: row.id, node: row.parent_node ?? "", status: row.status }]
      )
    })

  const compensations = (runId: string) =>
    Effect.gen(function*() {
      const rows = yield* transact("compensations", sql<{
        readonly node: string | null
        readonly status: RunStore.CompensationEntry["status"]
        readonly error: string | null
        readonly at: number
      }>`SELECT c.node, c.status, c.error, c.at FROM ripple_runs r
        LEFT JOIN ripple_compensations c ON c.run_id = r.id
        WHERE r.id = ${runId} ORDER BY c.seq`)
      if (rows.length === 0) return yield* Effect.fail(new RunStore.RunNotFound({ runId }))
      return rows.flatMap((row): Array<RunStore.CompensationEntry> =>
        row.node === null ? [] : [{ node: row.node, status: row.status, error: row.error ?? undefined, at: Number(row.at) }]
      )
    })

  const storeWith = (lease: Lease | undefined): RunStore.Port =>
    RunStore.RunStore.of({
      requestCancel,
      acquire,
      renew,
      release,
      fenced: storeWith,
      saveWorkflow,
      loadWorkflow,
      createRun,
      getRun: (runId) => Effect.map(readRun(runId), runOf),
      transition: transition(lease),
      finish: (runId, event, diagnostics, at) => transitionAll(lease)(runId, [event], at, diagnostics),
      journal: journal(lease),
      reasons,
      setDiagnostics: setDiagnostics(lease),
      snapshot,
      latestSnapshot,
      deliver,
      deliveries,
      wakeable,
      requestPause,
      planCompensations: planCompensations(lease),
      compensated: compensated(lease),
      compensations,
      children,
      // A lost notification only delays the owner until its next poll: logged, never a failure.
      notify: (runId) =>
        Effect.ignoreCause(sql`SELECT pg_notify(${channel}, ${runId})`, { log: true, message: "notifying the owner of a run failed" })
    })

  const checkedSnapshot = (runId: string) =>
    Effect.gen(function*() {
      const row = yield* readSnapshot(runId)
      const restored = RunStatus.restore(row.machine)
      if (Result.isFailure(restored)) {
        return yield* Effect.fail(new CorruptRun({ runId, reason: `run status: ${restored.failure.message}` }))
      }
      const decoded = Snapshot.decode(yield* snapshotOf(row))
      if (Result.isFailure(decoded)) return yield* Effect.fail(new CorruptRun({ runId, reason: decoded.failure.message }))
      return decoded.success
    })

  const markFailed = (lease: Lease, reason: string, at: number) =>
    Effect.gen(function*() {
      const failed = RunStatus.next(RunStatus.initial(), { type: "FAIL", error: reason })
      // A fresh machine failed with the reason: the stored one may be what is corrupt.
      const machine = failed._tag === "Accepted" ? RunStatus.persist(failed.snapshot) : undefined
      // Not replayable: sent again after a committed first attempt it would append the reason twice.
      const rows = yield* transact("markFailed", sql<{ readonly id: string }>`UPDATE ripple_runs SET status = 'failed',
          machine = ${json(machine)}::jsonb, revision = revision + 1, error = ${reason}, finalization = 'failed',
          messages = messages || ${json([reason])}::jsonb, updated_at = ${at}, pause_requested_at = NULL,
          cancel_requested_at = NULL
        WHERE id = ${lease.runId} AND lease_owner = ${lease.owner} AND lease_generation = ${lease.generation}
          AND status NOT IN ('completed', 'cancelled')
        RETURNING id`, false)
      if (rows.length === 0) return yield* Effect.fail(leaseLost(lease))
    })

  const atBlocks = (workflowId: string) =>
    Effect.map(
      sql<{ readonly node: string; readonly n: number | bigint | string }>`SELECT j.node, count(*) AS n
        FROM ripple_runs r JOIN ripple_journal j ON j.run_id = r.id AND j.status = 'running'
        WHERE r.workflow_id = ${workflowId} AND r.status IN ('pending', 'running', 'suspended', 'paused')
        GROUP BY j.node`,
      (rows) => Object.fromEntries(rows.map((row) => [row.node, Number(row.n)]))
    )

  return SqlRunStore.of({
    store: storeWith(undefined),
    fenced: storeWith,
    transitionAll: (lease, events, at) => transitionAll(lease)(lease.runId, events, at),
    checkedSnapshot,
    markFailed,
    prime: (runId, revision, machine) => remember(runId, revision, machine),
    claim,
    atBlocks
  })
})

/**
 * The store over a `SqlClient`: applies the migrations, then provides `SqlRunStore` and the
 * `RunStore` port.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<SqlRunStore | RunStore.RunStore, MigrationError | SqlError, SqlClient.SqlClient> = Layer
  .effectContext(
    Effect.gen(function*() {
      yield* Migrations.run
      const service = yield* make
      return Context.make(SqlRunStore, service).pipe(Context.add(RunStore.RunStore, service.store))
    })
  )

/**
 * `layer` over `Database.layerFromConfig`: a server at `DATABASE_URL`, else PGlite in `dataDir`.
 *
 * @since 0.1.0
 */
export const layerFromConfig = (
  options: Omit<Database.Options, "url"> = {}
): Layer.Layer<
  SqlRunStore | RunStore.RunStore | Database.Database | SqlClient.SqlClient,
  MigrationError | SqlError | Database.DatabaseError | Config.ConfigError
> => Layer.provideMerge(layer, Database.layerFromConfig(options))
