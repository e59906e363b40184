/**
 * The studio in a real browser: headless Chromium (Debian's `chromium`, found on the PATH; `.ci/run`
 * installs it) driven by `playwright-core`, which downloads no browser. `ripple studio` runs as its
 * own process (the bundled binary, `npm run build` first) on a fresh embedded database:
 *
 * - a second tab on the runs list sees a run started from the page appear, then wait for approval,
 *   without a reload (server-sent events);
 * - the run page shows `review` waiting; it is approved from the page, and the run completes;
 * - the plan of a re-run from `draft` shows, for every node, the colour of its part (re-run, reused,
 *   pruned) and the counts; once the studio stopped, `ripple plan --from draft --format json` on the
 *   same database gives the same parts and counts;
 * - executing the plan from the page makes a run-from whose page shows reused and cut-off nodes,
 *   and compared with the run it reused, no node differs;
 * - a run whose cancel is pending (recorded, the run not ended yet) is marked so in the runs list
 *   and on its page.
 *
 * A screenshot of each page is written to `test-output/studio/` (ignored by git).
 */
import { assert, describe, it } from "@effect/vitest"
import { Database, SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { chromium, type Browser, type Page } from "playwright-core"
import { bin, example, ripple, root, runIdOf } from "../cli/ripple.ts"
import { ensureBuilt } from "../helpers/workerProcess.ts"

const output = Path.join(root, "test-output", "studio")
const workflowFile = example("content-pipeline.json")

const chromiumPath = (): string => {
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      return execFileSync("which", [name], { encoding: "utf8" }).trim()
    } catch {
      // not this name
    }
  }
  throw new Error("no chromium on the PATH: apt-get install -y chromium (.ci/run does)")
}

// `ripple studio --port 0` on `dataDir` (embedded database); resolves with its URL once it listens.
const startStudio = (dataDir: string): Promise<{ readonly child: ChildProcess; readonly url: string }> =>
  new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" }
    delete env.DATABASE_URL
    const child = spawn(process.execPath, [bin, "studio", "--port", "0", "--data-dir", dataDir], { env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout!.on("data", (chunk) => {
      out += chunk
      const found = /ripple studio: (http:\/\/\S+?)\/? /.exec(out)
      if (found !== null) resolve({ child, url: found[1]! })
    })
    child.stderr!.on("data", (chunk) => (err += chunk))
    child.on("exit", (code) => reject(new Error(`ripple studio exited ${code}\n${out}\n${err}`)))
  })

const stop = (child: ChildProcess): Promise<number | null> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode)
    child.removeAllListeners("exit")
    child.on("exit", (code) => resolve(code))
    child.kill("SIGINT")
  })

// The browser's `getComputedStyle` (the tests compile without the DOM library).
interface Styles {
  readonly getComputedStyle: (element: unknown) => { readonly fill: string }
}

// Every node of the graph on the page with the state it is drawn in and the fill it is drawn with.
const drawn = (page: Page) =>
  page.$$eval("[data-testid=graph] [data-node]", (nodes) =>
    nodes.map((node) => ({
      node: node.getAttribute("data-node")!,
      state: node.getAttribute("data-state")!,
      fill: (globalThis as unknown as Styles).getComputedStyle(node.querySelector("rect")!).fill
    })))

// The fill of each state's swatch in the legend.
const legend = (page: Page) =>
  page.$$eval("[data-testid=legend] [data-state]", (items) =>
    Object.fromEntries(items.map((item) => [item.getAttribute("data-state")!, (globalThis as unknown as Styles).getComputedStyle(item.querySelector("rect")!).fill])))

const nodeState = (page: Page, node: string, state: string) =>
  page.waitForSelector(`[data-testid=graph] [data-node="${node}"][data-state="${state}"]`)

describe("ripple studio in Chromium", () => {
  it("runs content-pipeline to its approval, approves it from the page, and draws the plan from draft as ripple plan makes it", async () => {
    await Effect.runPromise(ensureBuilt([bin]))
    Fs.mkdirSync(output, { recursive: true })
    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-studio-"))
    const studio = await startStudio(dataDir)
    let browser: Browser | undefined
    try {
      browser = await chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"] })
      const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
      const list = await context.newPage()
      await list.goto(studio.url)
      await list.waitForSelector("[data-testid=runs]")
      assert.strictEqual(await list.locator("[data-testid=runs] tbody tr").count(), 0)

      const page = await context.newPage()
      await page.goto(studio.url)
      await page.click("summary:has-text('Start a run')")
      await page.fill("[data-testid=start-workflow]", Fs.readFileSync(workflowFile, "utf8"))
      await page.click("[data-testid=start]")
      await page.waitForSelector("[data-testid=run-id]")
      const runId = (await page.textContent("[data-testid=run-id]"))!
      await nodeState(page, "review", "waiting")
      assert.strictEqual(await page.textContent("h1 [data-testid=status]"), "paused")

      // The other tab was never reloaded: the run arrived through the event stream.
      await list.waitForSelector(`[data-run="${runId}"] [data-testid=status]:has-text("paused")`)
      await list.screenshot({ path: Path.join(output, "runs.png"), fullPage: true })

      await page.click("[data-testid=graph] [data-node=draft]")
      await page.waitForSelector("[data-testid=node-panel] h4:has-text('draft@2')")
      await page.screenshot({ path: Path.join(output, "run-waiting.png"), fullPage: true })
      await page.click("[data-testid=approve-review]")
      await page.waitForSelector("h1 [data-testid=status]:has-text('completed')")
      await nodeState(page, "publish", "executed")
      await nodeState(page, "newsletter", "skipped")
      await list.waitForSelector(`[data-run="${runId}"] [data-testid=status]:has-text("completed")`)
      await page.screenshot({ path: Path.join(output, "run.png"), fullPage: true })

      await page.selectOption("[data-testid=plan-block]", "draft")
      await page.click("[data-testid=plan]")
      await page.waitForSelector("[data-testid=counts]")
      const counts = Object.fromEntries(
        await page.$$eval("[data-testid=counts] [data-state]", (items) => items.map((i) => [i.getAttribute("data-state")!, Number(i.getAttribute("data-count"))]))
      )
      const nodes = await drawn(page)
      const colours = await legend(page)
      await page.screenshot({ path: Path.join(output, "plan.png"), fullPage: true })

      // Executing the plan: only what it re-runs executes; draft writes what it wrote, so the approval is cut off.
      await page.click("[data-testid=execute]")
      await page.waitForSelector(`[data-testid=run-id]:not(:has-text("${runId}"))`)
      await page.waitForSelector("h1 [data-testid=status]:has-text('completed')")
      await nodeState(page, "fetch", "reused")
      await nodeState(page, "draft", "executed")
      await nodeState(page, "review", "cutoff")
      await page.screenshot({ path: Path.join(output, "rerun.png"), fullPage: true })

      // The re-run against the run it reused: nothing differs (same definitions, inputs, outputs).
      await page.selectOption("[data-testid=compare-run]", runId)
      await page.click("[data-testid=compare]")
      await page.waitForSelector("[data-testid=differences]")
      const compared = await drawn(page)
      assert.deepStrictEqual([...new Set(compared.map((n) => n.state))], ["same"])
      assert.strictEqual(await page.locator("[data-testid=differences] tbody tr").count(), 0)
      await page.waitForSelector("[data-testid=no-difference]")
      await page.screenshot({ path: Path.join(output, "compare.png"), fullPage: true })
      await browser.close()
      browser = undefined
      assert.strictEqual(await stop(studio.child), 130)

      const cli = await ripple({ cwd: dataDir }, "plan", workflowFile, "--from", "draft", "--run", runId, "--format", "json", "--data-dir", dataDir)
      assert.strictEqual(cli.code, 0, cli.stderr)
      const plan = JSON.parse(cli.stdout) as { rerun: Array<string>; reused: Array<string>; pruned: Array<string> }
      assert.deepStrictEqual(counts, { rerun: plan.rerun.length, reused: plan.reused.length, pruned: plan.pruned.length })
      const parts = { rerun: plan.rerun, reused: plan.reused, pruned: plan.pruned }
      const expected = Object.entries(parts).flatMap(([state, ids]) => ids.map((node) => [node, state] as const))
      assert.deepStrictEqual(nodes.map((n) => [n.node, n.state] as const).sort(), [...expected].sort())
      // Each part has a colour of its own, and every node is drawn in its part's colour.
      assert.strictEqual(new Set(Object.values(colours)).size, Object.keys(colours).length)
      for (const n of nodes) assert.strictEqual(n.fill, colours[n.state], `${n.node} (${n.state})`)
    } finally {
      await browser?.close()
      await stop(studio.child)
      Fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }, 180_000)

  it("marks a run whose cancel is pending in the runs list and on its page", async () => {
    await Effect.runPromise(ensureBuilt([bin]))
    Fs.mkdirSync(output, { recursive: true })
    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-studio-"))
    const paused = await ripple({ cwd: dataDir }, "run", workflowFile, "--data-dir", dataDir)
    assert.strictEqual(paused.code, 3, paused.stdout + paused.stderr)
    const runId = runIdOf(paused)
    // What `ripple cancel` records first; its process stopped before it ended the run.
    await Effect.runPromise(Effect.gen(function*() {
      const { store } = yield* SqlRunStore.SqlRunStore
      assert.isTrue(yield* store.requestCancel(runId, Date.now()))
    }).pipe(Effect.provide(Layer.provide(SqlRunStore.layer, Database.layer({ dataDir })))))
    const studio = await startStudio(dataDir)
    let browser: Browser | undefined
    try {
      browser = await chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"] })
      const list = await (await browser.newContext()).newPage()
      await list.goto(studio.url)
      const row = `[data-run="${runId}"]`
      await list.waitForSelector(`${row} [data-testid=status]:has-text("paused")`)
      assert.strictEqual(await list.textContent(`${row} [data-testid=cancel-requested]`), "cancel requested")
      await list.screenshot({ path: Path.join(output, "runs-cancel-requested.png"), fullPage: true })
      // And so does its page.
      await list.click(`${row} a`)
      await list.waitForSelector("h1 [data-testid=status]:has-text('paused')")
      assert.strictEqual(await list.textContent("h1 [data-testid=cancel-requested]"), "cancel requested")
    } finally {
      await browser?.close()
      await stop(studio.child)
      Fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }, 180_000)
})
