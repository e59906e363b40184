/**
 * Ripple never re-executes more block instances than Sim's shipped run-from closure or n8n's
 * partial execution rule (`Peers`, written from their published behaviour) on the same edit: a
 * block inside a loop or parallel edited and run from, to a destination half the time. Counted on
 * the engine with early cutoff, the peers over a full run of the edited workflow. `bench:minimality`
 * measures the averages.
 */
import { assert, describe, it } from "@effect/vitest"
import { Laws, Peers } from "@ripple/core/testing"
import { Runs } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import { executedIn, runOnEngine, SEED, withModel } from "./model.ts"

const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? 1000)

describe("Re-executed blocks against Sim and n8n", () => {
  it.effect("on every edit with an in-container target, Ripple re-executes at most what Sim and n8n do", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(Peers.arbitraryEdit(SEED), async (edit) => {
          const { prior, run } = await Effect.runPromise(withModel((current) =>
            Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const prior = yield* runOnEngine(current, runs.start(edit.before, Laws.inputFor(edit.before)), edit.before)
              const run = yield* runOnEngine(current, runs.runFrom(edit.after, { target: edit.target, to: edit.to, run: prior.started.runId }), edit.after)
              return { prior, run }
            })))
          const ripple = executedIn(run.snapshot).filter((key) => !key.includes("#")).length
          const executed = Laws.trial({ ...edit, seed: SEED }).fresh.executed
          const sim = Peers.instancesOf(Peers.sim(edit), executed)
          const n8n = Peers.instancesOf(Peers.n8n(edit, prior.snapshot), executed)
          assert.isAtMost(ripple, sim, "Sim")
          assert.isAtMost(ripple, n8n, "n8n")
        }),
        { numRuns: NUM_RUNS, seed: SEED }
      )
    ), 600_000)
})
