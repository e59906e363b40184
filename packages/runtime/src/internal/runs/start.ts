/**
 * Starting runs (`start`, `runFrom`, `plan`, child runs): validating a workflow and its input,
 * planning it (full, or from a block against a prior run), creating the run and handing it to its
 * execution under a lease of this layer.
 *
 * @since 0.1.0
 */
import { type Dag, Plan, type Snapshot, Workflow } from "@ripple/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Engine from "../../Engine.ts"
import * as Handler from "../../Handler.ts"
import * as Lease from "../../Lease.ts"
import type { Mode } from "../../RunEvent.ts"
import type * as Runs from "../../Runs.ts"
import * as Compiled from "../compiled.ts"
import { InvalidInput, InvalidWorkflow, PlanFailed } from "./errors.ts"
import * as Execute from "./execute.ts"
import { releasing, type State } from "./state.ts"

type Json = Workflow.Json

/**
 * A planned run, not created yet: the workflow as every store holds it, its plan, its validated
 * input and the snapshot it plans against.
 *
 * @since 0.1.0
 */
export interface Prepared {
  readonly workflow: Workflow.Workflow
  readonly plan: Plan.Plan
  readonly input: { readonly [key: string]: Json }
  readonly source: Snapshot.Snapshot | undefined
}

// Validation is a pure function of an immutable workflow value: checked once per value.
// Limits other than the defaults are rare: such workflows are decoded on every start instead.
const validity = new WeakMap<Workflow.Workflow, Workflow.WorkflowError | undefined>()
const problemOf = (
  workflow: Workflow.Workflow,
  limits: Partial<Workflow.Limits> | undefined
): Workflow.WorkflowError | Workflow.InvalidOption | undefined => {
  if (limits !== undefined) {
    const decoded = Workflow.decode(workflow, { limits })
    return Result.isFailure(decoded) ? decoded.failure : undefined
  }
  // Not an object at all (an untyped caller): decoded, for the error, rather than a WeakMap key.
  if (typeof workflow !== "object" || workflow === null) {
    const decoded = Workflow.decode(workflow)
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

// The workflow a run executes and every store keeps, made once per value: a copy as JSON reads it
// back (`Workflow.toStorable`). A literal `-0` in params or an input's default is `0` on PGlite and
// PostgreSQL, so it is `0` in memory too, and every handler is given `0` whichever store it runs on.
const storedForms = new WeakMap<Workflow.Workflow, Result.Result<Workflow.Json, Workflow.UnstorableValue>>()
const storedForm = (workflow: Workflow.Workflow) => {
  let stored = storedForms.get(workflow)
  if (stored === undefined) {
    stored = Workflow.toStorable(workflow)
    storedForms.set(workflow, stored)
  }
  return Result.isSuccess(stored)
    ? Effect.succeed(stored.success as unknown as Workflow.Workflow)
    : Effect.fail(new InvalidWorkflow({ workflowId: workflow.id, cause: stored.failure }))
}

// Pinned outputs as every store holds them, like a handler's output; what no store can hold is
// refused before anything is written.
const storedPins = (workflow: Workflow.Workflow, pins: Plan.Pins | undefined) => {
  if (pins === undefined) return Effect.succeed(undefined)
  const stored = Workflow.toStorable(pins)
  if (Result.isSuccess(stored)) return Effect.succeed(stored.success as Plan.Pins)
  const { path, reason } = stored.failure
  const cause = new Plan.InvalidPin({ pin: String(path[0]), reason, path: ["pins", ...path] })
  return Effect.fail(new PlanFailed({ workflowId: workflow.id, cause }))
}

// The workflow checked (with `limits`) and in its stored form, and the input checked against it
// (declared keys and types, defaults applied): what every run is checked for, wherever it executes.
const checked = (given: Workflow.Workflow, input: { readonly [key: string]: Json }, limits: Partial<Workflow.Limits> | undefined) =>
  Effect.gen(function*() {
    const problem = problemOf(given, limits)
    if (problem?._tag === "InvalidOption") return yield* Effect.fail(problem)
    if (problem !== undefined) return yield* Effect.fail(new InvalidWorkflow({ workflowId: idOf(given), cause: problem }))
    const workflow = yield* storedForm(given)
    const inputs = Workflow.inputsFor(workflow, input)
    if (Result.isFailure(inputs)) return yield* Effect.fail(new InvalidInput({ workflowId: workflow.id, cause: inputs.failure }))
    return { workflow, input: inputs.success }
  })

const validate = (state: State, given: Workflow.Workflow, input: { readonly [key: string]: Json }) =>
  Effect.gen(function*() {
    // The layer checked its limits (`Runs.layer`).
    const run = yield* Effect.catchTag(checked(given, input, state.options.limits), "InvalidOption", Effect.die)
    const { workflow } = run
    const unsupported = Engine.check(workflow, state.handlers)
    if (unsupported !== undefined) return yield* Effect.fail(unsupported)
    const params = Handler.checkParams(workflow, state.handlers)
    if (params !== undefined) return yield* Effect.fail(new InvalidWorkflow({ workflowId: workflow.id, cause: params }))
    return run
  })

const planned = (result: Result.Result<Plan.Plan, Plan.PlanError>, workflow: Workflow.Workflow) =>
  Result.isSuccess(result)
    ? Effect.succeed(result.success)
    : Effect.fail(new PlanFailed({ workflowId: workflow.id, cause: result.failure }))

// The engine itself runs approvals, waits, sleeps and child runs: there is no output to pin for them.
const enginePins = (workflow: Workflow.Workflow, pins: Plan.Pins | undefined) => {
  for (const key of Object.keys(pins ?? {})) {
    const block = workflow.blocks.find((b) => b.id === key.split("@")[0])
    if (block !== undefined && Engine.intrinsicTypes.has(block.type)) {
      const reason = `${/^[aeiou]/i.test(block.type) ? "an" : "a"} ${block.type} block is run by the engine, not by a handler: it cannot be pinned`
      return Effect.fail(new PlanFailed({ workflowId: workflow.id, cause: new Plan.InvalidPin({ pin: key, reason, path: ["pins", key] }) }))
    }
  }
  return Effect.void
}

// The id an invalid workflow claims, for its error (an untyped caller may pass anything).
const idOf = (workflow: unknown): string => {
  const id = typeof workflow === "object" && workflow !== null ? (workflow as { readonly id?: unknown }).id : undefined
  return typeof id === "string" ? id : ""
}

/**
 * A run admitted for another process to execute: the workflow, input and pins as every store holds
 * them (`Workflow.toStorable`).
 *
 * @since 0.1.0
 */
export interface Admitted {
  readonly workflow: Workflow.Workflow
  readonly input: { readonly [key: string]: Json }
  readonly pins: Plan.Pins | undefined
}

/**
 * What `start` checks before it writes anything, but for the handlers (the process that executes
 * the run has its own): the workflow (as `Workflow.decode` with `limits`), the input (declared keys
 * and types, defaults applied), and the full plan to `to` with `pins`.
 *
 * @since 0.1.0
 */
export const admit = (
  given: Workflow.Workflow,
  input: { readonly [key: string]: Json },
  options: { readonly to?: string | undefined; readonly pins?: Plan.Pins | undefined; readonly limits?: Partial<Workflow.Limits> | undefined }
): Effect.Effect<Admitted, InvalidWorkflow | InvalidInput | PlanFailed | Workflow.InvalidOption> =>
  Effect.gen(function*() {
    const run = yield* checked(given, input, options.limits)
    const pins = yield* storedPins(run.workflow, options.pins)
    if (options.to !== undefined || pins !== undefined) {
      yield* planned(Plan.full(run.workflow, { dag: Compiled.dagOf(run.workflow), to: options.to, pins }), run.workflow)
      yield* enginePins(run.workflow, pins)
    }
    return { ...run, pins }
  })

const sourceOf = (state: State, workflow: Workflow.Workflow, run: string | undefined) =>
  run === undefined
    ? Effect.map(state.store.latestSnapshot(workflow.id), Option.getOrUndefined)
    : state.store.snapshot(run)

/**
 * Plans a run of the workflow `given`: for `start`, full; for `run-from`, from the target (or,
 * without one, from what changed) against a prior run, with `options.input` or else the prior run's
 * input (what reads a changed key re-runs). To `options.to` when given (only what it needs). Writes
 * nothing. The run executes and stores the workflow, input and pins as every store holds them
 * (`Workflow.toStorable`), not the values given.
 *
 * @since 0.1.0
 */
export const planFrom = (
  state: State,
  given: Workflow.Workflow,
  options: Partial<Runs.RunFromOptions>,
  kind: "start" | "run-from"
) =>
  Effect.gen(function*() {
    if (kind === "start") {
      const { input, workflow } = yield* validate(state, given, options.input ?? {})
      const pins = yield* storedPins(workflow, options.pins)
      const dag = Compiled.dagOf(workflow)
      const plan = options.to === undefined && pins === undefined
        ? fullPlan(workflow, dag)
        : Plan.full(workflow, { dag, to: options.to, pins })
      yield* enginePins(workflow, pins)
      return { workflow, plan: yield* planned(plan, workflow), input, source: undefined } satisfies Prepared
    }
    const { target, to } = options
    if (target === undefined && to === undefined) {
      return yield* Effect.fail(new PlanFailed({ workflowId: given.id, cause: new Plan.MissingTarget({ path: ["target"] }) }))
    }
    const source: Snapshot.Snapshot | undefined = yield* sourceOf(state, given, options.run)
    // Before the input: without one, the prior run's is checked, and a run of another workflow
    // would be refused for keys the workflow does not declare, not for being another's.
    if (source !== undefined && source.workflow.id !== given.id) {
      const cause = new Plan.SnapshotOfAnotherWorkflow({ expected: given.id, found: source.workflow.id, path: ["run"] })
      return yield* Effect.fail(new PlanFailed({ workflowId: given.id, cause }))
    }
    const { input, workflow } = yield* validate(state, given, options.input ?? source?.input ?? {})
    const pins = yield* storedPins(workflow, options.pins)
    const dag = Compiled.dagOf(workflow)
    const changed = options.input === undefined ? undefined : input
    const common = { workflow, snapshot: source, dag, input: changed, pins }
    const plan = yield* planned(
      target === undefined ? Plan.runFrom({ ...common, to: to! }) : Plan.runFrom({ ...common, target, to }),
      workflow
    )
    yield* enginePins(workflow, pins)
    return { workflow, plan, input, source } satisfies Prepared
  })

/**
 * Saves the workflow version, creates the run (linked to `parent` for a child run) and forks its
 * execution under this layer's lease; returns once the run is created.
 *
 * @since 0.1.0
 */
export const launch = (
  state: State,
  mode: Mode,
  prepared: Prepared,
  parent?: { readonly parentRun: string; readonly parentNode: string }
) =>
  Effect.gen(function*() {
    const { store } = state
    const { workflow } = prepared
    const version = yield* store.saveWorkflow(workflow)
    const at = yield* Clock.currentTimeMillis
    const sourceRun = prepared.source?.runId
    const run = yield* store.createRun({
      version,
      mode,
      sourceRun,
      target: prepared.plan.target,
      to: prepared.plan.to,
      pins: prepared.plan.pins,
      input: prepared.input,
      at,
      pruned: Plan.pruneSummary(prepared.plan),
      ...parent
    })
    // A run just created: nobody else can hold its lease yet.
    const lease = yield* Effect.catchTag(Lease.take(store, run.id, state.owner, state.leaseTerms.ttlMs), "LeaseHeld", Effect.die)
    yield* releasing(
      state,
      lease,
      Execute.fork(state, {
        runId: run.id,
        mode,
        plan: prepared.plan,
        input: prepared.input,
        sourceRun,
        source: prepared.source,
        publish: state.publish,
        listening: state.listening
      }, lease)
    )
    return { runId: run.id, mode, plan: prepared.plan } satisfies Runs.Started
  })
