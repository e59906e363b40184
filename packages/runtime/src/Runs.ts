/**
 * The facade apps use: start a run, re-run from a block, plan without running, follow events,
 * read the status, wait for the end, cancel.
 *
 * **Details**
 *
 * - Everything that can be refused is refused before anything is written: an invalid workflow
 *   (`Workflow.decode`), the input (missing, unknown or mistyped keys, through `Workflow.inputsFor`),
 *   a workflow the engine cannot execute (a container, a block type without handler), a plan error.
 * - Workflow values are treated as immutable: validation, expansion, the full plan and the version
 *   are computed once per value.
 * - A started run executes in a fiber owned by the layer (closing the layer cancels unfinished
 *   runs); `start` and `runFrom` return once the run is created.
 * - `runFrom` plans against the snapshot of the named run, or, without one, the latest finished
 *   run of the workflow; with no prior run at all it is a full run. It re-uses the source run's
 *   input (a new input would invalidate every reused output that reads it).
 * - Events go through one sliding `PubSub`: a slow subscriber loses old events, never slows or
 *   fails a run.
 *
 * @since 0.1.0
 */
import { type Dag, Plan, type Snapshot, Workflow } from "@ripple/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Engine from "./Engine.ts"
import { Handlers } from "./Handler.ts"
import * as Compiled from "./internal/compiled.ts"
import { isFinal, type Mode, type RunEvent } from "./RunEvent.ts"
import * as RunStatus from "./RunStatus.ts"
import { type Run, RunNotFound, RunStore, type RunStoreError, type WorkflowNotFound } from "./RunStore.ts"

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
 * Every error `start`, `runFrom` and `plan` can report.
 *
 * @since 0.1.0
 */
export type RunsError = InvalidWorkflow | InvalidInput | PlanFailed | Engine.EngineError | RunNotFound | WorkflowNotFound

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
  readonly status: (runId: string) => Effect.Effect<Run, RunNotFound>
  /** Waits until the run stops executing and returns its status. */
  readonly wait: (runId: string) => Effect.Effect<RunStatus.Status, RunStoreError | Engine.UnsupportedWorkflow>
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
const validity = new WeakMap<Workflow.Workflow, Workflow.WorkflowError | undefined>()
const problemOf = (workflow: Workflow.Workflow): Workflow.WorkflowError | undefined => {
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
      const executing = new Map<string, Fiber.Fiber<RunStatus.Status, RunStoreError | Engine.UnsupportedWorkflow>>()
      const publish = (event: RunEvent) => {
        // Forgotten before its last event goes out, so `events` never waits on a run that has ended.
        if (event._tag === "RunFinished") executing.delete(event.runId)
        PubSub.publishUnsafe(hub, event)
      }
      const engineOptions: Engine.Options = { concurrency: options.concurrency, tracing: options.tracing }

      const validate = (workflow: Workflow.Workflow, input: { readonly [key: string]: Json }) => {
        const problem = problemOf(workflow)
        if (problem !== undefined) return Effect.fail(new InvalidWorkflow({ workflowId: workflow.id, cause: problem }))
        const inputs = Workflow.inputsFor(workflow, input)
        if (Result.isFailure(inputs)) return Effect.fail(new InvalidInput({ workflowId: workflow.id, cause: inputs.failure }))
        const unsupported = Engine.check(workflow, handlers)
        return unsupported === undefined ? Effect.succeed(inputs.success) : Effect.fail(unsupported)
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
            const dag = Compiled.compile(workflow).dag
            return { plan: yield* planned(fullPlan(workflow, dag), workflow), input, source: undefined }
          }
          const source: Snapshot.Snapshot | undefined = yield* sourceOf(workflow, options.run)
          const input = yield* validate(workflow, source?.input ?? options.input ?? {})
          const dag = Compiled.compile(workflow).dag
          const plan = yield* planned(Plan.runFrom({ workflow, snapshot: source, target: options.target, dag }), workflow)
          return { plan, input, source }
        })

      const launch = (
        mode: Mode,
        workflow: Workflow.Workflow,
        prepared: { readonly plan: Plan.Plan; readonly input: { readonly [key: string]: Json }; readonly source: Snapshot.Snapshot | undefined }
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
            at
          })
          const execution = Engine.execute(
            { runId: run.id, mode, plan: prepared.plan, input: prepared.input, sourceRun, publish },
            engineOptions
          ).pipe(
            Effect.provideContext(context),
            Effect.ensuring(Effect.sync(() => executing.delete(run.id)))
          )
          const fiber = yield* Effect.forkIn(execution, scope)
          executing.set(run.id, fiber)
          return { runId: run.id, mode, plan: prepared.plan }
        })

      const cancelStored = (runId: string) =>
        Effect.gen(function*() {
          const at = yield* Clock.currentTimeMillis
          const run = yield* store.getRun(runId)
          // Diagnostics go first (a run is never finalized without them), but only for a legal cancel.
          if (RunStatus.isAllowed(run.status, "cancelled")) {
            yield* store.setDiagnostics(runId, { ...run.diagnostics, finalization: "cancelled", messages: [...run.diagnostics.messages, "cancelled while not executing"] }, at)
          }
          const changed = yield* store.transition(runId, { type: "CANCEL" }, at)
          publish({ _tag: "StatusChanged", runId, from: changed.from, to: changed.to, at })
          publish({ _tag: "RunFinished", runId, status: changed.to, at })
          return changed.to
        })

      const wait = (runId: string) => {
        const fiber = executing.get(runId)
        const stored = Effect.map(store.getRun(runId), (run) => run.status)
        // A cancelled execution ends interrupted; its status is in the store.
        return fiber === undefined ? stored : Effect.catchCause(Fiber.join(fiber), (cause) =>
          Cause.hasInterruptsOnly(cause) ? stored : Effect.failCause(cause))
      }

      return Runs.of({
        start: (workflow, input = {}) =>
          Effect.flatMap(planFrom(workflow, { input }), (prepared) => launch("full", workflow, prepared)),
        runFrom: (workflow, options) =>
          Effect.flatMap(planFrom(workflow, options), (prepared) =>
            launch(prepared.source === undefined ? "full" : "run-from", workflow, prepared)),
        plan: (workflow, options = {}) => Effect.map(planFrom(workflow, options), (prepared) => prepared.plan),
        status: (runId) => store.getRun(runId),
        wait,
        cancel: (runId) => {
          const fiber = executing.get(runId)
          if (fiber === undefined) return cancelStored(runId)
          // An execution interrupted before its first step never saw the run: it is still pending.
          return Effect.andThen(
            Fiber.interrupt(fiber),
            Effect.flatMap(store.getRun(runId), (run) => run.status === "pending" ? cancelStored(runId) : Effect.succeed(run.status))
          )
        },
        events: (runId) =>
          Stream.unwrap(Effect.map(PubSub.subscribe(hub), (subscription) =>
            // Subscribed first, then checked: a run still executing now cannot finish unseen.
            executing.has(runId)
              ? Stream.fromSubscription(subscription).pipe(
                Stream.filter((event) => event.runId === runId),
                Stream.takeUntil(isFinal)
              )
              : Stream.empty)),
        subscribe: Effect.map(PubSub.subscribe(hub), Stream.fromSubscription)
      })
    })
  )
