/**
 * Control requests as the property tests make them of a run, from one or several `Runs` layers
 * over one store (processes), and waiting until none of them executes the run any more.
 */
import type { Workflow } from "@ripple/core"
import type { Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"

/** What a control request asks. */
export type Kind = "signal" | "approve" | "reject" | "pause" | "unpause" | "resume" | "cancel"

/**
 * Makes a request of the run through `runs`: `target` is the signal's name or the approval's node
 * instance (unused otherwise), `payload` the signal's or the approval's payload.
 */
export const request = (
  runs: Runs.Runs["Service"],
  runId: string,
  kind: Kind,
  target: string,
  payload: Workflow.Json
): Effect.Effect<unknown, Runs.PlanFailed | Runs.InvalidPayload | Runs.InvalidOption | RunStore.RunStoreError> => {
  switch (kind) {
    case "signal":
      return runs.signal(runId, target, payload)
    case "approve":
      return runs.approve(runId, target, payload)
    case "reject":
      return runs.reject(runId, target, "no")
    case "pause":
      return runs.pause(runId)
    case "unpause":
      return runs.unpause(runId)
    case "resume":
      return runs.resume(runId)
    case "cancel":
      return runs.cancel(runId)
  }
}

/** Until none of `processes` executes the run any more: each waits for it, in rounds a few turns apart. */
export const quiet = (processes: ReadonlyArray<Runs.Runs["Service"]>, runId: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 5; i++) {
      for (const runs of processes) yield* runs.wait(runId)
      for (let j = 0; j < 10; j++) yield* Effect.yieldNow
    }
  })
