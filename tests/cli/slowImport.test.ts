/**
 * A workflow module whose top-level code takes a while (or never finishes): `ripple` said nothing
 * while it waited, so a module stuck on an `await` looked like a hung command. It now says, once,
 * what it is waiting for, and goes on when the module is loaded.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Path from "node:path"
import { ripple, tempDir } from "./ripple.ts"

const fixture = Path.join(Path.dirname(new URL(import.meta.url).pathname), "fixtures", "slow-import.mjs")
const notice = "its top-level code has not finished after 3 s (Ctrl-C stops)"

// `ripple run` of the fixture, whose top-level code takes `importMs`, on an embedded database of its own.
const runSlow = async (importMs: number) => {
  const temp = tempDir("slowimport")
  try {
    const env = { RIPPLE_IMPORT_MS: String(importMs) }
    const result = await ripple({ cwd: temp.dir, timeout: 60_000, env }, "run", fixture, "--data-dir", Path.join(temp.dir, "data"))
    assert.strictEqual(result.code, 0, result.stdout + result.stderr)
    return result
  } finally {
    temp.remove()
  }
}

describe("a workflow module slow to load (the binary)", () => {
  it("is announced once on stderr after 3 s, and the run goes on once it is loaded", async () => {
    const result = await runSlow(4_000)
    assert.include(result.stderr, `ripple: still loading ${fixture}: ${notice}`)
    assert.strictEqual(result.stderr.split(notice).length, 2, result.stderr)
    assert.include(result.stdout, "completed")
  })

  it("is not announced when it loads within 3 s", async () => {
    const result = await runSlow(0)
    assert.notInclude(result.stderr, "still loading")
  })
})
