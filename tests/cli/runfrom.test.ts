/**
 * Run-from beyond re-running (issue 16), in-process through `Cli.main` over a memory store:
 * `--to <block>` on run, rerun and plan executes (or plans) only what the destination needs;
 * `--pin <block>=<json|@file>` writes a block's output instead of running it, and `show` marks it;
 * `plan` says how each re-run loop or parallel re-runs (per instance, or whole) and why.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cli, Platform } from "@ripple/cli"
import { RunStore } from "@ripple/runtime"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
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

describe("ripple plan in containers", () => {
  it.live("says which loops and parallels re-run per instance and which restart whole, and why", () =>
    Effect.gen(function*() {
      const { output, ripple } = session()
      // Pauses at the editor's approval (exit 3), then finishes: its snapshot is what a plan reuses.
      assert.strictEqual(yield* ripple("run", example("content-pipeline.json")), 3)
      assert.strictEqual(yield* ripple("approve", "run-1", "review"), 0)
      const code = yield* ripple("plan", example("content-pipeline.json"), "--from", "summarize")
      assert.strictEqual(code, 0, output.lines.join("\n"))
      const printed = output.stdout.join("\n")
      assert.include(printed, "summaries: parallel re-runs per instance (independent-instances)")
      assert.include(printed, "refine: loop re-runs whole (while-loop)", printed)
      assert.notMatch(printed, /summaries#start\s+re-run/u)
    }).pipe(Effect.provide(Platform.layer)))
})

describe("--to <block> without --from", () => {
  it.live("plan and rerun re-run only what changed since the prior run and the destination needs; neither flag is bad input", () =>
    Effect.gen(function*() {
      const { json, output, recorded, ripple, store } = session()
      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--input", triage), 0)
      // The unedited workflow: nothing changed, so nothing runs; what the destination does not need is left alone.
      assert.strictEqual(yield* ripple("plan", example("support-triage.json"), "--to", "escalate", "--format", "json"), 0)
      const same = json()
      assert.deepStrictEqual([same.target, same.to, same.rerun, same.pruned], [null, "escalate", [], []])

      const workflow = JSON.parse(Fs.readFileSync(example("support-triage.json"), "utf8"))
      workflow.blocks.find((b: { id: string }) => b.id === "escalate").params.template = "Escalated now: {{ticket}} ({{team}})"
      const edited = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-to-")), "support-triage.json")
      Fs.writeFileSync(edited, JSON.stringify(workflow))
      assert.strictEqual(yield* ripple("plan", edited, "--to", "escalate", "--format", "json"), 0)
      const plan = json()
      assert.deepStrictEqual([plan.target, plan.rerun, plan.pruned], [null, ["escalate"], ["outcome"]])
      assert.deepStrictEqual(plan.reasons["escalate"], [{ _tag: "definition-changed" }])

      assert.strictEqual(yield* ripple("rerun", edited, "--to", "escalate"), 0)
      const run = yield* store.getRun("run-2")
      assert.deepStrictEqual([run.mode, run.target, run.to, run.sourceRun], ["run-from", undefined, "escalate", "run-1"])
      // The untaken branch (autoReply, skipped) is reused as it was; the response the destination does not need is pruned.
      assert.deepStrictEqual(yield* recorded("run-2"), ["autoReply", "escalate", "isPro", "signature", "start", "ticket"])
      const nodes = (yield* store.snapshot("run-2")).nodes
      assert.deepStrictEqual(
        ["start", "ticket", "signature", "isPro", "autoReply", "escalate"].map((id) => nodes[id]?.reusedFrom),
        ["run-1", "run-1", "run-1", "run-1", "run-1", undefined]
      )
      assert.strictEqual(nodes["escalate"]?.output, "Escalated now: [pro] Login fails: Token expired (Ripple support)")

      for (const command of ["plan", "rerun"]) {
        assert.strictEqual(yield* ripple(command, edited), 2)
        assert.match(output.lines.join("\n"), /needs --from <block>, --to <block>, or both/)
      }
    }).pipe(Effect.provide(Platform.layer)))
})

describe("--pin <block>=<json|@file>", () => {
  it.live("run writes the pin instead of running the block; show marks it; rerun reuses what reads an unchanged pin", () =>
    Effect.gen(function*() {
      const { json, output, ripple, store } = session()
      const file = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-pin-")), "signature.json")
      Fs.writeFileSync(file, JSON.stringify("— pinned signature"))
      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--input", triage, "--pin", "ticket={\"tier\":\"free\",\"subject\":\"s\"}", "--pin", `signature=@${file}`), 0)
      const run = yield* store.snapshot("run-1")
      assert.deepStrictEqual(run.nodes["ticket"]?.output, { tier: "free", subject: "s" })
      assert.strictEqual(run.nodes["signature"]?.output, "— pinned signature")
      assert.deepStrictEqual((yield* store.getRun("run-1")).pins?.["signature"], "— pinned signature")
      assert.strictEqual(yield* ripple("show", "run-1"), 0)
      assert.match(output.stdout.join("\n"), /signature\s+completed\s+pinned\s+pinned/)

      assert.strictEqual(yield* ripple("plan", example("support-triage.json"), "--from", "start", "--pin", `signature=@${file}`, "--format", "json"), 0)
      const plan = json()
      assert.deepStrictEqual(plan.pins, { signature: "— pinned signature" })
      assert.strictEqual(yield* ripple("rerun", example("support-triage.json"), "--from", "escalate", "--pin", `signature=@${file}`), 0)
      assert.strictEqual((yield* store.snapshot("run-2")).nodes["signature"]?.reusedFrom, "run-1")
    }).pipe(Effect.provide(Platform.layer)))
})
