import { assert, describe, it } from "@effect/vitest"
import { getShortestPaths, getSimplePaths, type StatePath } from "@xstate/graph"
import { RunStatus } from "@ripple/runtime"

const key = (t: RunStatus.Transition): string => `${t.from} -${t.event}-> ${t.to}`

const dormant = (branch: string, reason: RunStatus.DormantReason): RunStatus.Event => ({
  type: "BRANCH_DORMANT",
  branch,
  reason
})
const reasons: ReadonlyArray<RunStatus.DormantReason> = [
  { _tag: "Signal", node: "w", signal: "go" },
  { _tag: "Sleep", node: "s", until: 5 },
  { _tag: "Pause", node: "p", reason: "operator" },
  { _tag: "Approval", node: "a" }
]

// One representative of every event kind (plus a mismatched signal and an early timer), offered only
// while it keeps the state space finite: at most two running branches, at most one node failure.
const representative = (snapshot: RunStatus.Snapshot): ReadonlyArray<RunStatus.Event> => [
  { type: "START" },
  ...(snapshot.context.failures.length === 0 ? [{ type: "NODE_FAILED", node: "n", at: 3, error: "boom" } as const] : []),
  ...(snapshot.context.running < 2 ? [{ type: "BRANCH_STARTED" } as const] : []),
  ...["b1", "b2"].flatMap((branch) => reasons.map((reason) => dormant(branch, reason))),
  { type: "ALL_BRANCHES_FINISHED" },
  { type: "SIGNAL", name: "go", payload: null },
  { type: "SIGNAL", name: "other", payload: null },
  { type: "TIMER_FIRED", at: 4 },
  { type: "TIMER_FIRED", at: 5 },
  { type: "UNPAUSE", node: "p", payload: null },
  { type: "APPROVE", node: "a", payload: null },
  { type: "FAIL", error: "crash" },
  { type: "CANCEL" },
  { type: "RESUME" }
]

// Replays a generated path through `RunStatus.next`, which must accept every step, and returns
// the `(from, event, to)` triples it took.
const replay = (path: StatePath<RunStatus.Snapshot, RunStatus.Event>): ReadonlyArray<RunStatus.Transition> => {
  let snapshot = RunStatus.initial()
  const taken: Array<RunStatus.Transition> = []
  for (const { event } of path.steps) {
    if (event.type.startsWith("xstate.")) continue
    const next = RunStatus.next(snapshot, event)
    assert.strictEqual(next._tag, "Accepted", `${RunStatus.status(snapshot)} ${event.type}`)
    if (next._tag === "Accepted") {
      taken.push({ from: RunStatus.status(snapshot), event: event.type, to: next.status })
      snapshot = next.snapshot
    }
  }
  assert.strictEqual(RunStatus.status(snapshot), path.state.value)
  assert.deepStrictEqual(snapshot.context, path.state.context)
  return taken
}

const coverage = (paths: ReadonlyArray<StatePath<RunStatus.Snapshot, RunStatus.Event>>) => {
  const taken = paths.flatMap(replay)
  return {
    statuses: [...new Set([...paths.map((p) => p.state.value), ...taken.map((t) => t.to)])].sort(),
    transitions: new Set(taken.map(key))
  }
}

describe("RunStatus paths (@xstate/graph)", () => {
  it("shortest paths reach every status and take every allowed transition", () => {
    const paths = getShortestPaths(RunStatus.machine, { events: representative })
    const { statuses, transitions } = coverage(paths)
    // A shortest path enters each snapshot once; extending every path by each event its end accepts
    // walks every edge of the explored graph, including those into snapshots reached another way.
    for (const path of paths) {
      for (const event of representative(path.state)) {
        const next = RunStatus.next(path.state, event)
        if (next._tag === "Accepted") transitions.add(key({ from: path.state.value, event: event.type, to: next.status }))
      }
    }
    assert.deepStrictEqual(statuses, [...RunStatus.statuses].sort())
    assert.deepStrictEqual(RunStatus.transitions.map(key).filter((t) => !transitions.has(t)), [])
    assert.deepStrictEqual([...transitions].filter((t) => !RunStatus.transitions.some((u) => key(u) === t)), [])
  })

  it("simple paths reach every status, through legal transitions only", () => {
    // Simple paths grow exponentially with the number of snapshots, so this graph keeps one branch and
    // one dormancy of each kind; the shortest paths above carry the full transition coverage.
    const oneBranch = (snapshot: RunStatus.Snapshot): ReadonlyArray<RunStatus.Event> => [
      { type: "START" },
      ...(snapshot.context.failures.length === 0 ? [{ type: "NODE_FAILED", node: "n", at: 3, error: "boom" } as const] : []),
      ...reasons.map((reason) => dormant("b1", reason)),
      { type: "ALL_BRANCHES_FINISHED" },
      { type: "SIGNAL", name: "go", payload: null },
      { type: "TIMER_FIRED", at: 5 },
      { type: "UNPAUSE", node: "p", payload: null },
      { type: "APPROVE", node: "a", payload: null },
      { type: "FAIL", error: "crash" },
      { type: "CANCEL" },
      { type: "RESUME" }
    ]
    const paths = getSimplePaths(RunStatus.machine, { events: oneBranch })
    const { statuses, transitions } = coverage(paths)
    assert.deepStrictEqual(statuses, [...RunStatus.statuses].sort())
    assert.deepStrictEqual([...transitions].filter((t) => !RunStatus.transitions.some((u) => key(u) === t)), [])
    assert.isAbove(paths.length, RunStatus.statuses.length)
  })
})
