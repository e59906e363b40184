/**
 * The CLI end to end on the embedded database (PGlite): the scenario in a temporary directory, and
 * what only the embedded default shows (the `.ripple/` default location, bad input before it exists,
 * two real processes racing for one data directory). Single commands run in this process.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as TestDatabase from "../helpers/database.ts"
import { dumpPglite, example, rippleInProcess, root, runIdOf, spawnRipple, tempDir } from "./ripple.ts"
import { scenario } from "./scenario.ts"

const scope = Effect.runSync(Scope.make())

scenario("the embedded database", async () => {
  const temp = tempDir("pglite")
  await Effect.runPromise(Scope.addFinalizer(scope, Effect.sync(temp.remove)))
  // An initialised empty data directory (initdb once per machine), as `ripple` would create.
  const dataDir = await Effect.runPromise(Scope.provide(scope)(TestDatabase.pgliteDataDir))
  const migrated = await rippleInProcess({ cwd: temp.dir, db: ["--data-dir", dataDir] }, "migrate")
  assert.strictEqual(migrated.code, 0, migrated.stderr)
  assert.include(migrated.stdout, "applied")
  return { where: { cwd: temp.dir, db: ["--data-dir", dataDir] }, dump: () => dumpPglite(dataDir), shared: false }
}, () => Effect.runPromise(Scope.close(scope, Exit.void)))

describe("ripple without a database option", () => {
  it("does not create .ripple/ for bad input or a command that only reads, and creates it on first use otherwise", async () => {
    const temp = tempDir("default")
    try {
      const missing = await rippleInProcess({ cwd: temp.dir }, "run", "missing.json")
      assert.strictEqual(missing.code, 2)
      const invalid = await rippleInProcess({ cwd: temp.dir }, "plan", example("support-triage.json"), "--from", "nope")
      assert.strictEqual(invalid.code, 2)
      // A pin the run would refuse (an unknown block, a value no store holds, an approval) is
      // refused before the database is opened.
      const ticket = '{"subject": "s", "body": "b"}'
      for (const [file, input, pin] of [["support-triage.json", ticket, "nope=1"], ["support-triage.json", ticket, "ticket=1e999"], ["content-pipeline.json", "{}", "review={}"]]) {
        const pinned = await rippleInProcess({ cwd: temp.dir }, "run", example(file!), "--input", input!, "--pin", pin!)
        assert.strictEqual(pinned.code, 2, pinned.stdout + pinned.stderr)
        assert.include(pinned.stderr, `--pin ${pin!.split("=")[0]} in `)
        assert.isFalse(Fs.existsSync(Path.join(temp.dir, ".ripple")), pin)
      }
      assert.isFalse(Fs.existsSync(Path.join(temp.dir, ".ripple")))
      // Commands that only read, or act on a stored run (there is none without a database), refuse
      // a data directory without a database instead of creating one.
      const onRuns = [
        ["cancel", "run-1"],
        ["pause", "run-1"],
        ["resume", "run-1"],
        ["resume", "run-1", "--queue"],
        ["signal", "run-1", "go"],
        ["approve", "run-1", "review"],
        ["rerun", example("support-triage.json"), "--from", "signature", "--run", "run-1"]
      ]
      for (const args of [["runs"], ["show", "run-1"], ["plan", example("support-triage.json"), "--from", "signature"], ...onRuns]) {
        const refused = await rippleInProcess({ cwd: temp.dir }, ...args)
        assert.strictEqual(refused.code, 2, refused.stdout + refused.stderr)
        assert.include(refused.stderr, `cannot open the database (NoDatabase): ${Fs.realpathSync(temp.dir)}${Path.sep}.ripple: it does not exist`)
        assert.include(refused.stderr, "fix: run a workflow first")
        assert.isFalse(Fs.existsSync(Path.join(temp.dir, ".ripple")))
      }
      const run = await rippleInProcess({ cwd: temp.dir }, "run", example("support-triage.json"), "--input", '{"subject": "s", "body": "b"}')
      assert.strictEqual(run.code, 0, run.stderr)
      assert.include(run.stderr, "creating the database in .ripple/ (first use)")
      assert.isTrue(Fs.existsSync(Path.join(temp.dir, ".ripple", "PG_VERSION")))
      const runs = await rippleInProcess({ cwd: temp.dir }, "runs")
      assert.strictEqual(runs.code, 0, runs.stderr)
      assert.include(runs.stdout, "support-triage")
      assert.notInclude(runs.stderr, "creating the database")
    } finally {
      temp.remove()
    }
  })

  // It answered 'cannot open the database (Unreachable): http://x/: PgConnection: Unsupported
  // connection URL protocol: "http:": Unsupported connection URL protocol: "http:"'.
  it("names the scheme of a --db or DATABASE_URL that is no PostgreSQL URL, and creates no database", async () => {
    const temp = tempDir("scheme")
    try {
      const sources = [{ db: ["--db", "http://db.example/ripple"], env: {}, name: "--db" }, {
        db: [],
        env: { DATABASE_URL: "mysql://db.example/ripple" },
        name: "DATABASE_URL"
      }]
      for (const { db, env, name } of sources) {
        const result = await rippleInProcess({ cwd: temp.dir, db, env }, "runs")
        const what = `${result.stdout}\n${result.stderr}`
        assert.strictEqual(result.code, 2, what)
        assert.include(result.stderr, `cannot open the database (InvalidUrl): ${name}: the URL's scheme is ${db.length > 0 ? "http" : "mysql"}:, not postgres: or postgresql:`, what)
        assert.include(result.stderr, `correct ${name} (postgres://`, what)
        assert.deepStrictEqual(Fs.readdirSync(temp.dir), [], what)
      }
    } finally {
      temp.remove()
    }
  })

  it("refuses an empty --db or --data-dir and a --db that is not a URL, naming the flag, and creates no database", async () => {
    const temp = tempDir("emptyflag")
    const input = JSON.stringify({ subject: "s", body: "b" })
    const commands = [["run", example("support-triage.json"), "--input", input], ["migrate"], ["runs"]]
    const cases = [
      { db: ["--data-dir", ""], names: "--data-dir is empty" },
      { db: ["--db", ""], names: "--db is empty" },
      { db: ["--db", " "], names: "--db is empty" },
      { db: ["--db", "postgres://ripple:s3cret@127.0.0.1:99999/ripple"], names: "--db is not a URL" }
    ]
    try {
      for (const { db, names } of cases) {
        for (const args of commands) {
          const result = await rippleInProcess({ cwd: temp.dir, db }, ...args)
          const what = `ripple ${[...args, ...db].join(" ")}\n${result.stdout}\n${result.stderr}`
          assert.strictEqual(result.code, 2, what)
          assert.include(result.stderr, `ripple: ${names}`, what)
          assert.include(result.stderr, "fix: pass ", what)
          assert.notInclude(result.stderr, "s3cret", what)
          assert.deepStrictEqual(Fs.readdirSync(temp.dir), [], what)
        }
      }
    } finally {
      temp.remove()
    }
  })
})

describe("two ripple processes on one data directory", () => {
  it("with a stale lock, two simultaneous `ripple run`: one runs, the other exits 2 naming its pid (20 trials)", async () => {
    const temp = tempDir("race")
    const scope = await Effect.runPromise(Scope.make())
    try {
      const dataDir = await Effect.runPromise(Scope.provide(scope)(TestDatabase.pgliteDataDir))
      const where = { cwd: temp.dir, db: ["--data-dir", dataDir] }
      const workflow = Path.join(root, "tests", "cli", "fixtures", "slow-step.mjs")
      const lock = Path.join(dataDir, "ripple.lock")
      const winners: Array<string> = []
      for (let trial = 0; trial < 20; trial++) {
        // Left by a process that died holding the directory (no process has pid 2^31 - 2).
        Fs.writeFileSync(lock, String(2 ** 31 - 2))
        const both = [spawnRipple(where, "run", workflow), spawnRipple(where, "run", workflow)]
        const codes = await Promise.all(both.map((p) => p.exited))
        const outputs = both.map((p) => p.output())
        const winner = codes.indexOf(0)
        assert.notStrictEqual(winner, -1, `trial ${trial}: nobody ran\n${outputs.join("\n---\n")}`)
        const loser = 1 - winner
        assert.strictEqual(codes[loser], 2, `trial ${trial}: both proceeded\n${outputs.join("\n---\n")}`)
        assert.include(outputs[loser], `in use by pid ${both[winner]!.child.pid}`)
        assert.include(outputs[loser], "fix: wait for process")
        assert.notInclude(outputs[loser], "    at ")
        assert.notMatch(outputs[loser]!, /corrupt|delete/)
        winners.push(runIdOf({ code: 0, stdout: outputs[winner]!, stderr: "" }))
        assert.isFalse(Fs.existsSync(lock), `trial ${trial}: the winner released the directory`)
      }
      // Every winner's run is in the directory.
      const runs = await rippleInProcess(where, "runs", "--workflow", "slow-step")
      assert.strictEqual(runs.code, 0, runs.stderr)
      for (const id of winners) assert.include(runs.stdout, id)
      const shown = await rippleInProcess(where, "show", winners.at(-1)!)
      assert.strictEqual(shown.code, 0, shown.stderr)
      assert.match(shown.stdout, /s0\s+completed/)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      temp.remove()
    }
  })
})
