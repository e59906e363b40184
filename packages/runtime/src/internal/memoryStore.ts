/**
 * The in-memory `RunStore` (`RunStore.makeMemory`): runs, their journal, deliveries, compensation
 * log and lease kept in maps, one state per store. Every operation applies at once; the memory
 * store never fails with `StoreUnavailable`.
 */
import { Snapshot, type Workflow } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as RunStatus from "../RunStatus.ts"
import type {
  Child,
  CompensationEntry,
  Delivery,
  JournalAck,
  JournalEntry,
  Lease,
  LeaseTerms,
  NewRun,
  Port,
  Renewal,
  Run,
  Wakeable
} from "../RunStore.ts"
import * as RunStore from "../RunStore.ts"
import * as Wake from "../Wake.ts"
import * as Immediate from "./immediate.ts"

const settledForSnapshots: ReadonlyArray<RunStatus.Status> = ["completed", "failed"]

interface MemoryRun {
  run: Run
  /** The node records, as of the last `unfolded` entry folded in (`recordsOf`). */
  readonly nodes: Map<string, Snapshot.NodeRecord>
  /**
   * The journal calls made since the records were last read, in order, each call's entries as one
   * array: a write appends its array, a read folds their node entries into `nodes` (an execution
   * writes two entries per node and reads none, in about one call per wave).
   */
  unfolded: Array<ReadonlyArray<JournalEntry>>
  /** The store's own array last in `unfolded`, that calls of few entries are copied into (`journalNow`). */
  tail: Array<JournalEntry> | undefined
  readonly reasons: Map<string, ReadonlyArray<string>>
  readonly loops: Map<string, Snapshot.LoopScope>
  readonly parallels: Map<string, Snapshot.ParallelScope>
  readonly waits: Map<string, Snapshot.Wait>
  readonly pauses: Map<string, Snapshot.Pause>
  readonly deliveries: Array<Delivery>
  readonly compensations: Array<CompensationEntry>
  /** The last lease granted (kept after a release, without a holder, so generations keep counting). */
  lease: { readonly owner: string | undefined; readonly generation: number; readonly expiresAt: number }
}

/** Everything one memory store holds. */
interface State {
  readonly workflows: Map<string, Workflow.Workflow>
  readonly runs: Map<string, MemoryRun>
  /** The latest settled run per (workflow, trigger). */
  readonly latest: Map<string, string>
  counter: number
}

const latestKey = (workflowId: string, trigger: string | undefined) => `${workflowId}\u0000${trigger ?? ""}`

const find = (state: State, runId: string) => {
  const found = state.runs.get(runId)
  return found === undefined ? Effect.fail(new RunStore.RunNotFound({ runId })) : Effect.succeed(found)
}

const holds = (stored: MemoryRun, lease: Lease) => stored.lease.owner === lease.owner && stored.lease.generation === lease.generation

const leaseLost = (lease: Lease) => new RunStore.LeaseLost({ runId: lease.runId, owner: lease.owner, generation: lease.generation })

// The run an execution write goes to: it must exist and, when fenced, still be held by the lease.
const writable = (state: State, lease: Lease | undefined, runId: string) =>
  lease === undefined
    ? find(state, runId)
    : Effect.flatMap(find(state, runId), (stored) => holds(stored, lease) ? Effect.succeed(stored) : Effect.fail(leaseLost(lease)))

// The four acknowledgements, made once (a chain writes once per node): as values, and as the exits of `journalNow`.
const acks: ReadonlyArray<JournalAck> = [false, true].flatMap((pauseRequested) =>
  [false, true].map((cancelRequested) => ({ pauseRequested, cancelRequested }))
)
const ackExits = acks.map((ack) => Exit.succeed(ack))
const ackIndex = (run: Run): number =>
  (run.pauseRequestedAt !== undefined ? 2 : 0) + (run.cancelRequestedAt !== undefined || run.status === "cancelled" ? 1 : 0)

const ackOf = (run: Run): JournalAck => acks[ackIndex(run)]!

const loadWorkflow = (state: State, version: string) => {
  const workflow = state.workflows.get(version)
  return workflow === undefined ? Effect.fail(new RunStore.WorkflowNotFound({ version })) : Effect.succeed(workflow)
}

// The node records of a run, its journaled entries folded in: the last entry of a node decides its record.
const recordsOf = (stored: MemoryRun): Map<string, Snapshot.NodeRecord> => {
  const calls = stored.unfolded
  if (calls.length === 0) return stored.nodes
  stored.unfolded = []
  stored.tail = undefined
  for (let c = 0; c < calls.length; c++) {
    const entries = calls[c]!
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k]!
      if (entry._tag === "Consumed" || entry._tag === "Scope") continue
      if (entry._tag === "Reused") {
        const producer = entry.record.reusedFrom ?? entry.from
        stored.nodes.set(entry.node, producer === undefined ? entry.record : { ...entry.record, reusedFrom: producer })
      } else stored.nodes.set(entry.node, RunStore.recordOf(entry))
    }
  }
  return stored.nodes
}

const snapshotOf = (state: State, stored: MemoryRun): Effect.Effect<Snapshot.Snapshot, RunStore.WorkflowNotFound> =>
  Effect.map(loadWorkflow(state, stored.run.version), (workflow) => {
    const { run } = stored
    return {
      schemaVersion: Snapshot.schemaVersion,
      runId: run.id,
      workflow,
      ...(run.trigger === undefined ? {} : { trigger: run.trigger }),
      input: run.input,
      status: run.status,
      nodes: Object.fromEntries(recordsOf(stored)),
      loops: Object.fromEntries(stored.loops),
      parallels: Object.fromEntries(stored.parallels),
      pending: [],
      waits: [...stored.waits.values()],
      pauses: [...stored.pauses.values()],
      diagnostics: run.diagnostics,
      ...(run.pruned === undefined ? {} : { pruned: run.pruned }),
      startedAt: run.createdAt,
      updatedAt: run.updatedAt
    }
  })

const latestSnapshot = (state: State, workflowId: string, trigger: string | undefined) => {
  const runId = state.latest.get(latestKey(workflowId, trigger))
  return runId === undefined
    ? Effect.succeed(Option.none())
    : Effect.map(snapshotOf(state, state.runs.get(runId)!), Option.some)
}

const createRun = (state: State, input: NewRun) =>
  Effect.map(loadWorkflow(state, input.version), (workflow) => {
    const machine = RunStatus.persist(RunStatus.initial())
    const run: Run = {
      id: `run-${++state.counter}`,
      workflowId: workflow.id,
      version: input.version,
      mode: input.mode,
      sourceRun: input.sourceRun,
      target: input.target,
      ...(input.to === undefined ? {} : { to: input.to }),
      ...(input.pins === undefined ? {} : { pins: input.pins }),
      trigger: input.trigger,
      input: input.input,
      status: machine.status,
      machine,
      diagnostics: { messages: [] },
      createdAt: input.at,
      updatedAt: input.at,
      ...(input.parentRun === undefined ? {} : { parentRun: input.parentRun, parentNode: input.parentNode ?? "" }),
      ...(input.pruned === undefined ? {} : { pruned: input.pruned }),
      ...(input.queued === true ? { queued: true } : {})
    }
    state.runs.set(run.id, {
      run,
      compensations: [],
      nodes: new Map(),
      unfolded: [],
      tail: undefined,
      reasons: new Map(),
      loops: new Map(),
      parallels: new Map(),
      waits: new Map(),
      pauses: new Map(),
      deliveries: [],
      lease: { owner: undefined, generation: 0, expiresAt: 0 }
    })
    return run
  })

const getRun = (state: State, runId: string) =>
  Effect.map(find(state, runId), (stored) => {
    const { owner } = stored.lease
    return owner === undefined ? stored.run : { ...stored.run, lease: { owner, expiresAt: stored.lease.expiresAt } }
  })

// Asks every unfinished run below a run (children, theirs, ...) to cancel, in the write that asks
// the run or settles it `cancelled`: none is left running for a cancelled parent if the canceller
// stops now.
const askDescendants = (state: State, runId: string, at: number) => {
  const below = new Map<string, Array<MemoryRun>>()
  for (const stored of state.runs.values()) {
    const parent = stored.run.parentRun
    if (parent !== undefined) below.set(parent, [...(below.get(parent) ?? []), stored])
  }
  const pending = [...(below.get(runId) ?? [])]
  for (let stored = pending.pop(); stored !== undefined; stored = pending.pop()) {
    if (!RunStore.consumesCancel.includes(stored.run.status) && stored.run.cancelRequestedAt === undefined) {
      stored.run = { ...stored.run, cancelRequestedAt: at }
    }
    pending.push(...(below.get(stored.run.id) ?? []))
  }
}

const transition = (
  state: State,
  lease: Lease | undefined,
  runId: string,
  event: RunStatus.Event,
  at: number,
  diagnostics: Snapshot.Diagnostics | undefined
) =>
  Effect.flatMap(writable(state, lease, runId), (stored) => {
    const restored = RunStatus.restore(stored.run.machine)
    // The store only ever persists what the machine produced, so this is corruption: a defect.
    if (Result.isFailure(restored)) return Effect.die(restored.failure)
    const applied = RunStore.applyEvent(runId, restored.success, event)
    if (Result.isFailure(applied)) return Effect.fail(applied.failure)
    const from = stored.run.status
    const machine = RunStatus.persist(applied.success)
    const { cancelRequestedAt, pauseRequestedAt, ...run } = stored.run
    const keepsPause = pauseRequestedAt !== undefined && !RunStore.consumesPause.includes(machine.status)
    const keepsCancel = cancelRequestedAt !== undefined && !RunStore.consumesCancel.includes(machine.status)
    stored.run = {
      ...run,
      status: machine.status,
      machine,
      updatedAt: at,
      ...(keepsPause ? { pauseRequestedAt } : {}),
      ...(keepsCancel ? { cancelRequestedAt } : {}),
      ...(diagnostics === undefined ? {} : { diagnostics })
    }
    if (from !== machine.status && machine.status === "cancelled") askDescendants(state, runId, at)
    if (from !== machine.status && settledForSnapshots.includes(machine.status)) {
      const key = latestKey(stored.run.workflowId, stored.run.trigger)
      const previous = state.latest.get(key)
      // "Latest" is by creation order, so a slow old run finishing late does not win.
      if (previous === undefined || state.runs.get(previous)!.run.createdAt <= stored.run.createdAt) state.latest.set(key, runId)
    }
    return Effect.succeed({ from, to: machine.status })
  })

const pinnedReasons: ReadonlyArray<string> = ["pinned"]

// A pushed array holds at least 17 slots: from this many entries it is kept rather than copied.
const keptFrom = 16

// The engine's hot path (one call per wave, per node on a chain): a plain call, made at once by the
// engine's journal writer (`Immediate`) and suspended in `journal` for everyone else. The writer
// hands its array over (`Immediate.Now`): one of many entries (a wide wave's) is kept as it is;
// the entries of any other call are copied into the store's own array, so a chain's two-entry
// waves do not each keep an array grown for 17.
const journalNow = (
  state: State,
  lease: Lease | undefined,
  runId: string,
  entries: ReadonlyArray<JournalEntry>,
  handedOver: boolean
): Exit.Exit<JournalAck, RunStore.RunNotFound | RunStore.LeaseLost> => {
  const stored = state.runs.get(runId)
  if (stored === undefined) return Exit.fail(new RunStore.RunNotFound({ runId }))
  if (lease !== undefined && !holds(stored, lease)) return Exit.fail(leaseLost(lease))
  if (handedOver && entries.length >= keptFrom) {
    stored.unfolded.push(entries)
    stored.tail = undefined
  } else if (entries.length > 0) {
    let tail = stored.tail
    if (tail === undefined) {
      tail = stored.tail = []
      stored.unfolded.push(tail)
    }
    for (let k = 0; k < entries.length; k++) tail.push(entries[k]!)
  }
  for (let k = 0; k < entries.length; k++) {
    const entry = entries[k]!
    switch (entry._tag) {
      case "Consumed": {
        const i = stored.deliveries.findIndex((d) => d.kind === entry.kind && d.name === entry.name)
        if (i !== -1) stored.deliveries.splice(i, 1)
        continue
      }
      case "Scope":
        if (entry.scopeOf._tag === "loop") stored.loops.set(entry.scope, entry.scopeOf.loop)
        else stored.parallels.set(entry.scope, entry.scopeOf.parallel)
        continue
      case "Reused":
        stored.reasons.set(entry.node, entry.reasons)
        break
      default:
        if (entry._tag === "Completed" && entry.pinned === true) stored.reasons.set(entry.node, pinnedReasons)
    }
    // Most runs have no dormant node: no lookups for them.
    if (stored.waits.size > 0) stored.waits.delete(entry.node)
    if (stored.pauses.size > 0) stored.pauses.delete(entry.node)
    if (entry._tag === "Waiting" || entry._tag === "Paused") {
      const dormancy = RunStore.dormancyOf(entry)
      if ("wait" in dormancy) stored.waits.set(entry.node, dormancy.wait)
      else stored.pauses.set(entry.node, dormancy.pause)
    }
  }
  return ackExits[ackIndex(stored.run)]!
}

const journal = (state: State, lease: Lease | undefined) =>
  Immediate.immediate(
    (runId: string, entries: ReadonlyArray<JournalEntry>) => Effect.suspend(() => journalNow(state, lease, runId, entries, false)),
    (runId, entries) => journalNow(state, lease, runId, entries, true)
  )

const acquire = (state: State, runId: string, owner: string, terms: LeaseTerms) =>
  Effect.flatMap(find(state, runId), (stored): Effect.Effect<Lease, RunStore.LeaseHeld> => {
    const held = stored.lease
    if (held.owner !== undefined && held.expiresAt > terms.at) {
      return Effect.fail(new RunStore.LeaseHeld({ runId, owner: held.owner, expiresAt: held.expiresAt }))
    }
    stored.lease = { owner, generation: held.generation + 1, expiresAt: terms.at + terms.ttlMs }
    return Effect.succeed({ runId, owner, generation: stored.lease.generation, expiresAt: stored.lease.expiresAt })
  })

const renew = (state: State, lease: Lease, terms: LeaseTerms) =>
  Effect.flatMap(find(state, lease.runId), (stored): Effect.Effect<Renewal, RunStore.LeaseLost> => {
    if (!holds(stored, lease)) return Effect.fail(leaseLost(lease))
    stored.lease = { owner: lease.owner, generation: lease.generation, expiresAt: terms.at + terms.ttlMs }
    return Effect.succeed({ lease: { ...lease, expiresAt: stored.lease.expiresAt }, ack: ackOf(stored.run) })
  })

const release = (state: State, lease: Lease) =>
  Effect.sync(() => {
    const stored = state.runs.get(lease.runId)
    if (stored !== undefined && holds(stored, lease)) stored.lease = { owner: undefined, generation: lease.generation, expiresAt: 0 }
  })

const requestCancel = (state: State, runId: string, at: number) =>
  Effect.map(find(state, runId), (stored) => {
    if (RunStore.consumesCancel.includes(stored.run.status)) return false
    if (stored.run.cancelRequestedAt === undefined) stored.run = { ...stored.run, cancelRequestedAt: at }
    askDescendants(state, runId, at)
    return true
  })

const requestPause = (state: State, runId: string, at: number) =>
  Effect.map(find(state, runId), (stored) => {
    if (!RunStore.pausable.includes(stored.run.status)) return false
    if (stored.run.pauseRequestedAt === undefined) stored.run = { ...stored.run, pauseRequestedAt: at }
    const unpause = stored.deliveries.findIndex((d) => d.kind === "unpause")
    if (unpause !== -1) stored.deliveries.splice(unpause, 1)
    return true
  })

const withdrawPause = (state: State, runId: string) =>
  Effect.map(find(state, runId), (stored) => {
    if (stored.run.pauseRequestedAt === undefined) return
    const { pauseRequestedAt: _, ...run } = stored.run
    stored.run = run
  })

const deliver = (state: State, runId: string, delivery: Delivery) =>
  Effect.map(find(state, runId), (stored) => {
    if (stored.deliveries.some((d) => d.kind === delivery.kind && d.name === delivery.name)) return false
    stored.deliveries.push(delivery)
    return true
  })

const wakeable = (state: State, now: number) =>
  Effect.sync(() => {
    const out: Array<Wakeable> = []
    for (const stored of state.runs.values()) {
      const { machine } = stored.run
      if (Wake.event(stored.run, stored.deliveries, now) === undefined) continue
      const sleeps = Object.values(machine.context.dormant).flatMap((r) => r._tag === "Sleep" ? [r.until] : [])
      out.push({ runId: stored.run.id, status: machine.status, wakeAt: sleeps.length === 0 ? null : Math.min(...sleeps) })
    }
    return out
  })

const planCompensations = (state: State, lease: Lease | undefined, runId: string, nodes: ReadonlyArray<string>, at: number) =>
  Effect.map(writable(state, lease, runId), (stored) => {
    for (const node of nodes) {
      if (!stored.compensations.some((c) => c.node === node)) stored.compensations.push({ node, status: "pending", error: undefined, at })
    }
  })

const compensated = (
  state: State,
  lease: Lease | undefined,
  runId: string,
  node: string,
  outcome: { readonly status: "completed" | "failed"; readonly error?: string | undefined },
  at: number
) =>
  Effect.map(writable(state, lease, runId), (stored) => {
    const i = stored.compensations.findIndex((c) => c.node === node)
    const entry: CompensationEntry = { node, status: outcome.status, error: outcome.error, at }
    if (i === -1) stored.compensations.push(entry)
    else stored.compensations[i] = entry
  })

const children = (state: State, runId: string) =>
  Effect.map(find(state, runId), () =>
    [...state.runs.values()].flatMap(({ run }): Array<Child> =>
      run.parentRun === runId ? [{ runId: run.id, node: run.parentNode ?? "", status: run.status }] : []
    ))

// The port over one state: unfenced, or (`fenced`) with every execution write requiring `lease`.
const storeWith = (state: State, lease: Lease | undefined): Port => ({
  requestCancel: (runId, at) => requestCancel(state, runId, at),
  acquire: (runId, owner, terms) => acquire(state, runId, owner, terms),
  renew: (held, terms) => renew(state, held, terms),
  release: (held) => release(state, held),
  fenced: (held) => storeWith(state, held),
  requestPause: (runId, at) => requestPause(state, runId, at),
  withdrawPause: (runId) => withdrawPause(state, runId),
  saveWorkflow: (workflow) =>
    Effect.sync(() => {
      const version = RunStore.versionOf(workflow)
      if (!state.workflows.has(version)) state.workflows.set(version, workflow)
      return version
    }),
  loadWorkflow: (version) => loadWorkflow(state, version),
  createRun: (input) => createRun(state, input),
  getRun: (runId) => getRun(state, runId),
  transition: (runId, event, at) => transition(state, lease, runId, event, at, undefined),
  finish: (runId, event, diagnostics, at) => transition(state, lease, runId, event, at, diagnostics),
  journal: journal(state, lease),
  reasons: (runId) => Effect.map(find(state, runId), (stored) => Object.fromEntries(stored.reasons)),
  setDiagnostics: (runId, diagnostics, at) =>
    Effect.map(writable(state, lease, runId), (stored) => {
      stored.run = { ...stored.run, diagnostics, updatedAt: at }
    }),
  snapshot: (runId) => Effect.flatMap(find(state, runId), (stored) => snapshotOf(state, stored)),
  latestSnapshot: (workflowId, trigger) => latestSnapshot(state, workflowId, trigger),
  deliver: (runId, delivery) => deliver(state, runId, delivery),
  deliveries: (runId) => Effect.map(find(state, runId), (stored) => [...stored.deliveries]),
  planCompensations: (runId, nodes, at) => planCompensations(state, lease, runId, nodes, at),
  compensated: (runId, node, outcome, at) => compensated(state, lease, runId, node, outcome, at),
  compensations: (runId) => Effect.map(find(state, runId), (stored) => [...stored.compensations]),
  notify: () => Effect.void,
  children: (runId) => children(state, runId),
  wakeable: (now) => wakeable(state, now)
})

/** A fresh, empty memory store. */
export const make = (): Port =>
  storeWith({ workflows: new Map(), runs: new Map(), latest: new Map(), counter: 0 }, undefined)
