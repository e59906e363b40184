/**
 * Engine handlers that behave like the reference executor (`Model`) of `@ripple/core/testing`, and
 * helpers to run workflows on the engine against it. Shared by the engine property tests.
 */
import { Fingerprint, Snapshot, type Workflow } from "@ripple/core"
import { Model } from "@ripple/core/testing"
import { Engine, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

type Json = Workflow.Json

/** The seed of every modelled block. */
export const SEED = 7

const hashInt = (value: Json): number => Number.parseInt(Fingerprint.hash(value).slice(0, 8), 16)

/**
 * Handlers that behave like the reference executor's blocks: `value` outputs its value, `response`
 * its inputs, every other block a seeded pure function of its definition and inputs. Routers choose among the
 * distinct handles of their outgoing edges, so they read the workflow being run from `current`.
 */
export const modelHandlers = (current: { workflow: Workflow.Workflow }): Record<string, Handler.Handler> => {
  const generic: Handler.Handler = (ctx) => Effect.sync(() => Model.blockOutput(SEED, Fingerprint.ofBlock(ctx.block), ctx.inputs))
  return {
    trigger: generic,
    value: (ctx) => Effect.succeed(ctx.inputs["value"] ?? null),
    template: generic,
    fn: generic,
    response: (ctx) => Effect.succeed(ctx.inputs),
    condition: (ctx) =>
      Effect.sync(() => {
        const definition = Fingerprint.ofBlock(ctx.block)
        return Handler.decide(hashInt([definition, ctx.inputs]) % 2 === 0 ? "true" : "false", Model.blockOutput(SEED, definition, ctx.inputs))
      }),
    router: (ctx) =>
      Effect.sync(() => {
        const definition = Fingerprint.ofBlock(ctx.block)
        const output = Model.blockOutput(SEED, definition, ctx.inputs)
        const handles = [...new Set(current.workflow.edges.flatMap((e) => e.source === ctx.block.id && e.handle !== undefined ? [e.handle] : []))].sort()
        return handles.length === 0 ? output : Handler.decide(handles[hashInt([definition, ctx.inputs]) % handles.length]!, output)
      })
  }
}

/** The reference executor's `while` rule: continue unless the hash of (definition, condition, iteration) is divisible by 3. */
export const modelLoopCondition: Engine.LoopCondition = ({ condition, definition, iteration }) =>
  hashInt([definition, condition, iteration]) % 3 !== 0

/** Runs `body` with a `Runs` layer over the model handlers (and the memory store). */
export const withModel = <A, E>(
  body: (current: { workflow: Workflow.Workflow }) => Effect.Effect<A, E, Runs.Runs | RunStore.RunStore>,
  options: Runs.Options = {},
  wrap: (handlers: Record<string, Handler.Handler>) => Record<string, Handler.Handler> = (h) => h
) => {
  const current = { workflow: { id: "none", blocks: [], edges: [] } as Workflow.Workflow }
  return body(current).pipe(
    Effect.provide(
      Runs.layer({ concurrency: 4, loopCondition: modelLoopCondition, ...options }).pipe(
        Layer.provideMerge(RunStore.layerMemory),
        Layer.provideMerge(Handler.layer(wrap(modelHandlers(current))))
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

/** Status, output (by fingerprint) and decision of a record: what soundness compares. */
export const essence = (record: Snapshot.NodeRecord | undefined) =>
  record === undefined
    ? "absent"
    : `${record.status}|${record.decision ?? ""}|${record.output === undefined ? "" : Fingerprint.hash(record.output)}`

/** Executed in this run: completed or failed here, not copied from an earlier run. */
export const executedIn = (snapshot: Snapshot.Snapshot): Array<string> =>
  Object.entries(snapshot.nodes)
    .filter(([, r]) => r.reusedFrom === undefined && (r.status === "completed" || r.status === "failed"))
    .map(([id]) => id)
    .sort()

/** Whether a snapshot decodes (it is plain, well-formed JSON of the current schema version). */
export const decodes = (snapshot: Snapshot.Snapshot): boolean => Snapshot.decode(snapshot)._tag === "Success"
