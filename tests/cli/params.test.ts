/**
 * Params checked before running, on the `ripple` command over embedded PGlite: built-in blocks'
 * literal params (`Workflow.decode`), misplaced secrets, and the params schema a custom handler
 * declares — each refused by `run`, `rerun` and `plan` with exit 2, a message naming the block and
 * the JSON path and a fix line, and nothing written (every row of every table the same). And an
 * `http` block run from the command line against a local server: its secret reaches the server
 * and appears neither in the output nor in the database.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as NodeHttp from "node:http"
import * as Path from "node:path"
import { dumpPglite, rippleInProcess, tempDir } from "./ripple.ts"

const { dir, remove } = tempDir("params")
afterAll(remove)
const where = { cwd: dir }

const file = (name: string, block: Record<string, unknown>, extra: Record<string, unknown> = {}): string => {
  const path = Path.join(dir, `${name}.json`)
  Fs.writeFileSync(path, JSON.stringify({
    version: 1,
    id: name,
    blocks: [{ id: "start", type: "trigger" }, { id: "bad", ...block }],
    edges: [{ source: "start", target: "bad" }],
    ...extra
  }))
  return path
}

const cases: ReadonlyArray<readonly [string, string, string, string, string?]> = [
  // name, workflow file, error tag, path as printed, block (default "bad")
  ["router", file("router", { type: "router", params: { value: 1 } }), "InvalidParams", "blocks[1].params.routes"],
  ["condition", file("condition", { type: "condition", params: { left: 1, op: "approx", right: 1 } }), "InvalidParams", "blocks[1].params.op"],
  ["template", file("template", { type: "template", params: { template: 3 } }), "InvalidParams", "blocks[1].params.template"],
  ["http", file("http", { type: "http", params: { url: "http://127.0.0.1:1/x", json: { a: 1 } } }), "InvalidParams", "blocks[1].params.json"],
  ["secret", file("secret", { type: "value", params: { value: { $secret: "HOME" } } }), "InvalidSecret", "blocks[1].params.value"],
  ["custom", Path.join(Path.dirname(new URL(import.meta.url).pathname), "fixtures", "shout.mjs"), "InvalidParams", "blocks[1].params.times", "loud"]
]

describe("ripple refuses params that no reference can fix", () => {
  it("run, rerun and plan: exit 2, block and path named, nothing written", { timeout: 120_000 }, async () => {
    const ok = file("ok", { type: "value", params: { value: 1 } })
    assert.strictEqual((await rippleInProcess(where, "run", ok)).code, 0)
    const before = await dumpPglite(Path.join(dir, ".ripple"))
    for (const [name, path, tag, at, block = "bad"] of cases) {
      for (const args of [["run", path], ["rerun", path, "--from", "start"], ["plan", path, "--from", "start"]]) {
        const result = await rippleInProcess(where, ...args)
        const what = `${name}: ripple ${args.join(" ")}\n${result.stdout}\n${result.stderr}`
        assert.strictEqual(result.code, 2, what)
        assert.include(result.stderr, tag, what)
        assert.include(result.stderr, at, what)
        assert.include(result.stderr, `"${block}"`, what)
        assert.include(result.stderr, "fix:", what)
        assert.notInclude(result.stderr, "    at ", what)
      }
    }
    assert.strictEqual(await dumpPglite(Path.join(dir, ".ripple")), before)
  })

  it("runs an http block with a secret that stays out of the output and the database", { timeout: 120_000 }, async () => {
    const secret = "cli-Secret-9182"
    const seen: Array<string> = []
    const server = NodeHttp.createServer((req, res) => {
      seen.push(String(req.headers["x-api-key"]))
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ key: req.headers["x-api-key"], greeting: "hello" }))
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    try {
      const { port } = server.address() as { readonly port: number }
      const path = file("call", { type: "http", params: { url: `http://127.0.0.1:${port}/hi`, headers: { "X-Api-Key": { $secret: "RIPPLE_TEST_KEY" } } } }, {
        outputs: ["bad"]
      })
      const result = await rippleInProcess({ ...where, env: { RIPPLE_TEST_KEY: secret } }, "run", path, "--full")
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(seen, [secret])
      assert.include(result.stdout, "hello")
      assert.include(result.stdout, "[secret RIPPLE_TEST_KEY]")
      assert.notInclude(result.stdout + result.stderr, secret)
      const stored = await dumpPglite(Path.join(dir, ".ripple"))
      assert.include(stored, "RIPPLE_TEST_KEY")
      assert.notInclude(stored, secret)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
