/**
 * Child runs executed here: a `child` block's run is started as a full run linked to its parent
 * (under this layer's lease, like any run); when it ends its result goes to the parent, which
 * wakes; resuming a crashed parent resumes its crashed children too.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Child from "../../Child.ts"
import type * as Engine from "../../Engine.ts"
import { isStoreUnavailable, type RunStoreError, type StoreUnavailable } from "../../RunStore.ts"
import type { PlanFailed } from "./errors.ts"
import * as Execute from "./execute.ts"
import * as Start from "./start.ts"
import { ownOrOwner, type State } from "./state.ts"
import * as Waking from "./wake.ts"

/**
 * The `Engine.Spawn` of a parent run executing here: a saved version (by id) or an inline
 * workflow, started as a full run linked to its parent; one the node instance started before (and
 * that can still succeed) is reused.
 *
 * @since 0.1.0
 */
export const spawnFor = (state: State, parentRun: string): Engine.Spawn =>
  Child.spawner(state.store, parentRun, (child, input, node) =>
    Effect.flatMap(
      Effect.result(Effect.flatMap(
        Start.planFrom(state, child, { input }, "start"),
        (prepared) => Start.launch(state, "full", prepared, { parentRun, parentNode: node })
      )),
      (launched): Effect.Effect<Result.Result<string, string>, StoreUnavailable> =>
        Result.isSuccess(launched)
          ? Effect.succeed(Result.succeed(launched.success.runId))
          // A store fault stops the parent's execution; only a refused child fails the block.
          : isStoreUnavailable(launched.failure)
          ? Effect.fail(launched.failure)
          : Effect.succeed(Result.fail(`child run not started: ${launched.failure.message}`))
    ))

/**
 * Delivers a finished child run's result to its parent, which wakes if it awaits it.
 *
 * @since 0.1.0
 */
export const notifyParent = (state: State, runId: string): Effect.Effect<void, RunStoreError | PlanFailed> =>
  Effect.flatMap(
    Child.deliverToParent(state.store, runId),
    (parent) => parent === undefined ? Effect.void : Effect.asVoid(Waking.settle(state, parent))
  )

/**
 * Resumes the crashed descendants of a run (a crashed process took its runs' children down with
 * it); a child that ends wakes its parent as usual. A child whose lease another process holds is
 * executing there.
 *
 * @since 0.1.0
 */
export const resumeCrashed = (state: State, runId: string): Effect.Effect<void, RunStoreError | PlanFailed> =>
  Effect.gen(function*() {
    for (const child of yield* state.store.children(runId)) {
      if ((child.status === "running" || child.status === "pending") && !state.executing.has(child.runId)) {
        const taken = yield* ownOrOwner(state, child.runId)
        if (taken._tag === "Owned") yield* Execute.resumeRun(state, child.runId, taken.lease)
        yield* resumeCrashed(state, child.runId)
      }
    }
  })
