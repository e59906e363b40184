/**
 * Results you can see and scripting (issue 19), in-process through `Cli.main` over a memory store:
 * observed outputs in the run summary, `show` with inputs and outputs per node, what a waiting run
 * awaits and the exact command that continues it, `--format json` (one document on stdout, progress
 * on stderr), and a run stopped by Ctrl-C (`Cli.Stop`) left resumable.
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

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-results-"))

const write = (name: string, workflow: object): string => {
  const file = Path.join(dir, `${name}.json`)
  Fs.writeFileSync(file, JSON.stringify(workflow))
  return file
}

// One store for every command of a test; each command's stdout and stderr, and a Ctrl-C (`Cli.Stop`)
// sent when a printed line starts with `stopAt`.
const session = (stopAt?: string) => {
  let stop = Cli.makeStop()
  const output = recording((line) => {
    if (stopAt !== undefined && line.startsWith(stopAt)) stop.stop()
  })
  const store = Effect.runSync(RunStore.makeMemory)
  const backend = memoryBackend(store)
  const ripple = (...args: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      output.lines.length = 0
      output.stdout.length = 0
      output.stderr.length = 0
      stop = Cli.makeStop()
      return Cli.main(backend)(args).pipe(Effect.provideService(Cli.Stop, stop.signal))
    }).pipe(Effect.provideService(Console.Console, output.console))
  const json = () => JSON.parse(output.stdout.join("\n"))
  return { json, output, ripple, store }
}

const longBody = "The sign-in page says my token expired. ".repeat(10)
const triage = JSON.stringify({ subject: "Login fails", body: longBody })

describe("results you can see", () => {
  it.live("a run prints its observed outputs, cut to a line; --full prints them whole", () =>
    Effect.gen(function*() {
      const { output, ripple } = session()
      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--input", triage), 0)
      const at = output.stdout.indexOf("outputs:")
      assert.isAbove(at, 0, output.stdout.join("\n"))
      assert.match(output.stdout[at - 1]!, /^run run-1 completed/)
      const line = output.stdout[at + 1]!
      assert.match(line, /^ {2}outcome: \{"ticket":"\[free\] Login fails: The sign-in page/)
      assert.match(line, /… \(\d+ characters; --full prints all\)$/)
      assert.isBelow(line.length, 240)

      assert.strictEqual(yield* ripple("rerun", example("support-triage.json"), "--from", "signature", "--full"), 0)
      const printed = output.stdout.join("\n")
      assert.include(printed, `outputs:\n  outcome: {\n    "ticket": "[free] Login fails: ${longBody}",`)
      assert.include(printed, `"reply": "Thanks for writing about \\"Login fails\\". We will get back to you. — Ripple support"`)
    }).pipe(Effect.provide(Platform.layer)))

  it.live("show: per node its status, output, attempts; --node its resolved inputs, output and attempts", () =>
    Effect.gen(function*() {
      const { output, ripple } = session()
      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--input", triage), 0)
      assert.strictEqual(yield* ripple("show", "run-1"), 0)
      const table = output.stdout.join("\n")
      assert.match(table, /NODE\s+STATUS\s+HOW\s+WHY\s+DURATION\s+ATTEMPT\s+OUTPUT/)
      assert.match(table, /isPro\s+completed\s+executed\s+full run\s+\S+ ms\s+1\s+false/)
      assert.match(table, /\n {2}outcome: \{"ticket":/)

      assert.strictEqual(yield* ripple("show", "run-1", "--node", "autoReply"), 0)
      const node = output.stdout.join("\n")
      assert.include(node, "node autoReply: completed, executed (full run)")
      assert.match(node, /attempts: 1 {2}started \S+ {2}finished \S+/)
      assert.include(node, `inputs: {"template":"Thanks for writing about \\"{{subject}}\\". We will get back to you. — {{team}}","values":{"subject":"Login fails","team":"Ripple support"}}`)
      assert.include(node, "output: \"Thanks for writing about \\\"Login fails\\\". We will get back to you. — Ripple support\"")

      assert.strictEqual(yield* ripple("show", "run-1", "--node", "nope"), 2)
      assert.include(output.stderr.join("\n"), "run run-1 has no node \"nope\"")
    }).pipe(Effect.provide(Platform.layer)))

  it.live("a waiting approval shows what is to be approved; a parent waiting on a child names the child's command", () =>
    Effect.gen(function*() {
      const { json, output, ripple } = session()
      assert.strictEqual(yield* ripple("run", example("content-pipeline.json")), 3)
      const printed = output.stdout.join("\n")
      assert.include(printed, "  awaiting approval of review: ripple approve run-1 review [--payload <json>] (or --reject <reason>)")
      assert.match(printed, /\n {4}to approve: \{"prompt":"Publish this post\?","post":"# incremental computation\\n\\n/)
      assert.strictEqual(yield* ripple("show", "run-1", "--format", "json"), 0)
      const shown = json()
      assert.strictEqual(shown.awaiting[0].kind, "approval")
      assert.strictEqual(shown.awaiting[0].command, "ripple approve run-1 review [--payload <json>] (or --reject <reason>)")
      assert.match(shown.awaiting[0].params.post, /^# incremental computation/)

      const parent = write("parent-approves", {
        version: 1,
        id: "parent-approves",
        blocks: [
          { id: "start", type: "trigger" },
          {
            id: "sub",
            type: "child",
            params: {
              workflow: JSON.stringify({ id: "signoff", blocks: [{ id: "ok", type: "approval", params: { amount: 120 } }], edges: [] }),
              input: {}
            }
          },
          { id: "out", type: "response", params: { value: { $ref: "blocks.sub.output" } } }
        ],
        edges: [{ source: "start", target: "sub" }, { source: "sub", target: "out" }]
      })
      assert.strictEqual(yield* ripple("run", parent), 3)
      const child = /awaiting child run ([^\s,]+), which awaits approval of ok: ripple approve \1 ok /.exec(output.stdout.join("\n"))?.[1]
      assert.isDefined(child, output.stdout.join("\n"))
      assert.include(output.stdout.join("\n"), "    to approve: {\"amount\":120}")
      assert.strictEqual(yield* ripple("show", "run-2"), 0)
      assert.include(output.stdout.join("\n"), `awaiting child run ${child}, which awaits approval of ok: ripple approve ${child} ok`)
      assert.notInclude(output.stdout.join("\n"), `ripple show ${child}`)
      assert.strictEqual(yield* ripple("approve", child!, "ok"), 0, output.lines.join("\n"))
      assert.include(output.stdout.join("\n"), "parent run run-2 is completed")
    }).pipe(Effect.provide(Platform.layer)))
})

describe("rerun --input", () => {
  it.live("a changed run input: the trigger (whose output is the input) and the blocks that read a changed key re-run (inputs-changed), the rest is reused", () =>
    Effect.gen(function*() {
      const { json, output, ripple } = session()
      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--input", triage), 0)
      const pro = JSON.stringify({ subject: "Login fails", body: longBody, tier: "pro" })
      assert.strictEqual(yield* ripple("rerun", example("support-triage.json"), "--from", "signature", "--input", pro), 0, output.lines.join("\n"))
      const printed = output.stdout.join("\n")
      assert.include(printed, "node start completed")
      assert.include(printed, "node ticket completed")
      assert.include(printed, "node isPro completed -> true")
      assert.include(printed, "node escalate completed")
      assert.include(printed, "node autoReply skipped (branch not taken)")
      assert.strictEqual(yield* ripple("show", "run-2", "--format", "json"), 0)
      const shown = json()
      assert.strictEqual(shown.run.input.tier, "pro")
      assert.match(shown.outputs.outcome.escalation, /^Escalated: \[pro\] Login fails/)
      // The plan says why: what reads the changed key `tier`.
      assert.strictEqual(yield* ripple("plan", example("support-triage.json"), "--from", "signature", "--run", "run-1", "--input", pro, "--format", "json"), 0)
      const reasons = json().reasons
      assert.deepStrictEqual(reasons.ticket, [{ _tag: "inputs-changed" }])
      assert.deepStrictEqual(reasons.isPro, [{ _tag: "inputs-changed" }])
      assert.deepStrictEqual(reasons.start, [{ _tag: "inputs-changed" }])
      // Without --input, a re-run keeps the reused run's input.
      assert.strictEqual(yield* ripple("rerun", example("support-triage.json"), "--from", "signature", "--run", "run-1", "--format", "json"), 0)
      assert.strictEqual(json().outputs.outcome.escalation, null)
      assert.strictEqual(yield* ripple("rerun", example("support-triage.json"), "--from", "signature", "--input", "[1]"), 2)
      assert.include(output.stderr.join("\n"), "--input must be a JSON object")
    }).pipe(Effect.provide(Platform.layer)))
})

describe("--format json", () => {
  it.live("run, rerun, show, approve and cancel print exactly one JSON document on stdout, their progress on stderr", () =>
    Effect.gen(function*() {
      const { json, output, ripple } = session()
      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--input", triage, "--format", "json"), 0)
      const run = json()
      assert.strictEqual(run.runId, "run-1")
      assert.strictEqual(run.status, "completed")
      assert.strictEqual(run.exitCode, 0)
      assert.strictEqual(run.outputs.outcome.ticket, `[free] Login fails: ${longBody}`)
      assert.deepStrictEqual(run.counts, { executed: 6, reused: 0, cutoff: 0, skipped: 1, failed: 0 })
      assert.include(output.stderr, "node ticket started")
      assert.match(output.stderr.at(-1)!, /^ {2}outcome: /)

      assert.strictEqual(yield* ripple("rerun", example("support-triage.json"), "--from", "signature", "--format", "json"), 0)
      assert.strictEqual(json().mode, "run-from")
      assert.deepStrictEqual(json().counts, { executed: 1, reused: 5, cutoff: 3, skipped: 1, failed: 0 })

      assert.strictEqual(yield* ripple("show", "run-2", "--format", "json"), 0)
      const shown = json()
      assert.strictEqual(shown.run.sourceRun, "run-1")
      const ticket = shown.nodes.find((n: { node: string }) => n.node === "ticket")
      assert.strictEqual(ticket.how, "reused")
      assert.deepStrictEqual(ticket.inputs.values, { tier: "free", subject: "Login fails", body: longBody })
      assert.strictEqual(ticket.output, `[free] Login fails: ${longBody}`)
      assert.strictEqual(shown.outputs.outcome.escalation, null)

      assert.strictEqual(yield* ripple("show", "run-2", "--node", "signature", "--format", "json"), 0)
      assert.deepStrictEqual(json().nodes.map((n: { node: string; attempts: number; output: unknown }) => [n.node, n.attempts, n.output]), [["signature", 1, "Ripple support"]])

      assert.strictEqual(yield* ripple("run", example("content-pipeline.json"), "--format", "json"), 3)
      assert.strictEqual(json().status, "paused")
      assert.strictEqual(json().awaiting[0].node, "review")
      assert.strictEqual(yield* ripple("approve", "run-3", "review", "--payload", "{\"by\": \"ada\"}", "--format", "json"), 0)
      assert.strictEqual(json().status, "completed")
      assert.match(json().outputs.publish, /^# incremental computation/)

      assert.strictEqual(yield* ripple("run", example("content-pipeline.json")), 3)
      assert.strictEqual(yield* ripple("cancel", "run-4", "--format", "json"), 0)
      assert.deepStrictEqual(json(), { runId: "run-4", before: "paused", status: "cancelled", cancellation: "Cancelled" })
    }).pipe(Effect.provide(Platform.layer)))

  it.live("a refused command prints its problem as the JSON document, and the message on stderr", () =>
    Effect.gen(function*() {
      const { json, output, ripple } = session()
      assert.strictEqual(yield* ripple("show", "no-such-run", "--format", "json"), 2)
      assert.deepStrictEqual(Object.keys(json().error).sort(), ["exitCode", "fix", "problem"])
      assert.strictEqual(json().error.problem, "unknown run \"no-such-run\"")
      assert.include(output.stderr.join("\n"), "ripple: unknown run \"no-such-run\"")
      assert.strictEqual(yield* ripple("run", example("support-triage.json"), "--format", "json"), 2)
      assert.include(json().error.problem, "MissingInput at subject")
    }).pipe(Effect.provide(Platform.layer)))

  it.live("the README's release example: a child run, a sleep, a wait, each exit naming the command that continues it", () =>
    Effect.gen(function*() {
      const { json, output, ripple } = session()
      const release = example("release.json")
      assert.strictEqual(yield* ripple("run", release, "--input", '{"version": "1.4.0"}'), 3, output.lines.join(" | "))
      assert.isTrue(output.lines.some((line) => line.includes("node tests completed")), output.lines.join(" | "))
      const sleeping = output.lines.find((line) => line.includes("sleeping until"))
      assert.isDefined(sleeping, output.lines.join(" | "))
      assert.include(sleeping!, "ripple resume run-1 once due")
      // Once the timer is due, resuming goes on to the wait.
      yield* Effect.sleep("2100 millis")
      assert.strictEqual(yield* ripple("resume", "run-1"), 3, output.lines.join(" | "))
      assert.isTrue(output.lines.some((line) => line.includes("awaiting signal canary-ok: ripple signal run-1 canary-ok")), output.lines.join(" | "))
      assert.strictEqual(yield* ripple("signal", "run-1", "canary-ok", "--payload", '"looks good"', "--format", "json"), 0, output.lines.join(" | "))
      assert.deepStrictEqual(json().outputs, { outcome: "released 1.4.0: tests all green, canary looks good" })
    }).pipe(Effect.provide(Platform.layer)))
})

// A chain of `size` value blocks after the trigger, each reading the one before.
const chain = (size: number) => {
  const blocks: Array<object> = [{ id: "start", type: "trigger" }]
  const edges: Array<object> = []
  let previous = "start"
  for (let i = 0; i < size; i++) {
    blocks.push({ id: `b${i}`, type: "value", params: { value: i === 0 ? 0 : { $ref: `blocks.${previous}.output` } } })
    edges.push({ source: previous, target: `b${i}` })
    previous = `b${i}`
  }
  return write(`chain-${size}`, { version: 1, id: `chain-${size}`, blocks, edges })
}

describe("Ctrl-C while a run executes (Cli.Stop)", () => {
  it.live("stops starting blocks, parks the run and exits 130 naming the resume command; resume runs the rest once", () =>
    Effect.gen(function*() {
      const file = chain(1_000)
      const { output, ripple, store } = session("node b20 completed ")
      assert.strictEqual(yield* ripple("run", file), 130, output.lines.slice(-5).join("\n"))
      const first = [...output.stdout]
      assert.include(output.stderr.join("\n"), "stopping run run-1: no block starts any more")
      assert.strictEqual(first.at(-1), "interrupted: ripple resume run-1")
      assert.match(first.join("\n"), /run run-1 paused in .*: \d+ executed/)
      assert.strictEqual((yield* store.getRun("run-1")).status, "paused")
      const started = (lines: ReadonlyArray<string>) => lines.flatMap((line) => /^node (b\d+) started$/.exec(line)?.[1] ?? [])
      const before = started(first)
      assert.isBelow(before.length, 1_000, "stopped before the end")

      assert.strictEqual(yield* ripple("resume", "run-1"), 0, output.lines.slice(-5).join("\n"))
      const after = started(output.stdout)
      const all = [...before, ...after]
      assert.strictEqual(new Set(all).size, all.length, "no block started twice")
      assert.strictEqual(all.length, 1_000)
      assert.deepStrictEqual((yield* store.snapshot("run-1")).nodes["b999"]?.output, 0)
    }).pipe(Effect.provide(Platform.layer)))
})
