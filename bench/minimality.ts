/**
 * Re-executed blocks against two peers (issue 16): on random edits with in-container targets
 * (`Peers.arbitraryEdit`: a block inside a loop or parallel edited and run from, a destination
 * half the time), the block instances Ripple re-executes — its plan as the reference executor
 * runs it (`plan`), and the engine with early cutoff (`ripple`) — next to Sim's shipped closure
 * and n8n's partial execution rule (`Peers.sim`, `Peers.n8n`), each counted as the instances of
 * its blocks a full run of the edited workflow executes.
 *
 * `EDITS` (default 1000) edits, `SEED` (default 16). Prints averages, then `RESULT {...}` last with
 * the largest per-edit difference Ripple − peer (never above 0 is the claim).
 */
import { Laws, Peers } from "@ripple/core/testing"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import * as os from "node:os"
import { BLOCK_SEED, executedBlocks, layer, priorThenRunFrom } from "./lib/modelRuns.ts"

const EDITS = Number(process.env.EDITS ?? 1000)
const SEED = Number(process.env.SEED ?? 16)

interface Row {
  readonly ripple: number
  readonly plan: number
  readonly sim: number
  readonly n8n: number
}

const measure = (edit: Peers.Edit) =>
  Effect.map(priorThenRunFrom(edit.before, edit.after, { target: edit.target, to: edit.to }), ({ run, source }): Row => {
    const trial = Laws.trial({ ...edit, seed: BLOCK_SEED })
    const executed = trial.fresh.executed
    return {
      ripple: executedBlocks(run),
      plan: trial.replay.executed.filter((key) => !key.includes("#")).length,
      sim: Peers.instancesOf(Peers.sim(edit), executed),
      n8n: Peers.instancesOf(Peers.n8n(edit, source), executed)
    }
  })

const main = async () => {
  const edits = fc.sample(Peers.arbitraryEdit(BLOCK_SEED), { seed: SEED, numRuns: EDITS })
  const started = performance.now()
  const rows = await Effect.runPromise(Effect.provide(Effect.forEach(edits, measure), layer))
  const seconds = (performance.now() - started) / 1000
  const mean = (f: (r: Row) => number) => Math.round((rows.reduce((sum, r) => sum + f(r), 0) / rows.length) * 100) / 100
  const max = (f: (r: Row) => number) => rows.reduce((m, r) => Math.max(m, f(r)), -Infinity)
  const fewer = (f: (r: Row) => number) => rows.filter((r) => f(r) < 0).length
  const result = {
    edits: rows.length,
    seed: SEED,
    mean: { ripple: mean((r) => r.ripple), plan: mean((r) => r.plan), sim: mean((r) => r.sim), n8n: mean((r) => r.n8n) },
    maxDiff: { rippleMinusSim: max((r) => r.ripple - r.sim), rippleMinusN8n: max((r) => r.ripple - r.n8n), planMinusSim: max((r) => r.plan - r.sim), planMinusN8n: max((r) => r.plan - r.n8n) },
    strictlyFewer: { thanSim: fewer((r) => r.ripple - r.sim), thanN8n: fewer((r) => r.ripple - r.n8n) },
    ratio: { simOverRipple: Math.round((mean((r) => r.sim) / mean((r) => r.ripple)) * 100) / 100, n8nOverRipple: Math.round((mean((r) => r.n8n) / mean((r) => r.ripple)) * 100) / 100 },
    seconds: Math.round(seconds),
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100)
  }
  console.log(`re-executed block instances per edit (mean of ${rows.length}): ripple ${result.mean.ripple} (plan without cutoff ${result.mean.plan}), Sim ${result.mean.sim}, n8n ${result.mean.n8n}`)
  console.log(`largest per-edit difference ripple − Sim ${result.maxDiff.rippleMinusSim}, ripple − n8n ${result.maxDiff.rippleMinusN8n}`)
  console.log(`RESULT ${JSON.stringify(result)}`)
}

void main()
