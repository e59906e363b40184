/**
 * The run-status machine: the single source of truth for which status a run may be in and which
 * transitions are legal. The engine feeds it events; persistence writes only what it accepts.
 *
 * Details: the machine counts the run's running branches and keeps a map of dormant ones (waiting
 * on a signal, sleeping until a time, paused or awaiting approval), so it — not the caller — decides
 * when the last running branch has ended and which status the run settles in, by the priority
 * Failed > Paused > Suspended > Completed. It reads no clock: every time arrives in an event.
 *
 * Gotchas: the machine holds status, branch bookkeeping and failures — what deciding a status
 * needs — and nothing else. It declares only events the runtime sends and has no side effects:
 * a run's diagnostics (last started and completed node, how it ended) are written by the engine
 * with `RunStore.finish`, and status changes are published by whoever wrote them.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { assign, setup, transition, type SnapshotFrom } from "xstate"

/** Every status a run can be in, in lifecycle order. */
export const statuses = ["pending", "running", "suspended", "paused", "completed", "failed", "cancelled"] as const

/** A run's status. */
export type Status = (typeof statuses)[number]

/** Statuses a run never leaves. `failed` is not among them: it accepts `RESUME`. */
export const terminal: ReadonlyArray<Status> = ["completed", "cancelled"]

/** Identifier of a node of the expanded DAG (the core node-id codec's format). */
export type NodeId = string

/** Identifier of a branch of concurrent execution, chosen by the engine. */
export type BranchId = string

/** A point in time in epoch milliseconds, always given by the caller: the machine reads no clock. */
export type Time = number

/** Why a branch is dormant and what wakes it. */
export const DormantReason = Schema.Union([
  Schema.TaggedStruct("Signal", { node: Schema.String, signal: Schema.String }),
  Schema.TaggedStruct("Sleep", { node: Schema.String, until: Schema.Finite }),
  Schema.TaggedStruct("Pause", { node: Schema.String, reason: Schema.String }),
  Schema.TaggedStruct("Approval", { node: Schema.String })
])

/** Why a branch is dormant: a `SIGNAL` wakes `Signal`, `TIMER_FIRED` `Sleep`, `UNPAUSE` `Pause`, `APPROVE` `Approval`. */
export type DormantReason = typeof DormantReason.Type

const NodeFailure = Schema.Struct({ node: Schema.String, at: Schema.Finite, error: Schema.String })

/** A node failure reported while running; any failure makes the run settle as `failed`. */
export type NodeFailure = typeof NodeFailure.Type

/**
 * The machine's context: branch bookkeeping and failures, all plain JSON.
 *
 * Gotchas: contexts persisted by earlier builds also carry `diagnostics`, which nothing updated;
 * decoding drops it, so those runs restore unchanged.
 */
export const Context = Schema.Struct({
  running: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  dormant: Schema.Record(Schema.String, DormantReason),
  failures: Schema.Array(NodeFailure),
  error: Schema.NullOr(Schema.String)
})

/** The machine's context. */
export type Context = typeof Context.Type

/** Every event the machine understands; times are data, never read from a clock. */
export type Event =
  | { readonly type: "START" }
  | { readonly type: "NODE_FAILED"; readonly node: NodeId; readonly at: Time; readonly error: string }
  | { readonly type: "BRANCH_STARTED" }
  | { readonly type: "BRANCH_DORMANT"; readonly branch: BranchId; readonly reason: DormantReason }
  | { readonly type: "ALL_BRANCHES_FINISHED" }
  | { readonly type: "SIGNAL"; readonly name: string; readonly payload: unknown }
  | { readonly type: "TIMER_FIRED"; readonly at: Time }
  | { readonly type: "UNPAUSE"; readonly node: NodeId; readonly payload: unknown }
  | { readonly type: "APPROVE"; readonly node: NodeId; readonly payload: unknown }
  | { readonly type: "FAIL"; readonly error: string }
  | { readonly type: "CANCEL" }
  | { readonly type: "RESUME" }

/** The name of an event. */
export type EventType = Event["type"]

const emptyContext: Context = {
  running: 0,
  dormant: {},
  failures: [],
  error: null
}

const dormantWhere = (dormant: Context["dormant"], wakes: (reason: DormantReason) => boolean): Array<BranchId> =>
  Object.keys(dormant).filter((branch) => wakes(dormant[branch]!))

const withoutBranches = (dormant: Context["dormant"], branches: ReadonlyArray<BranchId>): Context["dormant"] => {
  const rest = { ...dormant }
  for (const branch of branches) delete rest[branch]
  return rest
}

const wakeWhere = (context: Context, wakes: (reason: DormantReason) => boolean): Partial<Context> => {
  const woken = dormantWhere(context.dormant, wakes)
  return { running: context.running + woken.length, dormant: withoutBranches(context.dormant, woken) }
}

// What a waking event wakes; the `awaited` guard and the `wake` action share it so they cannot disagree.
const wokenBy = (event: Event): ((reason: DormantReason) => boolean) => {
  switch (event.type) {
    case "SIGNAL":
      return (r) => r._tag === "Signal" && r.signal === event.name
    case "TIMER_FIRED":
      return (r) => r._tag === "Sleep" && r.until <= event.at
    case "UNPAUSE":
      return (r) => r._tag === "Pause" && r.node === event.node
    case "APPROVE":
      return (r) => r._tag === "Approval" && r.node === event.node
    // Other events wake nothing; `awaited` guards only the four above.
    default:
      return () => false
  }
}

const isPause = (reason: DormantReason): boolean => reason._tag === "Pause" || reason._tag === "Approval"

// The priority rule lives here once: the guards ask it what a branch event would settle the run in.
const settledStatus = (context: Pick<Context, "running" | "dormant" | "failures">): Status => {
  if (context.running > 0) return "running"
  if (context.failures.length > 0) return "failed"
  const reasons = Object.values(context.dormant)
  if (reasons.some(isPause)) return "paused"
  return reasons.length > 0 ? "suspended" : "completed"
}

// A branch going dormant: one fewer running, one more dormant.
const parked = (context: Context, branch: BranchId, reason: DormantReason): Pick<Context, "running" | "dormant"> => ({
  running: context.running - 1,
  dormant: { ...context.dormant, [branch]: reason }
})

/** The run-status machine (its actions only assign the context: it has no side effects to provide). */
export const machine = setup({
  types: {} as { context: Context; events: Event },
  guards: {
    // A branch event's outcome: false as well for a branch that is already dormant (it cannot park twice).
    settles: ({ context, event }, params: { readonly status: Status }) => {
      switch (event.type) {
        case "BRANCH_DORMANT":
          return !Object.hasOwn(context.dormant, event.branch) &&
            settledStatus({ ...context, ...parked(context, event.branch, event.reason) }) === params.status
        // ALL_BRANCHES_FINISHED, the only other event guarded by `settles`.
        default:
          return settledStatus({ ...context, running: 0 }) === params.status
      }
    },
    awaited: ({ context, event }) => dormantWhere(context.dormant, wokenBy(event)).length > 0
  },
  actions: {
    startRootBranch: assign({ running: 1 }),
    trackFailure: assign(({ context, event }) =>
      event.type === "NODE_FAILED"
        ? { failures: [...context.failures, { node: event.node, at: event.at, error: event.error }] }
        : {}
    ),
    forkBranch: assign(({ context }) => ({ running: context.running + 1 })),
    parkBranch: assign(({ context, event }) =>
      event.type === "BRANCH_DORMANT"
        ? parked(context, event.branch, event.reason)
        : {}
    ),
    endAllBranches: assign({ running: 0 }),
    wake: assign(({ context, event }) => wakeWhere(context, wokenBy(event))),
    recordError: assign(({ event }) => (event.type === "FAIL" ? { running: 0, error: event.error } : {})),
    retryFailed: assign({ running: 1, failures: [], error: null }),
    dropBranches: assign({ running: 0, dormant: {} })
  }
}).createMachine({
  id: "runStatus",
  initial: "pending",
  context: emptyContext,
  states: {
    pending: {
      on: {
        START: { target: "running", actions: "startRootBranch" },
        FAIL: { target: "failed", actions: "recordError" },
        CANCEL: { target: "cancelled", actions: "dropBranches" }
      }
    },
    running: {
      on: {
        NODE_FAILED: { actions: "trackFailure" },
        BRANCH_STARTED: { actions: "forkBranch" },
        BRANCH_DORMANT: [
          { guard: { type: "settles", params: { status: "failed" } }, target: "failed", actions: "parkBranch" },
          { guard: { type: "settles", params: { status: "paused" } }, target: "paused", actions: "parkBranch" },
          { guard: { type: "settles", params: { status: "suspended" } }, target: "suspended", actions: "parkBranch" },
          { guard: { type: "settles", params: { status: "running" } }, actions: "parkBranch" }
        ],
        ALL_BRANCHES_FINISHED: [
          { guard: { type: "settles", params: { status: "failed" } }, target: "failed", actions: "endAllBranches" },
          { guard: { type: "settles", params: { status: "paused" } }, target: "paused", actions: "endAllBranches" },
          {
            guard: { type: "settles", params: { status: "suspended" } },
            target: "suspended",
            actions: "endAllBranches"
          },
          { target: "completed", actions: "endAllBranches" }
        ],
        FAIL: { target: "failed", actions: "recordError" },
        CANCEL: { target: "cancelled", actions: "dropBranches" }
      }
    },
    suspended: {
      on: {
        SIGNAL: { guard: "awaited", target: "running", actions: "wake" },
        TIMER_FIRED: { guard: "awaited", target: "running", actions: "wake" },
        FAIL: { target: "failed", actions: "recordError" },
        CANCEL: { target: "cancelled", actions: "dropBranches" }
      }
    },
    paused: {
      on: {
        UNPAUSE: { guard: "awaited", target: "running", actions: "wake" },
        APPROVE: { guard: "awaited", target: "running", actions: "wake" },
        FAIL: { target: "failed", actions: "recordError" },
        CANCEL: { target: "cancelled", actions: "dropBranches" }
      }
    },
    completed: { type: "final" },
    failed: {
      on: {
        RESUME: { target: "running", actions: "retryFailed" }
      }
    },
    cancelled: { type: "final" }
  }
})

/** A snapshot of the run-status machine. */
export type Snapshot = SnapshotFrom<typeof machine>

/** One allowed transition: in status `from`, event `event` may lead to status `to`. */
export interface Transition {
  readonly from: Status
  readonly event: EventType
  readonly to: Status
}

/** One transition as the machine defines it, with its guard (rendered) if it has one. */
interface GuardedTransition extends Transition {
  readonly guard: string | null
}

const renderGuard = (guard: unknown): string | null => {
  if (guard === undefined) return null
  if (typeof guard === "string") return guard
  const { type, params } = guard as { readonly type: string; readonly params?: Record<string, unknown> }
  // Mermaid ends a transition label at ":" or ";", so parameters are rendered as plain words.
  return [type, ...Object.values(params ?? {}).map(String)].join(" ")
}

// Walked from the machine definition so the table, the rejection reasons and the diagram can never
// drift from what the machine does.
const definedTransitions: ReadonlyArray<GuardedTransition> = statuses.flatMap((from) =>
  [...machine.root.states[from]!.transitions].flatMap(([event, definitions]) =>
    definitions.map((definition) => ({
      from,
      event: event as EventType,
      to: (definition.target?.[0]?.key ?? from) as Status,
      guard: renderGuard(definition.guard)
    }))
  )
)

/** Every allowed `(from, event, to)`, derived from the machine definition (self-transitions included). */
export const transitions: ReadonlyArray<Transition> = definedTransitions
  .map(({ event, from, to }) => ({ from, event, to }))
  .filter((t, i, all) => all.findIndex((u) => u.from === t.from && u.event === t.event && u.to === t.to) === i)

/** Whether some event may move a run from `from` to `to`; persistence checks every write with it. */
export const isAllowed = (from: Status, to: Status): boolean =>
  transitions.some((t) => t.from === from && t.to === to)

/** Why an event was not accepted. */
export type Rejection =
  | "terminal"
  | "awaiting-resume"
  | "already-started"
  | "not-running"
  | "not-suspended"
  | "not-paused"
  | "not-failed"
  | "branch-already-dormant"
  | "signal-not-awaited"
  | "no-sleeper-due"
  | "pause-not-awaited"
  | "approval-not-awaited"

/** The outcome of offering an event to a run. */
export type Next =
  | { readonly _tag: "Accepted"; readonly snapshot: Snapshot; readonly status: Status }
  | { readonly _tag: "Rejected"; readonly reason: Rejection }

const handles = (status: Status, event: EventType): boolean =>
  transitions.some((t) => t.from === status && t.event === event)

// Only called for an event the machine did not take: either the status has no transition for it,
// or it has one and its guard said no.
const rejection = (status: Status, event: Event): Rejection => {
  if (terminal.includes(status)) return "terminal"
  if (status === "failed") return "awaiting-resume"
  const guarded = handles(status, event.type)
  switch (event.type) {
    case "START":
      return "already-started"
    case "BRANCH_DORMANT":
      return guarded ? "branch-already-dormant" : "not-running"
    case "SIGNAL":
      return guarded ? "signal-not-awaited" : "not-suspended"
    case "TIMER_FIRED":
      return guarded ? "no-sleeper-due" : "not-suspended"
    case "UNPAUSE":
      return guarded ? "pause-not-awaited" : "not-paused"
    case "APPROVE":
      return guarded ? "approval-not-awaited" : "not-paused"
    case "NODE_FAILED":
    case "BRANCH_STARTED":
    case "ALL_BRANCHES_FINISHED":
      return "not-running"
    case "RESUME":
      return "not-failed"
    // Every non-terminal status other than failed takes FAIL and CANCEL, so only a terminal one refuses them.
    case "FAIL":
    case "CANCEL":
      return "terminal"
  }
}

/** The status of a snapshot. */
export const status = (snapshot: Snapshot): Status => snapshot.value

/** A fresh run: pending, no branches, no failures. */
export const initial = (): Snapshot => machine.resolveState({ value: "pending", context: emptyContext })

/**
 * Offers `event` to the run in `snapshot`, through xstate's pure `transition()` (no action runs).
 *
 * Details: an event the machine does not take in this status, or whose guard refuses it, is
 * `Rejected` with a specific reason — a mismatched or duplicate signal is a rejection, not an error.
 */
export const next = (snapshot: Snapshot, event: Event): Next => {
  if (!snapshot.can(event)) return { _tag: "Rejected", reason: rejection(snapshot.value, event) }
  const [nextSnapshot] = transition(machine, snapshot, event)
  return { _tag: "Accepted", snapshot: nextSnapshot, status: nextSnapshot.value }
}

/** What a dormant run waits for, so callers know how to wake it. */
export interface Suspension {
  readonly branches: ReadonlyArray<{ readonly branch: BranchId; readonly reason: DormantReason }>
  readonly signals: ReadonlyArray<string>
  readonly wakeAt: Time | null
  readonly pauses: ReadonlyArray<NodeId>
  readonly approvals: ReadonlyArray<NodeId>
}

/**
 * The dormant branches of a run: their reasons, the signal names they await (sorted, unique), the
 * earliest sleep deadline (`null` without sleepers), and the nodes awaiting unpause or approval.
 */
export const suspension = (snapshot: Snapshot): Suspension => {
  const branches = Object.entries(snapshot.context.dormant)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([branch, reason]) => ({ branch, reason }))
  const reasons = branches.map((b) => b.reason)
  const sleeps = reasons.flatMap((r) => (r._tag === "Sleep" ? [r.until] : []))
  return {
    branches,
    signals: [...new Set(reasons.flatMap((r) => (r._tag === "Signal" ? [r.signal] : [])))].sort(),
    wakeAt: sleeps.length === 0 ? null : Math.min(...sleeps),
    pauses: reasons.flatMap((r) => (r._tag === "Pause" ? [r.node] : [])),
    approvals: reasons.flatMap((r) => (r._tag === "Approval" ? [r.node] : []))
  }
}

/** A snapshot as plain JSON: its status and context. */
export const Persisted = Schema.Struct({ status: Schema.Literals(statuses), context: Context })

/** A snapshot as plain JSON. */
export type Persisted = typeof Persisted.Type

/** Stored JSON that is not a run-status snapshot: wrong shape, or a context its status cannot have. */
export class InvalidPersisted extends Data.TaggedError("InvalidPersisted")<{
  readonly message: string
}> {}

/** The snapshot as plain JSON, for the store. */
export const persist = (snapshot: Snapshot): Persisted => ({ status: snapshot.value, context: snapshot.context })

const decodePersisted = Schema.decodeUnknownResult(Persisted)

// What every snapshot the machine produces satisfies; a stored one that breaks it could never be
// woken (a suspended run with nothing to wait for) or would miscount its branches.
const inconsistency = (status: Status, context: Context): string | null => {
  if ((status === "running") !== (context.running > 0)) {
    return `a ${status} run cannot have ${context.running} running branches`
  }
  if ((status === "suspended" || status === "paused" || status === "completed") && settledStatus(context) !== status) {
    return `a ${status} run cannot have these dormant branches and failures (they settle as ${settledStatus(context)})`
  }
  if (status === "failed" && context.error === null && context.failures.length === 0) {
    return "a failed run needs an error or a node failure"
  }
  return null
}

/** Rebuilds a snapshot from stored JSON (the output of `persist`, possibly round-tripped through a database). */
export const restore = (json: unknown): Result.Result<Snapshot, InvalidPersisted> =>
  Result.flatMap(
    Result.mapError(decodePersisted(json), (error) => new InvalidPersisted({ message: error.message })),
    ({ context, status }) => {
      const problem = inconsistency(status, context)
      return problem === null
        ? Result.succeed(machine.resolveState({ value: status, context }))
        : Result.fail(new InvalidPersisted({ message: problem }))
    }
  )

/**
 * The machine as a Mermaid `stateDiagram-v2`, generated from its definition; one edge per
 * `(from, to)` pair, labelled with its events and guards.
 */
export const mermaid = (): string => {
  const edges = new Map<string, { readonly from: Status; readonly to: Status; readonly labels: Array<string> }>()
  for (const t of definedTransitions) {
    const key = `${t.from} ${t.to}`
    const edge = edges.get(key) ?? { from: t.from, to: t.to, labels: [] }
    edge.labels.push(t.guard === null ? t.event : `${t.event} [${t.guard}]`)
    edges.set(key, edge)
  }
  const lines = [
    "stateDiagram-v2",
    `  [*] --> ${machine.root.initial.target[0]!.key}`,
    ...[...edges.values()].map(({ from, labels, to }) => `  ${from} --> ${to} : ${labels.join(", ")}`),
    ...statuses.filter((s) => machine.root.states[s]!.type === "final").map((s) => `  ${s} --> [*]`)
  ]
  return lines.join("\n") + "\n"
}
