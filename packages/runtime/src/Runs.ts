/**
 * The facade apps use: start a run, re-run from a block, plan without running, follow events,
 * read the status, wait for the end, cancel.
 *
 * **Details**
 *
 * - Everything that can be refused is refused before anything is written: an invalid workflow
 *   (`Workflow.decode`), the input (missing, unknown or mistyped keys, through `Workflow.inputsFor`),
 *   a workflow the engine cannot execute (a block type without handler), a plan error.
 * - Workflow values are treated as immutable: validation, expansion, the full plan and the version
 *   are computed once per value.
 * - A started run executes in a fiber owned by the layer; `start` and `runFrom` return once the run
 *   is created. Closing the layer interrupts unfinished executions without cancelling their runs:
 *   they stay `running` and `resume` (here or in any later process, or a worker) continues them.
 * - `runFrom` plans against the snapshot of the named run, or, without one, the latest finished
 *   run of the workflow; with no prior run at all it is a full run. It re-uses the source run's
 *   input (a new input would invalidate every reused output that reads it). What the plan pruned
 *   is stored with the run (`Run.pruned`, read back by `status`): a run-from that completes while
 *   a pruned node failed last time says so.
 * - Events go through one sliding `PubSub`: a slow subscriber loses old events, never slows or
 *   fails a run.
 * - Long-lived runs: a run that settles `suspended` or `paused` stops executing. `signal`,
 *   `approve` / `reject` keep their delivery in the store (so one that arrives while the run is
 *   still running is not lost) and wake the run when it awaits it; a sleeper is woken on the effect
 *   `Clock` by a timer fiber of the layer (`TestClock` drives it; it tries again every second
 *   while the store is unavailable, and executes a run its failed wake left `running` with nobody
 *   executing it: the wake's write may have committed, its acknowledgement lost), or by `wake` (a worker that lists `RunStore.wakeable`).
 *   Waking offers the `RunStatus` event (`SIGNAL`, `APPROVE`, `TIMER_FIRED`, `UNPAUSE`) and
 *   executes `Plan.resume` over the run's own snapshot in the same run
 *   (a run-from's pruned nodes stay pruned). A run's executor here stays its executor until the run
 *   parks with nothing kept that wakes it: a delivery recorded while it ran is taken by it, and
 *   `wait` / `follow` return only once the run parked for good.
 * - Child runs (`child` blocks): started by the parent's execution, linked to it; when one ends
 *   (completed, failed or cancelled) its result is delivered to the parent, which wakes.
 *   `cancel` cancels a run's unfinished descendants too; `status` lists a run's children and its
 *   compensation report.
 * - `pause` works across processes: the request is stored and the executing engine sees it with
 *   its next journal write. `unpause` continues a paused run.
 * - `resume` continues a `failed` run (`RESUME`: failed nodes and what they blocked re-run) or a
 *   crashed one (`running` but not executing in this process), and its crashed descendants;
 *   completed nodes never re-execute.
 * - One owner: whether this process or another one acts on a stored run after a request is
 *   `Wake.decide` / `Wake.ownerOf`. A run queued for workers, or whose lease another process holds,
 *   is never executed here: `signal`, `approve` / `reject`, `unpause` and `resume` record the
 *   request (the delivery, the `UNPAUSE` / `RESUME` transition) and `RunStore.notify` the owner;
 *   `handling` says who executes a run now and `handover` waits, bounded, for the owner to take a
 *   request. `follow` follows a run executing here, with the child runs it awaits and the parents it
 *   wakes, to its end.
 * - Every execution here (start, run-from, resume, wake, child runs) first takes the run's lease
 *   (`Lease.take`, owner `Options.owner`), before writing the event that wakes the run, and executes
 *   under it (`Lease.hold`) until it lets go of the run; a run whose lease another process took
 *   first is that process's. An execution whose lease reaches its deadline unrenewed (the store
 *   unavailable or too slow) stops by itself before the lease expires, leaving the run `running`,
 *   and takes it up again from its journal once the store answers, unless another process took the
 *   run over meanwhile (`internal/runs/execute.ts`). `cancel` of a run another process executes records the request and
 *   waits, at most until the lease that owner held when asked runs out, for the owner to end the
 *   run (or for the lease to expire: then it cancels the run itself), and says which
 *   (`Cancellation`). `resume` of a run another process's lease holds looks at that lease until
 *   its owner renews it (alive: the run stays its own, `Delegated`, at the owner's next heartbeat)
 *   or it expires (a dead owner: the run is taken over here).
 * - The layer is assembled from `internal/runs/`: `start` (validating, planning, creating a run),
 *   `execute` (executions under a lease), `wake` (waking dormant runs), `children` (child runs),
 *   `deliver` (signals and approvals), `control` (pause, unpause, resume), `cancel`, `follow`
 *   (waiting for a run, following a run tree, handing a request over), over one shared `state`.
 * - `outputs`, `nodes` and `node` read a stored run back (`RunView`): its observed outputs, and
 *   per node instance its inputs, output, error, attempts, duration and why it re-ran or was reused.
 *
 * @since 0.1.0
 */
import type { Plan, Workflow } from "@ripple/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Engine from "./Engine.ts"
import type { Handlers } from "./Handler.ts"
import * as Arguments from "./internal/runs/arguments.ts"
import * as Cancel from "./internal/runs/cancel.ts"
import * as Control from "./internal/runs/control.ts"
import * as Deliver from "./internal/runs/deliver.ts"
import { InvalidInput, InvalidPayload, InvalidWorkflow, NodeNotFound, PlanFailed } from "./internal/runs/errors.ts"
import * as Follow from "./internal/runs/follow.ts"
import * as Start from "./internal/runs/start.ts"
import type { Admitted } from "./internal/runs/start.ts"
import * as State from "./internal/runs/state.ts"
import * as Waking from "./internal/runs/wake.ts"
import * as Lease from "./Lease.ts"
import * as OptionChecks from "./Options.ts"
import { InvalidOption } from "./Options.ts"
import { isFinal, type Mode, type RunEvent } from "./RunEvent.ts"
import * as RunStatus from "./RunStatus.ts"
import * as RunView from "./RunView.ts"
import type {
  Child as ChildRun,
  CompensationEntry,
  Run,
  RunNotFound,
  RunStore,
  RunStoreError,
  StoreUnavailable,
  WorkflowNotFound
} from "./RunStore.ts"

export { InvalidInput, InvalidPayload, InvalidWorkflow, NodeNotFound, PlanFailed } from "./internal/runs/errors.ts"
export { InvalidOption } from "./Options.ts"
export type { Admitted } from "./internal/runs/start.ts"

/**
 * A request on a run (a signal's name and payload, an approval's node and payload, a rejection's
 * reason) as stored: refused with `InvalidPayload` when it holds what no store can hold (NUL, a
 * lone surrogate, a non-finite number) or exceeds `Workflow.maxValueBytes`, as `signal`, `approve`
 * and `reject` refuse it. For requests stored by another way (`Worker.signal`).
 *
 * @since 0.1.0
 */
export const storable: <Request extends { readonly [field: string]: Json }>(
  runId: string,
  request: Request
) => Effect.Effect<Request, InvalidPayload> = Deliver.storable

/**
 * What `start` checks before it writes anything, but for the handlers: the workflow (with
 * `limits`), the run input (returned with its declared defaults applied), and the plan to `to`
 * with `pins` (a limit that is no cap fails with `Options.InvalidOption`). For a run stored here and executed by another process (`Worker.submit`), so that
 * one it would refuse is never stored. Returns the workflow, input and pins to store, as every
 * store holds them (a `-0` is `0`), as `start` stores them.
 *
 * @since 0.1.0
 */
export const admit: (
  workflow: Workflow.Workflow,
  input: { readonly [key: string]: Json },
  options: { readonly to?: string | undefined; readonly pins?: Plan.Pins | undefined; readonly limits?: Partial<Workflow.Limits> | undefined }
) => Effect.Effect<Admitted, InvalidWorkflow | InvalidInput | PlanFailed | InvalidOption> = Start.admit

type Json = Workflow.Json

/**
 * Every error `start`, `runFrom` and `plan` can report.
 *
 * @since 0.1.0
 */
export type RunsError =
  | InvalidOption
  | InvalidWorkflow
  | InvalidInput
  | PlanFailed
  | Engine.EngineError
  | RunNotFound
  | WorkflowNotFound
  | StoreUnavailable

/**
 * A stored run with what it is dormant on (`RunStatus.suspension` of its machine): dormant
 * branches and their reasons, awaited signals, the earliest wake time, pauses and approvals.
 *
 * @since 0.1.0
 */
export interface RunInfo extends Run {
  readonly suspension: RunStatus.Suspension
  /** The saga compensation report: every compensation planned for the run and how it ended. */
  readonly compensations: ReadonlyArray<CompensationEntry>
  /** The child runs its `child` blocks started, oldest first. */
  readonly children: ReadonlyArray<ChildRun>
}

/**
 * A created run.
 *
 * @since 0.1.0
 */
export interface Started {
  readonly runId: string
  readonly mode: Mode
  readonly plan: Plan.Plan
}

/**
 * A request another process carries out: it owns the run (holds its lease, or the run is queued for
 * workers). The request is recorded and the owner notified; nothing executes here.
 *
 * @since 0.1.0
 */
export interface Delegated {
  readonly runId: string
  /** The owner's lease identity, or `Wake.workers` for a queued run no worker holds right now. */
  readonly owner: string
  /**
   * Set by `resume` only: the owner holds the run's lease and keeps the run, nothing was resumed.
   * It renewed the lease while `resume` looked at it (alive), or the run is queued and a worker
   * holds it (should that worker die, another takes the run over when the lease expires).
   */
  readonly held?: true
}

/**
 * Who executes a run now, as a control command sees it after its request.
 *
 * @since 0.1.0
 */
export type Handling =
  | { readonly _tag: "Here" }
  | { readonly _tag: "Owner"; readonly owner: string }
  | { readonly _tag: "Idle"; readonly status: RunStatus.Status }

/**
 * How a delegated request went (`Runs.handover`): whether the owner took it within the time
 * allowed, who (the last lease holder seen), and the run as last read.
 *
 * @since 0.1.0
 */
export interface Handover {
  readonly taken: boolean
  readonly owner: string | undefined
  readonly run: Run
}

/**
 * How `cancel` went for the run itself (its descendants are cancelled the same way):
 *
 * - `Cancelled`: this process ended it: it executed the run here, or nobody executed it.
 * - `Acknowledged`: another process (`owner`) executed it and ended it after the request, with
 *   `status` (`cancelled`, or the end it reached first).
 * - `Expired`: the owner's lease ran out without an answer (a dead process): cancelled here.
 * - `Unanswered`: the owner kept renewing its lease but had not ended the run when the lease it
 *   held when asked ran out (`waitedUntil`); the request stays recorded: the owner starts no block
 *   after it and ends the run `cancelled` once its running handlers let go.
 *
 * @since 0.1.0
 */
export type Cancellation =
  | { readonly _tag: "Cancelled"; readonly status: RunStatus.Status }
  | { readonly _tag: "Acknowledged"; readonly owner: string; readonly status: RunStatus.Status }
  | { readonly _tag: "Expired"; readonly owner: string; readonly status: RunStatus.Status }
  | { readonly _tag: "Unanswered"; readonly owner: string; readonly status: RunStatus.Status; readonly waitedUntil: number }

/**
 * A run followed to its end (`Runs.follow`), with the ancestors it woke when it ended as a child.
 *
 * @since 0.1.0
 */
export interface Followed {
  readonly status: RunStatus.Status
  readonly ancestors: ReadonlyArray<{ readonly runId: string; readonly status: RunStatus.Status }>
}

/**
 * What `runFrom` and `plan` take: the target block and the run to plan against (default: the
 * latest finished run of the workflow). `input` is the run input (default: the prior run's): the
 * blocks that read a key whose value changed re-run (`inputs-changed`), and what reads them.
 *
 * Gotchas: `target` may be left out when `to` is given (run to a block against the prior run):
 * then only what changed since it, and what depends on that, re-runs — as far as `to` needs it.
 * Neither is `PlanFailed` with `Plan.MissingTarget`.
 *
 * @since 0.1.0
 */
export interface RunFromOptions {
  /** The block to re-run from: it always executes (optional with `to`). */
  readonly target?: string | undefined
  readonly run?: string | undefined
  readonly input?: { readonly [key: string]: Json } | undefined
  /**
   * The destination (run to a block): the only observed output; what it does not need is pruned.
   * It must depend on `target` (`DestinationNotDownstream` otherwise).
   */
  readonly to?: string | undefined
  /**
   * Pinned outputs (`Plan.Pins`): those blocks are not executed, their output is the pin; what reads
   * a pin equal to the prior output is reused.
   */
  readonly pins?: Plan.Pins | undefined
}

/**
 * What `start` takes besides the input.
 *
 * @since 0.1.0
 */
export interface StartOptions {
  /** The destination (run to a block): only its ancestors execute, everything else is pruned. */
  readonly to?: string | undefined
  /** Pinned outputs (`Plan.Pins`): those blocks are not executed, their output is the pin. */
  readonly pins?: Plan.Pins | undefined
}

/**
 * The facade service.
 *
 * **Gotchas**
 *
 * An argument of the wrong type from JavaScript (a run id that is no string, options that are no
 * object) fails with `InvalidOption` naming it, before anything is read or written.
 *
 * @since 0.1.0
 */
export class Runs extends Context.Service<Runs, {
  /** Validates the input, plans a full run, saves the workflow version, creates and starts the run. */
  readonly start: (
    workflow: Workflow.Workflow,
    input?: { readonly [key: string]: Json },
    options?: StartOptions
  ) => Effect.Effect<Started, RunsError>
  /** Plans from `target` against a prior run, then creates and starts the run. */
  readonly runFrom: (workflow: Workflow.Workflow, options: RunFromOptions) => Effect.Effect<Started, RunsError>
  /**
   * The plan `runFrom` would execute when a `target`, a `to` or a `run` is given, else the plan
   * `start` would; writes nothing.
   */
  readonly plan: (
    workflow: Workflow.Workflow,
    options?: Partial<RunFromOptions>
  ) => Effect.Effect<Plan.Plan, RunsError>
  /** The stored run and what it is dormant on. */
  readonly status: (runId: string) => Effect.Effect<RunInfo, RunNotFound | StoreUnavailable | InvalidOption>
  /**
   * The run's observed outputs, `{ <block id>: output }` (`RunView.outputs`): the record a `child`
   * block gets from a completed child run; `null` for an observed block that has not completed.
   */
  readonly outputs: (runId: string) => Effect.Effect<{ readonly [block: string]: Json }, RunNotFound | WorkflowNotFound | StoreUnavailable | InvalidOption>
  /**
   * Every node instance the run recorded, in execution order (`RunView.nodes`): status, resolved
   * inputs, output, error, attempts, duration, and why it re-ran or was reused (with the source run).
   */
  readonly nodes: (runId: string) => Effect.Effect<ReadonlyArray<RunView.NodeView>, RunNotFound | WorkflowNotFound | StoreUnavailable | InvalidOption>
  /**
   * The instances of one node (`RunView.select`): the node instance `node`, or every instance of the
   * node or block `node` (its iterations and branches); empty for a node of the workflow that has
   * not run. `NodeNotFound` when the workflow has no such node.
   */
  readonly node: (
    runId: string,
    node: string
  ) => Effect.Effect<ReadonlyArray<RunView.NodeView>, NodeNotFound | InvalidOption | RunNotFound | WorkflowNotFound | StoreUnavailable>
  /** Waits until the run stops executing (finished, or dormant) and returns its status. */
  readonly wait: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError | InvalidOption>
  /**
   * Delivers a signal to the `wait` blocks awaiting `name`; whether it was accepted. A signal no
   * `wait` block awaits, one a finished run gets, or a duplicate (one of that name is still kept,
   * or every top-level wait for it already took one) is refused and changes nothing.
   */
  readonly signal: (runId: string, name: string, payload?: Json) => Effect.Effect<boolean, RunStoreError | PlanFailed | InvalidPayload | InvalidOption>
  /** Approves the `approval` node instance `node` (paused): it completes with `payload`. Whether accepted. */
  readonly approve: (runId: string, node: string, payload?: Json) => Effect.Effect<boolean, RunStoreError | PlanFailed | InvalidPayload | InvalidOption>
  /**
   * Rejects the `approval` node instance `node`: it fails with `reason`. Whether accepted. A
   * `reason` that is empty or only white space is refused (`InvalidOption`) and nothing is written.
   */
  readonly reject: (runId: string, node: string, reason: string) => Effect.Effect<boolean, RunStoreError | PlanFailed | InvalidPayload | InvalidOption>
  /**
   * Asks a run to pause at its next node boundary (running handlers finish; a suspended run pauses
   * when it wakes). The request is stored (`RunStore.requestPause`), so the process executing the
   * run — this one, another `ripple` process, a worker — parks it. A run executing here is waited
   * for and the status it settled in returned; otherwise the current status (a paused or finished
   * run is left as it is).
   */
  readonly pause: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError | InvalidOption>
  /**
   * Unpauses a run paused by `pause` and executes it again, here unless another process owns it
   * (`Wake.ownerOf`: then the owner is notified and continues it). A run asked to pause that has
   * not settled `paused` yet (a node parked while others still run) keeps the unpause: it goes on
   * as soon as it settles, whichever process executes it; the status now is returned. A run with
   * no pause to lift is refused (`IllegalTransition`) and nothing is written.
   */
  readonly unpause: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError | PlanFailed | InvalidOption>
  /**
   * Continues a `failed` run (failed nodes re-run) or a crashed one (`running` or `pending`, not
   * executing in this process: incomplete nodes re-run); any other status is an `IllegalTransition`.
   * A run another process owns is only moved on (a failed one resumed) and its owner notified.
   * A `running` one whose lease another process holds is `Delegated` to it (`held`) once a renewal
   * of that lease shows (looked for when one is due, every heartbeat: a third of the lease by
   * default), and taken over here once the lease expires unrenewed (its owner died); the wait ends
   * at whichever comes first.
   * A pause requested of a crashed run that it never settled for is withdrawn and the nodes it
   * parked for it run again: the resume wins.
   */
  readonly resume: (runId: string) => Effect.Effect<Started | Delegated, RunStoreError | PlanFailed | InvalidOption>
  /** Who executes the run now: this process, another one (its owner), or nobody. */
  readonly handling: (runId: string) => Effect.Effect<Handling, RunNotFound | StoreUnavailable | InvalidOption>
  /**
   * Waits, at most `timeout`, for the owner of a delegated request to take it (`taken` holds for
   * the run as read, or a lease on it is seen) and then for the run to stop executing; reads the
   * run again at each change the store notifies (`RunStore.changes`, a poll where it cannot),
   * calling `onWaiting` every 5 s of waiting with the time waited so far.
   */
  readonly handover: (runId: string, options: {
    readonly taken: (run: Run) => boolean
    readonly timeout: Duration.Duration
    readonly onWaiting: (waitedMs: number, taken: boolean) => Effect.Effect<void>
  }) => Effect.Effect<Handover, RunNotFound | StoreUnavailable | InvalidOption>
  /**
   * Follows a run executing here to its end: waits until it stops; while it is suspended on child
   * runs only, waits for them (they execute here too) and for the run to wake and stop again; when
   * it ended as a child, does the same for the parents it woke.
   */
  readonly follow: (runId: string) => Effect.Effect<Followed, RunStoreError | InvalidOption>
  /**
   * Wakes a dormant run that can go on now: an awaited delivery is kept or a sleeper is due (on
   * the `Clock`). Returns the status after. Workers call it for `RunStore.wakeable` runs. A dormant
   * run that nothing wakes now, that no other process owns, and whose cancel was recorded (by a
   * process that went away before ending it, or asked of its parent) is cancelled (`cancel`).
   */
  readonly wake: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError | PlanFailed | InvalidOption>
  /**
   * Cancels a run and its unfinished descendants: a run executing here has its running handlers
   * interrupted and moves to `cancelled`; one nobody executes is cancelled here; for one another
   * process executes, the request is recorded, the owner notified and waited for, at most until the
   * lease it held when asked runs out (see `Cancellation`). No block of the run starts after the
   * owner saw the request.
   */
  readonly cancel: (runId: string) => Effect.Effect<Cancellation, RunStoreError | InvalidOption>
  /**
   * The run's events from when the stream starts, ending with its `RunFinished`; empty for a run
   * that is not executing (finished, unknown, or executing in another process). A run id that is
   * no string fails the stream with `InvalidOption`.
   */
  readonly events: (runId: string) => Stream.Stream<RunEvent, InvalidOption>
  /**
   * Subscribes now and returns the stream of every run's events (no event published after this
   * returns is missed, up to the buffer's capacity); the subscription lives as long as the scope.
   */
  readonly subscribe: Effect.Effect<Stream.Stream<RunEvent>, never, Scope.Scope>
}>()("ripple/runtime/Runs") {}

/**
 * Options of the `Runs` layer.
 *
 * @since 0.1.0
 */
export interface Options extends Engine.Options {
  /** Events buffered per subscriber before the oldest are dropped (default 4096). */
  readonly eventBuffer?: number | undefined
  /** This layer's identity in leases (default: `runs:` and a random suffix). */
  readonly owner?: string | undefined
  /** How long a lease lasts without a renewal (default `Lease.defaultTtlMs`). */
  readonly leaseMs?: number | undefined
  /** How often leases are renewed (default a third of `leaseMs`). */
  readonly heartbeatMs?: number | undefined
  /**
   * How long before its lease's expiry an execution whose lease was not renewed stops (the
   * fencing margin, `Lease.Terms`; default a sixth of `leaseMs`); less than `leaseMs - heartbeatMs`.
   */
  readonly marginMs?: number | undefined
  /**
   * How often `cancel` looks whether the process executing a run ended it (default 50 ms). `resume`
   * looks for the owner's renewal when one is due, each `heartbeatMs`, and at the lease's expiry.
   */
  readonly cancelPollMs?: number | undefined
}

/**
 * The `Runs` service over a `RunStore` and a `Handlers` registry. An option out of range fails the
 * layer with `Options.InvalidOption` naming it (see `Options`), before any run starts.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Runs, InvalidOption, RunStore | Handlers> =>
  Layer.effect(Runs, Effect.andThen(checkOptions(options), Effect.map(State.make(options), make)))

const checkOptions = (options: Options) =>
  OptionChecks.check({
    ...OptionChecks.engine(options),
    eventBuffer: [options.eventBuffer, OptionChecks.count],
    leaseMs: [options.leaseMs, OptionChecks.duration],
    heartbeatMs: [options.heartbeatMs, OptionChecks.duration],
    marginMs: [options.marginMs, OptionChecks.grace],
    cancelPollMs: [options.cancelPollMs, OptionChecks.duration]
  }, { leaseMs: options.leaseMs, heartbeatMs: options.heartbeatMs, marginMs: options.marginMs, defaultLeaseMs: Lease.defaultTtlMs })

const blockId = Arguments.text("a block id")
const inputSpec = Arguments.record("input keys")
const pinsSpec = Arguments.record("block ids to pinned outputs")
const startFields = { to: blockId, pins: pinsSpec }
const runFromFields = { target: blockId, run: Arguments.text("a run id"), input: inputSpec, to: blockId, pins: pinsSpec }
const handoverFields = { taken: Arguments.callback, timeout: Arguments.duration, onWaiting: Arguments.callback }
const runIdSpec = Arguments.text("a run id", true)

// A run id that is no string (from JavaScript) is refused before a store reads it: the memory
// store answered `RunNotFound` for it, a SQL store `StoreUnavailable` (the driver's error).
const byRunId = <Args extends ReadonlyArray<unknown>, A, E, R>(
  entry: (runId: string, ...args: Args) => Effect.Effect<A, E, R>
) =>
(runId: string, ...args: Args): Effect.Effect<A, E | InvalidOption, R> =>
  Effect.andThen(Arguments.check([["runId", runId, runIdSpec]]), Effect.suspend(() => entry(runId, ...args)))

const make = (state: State.State): Runs["Service"] => {
  const { store } = state
  const nodesOf = (runId: string) =>
    Effect.map(
      Effect.all([store.getRun(runId), store.snapshot(runId), store.reasons(runId)]),
      ([run, snapshot, reasons]) => ({ snapshot, views: RunView.nodes(run, snapshot, reasons) })
    )
  return Runs.of({
    start: (workflow, input = {}, options = {}) =>
      Effect.andThen(
        Effect.andThen(Arguments.check([["input", input, inputSpec]]), Arguments.options(options, startFields)),
        Effect.flatMap(Effect.suspend(() => Start.planFrom(state, workflow, { input, to: options.to, pins: options.pins }, "start")), (prepared) => Start.launch(state, "full", prepared))
      ),
    runFrom: (workflow, options) =>
      Effect.andThen(
        Arguments.options(options, runFromFields, true),
        Effect.flatMap(Effect.suspend(() => Start.planFrom(state, workflow, options, "run-from")), (prepared) =>
          Start.launch(state, prepared.source === undefined ? "full" : "run-from", prepared))
      ),
    plan: (workflow, options = {}) =>
      Effect.andThen(Arguments.options(options, runFromFields), Effect.suspend(() => {
        const from = options.target !== undefined || options.to !== undefined || options.run !== undefined
        return Effect.map(Start.planFrom(state, workflow, options, from ? "run-from" : "start"), (prepared) => prepared.plan)
      })),
    status: byRunId((runId) =>
      Effect.flatMap(Effect.all([store.getRun(runId), store.compensations(runId), store.children(runId)]), ([run, compensations, children]) => {
        const restored = RunStatus.restore(run.machine)
        return Result.isFailure(restored)
          ? Effect.die(restored.failure)
          : Effect.succeed({ ...run, suspension: RunStatus.suspension(restored.success), compensations, children })
      })),
    outputs: byRunId((runId) => Effect.map(store.snapshot(runId), RunView.outputs)),
    nodes: byRunId((runId) => Effect.map(nodesOf(runId), ({ views }) => views)),
    node: byRunId((runId, node) =>
      Effect.gen(function*() {
        yield* Arguments.check([["node", node, Arguments.text("a node id")]])
        const { snapshot, views } = yield* nodesOf(runId)
        const found = RunView.select(views, node)
        if (found.length === 0 && !RunView.names(snapshot.workflow, node)) return yield* new NodeNotFound({ runId, node })
        return found
      })),
    wait: byRunId((runId) => Follow.wait(state, runId)),
    signal: byRunId((runId, name, payload = null) =>
      Effect.andThen(
        Arguments.check([["name", name, Arguments.text("a signal name")]]),
        Effect.flatMap(Deliver.storable(runId, { name, payload }), (r) => Deliver.signal(state, runId, r.name, r.payload ?? null))
      )),
    approve: byRunId((runId, node, payload = null) =>
      Effect.andThen(
        Arguments.check([["node", node, Arguments.text("a node id")]]),
        Effect.flatMap(
          Deliver.storable(runId, { node, payload }),
          (r) => Deliver.decide(state, runId, r.node, { approved: true, payload: r.payload ?? null })
        )
      )),
    reject: byRunId((runId, node, reason) =>
      Effect.andThen(
        Arguments.check([["node", node, Arguments.text("a node id")], ["reason", reason, Arguments.reason]]),
        Effect.flatMap(Deliver.storable(runId, { node, reason }), (r) => Deliver.decide(state, runId, r.node, { approved: false, reason: r.reason }))
      )),
    pause: byRunId((runId) => Control.pause(state, runId)),
    unpause: byRunId((runId) => Control.unpause(state, runId)),
    resume: byRunId((runId) => Control.resume(state, runId)),
    handling: byRunId((runId) => Control.handling(state, runId)),
    handover: byRunId((runId, options) =>
      Effect.andThen(Arguments.options(options, handoverFields, true), Effect.suspend(() => Follow.handover(state, runId, options)))),
    follow: byRunId((runId) => Follow.follow(state, runId)),
    wake: byRunId((runId) => Waking.settle(state, runId)),
    cancel: byRunId((runId) => Cancel.cancel(state, runId)),
    events: (runId) =>
      Stream.unwrap(byRunId((runId: string) =>
        Effect.map(state.subscribe, (subscription) =>
          // Subscribed first, then checked: a run still executing now cannot finish unseen.
          state.announcing.has(runId)
            ? Stream.fromSubscription(subscription).pipe(
              Stream.filter((event) => event.runId === runId),
              Stream.takeUntil(isFinal)
            )
            : Stream.empty)
      )(runId)),
    subscribe: Effect.map(state.subscribe, Stream.fromSubscription)
  })
}
