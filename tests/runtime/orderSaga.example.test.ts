/**
 * `examples/order-saga.ts` on the memory store: an order that ships completes with its child run;
 * one the carrier refuses fails, and the compensations undo the charge, then the reservation.
 */
import { assert, describe, it } from "@effect/vitest"
import { Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ledger, order, place } from "../../examples/order-saga.ts"

const layer = () => Runs.layer().pipe(Layer.provideMerge(Layer.mergeAll(RunStore.layerMemory, order.handlers)))

const world = (runId: string) => [...ledger].filter(([key]) => key.startsWith(`${runId}/`)).map(([, what]) => what)

describe("examples/order-saga", () => {
  it.live("an order that ships completes; its shipping ran as a child run", () =>
    Effect.gen(function*() {
      const placed = yield* place({ sku: "MUG", quantity: 2, address: "12 Quay Street" })
      assert.strictEqual(placed.status, "completed")
      assert.deepStrictEqual(placed.children.map((c) => c.status), ["completed"])
      assert.deepStrictEqual(placed.compensations, [])
      assert.deepStrictEqual(world(placed.runId), ["reserved 2 × MUG", "charged 24 EUR"])
      const store = yield* RunStore.RunStore
      assert.deepStrictEqual((yield* store.snapshot(placed.runId)).nodes["confirm"]?.output, { shipped: { label: "2 × MUG to 12 Quay Street" } })
    }).pipe(Effect.provide(layer())))

  it.live("an order the carrier refuses fails; the charge is refunded, then the stock released", () =>
    Effect.gen(function*() {
      const placed = yield* place({ sku: "MUG", quantity: 2, address: "Nowhere Lane" })
      assert.strictEqual(placed.status, "failed")
      assert.deepStrictEqual(placed.children.map((c) => c.status), ["failed"])
      assert.deepStrictEqual(placed.compensations.map((c) => [c.node, c.status]), [["charge", "completed"], ["reserve", "completed"]])
      assert.deepStrictEqual(world(placed.runId), ["reserved 2 × MUG", "charged 24 EUR", "refunded 24 EUR", "released hold-MUG"])
      assert.include(placed.messages.join("\n"), "the carrier does not deliver to \"Nowhere Lane\"")
    }).pipe(Effect.provide(layer())))
})
