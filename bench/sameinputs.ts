/**
 * Re-runs with identical inputs (issue 16, item 5): over random run-from steps on the engine (a
 * full run of a random workflow, random edits, then `Runs.runFrom` of the edited workflow from a
 * random target, early cutoff on), the handler calls that re-ran a block instance with exactly
 * what its prior run gave it — the same definition, the same resolved inputs and the same
 * loop/parallel item its handler reads (`ctx.loop` / `ctx.parallel`, the innermost of each kind) —
 * although it is neither the target, nor `volatile`, nor pinned, nor disabled. A block is a
 * deterministic function of those, so each such call recomputes an output the prior run has.
 *
 * What counts is `Laws.identicalReruns` (stated from those definitions, not from the engine's check).
 * Each call is counted under the plan's reasons for its block: `wiring-changed` (incoming edges;
 * routers and conditions apart, whose wiring includes their outgoing routes), `failed-last-time` /
 * `incomplete` (another instance of the block did not complete), only `downstream` /
 * `container-reset` (before issue 16, cutoff compared every enclosing container's item: these
 * differed in an outer one the block cannot see), and anything else.
 *
 * `STEPS` (default 3000) steps, `SEED` (default 16). Prints the counts, then `RESULT {...}` last.
 */
import { Arbitraries, Laws, Model } from "@ripple/core/testing"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import * as os from "node:os"
import { executedBlocks, layer, priorThenRunFrom } from "./lib/modelRuns.ts"

const STEPS = Number(process.env.STEPS ?? 3000)
const SEED = Number(process.env.SEED ?? 16)

type Counts = Record<string, number>

/** The causes, from the plan's reasons for the block of an identical re-run. */
const causeOf = (reasons: string, type: string): string => {
  const tags = new Set(reasons.split("+"))
  if (tags.has("wiring-changed")) return type === "router" || type === "condition" ? "wiring-changed (router)" : "wiring-changed"
  if (tags.has("failed-last-time") || tags.has("incomplete")) return "another instance failed"
  // Before the change, cutoff compared every enclosing container's item: these differed only in an outer one.
  if ([...tags].every((tag) => tag === "downstream" || tag === "container-reset")) return "outer item changed"
  return reasons
}

const step = (scenario: Arbitraries.EditedScenario, counts: Counts) =>
  Effect.gen(function*() {
    const outcome = yield* Effect.result(priorThenRunFrom(scenario.before, scenario.after, { target: scenario.target }))
    if (outcome._tag === "Failure") return
    const { plan, run, source } = outcome.success
    counts["steps"] = (counts["steps"] ?? 0) + 1
    counts["calls"] = (counts["calls"] ?? 0) + executedBlocks(run)
    for (const found of Laws.identicalReruns(scenario, plan, source, run)) {
      const type = scenario.after.blocks.find((b) => b.id === Model.nodeOfKey(found.node))!.type
      const cause = `identical: ${causeOf(found.reasons, type)}`
      counts["identical"] = (counts["identical"] ?? 0) + 1
      counts[cause] = (counts[cause] ?? 0) + 1
    }
  })

const main = async () => {
  const scenarios = fc.sample(Arbitraries.arbitraryScenario({ failing: true, maxMembers: 5 }), { seed: SEED, numRuns: STEPS })
  const counts: Counts = {}
  const started = performance.now()
  await Effect.runPromise(Effect.provide(Effect.forEach(scenarios, (s) => step(s, counts), { discard: true }), layer))
  const seconds = (performance.now() - started) / 1000
  for (const [key, value] of Object.entries(counts).sort()) console.log(`${key.padEnd(44)} ${value}`)
  console.log(`RESULT ${JSON.stringify({ steps: counts["steps"] ?? 0, seed: SEED, handlerCalls: counts["calls"] ?? 0, identical: counts["identical"] ?? 0, byCause: Object.fromEntries(Object.entries(counts).filter(([k]) => k.startsWith("identical: ")).map(([k, v]) => [k.slice(11), v])), seconds: Math.round(seconds), loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100) })}`)
}

void main()
