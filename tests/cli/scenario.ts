/**
 * The end-to-end CLI scenario both database backends run: every command, every kind of bad input
 * (exit 2, nothing written), exit codes, and that `plan` writes nothing. Steps share one database
 * and run in order. Commands run in this process through `Cli.main` (`rippleInProcess`); one step
 * runs the real binary end to end, and so do the steps that need a second process executing
 * beside the command (a run paused from another process, a process killed mid-run, workers).
 */
import { assert, describe, it } from "@effect/vitest"
import { afterAll, beforeAll } from "vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { editedCopy, example, type Result, ripple, rippleInProcess, root, runIdOf, spawnRipple, type Where } from "./ripple.ts"

/** What a backend provides to the scenario. */
export interface Setup {
  /** Where the binary runs, with the database arguments every invocation gets. */
  readonly where: Where
  /** Every row of every Ripple table, as text. */
  readonly dump: () => Promise<string>
  /** Whether several processes can open the database at once (a server; PGlite is one process's). */
  readonly shared: boolean
}

const triageInput = JSON.stringify({ subject: "Login fails", body: "The sign-in page says my token expired." })

const bad = (result: Result, ...fragments: ReadonlyArray<string>) => {
  assert.strictEqual(result.code, 2, `expected exit 2, got ${result.code}\n${result.stdout}\n${result.stderr}`)
  for (const fragment of fragments) assert.include(result.stderr, fragment)
  // One message that names the fix, not a stack trace.
  assert.include(result.stderr, "fix:")
  assert.notInclude(result.stderr, "    at ")
}

const ok = (result: Result) => assert.strictEqual(result.code, 0, `expected exit 0, got ${result.code}\n${result.stdout}\n${result.stderr}`)

/** Registers the scenario's tests; `setup` runs before the first and `teardown` after the last. */
export const scenario = (name: string, setup: () => Promise<Setup>, teardown: () => Promise<void>) =>
  describe(`ripple on ${name}`, () => {
    let s: Setup
    let dir: string
    let edited: string
    let first: string
    let second: string

    const run = (...args: ReadonlyArray<string>) => rippleInProcess(s.where, ...args)
    const binary = (...args: ReadonlyArray<string>) => ripple(s.where, ...args)

    beforeAll(async () => {
      s = await setup()
      dir = s.where.cwd
      edited = editedCopy(dir, "support-triage.json", (workflow) => {
        workflow.blocks.find((b: { id: string }) => b.id === "signature").params.value = "Ripple support, weekend rota"
      })
    })

    it("prints help and version", async () => {
      const help = await run("--help")
      ok(help)
      for (const command of ["run", "plan", "rerun", "runs", "show", "signal", "approve", "pause", "resume", "cancel", "versions", "worker", "studio", "migrate"]) assert.include(help.stdout, `  ${command} `)
      const version = await run("--version")
      ok(version)
      assert.match(version.stdout, /\d+\.\d+\.\d+/)
    })

    it("refuses bad input found before the database opens with one message and exit 2", async () => {
      bad(await run("run", "missing.json"), "no such workflow file: missing.json")
      Fs.writeFileSync(Path.join(dir, "broken.json"), "{\"version\": 1,")
      bad(await run("run", "broken.json"), "broken.json is not valid JSON")
      Fs.writeFileSync(Path.join(dir, "dangling.json"), JSON.stringify({
        version: 1,
        id: "dangling",
        blocks: [{ id: "start", type: "trigger" }, { id: "out", type: "response", params: { value: 1 } }],
        edges: [{ source: "start", target: "out" }, { source: "out", target: "ghost" }]
      }))
      bad(await run("run", "dangling.json"), "DanglingEdge at edges[1].target", "ghost")
      Fs.writeFileSync(Path.join(dir, "teleport.json"), JSON.stringify({
        version: 1,
        id: "teleport",
        blocks: [{ id: "start", type: "trigger" }, { id: "out", type: "teleport" }],
        edges: [{ source: "start", target: "out" }]
      }))
      bad(await run("run", "teleport.json"), "no handler for type \"teleport\"", "blocks[1].type")
      // What PostgreSQL cannot store is refused by every backend before anything is written.
      Fs.writeFileSync(Path.join(dir, "nul.json"), JSON.stringify({
        version: 1,
        id: "nul",
        blocks: [{ id: "start", type: "trigger" }, { id: "out", type: "response", params: { value: "a\u0000b" } }],
        edges: [{ source: "start", target: "out" }]
      }))
      bad(await run("run", "nul.json"), "UnstorableValue at blocks[1].params.value", "NUL character")
      bad(await run("run", example("support-triage.json")), "MissingInput at subject", "support-triage declares subject (string, required), body (string, required), tier (string, default \"free\")")
      bad(await run("rerun", example("support-triage.json"), "--from", "nope"), "unknown block \"nope\"")
      // A usage error prints the command's help and the error.
      const usage = await run("plan", example("support-triage.json"), "--format", "svg")
      assert.strictEqual(usage.code, 2)
      assert.include(usage.stdout + usage.stderr, "Invalid value for flag --format: \"svg\"")
      bad(await run("plan", example("support-triage.json")), "a re-run needs --from <block>, --to <block>, or both")
    })

    it("runs a workflow through the real binary, a line per node and a summary (exit 0)", async () => {
      const result = await binary("run", example("support-triage.json"), "--input", triageInput)
      ok(result)
      first = runIdOf(result)
      assert.include(result.stdout, "node ticket started")
      assert.include(result.stdout, "node isPro completed -> false")
      assert.include(result.stdout, "node escalate skipped (branch not taken)")
      assert.match(result.stdout, new RegExp(`run ${first} completed in .*: 6 executed, 0 reused, 1 skipped, 0 failed`))
      // Plain lines when stdout is not a terminal.
      assert.notInclude(result.stdout, "\u001b[")
    })

    it("plans a re-run from an edited block in every format, and refuses unknown runs and blocks, writing nothing", async () => {
      const before = await s.dump()
      const text = await run("plan", edited, "--from", "signature")
      ok(text)
      assert.match(text.stdout, /signature\s+re-run\s+target/)
      assert.match(text.stdout, /ticket\s+reused/)
      const json = await run("plan", edited, "--from", "signature", "--run", first, "--format", "json")
      ok(json)
      const plan = JSON.parse(json.stdout)
      assert.deepStrictEqual([...plan.reused].sort(), ["start", "ticket"])
      assert.include(plan.rerun, "signature")
      const mermaid = await run("plan", edited, "--from", "signature", "--run", "latest", "--format", "mermaid")
      ok(mermaid)
      assert.match(mermaid.stdout, /^flowchart/m)
      const dot = await run("plan", edited, "--from", "signature", "--format", "dot")
      ok(dot)
      assert.match(dot.stdout, /^digraph/m)
      bad(await run("plan", edited, "--from", "nope"), "unknown block \"nope\"")
      bad(await run("plan", edited, "--from", "signature", "--run", "no-such-run"), "unknown run \"no-such-run\"")
      bad(await run("plan", example("dist/content-pipeline-handlers.js"), "--from", "digest"), "no finished run of workflow content-pipeline-handlers")
      bad(await run("show", "no-such-run"), "unknown run \"no-such-run\"")
      bad(await run("cancel", "no-such-run"), "unknown run \"no-such-run\"")
      bad(await run("run", example("support-triage.json"), "--input", "{\"subject\": 1, \"body\": \"b\"}"), "InputTypeMismatch at subject")
      bad(await run("run", example("support-triage.json"), "--input", "{\"subject\": \"\\ud800\", \"body\": \"b\"}"), "UnstorableValue at subject", "lone surrogate")
      assert.strictEqual(await s.dump(), before)
    })

    it("re-runs from the edited block, reusing what is still valid", async () => {
      const result = await run("rerun", edited, "--from", "signature")
      ok(result)
      second = runIdOf(result)
      assert.notStrictEqual(second, first)
      assert.match(result.stdout, new RegExp(`node start reused from ${first}`))
      assert.match(result.stdout, new RegExp(`node ticket reused from ${first}`))
      assert.include(result.stdout, "node signature completed")
      assert.include(result.stdout, "node autoReply completed")
      // isPro reads only the input: re-executing signature changed nothing it reads (early cutoff).
      assert.match(result.stdout, new RegExp(`node isPro reused by cutoff from ${first}`))
      assert.match(result.stdout, /3 executed, 3 reused \(1 by cutoff\), 1 skipped, 0 failed/)
    })

    it("shows a run: status, reused or re-run with reasons, duration, attempt", async () => {
      const result = await run("show", second)
      ok(result)
      assert.include(result.stdout, `run ${second}`)
      assert.include(result.stdout, `reusing ${first}`)
      assert.match(result.stdout, /ticket\s+completed\s+reused\s+unchanged\s+-\s+1/)
      assert.match(result.stdout, /isPro\s+completed\s+reused\s+cutoff/)
      assert.match(result.stdout, /signature\s+completed\s+executed\s+target\s+\d+ ms\s+1/)
      assert.match(result.stdout, /escalate\s+skipped\s+skipped\s+branch not taken/)
    })

    it("lists runs, filtered by workflow and status", async () => {
      const all = await run("runs")
      ok(all)
      assert.include(all.stdout, first)
      assert.include(all.stdout, second)
      assert.isBelow(all.stdout.indexOf(second), all.stdout.indexOf(first), "newest first")
      const none = await run("runs", "--workflow", "support-triage", "--status", "failed")
      ok(none)
      assert.include(none.stdout, "no runs")
      const json = await run("runs", "--workflow", "support-triage", "--format", "json")
      ok(json)
      assert.deepStrictEqual(JSON.parse(json.stdout).runs.map((r: { id: string }) => r.id), [second, first])
      // The document is the answer: the table is not printed beside it, on stderr or anywhere.
      assert.strictEqual(json.stderr, "")
      const shown = await run("show", second, "--format", "json")
      ok(shown)
      assert.strictEqual(JSON.parse(shown.stdout).run.runId, second)
      assert.strictEqual(shown.stderr, "")
    })

    it("lists the stored versions of a workflow, by id or by file", async () => {
      const byFile = await run("versions", edited, "--format", "json")
      ok(byFile)
      assert.strictEqual(byFile.stderr, "")
      const listed = JSON.parse(byFile.stdout)
      assert.strictEqual(listed.workflowId, "support-triage")
      // The original and the edited workflow, newest first; the file is the edited one.
      assert.lengthOf(listed.versions, 2)
      assert.strictEqual(listed.versions[0].version, listed.current)
      assert.deepStrictEqual(listed.versions.map((v: { runs: number }) => v.runs), [1, 1])
      const byId = await run("versions", "support-triage")
      ok(byId)
      assert.match(byId.stdout, new RegExp(`^${listed.current}\\s+\\S+\\s+1\\s+\\S+$`, "m"))
      assert.include((await run("versions", example("support-triage.json"))).stdout, "(this file)")
      assert.include((await run("versions", "no-such-workflow")).stdout, "no stored versions of workflow no-such-workflow")
    })

    it("exits 1 when a run fails, and shows the error", async () => {
      Fs.writeFileSync(Path.join(dir, "failing.json"), JSON.stringify({
        version: 1,
        id: "failing",
        blocks: [{ id: "start", type: "trigger" }, { id: "boom", type: "fail", params: { message: "out of coffee" } }],
        edges: [{ source: "start", target: "boom" }]
      }))
      const result = await run("run", "failing.json")
      assert.strictEqual(result.code, 1, result.stdout + result.stderr)
      assert.include(result.stdout, "node boom failed")
      const shown = await run("show", runIdOf(result))
      ok(shown)
      assert.match(shown.stdout, /boom\s+failed/)
      assert.include(shown.stdout, "out of coffee")
      // Resume re-runs only the failed node, here; it fails again.
      const resumed = await run("resume", runIdOf(result))
      assert.strictEqual(resumed.code, 1, resumed.stdout + resumed.stderr)
      assert.include(resumed.stdout, "(resume)")
      assert.include(resumed.stdout, "node boom failed")
      assert.notInclude(resumed.stdout, "node start started")
    })

    it("runs an ES module workflow with custom Effect handlers", async () => {
      const result = await run("run", example("dist/content-pipeline-handlers.js"), "--input", JSON.stringify({ tag: "durable" }))
      ok(result)
      assert.include(result.stdout, "node headline completed -> short")
      assert.include(result.stdout, "node note completed")
      const listed = await run("runs", "--workflow", "content-pipeline-handlers", "--status", "completed")
      assert.include(listed.stdout, runIdOf(result))
    })

    it("pauses at an approval (exit 3); approve continues the run here", async () => {
      const paused = await run("run", example("content-pipeline.json"))
      assert.strictEqual(paused.code, 3, paused.stdout + paused.stderr)
      const id = runIdOf(paused)
      assert.include(paused.stdout, "node summarize@2 completed")
      assert.include(paused.stdout, "node review waiting (approval)")
      assert.include(paused.stdout, `awaiting approval of review: ripple approve ${id} review`)
      bad(await run("approve", id, "publish"), `run ${id} (paused) has no approval "publish" waiting`)
      const approved = await run("approve", id, "review", "--payload", "{\"by\": \"editor\"}")
      ok(approved)
      assert.include(approved.stdout, "node publish completed")
      assert.match(approved.stdout, new RegExp(`run ${id} completed`))
    })

    it("suspends on a wait (exit 3) until its signal; cancels a dormant run", async () => {
      Fs.writeFileSync(Path.join(dir, "payment.json"), JSON.stringify({
        version: 1,
        id: "payment",
        blocks: [
          { id: "start", type: "trigger" },
          { id: "paid", type: "wait", params: { signal: "payment" } },
          { id: "receipt", type: "template", params: { template: "paid {{amount}}", values: { amount: { $ref: "blocks.paid.output.amount" } } } },
          { id: "out", type: "response", params: { value: { $ref: "blocks.receipt.output" } } }
        ],
        edges: [{ source: "start", target: "paid" }, { source: "paid", target: "receipt" }, { source: "receipt", target: "out" }]
      }))
      const suspended = await run("run", "payment.json")
      assert.strictEqual(suspended.code, 3, suspended.stdout + suspended.stderr)
      const id = runIdOf(suspended)
      assert.include(suspended.stdout, "node paid waiting (signal)")
      bad(await run("signal", id, "refund"), `does not take signal "refund"`)
      const kept = await s.dump()
      bad(await run("signal", id, "payment", "--payload", "{\"amount\": \"\\u0000\"}"), "NUL character", "[\"payload\",\"amount\"]")
      assert.strictEqual(await s.dump(), kept)
      const signalled = await run("signal", id, "payment", "--payload", "{\"amount\": 42}")
      ok(signalled)
      assert.include(signalled.stdout, "node receipt completed")
      const shown = await run("show", id)
      assert.match(shown.stdout, /receipt\s+completed\s+executed/)
      // A signal sent before the run reaches its wait is kept for it: exit 0, saying so.
      const queued = await run("run", "payment.json", "--queue")
      ok(queued)
      const early = /^run (\S+) queued/m.exec(queued.stdout)?.[1]
      const stored = await run("signal", early!, "payment", "--payload", "{\"amount\": 7}")
      ok(stored)
      assert.include(stored.stdout, `run ${early} is pending; signal "payment" stored for delivery`)
      ok(await run("cancel", early!))
      const again = await run("run", "payment.json")
      assert.strictEqual(again.code, 3)
      const cancelled = await run("cancel", runIdOf(again))
      ok(cancelled)
      assert.include(cancelled.stdout, "suspended -> cancelled")
    })

    it("pauses a suspended run when it wakes; resume continues it; ended, paused and unknown runs are refused", async () => {
      const suspended = await run("run", "payment.json")
      assert.strictEqual(suspended.code, 3, suspended.stdout + suspended.stderr)
      const id = runIdOf(suspended)
      const requested = await run("pause", id)
      assert.strictEqual(requested.code, 3, requested.stdout + requested.stderr)
      assert.include(requested.stdout, `run ${id} is suspended; pause requested: it pauses when it wakes`)
      assert.include((await run("show", id)).stdout, "pause requested ")
      // The signal wakes it here: the wait takes its signal, then the run parks before the next block.
      const woken = await run("signal", id, "payment", "--payload", "{\"amount\": 7}")
      assert.strictEqual(woken.code, 3, woken.stdout + woken.stderr)
      assert.include(woken.stdout, "node paid completed")
      assert.include(woken.stdout, "node receipt waiting (paused)")
      assert.include(woken.stdout, `paused at receipt: ripple resume ${id}`)
      const again = await run("pause", id)
      assert.strictEqual(again.code, 3, again.stdout + again.stderr)
      assert.include(again.stdout, `run ${id} is paused already`)
      const resumed = await run("resume", id)
      ok(resumed)
      assert.include(resumed.stdout, "node receipt completed")
      assert.notInclude(resumed.stdout, "node paid started")
      bad(await run("pause", id), `run ${id} already ended (completed); nothing to pause`)
      bad(await run("pause", "no-such-run"), "unknown run \"no-such-run\"")
      bad(await run("pause", id, "--wait", "-1"), "--wait -1 is negative")
    })

    it("pauses a run executing in another process at its next node boundary (a server; PGlite is one process's)", async () => {
      const held = Path.join(root, "tests", "cli", "fixtures", "held-steps.mjs")
      // The blocks after s0 run until this file exists: the test releases them once it has paused the run.
      const release = Path.join(dir, "held-steps.release")
      const where = { ...s.where, env: { ...s.where.env, RIPPLE_RELEASE: release } }
      const runner = spawnRipple(where, "run", held)
      const deadline = Date.now() + 60_000
      while (!runner.output().includes("node s1 started") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const id = /^run (\S+) started/m.exec(runner.output())?.[1]
      assert.isDefined(id, runner.output())
      // Once the request is recorded (or refused), the held blocks may finish: pause waits for the park.
      const pauser = spawnRipple(s.where, "pause", id!)
      let answered = false
      void pauser.exited.then(() => (answered = true))
      while (!answered && !pauser.output().includes("pause requested") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      Fs.writeFileSync(release, "")
      const code = await pauser.exited
      if (!s.shared) {
        // The executing process holds the embedded database: pause says so and changes nothing.
        bad({ code, stdout: "", stderr: pauser.output() }, `in use by pid ${runner.child.pid}`)
        assert.strictEqual(await runner.exited, 0, runner.output())
        return
      }
      assert.strictEqual(code, 3, pauser.output())
      assert.include(pauser.output(), `run ${id} is running; pause requested`)
      assert.include(pauser.output(), `run ${id}: running -> paused`)
      // The executing process finished the block it was running, parked the rest, and stopped.
      assert.strictEqual(await runner.exited, 3, runner.output())
      assert.include(runner.output(), "node s1 completed")
      assert.notInclude(runner.output(), "node s4 started")
      const shown = await binary("show", id!)
      const parked = /^(s\d)\s+paused/m.exec(shown.stdout)?.[1]
      assert.isDefined(parked, shown.stdout)
      assert.notInclude(runner.output(), `node ${parked} started`)
      assert.include(runner.output(), `node ${parked} waiting (paused)`)
      const resumed = await ripple(where, "resume", id!, "--handlers", held)
      ok(resumed)
      assert.include(resumed.stdout, `node ${parked} started`)
      assert.include(resumed.stdout, "node s4 completed")
      assert.notInclude(resumed.stdout, "node s0 started")
      assert.notInclude(resumed.stdout, "node s1 started")
    })

    it("runs child workflows in the same process; a child that waits holds its parent until signalled", async () => {
      const inline = (child: object) => JSON.stringify(child)
      const parentOf = (id: string, child: object) => ({
        version: 1,
        id,
        blocks: [
          { id: "start", type: "trigger" },
          { id: "sub", type: "child", params: { workflow: inline(child), input: {} } },
          { id: "out", type: "response", params: { value: { $ref: "blocks.sub.output" } } }
        ],
        edges: [{ source: "start", target: "sub" }, { source: "sub", target: "out" }]
      })
      Fs.writeFileSync(Path.join(dir, "parent.json"), JSON.stringify(parentOf("parent", {
        id: "kid",
        blocks: [{ id: "v", type: "value", params: { value: 42 } }],
        edges: []
      })))
      const result = await run("run", "parent.json")
      ok(result)
      const id = runIdOf(result)
      assert.match(result.stdout, /node sub waiting \(child run \S+\)/)
      assert.match(result.stdout, /\[\w{8}\] node v completed/)
      assert.match(result.stdout, new RegExp(`run ${id} completed in .*: 3 executed`))
      const listed = await run("runs", "--workflow", "kid", "--status", "completed")
      assert.include(listed.stdout, "kid")

      Fs.writeFileSync(Path.join(dir, "parent-waits.json"), JSON.stringify(parentOf("parent-waits", {
        id: "kid-waits",
        blocks: [{ id: "go", type: "wait", params: { signal: "go" } }, { id: "v", type: "value", params: { value: { $ref: "blocks.go.output" } } }],
        edges: [{ source: "go", target: "v" }]
      })))
      const waiting = await run("run", "parent-waits.json")
      assert.strictEqual(waiting.code, 3, waiting.stdout + waiting.stderr)
      const parent = runIdOf(waiting)
      const child = /awaiting child run ([^\s:,]+), which awaits signal go: ripple signal \1 go/.exec(waiting.stdout)?.[1]
      assert.isDefined(child, waiting.stdout)
      // Signalling the child finishes it here, and the parent it wakes too.
      const signalled = await run("signal", child!, "go", "--payload", "7")
      ok(signalled)
      assert.include(signalled.stdout, `parent run ${parent} is completed`)
      const shown = await run("show", parent)
      assert.include(shown.stdout, `run ${parent}  workflow parent-waits  completed`)
    })

    it("a process killed while a child run executes: resuming the parent finishes the child, then the parent", async () => {
      const module = Path.join(root, "tests", "cli", "fixtures", "slow-child.mjs")
      const runner = spawnRipple(s.where, "run", module)
      const deadline = Date.now() + 60_000
      while (!/\] node s1 started/.test(runner.output()) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      runner.child.kill("SIGKILL")
      await runner.exited
      const parent = /^run (\S+) started/m.exec(runner.output())?.[1]
      assert.isDefined(parent, runner.output())
      const resumed = await run("resume", parent!, "--handlers", module)
      ok(resumed)
      // The child goes on from its journal (s0 finished before the kill), then wakes the parent.
      assert.match(resumed.stdout, /\] node s4 completed/)
      assert.notMatch(resumed.stdout, /\] node s0 started/)
      assert.match(resumed.stdout, new RegExp(`run ${parent} completed`))
      const shown = await run("show", parent!)
      assert.match(shown.stdout, /out\s+completed/)
    })

    it("refuses to cancel a run that has ended", async () => {
      bad(await run("cancel", first), `run ${first} already ended (completed)`)
    })

    it("queues a run that a worker executes", async () => {
      const queued = await run("run", example("support-triage.json"), "--queue", "--input", triageInput)
      ok(queued)
      const id = /^run (\S+) queued/m.exec(queued.stdout)?.[1]
      assert.isDefined(id)
      const worker = spawnRipple(s.where, "worker", "--concurrency", "2")
      const deadline = Date.now() + 60_000
      while (!worker.output().includes(`run ${id} completed`) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      worker.child.kill("SIGINT")
      await worker.exited
      assert.include(worker.output(), `run ${id} completed`, worker.output())
      const shown = await run("show", id!)
      assert.include(shown.stdout, `run ${id}  workflow support-triage  completed`)
    })

    it("hands a failed run back to the workers with resume --queue; refuses a finished one", async () => {
      const failed = await run("run", "failing.json")
      assert.strictEqual(failed.code, 1, failed.stdout + failed.stderr)
      const id = runIdOf(failed)
      bad(await run("resume", first, "--queue"), `run ${first} is completed; only a paused (by ripple pause), failed or crashed run`)
      const queued = await run("resume", id, "--queue")
      ok(queued)
      assert.include(queued.stdout, `run ${id} queued for \`ripple worker\` (running)`)
      const worker = spawnRipple(s.where, "worker")
      const deadline = Date.now() + 60_000
      while (!worker.output().includes(`run ${id} failed`) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      worker.child.kill("SIGINT")
      await worker.exited
      // The worker retried the failed block (it fails again) and nothing else.
      assert.include(worker.output(), `${id.slice(0, 8)} node boom failed`, worker.output())
      assert.notInclude(worker.output(), `${id.slice(0, 8)} node start started`)
      assert.include(worker.output(), `run ${id} failed`)
    })

    it("migrates (up to date)", async () => {
      const result = await run("migrate")
      ok(result)
      assert.include(result.stdout, "schema up to date")
    })

    afterAll(teardown)
  })
