/**
 * Core hot paths at scale: `Workflow.decode`, `Dag.make`, `Fingerprint.hash(Workflow.encode(w))`
 * (the runtime's content-addressed workflow version) and `Fingerprint.ofBlock` over every block, on
 * seeded random workflows of 10^4, 10^5 and 10^6 blocks, each next to a floor measured in the same
 * process on the same data:
 *
 * - decode vs `JSON.parse` of the file text (the work any loader does anyway);
 * - make vs a `Map` from every block id to its index (the one string-keyed structure a DAG needs);
 * - version vs `JSON.stringify` of the workflow + md5 of the text (`node:crypto`);
 * - ofBlock vs `JSON.stringify` of each block + md5 of each text.
 *
 * Workflows look like real pipelines: each block reads one predecessor's output by reference, about
 * 1.5 edges per block from a window behind it, and 2 % of the blocks sit in small loops / parallels.
 * Figures are medians of repeats after warm-up. Prints a table, then `RESULT {...}` last.
 */
import { Dag, Fingerprint, Workflow } from "@ripple/core"
import * as Result from "effect/Result"
import { createHash } from "node:crypto"
import * as os from "node:os"
import { makeWorkflow } from "./lib/workflow.ts"

const SIZES: ReadonlyArray<number> = process.env.BENCH_SIZES === undefined
  ? [10_000, 100_000, 1_000_000]
  : process.env.BENCH_SIZES.split(",").map(Number)
/** decode of 10^6 blocks takes minutes when it is slow: skip it above this projected time. */
const BUDGET_MS = 20_000

const gc = (globalThis as { gc?: () => void }).gc
const now = () => performance.now()
const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[values.length >> 1]!
const round = (x: number) => Math.round(x * 100) / 100

/** Median wall time of `f` over `repeats` runs after `warmups` runs, with a GC before each run. */
const measure = (f: () => unknown, repeats: number, warmups: number): number => {
  for (let k = 0; k < warmups; k++) f()
  const samples: Array<number> = []
  for (let k = 0; k < repeats; k++) {
    gc?.()
    const t0 = now()
    f()
    samples.push(now() - t0)
  }
  return median(samples)
}

const md5 = (text: string) => createHash("md5").update(text).digest("hex")

interface Row {
  readonly op: string
  readonly blocks: number
  readonly ms: number | null
  readonly floorMs: number
  readonly ratio: number | null
  readonly usPerBlock: number | null
}

const rows: Array<Row> = []
let lastDecode: { readonly n: number; readonly ms: number } | undefined
for (const n of SIZES) {
  const workflow = makeWorkflow(n, 0xc0de + n)
  const text = JSON.stringify(workflow)
  const repeats = n >= 1_000_000 ? 3 : n >= 100_000 ? 5 : 15
  const warmups = n >= 1_000_000 ? 1 : n >= 100_000 ? 2 : 5
  const row = (op: string, ms: number | null, floorMs: number) =>
    rows.push({
      op,
      blocks: n,
      ms: ms === null ? null : round(ms),
      floorMs: round(floorMs),
      ratio: ms === null ? null : round(ms / floorMs),
      usPerBlock: ms === null ? null : round((ms * 1000) / n)
    })

  const parsed = JSON.parse(text) as unknown
  // The default `maxNodes` (10^6) refuses the largest workflow: its loops multiply its nodes.
  const options = { limits: { maxNodes: 10 * n } }
  const decoded = Workflow.decode(parsed, options)
  if (Result.isFailure(decoded)) throw new Error(`bench workflow does not decode: ${decoded.failure._tag}`)
  const projected = lastDecode === undefined ? 0 : (lastDecode.ms * n) / lastDecode.n
  const decodeMs = projected <= BUDGET_MS ? measure(() => Workflow.decode(parsed, options), repeats, warmups) : null
  if (decodeMs !== null) lastDecode = { n, ms: decodeMs }
  row("decode", decodeMs, measure(() => JSON.parse(text), repeats, warmups))

  const w = decoded.success
  const dag = Dag.make(w)
  if (Dag.size(dag) !== w.blocks.length + 2 * ((w.loops?.length ?? 0) + (w.parallels?.length ?? 0))) throw new Error("wrong DAG size")
  row("Dag.make", measure(() => Dag.make(w), repeats, warmups), measure(() => {
    const index = new Map<string, number>()
    for (let b = 0; b < w.blocks.length; b++) index.set(w.blocks[b]!.id, b)
    return index
  }, repeats, warmups))

  row(
    "version",
    measure(() => Fingerprint.hash(Workflow.encode(w)), repeats, warmups),
    measure(() => md5(JSON.stringify(w)), repeats, warmups)
  )

  row(
    "ofBlock",
    measure(() => {
      for (const block of w.blocks) Fingerprint.ofBlock(block)
    }, repeats, warmups),
    measure(() => {
      for (const block of w.blocks) md5(JSON.stringify(block))
    }, repeats, warmups)
  )
}

const columns = ["op", "blocks", "ms", "floorMs", "ratio", "usPerBlock"] as const
const cell = (r: Row, c: (typeof columns)[number]) => (r[c] === null ? "skipped" : String(r[c]))
const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)))
console.log(columns.map((c, k) => c.padStart(widths[k]!)).join("  "))
for (const r of rows) console.log(columns.map((c, k) => cell(r, c).padStart(widths[k]!)).join("  "))
const loadAverage = round(os.loadavg()[0]!)
console.log("(median of repeats; ratio = ms / floorMs; floors: decode JSON.parse of the text, Dag.make a Map of block ids,")
console.log(" version JSON.stringify + md5, ofBlock JSON.stringify + md5 per block)")
console.log(`(cpus: ${os.cpus().length}, 1-minute load average: ${loadAverage}${gc === undefined ? ", run with --expose-gc" : ""})`)
console.log(`RESULT ${JSON.stringify({ rows, cpus: os.cpus().length, loadAverage })}`)
