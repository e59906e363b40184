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
 *   `Clock` by a timer fiber of the layer (`TestClock` drives it), or by `wake` (a worker that
 *   lists `RunStore.wakeable`). Waking offers the `RunStatus` event (`SIGNAL`, `APPROVE`,
 *   `TIMER_FIRED`, `UNPAUSE`) and executes `Plan.resume` over the run's own snapshot in the same run
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
 *   first is that process's. `cancel` of a run another process executes records the request and
 *   waits until the owner ended the run (or its lease expired: then it cancels the run itself), so
 *   no block of it starts after `cancel` returns. `resume` waits out the lease of a dead owner.
 *
 * @since 0.1.0
 */
import { Dag, NodeId, Plan, type Snapshot, Workflow } from "@ripple/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import * as Semaphore from "effect/Semaphore"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Engine from "./Engine.ts"
import { Handlers } from "./Handler.ts"
import * as Child from "./Child.ts"
import * as Compiled from "./internal/compiled.ts"
import * as Lease from "./Lease.ts"
import { isFinal, type Mode, type RunEvent } from "./RunEvent.ts"
import * as RunStatus from "./RunStatus.ts"
import * as RunView from "./RunView.ts"
import * as Wake from "./Wake.ts"
import {
  type Child as ChildRun,
  type CompensationEntry,
  consumesCancel,
  isStoreUnavailable,
  type Lease as StoreLease,
  type Run,
  RunNotFound,
  RunStore,
  type RunStoreError,
  type StoreUnavailable,
  type WorkflowNotFound
} from "./RunStore.ts"

type Json = Workflow.Json

/**
 * The workflow is not valid (`Workflow.decode` refuses it: a cycle, a dangling edge, a bad reference, ...).
 *
 * @since 0.1.0
 */
export class InvalidWorkflow extends Data.TaggedError("InvalidWorkflow")<{
  readonly workflowId: string
  readonly cause: Workflow.WorkflowError
}> {
  override get message() {
    return `workflow ${this.workflowId}: ${this.cause._tag} at ${JSON.stringify(this.cause.path)}`
  }
}

/**
 * The run input does not match the workflow's declared inputs.
 *
 * @since 0.1.0
 */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{
  readonly workflowId: string
  readonly cause: Workflow.WorkflowError
}> {
  override get message() {
    return `workflow ${this.workflowId}: invalid input: ${this.cause._tag} at ${JSON.stringify(this.cause.path)}`
  }
}

/**
 * A signal or approval request holds what no store can hold (a NUL or a lone surrogate in its
 * payload, name or reason): refused before anything is written, whatever the store.
 *
 * @since 0.1.0
 */
export class InvalidPayload extends Data.TaggedError("InvalidPayload")<{
  readonly runId: string
  readonly cause: Workflow.UnstorableValue
}> {
  override get message() {
    return `run ${this.runId}: ${this.cause.message}`
  }
}

/**
 * The planner refused the request (unknown target, snapshot of another workflow, ...).
 *
 * @since 0.1.0
 */
export class PlanFailed extends Data.TaggedError("PlanFailed")<{
  readonly workflowId: string
  readonly cause: Plan.PlanError
}> {
  override get message() {
    return `workflow ${this.workflowId}: cannot plan: ${this.cause._tag}`
  }
}

/**
 * The run has no node instance of that id, and its workflow no node or block of it
 * (`RunView.names`).
 *
 * @since 0.1.0
 */
export class NodeNotFound extends Data.TaggedError("NodeNotFound")<{
  readonly runId: string
  readonly node: string
}> {
  override get message() {
    return `run ${this.runId}: no node ${this.node}`
  }
}

/**
 * Every error `start`, `runFrom` and `plan` can report.
 *
 * @since 0.1.0
 */
export type RunsError =
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
 * latest finished run of the workflow). `input` is used only when there is no prior run.
 *
 * @since 0.1.0
 */
export interface RunFromOptions {
  readonly target: string
  readonly run?: string | undefined
  readonly input?: { readonly [key: string]: Json } | undefined
}

/**
 * The facade service.
 *
 * @since 0.1.0
 */
export class Runs extends Context.Service<Runs, {
  /** Validates the input, plans a full run, saves the workflow version, creates and starts the run. */
  readonly start: (
    workflow: Workflow.Workflow,
    input?: { readonly [key: string]: Json }
  ) => Effect.Effect<Started, RunsError>
  /** Plans from `target` against a prior run, then creates and starts the run. */
  readonly runFrom: (workflow: Workflow.Workflow, options: RunFromOptions) => Effect.Effect<Started, RunsError>
  /** The plan `runFrom` (with a target) or `start` (without) would execute; writes nothing. */
  readonly plan: (
    workflow: Workflow.Workflow,
    options?: Partial<RunFromOptions>
  ) => Effect.Effect<Plan.Plan, RunsError>
  /** The stored run and what it is dormant on. */
  readonly status: (runId: string) => Effect.Effect<RunInfo, RunNotFound | StoreUnavailable>
  /**
   * The run's observed outputs, `{ <block id>: output }` (`RunView.outputs`): the record a `child`
   * block gets from a completed child run; `null` for an observed block that has not completed.
   */
  readonly outputs: (runId: string) => Effect.Effect<{ readonly [block: string]: Json }, RunNotFound | WorkflowNotFound | StoreUnavailable>
  /**
   * Every node instance the run recorded, in execution order (`RunView.nodes`): status, resolved
   * inputs, output, error, attempts, duration, and why it re-ran or was reused (with the source run).
   */
  readonly nodes: (runId: string) => Effect.Effect<ReadonlyArray<RunView.NodeView>, RunNotFound | WorkflowNotFound | StoreUnavailable>
  /**
   * The instances of one node (`RunView.select`): the node instance `node`, or every instance of the
   * node or block `node` (its iterations and branches); empty for a node of the workflow that has
   * not run. `NodeNotFound` when the workflow has no such node.
   */
  readonly node: (
    runId: string,
    node: string
  ) => Effect.Effect<ReadonlyArray<RunView.NodeView>, NodeNotFound | RunNotFound | WorkflowNotFound | StoreUnavailable>
  /** Waits until the run stops executing (finished, or dormant) and returns its status. */
  readonly wait: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError>
  /**
   * Delivers a signal to the `wait` blocks awaiting `name`; whether it was accepted. A signal no
   * `wait` block awaits, one a finished run gets, or a duplicate (one of that name is still kept,
   * or every top-level wait for it already took one) is refused and changes nothing.
   */
  readonly signal: (runId: string, name: string, payload?: Json) => Effect.Effect<boolean, RunStoreError | PlanFailed | InvalidPayload>
  /** Approves the `approval` node instance `node` (paused): it completes with `payload`. Whether accepted. */
  readonly approve: (runId: string, node: string, payload?: Json) => Effect.Effect<boolean, RunStoreError | PlanFailed | InvalidPayload>
  /** Rejects the `approval` node instance `node`: it fails with `reason`. Whether accepted. */
  readonly reject: (runId: string, node: string, reason: string) => Effect.Effect<boolean, RunStoreError | PlanFailed | InvalidPayload>
  /**
   * Asks a run to pause at its next node boundary (running handlers finish; a suspended run pauses
   * when it wakes). The request is stored (`RunStore.requestPause`), so the process executing the
   * run — this one, another `ripple` process, a worker — parks it. A run executing here is waited
   * for and the status it settled in returned; otherwise the current status (a paused or finished
   * run is left as it is).
   */
  readonly pause: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError>
  /**
   * Unpauses a run paused by `pause` and executes it again, here unless another process owns it
   * (`Wake.ownerOf`: then the owner is notified and continues it).
   */
  readonly unpause: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError | PlanFailed>
  /**
   * Continues a `failed` run (failed nodes re-run) or a crashed one (`running` or `pending`, not
   * executing in this process: incomplete nodes re-run); any other status is an `IllegalTransition`.
   * A run another process owns is only moved on (a failed one resumed) and its owner notified.
   */
  readonly resume: (runId: string) => Effect.Effect<Started | Delegated, RunStoreError | PlanFailed>
  /** Who executes the run now: this process, another one (its owner), or nobody. */
  readonly handling: (runId: string) => Effect.Effect<Handling, RunNotFound | StoreUnavailable>
  /**
   * Waits, at most `timeout`, for the owner of a delegated request to take it (`taken` holds for
   * the run as read, or a lease on it is seen) and then for the run to stop executing; polls the
   * store, calling `onWaiting` every 5 s of waiting with the time waited so far.
   */
  readonly handover: (runId: string, options: {
    readonly taken: (run: Run) => boolean
    readonly timeout: Duration.Duration
    readonly onWaiting: (waitedMs: number, taken: boolean) => Effect.Effect<void>
  }) => Effect.Effect<Handover, RunNotFound | StoreUnavailable>
  /**
   * Follows a run executing here to its end: waits until it stops; while it is suspended on child
   * runs only, waits for them (they execute here too) and for the run to wake and stop again; when
   * it ended as a child, does the same for the parents it woke.
   */
  readonly follow: (runId: string) => Effect.Effect<Followed, RunStoreError>
  /**
   * Wakes a dormant run that can go on now: an awaited delivery is kept or a sleeper is due (on
   * the `Clock`). Returns the status after. Workers call it for `RunStore.wakeable` runs.
   */
  readonly wake: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError | PlanFailed>
  /** Cancels a run: interrupts its running handlers and moves it to `cancelled`. */
  readonly cancel: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError>
  /**
   * The run's events from when the stream starts, ending with its `RunFinished`; empty for a run
   * that is not executing (finished, unknown, or executing in another process).
   */
  readonly events: (runId: string) => Stream.Stream<RunEvent>
  /**
   * Subscribes now and returns the stream of every run's events (no event published after this
   * returns is missed, up to the buffer's capacity); the subscription lives as long as the scope.
   */
  readonly subscribe: Effect.Effect<Stream.Stream<RunEvent>, never, Scope.Scope>
}>()("ripple/runtime/Runs") {}

// Validation is a pure function of an immutable workflow value: checked once per value.
// Limits other than the defaults are rare: such workflows are decoded on every start instead.
const validity = new WeakMap<Workflow.Workflow, Workflow.WorkflowError | undefined>()
const problemOf = (
  workflow: Workflow.Workflow,
  limits: Partial<Workflow.Limits> | undefined
): Workflow.WorkflowError | undefined => {
  if (limits !== undefined) {
    const decoded = Workflow.decode(workflow, { limits })
    return Result.isFailure(decoded) ? decoded.failure : undefined
  }
  if (!validity.has(workflow)) {
    const decoded = Workflow.decode(workflow)
    validity.set(workflow, Result.isFailure(decoded) ? decoded.failure : undefined)
  }
  return validity.get(workflow)
}

// Plans are immutable values of immutable workflows: starting the same workflow value again reuses
// its full plan instead of re-planning every node.
const fullPlans = new WeakMap<Workflow.Workflow, Result.Result<Plan.Plan, Plan.PlanError>>()
const fullPlan = (workflow: Workflow.Workflow, dag: Dag.Dag) => {
  let plan = fullPlans.get(workflow)
  if (plan === undefined) {
    plan = Plan.full(workflow, { dag })
    fullPlans.set(workflow, plan)
  }
  return plan
}

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
  /** How often `cancel` looks whether the process executing a run ended it (default 50 ms). */
  readonly cancelPollMs?: number | undefined
}

/**
 * The `Runs` service over a `RunStore` and a `Handlers` registry.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Runs, never, RunStore | Handlers> =>
  Layer.effect(
    Runs,
    Effect.gen(function*() {
      const store = yield* RunStore
      const handlers = yield* Handlers
      const scope = yield* Effect.scope
      const context = yield* Effect.context<RunStore | Handlers>()
      const hub = yield* PubSub.sliding<RunEvent>(options.eventBuffer ?? 4096)
      // A run's executor stays here until it parks with nothing kept to wake it (`executeHere`).
      const executing = new Map<string, Fiber.Fiber<RunStatus.Status, RunStoreError>>()
      // Runs whose current execution has not published its `RunFinished` yet: what `events` follows.
      const announcing = new Set<string>()
      const controls = new Map<string, Engine.Control>()
      const timers = new Map<string, Fiber.Fiber<unknown, unknown>>()
      const publish = (event: RunEvent) => {
        // Forgotten before its last event goes out, so `events` never waits on an execution that has ended.
        if (event._tag === "RunFinished") announcing.delete(event.runId)
        PubSub.publishUnsafe(hub, event)
      }
      const owner = options.owner ?? Lease.makeOwner("runs")
      const leaseTerms = Lease.terms({ ttlMs: options.leaseMs, heartbeatMs: options.heartbeatMs })
      // This process executes no queued run; it executes others under leases of its own.
      const self: Wake.Self = { owner, worker: false }
      // A lease taken for something that failed before its execution started.
      const releasing = <A, E, R>(lease: StoreLease, effect: Effect.Effect<A, E, R>) => Effect.onError(effect, () => store.release(lease))
      // Executions holding a lease, until it is released (`executing` forgets a run when it lets go,
      // under the settling lock, just before). A fiber interrupted before its first step runs
      // nothing, its finalizers included: whoever interrupts an execution releases its lease too.
      const leased = new Map<string, { readonly fiber: Fiber.Fiber<unknown, unknown>; readonly released: Effect.Effect<void> }>()
      yield* Effect.addFinalizer(() => Effect.forEach([...leased.values()], (held) => held.released, { discard: true }))
      // The lease of a run this layer may execute now, or the other owner that holds it. Held here
      // (an execution letting go of the run, a child run about to be forked): waited for, then taken.
      type Taken = { readonly _tag: "Owned"; readonly lease: StoreLease } | { readonly _tag: "Held"; readonly owner: string }
      const ownOrOwner = (runId: string): Effect.Effect<Taken, RunNotFound | StoreUnavailable> =>
        Effect.gen(function*() {
          for (;;) {
            const taken = yield* Effect.result(Lease.take(store, runId, owner, leaseTerms.ttlMs))
            if (Result.isSuccess(taken)) return { _tag: "Owned", lease: taken.success } as const
            if (taken.failure._tag !== "LeaseHeld") return yield* Effect.fail(taken.failure)
            if (taken.failure.owner !== owner) return { _tag: "Held", owner: taken.failure.owner } as const
            const held = leased.get(runId)
            yield* held === undefined ? Effect.yieldNow : Effect.andThen(Fiber.await(held.fiber), held.released)
          }
        })
      const engineOptions: Engine.Options = {
        concurrency: options.concurrency,
        tracing: options.tracing,
        cutoff: options.cutoff,
        loopCondition: options.loopCondition,
        limits: options.limits
      }

      const validate = (workflow: Workflow.Workflow, input: { readonly [key: string]: Json }) => {
        const problem = problemOf(workflow, options.limits)
        if (problem !== undefined) return Effect.fail(new InvalidWorkflow({ workflowId: workflow.id, cause: problem }))
        const inputs = Workflow.inputsFor(workflow, input)
        if (Result.isFailure(inputs)) return Effect.fail(new InvalidInput({ workflowId: workflow.id, cause: inputs.failure }))
        const unsupported = Engine.check(workflow, handlers)
        return unsupported === undefined ? Effect.succeed(inputs.success) : Effect.fail(unsupported)
      }

      // A request whose fields no store can hold (path: the field, then into the payload) writes nothing.
      const storable = (runId: string, request: { readonly [field: string]: Json }) => {
        const problem = Workflow.unstorable(request)
        return problem === undefined ? Effect.void : Effect.fail(new InvalidPayload({ runId, cause: problem }))
      }

      const planned = (result: Result.Result<Plan.Plan, Plan.PlanError>, workflow: Workflow.Workflow) =>
        Result.isSuccess(result)
          ? Effect.succeed(result.success)
          : Effect.fail(new PlanFailed({ workflowId: workflow.id, cause: result.failure }))

      const sourceOf = (workflow: Workflow.Workflow, run: string | undefined) =>
        run === undefined
          ? Effect.map(store.latestSnapshot(workflow.id), Option.getOrUndefined)
          : store.snapshot(run)

      const planFrom = (workflow: Workflow.Workflow, options: Partial<RunFromOptions>) =>
        Effect.gen(function*() {
          if (options.target === undefined) {
            const input = yield* validate(workflow, options.input ?? {})
            const dag = Compiled.dagOf(workflow)
            return { plan: yield* planned(fullPlan(workflow, dag), workflow), input, source: undefined }
          }
          const source: Snapshot.Snapshot | undefined = yield* sourceOf(workflow, options.run)
          const input = yield* validate(workflow, source?.input ?? options.input ?? {})
          const dag = Compiled.dagOf(workflow)
          const plan = yield* planned(Plan.runFrom({ workflow, snapshot: source, target: options.target, dag }), workflow)
          return { plan, input, source }
        })

      const launch = (
        mode: Mode,
        workflow: Workflow.Workflow,
        prepared: { readonly plan: Plan.Plan; readonly input: { readonly [key: string]: Json }; readonly source: Snapshot.Snapshot | undefined },
        parent?: { readonly parentRun: string; readonly parentNode: string }
      ) =>
        Effect.gen(function*() {
          const version = yield* store.saveWorkflow(workflow)
          const at = yield* Clock.currentTimeMillis
          const sourceRun = prepared.source?.runId
          const run = yield* store.createRun({
            version,
            mode,
            sourceRun,
            target: prepared.plan.target,
            input: prepared.input,
            at,
            pruned: Plan.pruneSummary(prepared.plan),
            ...parent
          })
          // A run just created: nobody else can hold its lease yet.
          const lease = yield* Effect.catchTag(Lease.take(store, run.id, owner, leaseTerms.ttlMs), "LeaseHeld", Effect.die)
          yield* releasing(lease, fork({ runId: run.id, mode, plan: prepared.plan, input: prepared.input, sourceRun, source: prepared.source, publish }, lease))
          return { runId: run.id, mode, plan: prepared.plan }
        })

      // Every execution: owned by the layer, under the run's lease (released once it ends); the run's
      // executor until the run parks with nothing to wake it (`executeHere`).
      const fork = (execution: Omit<Engine.Execution, "control">, lease: StoreLease) =>
        Effect.gen(function*() {
          // Closing the layer interrupts executions without cancelling them: runs stay resumable.
          const control: Engine.Control = { pauseRequested: false, cancelOnInterrupt: false }
          const runId = execution.runId
          let fiber: Fiber.Fiber<RunStatus.Status, RunStoreError> | undefined
          const forget = () => {
            // A later executor of the same run (woken after this one let go) is not this one's to forget.
            if (executing.get(runId) !== fiber) return
            executing.delete(runId)
            controls.delete(runId)
          }
          const execute = Lease.hold(
            store,
            lease,
            leaseTerms,
            (fenced) => executeHere(execution, control, forget, lease).pipe(Effect.provideService(RunStore, fenced)),
            control
          )
          const released = Effect.andThen(store.release(lease), Effect.sync(() => {
            if (leased.get(runId)?.fiber === fiber) leased.delete(runId)
          }))
          fiber = yield* Effect.forkIn(
            Effect.ensuring(execute, released).pipe(
              Effect.provideContext(context),
              Effect.ensuring(Effect.sync(forget)),
              Effect.tap(() => Effect.forkIn(Effect.ignore(Effect.suspend(() => notifyParent(runId))), scope))
            ),
            scope
          )
          executing.set(runId, fiber)
          leased.set(runId, { fiber, released })
          controls.set(runId, control)
          announcing.add(runId)
        })

      // Executes the run, and again each time it parks on something already kept for it (a delivery
      // recorded while it was running, a due sleeper): the executor takes it itself. It lets go of the
      // run (`forget`) under the settling lock, in the same step that found nothing to take, so a
      // delivery recorded after that step finds no executor here and wakes the run (`settle`): no
      // wake-up is lost between the two.
      const executeHere = (
        first: Omit<Engine.Execution, "control">,
        control: Engine.Control,
        forget: () => void,
        lease: StoreLease
      ): Effect.Effect<RunStatus.Status, RunStoreError, RunStore | Handlers> =>
        Effect.gen(function*() {
          const runId = first.runId
          let execution = first
          for (;;) {
            const status = yield* Engine.execute({ ...execution, control, spawn: spawnFor(runId) }, engineOptions)
            const next = yield* settling.withPermit(Effect.gen(function*() {
              const woken = yield* wakeLocked(yield* store.getRun(runId), lease)
              if (woken === undefined) {
                forget()
                return undefined
              }
              announcing.add(runId)
              return yield* storedExecution(runId)
            }))
            if (next === undefined) return status
            if (Result.isFailure(next)) {
              // Woken (the event offered) but not plannable: left running, as a crashed run, for `resume` to report.
              forget()
              yield* Effect.logWarning(`run ${runId}: woken but cannot be planned: ${next.failure._tag}`)
              return "running"
            }
            execution = next.success
          }
        })

      // A `child` block's run: a saved version (by id) or an inline workflow, started as a full run
      // linked to its parent; one the node instance started before (and that can still succeed) is reused.
      const spawnFor = (parentRun: string): Engine.Spawn =>
        Child.spawner(store, parentRun, (child, input, node) =>
          Effect.flatMap(
            Effect.result(Effect.flatMap(
              planFrom(child, { input }),
              (prepared) => launch("full", child, prepared, { parentRun, parentNode: node })
            )),
            (launched): Effect.Effect<Result.Result<string, string>, StoreUnavailable> =>
              Result.isSuccess(launched)
                ? Effect.succeed(Result.succeed(launched.success.runId))
                // A store fault stops the parent's execution; only a refused child fails the block.
                : isStoreUnavailable(launched.failure)
                ? Effect.fail(launched.failure)
                : Effect.succeed(Result.fail(`child run not started: ${launched.failure.message}`))
          ))

      // A finished child run's result goes to its parent, which wakes if it awaits it.
      const notifyParent = (runId: string): Effect.Effect<void, RunStoreError | PlanFailed> =>
        Effect.flatMap(Child.deliverToParent(store, runId), (parent) => parent === undefined ? Effect.void : Effect.asVoid(settle(parent)))

      // What executes a stored run now (`Wake.plan`), with the run's input.
      const storedExecution = (runId: string) =>
        Effect.gen(function*() {
          const run = yield* store.getRun(runId)
          const stored = yield* Wake.plan(store, run)
          return Result.map(stored, ({ mode, plan, source, sourceRun }): Omit<Engine.Execution, "control"> => ({
            runId,
            mode,
            plan,
            input: run.input,
            sourceRun,
            source,
            publish
          }))
        })

      // Executes a stored run under `lease` (taken before its waking event was written).
      const resumeRun = (runId: string, lease: StoreLease): Effect.Effect<Started, RunStoreError | PlanFailed> =>
        releasing(
          lease,
          Effect.gen(function*() {
            const stored = yield* storedExecution(runId)
            if (Result.isFailure(stored)) {
              const workflowId = (yield* store.getRun(runId)).workflowId
              return yield* Effect.fail(new PlanFailed({ workflowId, cause: stored.failure }))
            }
            yield* fork(stored.success, lease)
            return { runId, mode: stored.success.mode, plan: stored.success.plan }
          })
        )

      // A dormant run that can go on now is woken and executed here, unless another process owns it
      // (then it is told); a sleeper not due yet gets a timer. One at a time: two wakers must not
      // both offer the event that wakes the same run.
      const settling = yield* Semaphore.make(1)
      const settle = (runId: string): Effect.Effect<RunStatus.Status, RunStoreError | PlanFailed> =>
        settling.withPermit(Effect.gen(function*() {
          const run = yield* store.getRun(runId)
          if (executing.has(runId)) return run.status
          const woken = yield* wakeLocked(run, undefined)
          if (woken === undefined) return run.status
          yield* resumeRun(runId, woken.lease)
          return woken.status
        }))

      // Under the settling lock, for a run no execution here holds (or the one holding `held`): offers
      // the event that wakes it now, under its lease (taken first unless `held`), and returns the
      // status it moved to with the lease to execute it under; otherwise tells its owner (one that
      // took the lease first too), or arms a timer for a sleeper, and returns `undefined`.
      const wakeLocked = (
        run: Run,
        held: StoreLease | undefined
      ): Effect.Effect<{ readonly status: RunStatus.Status; readonly lease: StoreLease } | undefined, RunStoreError> =>
        Effect.gen(function*() {
          const runId = run.id
          const at = yield* Clock.currentTimeMillis
          const decision = Wake.decide(run, yield* store.deliveries(runId), at, self)
          switch (decision._tag) {
            case "Stay":
              return undefined
            case "Owner":
              if (decision.event !== undefined) yield* store.notify(runId)
              return undefined
            case "Wake": {
              const taken: Taken = held === undefined ? yield* ownOrOwner(runId) : { _tag: "Owned", lease: held }
              if (taken._tag === "Held") {
                yield* store.notify(runId)
                return undefined
              }
              const transition = store.fenced(taken.lease).transition(runId, decision.event, at)
              const changed = yield* held === undefined ? releasing(taken.lease, transition) : transition
              publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
              return { status: changed.to, lease: taken.lease }
            }
            case "Sleep": {
              const timer = yield* Effect.forkIn(
                Effect.andThen(Effect.sleep(Duration.millis(decision.until - at)), Effect.ignore(Effect.suspend(() => settle(runId)))),
                scope
              )
              const previous = timers.get(runId)
              timers.set(runId, timer)
              if (previous !== undefined) yield* Fiber.interrupt(previous)
              return undefined
            }
          }
        })

      const bodyMembers = new WeakMap<Workflow.Workflow, ReadonlySet<string>>()
      const inContainers = (workflow: Workflow.Workflow) => {
        let found = bodyMembers.get(workflow)
        if (found === undefined) {
          found = new Set([...(workflow.loops ?? []), ...(workflow.parallels ?? [])].flatMap((c) => c.body))
          bodyMembers.set(workflow, found)
        }
        return found
      }

      const signal = (runId: string, name: string, payload: Json) =>
        Effect.gen(function*() {
          const snapshot = yield* store.snapshot(runId)
          if (RunStatus.terminal.includes(snapshot.status)) return false
          const awaiting = snapshot.workflow.blocks.filter((b) => {
            if (b.type !== "wait") return false
            const wanted = b.params?.["signal"]
            return wanted === name || typeof wanted !== "string"
          })
          if (awaiting.length === 0) return false
          const nested = inContainers(snapshot.workflow)
          // Every wait for it is top level and has taken its signal already: a duplicate.
          if (awaiting.every((b) => !nested.has(b.id) && snapshot.nodes[b.id]?.status === "completed")) return false
          const at = yield* Clock.currentTimeMillis
          if (!(yield* store.deliver(runId, { kind: "signal", name, payload, at }))) return false
          yield* settle(runId)
          return true
        })

      const decide = (runId: string, node: string, decision: Json) =>
        Effect.gen(function*() {
          const snapshot = yield* store.snapshot(runId)
          if (RunStatus.terminal.includes(snapshot.status) || snapshot.nodes[node]?.status !== "paused") return false
          const parsed = NodeId.parseInstance(node)
          if (Result.isFailure(parsed) || parsed.success.node.kind !== "block") return false
          const id = parsed.success.node.id
          if (!snapshot.workflow.blocks.some((b) => b.id === id && b.type === "approval")) return false
          const at = yield* Clock.currentTimeMillis
          if (!(yield* store.deliver(runId, { kind: "approval", name: node, payload: decision, at }))) return false
          yield* settle(runId)
          return true
        })

      const cancelStored = (runId: string, lease: StoreLease) =>
        Effect.gen(function*() {
          const at = yield* Clock.currentTimeMillis
          const run = yield* store.getRun(runId)
          // Diagnostics travel with the event: a refused cancel leaves them as they were.
          const changed = yield* store.fenced(lease).finish(runId, { type: "CANCEL" }, {
            ...run.diagnostics,
            finalization: "cancelled",
            messages: [...run.diagnostics.messages, "cancelled while not executing"]
          }, at)
          publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
          publish({ _tag: "RunFinished", runId, status: changed.to, at })
          return changed.to
        })

      const wait = (runId: string): Effect.Effect<RunStatus.Status, RunStoreError> => {
        const stored = Effect.map(store.getRun(runId), (run) => run.status)
        // Looked up under the waking lock: a run being woken is either not woken yet or executing,
        // never stored as running with its execution not forked yet.
        type Found = { readonly _tag: "Stored"; readonly status: RunStatus.Status } | { readonly _tag: "Executing"; readonly fiber: Fiber.Fiber<RunStatus.Status, RunStoreError> }
        const lookup = settling.withPermit(Effect.suspend((): Effect.Effect<Found, RunStoreError> => {
          const fiber = executing.get(runId)
          return fiber === undefined
            ? Effect.map(stored, (status) => ({ _tag: "Stored", status }))
            : Effect.succeed({ _tag: "Executing", fiber })
        }))
        return Effect.flatMap(lookup, (found) =>
          found._tag === "Stored"
            ? Effect.succeed(found.status)
            // A cancelled execution ends interrupted; its status is in the store.
            : Effect.catchCause(Fiber.join(found.fiber), (cause) => Cause.hasInterruptsOnly(cause) ? stored : Effect.failCause(cause)))
      }

      // Cancels a run nobody executes, under this layer's lease, unless its owner honoured the request meanwhile.
      const cancelOwned = (runId: string, lease: StoreLease, requested: boolean) =>
        Effect.ensuring(
          Effect.flatMap(store.getRun(runId), (run) =>
            requested && run.status === "cancelled"
              ? Effect.succeed(run.status)
              : cancelStored(runId, lease)),
          store.release(lease)
        )

      // A run not executing here: asked to cancel, then cancelled here as soon as the lease can be
      // taken (nobody executes it, or its owner's lease expired), or left to the owner, which ends it
      // at its next journal write or renewal; looked at until then, so that once `cancel` returns no
      // block of the run starts.
      const cancelElsewhere = (runId: string): Effect.Effect<RunStatus.Status, RunStoreError> =>
        Effect.gen(function*() {
          const requested = yield* store.requestCancel(runId, yield* Clock.currentTimeMillis)
          if (requested) yield* store.notify(runId)
          for (;;) {
            const taken = yield* ownOrOwner(runId)
            if (taken._tag === "Owned") return yield* cancelOwned(runId, taken.lease, requested)
            const run = yield* store.getRun(runId)
            if (consumesCancel.includes(run.status)) return run.status
            yield* Effect.sleep(Duration.millis(options.cancelPollMs ?? 50))
          }
        })

      const cancelOne = (runId: string): Effect.Effect<RunStatus.Status, RunStoreError> => {
        const timer = timers.get(runId)
        if (timer !== undefined) timers.delete(runId)
        const fiber = executing.get(runId)
        if (fiber === undefined) return Effect.andThen(timer === undefined ? Effect.void : Fiber.interrupt(timer), cancelElsewhere(runId))
        const control = controls.get(runId)
        if (control !== undefined) control.cancelOnInterrupt = true
        const held = leased.get(runId)
        // An execution interrupted before its first step never saw the run: it is still pending.
        return Effect.andThen(
          Effect.andThen(Fiber.interrupt(fiber), held === undefined ? Effect.void : held.released),
          Effect.flatMap(store.getRun(runId), (run) => run.status === "pending" ? cancelElsewhere(runId) : Effect.succeed(run.status))
        )
      }

      // A crashed process took its runs' children down with it: resuming the parent resumes them too
      // (a child that ends wakes its parent as usual).
      const resumeCrashedChildren = (runId: string): Effect.Effect<void, RunStoreError | PlanFailed> =>
        Effect.gen(function*() {
          for (const child of yield* store.children(runId)) {
            if ((child.status === "running" || child.status === "pending") && !executing.has(child.runId)) {
              // A child whose lease another process holds is executing there.
              const taken = yield* ownOrOwner(child.runId)
              if (taken._tag === "Owned") yield* resumeRun(child.runId, taken.lease)
              yield* resumeCrashedChildren(child.runId)
            }
          }
        })

      // Cancelling a run cancels its descendants that have not finished; a parent learns its child's end.
      const cancelTree = (runId: string): Effect.Effect<RunStatus.Status, RunStoreError> =>
        Effect.gen(function*() {
          const status = yield* cancelOne(runId)
          for (const child of yield* store.children(runId)) {
            if (!Child.ended.includes(child.status)) yield* Effect.ignore(cancelTree(child.runId))
          }
          yield* Effect.ignore(notifyParent(runId))
          return status
        })

      const handover: Runs["Service"]["handover"] = (runId, options) =>
        Effect.gen(function*() {
          const start = yield* Clock.currentTimeMillis
          const deadline = start + Duration.toMillis(options.timeout)
          let owner: string | undefined
          let taken = false
          let reported = start
          for (;;) {
            const run = yield* store.getRun(runId)
            const now = yield* Clock.currentTimeMillis
            const held = Wake.holder(run, now)
            if (held !== undefined) owner = held
            taken ||= owner !== undefined || options.taken(run)
            const stopped = held === undefined && run.status !== "running" && run.status !== "pending"
            if ((taken && stopped) || now >= deadline) return { taken, owner: taken ? owner ?? Wake.workers : undefined, run }
            if (now - reported >= 5_000) {
              reported = now
              yield* options.onWaiting(now - start, taken)
            }
            yield* Effect.sleep(Duration.millis(100))
          }
        })

      // Waits for a run executing here to stop; while it is suspended on child runs only, waits for
      // them and for the run to wake and stop again.
      const followTree = (runId: string): Effect.Effect<RunStatus.Status, RunStoreError> =>
        Effect.gen(function*() {
          for (;;) {
            const status = yield* wait(runId)
            if (status !== "suspended") return status
            const run = yield* store.getRun(runId)
            const awaitedSignals = Object.values(run.machine.context.dormant).flatMap((r) => r._tag === "Signal" ? [r.signal] : [])
            const awaited = (yield* store.children(runId)).filter((c) => awaitedSignals.includes(Engine.childSignal(c.runId)))
            if (awaited.length === 0) return status
            const open = awaited.filter((c) => !Child.ended.includes(c.status))
            if (open.length > 0) {
              const ends = yield* Effect.forEach(open, (c) => followTree(c.runId))
              // A child that stopped without ending (it awaits something else) holds the run.
              if (ends.some((end) => !Child.ended.includes(end))) return status
              continue
            }
            // Every awaited child ended: their results wake the run (delivered now if their
            // executions have not yet; delivering twice changes nothing).
            for (const child of awaited) yield* Effect.ignore(notifyParent(child.runId))
            const after = yield* store.getRun(runId)
            if (!executing.has(runId) && after.updatedAt === run.updatedAt) return after.status
          }
        })

      const follow = (runId: string): Effect.Effect<Followed, RunStoreError> =>
        Effect.gen(function*() {
          const status = yield* followTree(runId)
          const ancestors: Array<Followed["ancestors"][number]> = []
          // A child run that ended here woke its parent here: follow the parent (and its parent).
          for (let current = runId, ended = status; Child.ended.includes(ended);) {
            const parent = (yield* store.getRun(current)).parentRun
            if (parent === undefined) break
            ended = yield* followTree(parent)
            ancestors.push({ runId: parent, status: ended })
            current = parent
          }
          return { status, ancestors }
        })

      const nodesOf = (runId: string) =>
        Effect.map(
          Effect.all([store.getRun(runId), store.snapshot(runId), store.reasons(runId)]),
          ([run, snapshot, reasons]) => ({ snapshot, views: RunView.nodes(run, snapshot, reasons) })
        )

      return Runs.of({
        start: (workflow, input = {}) =>
          Effect.flatMap(planFrom(workflow, { input }), (prepared) => launch("full", workflow, prepared)),
        runFrom: (workflow, options) =>
          Effect.flatMap(planFrom(workflow, options), (prepared) =>
            launch(prepared.source === undefined ? "full" : "run-from", workflow, prepared)),
        plan: (workflow, options = {}) => Effect.map(planFrom(workflow, options), (prepared) => prepared.plan),
        status: (runId) =>
          Effect.flatMap(Effect.all([store.getRun(runId), store.compensations(runId), store.children(runId)]), ([run, compensations, children]) => {
            const restored = RunStatus.restore(run.machine)
            return Result.isFailure(restored)
              ? Effect.die(restored.failure)
              : Effect.succeed({ ...run, suspension: RunStatus.suspension(restored.success), compensations, children })
          }),
        outputs: (runId) => Effect.map(store.snapshot(runId), RunView.outputs),
        nodes: (runId) => Effect.map(nodesOf(runId), ({ views }) => views),
        node: (runId, node) =>
          Effect.gen(function*() {
            const { snapshot, views } = yield* nodesOf(runId)
            const found = RunView.select(views, node)
            if (found.length === 0 && !RunView.names(snapshot.workflow, node)) return yield* new NodeNotFound({ runId, node })
            return found
          }),
        wait,
        signal: (runId, name, payload = null) =>
          Effect.andThen(storable(runId, { name, payload }), signal(runId, name, payload)),
        approve: (runId, node, payload = null) =>
          Effect.andThen(storable(runId, { node, payload }), decide(runId, node, { approved: true, payload })),
        reject: (runId, node, reason) =>
          Effect.andThen(storable(runId, { node, reason }), decide(runId, node, { approved: false, reason })),
        pause: (runId) =>
          Effect.gen(function*() {
            // Executing here: parked from the very next node, without waiting for a journal acknowledgement.
            const control = controls.get(runId)
            if (control !== undefined) control.pauseRequested = true
            const at = yield* Clock.currentTimeMillis
            const requested = yield* store.requestPause(runId, at)
            if (!requested || control === undefined) return (yield* store.getRun(runId)).status
            return yield* wait(runId)
          }),
        unpause: (runId) =>
          Effect.gen(function*() {
            const run = yield* store.getRun(runId)
            const pause = Object.values(run.machine.context.dormant).find((r) => r._tag === "Pause")
            const at = yield* Clock.currentTimeMillis
            const event: RunStatus.Event = { type: "UNPAUSE", node: pause?.node ?? "", payload: null }
            // Executed here only under the lease; a process that holds it (or the workers) is told.
            const taken = Wake.ownerOf(run, self, at) === undefined ? yield* ownOrOwner(runId) : undefined
            if (taken?._tag !== "Owned") {
              const changed = yield* store.transition(runId, event, at)
              publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
              yield* store.notify(runId)
              return changed.to
            }
            const changed = yield* releasing(taken.lease, store.fenced(taken.lease).transition(runId, event, at))
            publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
            yield* resumeRun(runId, taken.lease)
            return changed.to
          }),
        resume: (runId) =>
          Effect.gen(function*() {
            let run = yield* store.getRun(runId)
            const here = executing.has(runId)
            // A crashed run's lease is its dead owner's until it expires: waited out, then re-read
            // (an owner that renewed it meanwhile is alive and keeps the run).
            if (!here && run.queued !== true && run.lease !== undefined && (run.status === "running" || run.status === "pending")) {
              const at = yield* Clock.currentTimeMillis
              if (run.lease.owner !== owner && run.lease.expiresAt > at) {
                yield* Effect.sleep(Duration.millis(run.lease.expiresAt - at))
                run = yield* store.getRun(runId)
              }
            }
            const elsewhere = here ? undefined : Wake.ownerOf(run, self, yield* Clock.currentTimeMillis)
            // Executed here only under the lease; a process that took it first is the owner.
            const taken = here || elsewhere !== undefined ? undefined : yield* ownOrOwner(runId)
            const lease = taken?._tag === "Owned" ? taken.lease : undefined
            const other = elsewhere ?? (taken?._tag === "Held" ? taken.owner : undefined)
            // A running (or never started) run not executing here crashed: it continues as it is.
            if ((run.status !== "running" && run.status !== "pending") || here) {
              const at = yield* Clock.currentTimeMillis
              const transition = (lease === undefined ? store : store.fenced(lease)).transition(runId, { type: "RESUME" }, at)
              const changed = yield* lease === undefined ? transition : releasing(lease, transition)
              publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
            }
            // Not taken here: another owner's, or this layer's own execution of it (which takes the RESUME).
            if (lease === undefined) {
              yield* store.notify(runId)
              return { runId, owner: other ?? owner }
            }
            const started = yield* resumeRun(runId, lease)
            yield* resumeCrashedChildren(runId)
            return started
          }),
        handling: (runId) =>
          Effect.gen(function*() {
            const run = yield* store.getRun(runId)
            if (executing.has(runId)) return { _tag: "Here" } as const
            const owner = Wake.ownerOf(run, self, yield* Clock.currentTimeMillis)
            return owner === undefined ? { _tag: "Idle", status: run.status } as const : { _tag: "Owner", owner } as const
          }),
        handover,
        follow,
        wake: (runId) => settle(runId),
        cancel: (runId) => cancelTree(runId),
        events: (runId) =>
          Stream.unwrap(Effect.map(PubSub.subscribe(hub), (subscription) =>
            // Subscribed first, then checked: a run still executing now cannot finish unseen.
            announcing.has(runId)
              ? Stream.fromSubscription(subscription).pipe(
                Stream.filter((event) => event.runId === runId),
                Stream.takeUntil(isFinal)
              )
              : Stream.empty)),
        subscribe: Effect.map(PubSub.subscribe(hub), Stream.fromSubscription)
      })
    })
  )
