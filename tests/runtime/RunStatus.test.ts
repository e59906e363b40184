import { assert, describe, it } from "@effect/vitest"
import { RunStatus } from "@ripple/runtime"
import * as Result from "effect/Result"

const run = (...events: ReadonlyArray<RunStatus.Event>): RunStatus.Snapshot =>
  events.reduce((snapshot, event) => {
    const next = RunStatus.next(snapshot, event)
    if (next._tag === "Rejected") throw new Error(`${event.type} rejected: ${next.reason}`)
    return next.snapshot
  }, RunStatus.initial())

const rejection = (snapshot: RunStatus.Snapshot, event: RunStatus.Event): string => {
  const next = RunStatus.next(snapshot, event)
  return next._tag === "Rejected" ? next.reason : `accepted as ${next.status}`
}

const waitOn = (branch: string, signal: string): RunStatus.Event => ({
  type: "BRANCH_DORMANT",
  branch,
  reason: { _tag: "Signal", node: `wait-${branch}`, signal }
})
const sleepUntil = (branch: string, until: number): RunStatus.Event => ({
  type: "BRANCH_DORMANT",
  branch,
  reason: { _tag: "Sleep", node: `sleep-${branch}`, until }
})
const pauseAt = (branch: string, node: string): RunStatus.Event => ({
  type: "BRANCH_DORMANT",
  branch,
  reason: { _tag: "Pause", node, reason: "operator" }
})
const approvalAt = (branch: string, node: string): RunStatus.Event => ({
  type: "BRANCH_DORMANT",
  branch,
  reason: { _tag: "Approval", node }
})
const start: RunStatus.Event = { type: "START" }
const fork: RunStatus.Event = { type: "BRANCH_STARTED" }
const all: RunStatus.Event = { type: "ALL_BRANCHES_FINISHED" }
const nodeFailed: RunStatus.Event = { type: "NODE_FAILED", node: "n", at: 1, error: "boom" }

describe("RunStatus lifecycle", () => {
  it("a fresh run is pending and starts with one running branch", () => {
    assert.strictEqual(RunStatus.status(RunStatus.initial()), "pending")
    const started = run(start)
    assert.strictEqual(RunStatus.status(started), "running")
    assert.strictEqual(started.context.running, 1)
    assert.strictEqual(rejection(started, start), "already-started")
  })

  it("keeps running while a branch runs, and completes when all branches finish", () => {
    const twoBranches = run(start, fork)
    assert.strictEqual(twoBranches.context.running, 2)
    assert.strictEqual(RunStatus.status(run(start, fork, waitOn("a", "s"))), "running")
    assert.strictEqual(RunStatus.status(run(start, fork, all)), "completed")
  })

  it("settles by Failed > Paused > Suspended > Completed when the last branch ends", () => {
    assert.strictEqual(
      RunStatus.status(run(start, fork, fork, waitOn("a", "s"), pauseAt("b", "p"), nodeFailed, all)),
      "failed"
    )
    assert.strictEqual(RunStatus.status(run(start, fork, fork, waitOn("a", "s"), approvalAt("b", "p"), all)), "paused")
    assert.strictEqual(RunStatus.status(run(start, fork, waitOn("a", "s"), sleepUntil("b", 9))), "suspended")
    assert.strictEqual(RunStatus.status(run(start, fork, pauseAt("a", "p"), all)), "paused")
    assert.strictEqual(RunStatus.status(run(start, fork, nodeFailed, waitOn("a", "s"), all)), "failed")
    assert.strictEqual(RunStatus.status(run(start, fork, sleepUntil("a", 3), all)), "suspended")
  })

  it("a node failure does not stop the other running branches", () => {
    const failedOne = run(start, fork, nodeFailed)
    assert.strictEqual(RunStatus.status(failedOne), "running")
    assert.strictEqual(RunStatus.status(run(start, fork, nodeFailed, waitOn("a", "s"))), "running")
    assert.strictEqual(RunStatus.status(run(start, fork, nodeFailed, waitOn("a", "s"), waitOn("b", "s"))), "failed")
  })
})

describe("RunStatus guards", () => {
  it("only a suspended run accepts a signal, and only one it waits on", () => {
    const suspended = run(start, waitOn("a", "go"))
    assert.strictEqual(rejection(suspended, { type: "SIGNAL", name: "stop", payload: null }), "signal-not-awaited")
    const woken = run(start, waitOn("a", "go"), { type: "SIGNAL", name: "go", payload: { ok: true } })
    assert.strictEqual(RunStatus.status(woken), "running")
    assert.strictEqual(rejection(woken, { type: "SIGNAL", name: "go", payload: null }), "not-suspended")
    assert.strictEqual(rejection(run(start), { type: "SIGNAL", name: "go", payload: null }), "not-suspended")
  })

  it("a duplicate signal is rejected, not an error", () => {
    const suspended = run(start, fork, waitOn("a", "go"), sleepUntil("b", 50))
    const once = run(start, fork, waitOn("a", "go"), sleepUntil("b", 50), { type: "SIGNAL", name: "go", payload: 1 })
    const settledAgain = RunStatus.next(once, all)
    assert.strictEqual(settledAgain._tag === "Accepted" && settledAgain.status, "suspended")
    if (settledAgain._tag === "Accepted") {
      assert.strictEqual(rejection(settledAgain.snapshot, { type: "SIGNAL", name: "go", payload: 1 }), "signal-not-awaited")
    }
    assert.deepStrictEqual(RunStatus.suspension(suspended).signals, ["go"])
  })

  it("a signal wakes every branch waiting on it", () => {
    const woken = run(start, fork, fork, waitOn("a", "go"), waitOn("b", "go"), waitOn("c", "other"), {
      type: "SIGNAL",
      name: "go",
      payload: null
    })
    assert.strictEqual(woken.context.running, 2)
    assert.deepStrictEqual(Object.keys(woken.context.dormant), ["c"])
  })

  it("a timer is accepted only when a sleeper is due, and wakes only the due ones", () => {
    const suspended = run(start, fork, sleepUntil("a", 10), sleepUntil("b", 20))
    assert.strictEqual(rejection(suspended, { type: "TIMER_FIRED", at: 9 }), "no-sleeper-due")
    const woken = RunStatus.next(suspended, { type: "TIMER_FIRED", at: 10 })
    assert.isTrue(woken._tag === "Accepted")
    if (woken._tag === "Accepted") {
      assert.strictEqual(woken.status, "running")
      assert.deepStrictEqual(Object.keys(woken.snapshot.context.dormant), ["b"])
    }
    assert.strictEqual(rejection(run(start, pauseAt("a", "p")), { type: "TIMER_FIRED", at: 99 }), "not-suspended")
  })

  it("unpause and approve wake only the matching dormant node in a paused run", () => {
    const paused = run(start, fork, pauseAt("a", "review"), approvalAt("b", "sign"))
    assert.strictEqual(rejection(paused, { type: "UNPAUSE", node: "sign", payload: null }), "pause-not-awaited")
    assert.strictEqual(rejection(paused, { type: "APPROVE", node: "review", payload: null }), "approval-not-awaited")
    const approved = RunStatus.next(paused, { type: "APPROVE", node: "sign", payload: { by: "ana" } })
    assert.strictEqual(approved._tag === "Accepted" && approved.status, "running")
    assert.strictEqual(rejection(run(start), { type: "UNPAUSE", node: "review", payload: null }), "not-paused")
    assert.strictEqual(
      RunStatus.status(run(start, pauseAt("a", "review"), { type: "UNPAUSE", node: "review", payload: null })),
      "running"
    )
  })

  it("a branch cannot go dormant twice", () => {
    assert.strictEqual(rejection(run(start, fork, waitOn("a", "s")), waitOn("a", "t")), "branch-already-dormant")
    assert.strictEqual(rejection(RunStatus.initial(), waitOn("a", "s")), "not-running")
    // Branch ids are data, not property names: an id like "toString" is not dormant until parked.
    assert.strictEqual(RunStatus.status(run(start, waitOn("toString", "s"))), "suspended")
  })

  it("terminal states accept nothing", () => {
    const everything: ReadonlyArray<RunStatus.Event> = [
      start,
      fork,
      all,
      nodeFailed,
      waitOn("z", "s"),
      { type: "SIGNAL", name: "s", payload: null },
      { type: "CANCEL" },
      { type: "FAIL", error: "x" },
      { type: "RESUME" }
    ]
    for (const ended of [run(start, all), run(start, { type: "CANCEL" }), run({ type: "CANCEL" })]) {
      for (const event of everything) assert.strictEqual(rejection(ended, event), "terminal")
    }
  })

  it("a failed run accepts only RESUME, which retries with one running branch", () => {
    const failed = run(start, fork, waitOn("a", "s"), { type: "FAIL", error: "db down" })
    assert.strictEqual(RunStatus.status(failed), "failed")
    assert.strictEqual(failed.context.error, "db down")
    for (const event of [start, all, { type: "CANCEL" } as const, { type: "SIGNAL", name: "s", payload: 1 } as const]) {
      assert.strictEqual(rejection(failed, event), "awaiting-resume")
    }
    const resumed = run(start, fork, waitOn("a", "s"), { type: "FAIL", error: "db down" }, { type: "RESUME" })
    assert.strictEqual(RunStatus.status(resumed), "running")
    assert.strictEqual(resumed.context.running, 1)
    assert.strictEqual(resumed.context.error, null)
    assert.deepStrictEqual(Object.keys(resumed.context.dormant), ["a"])
    assert.strictEqual(rejection(run(start), { type: "RESUME" }), "not-failed")
  })

  it("cancelling drops every dormant branch", () => {
    const cancelled = run(start, fork, waitOn("a", "s"), sleepUntil("b", 4), { type: "CANCEL" })
    assert.strictEqual(RunStatus.status(cancelled), "cancelled")
    assert.deepStrictEqual(RunStatus.suspension(cancelled).branches, [])
  })
})

describe("RunStatus helpers", () => {
  it("suspension says how to wake a run", () => {
    const suspended = run(start, fork, fork, fork, waitOn("d", "b-sig"), waitOn("c", "a-sig"), sleepUntil("b", 30), sleepUntil("a", 12))
    const info = RunStatus.suspension(suspended)
    assert.deepStrictEqual(info.branches.map((b) => b.branch), ["a", "b", "c", "d"])
    assert.deepStrictEqual(info.signals, ["a-sig", "b-sig"])
    assert.strictEqual(info.wakeAt, 12)
    assert.deepStrictEqual(info.pauses, [])
    const paused = RunStatus.suspension(run(start, fork, pauseAt("a", "p"), approvalAt("b", "q")))
    assert.deepStrictEqual([paused.pauses, paused.approvals, paused.wakeAt], [["p"], ["q"], null])
  })

  it("persists as plain JSON and restores to an equivalent snapshot", () => {
    const snapshot = run(start, fork, sleepUntil("a", 8), nodeFailed)
    const json = JSON.parse(JSON.stringify(RunStatus.persist(snapshot)))
    const restored = RunStatus.restore(json)
    assert.isTrue(Result.isSuccess(restored))
    if (Result.isSuccess(restored)) {
      assert.strictEqual(RunStatus.status(restored.success), "running")
      assert.deepStrictEqual(restored.success.context, snapshot.context)
      assert.strictEqual(rejection(restored.success, { type: "TIMER_FIRED", at: 8 }), "not-suspended")
      const finished = RunStatus.next(restored.success, all)
      assert.strictEqual(finished._tag === "Accepted" && finished.status, "failed")
    }
    const done = RunStatus.restore(JSON.parse(JSON.stringify(RunStatus.persist(run(start, all)))))
    assert.isTrue(Result.isSuccess(done) && done.success.status === "done")
  })

  it("restores machines stored with the diagnostics context earlier builds wrote", () => {
    const stored = RunStatus.persist(run(start, fork, waitOn("a", "go")))
    const legacy = { ...stored, context: { ...stored.context, diagnostics: { lastStarted: null, lastCompleted: null } } }
    const restored = RunStatus.restore(JSON.parse(JSON.stringify(legacy)))
    assert.isTrue(Result.isSuccess(restored))
    if (Result.isSuccess(restored)) assert.deepStrictEqual(RunStatus.persist(restored.success), stored)
  })

  it("refuses stored JSON that is not a run status", () => {
    const notAStatus = RunStatus.restore({ status: "sleeping", context: RunStatus.persist(RunStatus.initial()).context })
    assert.isTrue(Result.isFailure(notAStatus) && notAStatus.failure._tag === "InvalidPersisted")
    const inconsistent = RunStatus.restore({ ...RunStatus.persist(RunStatus.initial()), status: "running" })
    assert.isTrue(Result.isFailure(inconsistent))
    assert.isTrue(Result.isFailure(RunStatus.restore("pending")))
    const nothingToWaitFor = RunStatus.restore({ ...RunStatus.persist(RunStatus.initial()), status: "suspended" })
    assert.isTrue(Result.isFailure(nothingToWaitFor))
    const failedForNoReason = RunStatus.restore({ ...RunStatus.persist(RunStatus.initial()), status: "failed" })
    assert.isTrue(Result.isFailure(failedForNoReason))
  })

  it("the transition table is derived from the machine and backs isAllowed", () => {
    const key = (t: RunStatus.Transition) => `${t.from} -${t.event}-> ${t.to}`
    const keys = RunStatus.transitions.map(key)
    assert.strictEqual(new Set(keys).size, keys.length)
    assert.include(keys, "running -BRANCH_DORMANT-> paused")
    assert.include(keys, "failed -RESUME-> running")
    assert.isTrue(RunStatus.isAllowed("suspended", "running"))
    assert.isTrue(RunStatus.isAllowed("running", "running"))
    assert.isFalse(RunStatus.isAllowed("completed", "running"))
    assert.isFalse(RunStatus.isAllowed("failed", "cancelled"))
    assert.isFalse(RunStatus.isAllowed("pending", "suspended"))
    for (const s of RunStatus.terminal) assert.isFalse(RunStatus.transitions.some((t) => t.from === s))
  })

  it("declares no side effect for the runtime to provide: every action assigns the context", () => {
    const actions = Object.entries(RunStatus.machine.implementations.actions)
    assert.isAbove(actions.length, 0)
    for (const [name, action] of actions) assert.strictEqual((action as { readonly type?: unknown }).type, "xstate.assign", name)
    for (const status of RunStatus.statuses) {
      const state = RunStatus.machine.root.states[status]!
      assert.deepStrictEqual([state.entry, state.exit], [[], []], status)
    }
  })

  it("declares only the events the runtime sends", () => {
    // Each is sent by the runtime (the engine, Runs, Worker); an event nobody sends is not declared.
    const events = [...new Set(RunStatus.transitions.map((t) => t.event))].sort()
    assert.deepStrictEqual(events, [
      "ALL_BRANCHES_FINISHED",
      "APPROVE",
      "BRANCH_DORMANT",
      "BRANCH_STARTED",
      "CANCEL",
      "FAIL",
      "NODE_FAILED",
      "RESUME",
      "SIGNAL",
      "START",
      "TIMER_FIRED",
      "UNPAUSE"
    ])
  })
})
