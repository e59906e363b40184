/**
 * Durable execution on PostgreSQL (`DATABASE_URL`, default the local server): the `SqlRunStore`
 * against the memory store, through `Runs` (in-process) and through a `Worker` (leased and fenced
 * writes), on two workloads with no-op handlers:
 *
 * - `linear`: one 100-node chain (per-node latency: the gap between consecutive handler calls);
 * - `concurrent`: 100 runs of a 10-node chain started at once (throughput);
 * - `rerun`: run-from-block on the 100-node chain after an edit to every block, so every node
 *   re-runs (after an unmeasured full run): the path Ripple's re-runs take (planning, the source's
 *   records read, early cutoff checked). Its rows per node include the source run's rows (the statistics
 *   are per schema), so about half are the re-run's.
 *
 * Round trips are the SQL statements the client sent (counted from effect/sql's client spans);
 * rows written are the inserted + updated rows of the bench schema's tables (`pg_stat_user_tables`,
 * read after the pool closed so every backend flushed its counters). Everything runs in a fresh
 * schema, dropped at the end.
 *
 * DBOS Transact runs the same two workloads on the same server in the same invocation
 * (`bench/dbos/run.mjs`, its own package.json, installed there on first use and never part of the
 * root install; its system database is `ripple_bench_dbos_sys`). `ratioVsDbos` is our concurrent
 * nodes/s (`Runs` over `SqlRunStore`) ÷ DBOS steps/s; `RIPPLE_BENCH_DBOS=0` skips DBOS.
 *
 * Prints a table, then `RESULT {...}` as the last line.
 */
import type { Workflow } from "@ripple/core"
import { Handler, Runs, RunStore } from "@ripple/runtime"
import { Database, SqlRunStore, Worker } from "@ripple/sql"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import * as Tracer from "effect/Tracer"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const serverUrl = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ""
  ? process.env.DATABASE_URL
  : "postgres://postgres@127.0.0.1:5432/postgres"

const chain = (id: string, size: number, edit = 0): Workflow.Workflow => {
  const blocks: Array<Workflow.Block> = []
  const edges: Array<Workflow.Edge> = []
  for (let i = 0; i < size; i++) {
    blocks.push({ id: `b${i}`, type: "noop", ...(edit === 0 ? {} : { params: { edit } }) })
    if (i > 0) edges.push({ source: `b${i - 1}`, target: `b${i}` })
  }
  return { id, blocks, edges }
}

// Handler call times, for the per-node gaps of the linear workload.
let calls: Array<number> = []
const noop: Handler.Handler = () =>
  Effect.sync(() => {
    calls.push(performance.now())
    return null
  })

let statements = 0
const counting = Tracer.make({
  span: (options) => {
    if (options.kind === "client") statements++
    return new Tracer.NativeSpan(options)
  }
})

const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
}

const admin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(serverUrl), maxConnections: 1 }), f)).pipe(
      Effect.provide(Reactivity.layer)
    ) as Effect.Effect<A>
  )

const schemaUrl = (schema: string) => {
  const url = new URL(serverUrl)
  url.searchParams.set("options", `-c search_path=${schema}`)
  return url.toString()
}

const rowsWritten = (schema: string): Promise<number> =>
  admin((sql) =>
    Effect.map(
      sql<{ readonly n: string | number | bigint | null }>`SELECT sum(n_tup_ins + n_tup_upd) AS n FROM pg_stat_user_tables
        WHERE schemaname = ${schema}`,
      (rows) => Number(rows[0]?.n ?? 0)
    )
  )

type Store = "memory" | "postgres" | "postgres worker"

interface Row {
  readonly workload: keyof typeof workloads
  readonly store: Store
  readonly nodes: number
  readonly ms: number
  readonly nodesPerSec: number
  readonly roundTripsPerNode: number | null
  readonly rowsPerNode: number | null
  readonly p50: number | null
  readonly p95: number | null
}

const workloads = {
  linear: { runs: 1, size: 100 },
  concurrent: { runs: 100, size: 10 },
  rerun: { runs: 1, size: 100 }
} as const

/** One measured execution of a workload in a fresh schema (postgres) or a fresh memory store. */
const measure = async (workload: keyof typeof workloads, store: Store, repeat: number): Promise<Row> => {
  const { runs, size } = workloads[workload]
  const schema = `ripple_bench_${process.pid}_${workload}_${store.replace(" ", "_")}_${repeat}`
  const postgres = store !== "memory"
  if (postgres) await admin((sql) => sql`CREATE SCHEMA ${sql(schema)}`)
  const handlers = Handler.layer({ noop })
  const database = Database.layer({ url: schemaUrl(schema), maxConnections: 20 })
  const sqlStore = SqlRunStore.layer.pipe(Layer.provideMerge(database))
  const storeLayer = postgres ? sqlStore : Layer.merge(RunStore.layerMemory, Layer.empty)
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(Runs.layer({ concurrency: 16 }), handlers).pipe(Layer.provideMerge(storeLayer), Layer.provide(handlers))
  )
  await runtime.runPromise(Effect.void)
  const workflow = chain(`bench-${workload}`, size)
  // Warm the version cache: saving a workflow is once per version, not per run.
  await runtime.runPromise(Effect.flatMap(RunStore.RunStore, (s) => s.saveWorkflow(workflow)))
  const edited = chain(`bench-${workload}`, size, 1)
  // Re-runs start from a finished run of the unedited chain.
  const source = workload !== "rerun" ? undefined : await runtime.runPromise(Effect.gen(function*() {
    const r = yield* Runs.Runs
    const { runId } = yield* r.start(workflow)
    yield* r.wait(runId)
    yield* Effect.flatMap(RunStore.RunStore, (s) => s.saveWorkflow(edited))
    return runId
  }))
  calls = []
  statements = 0
  const t0 = performance.now()
  if (store === "postgres worker") {
    await runtime.runPromise(
      Effect.gen(function*() {
        const ids = yield* Effect.forEach(Array.from({ length: runs }), () => Worker.submit(workflow), { concurrency: 16 })
        const { store: sqlRuns } = yield* SqlRunStore.SqlRunStore
        yield* Worker.make({ concurrency: 100, pollMs: 50 })
        // Waiting is not part of the work: its polls are not counted.
        const waiting = Effect.withTracerEnabled(Effect.gen(function*() {
          for (const id of ids) {
            while ((yield* sqlRuns.getRun(id)).status !== "completed") yield* Effect.sleep(2)
          }
        }), false)
        yield* waiting
      }).pipe(Effect.scoped, Effect.withTracer(counting)) as Effect.Effect<void, unknown, never>
    )
  } else if (source !== undefined) {
    await runtime.runPromise(
      Effect.gen(function*() {
        const r = yield* Runs.Runs
        const { runId } = yield* r.runFrom(edited, { target: "b0", run: source })
        yield* r.wait(runId)
      }).pipe(Effect.withTracer(counting))
    )
  } else {
    await runtime.runPromise(
      Effect.gen(function*() {
        const r = yield* Runs.Runs
        const started = yield* Effect.forEach(Array.from({ length: runs }), () => r.start(workflow), { concurrency: "unbounded" })
        yield* Effect.forEach(started, (s) => r.wait(s.runId), { concurrency: "unbounded", discard: true })
      }).pipe(Effect.withTracer(counting))
    )
  }
  const ms = performance.now() - t0
  const trips = statements
  const gaps = calls.slice(1).map((t, i) => t - calls[i]!)
  await runtime.dispose()
  const nodes = runs * size
  let rows: number | null = null
  if (postgres) {
    rows = await rowsWritten(schema)
    await admin((sql) => sql`DROP SCHEMA ${sql(schema)} CASCADE`)
  }
  return {
    workload,
    store,
    nodes,
    ms,
    nodesPerSec: nodes / (ms / 1000),
    roundTripsPerNode: postgres ? trips / nodes : null,
    rowsPerNode: rows === null ? null : rows / nodes,
    p50: workload !== "concurrent" ? quantile(gaps, 0.5) : null,
    p95: workload !== "concurrent" ? quantile(gaps, 0.95) : null
  }
}

const REPEATS = 3

interface Dbos {
  readonly linearMsPerStep: number
  readonly linearStepsPerSec: number
  readonly concurrentStepsPerSec: number
}

const dbos = (): Dbos | undefined => {
  if (process.env.RIPPLE_BENCH_DBOS === "0") return undefined
  const dir = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "dbos")
  try {
    if (!Fs.existsSync(Path.join(dir, "node_modules", "@dbos-inc", "dbos-sdk"))) {
      execFileSync("npm", ["install", "--no-audit", "--no-fund"], { cwd: dir, stdio: "ignore" })
    }
    const out = execFileSync(process.execPath, [Path.join(dir, "run.mjs")], {
      env: { ...process.env, DATABASE_URL: serverUrl },
      encoding: "utf8"
    })
    const last = out.trim().split("\n").at(-1)!
    return JSON.parse(last) as Dbos
  } catch (error) {
    console.error(`DBOS not measured: ${error instanceof Error ? error.message : String(error)}`)
    return undefined
  }
}

const main = async () => {
  const table: Array<Row> = []
  for (const workload of ["linear", "concurrent", "rerun"] as const) {
    for (const store of ["memory", "postgres", "postgres worker"] as const) {
      if (workload !== "concurrent" && store === "postgres worker") continue
      await measure(workload, store, -1)
      const samples: Array<Row> = []
      for (let r = 0; r < REPEATS; r++) samples.push(await measure(workload, store, r))
      // The median sample by throughput.
      samples.sort((a, b) => a.nodesPerSec - b.nodesPerSec)
      table.push(samples[Math.floor(samples.length / 2)]!)
    }
  }
  const other = dbos()
  const fmt = (x: number | null, digits = 2) => (x === null ? "-" : x.toFixed(digits))
  console.log(`load average ${Os.loadavg().map((l) => l.toFixed(2)).join(" ")}, ${Os.cpus().length} cpus, server ${new URL(serverUrl).host}`)
  console.log("workload    store            nodes      ms   nodes/s  trips/node  rows/node  p50 ms/node  p95 ms/node")
  for (const row of table) {
    console.log(
      `${row.workload.padEnd(11)} ${row.store.padEnd(16)} ${String(row.nodes).padStart(5)} ${fmt(row.ms, 0).padStart(7)} ${
        fmt(row.nodesPerSec, 0).padStart(9)
      } ${fmt(row.roundTripsPerNode).padStart(11)} ${fmt(row.rowsPerNode).padStart(10)} ${fmt(row.p50, 3).padStart(12)} ${
        fmt(row.p95, 3).padStart(12)
      }`
    )
  }
  if (other !== undefined) {
    console.log(`DBOS 5.3   linear ${other.linearMsPerStep.toFixed(3)} ms/step (${other.linearStepsPerSec.toFixed(0)} steps/s), concurrent ${
      other.concurrentStepsPerSec.toFixed(0)
    } steps/s`)
  }
  const find = (workload: Row["workload"], store: Store) => table.find((r) => r.workload === workload && r.store === store)!
  const linearSql = find("linear", "postgres")
  const linearMemory = find("linear", "memory")
  const concurrentSql = find("concurrent", "postgres")
  const result = {
    linearNodesPerSec: Math.round(linearSql.nodesPerSec),
    concurrentNodesPerSec: Math.round(concurrentSql.nodesPerSec),
    workerConcurrentNodesPerSec: Math.round(find("concurrent", "postgres worker").nodesPerSec),
    roundTripsPerNode: Number(concurrentSql.roundTripsPerNode!.toFixed(3)),
    linearRoundTripsPerNode: Number(linearSql.roundTripsPerNode!.toFixed(3)),
    workerRoundTripsPerNode: Number(find("concurrent", "postgres worker").roundTripsPerNode!.toFixed(3)),
    rerunNodesPerSec: Math.round(find("rerun", "postgres").nodesPerSec),
    rerunRoundTripsPerNode: Number(find("rerun", "postgres").roundTripsPerNode!.toFixed(3)),
    rowsPerNode: Number(concurrentSql.rowsPerNode!.toFixed(3)),
    overheadP50Ms: Number((linearSql.p50! - linearMemory.p50!).toFixed(3)),
    overheadP95Ms: Number((linearSql.p95! - linearMemory.p95!).toFixed(3)),
    dbosConcurrentStepsPerSec: other === undefined ? null : Math.round(other.concurrentStepsPerSec),
    dbosLinearMsPerStep: other === undefined ? null : Number(other.linearMsPerStep.toFixed(3)),
    ratioVsDbos: other === undefined ? null : Number((concurrentSql.nodesPerSec / other.concurrentStepsPerSec).toFixed(2)),
    workerRatioVsDbos: other === undefined
      ? null
      : Number((find("concurrent", "postgres worker").nodesPerSec / other.concurrentStepsPerSec).toFixed(2))
  }
  console.log(`RESULT ${JSON.stringify(result)}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
