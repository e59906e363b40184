/**
 * One owner, for a cancelled parent's child runs: once a parent run has ended `cancelled`, its
 * unfinished child runs are asked to cancel durably, whoever ended the parent and whether or not
 * the process that asked for the cancel is still there to follow the run tree down. The child's
 * owner then starts no block of it and ends it `cancelled`. Two or three `Runs` layers over one
 * store stand for processes (the memory store, PGlite and the real server); every handler start,
 * and the moments the parent's cancel was recorded and the parent ended, go to one trace, in the
 * order they happened.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import * as TestDatabase from "../helpers/database.ts"

/** `k1` holds until the test opens it; `k2` would start after it. */
const kid: Workflow.Workflow = {
  id: "cancelled-parent-kid",
  blocks: [{ id: "k1", type: "held" }, { id: "k2", type: "count" }],
  edges: [{ source: "k1", target: "k2" }]
}

/** The child `sub` and the parent's own `slow` run side by side: the parent is running while its child is. */
const busyParent: Workflow.Workflow = {
  id: "cancelled-parent-busy",
  blocks: [
    { id: "slow", type: "slow" },
    { id: "sub", type: "child", params: { workflow: kid as unknown as Workflow.Json } }
  ],
  edges: []
}

/** Only the child `sub`: the parent suspends awaiting it, and nobody executes the parent meanwhile. */
const waitingParent: Workflow.Workflow = {
  id: "cancelled-parent-waiting",
  blocks: [{ id: "sub", type: "child", params: { workflow: kid as unknown as Workflow.Json } }],
  edges: []
}

/** What happened, in order: `start <process> <node>`, `cancel recorded`, `parent cancelled`. */
type Trace = Array<string>

/** How a test moves time on (the test clock on the memory store, the live one on SQL stores) and how long leases last. */
interface Time {
  readonly advance: (ms: number) => Effect.Effect<void>
  readonly leaseMs: number
}

/**
 * A `Runs` over `store`, built in `scope` (closing it is the process going away): `held` waits for
 * `open`, `slow` never ends.
 */
const processOver = (
  name: string,
  leaseMs: number,
  store: RunStore.RunStore["Service"],
  trace: Trace,
  open: Deferred.Deferred<void>,
  scope: Scope.Scope
) =>
  Effect.gen(function*() {
    const starting = (output: Effect.Effect<Handler.Output>): Handler.Handler => (ctx) => {
      trace.push(`start ${name} ${ctx.node}`)
      return output
    }
    const handlers: Record<string, Handler.Handler> = {
      ...Builtins.handlers,
      held: starting(Effect.as(Deferred.await(open), 1)),
      slow: starting(Effect.never),
      count: starting(Effect.succeed(1))
    }
    const context = yield* Layer.buildWithScope(
      Runs.layer({ leaseMs, cancelPollMs: 20, owner: name }).pipe(
        Layer.provideMerge(Layer.succeed(RunStore.RunStore, store)),
        Layer.provideMerge(Handler.layer(handlers))
      ),
      scope
    )
    return Context.get(context, Runs.Runs)
  })

/** Moves time on until `done` holds (at most 500 steps of `ms`). */
const until = (time: Time, ms: number, done: () => Effect.Effect<boolean, unknown>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && !(yield* done()); i++) yield* time.advance(ms)
    assert.isTrue(yield* done())
  })

/** All a process does that records the parent's cancel and then goes away: nobody follows the run tree down. */
const recordCancel = (parentId: string, store: RunStore.RunStore["Service"], trace: Trace) =>
  Effect.gen(function*() {
    yield* store.requestCancel(parentId, yield* Clock.currentTimeMillis)
    trace.push("cancel recorded")
    yield* store.notify(parentId)
  })

/** What the trace holds after `mark`. */
const after = (trace: Trace, mark: string): Trace => trace.slice(trace.indexOf(mark) + 1)

/**
 * Process `owner` starts `workflow` and its child enters `k1`; `cancelParent` cancels the parent
 * some way that leaves nobody to cancel its child; once the parent ended `cancelled`, `k1` is let
 * go. Returns the trace, the store and the child once the owner stopped executing it.
 */
const childOfCancelled = (
  workflow: Workflow.Workflow,
  time: Time,
  cancelParent: (
    parentId: string,
    setup: { readonly store: RunStore.RunStore["Service"]; readonly trace: Trace }
  ) => Effect.Effect<void, unknown, Scope.Scope>
) =>
  Effect.gen(function*() {
    const store = yield* RunStore.RunStore
    const trace: Trace = []
    const open = yield* Deferred.make<void>()
    const owner = yield* processOver("owner", time.leaseMs, store, trace, open, yield* Effect.scope)
    const { runId } = yield* owner.start(workflow)
    yield* until(time, 1, () => Effect.succeed(trace.includes("start owner k1")))
    const [child] = yield* store.children(runId)
    assert.isDefined(child)
    yield* cancelParent(runId, { store, trace })
    yield* until(time, 20, () => Effect.map(store.getRun(runId), (run) => run.status === "cancelled"))
    trace.push("parent cancelled")
    yield* Deferred.succeed(open, undefined)
    yield* until(time, 20, () => Effect.map(store.getRun(child!.runId), (run) => RunStore.consumesCancel.includes(run.status)))
    yield* owner.wait(child!.runId)
    yield* time.advance(1_000)
    return { trace, store, childId: child!.runId }
  })

/** Registers a test whose body gets how to move time on, on the store it runs on. */
type Register = (name: string, body: (time: Time) => Effect.Effect<void, unknown, RunStore.RunStore | Scope.Scope>) => void

const childTests = (test: Register) => {
  test("a parent its owner cancels on a request recorded by a process that then went away: its running child starts nothing more and ends cancelled", (time) =>
    Effect.gen(function*() {
      const { childId, store, trace } = yield* childOfCancelled(busyParent, time, (parentId, { store, trace }) =>
        Effect.andThen(
          until(time, 1, () => Effect.succeed(trace.includes("start owner slow"))),
          recordCancel(parentId, store, trace)
        ))
      assert.deepStrictEqual(after(trace, "cancel recorded"), ["parent cancelled"])
      assert.strictEqual((yield* store.getRun(childId)).status, "cancelled")
    }))

  test("a waiting parent whose cancel was only recorded (the canceller went away before it took the lease): its running child starts nothing more and ends cancelled, and the parent with it", (time) =>
    Effect.gen(function*() {
      const { childId, store, trace } = yield* childOfCancelled(waitingParent, time, (parentId, { store, trace }) =>
        Effect.andThen(
          until(time, 1, () => Effect.map(store.getRun(parentId), (run) => run.status === "suspended")),
          // Nobody executes the parent, and nobody will take its lease to end it.
          recordCancel(parentId, store, trace)
        ))
      assert.deepStrictEqual(after(trace, "cancel recorded"), ["parent cancelled"])
      assert.strictEqual((yield* store.getRun(childId)).status, "cancelled")
    }))

  test("a canceller that goes away right after it ended a waiting parent leaves its running child asked to cancel: it starts nothing more and ends cancelled", (time) =>
    Effect.gen(function*() {
      const { childId, store, trace } = yield* childOfCancelled(waitingParent, time, (parentId, { store, trace }) =>
        Effect.gen(function*() {
          yield* until(time, 1, () => Effect.map(store.getRun(parentId), (run) => run.status === "suspended"))
          const gone = yield* Deferred.make<void>()
          // The canceller goes away where it would turn to the parent's children.
          const dying: RunStore.RunStore["Service"] = {
            ...store,
            requestCancel: (runId, at) => Effect.tap(store.requestCancel(runId, at), () => Effect.sync(() => trace.push("cancel recorded"))),
            children: () => Effect.andThen(Deferred.succeed(gone, undefined), Effect.never)
          }
          const scope = yield* Scope.make()
          const canceller = yield* processOver("canceller", time.leaseMs, dying, trace, yield* Deferred.make<void>(), scope)
          const cancelling = yield* Effect.forkChild(canceller.cancel(parentId))
          yield* until(time, 20, () => Deferred.isDone(gone))
          yield* Fiber.interrupt(cancelling)
          yield* Scope.close(scope, Exit.void)
        }))
      assert.deepStrictEqual(after(trace, "cancel recorded"), ["parent cancelled"])
      assert.strictEqual((yield* store.getRun(childId)).status, "cancelled")
    }))
}

describe("a cancelled parent's child runs, memory store", () => {
  childTests((name, body) =>
    it.effect(name, () => Effect.provide(Effect.scoped(body({ advance: (ms) => TestClock.adjust(ms), leaseMs: 6_000 })), RunStore.layerMemory)))
})

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`a cancelled parent's child runs on ${backend}`, (it) => {
    childTests((name, body) =>
      it.effect(name, () =>
        Effect.provide(
          Effect.scoped(body({ advance: (ms) => Effect.sleep(ms), leaseMs: 3_000 })),
          Layer.provideMerge(SqlRunStore.layer, TestDatabase.layer)
        )))
  })
}
