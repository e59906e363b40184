/**
 * The demo behind `npm start`: the `ripple` CLI, embedded, on a fresh embedded database (PGlite in
 * a temporary directory, removed at the end, so the demo can be run again and again).
 *
 * 1. a full run of the support-triage workflow,
 * 2. an edit to one block (the signature),
 * 3. `ripple plan --from signature`: what a re-run would re-execute and reuse, and why,
 * 4. `ripple rerun --from signature`: only the edited block and what reads it run again,
 * 5. `ripple show`: per node, reused or re-run and why,
 * 6. a long-lived run: the content pipeline pauses for an editor's approval, then `ripple approve`.
 *
 * Usage: node examples/dist/demo.js
 */
import { Cli, Platform, Store } from "@ripple/cli"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))
const temp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-demo-"))
const dataDir = Path.join(temp, "db")
const database: Cli.DatabaseOptions = { url: undefined, dataDir }
const main = Cli.main(Store.backend)

const say = (text: string) => Effect.sync(() => console.log(text))

// Runs one `ripple` command in this process, echoing it first; fails on an unexpected exit code.
const ripple = (expected: number, ...args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    yield* say(`\n$ ripple ${args.map((a) => /[\s{"]/.test(a) ? `'${a}'` : a).join(" ")}`)
    const code = yield* main([...args, "--data-dir", dataDir])
    if (code !== expected) return yield* Effect.fail(new Error(`ripple ${args[0]} exited ${code}, expected ${expected}`))
  })

const newestRun = (workflowId: string) =>
  Effect.map(Store.backend.list(database, { workflowId, status: undefined }), (runs) => runs[0]!.id)

const program = Effect.gen(function*() {
  process.chdir(root)
  const edited = Path.join(temp, "support-triage.json")
  const workflow = JSON.parse(Fs.readFileSync("examples/support-triage.json", "utf8"))
  workflow.blocks.find((b: { id: string }) => b.id === "signature").params.value = "Ripple support, weekend rota"
  Fs.writeFileSync(edited, JSON.stringify(workflow, null, 2))

  yield* say(`Ripple demo — embedded database in ${dataDir} (every command below also gets --data-dir ${dataDir})`)
  yield* say("\n1. A full run of a support-triage workflow:")
  yield* ripple(0, "run", "examples/support-triage.json", "--input", JSON.stringify({ subject: "Login fails", body: "The sign-in page says my token expired." }))

  yield* say(`\n2. Edit one block: signature.params.value = "Ripple support, weekend rota" (saved as ${edited})`)
  yield* say("\n3. What would a re-run from the edited block do? (a dry run: nothing is written)")
  yield* ripple(0, "plan", edited, "--from", "signature")

  yield* say("\n4. Re-run from the edited block. Upstream results are reused. isPro was planned (it comes after")
  yield* say("   signature), but nothing it reads changed, so it is reused at run time too (early cutoff).")
  yield* ripple(0, "rerun", edited, "--from", "signature")

  yield* say("\n5. The re-run, node by node:")
  yield* ripple(0, "show", yield* newestRun("support-triage"))

  yield* say("\n6. A long-lived run: the content pipeline fans out, refines in a loop, then waits for an editor (exit 3):")
  yield* ripple(3, "run", "examples/content-pipeline.json")
  yield* ripple(0, "approve", yield* newestRun("content-pipeline"), "review", "--payload", JSON.stringify({ by: "editor" }))
  yield* say("\nDone. Try `ripple --help`, or the same commands against PostgreSQL with DATABASE_URL set.")
})

Effect.runPromise(program.pipe(
  Effect.provide(Platform.layer),
  Effect.ensuring(Effect.sync(() => Fs.rmSync(temp, { recursive: true, force: true })))
)).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
