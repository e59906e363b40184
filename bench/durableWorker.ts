/**
 * A worker process over `DATABASE_URL`, for `tests/sql/MultiProcess.test.ts` (kill -9, many
 * workers) and `bench:durable`. Compiled by `tsc -b` to `bench/dist/durableWorker.js`.
 *
 * Block type `step` records each execution in `test_executions` (run, node, pid, and whether the
 * node's journal row was already completed: a completed node executed again), sleeps
 * `RIPPLE_STEP_MS`, and outputs `{ v }` computed from its `prev` input, so every run's outputs are
 * deterministic. `RIPPLE_RECORD=0` skips the bookkeeping (benchmarks). Prints `ready` once the
 * worker is claiming; SIGTERM shuts it down gracefully.
 */
import type { Handler } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import { env, runWorker } from "./lib/workerProcess.ts"

const stepMs = env("RIPPLE_STEP_MS", 0)
const record = process.env.RIPPLE_RECORD !== "0"

/** The output of a chain node from its predecessor's: a deterministic mix of both. */
export const mix = (prev: number, i: number): number => (prev * 31 + i + 7) % 1_000_003

const step: Handler.Handler<SqlClient.SqlClient> = (ctx) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (record) {
      yield* Effect.orDie(sql`INSERT INTO test_executions (run_id, node, pid, replayed)
        SELECT ${ctx.runId}, ${ctx.node}, ${process.pid}, EXISTS (
          SELECT 1 FROM ripple_journal WHERE run_id = ${ctx.runId} AND node = ${ctx.node} AND status = 'completed')`)
    }
    if (stepMs > 0) yield* Effect.sleep(stepMs)
    const prev = ctx.inputs["prev"] as { readonly v?: number } | null | undefined
    return { v: mix(typeof prev?.v === "number" ? prev.v : 0, Number(ctx.inputs["i"] ?? 0)) }
  })

runWorker({ handlers: { step }, concurrency: env("RIPPLE_WORKER_CONCURRENCY", 16) })
