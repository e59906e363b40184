/**
 * Engine overhead: no-op handlers, in-memory store, no tracer, on a wide DAG (10^4 independent
 * branches into one join) and a deep one (a 10^4 chain). Compares `Runs.start` + `Runs.wait` with a
 * bare Promise-based topological runner measured in the same process.
 *
 * What the engine does per node and the bare runner does not: input resolution and fingerprints,
 * a fiber per handler, journal entries (started, completed) written to the store once per wave,
 * and two events. Rows `c=16` (the default bound) and `c=1024` are warm: the workflow value was
 * run before, so its expansion, definition fingerprints, full plan and version hash are cached.
 * Rows `cold` start a workflow value never seen before (all of that inside the timed run).
 * `ratioVsBare` and `wideNodesPerSec` in RESULT are the warm wide row at c=1024; `…CpuRatio@c`
 * are the same rows' ratios in CPU time (medians of each side's process CPU time).
 * Row `parallel c=1024` runs a parallel of 10^4 branches over one noop block (a scope instance per
 * branch) against the bare wide runner.
 * Rows `wide run-from` and `deep run-from` re-run the wide and deep DAGs from their first block
 * after an edit of every block (nothing is cut off), planning and the cutoff checks included,
 * against their bare rows.
 *
 * Prints a table, then `RESULT {...}` as the last line.
 */
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"

const SIZE = 10_000
const REPEATS = 15
const WARMUPS = 5

const wide = (size: number, edit?: number): Workflow.Workflow => {
  const params = edit === undefined ? undefined : { edit }
  const block = (id: string): Workflow.Block => params === undefined ? { id, type: "noop" } : { id, type: "noop", params }
  const blocks: Array<Workflow.Block> = [block("start")]
  const edges: Array<Workflow.Edge> = []
  for (let i = 0; i < size; i++) {
    blocks.push(block(`b${i}`))
    edges.push({ source: "start", target: `b${i}` }, { source: `b${i}`, target: "join" })
  }
  blocks.push(block("join"))
  return { id: "wide", blocks, edges }
}

const deep = (size: number, edit?: number): Workflow.Workflow => {
  const blocks: Array<Workflow.Block> = []
  const edges: Array<Workflow.Edge> = []
  for (let i = 0; i < size; i++) {
    blocks.push(edit === undefined ? { id: `b${i}`, type: "noop" } : { id: `b${i}`, type: "noop", params: { edit } })
    if (i > 0) edges.push({ source: `b${i - 1}`, target: `b${i}` })
  }
  return { id: "deep", blocks, edges }
}

/** The baseline: indegree counting, each node's handler a resolved Promise, successors released on settle. */
const bare = (workflow: Workflow.Workflow): Promise<void> => {
  const index = new Map(workflow.blocks.map((b, i) => [b.id, i]))
  const n = workflow.blocks.length
  const out: Array<Array<number>> = Array.from({ length: n }, () => [])
  const indegree = new Int32Array(n)
  for (const e of workflow.edges) {
    const s = index.get(e.source)!
    const t = index.get(e.target)!
    out[s]!.push(t)
    indegree[t]!++
  }
  const outputs: Array<unknown> = new Array(n)
  const handler = (_: number) => Promise.resolve(null)
  return new Promise((resolve) => {
    let remaining = n
    const run = (i: number): void => {
      void handler(i).then((output) => {
        outputs[i] = output
        for (const j of out[i]!) if (--indegree[j]! === 0) run(j)
        if (--remaining === 0) resolve()
      })
    }
    for (let i = 0; i < n; i++) if (indegree[i] === 0) run(i)
  })
}

const parallel = (size: number): Workflow.Workflow => ({
  id: "parallel",
  blocks: [{ id: "work", type: "noop" }],
  edges: [],
  parallels: [{ id: "fan", kind: "count", count: size, body: ["work"] }]
})

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Wall time and the process's CPU time (all its threads, the collector's included), in ms. */
interface Sample {
  readonly ms: number
  readonly cpuMs: number
}

// Each sample starts after a turn of the event loop, so a collection V8 scheduled during the
// previous sample runs before the clock starts rather than inside this one. V8 posts a scavenge as a
// task once the young generation is ~80% full, and the task runs at the next turn: the bare runner
// never gives one (promise jobs only), so the scavenge its allocation asked for ran at the engine
// run's first fiber fork, inside the engine's time (measured: engine samples with a collection
// 8-10 of 15 without the turn, 4-5 with it; bare samples 2-4 either way).
const time = async (f: () => Promise<unknown>): Promise<Sample> => {
  await new Promise<void>((resolve) => setImmediate(resolve))
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await f()
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 }
}

type Shape = "wide" | "deep"
const shapes: ReadonlyArray<readonly [Shape, (size: number, edit?: number) => Workflow.Workflow]> = [["wide", wide], ["deep", deep]]
const noop: Handler.Handler = () => Effect.succeed(null)

// A fresh in-memory store per run (its build is not timed): a store holding every earlier run
// would make the numbers depend on how many samples came before.
const engineRun = async (workflow: Workflow.Workflow, concurrency: number): Promise<Sample> => {
  const runtime = ManagedRuntime.make(
    Runs.layer({ concurrency }).pipe(Layer.provide(RunStore.layerMemory), Layer.provide(Handler.layer({ noop })))
  )
  await runtime.runPromise(Effect.void)
  const sample = await time(() =>
    runtime.runPromise(Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.start(workflow)
      const status = yield* runs.wait(runId)
      if (status !== "completed") throw new Error(`run ${runId} ended ${status}`)
    }))
  )
  await runtime.dispose()
  return sample
}

// A full run of `before` (not timed), then the timed run-from of `after` from `target` in the same store.
const runFromRun = async (before: Workflow.Workflow, after: Workflow.Workflow, target: string, concurrency: number): Promise<Sample> => {
  const runtime = ManagedRuntime.make(
    Runs.layer({ concurrency }).pipe(Layer.provide(RunStore.layerMemory), Layer.provide(Handler.layer({ noop })))
  )
  const prior = await runtime.runPromise(Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const { runId } = yield* runs.start(before)
    yield* runs.wait(runId)
    return runId
  }))
  const sample = await time(() =>
    runtime.runPromise(Effect.gen(function*() {
      const runs = yield* Runs.Runs
      const { runId } = yield* runs.runFrom(after, { target, run: prior })
      const status = yield* runs.wait(runId)
      if (status !== "completed") throw new Error(`run ${runId} ended ${status}`)
    }))
  )
  await runtime.dispose()
  return sample
}

// Engine and bare samples alternate, so both see the same machine load; medians of each, in wall
// time and in CPU time (which a busy machine moves less: time spent descheduled is not counted).
// No forced GC between samples: with --expose-gc, a gc() before each run made the next run ~10x
// slower (measured), which would measure the collector, not the engine.
const measurePair = async (workflow: Workflow.Workflow, concurrency: number) => {
  for (let w = 0; w < WARMUPS; w++) {
    await engineRun(workflow, concurrency)
    await bare(workflow)
  }
  const engine: Array<Sample> = []
  const baseline: Array<Sample> = []
  for (let r = 0; r < REPEATS; r++) {
    engine.push(await engineRun(workflow, concurrency))
    baseline.push(await time(() => bare(workflow)))
  }
  return {
    ms: median(engine.map((s) => s.ms)),
    bareMs: median(baseline.map((s) => s.ms)),
    cpuRatio: median(engine.map((s) => s.cpuMs)) / median(baseline.map((s) => s.cpuMs))
  }
}

const main = async () => {
  const rows: Array<{ name: string; nodes: number; ms: number; bareMs: number }> = []
  const results: Record<string, number> = {}
  for (const [name, make] of shapes) {
    const workflow = make(SIZE)
    const nodes = workflow.blocks.length
    let bareMs = 0
    for (const concurrency of [16, 1024]) {
      const measured = await measurePair(workflow, concurrency)
      const ms = measured.ms
      bareMs = measured.bareMs
      rows.push({ name: `${name} c=${concurrency}`, nodes, ms, bareMs })
      results[`${name}NodesPerSec@${concurrency}`] = Math.round(nodes / (ms / 1000))
      results[`${name}Ratio@${concurrency}`] = Number((ms / bareMs).toFixed(2))
      results[`${name}CpuRatio@${concurrency}`] = Number(measured.cpuRatio.toFixed(2))
    }
    // Cold: a workflow value never seen before, so expansion, definition fingerprints, the full
    // plan and the version hash are computed inside the timed run.
    const cold: Array<number> = []
    for (let r = 0; r < 3; r++) cold.push((await engineRun(make(SIZE), 1024)).ms)
    rows.push({ name: `${name} cold`, nodes, ms: median(cold), bareMs })
    results[`${name}ColdNodesPerSec`] = Math.round(nodes / (median(cold) / 1000))
  }
  {
    const wideRow = rows.find((r) => r.name === "wide c=1024")!
    const samples: Array<number> = []
    const workflow = parallel(SIZE)
    for (let w = 0; w < 2; w++) await engineRun(workflow, 1024)
    for (let r = 0; r < 5; r++) samples.push((await engineRun(workflow, 1024)).ms)
    rows.push({ name: "parallel c=1024", nodes: SIZE, ms: median(samples), bareMs: wideRow.bareMs })
    results["parallelNodesPerSec@1024"] = Math.round(SIZE / (median(samples) / 1000))
    results["parallelRatio@1024"] = Number((median(samples) / wideRow.bareMs).toFixed(2))
  }
  for (const [name, make] of shapes) {
    const before = make(SIZE, 0)
    const after = make(SIZE, 1)
    const target = name === "wide" ? "start" : "b0"
    const bareRow = rows.find((r) => r.name === `${name} c=1024`)!
    for (let w = 0; w < 2; w++) await runFromRun(before, after, target, 1024)
    const samples: Array<number> = []
    for (let r = 0; r < 5; r++) samples.push((await runFromRun(before, after, target, 1024)).ms)
    rows.push({ name: `${name} run-from`, nodes: after.blocks.length, ms: median(samples), bareMs: bareRow.bareMs })
    results[`${name}RunFromRatio@1024`] = Number((median(samples) / bareRow.bareMs).toFixed(2))
  }
  const pad = (s: string, w: number) => s.padStart(w)
  console.log(`${"dag".padEnd(16)}${pad("nodes", 8)}${pad("engine ms", 11)}${pad("µs/node", 9)}${pad("nodes/s", 11)}${pad("bare µs/node", 14)}${pad("ratio", 8)}`)
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(16)}${pad(String(r.nodes), 8)}${pad(r.ms.toFixed(1), 11)}${pad(((r.ms * 1000) / r.nodes).toFixed(2), 9)}${
        pad(String(Math.round(r.nodes / (r.ms / 1000))), 11)
      }${pad(((r.bareMs * 1000) / r.nodes).toFixed(3), 14)}${pad((r.ms / r.bareMs).toFixed(1), 8)}`
    )
  }
  const headline = rows.find((r) => r.name === "wide c=1024")!
  const deepRow = rows.find((r) => r.name === "deep c=1024")!
  console.log(
    "RESULT " +
      JSON.stringify({
        ratioVsBare: Number((headline.ms / headline.bareMs).toFixed(2)),
        wideNodesPerSec: Math.round(headline.nodes / (headline.ms / 1000)),
        wideUsPerNode: Number(((headline.ms * 1000) / headline.nodes).toFixed(3)),
        deepNodesPerSec: Math.round(deepRow.nodes / (deepRow.ms / 1000)),
        deepUsPerNode: Number(((deepRow.ms * 1000) / deepRow.nodes).toFixed(3)),
        deepRatioVsBare: Number((deepRow.ms / deepRow.bareMs).toFixed(2)),
        ...results
      })
  )
}

void main()
