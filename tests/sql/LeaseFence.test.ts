/**
 * Self-fencing behind a slow write (PGlite and the real server): worker `a` executes a queued run
 * with a handler in flight (`hold`) while the write that journals the start of another block (`y`)
 * outlasts the lease, and `a`'s renewals wait behind it (as they wait for the run row's lock on
 * PostgreSQL). `a` stops the handler before its lease expires — while the write still waits, which
 * the engine never cuts short — and starts nothing more; once the write went through, `a` leaves the
 * run running (not failed) for the next claim, and worker `b` claims it and is its only executor: it
 * runs `hold` again and completes the run with the outputs of a run without faults.
 *
 * The write is held by the test, not by a lock (PGlite is one session); the time it takes is the
 * live clock's, and every step waits for an event (`waitFor`), never for a duration.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Handler, RunStore } from "@ripple/runtime"
import { SqlRunStore, Worker } from "@ripple/sql"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"
import { waitFor } from "../helpers/workerProcess.ts"

/** `hold` beside `x → y`: `hold` holds until the test opens it. */
const workflow: Workflow.Workflow = {
  id: "fence-behind-write",
  blocks: [
    { id: "hold", type: "hold" },
    { id: "x", type: "step" },
    { id: "y", type: "step", params: { prev: { $ref: "blocks.x.output" } } }
  ],
  edges: [{ source: "x", target: "y" }]
}

/** The same with `hold` in a loop of one iteration: a handler of a nested scope instance, its loop a unit of the top one. */
const looped: Workflow.Workflow = {
  ...workflow,
  id: "fence-behind-write-loop",
  loops: [{ id: "once", kind: "count", count: 1, body: ["hold"] }]
}

const ttlMs = 1_000

/** What both workers' handlers share: one trace of starts and interruptions, and running instances per block. */
interface Shared {
  readonly trace: Array<string>
  readonly running: Map<string, number>
  most: number
  readonly open: Deferred.Deferred<void>
  readonly holding: Deferred.Deferred<void>
}

const handlersOf = (name: string, shared: Shared) => {
  const counted = <A>(node: string, body: Effect.Effect<A>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        shared.trace.push(`${name} started ${node}`)
        const now = (shared.running.get(node) ?? 0) + 1
        shared.running.set(node, now)
        shared.most = Math.max(shared.most, now)
      }),
      () => body,
      () => Effect.sync(() => shared.running.set(node, shared.running.get(node)! - 1))
    ).pipe(Effect.onInterrupt(() => Effect.sync(() => shared.trace.push(`${name} interrupted ${node}`))))
  return Handler.layer({
    hold: (ctx) => counted(ctx.block.id, Effect.andThen(Deferred.succeed(shared.holding, undefined), Effect.as(Deferred.await(shared.open), 1))),
    // `x` ends once `hold` runs, so the write of `y`'s start comes after `hold` started.
    step: (ctx) =>
      counted(
        ctx.block.id,
        Effect.andThen(ctx.block.id === "x" ? Deferred.await(shared.holding) : Effect.void, Effect.sync(() => ((ctx.inputs["prev"] as number | undefined) ?? 0) + 1))
      )
  })
}

/** `store` whose write journaling `y`'s start waits for `gate`, and whose renewals wait behind that write. */
const slowWrite = (
  store: RunStore.RunStore["Service"],
  gate: Deferred.Deferred<void>,
  write: { waiting: boolean }
): RunStore.RunStore["Service"] =>
  RunStore.RunStore.of({
    ...store,
    fenced: (lease) => slowWrite(store.fenced(lease), gate, write),
    journal: (runId, entries) =>
      entries.some((entry) => entry._tag === "Started" && entry.node === "y")
        ? Effect.andThen(
          Effect.sync(() => write.waiting = true),
          Effect.ensuring(Effect.andThen(Deferred.await(gate), store.journal(runId, entries)), Effect.sync(() => write.waiting = false))
        )
        : store.journal(runId, entries),
    renew: (lease, terms) => Effect.suspend(() => write.waiting ? Effect.andThen(Deferred.await(gate), store.renew(lease, terms)) : store.renew(lease, terms))
  })

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`${backend}: a journal write that outlasts the lease`, (it) => {
    for (const [where, submitted] of [["at the top level", workflow], ["in a loop", looped]] as const) {
      it.effect(`the holder stops its handler in flight (${where}) before the lease expires, and the worker that claims the run after is its only executor`, () => {
        // Let through however the test ends, so that a failed assertion leaves no write waiting.
        const gate = Deferred.makeUnsafe<void>()
        return Effect.gen(function*() {
          const shared: Shared = { trace: [], running: new Map(), most: 0, open: yield* Deferred.make<void>(), holding: yield* Deferred.make<void>() }
          const write = { waiting: false }
          const sqlStore = yield* SqlRunStore.SqlRunStore
          const runId = yield* Worker.submit(submitted)

          // Worker `a` claims the run (the only one it claims) and sees the store through the slow write.
          let claims = 0
          const slowed: SqlRunStore.SqlRunStore["Service"] = {
            ...sqlStore,
            store: slowWrite(sqlStore.store, gate, write),
            claim: (owner, terms, limit) => claims++ === 0 ? sqlStore.claim(owner, terms, limit) : Effect.succeed([])
          }
          const a = yield* Worker.make({ owner: "a", leaseMs: ttlMs, pollMs: 50 }).pipe(
            Effect.provide(handlersOf("a", shared)),
            Effect.provideService(SqlRunStore.SqlRunStore, slowed)
          )
          yield* waitFor(Effect.sync(() => shared.trace.includes("a started hold")), "a executing the run")
          const lease = (yield* sqlStore.store.getRun(runId)).lease!
          assert.strictEqual(lease.owner, "a")

          // `hold` runs, `x` completed, and the write of `y`'s start waits: `a`'s handler is stopped
          // while it still waits, before the lease expires, and nobody took the run over yet.
          yield* waitFor(Effect.sync(() => shared.trace.includes("a interrupted hold")), "a's handler stopped", 20_000)
          assert.isTrue(write.waiting, "stopped while the write still waits")
          assert.isBelow(yield* Clock.currentTimeMillis, lease.expiresAt, "stopped before the lease expired")
          assert.deepStrictEqual((yield* sqlStore.store.getRun(runId)).lease, lease)
          assert.strictEqual(shared.running.get("hold"), 0)

          // The write goes through; `a` starts nothing more (not `y`) and lets the run go, still running (not failed).
          yield* Deferred.succeed(gate, undefined)
          yield* waitFor(Effect.map(a.active, (active) => active.length === 0), "a letting the run go")
          assert.strictEqual((yield* sqlStore.store.getRun(runId)).status, "running")

          // Worker `b` claims the run (`a` released it, or its lease expired), and completes it.
          yield* Deferred.succeed(shared.open, undefined)
          yield* Worker.make({ owner: "b", leaseMs: ttlMs, pollMs: 50 }).pipe(Effect.provide(handlersOf("b", shared)))
          yield* waitFor(Effect.map(sqlStore.store.getRun(runId), (run) => run.status === "completed"), "b completes the run")
          assert.deepStrictEqual(
            shared.trace.filter((t) => t.startsWith("a ")).sort(),
            ["a interrupted hold", "a started hold", "a started x"]
          )
          // Every start of `b` came after `a` stopped its handler.
          const stopped = shared.trace.indexOf("a interrupted hold")
          assert.isTrue(shared.trace.every((t, i) => !t.startsWith("b ") || i > stopped))
          assert.deepStrictEqual(shared.trace.filter((t) => t.startsWith("b ")).sort(), ["b started hold", "b started y"])
          assert.strictEqual(shared.most, 1, "never two instances of a block at once")
          const snapshot = yield* sqlStore.store.snapshot(runId)
          assert.isTrue(Object.values(snapshot.nodes).every((record) => record.status === "completed"))
          assert.deepStrictEqual([snapshot.nodes["x"]?.output, snapshot.nodes["y"]?.output], [1, 2])
        }).pipe(
          Effect.ensuring(Deferred.succeed(gate, undefined)),
          Effect.scoped,
          Effect.provide(Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer))
        )
      })
    }
  })
}
