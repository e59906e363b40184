/**
 * What every part of a `Runs` layer shares: the store and handlers, the executions of this process
 * (by run), the event hub, the waking lock, and this layer's lease identity.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type * as Engine from "../../Engine.ts"
import { Handlers } from "../../Handler.ts"
import * as Lease from "../../Lease.ts"
import type { RunEvent } from "../../RunEvent.ts"
import type * as Runs from "../../Runs.ts"
import type * as RunStatus from "../../RunStatus.ts"
import { type Lease as StoreLease, LeaseLost, type RunNotFound, RunStore, type RunStoreError, type StoreUnavailable } from "../../RunStore.ts"
import type * as Wake from "../../Wake.ts"

/**
 * An execution holding a lease, until the lease is released.
 *
 * @since 0.1.0
 */
export interface Held {
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly released: Effect.Effect<void>
}

/**
 * The shared state of one `Runs` layer.
 *
 * @since 0.1.0
 */
export interface State {
  readonly options: Runs.Options
  readonly store: RunStore["Service"]
  readonly handlers: Handlers["Service"]
  /** The layer's scope: executions and timers are forked in it, so closing the layer interrupts them. */
  readonly scope: Scope.Scope
  readonly context: Context.Context<RunStore | Handlers>
  /** A subscription to the event hub, counted: events go to the hub only while one is open (`publish`). */
  readonly subscribe: Effect.Effect<PubSub.Subscription<RunEvent>, never, Scope.Scope>
  /** A run's executor stays here until it parks with nothing kept to wake it (`Execute.executeHere`). */
  readonly executing: Map<string, Fiber.Fiber<RunStatus.Status, RunStoreError>>
  /** Runs whose current execution has not published its `RunFinished` yet: what `events` follows. */
  readonly announcing: Set<string>
  readonly controls: Map<string, Engine.Control>
  /** Timer fibers waking sleepers (`Wake.settle`). */
  readonly timers: Map<string, Fiber.Fiber<unknown, unknown>>
  /**
   * Executions holding a lease, until it is released (`executing` forgets a run when it lets go,
   * under the settling lock, just before). A fiber interrupted before its first step runs nothing,
   * its finalizers included: whoever interrupts an execution releases its lease too.
   */
  readonly leased: Map<string, Held>
  /**
   * The last lease this layer let go of, by run, until it would have expired (`release`): a
   * release that failed (`RunStore.release` ignores failures) leaves the lease held by this owner
   * with nothing here executing it, and `ownOrOwner` releases it again instead of waiting it out.
   */
  readonly letGo: Map<string, { readonly lease: StoreLease; readonly until: number }>
  /** The waking lock: two wakers must not both offer the event that wakes the same run. */
  readonly settling: Semaphore.Semaphore
  /** This layer's identity in leases. */
  readonly owner: string
  readonly leaseTerms: Lease.Terms
  /** This process executes no queued run; it executes others under leases of its own. */
  readonly self: Wake.Self
  readonly engineOptions: Engine.Options
  readonly publish: (event: RunEvent) => void
  /** Whether a subscription is open (`Engine.Execution.listening`: otherwise node events are not made). */
  readonly listening: () => boolean
}

/**
 * Builds the state of a layer; its leases are released when the layer's scope closes.
 *
 * @since 0.1.0
 */
export const make = (options: Runs.Options): Effect.Effect<State, never, RunStore | Handlers | Scope.Scope> =>
  Effect.gen(function*() {
    const hub = yield* PubSub.sliding<RunEvent>(options.eventBuffer ?? 4096)
    // Open subscriptions to `hub`. Counted before subscribing: an event published meanwhile finds
    // no subscriber, as it would without the count.
    let subscribers = 0
    const subscribe = Effect.andThen(
      Effect.acquireRelease(Effect.sync(() => subscribers++), () => Effect.sync(() => subscribers--)),
      PubSub.subscribe(hub)
    )
    const announcing = new Set<string>()
    const owner = options.owner ?? Lease.makeOwner("runs")
    const leased = new Map<string, Held>()
    yield* Effect.addFinalizer(() => Effect.forEach([...leased.values()], (held) => held.released, { discard: true }))
    return {
      options,
      store: yield* RunStore,
      handlers: yield* Handlers,
      scope: yield* Effect.scope,
      context: yield* Effect.context<RunStore | Handlers>(),
      subscribe,
      executing: new Map(),
      announcing,
      controls: new Map(),
      timers: new Map(),
      leased,
      letGo: new Map(),
      settling: yield* Semaphore.make(1),
      owner,
      leaseTerms: Lease.terms({ ttlMs: options.leaseMs, heartbeatMs: options.heartbeatMs, marginMs: options.marginMs }),
      self: { owner, worker: false },
      engineOptions: {
        concurrency: options.concurrency,
        tracing: options.tracing,
        cutoff: options.cutoff,
        loopCondition: options.loopCondition,
        limits: options.limits
      },
      publish: (event) => {
        // Forgotten before its last event goes out, so `events` never waits on an execution that has ended.
        if (event._tag === "RunFinished") announcing.delete(event.runId)
        // Nobody subscribed: the hub would drop the event (two events per node of every execution).
        if (subscribers > 0) PubSub.publishUnsafe(hub, event)
      },
      listening: () => subscribers > 0
    }
  })

/**
 * Releases a lease this layer is done with (nothing here uses it again), and keeps it in `letGo`
 * until it would have expired, in case the release failed.
 *
 * @since 0.1.0
 */
export const release = (state: State, lease: StoreLease): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (at) => {
    // Kept in the order they were let go of, so the expired ones are at the front.
    for (const [runId, { until }] of state.letGo) {
      if (until > at) break
      state.letGo.delete(runId)
    }
    state.letGo.delete(lease.runId)
    // Renewed at `at` at the latest: expired by `until` on this clock whatever the store kept.
    state.letGo.set(lease.runId, { lease, until: at + state.leaseTerms.ttlMs })
    return state.store.release(lease)
  })

/**
 * A write of the layer's own store, unfenced: never refused for a lease (only the writes of a
 * fenced store are), so its `LeaseLost` is taken out of its type.
 *
 * @since 0.1.0
 */
export const unfenced = <A, E, R>(write: Effect.Effect<A, E | LeaseLost, R>): Effect.Effect<A, Exclude<E, LeaseLost>, R> =>
  Effect.catchIf(write, (error): error is LeaseLost => error instanceof LeaseLost, Effect.die) as Effect.Effect<A, Exclude<E, LeaseLost>, R>

/**
 * `effect`, releasing `lease` if it fails: a lease taken for something that failed before its
 * execution started.
 *
 * @since 0.1.0
 */
export const releasing = <A, E, R>(state: State, lease: StoreLease, effect: Effect.Effect<A, E, R>) =>
  Effect.onError(effect, () => release(state, lease))

/**
 * The lease of a run this layer may execute now, or the other owner that holds it.
 *
 * @since 0.1.0
 */
export type Taken =
  | { readonly _tag: "Owned"; readonly lease: StoreLease }
  | { readonly _tag: "Held"; readonly owner: string; readonly expiresAt: number }

/**
 * Takes the lease of a run for this layer, or names the other owner holding it. Held here (an
 * execution letting go of the run, a child run about to be forked): waited for, then taken. Held
 * by this owner under a lease it let go of (its release failed): released again, then taken.
 *
 * @since 0.1.0
 */
export const ownOrOwner = (state: State, runId: string): Effect.Effect<Taken, RunNotFound | StoreUnavailable> =>
  Effect.gen(function*() {
    for (;;) {
      const taken = yield* Effect.result(Lease.take(state.store, runId, state.owner, state.leaseTerms.ttlMs))
      if (Result.isSuccess(taken)) {
        state.letGo.delete(runId)
        return { _tag: "Owned", lease: taken.success } as const
      }
      if (taken.failure._tag !== "LeaseHeld") return yield* Effect.fail(taken.failure)
      if (taken.failure.owner !== state.owner) {
        return { _tag: "Held", owner: taken.failure.owner, expiresAt: taken.failure.expiresAt } as const
      }
      const held = state.leased.get(runId)
      if (held !== undefined) {
        yield* Effect.andThen(Fiber.await(held.fiber), held.released)
        continue
      }
      // Nothing here executes a generation let go of: releasing it again (only it: the release
      // names its generation) cannot take the run from an execution, here or elsewhere.
      const stale = state.letGo.get(runId)
      if (stale !== undefined) {
        state.letGo.delete(runId)
        yield* state.store.release(stale.lease)
        continue
      }
      yield* Effect.yieldNow
    }
  })
