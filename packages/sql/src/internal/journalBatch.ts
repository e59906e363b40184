/**
 * A journal batch as the journal statement takes it: node records as JSON objects with short
 * keys, reused nodes to copy server-side, scopes and consumed deliveries.
 */
import type { Snapshot } from "@ripple/core"
import { RunStore } from "@ripple/runtime"

/** One run's journal entries, encoded for the journal statement. */
export interface Batch {
  /** Rows written from records: JSON objects with short keys, absent fields left out, inputs and output as JSON text. */
  readonly rows: Array<Record<string, unknown>>
  /** Reused nodes copied from the source run's rows. */
  readonly copies: Array<{ readonly n: string; readonly s: string; readonly r: ReadonlyArray<string> }>
  /** Loop and parallel instances (`v`: the scope's JSON text). */
  readonly scopes: Array<{ readonly s: string; readonly k: "loop" | "parallel"; readonly v: string }>
  /** Deliveries consumed, one per entry. */
  readonly consumed: Array<{ readonly k: RunStore.DeliveryKind; readonly n: string }>
}

// A pinned node's journal row says so in its reasons (see `RunStore.JournalEntry`).
const pinnedReasons: ReadonlyArray<string> = ["pinned"]

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


/** Encodes a run's journal entries, only the last entry per node kept. */
export const batchOf = (runId: string, entries: ReadonlyArray<RunStore.JournalEntry>): Batch => {
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
        rows.push(rowOf(entry.node, RunStore.recordOf(entry), entry._tag === "Completed" && entry.pinned === true ? pinnedReasons : undefined, undefined))
    }
  }
  return { rows, copies, scopes: [...scopes.values()], consumed }
}
