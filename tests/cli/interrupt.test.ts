/**
 * Ctrl-C and SIGTERM during `ripple run` (issues 15 and 19), the real binary on the embedded
 * database: the first signal stops starting blocks, lets running ones finish, parks the run and
 * exits 130 printing the command that resumes it; a second one exits at once. Either way
 * `ripple resume` completes the run with no block executed twice. The signal is sent once the
 * output shows the run under way (no sleeps).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as TestDatabase from "../helpers/database.ts"
import { rippleInProcess, runIdOf, spawnRipple, tempDir } from "./ripple.ts"

const size = 600
const scope = Effect.runSync(Scope.make())
const temp = tempDir("interrupt")
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)).then(temp.remove))

// A chain of built-in blocks: each settles at once, so only the engine's own yields let a signal in.
const chain = Path.join(temp.dir, "chain.json")
Fs.writeFileSync(chain, JSON.stringify({
  version: 1,
  id: "chain",
  blocks: [
    { id: "start", type: "trigger" },
    ...Array.from({ length: size }, (_, i) => ({ id: `b${i}`, type: "value", params: { value: i === 0 ? 1 : { $ref: `blocks.b${i - 1}.output` } } }))
  ],
  edges: Array.from({ length: size }, (_, i) => ({ source: i === 0 ? "start" : `b${i - 1}`, target: `b${i}` }))
}))

const started = (output: string) => [...output.matchAll(/^node (b\d+) started$/gm)].map((match) => match[1]!)
const completed = (output: string) => [...output.matchAll(/^node (b\d+) completed /gm)].map((match) => match[1]!)

const interrupted = async (signals: ReadonlyArray<NodeJS.Signals>) => {
  const dataDir = await Effect.runPromise(Scope.provide(scope)(TestDatabase.pgliteDataDir))
  const where = { cwd: temp.dir, db: ["--data-dir", dataDir] }
  const runner = spawnRipple(where, "run", chain)
  await new Promise<void>((resolve, reject) => {
    const watch = (chunk: Buffer) => {
      if (!String(chunk).includes("node b20 completed") && !runner.output().includes("node b20 completed")) return
      runner.child.stdout?.off("data", watch)
      for (const signal of signals) runner.child.kill(signal)
      resolve()
    }
    runner.child.stdout?.on("data", watch)
    runner.exited.then(() => reject(new Error(`ended before the signal:\n${runner.output()}`)))
  })
  const code = await runner.exited
  return { code, output: runner.output(), runId: runIdOf({ code, stdout: runner.output(), stderr: "" }), where, dataDir }
}

// `parked`: the first process parked the run, so nothing it started starts again.
const resumed = async (first: Awaited<ReturnType<typeof interrupted>>, parked: boolean) => {
  const again = await rippleInProcess(first.where, "resume", first.runId)
  assert.strictEqual(again.code, 0, again.stdout + again.stderr)
  // A block the first process started but did not finish (only possible when it exited at once)
  // starts again; one it finished never does, and every block completes exactly once.
  const done = new Set(completed(first.output))
  assert.deepStrictEqual(started(again.stdout).filter((block) => done.has(block)), [], "no finished block started again")
  if (parked) {
    const starts = [...started(first.output), ...started(again.stdout)]
    assert.strictEqual(new Set(starts).size, starts.length, "no block started twice")
  }
  const all = [...completed(first.output), ...completed(again.stdout)]
  assert.strictEqual(new Set(all).size, all.length, "no block completed twice")
  assert.strictEqual(all.length, size)
  assert.match(again.stdout, new RegExp(`run ${first.runId} completed`))
  assert.include(again.stdout, `outputs:\n  b${size - 1}: 1`)
}

describe("Ctrl-C and SIGTERM during `ripple run` (the binary, embedded PGlite)", () => {
  it("Ctrl-C: no block starts any more, the run is parked, exit 130 with the resume command; resume completes it", async () => {
    const first = await interrupted(["SIGINT"])
    assert.strictEqual(first.code, 130, first.output)
    assert.include(first.output, `stopping run ${first.runId}: no block starts any more`)
    assert.include(first.output, `interrupted: ripple resume ${first.runId} --data-dir ${first.dataDir}`)
    assert.match(first.output, new RegExp(`run ${first.runId} paused in `))
    assert.isBelow(started(first.output).length, size, "stopped before the end")
    assert.notInclude(first.output, "    at ")
    await resumed(first, true)
  }, 120_000)

  it("SIGTERM twice: the second exits at once; the run stays resumable", async () => {
    const first = await interrupted(["SIGTERM", "SIGTERM"])
    assert.strictEqual(first.code, 130, first.output)
    assert.isBelow(started(first.output).length, size, "stopped before the end")
    await resumed(first, false)
  }, 120_000)
})
