/**
 * A lease the process let go of but whose release failed (`RunStore.release` ignores failures) is
 * still held by this process's owner, with nothing here executing it. The next wake of the run
 * (a delivery, a timer) releases it again and executes the run at once: it neither waits for the
 * lease to expire nor asks the store for it over and over meanwhile. On the memory store (its
 * release dropped, the test clock standing still but for the timer), PGlite and PostgreSQL (its
 * release statement refused).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { Migrations, SqlRunStore } from "@ripple/sql"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as SqlClient from "effect/sql/SqlClient"
import { TestClock } from "effect/testing"
import * as TestDatabase from "../helpers/database.ts"
import * as LosingConnection from "../helpers/losingConnection.ts"

// Waits for `go`, then runs `after` once.
const waiting: Workflow.Workflow = {
  id: "let-go",
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "w", type: "wait", params: { signal: "go" } },
    { id: "after", type: "after", params: { value: { $ref: "blocks.w.output" } } }
  ],
  edges: [{ source: "trigger", target: "w" }, { source: "w", target: "after" }]
}

// Sleeps a second, then runs `after` once.
const sleeping: Workflow.Workflow = {
  id: "let-go-sleep",
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "s", type: "sleep", params: { ms: 1_000 } },
    { id: "after", type: "after", params: { value: 7 } }
  ],
  edges: [{ source: "trigger", target: "s" }, { source: "s", target: "after" }]
}

/** A workflow that parks, and what wakes it. */
interface Parked {
  readonly workflow: Workflow.Workflow
  readonly wake: (runs: Runs.Runs["Service"], runId: string) => Effect.Effect<void, unknown>
}

const signalled: Parked = {
  workflow: waiting,
  wake: (runs, runId) => Effect.map(runs.signal(runId, "go", 7), (delivered) => assert.isTrue(delivered))
}

// Its timer fires on the test clock.
const timed: Parked = { workflow: sleeping, wake: () => TestClock.adjust(1_000) }

// More tries of the lease than a wake needs (one refused, the one granted after the release): a
// wake spinning on the lease is stopped there rather than left to spin until it expires.
const spinning = 20

/** `store` with its `acquire` calls counted (and cut short past `spinning`). */
const counted = (store: RunStore.RunStore["Service"]) => {
  const acquires = { count: 0 }
  const port: RunStore.RunStore["Service"] = {
    ...store,
    acquire: (runId, owner, terms) =>
      Effect.suspend(() =>
        ++acquires.count > spinning ? Effect.die(new Error(`acquire called ${acquires.count} times`)) : store.acquire(runId, owner, terms)
      )
  }
  return { port, acquires }
}

/**
 * Starts `parked.workflow` on `store`, whose next release fails once `failRelease` was called
 * (`releaseFailed`: once it did), then wakes the run: the wake executes it with two tries of the
 * lease.
 */
const wakesAtOnce = (
  parked: Parked,
  store: RunStore.RunStore["Service"],
  failRelease: () => void,
  releaseFailed: Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const { acquires, port } = counted(store)
    const executed: Array<unknown> = []
    const after: Handler.Handler = (ctx) => Effect.sync(() => executed.push(ctx.inputs["value"]))
    const context = yield* Layer.build(
      Runs.layer({ owner: "here" }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, port)),
        Layer.provideMerge(Handler.layer({ ...Builtins.handlers, after }))
      )
    )
    const runs = Context.get(context, Runs.Runs)
    failRelease()
    const { runId } = yield* runs.start(parked.workflow)
    assert.strictEqual(yield* runs.wait(runId), "suspended")
    yield* releaseFailed
    // The execution let go of the run but its lease stayed: this process's own, not expired.
    assert.strictEqual((yield* store.getRun(runId)).lease?.owner, "here")
    const before = acquires.count
    yield* parked.wake(runs, runId)
    assert.strictEqual(yield* runs.wait(runId), "completed")
    // Refused once (its own stale lease), granted once after releasing it again.
    assert.strictEqual(acquires.count - before, 2)
    assert.deepStrictEqual(executed, [7])
  }).pipe(Effect.scoped)

describe("a lease let go of whose release failed, memory store", () => {
  for (const [woken, parked] of [["a delivery", signalled], ["a timer", timed]] as const) {
    it.effect(`the next wake (${woken}) releases it again and executes the run without waiting for its expiry`, () =>
      Effect.gen(function*() {
        const store = yield* RunStore.makeMemory
        let failing = 0
        // A release that fails is ignored: dropping it is what the store does then.
        const dropping: RunStore.RunStore["Service"] = {
          ...store,
          release: (lease) => Effect.suspend(() => failing > 0 ? Effect.sync(() => failing--) : store.release(lease))
        }
        yield* wakesAtOnce(parked, dropping, () => failing = 1, Effect.sync(() => assert.strictEqual(failing, 0)))
      }))
  }
})

// Not retried: one refused statement fails the release.
const policy = Schedule.recurs(0)

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`a lease let go of whose release failed, ${backend}`, (it) => {
    it.effect("the next wake releases it again and executes the run without waiting for its expiry", () =>
      Effect.gen(function*() {
        yield* Migrations.run
        const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
        const sqlStore = yield* SqlRunStore.make.pipe(
          Effect.provideService(SqlClient.SqlClient, losing.client),
          Effect.provideService(RunStore.RetryPolicy, policy)
        )
        const releases = (sql: string) => sql.includes("SET lease_owner = NULL")
        yield* wakesAtOnce(
          signalled,
          sqlStore.store,
          () => losing.refuse(releases, 1),
          Effect.gen(function*() {
            while (losing.lost() === 0) yield* Effect.sleep("5 millis")
          })
        )
      }).pipe(Effect.provide(TestDatabase.layer)))
  })
}
