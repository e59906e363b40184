/**
 * `ripple studio`'s bad input, in process (`Cli.main` over the SQL backend on an embedded
 * database): a port out of range, a port in use or an address the machine lacks is refused before
 * the database is opened (no data directory is left behind), a problem naming the address (exit 2),
 * not a crash. The address it checks is the one it serves on: bound once, never let go of in
 * between (another process could take it). Its help states the studio's default port,
 * which the command tree states without loading the studio.
 */
import { assert, describe, it } from "@effect/vitest"
import { Studio } from "@ripple/studio"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { ripple, rippleInProcess, root, spawnRipple, tempDir } from "../cli/ripple.ts"

describe("ripple studio", () => {
  it("--help gives the studio's default port", async () => {
    const temp = tempDir("studio-help")
    try {
      const result = await rippleInProcess({ cwd: temp.dir }, "studio", "--help")
      assert.strictEqual(result.code, 0, result.stderr)
      assert.include(result.stdout, `The port (default ${Studio.defaultPort};`)
    } finally {
      temp.remove()
    }
  })

  it("refuses a port out of range and writes nothing", async () => {
    const temp = tempDir("studio-port")
    try {
      const dataDir = Path.join(temp.dir, "db")
      const result = await rippleInProcess({ cwd: temp.dir }, "studio", "--port", "70000", "--data-dir", dataDir)
      assert.strictEqual(result.code, 2, result.stderr)
      assert.include(result.stderr, "--port 70000 is not a port")
      assert.isFalse(Fs.existsSync(dataDir))
    } finally {
      temp.remove()
    }
  })

  // Node takes an empty host for every interface: --host "$HOST" with the variable unset opened
  // the studio to the network.
  for (const host of ["", " "]) {
    it(`refuses an empty --host (${JSON.stringify(host)}) and writes nothing`, async () => {
      const temp = tempDir("studio-host-empty")
      try {
        const dataDir = Path.join(temp.dir, "db")
        // The binary, killed if it serves instead of refusing: the test fails rather than hangs.
        const result = await ripple({ cwd: temp.dir, timeout: 30_000 }, "studio", "--host", host, "--port", "0", "--data-dir", dataDir)
        assert.strictEqual(result.code, 2, result.stdout + result.stderr)
        assert.include(result.stderr, "--host is empty")
        assert.include(result.stderr, "fix: pass 127.0.0.1")
        assert.isFalse(Fs.existsSync(dataDir))
      } finally {
        temp.remove()
      }
    })
  }

  it("names the address when the port is taken", async () => {
    const temp = tempDir("studio-taken")
    const taken = Net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    try {
      const port = (taken.address() as Net.AddressInfo).port
      const dataDir = Path.join(temp.dir, "db")
      const result = await rippleInProcess({ cwd: temp.dir }, "studio", "--port", String(port), "--data-dir", dataDir)
      assert.strictEqual(result.code, 2, result.stderr)
      assert.include(result.stderr, `cannot listen on 127.0.0.1:${port}: listen EADDRINUSE`)
      assert.notInclude(result.stderr, "    at ")
      assert.notInclude(result.stderr, "Error:")
      assert.isFalse(Fs.existsSync(dataDir))
    } finally {
      await new Promise((resolve) => taken.close(resolve))
      temp.remove()
    }
  })

  // It bound the address, let it go, opened the database and bound it again: a port taken in
  // between failed the studio after it had created the data directory.
  it("keeps the address it bound: a port taken the moment it is let go of does not stop it", async () => {
    const temp = tempDir("studio-once")
    const free = Net.createServer()
    await new Promise<void>((resolve) => free.listen(0, "127.0.0.1", resolve))
    const port = (free.address() as Net.AddressInfo).port
    await new Promise((resolve) => free.close(resolve))
    const steal = Path.join(root, "tests/cli/fixtures/stealPort.mjs")
    const studio = spawnRipple(
      { cwd: temp.dir, env: { NODE_OPTIONS: `--import ${steal}` } },
      "studio",
      "--port",
      String(port),
      "--data-dir",
      Path.join(temp.dir, "db")
    )
    try {
      let exited: number | undefined
      void studio.exited.then((code) => (exited = code))
      const deadline = Date.now() + 60_000
      while (exited === undefined && !studio.output().includes("ripple studio: ") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.include(studio.output(), `ripple studio: http://127.0.0.1:${port}/`)
      assert.isUndefined(exited, studio.output())
    } finally {
      studio.child.kill("SIGTERM")
      await studio.exited
      temp.remove()
    }
  }, 90_000)

  // The fix said "pick another --port" for an address the machine does not have (TEST-NET-3).
  // The reason read "Error: listen EADDRNOTAVAIL ..." (the error's class name printed).
  for (const [host, reason] of [["203.0.113.7", "listen EADDRNOTAVAIL"], ["no-such-host.invalid", "getaddrinfo ENOTFOUND no-such-host.invalid"]]) {
    it(`names --host in the fix when the machine has no such address (${host})`, async () => {
      const temp = tempDir("studio-host")
      try {
        const dataDir = Path.join(temp.dir, "db")
        const result = await rippleInProcess({ cwd: temp.dir }, "studio", "--host", host!, "--port", "0", "--data-dir", dataDir)
        assert.strictEqual(result.code, 2, result.stderr)
        assert.include(result.stderr, `cannot listen on ${host}:0: ${reason}`)
        assert.include(result.stderr, "fix: pass a --host this machine has")
        assert.notInclude(result.stderr, "--port")
        assert.notInclude(result.stderr, "    at ")
        assert.notInclude(result.stderr, "Error:")
        assert.isFalse(Fs.existsSync(dataDir))
      } finally {
        temp.remove()
      }
    })
  }
})
