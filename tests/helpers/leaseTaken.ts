/**
 * A request that loses the lease it just took: a process here (`Runs`) takes a run's lease to act
 * on it (cancel, wake, unpause, resume), and another process, its clock ahead past that lease's
 * expiry, takes the lease before the request's first fenced write, then crashes (it never renews
 * it). Shared by tests/runtime/cancel.leaseLost.test.ts and tests/runtime/requests.leaseLost.test.ts,
 * on the memory store, PGlite and the real server; time is a `TestClock`.
 */
import type { Workflow } from "@ripple/core"
import { BlockError, Builtins, Handler, Runs, RunStore } from "@ripple/runtime"
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

/** What the test arms and reads: `steal` takes the next lease granted; `notified` counts `notify` calls. */
export interface Taking {
  steal: boolean
  notified: number
}

/** `store`, where once `taking.steal` is set the next lease granted is taken at once by another process, its clock at the lease's expiry. */
export const stolen = (store: RunStore.RunStore["Service"], taking: Taking): RunStore.RunStore["Service"] =>
  RunStore.RunStore.of({
    ...store,
    acquire: (runId, owner, terms) =>
      Effect.tap(store.acquire(runId, owner, terms), (lease) => {
        if (!taking.steal) return Effect.void
        taking.steal = false
        return store.acquire(runId, other, { ttlMs: leaseMs, at: lease.expiresAt })
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

/** Builds the process here over the `RunStore` in context (its `count` block `failing`, if given, fails its first call). */
export const here = (
  options: { readonly failing?: string | undefined; readonly cancelPollMs?: number | undefined } = {}
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
        Runs.layer({ leaseMs, cancelPollMs: options.cancelPollMs }).pipe(
          Layer.provideMerge(Layer.succeed(RunStore.RunStore, stolen(store, taking))),
          Layer.provideMerge(Handler.layer({ ...Builtins.handlers, count }))
        )
      ),
      (context) => Context.get(context, Runs.Runs)
    )
    return { runs, store, taking, started }
  })
