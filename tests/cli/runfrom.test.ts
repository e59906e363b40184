/**
 * Run-from beyond re-running (issue 16), in-process through `Cli.main` over a memory store:
 * `--to <block>` on run, rerun and plan executes (or plans) only what the destination needs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cli, Platform } from "@ripple/cli"
import { RunStore } from "@ripple/runtime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { memoryBackend, recording } from "./inMemory.ts"
import { example } from "./ripple.ts"

const session = () => {
  const output = recording()
  const store = Effect.runSync(RunStore.makeMemory)
  const ripple = (...args: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      output.lines.length = 0
      output.stdout.length = 0
      return Cli.main(memoryBackend(store))(args)
    }).pipe(Effect.provideService(Console.Console, output.console))
  const json = () => JSON.parse(output.stdout.join("\n"))
  const recorded = (runId: string) => Effect.map(store.snapshot(runId), (s) => Object.keys(s.nodes).sort())
  return { json, output, recorded, ripple, store }
}

const triage = JSON.stringify({ subject: "Login fails", body: "Token expired", tier: "pro" })

describe("--to <block>", () => {
  it.live("run, plan and rerun execute only what the destination needs", () =>
    Effect.gen(function*() {
      const { json, recorded, ripple, store } = session()
      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--input", triage, "--to", "isPro"), 0)
      assert.deepStrictEqual(yield* recorded("run-1"), ["isPro", "signature", "start", "ticket"])
      assert.strictEqual((yield* store.getRun("run-1")).to, "isPro")

      assert.strictEqual(yield* ripple("plan", example("support-triage.json"), "--from", "signature", "--to", "isPro", "--format", "json"), 0)
      const plan = json()
      assert.deepStrictEqual([plan.to, plan.rerun, [...plan.pruned].sort()], ["isPro", ["signature", "isPro"], ["autoReply", "escalate", "outcome"]])

      assert.strictEqual(yield* ripple("rerun", example("support-triage.json"), "--from", "signature", "--to", "escalate"), 0)
      assert.deepStrictEqual(yield* recorded("run-2"), ["escalate", "isPro", "signature", "start", "ticket"])
      const reused = (yield* store.snapshot("run-2")).nodes["ticket"]?.reusedFrom
      assert.strictEqual(reused, "run-1")
    }).pipe(Effect.provide(Platform.layer)))
})
