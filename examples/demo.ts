/**
 * The demo behind `npm start` (until the `ripple` CLI lands): run a workflow in memory, edit one
 * block, show the run-from-block plan, re-run from that block and show what was reused and why.
 *
 * Usage: node examples/dist/demo.js [workflow.json] [block to edit] [new value]
 */
import { Plan, Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Result from "effect/Result"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const here = fileURLToPath(new URL("..", import.meta.url))
const [file = `${here}support-triage.json`, edited = "signature", value = "Ripple support, weekend rota"] =
  process.argv.slice(2)

const decoded = Workflow.decode(JSON.parse(readFileSync(file, "utf8")))
if (Result.isFailure(decoded)) {
  console.error(`${file} is not a valid workflow: ${decoded.failure.message}`)
  process.exit(2)
}
const workflow = decoded.success
const input = { subject: "Login fails", body: "The sign-in page says my token expired.", tier: "free" }

// The same workflow with one block's `value` param changed, as a user would edit it in a UI.
const edit = (w: Workflow.Workflow): Workflow.Workflow => ({
  ...w,
  blocks: w.blocks.map((block) =>
    block.id === edited ? { ...block, params: { ...block.params, value } } : block
  )
})

const line = (text: string) => Effect.sync(() => console.log(text))

// Prints one line per node event until the run finishes.
const follow = (runs: Runs.Runs["Service"], runId: string) =>
  runs.events(runId).pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "NodeCompleted":
          return line(`  ✓ ${event.node}${event.decision === undefined ? "" : `  → ${event.decision}`}`)
        case "NodeReused":
          return line(`  ↺ ${event.node}  reused (${event.reasons.join(", ")})`)
        case "NodeSkipped":
          return line(`  · ${event.node}  skipped (branch not taken)`)
        case "NodeFailed":
          return line(`  ✗ ${event.node}  ${event.error.message}`)
        case "RunFinished":
          return line(`  run ${event.runId}: ${event.status}`)
        default:
          return Effect.void
      }
    })
  )

const program = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore

  yield* line(`▶ Full run of ${workflow.id} with ${JSON.stringify(input)}`)
  const first = yield* runs.start(workflow, input)
  yield* follow(runs, first.runId)
  const before = yield* store.snapshot(first.runId)

  const next = edit(workflow)
  yield* line(`\n✎ Edit: ${edited}.params.value = ${JSON.stringify(value)}`)
  const plan = yield* runs.plan(next, { target: edited })
  yield* line(`\n▶ Plan of a re-run from ${edited} (nothing executed yet):\n`)
  yield* line(Plan.explain(plan))
  yield* line(`\nMermaid:\n${Plan.toMermaid(plan)}`)

  yield* line(`\n▶ Re-run from ${edited}`)
  const second = yield* runs.runFrom(next, { target: edited })
  yield* follow(runs, second.runId)
  const after = yield* store.snapshot(second.runId)

  const outputOf = (snapshot: typeof before, node: string) => JSON.stringify(snapshot.nodes[node]?.output ?? null)
  yield* line(`\nObserved output before: ${outputOf(before, "outcome")}`)
  yield* line(`Observed output after:  ${outputOf(after, "outcome")}`)
  yield* line(`Re-executed ${plan.rerun.length} of ${plan.rerun.length + plan.reused.length} nodes.`)
})

const layer = Runs.layer().pipe(Layer.provideMerge(Layer.mergeAll(RunStore.layerMemory, Handler.layerBuiltins)))

Effect.runPromise(program.pipe(Effect.provide(layer))).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
