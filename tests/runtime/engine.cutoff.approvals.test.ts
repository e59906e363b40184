/**
 * Approvals and waits are never cut off once something upstream of them re-ran with a different
 * output (issue 14, item 5): what the editor approved, or what a signal answered, is not what
 * reaches them any more, so they ask again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const layer = Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(Handler.layer(Builtins.handlers)))

const contentPipeline = Result.getOrThrow(Workflow.decode(JSON.parse(
  readFileSync(fileURLToPath(new URL("../../examples/content-pipeline.json", import.meta.url)), "utf8")
)))

/** `workflow` with the params of block `id` replaced. */
const withParams = (workflow: Workflow.Workflow, id: string, params: { readonly [key: string]: Workflow.Json }): Workflow.Workflow => ({
  ...workflow,
  blocks: workflow.blocks.map((b) => b.id === id ? { ...b, params } : b)
})

/** `a → gate → out`: `gate` an approval or a wait, `out` reads `a`. */
const gated = (value: number, gate: Workflow.Block): Workflow.Workflow => ({
  id: "gated",
  blocks: [
    { id: "a", type: "value", params: { value } },
    gate,
    { id: "out", type: "response", params: { value: { $ref: "blocks.a.output" } } }
  ],
  edges: [{ source: "a", target: "gate" }, { source: "gate", target: "out" }]
})

const approval: Workflow.Block = { id: "gate", type: "approval", params: { reason: "check a" } }
const wait: Workflow.Block = { id: "gate", type: "wait", params: { signal: "go" } }

/** A run of `before` taken through its gate by `open`, then a run-from of `after` from `target`. */
const rerun = (
  before: Workflow.Workflow,
  after: Workflow.Workflow,
  target: string,
  open: (runs: Runs.Runs["Service"], runId: string) => Effect.Effect<boolean, unknown>
) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const first = yield* runs.start(before)
    assert.include(["paused", "suspended"], yield* runs.wait(first.runId))
    assert.isTrue(yield* open(runs, first.runId))
    assert.strictEqual(yield* runs.wait(first.runId), "completed")
    const again = yield* runs.runFrom(after, { target, run: first.runId })
    const status = yield* runs.wait(again.runId)
    return { runs, runId: again.runId, plan: again.plan, status, snapshot: yield* store.snapshot(again.runId), reasons: yield* store.reasons(again.runId) }
  })

const approve = (node: string) => (runs: Runs.Runs["Service"], runId: string) => runs.approve(runId, node)

describe("Cutoff never reuses an approval or a wait whose upstream changed", () => {
  it.effect("content pipeline: an edited blogPost goes back to the editor before it is published", () =>
    Effect.gen(function*() {
      const blogPost = contentPipeline.blocks.find((b) => b.id === "blogPost")!
      const edited = withParams(contentPipeline, "blogPost", { ...blogPost.params, template: "## {{topic}}\n\n{{body}}" })
      const { plan, reasons, runId, runs, snapshot, status } = yield* rerun(contentPipeline, edited, "blogPost", approve("review"))
      assert.include(plan.rerun, "review")
      assert.strictEqual(status, "paused")
      assert.strictEqual(snapshot.nodes["review"]?.status, "paused")
      assert.notDeepEqual(reasons["review"], ["cutoff"])
      assert.isUndefined(snapshot.nodes["publish"])
      // Approved again, the edited post is published.
      assert.isTrue(yield* runs.approve(runId, "review"))
      assert.strictEqual(yield* runs.wait(runId), "completed")
      const published = (yield* Effect.flatMap(RunStore.RunStore, (store) => store.snapshot(runId))).nodes["publish"]?.output
      assert.match(JSON.stringify(published), /^"## incremental computation/)
    }).pipe(Effect.provide(layer)))

  it.effect("an approval downstream of a value that changed asks again", () =>
    Effect.gen(function*() {
      const { reasons, snapshot, status } = yield* rerun(gated(1, approval), gated(2, approval), "a", approve("gate"))
      assert.strictEqual(status, "paused")
      assert.strictEqual(snapshot.nodes["gate"]?.status, "paused")
      assert.notDeepEqual(reasons["gate"], ["cutoff"])
    }).pipe(Effect.provide(layer)))

  it.effect("a wait downstream of a value that changed waits again", () =>
    Effect.gen(function*() {
      const { snapshot, status } = yield* rerun(gated(1, wait), gated(2, wait), "a", (runs, runId) => runs.signal(runId, "go"))
      assert.strictEqual(status, "suspended")
      assert.strictEqual(snapshot.nodes["gate"]?.status, "waiting")
    }).pipe(Effect.provide(layer)))

  it.effect("an approval whose upstream re-ran with the same output is still cut off", () =>
    Effect.gen(function*() {
      const { reasons, snapshot, status } = yield* rerun(gated(1, approval), gated(1, approval), "a", approve("gate"))
      assert.strictEqual(status, "completed")
      assert.deepStrictEqual(reasons["gate"], ["cutoff"])
      assert.strictEqual(snapshot.nodes["out"]?.output, 1)
    }).pipe(Effect.provide(layer)))
})
