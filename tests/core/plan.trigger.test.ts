/**
 * A trigger's output is the run input (`Builtins.trigger`, `Model`'s trigger), but no param of the
 * trigger reads it: a run from a block with a new input (`Plan.Options.input`) reused the trigger's
 * record, and a block reading `blocks.<trigger>.output` saw the old input (found by helper mutants;
 * DESIGN.md, Sound: executing the plan gives the same outputs on the observed outputs' ancestors as
 * a from-scratch run of the current workflow). A changed input now changes the trigger.
 */
import { assert, describe, it } from "@effect/vitest"
import { Fingerprint, Plan } from "@ripple/core"
import { Laws, Model } from "@ripple/core/testing"
import * as Result from "effect/Result"
import { echoInput as workflow } from "../helpers/echoInput.ts"

describe("Plan.runFrom with a changed run input, read through the trigger's output", () => {
  it("re-runs what reads the trigger's output, as a from-scratch run with the new input computes it", () => {
    const prior = Model.execute(workflow, { input: { x: 1 }, fingerprint: Fingerprint.hash })
    const input = { x: 2 }
    const plan = Result.getOrThrow(Plan.runFrom({ workflow, snapshot: prior.snapshot, target: "out", input }))
    const replay = Model.execute(workflow, { fingerprint: Fingerprint.hash }, Laws.replayOf(plan))
    const fresh = Model.execute(workflow, { input, fingerprint: Fingerprint.hash })
    assert.strictEqual(fresh.snapshot.nodes["out"]?.output, 2)
    assert.strictEqual(replay.snapshot.nodes["echo"]?.output, fresh.snapshot.nodes["echo"]?.output, "echo reads the new input")
    assert.strictEqual(replay.snapshot.nodes["out"]?.output, fresh.snapshot.nodes["out"]?.output, "the observed output")
    assert.deepStrictEqual(Plan.reasonsOf(plan, "trigger"), [{ _tag: "inputs-changed" }])
    // The same input: the trigger is reused.
    const same = Result.getOrThrow(Plan.runFrom({ workflow, snapshot: prior.snapshot, target: "out", input: { x: 1 } }))
    assert.notInclude(same.rerun, "trigger")
  })
})
