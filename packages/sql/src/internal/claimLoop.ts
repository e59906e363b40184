/**
 * A worker's claim loop: claims queued runs while it has room (woken by notifications, else every
 * `pollMs`), executes each under its lease, sweeps for unheard child runs every few polls, and on
 * shutdown lets executions finish for a grace period, then releases and stops the rest.
 */
import { type Handler, Lease, type RunStore } from "@ripple/runtime"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Database from "../Database.ts"
import { channel, type Claimed } from "../SqlRunStore.ts"
import * as Listener from "./listener.ts"
import { notify } from "./queue.ts"
import * as WorkerChildren from "./workerChildren.ts"
import type { WorkerEnv } from "./workerEnv.ts"
import * as WorkerExecution from "./workerExecution.ts"

/** How often and how much a worker claims. */
export interface LoopOptions {
  readonly concurrency: number
  readonly leaseMs: number
  readonly heartbeatMs: number | undefined
  readonly marginMs: number | undefined
  readonly pollMs: number
  readonly shutdownGraceMs: number
}

/** Starts the claim loop of a worker in the current scope; returns what the `Worker` service exposes. */
export const start = (env: WorkerEnv, options: LoopOptions): Effect.Effect<{
  readonly active: Effect.Effect<ReadonlyArray<string>>
  readonly kick: Effect.Effect<void>
}, never, Scope.Scope | Handler.Handlers> =>
  Effect.gen(function*() {
    const { db, owner, sqlStore } = env
    const { concurrency, leaseMs, pollMs } = options
    const graceMs = options.shutdownGraceMs
    const leaseTerms = Lease.terms({ ttlMs: leaseMs, heartbeatMs: options.heartbeatMs, marginMs: options.marginMs })
    const executing = new Map<string, { readonly lease: RunStore.Lease; readonly fiber: Fiber.Fiber<void> }>()
    let stopping = false
    let wake: (() => void) | undefined
    const kick = () => {
      const resume = wake
      wake = undefined
      resume?.()
    }
    const children = WorkerChildren.make(env)
    const { execute, release, settle } = WorkerExecution.make(env, children.spawnFor)
    const { notifyParent, unheard } = children

    const start = (claimed: Claimed) =>
      Effect.gen(function*() {
        const lease = claimed.lease
        sqlStore.prime(claimed.id, claimed.revision, claimed.machine)
        const fiber = yield* Lease.hold(sqlStore.store, lease, leaseTerms, (fenced, control) => execute(claimed, fenced, control)).pipe(
          // Only a child run has a parent to tell (one read fewer per run for the others).
          Effect.onExit((exit) => Effect.andThen(settle(lease, exit), claimed.parent_run === null ? Effect.void : notifyParent(claimed.id))),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => {
            executing.delete(claimed.id)
            kick()
          })),
          Effect.forkDetach
        )
        executing.set(claimed.id, { lease, fiber })
      })

    const sweepMs = pollMs * 5
    let swept = 0
    const loop = Effect.gen(function*() {
      while (!stopping) {
        if (Date.now() - swept >= sweepMs) {
          swept = Date.now()
          yield* Effect.catchCause(unheard, (cause) => Effect.logWarning("looking for unheard child runs failed", cause))
        }
        const free = concurrency - executing.size
        if (free > 0) {
          const at = yield* Clock.currentTimeMillis
          const claimed = yield* Effect.catchCause(sqlStore.claim(owner, { ttlMs: leaseMs, at }, free), (cause) =>
            Effect.as(Effect.logWarning("claiming runs failed", cause), [] as ReadonlyArray<Claimed>))
          for (const run of claimed) yield* start(run)
          // A full batch suggests more work is waiting.
          if (claimed.length === free) continue
        }
        yield* Effect.raceFirst(
          Effect.sleep(pollMs),
          Effect.callback<void>((resume) => {
            wake = () => resume(Effect.void)
          })
        )
      }
    })

    // LISTEN is active before the worker is returned; a listener lost with its connection is set up
    // again (polling covers the gap, and a kick after listening again catches what it missed).
    const kicked = Effect.sync(kick)
    yield* Listener.keep(db, channel, { onPayload: () => kicked, onAgain: kicked, retryMs: pollMs })
    yield* Effect.forkScoped(loop)

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        stopping = true
        kick()
        const fibers = () => [...executing.values()].map((e) => e.fiber)
        yield* Effect.timeoutOrElse(Fiber.awaitAll(fibers()), {
          duration: graceMs,
          orElse: () => Effect.void
        })
        // Released first, then stopped: whatever the interrupted executions still try to write is fenced out.
        const left = [...executing.values()]
        yield* Effect.forEach(left, (e) => release(e.lease), { discard: true })
        yield* Fiber.interruptAll(left.map((e) => e.fiber))
        if (left.length > 0) yield* Effect.ignore(notify("released").pipe(Effect.provideService(Database.Database, db)))
      })
    )

    return { active: Effect.sync(() => [...executing.keys()]), kick: Effect.sync(kick) }
  })
