import { assert, describe, it } from "@effect/vitest"
import { RunStatus } from "@ripple/runtime"
import * as fc from "fast-check"
import * as Result from "effect/Result"
import { transition } from "xstate"
import { initialModel, type Model, stepModel } from "../helpers/runStatusModel.ts"

// Few names so that random events often hit what the run actually waits for.
const node = fc.constantFrom("n1", "n2", "n3")
const branch = fc.constantFrom("b1", "b2", "b3")
const signal = fc.constantFrom("s1", "s2")
const time = fc.integer({ min: 0, max: 20 })

const reason: fc.Arbitrary<RunStatus.DormantReason> = fc.oneof(
  fc.record({ _tag: fc.constant("Signal" as const), node, signal }),
  fc.record({ _tag: fc.constant("Sleep" as const), node, until: time }),
  fc.record({ _tag: fc.constant("Pause" as const), node, reason: fc.constantFrom("operator", "budget") }),
  fc.record({ _tag: fc.constant("Approval" as const), node })
)

const event: fc.Arbitrary<RunStatus.Event> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ type: "START" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant("NODE_FAILED" as const), node, at: time, error: fc.constant("boom") })
  },
  { weight: 3, arbitrary: fc.constant({ type: "BRANCH_STARTED" as const }) },
  { weight: 4, arbitrary: fc.record({ type: fc.constant("BRANCH_DORMANT" as const), branch, reason }) },
  { weight: 2, arbitrary: fc.constant({ type: "ALL_BRANCHES_FINISHED" as const }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant("SIGNAL" as const), name: signal, payload: fc.jsonValue() }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant("TIMER_FIRED" as const), at: time }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("UNPAUSE" as const), node, payload: fc.constant(null) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("APPROVE" as const), node, payload: fc.constant("ok") }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("FAIL" as const), error: fc.constant("crash") }) },
  { weight: 1, arbitrary: fc.constant({ type: "CANCEL" as const }) },
  { weight: 2, arbitrary: fc.constant({ type: "RESUME" as const }) }
)

interface ModelBox {
  current: Model
}
interface Real {
  snapshot: RunStatus.Snapshot
  accepted: number
}

// Typed as a record so a new rejection reason fails to compile here until the generator covers it.
const everyRejection: Record<RunStatus.Rejection, true> = {
  "terminal": true,
  "awaiting-resume": true,
  "already-started": true,
  "not-running": true,
  "not-suspended": true,
  "not-paused": true,
  "not-failed": true,
  "branch-already-dormant": true,
  "signal-not-awaited": true,
  "no-sleeper-due": true,
  "pause-not-awaited": true,
  "approval-not-awaited": true
}

const allowed = new Set(RunStatus.transitions.map((t) => `${t.from} ${t.event} ${t.to}`))
const coverage = { statuses: new Set<RunStatus.Status>(), transitions: new Set<string>(), reasons: new Set<string>() }

class Offer implements fc.Command<ModelBox, Real> {
  constructor(readonly event: RunStatus.Event) {}
  check = () => true
  run(model: ModelBox, real: Real): void {
    const before = real.snapshot
    const from = RunStatus.status(before)
    const expected = stepModel(model.current, this.event)
    const actual = RunStatus.next(before, this.event)
    if (actual._tag === "Rejected" || expected._tag === "Rejected") {
      assert.deepStrictEqual(
        actual._tag === "Rejected" ? actual.reason : `accepted as ${actual.status}`,
        expected._tag === "Rejected" ? expected.reason : `accepted as ${expected.model.status}`,
        `${from} ${this.event.type}`
      )
      coverage.reasons.add(actual._tag === "Rejected" ? actual.reason : "")
      // A rejection must mean the machine itself would not move: `next` may not hide a transition.
      const [untouched] = transition(RunStatus.machine, before, this.event)
      assert.strictEqual(untouched.value, before.value)
      assert.deepStrictEqual(untouched.context, before.context)
      return
    }
    const after = actual.snapshot
    const to = actual.status
    real.accepted += 1
    assert.strictEqual(to, expected.model.status, `${from} ${this.event.type}`)
    assert.isTrue(allowed.has(`${from} ${this.event.type} ${to}`), `illegal ${from} -${this.event.type}-> ${to}`)
    assert.isTrue(RunStatus.isAllowed(from, to))
    assert.strictEqual(after.context.running, expected.model.running)
    assert.deepStrictEqual(after.context.dormant, Object.fromEntries(expected.model.dormant))
    assert.strictEqual(after.context.failures.length > 0, expected.model.failed)
    assert.strictEqual(after.context.running > 0, to === "running", "running branches iff running")
    const restored = RunStatus.restore(JSON.parse(JSON.stringify(RunStatus.persist(after))))
    assert.isTrue(Result.isSuccess(restored), "every reachable snapshot restores")
    if (Result.isSuccess(restored)) {
      assert.strictEqual(restored.success.value, to)
      assert.deepStrictEqual(restored.success.context, after.context)
    }
    coverage.statuses.add(to)
    coverage.transitions.add(`${from} ${this.event.type} ${to}`)
    model.current = expected.model
    real.snapshot = after
  }
  toString = () => JSON.stringify(this.event)
}

describe("RunStatus against an independent model", () => {
  it("agrees with the plain reducer on every step of 1,000 random event sequences", () => {
    let accepted = 0
    fc.assert(
      fc.property(fc.commands([event.map((e) => new Offer(e))], { maxCommands: 80, size: "max" }), (commands) => {
        const real: Real = { snapshot: RunStatus.initial(), accepted: 0 }
        fc.modelRun(() => ({ model: { current: initialModel }, real }), commands)
        accepted += real.accepted
      }),
      { numRuns: 1000 }
    )
    // Guards the generator: random sequences that never left `pending` would prove nothing.
    assert.deepStrictEqual([...coverage.statuses].sort(), [...RunStatus.statuses].filter((s) => s !== "pending").sort())
    assert.deepStrictEqual([...coverage.reasons].sort(), Object.keys(everyRejection).sort())
    assert.isAbove(accepted, 1000)
    const uncovered = [...allowed].filter((t) => !coverage.transitions.has(t))
    assert.deepStrictEqual(uncovered, [])
  })
})
