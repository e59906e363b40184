import { Dag, Fingerprint, Workflow } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import { arbitraryWorkflow } from "../arbitraries/workflow.ts"

const dagOf = (file: unknown) => Dag.make(Result.getOrThrow(Workflow.decode(file)))

/** A random DAG over shuffled labels: edges go from lower to higher rank. */
const arbitraryEdgeDag = fc
  .integer({ min: 1, max: 40 })
  .chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n }),
      fc.array(fc.tuple(fc.nat({ max: n - 1 }), fc.nat({ max: n - 1 })), { maxLength: 3 * n })
    )
  )
  .map(([n, rank, pairs]) => {
    const edges = pairs.filter(([a, b]) => a !== b).map(([a, b]) => (a < b ? [rank[a]!, rank[b]!] : [rank[b]!, rank[a]!]))
    return Dag.fromEdges(n, edges.map((e) => e[0]!), edges.map((e) => e[1]!))
  })

const arbitraryDag = fc.oneof(arbitraryWorkflow().map(dagOf), arbitraryEdgeDag)

/** Naive closure with a Set, the oracle for `downstream`/`upstream`. */
const naiveReach = (dag: Dag.Dag, root: number, forward: boolean, stopAt: (i: number) => boolean) => {
  const seen = new Set([root])
  const todo = [root]
  while (todo.length > 0) {
    const i = todo.pop()!
    if (stopAt(i)) continue
    for (const j of forward ? Dag.successors(dag, i) : Dag.predecessors(dag, i)) {
      if (!seen.has(j)) {
        seen.add(j)
        todo.push(j)
      }
    }
  }
  return seen
}

/** xorshift32 from `seed`: draws an integer in `[0, bound)`. */
const seeded = (seed: number) => {
  let state = seed | 1
  return (bound: number) => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) % bound
  }
}

/** Naive stable topological order: repeatedly take the lowest ready index. */
const naiveTopo = (dag: Dag.Dag) => {
  const done = new Set<number>()
  const out: Array<number> = []
  while (out.length < Dag.size(dag)) {
    for (let i = 0; i < Dag.size(dag); i++) {
      if (!done.has(i) && Dag.predecessors(dag, i).every((p) => done.has(p))) {
        done.add(i)
        out.push(i)
        break
      }
    }
  }
  return out
}

describe("Dag laws", () => {
  it("topo lists every node once and respects every edge", () => {
    fc.assert(
      fc.property(arbitraryDag, (dag) => {
        const order = Dag.topo(dag)
        assert.strictEqual(order.length, Dag.size(dag))
        const position = new Int32Array(Dag.size(dag)).fill(-1)
        order.forEach((i, k) => {
          assert.strictEqual(position[i], -1)
          position[i] = k
        })
        for (let i = 0; i < Dag.size(dag); i++) {
          for (const j of Dag.successors(dag, i)) assert.isBelow(position[i]!, position[j]!)
        }
      }),
      { numRuns: 300 }
    )
  })

  it("topo is stable: among ready nodes the earliest declared goes first", () => {
    fc.assert(
      fc.property(arbitraryDag, (dag) => {
        assert.deepStrictEqual(Array.from(Dag.topo(dag)), naiveTopo(dag))
      }),
      { numRuns: 200 }
    )
  })

  it("topo is stable on DAGs of thousands of nodes (long drains below the sweep)", () => {
    const arbitraryLarge = fc
      .integer({ min: 500, max: 3000 })
      .chain((n) => fc.tuple(fc.constant(n), fc.integer(), fc.integer({ min: 1, max: 4 })))
      .map(([n, seed, degree]) => {
        // A seeded shuffle and seeded edges: fast-check shrinks the seed, not thousands of pairs.
        const next = seeded(seed)
        const rank = Array.from({ length: n }, (_, i) => i)
        for (let i = n - 1; i > 0; i--) {
          const j = next(i + 1)
          ;[rank[i], rank[j]] = [rank[j]!, rank[i]!]
        }
        const sources: Array<number> = []
        const targets: Array<number> = []
        for (let e = 0; e < degree * n; e++) {
          const a = next(n)
          const b = next(n)
          if (a === b) continue
          sources.push(rank[Math.min(a, b)]!)
          targets.push(rank[Math.max(a, b)]!)
        }
        return Dag.fromEdges(n, sources, targets)
      })
    // The oracle: Kahn's algorithm over a sorted array of ready nodes.
    const sortedTopo = (dag: Dag.Dag) => {
      const left = Array.from({ length: Dag.size(dag) }, (_, i) => Dag.predecessors(dag, i).length)
      const ready = left.flatMap((d, i) => (d === 0 ? [i] : []))
      const out: Array<number> = []
      while (ready.length > 0) {
        const i = ready.shift()!
        out.push(i)
        for (const j of Dag.successors(dag, i)) {
          if (--left[j]! === 0) {
            let at = 0
            while (at < ready.length && ready[at]! < j) at++
            ready.splice(at, 0, j)
          }
        }
      }
      return out
    }
    fc.assert(
      fc.property(arbitraryLarge, (dag) => {
        assert.deepStrictEqual(Array.from(Dag.topo(dag)), sortedTopo(dag))
      }),
      { numRuns: 40 }
    )
  })

  it("the CSR keeps each node's edges, and their workflow edge ids, in input order across buckets of 4096 nodes", () => {
    // Up to 10^4 nodes: the build sorts edges into buckets of 4096 nodes, then within each bucket.
    const arbitraryEdges = fc
      .integer({ min: 1, max: 10_000 })
      .chain((n) => fc.tuple(fc.constant(n), fc.integer(), fc.integer({ min: 0, max: 4 })))
      .map(([n, seed, degree]) => {
        const next = seeded(seed)
        const sources = Array.from({ length: degree * n }, () => next(n))
        const targets = Array.from({ length: degree * n }, () => next(n))
        return { n, sources, targets }
      })
    const byNode = (n: number, keys: ReadonlyArray<number>, values: ReadonlyArray<number>) => {
      const rows = Array.from({ length: n }, (): Array<number> => [])
      keys.forEach((key, e) => rows[key]!.push(values[e]!))
      return rows
    }
    fc.assert(
      fc.property(arbitraryEdges, ({ n, sources, targets }) => {
        const bare = Dag.fromEdges(n, sources, targets)
        const out = byNode(n, sources, targets)
        const into = byNode(n, targets, sources)
        for (let i = 0; i < n; i++) {
          assert.deepStrictEqual(Array.from(Dag.successors(bare, i)), out[i])
          assert.deepStrictEqual(Array.from(Dag.predecessors(bare, i)), into[i])
        }
        // The same pairs as the edges of a workflow (lower block first, so acyclic, once each),
        // where each CSR edge also carries the index of its workflow edge.
        const seen = new Set<number>()
        const keptSources: Array<number> = []
        const keptTargets: Array<number> = []
        sources.forEach((s, e) => {
          const [a, b] = s < targets[e]! ? [s, targets[e]!] : [targets[e]!, s]
          if (a === b || seen.has(a * n + b)) return
          seen.add(a * n + b)
          keptSources.push(a)
          keptTargets.push(b)
        })
        const dag = Result.getOrThrow(
          Dag.fromWorkflow({
            id: "w",
            blocks: Array.from({ length: n }, (_, i) => ({ id: `b${i}`, type: "fn" })),
            edges: keptSources.map((a, k) => ({ source: `b${a}`, target: `b${keptTargets[k]}` }))
          })
        )
        const kept = keptSources
        const ordinals = kept.map((_, k) => k)
        const outEdges = byNode(n, keptSources, ordinals)
        const inEdges = byNode(n, keptTargets, ordinals)
        for (let i = 0; i < n; i++) {
          assert.deepStrictEqual(Array.from(Dag.successorEdges(dag, i)), outEdges[i])
          assert.deepStrictEqual(Array.from(Dag.predecessorEdges(dag, i)), inEdges[i])
          assert.deepStrictEqual(Array.from(Dag.successors(dag, i)), outEdges[i]!.map((k) => keptTargets[k]!))
        }
      }),
      { numRuns: 30 }
    )
  })

  it("downstream and upstream are duals and match a naive closure (with stopAt)", () => {
    fc.assert(
      fc.property(arbitraryDag, fc.infiniteStream(fc.boolean()), (dag, coins) => {
        const n = Dag.size(dag)
        const iterator = coins[Symbol.iterator]()
        const stopped = Array.from({ length: n }, () => iterator.next().value === true && iterator.next().value === true)
        const stopAt = (i: number) => stopped[i]!
        const down = Array.from({ length: n }, (_, i) => Dag.downstream(dag, [i]))
        const up = Array.from({ length: n }, (_, i) => Dag.upstream(dag, [i]))
        for (let i = 0; i < n; i++) {
          const naive = naiveReach(dag, i, true, () => false)
          for (let j = 0; j < n; j++) {
            assert.strictEqual(down[i]![j], up[j]![i], `duality ${i} ${j}`)
            assert.strictEqual(down[i]![j] === 1, naive.has(j))
          }
          const stoppedDown = Dag.downstream(dag, [i], { stopAt })
          const stoppedUp = Dag.upstream(dag, [i], { stopAt })
          const naiveDown = naiveReach(dag, i, true, stopAt)
          const naiveUp = naiveReach(dag, i, false, stopAt)
          for (let j = 0; j < n; j++) {
            assert.strictEqual(stoppedDown[j] === 1, naiveDown.has(j))
            assert.strictEqual(stoppedUp[j] === 1, naiveUp.has(j))
          }
        }
      }),
      { numRuns: 150 }
    )
  })

  it("downstream of several roots is the union of their closures", () => {
    fc.assert(
      fc.property(arbitraryDag, fc.array(fc.nat(), { maxLength: 4 }), (dag, picks) => {
        const roots = picks.map((p) => p % Dag.size(dag))
        const together = Dag.downstream(dag, roots)
        const union = new Uint8Array(Dag.size(dag))
        for (const r of roots) Dag.downstream(dag, [r]).forEach((m, j) => (union[j] = union[j]! | m))
        assert.deepStrictEqual(together, union)
      })
    )
  })

  it("sinks are exactly the nodes without successors; observed falls back to them", () => {
    fc.assert(
      fc.property(arbitraryEdgeDag, (dag) => {
        const expected = Array.from({ length: Dag.size(dag) }, (_, i) => i).filter((i) => Dag.successors(dag, i).length === 0)
        assert.deepStrictEqual(Array.from(Dag.sinks(dag)), expected)
        assert.deepStrictEqual(Array.from(Dag.observed(dag)), expected)
      })
    )
  })

  it("expansion: one node per block, two per container, every edge through sentinels", () => {
    fc.assert(
      fc.property(arbitraryWorkflow(), (file) => {
        const dag = dagOf(file)
        const containers = new Set([...file.loops, ...file.parallels].map((c) => c.id))
        assert.strictEqual(Dag.size(dag), file.blocks.length + 2 * containers.size)
        const exit = (id: string) => Dag.indexOf(dag, containers.has(id) ? `${id}#end` : id)!
        const entry = (id: string) => Dag.indexOf(dag, containers.has(id) ? `${id}#start` : id)!
        file.edges.forEach((edge, e) => {
          const from = exit(edge.source)
          const k = Array.from(Dag.successors(dag, from)).findIndex((t, k) => t === entry(edge.target) && Dag.successorEdges(dag, from)[k] === e)
          assert.isAtLeast(k, 0)
          assert.strictEqual(Dag.handleOf(dag, Dag.successorEdges(dag, from)[k]!), edge.handle)
        })
        assert.strictEqual(dag.edgeCount - file.edges.length, Array.from(dag.outEdges).filter((e) => e === -1).length)
        for (const c of containers) {
          const start = Dag.indexOf(dag, `${c}#start`)!
          const end = Dag.indexOf(dag, `${c}#end`)!
          const below = Dag.downstream(dag, [start])
          const above = Dag.upstream(dag, [end])
          for (let i = 0; i < Dag.size(dag); i++) {
            if (Dag.nodeOf(dag, i).chain.includes(c)) {
              assert.strictEqual(below[i], 1, `${c}#start reaches ${Dag.idOf(dag, i)}`)
              assert.strictEqual(above[i], 1, `${Dag.idOf(dag, i)} reaches ${c}#end`)
            }
          }
        }
      }),
      { numRuns: 200 }
    )
  })

  it("every node's chain, loop and parallel match the containers that hold it", () => {
    fc.assert(
      fc.property(arbitraryWorkflow(), (file) => {
        const dag = dagOf(file)
        const parent = new Map<string, string>()
        const kind = new Map<string, "loop" | "parallel">()
        for (const l of file.loops) for (const m of l.body) (parent.set(m, l.id), kind.set(l.id, "loop"))
        for (const p of file.parallels) for (const m of p.body) (parent.set(m, p.id), kind.set(p.id, "parallel"))
        for (let i = 0; i < Dag.size(dag); i++) {
          const node = Dag.nodeOf(dag, i)
          const chain: Array<string> = []
          for (let c = parent.get(node.id); c !== undefined; c = parent.get(c)) chain.unshift(c)
          assert.deepStrictEqual(node.chain, chain)
          assert.strictEqual(node.loop, chain.findLast((c) => kind.get(c) === "loop"))
          assert.strictEqual(node.parallel, chain.findLast((c) => kind.get(c) === "parallel"))
          assert.strictEqual(node.containerKind, node.kind === "block" ? undefined : kind.get(node.id))
        }
      }),
      { numRuns: 200 }
    )
  })

  it("triggers and observed outputs follow their definitions", () => {
    fc.assert(
      fc.property(arbitraryWorkflow(), (file) => {
        const dag = dagOf(file)
        const ids = (xs: Int32Array) => Array.from(xs, (i) => Dag.idOf(dag, i)).sort()
        assert.deepStrictEqual(ids(Dag.triggers(dag)), file.blocks.filter((b) => b.type === "trigger").map((b) => b.id).sort())
        const responses = file.blocks.filter((b) => b.type === "response").map((b) => b.id)
        const containers = new Set([...file.loops, ...file.parallels].map((c) => c.id))
        const expected = responses.length > 0
          ? responses
          : file.outputs !== undefined
          ? file.outputs.map((o) => (containers.has(o) ? `${o}#end` : o))
          : ids(Dag.sinks(dag))
        assert.deepStrictEqual(ids(Dag.observed(dag)), [...expected].sort())
      }),
      { numRuns: 200 }
    )
  })

  it("a node's fingerprint changes exactly when its own definition changes", () => {
    fc.assert(
      fc.property(arbitraryWorkflow(), fc.nat(), fc.integer(), (file, pick, value) => {
        const before = dagOf(file)
        const block = file.blocks[pick % file.blocks.length]!
        const edited = {
          ...file,
          blocks: file.blocks.map((b) => (b === block ? { ...b, params: { ...b.params, zEdited: value }, name: "renamed" } : b))
        }
        const after = dagOf(edited)
        for (let i = 0; i < Dag.size(before); i++) {
          const same = Fingerprint.ofNode(before, i) === Fingerprint.ofNode(after, i)
          assert.strictEqual(same, Dag.idOf(before, i) !== block.id)
        }
      }),
      { numRuns: 200 }
    )
  })
})
