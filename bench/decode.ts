/**
 * `Workflow.decode` at scale: seeded pipeline workflows of 10^4, 10^5 and 10^6 blocks whose blocks
 * carry references (see `lib/workflow.ts`), next to `JSON.parse` of the same file text measured in
 * the same process, in alternation, so both see the same machine load.
 *
 * `decode` is given the parsed value (what a loader has after reading the file), so the ratio is
 * what validation adds on top of the parsing any loader does anyway. Target: ≤ 3× at 10^6.
 * Each figure is the median of the repeats, after warm-up runs, with a GC before each run.
 * Prints a table, then `RESULT {...}` last.
 */
import { Workflow } from "@ripple/core"
import * as Result from "effect/Result"
import * as os from "node:os"
import { makeWorkflow } from "./lib/workflow.ts"

const SIZES: ReadonlyArray<number> = process.env.BENCH_SIZES === undefined
  ? [10_000, 100_000, 1_000_000]
  : process.env.BENCH_SIZES.split(",").map(Number)
const TARGET_RATIO = 3

const gc = (globalThis as { gc?: () => void }).gc
const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[values.length >> 1]!
const round = (x: number) => Math.round(x * 100) / 100

const timed = (f: () => unknown): number => {
  gc?.()
  const t0 = performance.now()
  f()
  return performance.now() - t0
}

interface Row {
  readonly blocks: number
  readonly megabytes: number
  readonly parseMs: number
  readonly decodeMs: number
  readonly ratio: number
  readonly usPerBlock: number
}

const rows: Array<Row> = []
for (const n of SIZES) {
  const text = JSON.stringify(makeWorkflow(n, 0xc0de + n))
  const parsed = JSON.parse(text) as unknown
  // The default `maxNodes` (10^6) refuses the largest workflow: its loops multiply its nodes.
  const options = { limits: { maxNodes: 10 * n } }
  const checked = Workflow.decode(parsed, options)
  if (Result.isFailure(checked)) throw new Error(`bench workflow does not decode: ${checked.failure._tag}`)
  const repeats = n >= 1_000_000 ? 5 : n >= 100_000 ? 7 : 15
  const warmups = n >= 1_000_000 ? 1 : n >= 100_000 ? 2 : 5
  for (let k = 0; k < warmups; k++) {
    JSON.parse(text)
    Workflow.decode(parsed, options)
  }
  const parse: Array<number> = []
  const decode: Array<number> = []
  for (let k = 0; k < repeats; k++) {
    parse.push(timed(() => JSON.parse(text)))
    decode.push(timed(() => Workflow.decode(parsed, options)))
  }
  const parseMs = median(parse)
  const decodeMs = median(decode)
  rows.push({
    blocks: n,
    megabytes: round(text.length / 2 ** 20),
    parseMs: round(parseMs),
    decodeMs: round(decodeMs),
    ratio: round(decodeMs / parseMs),
    usPerBlock: round((decodeMs * 1000) / n)
  })
}

const columns = ["blocks", "megabytes", "parseMs", "decodeMs", "ratio", "usPerBlock"] as const
const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)))
console.log(columns.map((c, k) => c.padStart(widths[k]!)).join("  "))
for (const r of rows) console.log(columns.map((c, k) => String(r[c]).padStart(widths[k]!)).join("  "))
const loadAverage = round(os.loadavg()[0]!)
console.log(`(median of repeats; ratio = decodeMs / parseMs, JSON.parse of the same text; target: ≤ ${TARGET_RATIO}x at the largest size)`)
console.log(`(node ${process.version}, cpus: ${os.cpus().length}, 1-minute load average: ${loadAverage}${gc === undefined ? ", run with --expose-gc" : ""})`)
console.log(`RESULT ${JSON.stringify({ rows, targetRatio: TARGET_RATIO, cpus: os.cpus().length, loadAverage })}`)
