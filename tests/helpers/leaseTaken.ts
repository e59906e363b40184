/**
 * A request that loses the lease it just took: a process here (`Runs`) takes a run's lease to act
 * on it (cancel, wake, unpause, resume), and another process, its clock ahead past that lease's
 * expiry, takes the lease before the request's first fenced write: it then crashes (it never renews
 * it), or, a `Runs` process of its own, acts on the run under it (`Taking.by`). Shared by tests/runtime/cancel.leaseLost.test.ts and tests/runtime/requests.leaseLost.test.ts,
 * on the memory store, PGlite and the real server; time is a `TestClock`.
 */
import type { Workflow } from "@ripple/core"
import { BlockError, Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/** `a → w → b`: suspended on the signal `go` after `a`. */
export const waiting: Workflow.Workflow = {
  id: "lease-taken",
  blocks: [{ id: "a", type: "count" }, { id: "w", type: "wait", params: { signal: "go" } }, { id: "b", type: "count" }],
  edges: [{ source: "a", target: "w" }, { source: "w", target: "b" }]
}

/** The lease length of the process here and of the one taking the lease. */
export const leaseMs = 30_000

/** The owner of the lease taken from the request. */
export const other = "another process"

/**
 * What the test arms and reads: `steal` has the next lease granted taken at once, by `by` (given
 * the lease) if set, else by a bare `acquire` of another process at the lease's expiry;
 * `notified` counts `notify` calls.
 */
export interface Taking {
  steal: boolean
  by?: ((lease: RunStore.Lease) => Effect.Effect<unknown, unknown>) | undefined
  notified: number
}

/** `store`, where once `taking.steal` is set the next lease granted is taken at once by another process (see `Taking`). */
export const stolen = (store: RunStore.RunStore["Service"], taking: Taking): RunStore.RunStore["Service"] =>
  RunStore.RunStore.of({
    ...store,
    acquire: (runId, owner, terms) =>
      Effect.tap(store.acquire(runId, owner, terms), (lease) => {
        if (!taking.steal) return Effect.void
        taking.steal = false
        return taking.by !== undefined ? Effect.orDie(taking.by(lease)) : store.acquire(runId, other, { ttlMs: leaseMs, at: lease.expiresAt })
      }),
    notify: (runId) => Effect.andThen(Effect.sync(() => taking.notified++), store.notify(runId))
  })

/** The process here: `Runs` over the stolen store; `started` lists the `count` blocks started, `failing` fails its first call. */
export interface Here {
  readonly runs: Runs.Runs["Service"]
  readonly store: RunStore.RunStore["Service"]
  readonly taking: Taking
  readonly started: Array<string>
}

/**
 * Builds a process over the `RunStore` in context (its `count` block `failing`, if given, fails its
 * first call); `owner` names it in leases.
 */
export const here = (
  options: { readonly failing?: string | undefined; readonly cancelPollMs?: number | undefined; readonly owner?: string | undefined } = {}
): Effect.Effect<Here, unknown, RunStore.RunStore | Scope.Scope> =>
  Effect.gen(function*() {
    const taking: Taking = { steal: false, notified: 0 }
    const started: Array<string> = []
    const store = yield* RunStore.RunStore
    const count: Handler.Handler = (ctx) =>
      Effect.suspend(() => {
        started.push(ctx.node)
        return ctx.node === options.failing && started.filter((node) => node === ctx.node).length === 1
          ? Effect.fail(BlockError.permanent(`${ctx.node} fails once`))
          : Effect.succeed(1)
      })
    const runs = yield* Effect.map(
      Layer.build(
        Runs.layer({ leaseMs, cancelPollMs: options.cancelPollMs, owner: options.owner }).pipe(
          Layer.provideMerge(Layer.succeed(RunStore.RunStore, stolen(store, taking))),
          Layer.provideMerge(Handler.layer({ ...Builtins.handlers, count }))
        )
      ),
      (context) => Context.get(context, Runs.Runs)
    )
    return { runs, store, taking, started }
  })

/** The clock in context, read `ms` ahead (its timers as they are): another process's clock. */
export const ahead = (ms: number): Effect.Effect<Clock.Clock> =>
  Effect.map(Effect.gen(function*() { return yield* Clock.Clock }), (live: Clock.Clock): Clock.Clock => ({
    ...live,
    currentTimeMillisUnsafe: () => live.currentTimeMillisUnsafe() + ms,
    currentTimeNanosUnsafe: () => live.currentTimeNanosUnsafe() + BigInt(ms) * 1_000_000n,
    currentTimeMillis: Effect.sync(() => live.currentTimeMillisUnsafe() + ms),
    currentTimeNanos: Effect.sync(() => live.currentTimeNanosUnsafe() + BigInt(ms) * 1_000_000n)
  }))
