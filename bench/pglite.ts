/**
 * Embedded database start-up: the first open of an empty data directory (initdb) and reopening an
 * existing one holding 10^4 rows, through `Database.layer` (open + first query), against bare
 * `PGlite.create` + the same query measured in the same process. DESIGN: a reopen must take well
 * under a second.
 *
 * Prints a table, then `RESULT {...}` as the last line.
 */
import { PGlite } from "@electric-sql/pglite"
import { Database } from "@ripple/sql"
import * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const ROWS = 10_000
const REPEATS = 7

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

interface Timing {
  readonly openMs: number
  readonly closeMs: number
}

// Opens through the layer, runs one query (so "open" means usable), closes, and times both halves.
const throughLayer = (dataDir: string, work: Effect.Effect<unknown, unknown, SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const started = performance.now()
    const context = yield* Layer.buildWithScope(Database.layer({ dataDir }), scope)
    yield* Effect.provideContext(work, context)
    const opened = performance.now()
    yield* Scope.close(scope, Exit.void)
    return { openMs: opened - started, closeMs: performance.now() - opened } satisfies Timing
  })

const count = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql`SELECT count(*) AS n FROM bench_rows`
})

const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE bench_rows (id int PRIMARY KEY, label text NOT NULL, doc jsonb NOT NULL)`
  for (const chunk of Arr.chunksOf(Arr.range(1, ROWS), 1000)) {
    yield* sql`INSERT INTO bench_rows ${
      sql.insert(Arr.map(chunk, (id) => ({ id, label: `row-${id}`, doc: JSON.stringify({ id, tags: ["a", "b"] }) })))
    }`
  }
})

const bare = async (dataDir: string): Promise<Timing> => {
  const started = performance.now()
  const db = await PGlite.create(dataDir)
  await db.query("SELECT count(*) AS n FROM bench_rows")
  const opened = performance.now()
  await db.close()
  return { openMs: opened - started, closeMs: performance.now() - opened }
}

const main = Effect.gen(function*() {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-bench-pglite-"))
  try {
    const first = yield* throughLayer(dataDir, seed)
    const reopen: Array<Timing> = []
    const baseline: Array<Timing> = []
    for (let i = 0; i < REPEATS; i++) {
      reopen.push(yield* throughLayer(dataDir, count))
      baseline.push(yield* Effect.promise(() => bare(dataDir)))
    }
    const reopenMs = median(reopen.map((t) => t.openMs))
    const bareMs = median(baseline.map((t) => t.openMs))
    const closeMs = median(reopen.map((t) => t.closeMs))
    const pad = (s: string, n: number) => s.padStart(n)
    console.log(`${"phase".padEnd(34)}${pad("median ms", 11)}${pad("min ms", 9)}${pad("max ms", 9)}`)
    const row = (name: string, xs: ReadonlyArray<number>) =>
      console.log(
        `${name.padEnd(34)}${pad(median(xs).toFixed(1), 11)}${pad(Math.min(...xs).toFixed(1), 9)}${
          pad(Math.max(...xs).toFixed(1), 9)
        }`
      )
    row(`first open (initdb) + ${ROWS} rows`, [first.openMs])
    row("reopen via Database.layer", reopen.map((t) => t.openMs))
    row("reopen via bare PGlite.create", baseline.map((t) => t.openMs))
    row("close via Database.layer", reopen.map((t) => t.closeMs))
    console.log(`reopen ratio (layer / bare PGlite): ${(reopenMs / bareMs).toFixed(2)}; target: reopen < 1000 ms`)
    console.log(
      "RESULT " +
        JSON.stringify({
          rows: ROWS,
          repeats: REPEATS,
          firstOpenMs: Math.round(first.openMs),
          reopenMs: Math.round(reopenMs),
          reopenMaxMs: Math.round(Math.max(...reopen.map((t) => t.openMs))),
          bareReopenMs: Math.round(bareMs),
          ratioVsBare: Number((reopenMs / bareMs).toFixed(2)),
          closeMs: Math.round(closeMs),
          reopenUnderOneSecond: reopenMs < 1000
        })
    )
  } finally {
    Fs.rmSync(dataDir, { recursive: true, force: true })
  }
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
