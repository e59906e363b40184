/**
 * An order as a saga, written in code: reserve stock, charge the card, ship through a child
 * workflow (its own durable run), confirm. Reserving and charging declare compensations; when
 * shipping fails, the run fails and the compensations run in reverse order: refund, then release.
 *
 * Runs on a throw-away embedded database (PGlite in a temporary directory): one order that ships,
 * one to an address the carrier refuses.
 *
 * Usage: node examples/dist/order-saga.js
 */
import { BlockError, Ripple, Runs, type RunStatus, type RunStore } from "@ripple/runtime"
import { Database, SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"

/**
 * What the outside world saw: every effect, keyed by `run/step` so that a compensation retried
 * after a crash (it ran, but its completion was not journaled yet) still happens once.
 */
export const ledger = new Map<string, string>()

const record = (key: string, what: string) => Effect.sync(() => ledger.has(key) ? undefined : void ledger.set(key, what))

const Order = Schema.Struct({ sku: Schema.String, quantity: Schema.Number, address: Schema.String })

/** The carrier's workflow, run as a child: pick the parcel, then print its label. */
const shipping = Ripple.workflow("shipping", { input: Schema.Struct({ parcel: Order }) })
  .step("pick", (_, { input }) => Effect.succeed(`${input.parcel.quantity} × ${input.parcel.sku}`))
  .step("label", {
    needs: ["pick"],
    handler: ({ pick }, { input }) =>
      /nowhere/i.test(input.parcel.address)
        ? Effect.fail(BlockError.permanent(`the carrier does not deliver to "${input.parcel.address}"`))
        : Effect.succeed(`${pick} to ${input.parcel.address}`)
  })
  .output("label")
  .build()

const built = <A>(result: Result.Result<A, Ripple.BuilderError>): A => {
  if (Result.isFailure(result)) throw new Error(`invalid workflow: ${result.failure._tag}`)
  return result.success
}

/** The order saga. */
export const order = built(
  Ripple.workflow("order", { input: Order })
    .step("reserve", {
      handler: (_, { input, runId }) => Effect.as(record(`${runId}/reserve`, `reserved ${input.quantity} × ${input.sku}`), `hold-${input.sku}`),
      compensate: (hold, { runId }) => record(`${runId}/reserve/undo`, `released ${hold}`)
    })
    .step("charge", {
      needs: ["reserve"],
      handler: (_, { input, runId }) => Effect.as(record(`${runId}/charge`, `charged ${input.quantity * 12} EUR`), input.quantity * 12),
      compensate: (amount, { runId }) => record(`${runId}/charge/undo`, `refunded ${amount} EUR`)
    })
    .step("parcel", { after: ["charge"], handler: (_, { input }) => Effect.succeed({ ...input }) })
    .child("ship", built(shipping), { input: { parcel: "parcel" } })
    .step("confirm", { needs: ["ship"], handler: ({ ship }) => Effect.succeed({ shipped: ship }) })
    .output("confirm")
    .build()
)

/** How an order ended. */
export interface Placed {
  readonly runId: string
  readonly status: RunStatus.Status
  readonly compensations: ReadonlyArray<RunStore.CompensationEntry>
  readonly children: ReadonlyArray<RunStore.Child>
  readonly messages: ReadonlyArray<string>
}

/** Places one order and reports how it ended: its status and its compensation report. */
export const place = (input: typeof Order.Type): Effect.Effect<Placed, Runs.RunsError | RunStore.RunStoreError, Runs.Runs> =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const { runId } = yield* runs.start(order.workflow, order.encodeInput(input))
    // The run suspends while its child ships; waiting again follows it to its end.
    let status = yield* runs.wait(runId)
    while (status === "suspended" || status === "running") {
      yield* Effect.sleep(10)
      status = yield* runs.wait(runId)
    }
    const info = yield* runs.status(runId)
    return { runId, status, compensations: info.compensations, children: info.children, messages: info.diagnostics.messages }
  })

const main = Effect.gen(function*() {
  const say = (text: string) => Effect.sync(() => console.log(text))
  for (const address of ["12 Quay Street, Dublin", "Nowhere Lane"]) {
    yield* say(`\n▶ order 2 × RIPPLE-MUG to ${address}`)
    const placed = yield* place({ sku: "RIPPLE-MUG", quantity: 2, address })
    yield* say(`  run ${placed.runId}: ${placed.status}; child run ${placed.children[0]?.runId ?? "-"} ${placed.children[0]?.status ?? ""}`)
    for (const [key, what] of ledger) if (key.startsWith(placed.runId)) yield* say(`  world: ${what}`)
    for (const entry of placed.compensations) yield* say(`  compensation of ${entry.node}: ${entry.status}`)
    for (const message of placed.messages) yield* say(`  note: ${message}`)
  }
})

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-order-saga-"))
  const layer = Runs.layer().pipe(
    Layer.provideMerge(Layer.mergeAll(SqlRunStore.layer, order.handlers)),
    Layer.provide(Database.layer({ dataDir }))
  )
  Effect.runPromise(main.pipe(Effect.provide(layer)))
    .catch((error: unknown) => {
      console.error(error)
      process.exitCode = 1
    })
    .finally(() => Fs.rmSync(dataDir, { recursive: true, force: true }))
}
