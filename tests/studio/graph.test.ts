/**
 * `Graph.paint`: a node journaled `running` shows as `running` while its run executes, and as
 * `interrupted` once the run is not executing any more (cancelled, failed or crashed: its handler
 * was stopped), in the same precedence as the other states of a node's instances.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Snapshot, Workflow } from "@ripple/core"
import { RunStatus, RunView } from "@ripple/runtime"
import { Graph } from "@ripple/studio"

const workflow: Workflow.Workflow = {
  id: "held",
  blocks: [{ id: "first", type: "value", params: { value: 1 } }, { id: "held", type: "hold" }],
  edges: [{ source: "first", target: "held" }]
}

const fingerprints = { definition: "d", inputs: "i" }
const records: { readonly [node: string]: Snapshot.NodeRecord } = {
  first: { status: "completed", attempt: 1, output: 1, fingerprints: { ...fingerprints, output: "o" }, startedAt: 1, finishedAt: 2 },
  held: { status: "running", attempt: 1, fingerprints, startedAt: 2 }
}

const paintedIn = (status: RunStatus.Status) => {
  const run = { status, mode: "full" as const, sourceRun: undefined, target: undefined, pins: undefined, pruned: undefined }
  const views = Object.entries(records).map(([id, record]) => RunView.node(run, id, record, {}))
  const suspension: RunStatus.Suspension = { branches: [], signals: [], wakeAt: null, pauses: [], approvals: [] }
  return Graph.paint(Graph.of(workflow), run, views, suspension)
}

describe("Graph.paint", () => {
  it("a node journaled running is running while its run executes, interrupted once the run is not executing", () => {
    assert.deepStrictEqual(paintedIn("running"), { first: "executed", held: "running" })
    for (const ended of ["cancelled", "failed", "suspended"] as const) {
      assert.deepStrictEqual(paintedIn(ended), { first: "executed", held: "interrupted" }, ended)
    }
  })
})
