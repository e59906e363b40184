/**
 * Saga compensation: when a run fails, the compensations (`Handler.Compensation`, by block type)
 * of the blocks this run completed run in reverse completion order, each journaled in the store's
 * compensation log first as `pending` (the whole order, before any runs) and then with its outcome,
 * so a resume after a crash runs only what is still `pending`.
 *
 * Completion order is the order of this execution's `NodeCompleted` events (timestamps tie within
 * a wave and under `TestClock`); blocks completed by earlier executions of the same run (a resume)
 * come first, ordered by `finishedAt`. Records reused from another run (`reusedFrom`) are never
 * compensated: run-from does not undo what it did not do.
 */
import { NodeId, type Workflow } from "@ripple/core"
import type * as Clock from "effect/Clock"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import type * as BlockError from "../BlockError.ts"
import type * as Handler from "../Handler.ts"
import type { Mode, RunEvent } from "../RunEvent.ts"
import type { LeaseLost, RunNotFound, RunStore, StoreUnavailable, WorkflowNotFound } from "../RunStore.ts"
import { attempts, errorOf, NodeContext, storeFailure } from "./attempt.ts"
import * as Compiled from "./compiled.ts"
import { confirmed, type Control } from "./control.ts"
import { isObject } from "./json.ts"

type Json = Workflow.Json

/** The completion order of one execution, recorded from its events. */
export interface Tracker {
  readonly order: Array<string>
  readonly publish: (event: RunEvent) => void
}

/** A compensation of a node instance of `workflow`, when its block type has one. */
const compensationOf = (
  workflow: Workflow.Workflow,
  handlers: Handler.Handlers["Service"],
  node: string
): { readonly block: Workflow.Block; readonly compensate: Handler.Compensation } | undefined => {
  const parsed = NodeId.parseInstance(node)
  if (Result.isFailure(parsed) || parsed.success.node.kind !== "block") return undefined
  const id = parsed.success.node.id
  const block = workflow.blocks.find((b) => b.id === id)
  // A disabled block did nothing its handler would undo.
  const compensate = block === undefined || block.disabled === true ? undefined : handlers.compensation?.(block.type)
  return block === undefined || compensate === undefined ? undefined : { block, compensate }
}

/** Whether any block of the workflow has a compensation (otherwise executions are not tracked). */
export const compensates = (workflow: Workflow.Workflow, handlers: Handler.Handlers["Service"]): boolean =>
  handlers.compensation !== undefined && Compiled.typesOf(workflow).some((type) => handlers.compensation!(type) !== undefined)

/** Wraps `publish` to record completion order. */
export const track = (publish: (event: RunEvent) => void): Tracker => {
  const order: Array<string> = []
  return {
    order,
    publish: (event) => {
      if (event._tag === "NodeCompleted") order.push(event.node)
      publish(event)
    }
  }
}

/** What `compensate` needs. */
export interface Setup {
  readonly runId: string
  readonly mode: Mode
  readonly workflow: Workflow.Workflow
  readonly input: { readonly [key: string]: Json }
  readonly handlers: Handler.Handlers["Service"]
  readonly store: RunStore["Service"]
  readonly clock: Clock.Clock
  readonly tracing: boolean
  /** This execution's completion order. */
  readonly order: ReadonlyArray<string>
  /** The run's diagnostics messages: the compensation report is appended. */
  readonly messages: Array<string>
  /** The execution's requests and lease, checked before each compensation starts as before each block. */
  readonly control: Control
}

/** Plans the compensations of a failed run (appending to its log) and runs every pending one. */
export const compensate = (setup: Setup): Effect.Effect<void, RunNotFound | WorkflowNotFound | StoreUnavailable | LeaseLost> =>
  Effect.gen(function*() {
    const { clock, handlers, messages, runId, store, workflow } = setup
    const snapshot = yield* store.snapshot(runId)
    const executed = new Set(setup.order)
    const earlier = setup.mode !== "resume" ? [] : Object.entries(snapshot.nodes)
      .filter(([node, r]) => !executed.has(node) && r.status === "completed" && r.reusedFrom === undefined)
      .sort((a, b) => (a[1].finishedAt ?? 0) - (b[1].finishedAt ?? 0))
      .map(([node]) => node)
    const candidates = [...earlier, ...setup.order].filter((node) => {
      const record = snapshot.nodes[node]
      return record?.status === "completed" && record.reusedFrom === undefined && compensationOf(workflow, handlers, node) !== undefined
    })
    if (candidates.length > 0) yield* store.planCompensations(runId, candidates.reverse(), clock.currentTimeMillisUnsafe())
    const log = yield* store.compensations(runId)
    for (const entry of log) {
      if (entry.status !== "pending") {
        messages.push(entry.status === "completed" ? `compensated ${entry.node}` : `compensation of ${entry.node} failed: ${entry.error ?? ""}`)
        continue
      }
      const found = compensationOf(workflow, handlers, entry.node)
      const record = snapshot.nodes[entry.node]
      // A compensation is a start like a block's: not after a cancel request, nor without the lease.
      // No journal write acknowledges it: the store is asked (`confirmed`), and again before each retry.
      const starting = confirmed(setup.control)
      if (starting !== undefined) yield* starting
      const at = clock.currentTimeMillisUnsafe()
      if (found === undefined || record === undefined) {
        const error = "no compensation or record any more"
        yield* store.compensated(runId, entry.node, { status: "failed", error }, at)
        messages.push(`compensation of ${entry.node} failed: ${error}`)
        continue
      }
      const inputs = isObject(record.inputs) ? record.inputs : {}
      const shared = { input: setup.input, runId, loop: undefined, parallel: undefined }
      const ctx = new NodeContext(-1, inputs, found.block, entry.node, record.fingerprints, at, shared)
      const output = record.output ?? null
      const exit = yield* Effect.exit(attempts((c) => Effect.as(found.compensate(output, c), null), ctx, setup.tracing, () => {}, () => confirmed(setup.control)))
      const done = clock.currentTimeMillisUnsafe()
      // Interrupted (cancelled or shut down): nothing is recorded, so a resume runs it again.
      if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
      // The store failed past its retries renewing the lease before a retry, or the lease was lost:
      // the compensation did not fail, and stays pending for a resume, like the rest of the log.
      const fault = storeFailure(exit)
      if (fault !== undefined) return yield* Effect.fail(fault)
      if (Exit.isSuccess(exit)) {
        yield* store.compensated(runId, entry.node, { status: "completed" }, done)
        messages.push(`compensated ${entry.node}`)
      } else {
        // Its handler's failure: a store failure ended the execution above.
        const error = errorOf(exit.cause as Cause.Cause<BlockError.BlockError>).message
        yield* store.compensated(runId, entry.node, { status: "failed", error }, done)
        messages.push(`compensation of ${entry.node} failed: ${error}`)
      }
    }
  })
