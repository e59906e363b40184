/**
 * Child runs: what every process that executes `child` blocks shares, whether it runs them here
 * (`Runs`) or queues them for workers (`@ripple/sql`'s `Worker`).
 *
 * **Details**
 *
 * - `load` reads the workflow a `child` block names: a saved version id, or an inline workflow
 *   (as JSON text or a value). Problems come back as text for the block's error.
 * - `existing` finds the child a parent's node instance already started and that can still
 *   succeed, so a parent that crashed after starting its child, and executes that node again,
 *   awaits the same child instead of starting a second one.
 * - `deliverToParent` hands a finished child's result to its parent as the internal signal the
 *   parent's node awaits (`Engine.childSignal`): `{ status, output, error }`, `output` being the
 *   child's observed outputs by block (`RunView.outputs`). Delivering twice changes nothing (a kept
 *   delivery is not kept again, a taken one is not offered again), so any process may deliver.
 *
 * @since 0.1.0
 */
import { Workflow } from "@ripple/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { isObject } from "./internal/json.ts"
import { childSignal } from "./internal/parking.ts"
import type { Spawn } from "./internal/state.ts"
import * as RunStatus from "./RunStatus.ts"
import * as RunView from "./RunView.ts"
import type { RunNotFound, RunStore, StoreUnavailable, WorkflowNotFound } from "./RunStore.ts"

type Json = Workflow.Json

/**
 * The statuses a child has ended in, for its parent (a failed child is not resumed on the
 * parent's behalf: resuming it is a new decision).
 *
 * @since 0.1.0
 */
export const ended: ReadonlyArray<RunStatus.Status> = ["completed", "failed", "cancelled"]

const parseJson = (text: string): Json | undefined => {
  try {
    return JSON.parse(text) as Json
  } catch {
    return undefined
  }
}

/**
 * The workflow a `child` block's `workflow` param names: a saved version id, an inline workflow's
 * JSON text (starting with `{`), or an inline workflow value; or why it names none.
 *
 * @since 0.1.0
 */
export const load = (
  store: RunStore["Service"],
  workflow: Json
): Effect.Effect<Result.Result<Workflow.Workflow, string>, StoreUnavailable> =>
  Effect.gen(function*() {
    if (typeof workflow === "string" && !workflow.trimStart().startsWith("{")) {
      // A store fault is not a missing workflow: it stops the execution instead of failing the block.
      return yield* store.loadWorkflow(workflow).pipe(
        Effect.map(Result.succeed),
        Effect.catchTag("WorkflowNotFound", () => Effect.succeed(Result.fail(`no saved workflow version ${workflow}`)))
      )
    }
    const value = typeof workflow === "string" ? parseJson(workflow) : workflow
    if (value === undefined) return Result.fail("invalid child workflow: not valid JSON")
    return Result.mapError(Workflow.decode(value), (error) => `invalid child workflow: ${error.message}`)
  })

/**
 * The child run that node instance `node` of `parentRun` started and that has not failed or been
 * cancelled, if any.
 *
 * @since 0.1.0
 */
export const existing = (
  store: RunStore["Service"],
  parentRun: string,
  node: string
): Effect.Effect<string | undefined, RunNotFound | StoreUnavailable> =>
  Effect.map(
    store.children(parentRun),
    (children) => children.find((c) => c.node === node && c.status !== "failed" && c.status !== "cancelled")?.runId
  )

/**
 * The `Engine.Spawn` of a parent run: reuses the child its node instance started before (see
 * `existing`), else loads the child workflow (see `load`) and hands it, with its input, to `start`, which starts
 * the run its own way (here, or queued for workers) and returns its id or why it could not.
 *
 * @since 0.1.0
 */
export const spawner = (
  store: RunStore["Service"],
  parentRun: string,
  start: (
    child: Workflow.Workflow,
    input: { readonly [key: string]: Json },
    node: string
  ) => Effect.Effect<Result.Result<string, string>, StoreUnavailable>
): Spawn =>
({ input, node, workflow }) =>
  Effect.gen(function*() {
    // A store fault must not pass for "no child yet": a second child would be started.
    const started = yield* Effect.catchTag(existing(store, parentRun, node), "RunNotFound", () => Effect.succeed(undefined))
    if (started !== undefined) return Result.succeed(started)
    const loaded = yield* load(store, workflow)
    // A `child` block's input is an object of the child's inputs (anything else: none).
    return Result.isFailure(loaded) ? Result.fail(loaded.failure) : yield* start(loaded.success, isObject(input) ? input : {}, node)
  })

/**
 * Delivers a finished child run's result to its parent; the parent's id when the run is a child
 * that has ended (delivered now or before), `undefined` otherwise.
 *
 * @since 0.1.0
 */
export const deliverToParent = (
  store: RunStore["Service"],
  runId: string
): Effect.Effect<string | undefined, RunNotFound | WorkflowNotFound | StoreUnavailable> =>
  Effect.gen(function*() {
    const run = yield* store.getRun(runId)
    if (run.parentRun === undefined || !ended.includes(run.status)) return undefined
    // Taken already (the parent's node finished with it): delivering again would leave a stray.
    const parent = yield* store.snapshot(run.parentRun)
    const awaiting = parent.nodes[run.parentNode ?? ""]?.status
    if (awaiting === "completed" || awaiting === "failed") return run.parentRun
    const output = RunView.outputs(yield* store.snapshot(runId))
    const error = run.diagnostics.messages.find((m) => m.includes("failed"))
    const at = yield* Clock.currentTimeMillis
    yield* store.deliver(run.parentRun, {
      kind: "signal",
      name: childSignal(runId),
      payload: { status: run.status, output, ...(error === undefined ? {} : { error }) },
      at
    })
    return run.parentRun
  })
