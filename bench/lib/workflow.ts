/**
 * The workflow the core benchmarks decode, expand and fingerprint: it looks like a real pipeline.
 * Each block reads one predecessor's output by reference, about 1.5 edges per block come from a
 * window behind it, and 2 % of the blocks sit in small loops / parallels. Seeded, so every run
 * measures the same workflow.
 */
import type { Workflow } from "@ripple/core"
import { generator } from "./random.ts"

export const makeWorkflow = (n: number, seed: number): Workflow.Workflow => {
  const next = generator(seed)
  const blocks: Array<Workflow.Block> = [{ id: "b0", type: "trigger" }]
  const edges: Array<Workflow.Edge> = []
  const loops: Array<Workflow.Loop> = []
  const parallels: Array<Workflow.Parallel> = []
  const top: Array<string> = ["b0"]
  let i = 1
  while (i < n) {
    const window = Math.min(top.length, 64)
    const first = top[top.length - 1 - next(window)]!
    if (n - i > 10 && next(50) === 0) {
      // A container of 4 chained body blocks, entered from a top-level predecessor.
      const id = `c${i}`
      const loop = next(2) === 0
      const body: Array<string> = []
      for (let k = 0; k < 4; k++, i++) {
        const member = `b${i}`
        blocks.push({ id: member, type: "fn", params: { k, at: { $ref: loop ? "loop.index" : "parallel.index" } } })
        if (k > 0) edges.push({ source: body[k - 1]!, target: member })
        body.push(member)
      }
      if (loop) loops.push({ id, kind: "count", count: 3, body, maxIterations: 10 })
      else parallels.push({ id, kind: "count", count: 2, body, concurrency: 2 })
      edges.push({ source: first, target: id })
      top.push(id)
      continue
    }
    const id = `b${i}`
    edges.push({ source: first, target: id })
    if (top.length > 2 && next(2) === 0) {
      const second = top[top.length - 1 - next(window)]!
      if (second !== first) edges.push({ source: second, target: id })
    }
    blocks.push({
      id,
      // Two user block types: a built-in one (`http`) would have its params refused by its schema.
      type: next(4) === 0 ? "fetch" : "fn",
      name: `Step ${i}`,
      params: { k: i, label: `step-${i}`, input: { $ref: `blocks.${first}.output.value` }, options: { retries: 2, mode: "fast" } },
      ...(next(8) === 0 ? { retry: { maxAttempts: 3, initialDelayMs: 50 } } : {})
    })
    top.push(id)
    i++
  }
  return { id: "bench", version: 1, blocks, edges, loops, parallels, outputs: [top[top.length - 1]!] }
}
