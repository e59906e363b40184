/**
 * Engine handlers that behave like the reference executor (`Model`) of `@ripple/core/testing`, and
 * helpers to run workflows on the engine against it. Shared by the engine property tests.
 */
import { assert } from "@effect/vitest"
import { Snapshot, type Workflow } from "@ripple/core"
import { Laws, Model } from "@ripple/core/testing"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** The seed of every modelled block. */
export const SEED = 7

/**
 * Handlers for the custom block types the arbitraries generate (`fn`): the reference executor's
 * seeded pure function of the block, its inputs and its loop/parallel context. Built-in types keep
 * their built-in handlers, which the reference executor implements from their documentation.
 */
export const modelHandlers = (): Record<string, Handler.Handler> => ({
  ...Builtins.handlers,
  fn: (ctx) => Effect.sync(() => Model.custom(SEED, ctx.block, ctx.inputs, { loop: ctx.loop, parallel: ctx.parallel }))
})

/** Runs `body` with a `Runs` layer over the model handlers (and the memory store). */
export const withModel = <A, E>(
  body: (current: { workflow: Workflow.Workflow }) => Effect.Effect<A, E, Runs.Runs | RunStore.RunStore>,
  options: Runs.Options = {},
  wrap: (handlers: Record<string, Handler.Handler>) => Record<string, Handler.Handler> = (h) => h
) => {
  const current = { workflow: { id: "none", blocks: [], edges: [] } as Workflow.Workflow }
  return body(current).pipe(
    Effect.provide(
      Runs.layer({ concurrency: 4, ...options }).pipe(
        Layer.provideMerge(RunStore.layerMemory),
        Layer.provideMerge(Handler.layer(wrap(modelHandlers())))
      )
    )
  )
}

/** Starts a run of `workflow`, waits for it and returns its snapshot. */
export const runOnEngine = (
  current: { workflow: Workflow.Workflow },
  start: Effect.Effect<Runs.Started, Runs.RunsError, Runs.Runs>,
  workflow: Workflow.Workflow
) =>
  Effect.gen(function*() {
    current.workflow = workflow
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const started = yield* start
    yield* runs.wait(started.runId)
    return { started, snapshot: yield* store.snapshot(started.runId) }
  })

/** Status, output (exactly, key order included) and decision of a record: what soundness compares. */
export const essence = (record: Snapshot.NodeRecord | undefined) =>
  record === undefined ? "absent" : `${record.status}|${record.decision ?? ""}|${JSON.stringify(record.output)}`

/** Executed in this run: completed or failed here, not copied from an earlier run. */
export const executedIn = (snapshot: Snapshot.Snapshot): Array<string> =>
  Object.entries(snapshot.nodes)
    .filter(([, r]) => r.reusedFrom === undefined && (r.status === "completed" || r.status === "failed"))
    .map(([id]) => id)
    .sort()

/** Whether a snapshot decodes (it is plain, well-formed JSON of the current schema version). */
export const decodes = (snapshot: Snapshot.Snapshot): boolean => Snapshot.decode(snapshot)._tag === "Success"

/**
 * Runs a workflow from scratch on the engine and asserts it equals the reference executor, instance
 * by instance (status, decision, output), loop and parallel scopes included.
 */
export const assertFullRunIsModel = async (workflow: Workflow.Workflow): Promise<void> => {
  const input = Laws.inputFor(workflow)
  const expected = Model.execute(workflow, { seed: SEED, input }).snapshot
  const { snapshot } = await Effect.runPromise(withModel((current) =>
    runOnEngine(current, Effect.flatMap(Runs.Runs, (runs) => runs.start(workflow, input)), workflow)
  ))
  assert.isTrue(decodes(snapshot))
  assert.strictEqual(snapshot.status, expected.status)
  const ids = new Set([...Object.keys(expected.nodes), ...Object.keys(snapshot.nodes)])
  for (const id of ids) assert.strictEqual(essence(snapshot.nodes[id]), essence(expected.nodes[id]), id)
  assert.deepStrictEqual(snapshot.loops, expected.loops)
  assert.deepStrictEqual(snapshot.parallels, expected.parallels)
}
