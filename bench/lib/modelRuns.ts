/**
 * Runs on the engine with the reference executor's blocks (`Model.custom` for the arbitraries'
 * `fn` type, built-ins otherwise) over the memory store: a prior run, then a run from a block of an
 * edited workflow. Shared by the benchmarks that count re-executions.
 */
import type { Plan, Snapshot, Workflow } from "@ripple/core"
import { Laws, Model } from "@ripple/core/testing"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** The seed of every modelled block (the engine tests' too). */
export const BLOCK_SEED = 7

/** `Runs` over the memory store and the modelled handlers. */
export const layer = Runs.layer({ concurrency: 4 }).pipe(
  Layer.orDie,
  Layer.provideMerge(RunStore.layerMemory),
  Layer.provideMerge(Handler.layer({
    ...Builtins.handlers,
    fn: (ctx) => Effect.sync(() => Model.custom(BLOCK_SEED, ctx.block, ctx.inputs, { loop: ctx.loop, parallel: ctx.parallel }))
  }))
)

/** What `priorThenRunFrom` returns: the prior run's snapshot (`source`), the plan, the run's snapshot. */
export interface Outcome {
  readonly source: Snapshot.Snapshot
  readonly plan: Plan.Plan
  readonly run: Snapshot.Snapshot
}

/** A full run of `before`, then `runFrom(after, options)` against it. */
export const priorThenRunFrom = (
  before: Workflow.Workflow,
  after: Workflow.Workflow,
  options: { readonly target: string; readonly to?: string | undefined }
): Effect.Effect<Outcome, Runs.RunsError | RunStore.RunStoreError, Runs.Runs | RunStore.RunStore> =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const prior = yield* runs.start(before, Laws.inputFor(before))
    yield* runs.wait(prior.runId)
    const source = yield* store.snapshot(prior.runId)
    const again = yield* runs.runFrom(after, { ...options, run: prior.runId })
    yield* runs.wait(again.runId)
    return { source, plan: again.plan, run: yield* store.snapshot(again.runId) }
  })

/** The block instances a run executed itself (completed or failed, not reused). */
export const executedBlocks = (snapshot: { readonly nodes: Readonly<Record<string, { readonly status: string; readonly reusedFrom?: string | undefined }>> }): number =>
  Object.entries(snapshot.nodes).filter(([key, r]) =>
    !key.includes("#") && r.reusedFrom === undefined && (r.status === "completed" || r.status === "failed")
  ).length
