/**
 * Who executes a stored run after a wake, and with which plan: the one place every entry point
 * (`Runs` in any process that records a control request, a `Worker` that claimed a run) decides it.
 *
 * **Details**
 *
 * - `event`: the `RunStatus` event that wakes a dormant run now: a kept delivery one of its
 *   branches awaits (a signal, an approval decision, an unpause asked for before the run settled
 *   `paused`) or a sleeper that is due.
 * - `ownerOf`: the process that executes the run instead of the caller: the holder of a live
 *   lease, or the workers for a run queued for them (only a worker executes a queued run). A
 *   process that is not the owner only records its request and notifies (`RunStore.notify`).
 * - `decide`: both together, plus when a sleeper is due for the caller that may execute it.
 * - `plan`: what executes a stored run: a pending run's own plan (full, or run-from against its
 *   source run), any other run's `Plan.resume` over its snapshot (completed nodes are reused; a
 *   run-from's pruned nodes stay pruned).
 *
 * @since 0.1.0
 */
import { Plan, type Snapshot } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Compiled from "./internal/compiled.ts"
import type { Mode } from "./RunEvent.ts"
import type * as RunStatus from "./RunStatus.ts"
import type { Delivery, Run, RunNotFound, RunStore, StoreUnavailable, WorkflowNotFound } from "./RunStore.ts"

/**
 * The process asking: its lease owner identity, if it has one, and whether it is a worker.
 *
 * @since 0.1.0
 */
export interface Self {
  readonly owner?: string | undefined
  /** Workers execute runs queued for them; nobody else does. */
  readonly worker: boolean
}

/**
 * How a run queued for workers is named when no worker holds its lease right now.
 *
 * @since 0.1.0
 */
export const workers = "the workers"

/**
 * What to do with a run after a request that may wake it.
 *
 * - `Wake`: offer `event` and execute the run here.
 * - `Owner`: another process executes it; tell it (`event`: what it can wake with now, if anything).
 * - `Sleep`: nothing wakes it before `until` (a sleeper's deadline).
 * - `Stay`: nothing wakes it now.
 *
 * @since 0.1.0
 */
export type Decision =
  | { readonly _tag: "Wake"; readonly event: RunStatus.Event }
  | { readonly _tag: "Owner"; readonly owner: string; readonly event: RunStatus.Event | undefined }
  | { readonly _tag: "Sleep"; readonly until: number }
  | { readonly _tag: "Stay" }

/**
 * The event that wakes a dormant run at `at`, if any (dormant reasons in the order recorded).
 *
 * @since 0.1.0
 */
export const event = (
  run: Pick<Run, "status" | "machine">,
  deliveries: ReadonlyArray<Delivery>,
  at: number
): RunStatus.Event | undefined => {
  for (const reason of Object.values(run.machine.context.dormant)) {
    if (reason._tag === "Signal" && run.status === "suspended") {
      const delivery = deliveries.find((d) => d.kind === "signal" && d.name === reason.signal)
      if (delivery !== undefined) return { type: "SIGNAL", name: reason.signal, payload: delivery.payload }
    }
    if (reason._tag === "Approval" && run.status === "paused") {
      const delivery = deliveries.find((d) => d.kind === "approval" && d.name === reason.node)
      if (delivery !== undefined) return { type: "APPROVE", node: reason.node, payload: delivery.payload }
    }
    if (reason._tag === "Pause" && run.status === "paused" && deliveries.some((d) => d.kind === "unpause")) {
      return { type: "UNPAUSE", node: reason.node, payload: null }
    }
    if (reason._tag === "Sleep" && run.status === "suspended" && reason.until <= at) return { type: "TIMER_FIRED", at }
  }
  return undefined
}

/**
 * Whether a pause was asked of the run that it has not settled `paused` for: the request is still
 * pending, or its executor parked a node for it already.
 *
 * @since 0.1.0
 */
export const pauseAsked = (run: Run): boolean =>
  run.pauseRequestedAt !== undefined || Object.values(run.machine.context.dormant).some((reason) => reason._tag === "Pause")

/**
 * Lifts a pause the run has not settled `paused` for (`pauseAsked`). Its executor may have parked
 * nodes already, or seen the request: an unpause is kept first, so the run wakes once it settles
 * `paused` (`event`); then the request is withdrawn, so an executor that has not seen it yet parks
 * nothing. A newer pause request drops the kept unpause.
 *
 * @since 0.1.0
 */
export const overrule = (
  store: RunStore["Service"],
  runId: string,
  at: number
): Effect.Effect<void, RunNotFound | StoreUnavailable> =>
  Effect.andThen(store.deliver(runId, { kind: "unpause", name: "", payload: null, at }), store.withdrawPause(runId))

/**
 * The holder of the run's lease at `at` (`undefined`: nobody holds it, or it expired).
 *
 * @since 0.1.0
 */
export const holder = (run: Run, at: number): string | undefined =>
  run.lease !== undefined && run.lease.expiresAt > at ? run.lease.owner : undefined

/**
 * The process that executes `run` instead of `self` at `at` (`undefined`: `self` may take it).
 *
 * @since 0.1.0
 */
export const ownerOf = (run: Run, self: Self, at: number): string | undefined => {
  const held = holder(run, at)
  if (held !== undefined) return held === self.owner ? undefined : held
  return run.queued === true && !self.worker ? workers : undefined
}

/**
 * Whether a run in `status` can be woken at all: only a dormant one (`suspended` or `paused`);
 * `decide` answers `Stay` for every other.
 *
 * @since 0.1.0
 */
export const canWake = (status: RunStatus.Status): boolean => status === "suspended" || status === "paused"

/**
 * Who acts on a dormant run after a request that may wake it, and how.
 *
 * @since 0.1.0
 */
export const decide = (run: Run, deliveries: ReadonlyArray<Delivery>, at: number, self: Self): Decision => {
  if (!canWake(run.status)) return { _tag: "Stay" }
  const woken = event(run, deliveries, at)
  const owner = ownerOf(run, self, at)
  if (owner !== undefined) return { _tag: "Owner", owner, event: woken }
  if (woken !== undefined) return { _tag: "Wake", event: woken }
  const sleeps = run.status === "suspended"
    ? Object.values(run.machine.context.dormant).flatMap((reason) => reason._tag === "Sleep" ? [reason.until] : [])
    : []
  return sleeps.length === 0 ? { _tag: "Stay" } : { _tag: "Sleep", until: Math.min(...sleeps) }
}

/**
 * What executes a stored run: its plan, the mode it executes in, and the run its reused records
 * come from.
 *
 * @since 0.1.0
 */
export interface Stored {
  readonly plan: Plan.Plan
  readonly mode: Mode
  readonly sourceRun: string | undefined
  readonly source: Snapshot.Snapshot | undefined
}

/**
 * Plans a stored run: a pending one as it was created (full, or run-from against its source run),
 * any other one with `Plan.resume` over its snapshot (`snapshot`, when the caller read it already).
 *
 * @since 0.1.0
 */
export const plan = (
  store: RunStore["Service"],
  run: Pick<Run, "id" | "status" | "version" | "mode" | "sourceRun" | "target" | "to" | "pins">,
  snapshot?: Snapshot.Snapshot
): Effect.Effect<Result.Result<Stored, Plan.PlanError>, RunNotFound | WorkflowNotFound | StoreUnavailable> =>
  Effect.gen(function*() {
    if (run.status !== "pending") {
      const own = snapshot ?? (yield* store.snapshot(run.id))
      const dag = Compiled.dagOf(own.workflow)
      // A run-from (with or without a prior run) and a run to a block keep pruning what their plan
      // pruned, however often they are resumed.
      return Result.map(Plan.resume(own.workflow, own, { dag, target: run.target, to: run.to, pins: run.pins }), (planned): Stored => ({
        plan: planned,
        mode: "resume",
        sourceRun: run.id,
        source: own
      }))
    }
    const workflow = yield* store.loadWorkflow(run.version)
    const dag = Compiled.dagOf(workflow)
    // A run-from to a block without a target has a source run and a destination.
    const source = run.sourceRun === undefined || (run.target === undefined && run.to === undefined)
      ? undefined
      : yield* store.snapshot(run.sourceRun)
    const common = { workflow, snapshot: source, dag, pins: run.pins }
    const planned = run.target !== undefined
      ? Plan.runFrom({ ...common, target: run.target, to: run.to })
      : source !== undefined && run.to !== undefined
      ? Plan.runFrom({ ...common, to: run.to })
      : Plan.full(workflow, { dag, to: run.to, pins: run.pins })
    return Result.map(planned, (planned): Stored => ({ plan: planned, mode: run.mode, sourceRun: run.sourceRun, source }))
  })
