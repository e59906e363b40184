/**
 * The data-directory lock: a live owner is refused with its pid, a dead one is taken over, and of
 * many processes racing to take over one stale lock exactly one wins (child processes over the
 * built `@ripple/sql`, built here if missing).
 */
import { assert, describe, it } from "@effect/vitest"
import { Database, DirectoryLock } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { ensureBuilt, root } from "../helpers/workerProcess.ts"

// No process has pid 2^31 - 2 (Linux caps pids at 2^22), so an owner with it is dead.
const deadPid = 2 ** 31 - 2
const stale = (nonce: string) => JSON.stringify({ pid: deadPid, host: Os.hostname(), nonce })

const directory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-lock-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const lockOf = (dir: string) => Path.join(dir, DirectoryLock.lockFile)

// A live process that is not this one.
const liveProcess = Effect.acquireRelease(
  Effect.sync(() => spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" })),
  (child) => Effect.sync(() => child.kill("SIGKILL"))
)

const refusal = (dir: string) =>
  Effect.map(Effect.flip(DirectoryLock.acquire(dir)), (error) => error.reason)

describe("DirectoryLock", () => {
  it.live("refuses a directory whose owner is alive, naming its pid, and leaves its lock alone", () =>
    Effect.gen(function*() {
      const dir = yield* directory
      const owner = yield* liveProcess
      const record = JSON.stringify({ pid: owner.pid, host: Os.hostname(), nonce: "live-owner" })
      Fs.writeFileSync(lockOf(dir), record)
      const reason = yield* refusal(dir)
      assert.deepStrictEqual(reason, new DirectoryLock.InUse({ pid: owner.pid!, host: Os.hostname() }))
      // A lock holding only a pid (older Ripple) is read the same way.
      Fs.writeFileSync(lockOf(dir), `${owner.pid}\n`)
      assert.deepStrictEqual(yield* refusal(dir), new DirectoryLock.InUse({ pid: owner.pid!, host: Os.hostname() }))
      assert.strictEqual(Fs.readFileSync(lockOf(dir), "utf8"), `${owner.pid}\n`)
      assert.deepStrictEqual(Fs.readdirSync(dir), [DirectoryLock.lockFile])

      // Through the database layer: "in use by pid N" with a fix that deletes nothing.
      const error = yield* Effect.flip(Effect.scoped(Layer.build(Database.layer({ dataDir: dir }))))
      assert.strictEqual(error.reason, "DataDirectoryInUse")
      assert.strictEqual(error.detail, `in use by pid ${owner.pid}`)
      assert.include(error.fix, `wait for process ${owner.pid} to finish`)
      assert.notMatch(error.fix, /delete|remove/)
    }))

  it.live("a second client of this process is refused with this pid", () =>
    Effect.gen(function*() {
      const dir = yield* directory
      const held = yield* DirectoryLock.make(dir)
      assert.strictEqual(held.owner.pid, process.pid)
      const reason = yield* refusal(dir)
      assert.deepStrictEqual(reason, new DirectoryLock.InUse({ pid: process.pid, host: Os.hostname() }))
      assert.include(new DirectoryLock.DirectoryLockError({ directory: dir, reason }).message, `in use by pid ${process.pid} (another client of this process)`)
    }))

  it.live("a lock on another host counts as in use", () =>
    Effect.gen(function*() {
      const dir = yield* directory
      Fs.writeFileSync(lockOf(dir), JSON.stringify({ pid: deadPid, host: `not-${Os.hostname()}`, nonce: "remote" }))
      const reason = yield* refusal(dir)
      assert.deepStrictEqual(reason, new DirectoryLock.InUse({ pid: deadPid, host: `not-${Os.hostname()}` }))
    }))

  it.live("takes over the lock of a dead owner, and removes it on release", () =>
    Effect.gen(function*() {
      const dir = yield* directory
      for (const content of [stale("dead-owner"), String(deadPid)]) {
        Fs.writeFileSync(lockOf(dir), content)
        yield* Effect.scoped(Effect.gen(function*() {
          const held = yield* DirectoryLock.make(dir)
          assert.deepStrictEqual(JSON.parse(Fs.readFileSync(lockOf(dir), "utf8")), held.owner)
          assert.deepStrictEqual(Fs.readdirSync(dir), [DirectoryLock.lockFile])
        }))
        assert.deepStrictEqual(Fs.readdirSync(dir), [])
      }
    }))

  it.live("takes over from a claimant that died mid-takeover, and sweeps what dead contenders left", () =>
    Effect.gen(function*() {
      const dir = yield* directory
      Fs.writeFileSync(lockOf(dir), stale("dead-owner"))
      // A dead process had claimed the dead owner's lock, and another had claimed that claimant's right.
      Fs.writeFileSync(Path.join(dir, `${DirectoryLock.lockFile}.dead-owner.takeover`), stale("dead-claimant"))
      Fs.writeFileSync(Path.join(dir, `${DirectoryLock.lockFile}.dead-claimant.takeover`), stale("dead-claimant-2"))
      Fs.writeFileSync(Path.join(dir, `${DirectoryLock.lockFile}.dead-claimant-2.owner`), stale("dead-claimant-2"))
      const held = yield* DirectoryLock.make(dir)
      assert.deepStrictEqual(JSON.parse(Fs.readFileSync(lockOf(dir), "utf8")), held.owner)
      assert.deepStrictEqual(Fs.readdirSync(dir), [DirectoryLock.lockFile])
    }))

  it.live("refuses a lock file that names no owner, without touching it", () =>
    Effect.gen(function*() {
      const dir = yield* directory
      Fs.writeFileSync(lockOf(dir), "not an owner")
      const reason = yield* refusal(dir)
      assert.deepStrictEqual(reason, new DirectoryLock.UnreadableLock({ file: lockOf(dir), content: "not an owner" }))
      assert.deepStrictEqual(Fs.readdirSync(dir), [DirectoryLock.lockFile])
      const error = yield* Effect.flip(Effect.scoped(Layer.build(Database.layer({ dataDir: dir }))))
      assert.strictEqual(error.reason, "CannotOpenDataDirectory")
      assert.include(error.fix, `remove the lock file ${lockOf(dir)} (only that file`)
    }))
})

// A contender process and the lines it printed, awaited one by one.
const contender = (dir: string) => {
  const child = spawn(process.execPath, [Path.join(root, "tests", "sql", "fixtures", "lockContender.mjs"), dir], {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"]
  })
  let output = ""
  let read = 0
  const waiters: Array<() => void> = []
  const wake = () => waiters.splice(0).forEach((f) => f())
  child.stdout!.on("data", (chunk) => {
    output += String(chunk)
    wake()
  })
  child.on("exit", wake)
  const next = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const lines = output.split("\n")
        if (lines.length > read + 1) return resolve(lines[read++]!)
        if (child.exitCode !== null) return reject(new Error(`contender exited with ${child.exitCode}: ${output}`))
        waiters.push(check)
      }
      check()
    })
  return { child, next, send: (line: string) => child.stdin!.write(`${line}\n`) }
}

describe("DirectoryLock across processes", () => {
  const contenders = 8
  const rounds = 40

  it.live(`${contenders} processes taking over one stale lock at once: exactly one wins (${rounds} rounds)`, () =>
    Effect.gen(function*() {
      yield* ensureBuilt([Path.join(root, "packages", "sql", "dist", "DirectoryLock.js")])
      const dir = yield* directory
      const all = yield* Effect.acquireRelease(
        Effect.sync(() => Array.from({ length: contenders }, () => contender(dir))),
        (all) => Effect.sync(() => all.forEach((c) => c.child.kill("SIGKILL")))
      )
      yield* Effect.promise(() => Promise.all(all.map((c) => c.next())))
      for (let round = 0; round < rounds; round++) {
        Fs.writeFileSync(lockOf(dir), stale(`stale-${round}`))
        for (const c of all) c.send("go")
        const results = yield* Effect.promise(() => Promise.all(all.map((c) => c.next())))
        const winners = all.filter((_, i) => results[i] === "won")
        assert.strictEqual(winners.length, 1, `round ${round}: ${results.join(" | ")}`)
        const winner = winners[0]!
        for (const result of results.filter((r) => r !== "won")) {
          const lost = JSON.parse(result.replace(/^lost /, ""))
          assert.deepStrictEqual([lost.tag, lost.pid], ["InUse", winner.child.pid], result)
        }
        assert.strictEqual(JSON.parse(Fs.readFileSync(lockOf(dir), "utf8")).pid, winner.child.pid)
        winner.send("release")
        assert.strictEqual(yield* Effect.promise(winner.next), "released")
        assert.deepStrictEqual(Fs.readdirSync(dir), [], `round ${round}: the winner released everything`)
      }
    }).pipe(Effect.scoped))
})
