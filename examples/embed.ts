/**
 * Ripple inside an Effect app: a workflow with one custom Effect handler, stored durably in an
 * embedded PGlite database (swap the database layer for `Database.layer({ url })` to use a
 * PostgreSQL server, or `RunStore.layerMemory` for tests), events consumed as a Stream.
 *
 * Run it: `npx tsc -b && node examples/dist/embed.js`
 */
import { Workflow } from "@ripple/core"
import { BlockError, Handler, Runs } from "@ripple/runtime"
import { Database, SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const workflow: Workflow.Workflow = {
  id: "price-check",
  inputs: { sku: { type: "string", required: true } },
  blocks: [
    { id: "start", type: "trigger" },
    { id: "price", type: "lookupPrice", params: { sku: { $ref: "input.sku" } }, retry: { maxAttempts: 3 } },
    { id: "vat", type: "value", params: { value: 0.2 } },
    {
      id: "quote",
      type: "template",
      params: { template: "{{sku}} costs {{price}} (VAT {{vat}})", values: { sku: { $ref: "input.sku" }, price: { $ref: "blocks.price.output" }, vat: { $ref: "blocks.vat.output" } } }
    },
    { id: "answer", type: "response", params: { value: { $ref: "blocks.quote.output" } } }
  ],
  edges: [
    { source: "start", target: "price" },
    { source: "start", target: "vat" },
    { source: "price", target: "quote" },
    { source: "vat", target: "quote" },
    { source: "quote", target: "answer" }
  ]
}

// An app's own block type: any Effect, with typed failures the engine retries per the block's policy.
const handlers = Handler.layer({
  lookupPrice: (ctx) =>
    typeof ctx.inputs.sku === "string"
      ? Effect.succeed(ctx.inputs.sku.length * 10)
      : Effect.fail(new BlockError.BlockError({ message: "sku must be a string" }))
})

const dataDir = mkdtempSync(join(tmpdir(), "ripple-embed-"))
const database = Database.layer({ dataDir })
const ripple = Runs.layer().pipe(
  Layer.provide(Layer.mergeAll(SqlRunStore.layer, handlers)),
  Layer.provide(database)
)

const program = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  // Every run's events, as one Stream, for as long as this scope lives.
  const events = yield* runs.subscribe
  const printer = yield* events.pipe(
    Stream.runForEach((event) =>
      event._tag === "NodeCompleted" || event._tag === "NodeReused" || event._tag === "RunFinished"
        ? Effect.log(`${event._tag} ${"node" in event ? event.node : event.status}`)
        : Effect.void
    ),
    Effect.forkScoped
  )

  const first = yield* runs.start(workflow, { sku: "RIPPLE-1" })
  yield* runs.wait(first.runId)

  // Change VAT and re-run from that block: `price` (the expensive call) is reused.
  const edited = { ...workflow, blocks: workflow.blocks.map((b) => b.id === "vat" ? { ...b, params: { value: 0.25 } } : b) }
  const second = yield* runs.runFrom(edited, { target: "vat" })
  const status = yield* runs.wait(second.runId)
  yield* Effect.log(`re-run ${status}: executed ${second.plan.rerun.join(", ")}; reused ${second.plan.reused.join(", ")}`)
  yield* Fiber.interrupt(printer)
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(ripple)))
  .finally(() => rmSync(dataDir, { recursive: true, force: true }))
