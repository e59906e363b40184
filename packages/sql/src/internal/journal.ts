/**
 * Journal writes: a run's node records, copies of reused nodes, scopes and consumed deliveries in
 * one statement (group-committed across runs), acknowledged with the run's pause and cancel
 * requests; and the run's diagnostics.
 */
import type { Snapshot } from "@ripple/core"
import type { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as GroupCommit from "./groupCommit.ts"
import { type Batch, batchOf } from "./journalBatch.ts"
import type { Runs } from "./runs.ts"
import { type Db, json, maxStatementChars } from "./transact.ts"

type Lease = RunStore.Lease

interface JournalWrite {
  readonly lease: Lease | undefined
  readonly batch: Batch
}

interface Request {
  readonly run: string
  /** Unique to this write: marks the deliveries it consumes (see `statement`). */
  readonly token: string
  readonly owner: string | null
  readonly gen: number | bigint | null
  readonly rows: Batch["rows"]
  readonly copies: Batch["copies"]
  readonly scopes: Batch["scopes"]
  readonly consumed: Batch["consumed"]
}

const charsOf = (text: unknown): number => typeof text === "string" ? text.length : 0
const rowChars = (row: Batch["rows"][number]): number => charsOf(row["i"]) + charsOf(row["o"])
const weightOf = (batch: Batch): number => {
  let chars = 0
  for (const row of batch.rows) chars += rowChars(row)
  for (const scope of batch.scopes) chars += scope.v.length
  return chars
}

// A run's request as requests of at most `maxStatementChars` each (a larger row alone), rows in order; the
// copies, scopes and consumed deliveries go with the last.
const split = (request: Request): ReadonlyArray<Request> => {
  const parts: Array<Request> = []
  let rows: Batch["rows"] = []
  let chars = 0
  for (const row of request.rows) {
    const more = rowChars(row)
    if (rows.length > 0 && chars + more > maxStatementChars) {
      parts.push({ ...request, rows, copies: [], scopes: [], consumed: [] })
      rows = []
      chars = 0
    }
    rows.push(row)
    chars += more
  }
  parts.push({ ...request, rows })
  return parts
}

// A run's rows travel in a parameter of their own, read once, where they are inserted: in the
// parameter of the runs, which the lock (its rows kept for a recheck), the joins and the CTEs read
// by several parts carry and materialise, a large value was copied through temporary files
// several times over, two thirds of a 52 MiB write's time on PostgreSQL.
const headOf = ({ consumed, copies, gen, owner, run, scopes, token }: Request) =>
  ({ run, token, owner, gen, copies, scopes, consumed })
const rowsOf = ({ rows, run }: Request) => ({ run, rows })

// Each run's rows are written only if its row exists (and holds the lease, when fenced), locked
// for share in id order until the statement commits. Node rows and scopes are upserts keyed by
// (run, node) and (run, scope). Deliveries consumed are marked with the write's token; a delivery
// marked with it already is this write's committed first attempt, sent again after a lost
// connection: it consumes nothing more (a delivery of the same name may have been kept since).
const statement = (sql: Db["sql"], requests: ReadonlyArray<Request>) =>
  sql<{ readonly id: string; readonly pause: boolean; readonly cancel: boolean }>`WITH req AS (
    SELECT * FROM jsonb_to_recordset(${json(requests.map(headOf))}::jsonb) AS x(run text, token text, owner text, gen bigint,
      copies jsonb, scopes jsonb, consumed jsonb)
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
    FROM run JOIN jsonb_to_recordset(${json(requests.map(rowsOf))}::jsonb) AS v(run text, rows jsonb)
      ON v.run = run.run, jsonb_array_elements(v.rows) WITH ORDINALITY AS x(e, o)
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
    UPDATE ripple_deliveries d SET consumed_at = now(), consumed_by = run.token
    FROM run, jsonb_array_elements(run.consumed) c
    WHERE d.run_id = run.run AND d.kind = c->>'k' AND d.name = c->>'n' AND d.consumed_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM ripple_deliveries mine WHERE mine.consumed_by = run.token)
  )
  SELECT run AS id, pause_requested_at IS NOT NULL AS pause, cancel FROM run`

// Journal writes of different runs that arrive while one is in flight go out together in one
// statement (up to `maxStatementChars` of values); one run's write larger than that goes out as several
// statements in one transaction, the run row locked by the first. A write may be sent again after
// a lost connection: its token keeps it from consuming a delivery twice.
const journalWriter = ({ sql, transact }: Db) =>
  GroupCommit.make((batch: ReadonlyArray<{ readonly key: string; readonly request: JournalWrite }>) => {
    const requests: ReadonlyArray<Request> = batch.map(({ key, request }) => ({
      run: key,
      token: crypto.randomUUID(),
      owner: request.lease?.owner ?? null,
      gen: request.lease?.generation ?? null,
      rows: request.batch.rows,
      copies: request.batch.copies,
      scopes: request.batch.scopes,
      consumed: request.batch.consumed
    }))
    const parts = requests.length === 1 && weightOf(batch[0]!.request.batch) > maxStatementChars ? split(requests[0]!) : undefined
    const write = parts === undefined
      ? statement(sql, requests)
      : sql.withTransaction(Effect.map(Effect.forEach(parts, (part) => statement(sql, [part])), (acks) => acks.at(-1)!))
    return Effect.map(transact("journal", write), (rows) => {
      const found = new Map(rows.map((row) => [row.id, row]))
      return batch.map(({ key }): RunStore.JournalAck | undefined => {
        const row = found.get(key)
        return row === undefined ? undefined : { pauseRequested: row.pause, cancelRequested: row.cancel }
      })
    })
  }, { weigh: (request) => weightOf(request.batch), maxWeight: maxStatementChars })

/** The journal and diagnostics writes of one store. */
export const make = (db: Db, { notWritten }: Runs) => {
  const { sql, transact } = db
  const writeJournals = journalWriter(db)

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

  return { journal, setDiagnostics }
}
