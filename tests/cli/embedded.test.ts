/**
 * The command tree embedded in a program (`Cli.main`) over an in-memory `RunStore`: the same
 * commands and exit codes as the binary, with the store swapped by one layer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cli, Platform } from "@ripple/cli"
import { RunStore } from "@ripple/runtime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { memoryBackend, recording } from "./inMemory.ts"
import { example } from "./ripple.ts"

// One backend (one store) for every command of a test, and what the commands print.
const session = () => {
  const output = recording()
  const backend = memoryBackend(Effect.runSync(RunStore.makeMemory))
  const ripple = (...args: ReadonlyArray<string>) =>
    Cli.main(backend)(args).pipe(Effect.provideService(Console.Console, output.console))
  return { output, ripple }
}

describe("Cli.main over the memory store", () => {
  it.live("runs, plans, re-runs from a block and pauses, with the binary's exit codes", () =>
    Effect.gen(function*() {
      const { output, ripple } = session()
      const input = JSON.stringify({ subject: "Login fails", body: "Token expired", tier: "pro" })

      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--input", input), 0)
      assert.isTrue(output.lines.some((line) => line.includes("node escalate completed")))
      assert.strictEqual(yield* ripple("plan", example("support-triage.json"), "--from", "signature", "--format", "json"), 0)
      const plan = JSON.parse(output.lines.at(-1)!)
      assert.deepStrictEqual(plan.start, ["signature"])
      assert.strictEqual(yield* ripple("rerun", example("support-triage.json"), "--from", "signature"), 0)
      assert.isTrue(output.lines.some((line) => /node ticket reused from run-1/.test(line)))
      assert.strictEqual(yield* ripple("show", "run-2"), 0)
      assert.isTrue(output.lines.some((line) => /signature\s+completed\s+executed\s+target/.test(line)))
      assert.strictEqual(yield* ripple("run", example("content-pipeline.json")), 3)
      assert.include(output.lines.at(-2)!, "awaiting approval of review: ripple approve run-3 review")
      // The paused run outlives the command that started it (its Runs layer closed) and continues.
      assert.strictEqual(yield* ripple("approve", "run-3", "review"), 0, output.lines.slice(-3).join(" | "))
      assert.isTrue(output.lines.some((line) => line.includes("node publish completed")))
      assert.strictEqual(yield* ripple("show", "run-9"), 2)
      assert.include(output.lines.at(-1)!, "unknown run \"run-9\"", output.lines.slice(-3).join(" | "))
      assert.strictEqual(yield* ripple("migrate"), 0)
      assert.strictEqual(output.lines.at(-1), "memory: schema up to date")
    }).pipe(Effect.provide(Platform.layer)))

  it.live("rerun's summary and show say what was pruned and that a pruned node failed last time", () =>
    Effect.gen(function*() {
      const { output, ripple } = session()
      // `audit` fails, but the observed output `out` does not need it.
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-pruned-"))
      const write = (greeting: string) => {
        const file = Path.join(dir, "audited.json")
        Fs.writeFileSync(file, JSON.stringify({
          version: 1,
          id: "audited",
          blocks: [
            { id: "start", type: "trigger" },
            { id: "greeting", type: "value", params: { value: greeting } },
            { id: "out", type: "response", params: { value: { $ref: "blocks.greeting.output" } } },
            { id: "audit", type: "fail", params: { message: "audit is down" } }
          ],
          edges: [{ source: "start", target: "greeting" }, { source: "greeting", target: "out" }, { source: "start", target: "audit" }]
        }))
        return file
      }
      try {
        assert.strictEqual(yield* ripple("run", write("Hello")), 1)
        // The summary, then what the run produced before it failed.
        assert.match(output.lines.at(-3)!, /^run run-1 failed in .*: 3 executed, 0 reused, 0 skipped, 1 failed$/u)
        assert.deepStrictEqual(output.lines.slice(-2), ["outputs:", "  out: \"Hello\""])
        assert.strictEqual(yield* ripple("rerun", write("Bonjour"), "--from", "greeting"), 0)
        assert.match(output.lines.at(-3)!, /^run run-2 completed in .*, 0 failed, 1 pruned \(last known failed: audit in run-1\)$/u)
        assert.strictEqual(yield* ripple("show", "run-2"), 0)
        assert.include(output.lines, "1 pruned (last known failed: audit in run-1): needed by no observed output, neither run nor reused")
      } finally {
        Fs.rmSync(dir, { recursive: true, force: true })
      }
    }).pipe(Effect.provide(Platform.layer)))
})
