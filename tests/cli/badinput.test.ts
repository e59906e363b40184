/**
 * Every bad input is a clear exit 2 with nothing written (issue 15), probed in-process through
 * `Cli.main` on each store: a memory store, embedded PGlite and the PostgreSQL server (a schema of
 * its own). Per probe: the exit code, a message naming the problem with a `fix:` line, no stack
 * trace, and the same contents before and after (every row of every table on the SQL stores).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Cli, Platform } from "@ripple/cli"
import { RunStore } from "@ripple/runtime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { spawnSync } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestDatabase from "../helpers/database.ts"
import { memoryBackend, recording } from "./inMemory.ts"
import {
  bin,
  dumpPglite,
  dumpServer,
  example,
  onServer,
  ripple as rippleBinary,
  rippleInProcess,
  runIdOf,
  spawnRipple,
  tempDir,
  type Where,
  withSchema
} from "./ripple.ts"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-badinput-"))

const entryOf = (extra: Record<string, unknown>): string | undefined =>
  ((extra["loops"] ?? extra["parallels"]) as ReadonlyArray<{ readonly id: string }> | undefined)?.[0]?.id

// A workflow file with one block (or container) after the trigger.
const file = (name: string, extra: Record<string, unknown>, blocks: ReadonlyArray<unknown> = []): string => {
  const path = Path.join(dir, `${name}.json`)
  Fs.writeFileSync(path, JSON.stringify({
    version: 1,
    id: name,
    blocks: [{ id: "start", type: "trigger" }, ...blocks],
    edges: blocks.length === 0 ? [] : [{ source: "start", target: entryOf(extra) ?? (blocks[0] as { id: string }).id }],
    ...extra
  }))
  return path
}

const step = { id: "step", type: "value", params: { value: 1 } }

// A workflow whose block type has a handler only in this module (`--handlers`), which fails.
const flaky = Path.join(Path.dirname(new URL(import.meta.url).pathname), "fixtures", "flaky.mjs")
// The same block type after a wait for signal "go".
const flakyWait = Path.join(Path.dirname(new URL(import.meta.url).pathname), "fixtures", "flakyWait.mjs")

// What a refusal to execute a run without its handlers prints.
const needsHandlers = (command: string): Probe => ({ name: command, args: () => [], names: ["\"flaky\"", "--handlers", command] })

const ticket = JSON.stringify({ subject: "Login fails", body: "Token expired" })

// Written as text: `JSON.stringify` itself recurses.
const deep = (): string => {
  const path = file("deep", {}, [{ id: "step", type: "value", params: { value: "DEEP" } }])
  const depth = 100_000
  Fs.writeFileSync(path, Fs.readFileSync(path, "utf8").replace("\"DEEP\"", `${"{\"v\":".repeat(depth)}1${"}".repeat(depth)}`))
  return path
}

interface Probe {
  readonly name: string
  readonly args: () => ReadonlyArray<string>
  /** What the message must say about the problem. */
  readonly names: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>>
}

// `text` written in Latin-1 (one byte per character): what a legacy editor saves.
const latin1 = (name: string, text: string): string => {
  const path = Path.join(dir, name)
  Fs.writeFileSync(path, Buffer.from(text, "latin1"))
  return path
}

const probes: ReadonlyArray<Probe> = [
  {
    name: "versions of an empty workflow id",
    args: () => ["versions", ""],
    names: ["the workflow is empty", "give a workflow id"]
  },
  {
    name: "versions of a device (a path, not a workflow id)",
    args: () => ["versions", "/dev/zero"],
    names: ["/dev/zero is not a regular file, not a workflow file", "fix: pass the path of the workflow file itself"]
  },
  {
    name: "versions of a folder (a path, not a workflow id)",
    args: () => ["versions", `${dir}${Path.sep}`],
    names: ["is a folder, not a workflow file"]
  },
  {
    name: "a workflow file name too long for the file system",
    args: () => ["run", `${"x".repeat(5_000)}.json`],
    names: ["cannot read the workflow file xxxxxxxx", "…", "ENAMETOOLONG"]
  },
  {
    name: "--handlers with a name too long for the file system",
    args: () => ["resume", "run-1", "--handlers", `${"x".repeat(5_000)}.mjs`],
    names: ["cannot read the handlers module xxxxxxxx", "ENAMETOOLONG"]
  },
  {
    name: "a workflow file that is a symbolic link to itself",
    args: () => {
      const loop = Path.join(dir, "loop.json")
      if (!Fs.existsSync(loop) && Fs.lstatSync(loop, { throwIfNoEntry: false }) === undefined) Fs.symlinkSync(loop, loop)
      return ["run", loop]
    },
    names: ["cannot read the workflow file", "loop.json: ELOOP: too many symbolic links encountered\n"]
  },
  // It ran and stored runs of workflow "" that `ripple versions` and `ripple runs --workflow` refuse to name.
  ...["", " "].map((id): Probe => ({
    name: `a workflow whose id is ${JSON.stringify(id)}`,
    args: () => {
      const path = Path.join(dir, `blank-id-${id.length}.json`)
      Fs.writeFileSync(path, JSON.stringify({ version: 1, id, blocks: [{ id: "start", type: "trigger" }], edges: [] }))
      return ["run", path]
    },
    names: [`blank-id-${id.length}.json is not a valid workflow: InvalidId at id`, `(id ${JSON.stringify(id)})`, "at id;"]
  })),
  // The ids along a cycle (or a chain of containers) were dropped: "Cycle at edges[2]" alone.
  {
    name: "edges that form a cycle",
    args: () => {
      const path = file("cycle", {}, [step, { id: "other", type: "value", params: { value: 2 } }, { id: "third", type: "value", params: { value: 3 } }])
      const workflow = JSON.parse(Fs.readFileSync(path, "utf8"))
      workflow.edges.push({ source: "step", target: "other" }, { source: "other", target: "third" }, { source: "third", target: "step" })
      Fs.writeFileSync(path, JSON.stringify(workflow))
      return ["run", path]
    },
    names: ["cycle.json is not a valid workflow: Cycle at edges[", "(cycle other → third → step → other)"]
  },
  {
    name: "loops nested in each other",
    args: () => ["run", file("nest", { loops: [{ id: "outer", kind: "count", count: 2, body: ["inner"] }, { id: "inner", kind: "count", count: 2, body: ["outer"] }] }, [step])],
    names: ["ContainerNestedInItself at loops[1].body[0]", "chain outer → inner → outer"]
  },
  // Ids are keys of the SQL stores' indexes: a block id of 10 000 random characters stopped the run
  // half-way ("the database failed journal (StoreFailure 54000): index row requires 10056 bytes"),
  // a workflow id as long failed the run's creation, both with the fix "check that the database is reachable".
  {
    name: "a block id of 10 000 random characters",
    args: () => {
      const id = Crypto.randomBytes(5_000).toString("hex")
      return ["run", file("long-block", {}, [{ id, type: "value", params: { value: 1 } }])]
    },
    names: ["long-block.json is not a valid workflow: IdTooLong at blocks[1].id", "…\", bytes 10000, limit 256)"]
  },
  {
    name: "a workflow id of 10 000 random characters",
    args: () => {
      const path = Path.join(dir, "long-id.json")
      Fs.writeFileSync(path, JSON.stringify({ version: 1, id: Crypto.randomBytes(5_000).toString("hex"), blocks: [{ id: "start", type: "trigger" }], edges: [] }))
      return ["run", path]
    },
    names: ["long-id.json is not a valid workflow: IdTooLong at id", "…\", bytes 10000, limit 256)"]
  },
  // A signal name is a key of the deliveries' index: a run waiting on one of 10 000 random
  // characters could never be woken (\`ripple signal\` failed with StoreFailure 54000).
  {
    name: "a wait for a signal of 10 000 random characters",
    args: () => ["run", file("long-signal", {}, [{ id: "hold", type: "wait", params: { signal: Crypto.randomBytes(5_000).toString("hex") } }])],
    names: ["long-signal.json is not a valid workflow: InvalidParams at blocks[1].params.signal", "a signal name takes at most 256 bytes, not 10000"]
  },
  // It read "cannot read --input from : ENOENT: no such file or directory, open ''".
  {
    name: "--input @ with no file name",
    args: () => ["run", example("support-triage.json"), "--input", "@"],
    names: ["--input @ names no file", "--input @input.json"]
  },
  // The last --pin of a block won without a word; a --pin with no "=" said it "names no block".
  {
    name: "--pin the same block twice",
    args: () => ["plan", example("support-triage.json"), "--to", "outcome", "--pin", "ticket=\"a\"", "--pin", "ticket=\"b\""],
    names: ["--pin ticket is given twice", "pin each block once"]
  },
  {
    name: "--pin with no value",
    args: () => ["plan", example("support-triage.json"), "--to", "outcome", "--pin", "ticket"],
    names: ["--pin ticket has no value", "--pin <block>=<json>"]
  },
  // It read "/dev/zero is not a regular file, not a file".
  {
    name: "--handlers a device",
    args: () => ["resume", "run-1", "--handlers", "/dev/zero"],
    names: ["/dev/zero is not a regular file, not a handlers module", "fix: pass the path of the handlers module itself"]
  },
  // An empty name is the current directory to `path.resolve`: it said " is a folder".
  { name: "run an empty workflow file name", args: () => ["run", ""], names: ["the workflow file name is empty", "give the path of the workflow file"] },
  { name: "plan a blank workflow file name", args: () => ["plan", "  ", "--from", "x"], names: ["the workflow file name is empty"] },
  // The payload was dropped without a word; the empty reason was stored as the rejection's.
  {
    name: "approve with both --reject and --payload",
    args: () => ["approve", "run-1", "review", "--reject", "too long", "--payload", "{\"by\": \"ada\"}"],
    names: ["--reject and --payload were both given", "fix: pass --payload to approve, or --reject <reason> to reject"]
  },
  { name: "approve --reject with an empty reason", args: () => ["approve", "run-1", "review", "--reject", " "], names: ["--reject is empty", "give the reason"] },
  {
    name: "runs of an empty --workflow",
    args: () => ["runs", "--workflow", ""],
    names: ["--workflow is empty", "give a workflow id"]
  },
  { name: "show an empty --node", args: () => ["show", "run-1", "--node", ""], names: ["--node is empty", "give a node id"] },
  {
    name: "a workflow file saved as Latin-1",
    args: () => ["run", latin1("cafe.json", JSON.stringify({ version: 1, id: "café", blocks: [{ id: "start", type: "trigger" }], edges: [] }))],
    names: ["cafe.json is not UTF-8 text", "0xe9 at line 1 (byte offset 22)", "save", "as UTF-8"]
  },
  {
    name: "--input from a file saved as Latin-1",
    args: () => ["run", example("support-triage.json"), "--input", `@${latin1("input-latin1.json", "{\n  \"subject\": \"Déjà vu\",\n  \"body\": \"b\"\n}")}`],
    names: ["--input from", "input-latin1.json is not UTF-8 text", "0xe9 at line 2 (byte offset 17)"]
  },
  {
    name: "--payload from a file saved as UTF-16",
    args: () => {
      const path = Path.join(dir, "payload-utf16.json")
      Fs.writeFileSync(path, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("{\"by\": \"ada\"}", "utf16le")]))
      return ["approve", "run-1", "review", "--payload", `@${path}`]
    },
    names: ["--payload from", "payload-utf16.json is not UTF-8 text", "0xff at line 1 (byte offset 0)"]
  },
  {
    name: "a sleep of 1e17 ms",
    args: () => ["run", file("nap", {}, [{ id: "nap", type: "sleep", params: { ms: 1e17 } }])],
    names: ["InvalidTime", "blocks[1].params.ms"]
  },
  {
    name: "a sleep until after year 275760",
    args: () => ["run", file("late", {}, [{ id: "nap", type: "sleep", params: { until: "+275761-01-01T00:00:00Z" } }])],
    names: ["InvalidTime", "blocks[1].params.until"]
  },
  {
    name: "a count loop of 10^9",
    args: () => ["run", file("spin", { loops: [{ id: "spin", kind: "count", count: 1e9, body: ["step"] }] }, [step])],
    names: ["LimitExceeded", "maxIterations", "loops[0].count", "RIPPLE_MAX_ITERATIONS"]
  },
  {
    name: "a parallel of 10^7",
    args: () => ["run", file("fan", { parallels: [{ id: "fan", kind: "count", count: 1e7, body: ["step"] }] }, [step])],
    names: ["LimitExceeded", "maxBranches", "parallels[0].count", "RIPPLE_MAX_BRANCHES"]
  },
  {
    name: "a loop past a lowered cap",
    args: () => ["run", file("ten", { loops: [{ id: "ten", kind: "count", count: 10, body: ["step"] }] }, [step])],
    env: { RIPPLE_MAX_ITERATIONS: "5" },
    names: ["LimitExceeded", "maxIterations"]
  },
  {
    name: "a cap that is not a number",
    args: () => ["run", example("support-triage.json"), "--input", "{}"],
    env: { RIPPLE_MAX_NODES: "lots" },
    names: ["RIPPLE_MAX_NODES", "not a positive integer"]
  },
  {
    name: "params nested 100 000 deep",
    args: () => ["run", deep()],
    names: ["UnstorableValue", "nested deeper than", "more)…"]
  },
  { name: "worker --concurrency 0", args: () => ["worker", "--concurrency", "0"], names: ["--concurrency 0"] },
  { name: "worker --concurrency -3", args: () => ["worker", "--concurrency", "-3"], names: ["--concurrency -3"] },
  { name: "pause --wait -1", args: () => ["pause", "run-1", "--wait", "-1"], names: ["--wait -1"] },
  {
    name: "an unknown --format",
    args: () => ["plan", example("support-triage.json"), "--from", "signature", "--format", "xml"],
    names: ["--format", "xml"]
  },
  { name: "run --to an unknown block", args: () => ["run", example("support-triage.json"), "--to", "nope"], names: ["unknown block \"nope\"", "--to"] },
  {
    name: "run --queue --to an unknown block",
    args: () => ["run", example("support-triage.json"), "--queue", "--to", "nope"],
    names: ["unknown block \"nope\"", "--to"]
  },
  {
    name: "rerun --to an unknown block",
    args: () => ["rerun", example("support-triage.json"), "--from", "signature", "--to", "nope"],
    names: ["unknown block \"nope\"", "--to"]
  },
  {
    name: "plan --to a block that does not depend on --from",
    args: () => ["plan", example("support-triage.json"), "--from", "escalate", "--to", "autoReply"],
    names: ["--to autoReply does not depend on --from escalate", "downstream of escalate"]
  },
  { name: "run --pin an unknown block", args: () => ["run", example("support-triage.json"), "--input", ticket, "--pin", "nope=1"], names: ["--pin nope", "no block has this id"] },
  { name: "run --pin a condition", args: () => ["run", example("support-triage.json"), "--input", ticket, "--pin", "isPro=true"], names: ["--pin isPro", "router or condition"] },
  { name: "run --pin with no block", args: () => ["run", example("support-triage.json"), "--pin", "=1"], names: ["--pin =1 names no block"] },
  {
    name: "plan --pin that is not JSON",
    args: () => ["plan", example("support-triage.json"), "--from", "signature", "--pin", "ticket={oops"],
    names: ["--pin ticket is not valid JSON", "fix: pass JSON, e.g. --pin ticket='{\"ok\": true}' or --pin ticket=@payload.json"]
  },
  {
    name: "--pin from a folder",
    args: () => ["run", example("support-triage.json"), "--input", ticket, "--pin", `ticket=@${dir}`],
    names: ["cannot read --pin ticket from", "EISDIR", "fix: pass a readable file (--pin ticket=@input.json)"]
  },
  {
    name: "run --queue --pin an unknown block",
    args: () => ["run", example("support-triage.json"), "--input", ticket, "--queue", "--pin", "nope=1"],
    names: ["--pin nope", "no block has this id"]
  },
  {
    name: "run --queue --pin an approval block",
    args: () => ["run", example("content-pipeline.json"), "--queue", "--pin", "review={\"by\": \"ada\"}"],
    names: ["--pin review", "an approval block is run by the engine"]
  },
  // `__proto__` is no block id (NodeId); assigned as a key, it set a prototype, and the pin was dropped silently.
  { name: "run --pin __proto__", args: () => ["run", example("support-triage.json"), "--input", ticket, "--pin", "__proto__=1"], names: ["--pin __proto__", "not a block id"] },
  {
    name: "run --queue --pin __proto__",
    args: () => ["run", example("support-triage.json"), "--input", ticket, "--queue", "--pin", "__proto__={}"],
    names: ["--pin __proto__", "not a block id"]
  },
  {
    name: "rerun --pin __proto__",
    args: () => ["rerun", example("support-triage.json"), "--from", "signature", "--pin", "__proto__=1"],
    names: ["--pin __proto__", "not a block id"]
  },
  {
    name: "run --input with a __proto__ key",
    args: () => ["run", example("support-triage.json"), "--input", JSON.stringify({ subject: "a", body: "b" }).replace("{", "{\"__proto__\": 1, ")],
    names: ["__proto__"]
  },
  { name: "an unknown subcommand", args: () => ["bogus"], names: ["Unknown subcommand", "bogus"] },
  { name: "a folder as the workflow", args: () => ["plan", dir, "--from", "start"], names: [`${dir} is a folder, not a workflow file`, "inside that folder"] },
  { name: "a folder as --handlers", args: () => ["worker", "--handlers", dir], names: [`${dir} is a folder, not a handlers module`, "inside that folder"] },
  {
    name: "--input from a file that does not exist",
    args: () => ["run", example("support-triage.json"), "--input", `@${Path.join(dir, "missing.json")}`],
    names: ["cannot read --input", "missing.json"]
  },
  {
    name: "--payload from a file that is not JSON",
    args: () => {
      const path = Path.join(dir, "payload.txt")
      Fs.writeFileSync(path, "not json")
      return ["approve", "run-1", "review", "--payload", `@${path}`]
    },
    names: ["--payload is not valid JSON"]
  }
]

// Everything the memory store holds for the runs it knows (ids are run-1, run-2, ...), as text.
const dump = (store: RunStore.RunStore["Service"]) =>
  Effect.gen(function*() {
    const out: Array<unknown> = []
    for (let i = 1;; i++) {
      const runId = `run-${i}`
      const run = yield* Effect.option(store.getRun(runId))
      if (run._tag === "None") return JSON.stringify(out)
      out.push(run.value, yield* store.snapshot(runId), yield* store.deliveries(runId))
    }
  })

const session = Effect.gen(function*() {
  const store = yield* RunStore.makeMemory
  const { lines, console } = recording()
  const backend = memoryBackend(store)
  const ripple = (args: ReadonlyArray<string>) => Cli.main(backend)(args).pipe(Effect.provideService(Console.Console, console))
  // One finished run, so that a refusal that wrote anything (or changed it) shows in the dump.
  const input = JSON.stringify({ subject: "Login fails", body: "Token expired", tier: "pro" })
  assert.strictEqual(yield* ripple(["run", example("support-triage.json"), "--input", input]), 0)
  lines.length = 0
  return { store, lines, ripple }
})

// Sets environment variables for the duration of `effect`.
const withEnv = <A, E, R>(env: Readonly<Record<string, string>>, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]))
      Object.assign(process.env, env)
      return saved
    }),
    () => effect,
    (saved) =>
      Effect.sync(() => {
        for (const [key, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[key]
          else process.env[key] = value
        }
      })
  )

const refused = (probe: Probe, code: number, printed: string) => {
  assert.strictEqual(code, 2, printed.slice(-400))
  for (const needle of probe.names) assert.include(printed, needle)
  assert.match(printed, /\n {2}fix: \S/, "a fix line")
  assert.notMatch(printed, /\n\s+at \S+ \(|Error:/, "no stack trace")
}

describe("bad input on the memory store: exit 2, a message with a fix, nothing written", () => {
  for (const probe of probes) {
    it.live(probe.name, () =>
      Effect.gen(function*() {
        const { lines, ripple, store } = yield* session
        const before = yield* dump(store)
        const code = yield* withEnv(probe.env ?? {}, ripple(probe.args()))
        refused(probe, code, lines.join("\n"))
        assert.strictEqual(yield* dump(store), before, "nothing written")
      }).pipe(Effect.provide(Platform.layer)))
  }
})

// `show --node` was checked after the run's header was printed: a refusal must print nothing else.
describe("show --node refuses before printing the run", () => {
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["", ["--node is empty", "give a node id"]],
    [" ", ["--node is empty", "give a node id"]],
    ["nope", ["run run-1 has no node \"nope\"", "ripple show run-1"]]
  ]
  for (const [node, names] of cases) {
    it.live(`--node ${JSON.stringify(node)}`, () =>
      Effect.gen(function*() {
        const { lines, ripple } = yield* session
        const code = yield* ripple(["show", "run-1", "--node", node])
        const printed = lines.join("\n")
        refused({ name: "show", args: () => [], names }, code, printed)
        assert.notInclude(printed, "workflow support-triage", "the run's header")
        assert.notInclude(printed, "created ")
      }).pipe(Effect.provide(Platform.layer)))
  }
})

interface SqlStore {
  readonly where: Where
  readonly dump: () => Promise<string>
  readonly close: () => Promise<void>
}

// One database per store with one finished run in it, so that a refusal that wrote anything (or
// changed a row) shows in the dump.
const sqlStores: ReadonlyArray<readonly [string, () => Promise<SqlStore>]> = [
  ["embedded PGlite", async () => {
    const scope = Effect.runSync(Scope.make())
    const dataDir = await Effect.runPromise(Scope.provide(scope)(TestDatabase.pgliteDataDir))
    return {
      where: { cwd: dir, db: ["--data-dir", dataDir] },
      dump: () => dumpPglite(dataDir),
      close: () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }],
  ["the PostgreSQL server", async () => {
    const server = TestDatabase.serverUrl()
    const schema = `ripple_test_badinput_${process.pid}_${Date.now().toString(36)}`
    await onServer(server, `CREATE SCHEMA ${schema}`)
    const url = withSchema(server, schema)
    return {
      where: { cwd: dir, db: ["--db", url] },
      dump: () => dumpServer(url),
      close: () => onServer(server, `DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  }]
]

for (const [name, open] of sqlStores) {
  describe(`bad input on ${name}: exit 2, a message with a fix, no row written`, () => {
    let store: SqlStore
    // Every probe must leave the tables exactly as this dump shows them.
    let before: string
    // The stored run of support-triage.
    let stored: string
    beforeAll(async () => {
      store = await open()
      const input = JSON.stringify({ subject: "Login fails", body: "Token expired", tier: "pro" })
      const first = await rippleInProcess(store.where, "run", example("support-triage.json"), "--input", input)
      assert.strictEqual(first.code, 0, first.stdout + first.stderr)
      stored = runIdOf(first)
      before = await store.dump()
      assert.include(before, "support-triage", "the dump shows the stored run")
    })
    afterAll(() => store.close())

    for (const probe of probes) {
      it(probe.name, async () => {
        const result = await rippleInProcess({ ...store.where, env: probe.env }, ...probe.args())
        refused(probe, result.code, `${result.stdout}\n${result.stderr}`)
        assert.strictEqual(await store.dump(), before, "nothing written")
      })
    }

    it("resume of a failed run whose block types need --handlers refuses, naming the types, and leaves the run", async () => {
      const failed = await rippleInProcess(store.where, "run", flaky)
      assert.strictEqual(failed.code, 1, failed.stdout + failed.stderr)
      const runId = runIdOf(failed)
      const after = await store.dump()
      const result = await rippleInProcess(store.where, "resume", runId)
      const printed = `${result.stdout}\n${result.stderr}`
      refused(needsHandlers(`ripple resume ${runId}`), result.code, printed)
      assert.strictEqual(await store.dump(), after, "nothing written")
    })

    it("a signal that would wake a run here without its block types' handlers is refused, and not delivered", async () => {
      const waiting = await rippleInProcess(store.where, "run", flakyWait)
      assert.strictEqual(waiting.code, 3, waiting.stdout + waiting.stderr)
      const runId = runIdOf(waiting)
      const after = await store.dump()
      const result = await rippleInProcess(store.where, "signal", runId, "go")
      refused(needsHandlers(`ripple signal ${runId} go`), result.code, `${result.stdout}\n${result.stderr}`)
      assert.strictEqual(await store.dump(), after, "nothing written")
      // With them, the signal wakes the run here and the block's handler runs (and fails, as it does).
      const handled = await rippleInProcess(store.where, "signal", runId, "go", "--handlers", flakyWait)
      assert.strictEqual(handled.code, 1, handled.stdout + handled.stderr)
      assert.include(handled.stdout, "the service is down")
    })

    it("resume of a run waiting in the workers' queue says that `ripple worker` executes it, and writes nothing", async () => {
      const queued = await rippleInProcess(store.where, "run", example("support-triage.json"), "--input", ticket, "--queue")
      assert.strictEqual(queued.code, 0, queued.stdout + queued.stderr)
      const runId = /^run (\S+) queued/m.exec(queued.stdout)?.[1] ?? assert.fail(queued.stdout)
      const after = await store.dump()
      const result = await rippleInProcess(store.where, "resume", runId)
      refused({ name: "resume", args: () => [], names: [`run ${runId} is pending`, "fix: it waits in the workers' queue: `ripple worker`"] }, result.code, `${result.stdout}\n${result.stderr}`)
      assert.strictEqual(await store.dump(), after, "nothing written")
    })

    // The fix line of every value no store holds was about NUL characters and surrogates.
    it("an approval payload no store holds: the fix is about what it holds, and nothing is written", async () => {
      const paused = await rippleInProcess(store.where, "run", example("content-pipeline.json"))
      assert.strictEqual(paused.code, 3, paused.stdout + paused.stderr)
      const runId = runIdOf(paused)
      const after = await store.dump()
      const deepPayload = Path.join(dir, "deep-payload.json")
      Fs.writeFileSync(deepPayload, `${"[".repeat(100_000)}${"]".repeat(100_000)}`)
      const cases = [
        { payload: "{\"amount\": 1e400}", names: ["non-finite number Infinity at [\"payload\",\"amount\"]", "fix: send numbers a double holds (up to ±1.7976931348623157e+308)"] },
        { payload: `@${deepPayload}`, names: ["nested deeper than", "fix: nest the payload less deeply"] }
      ]
      for (const { names, payload } of cases) {
        const result = await rippleInProcess(store.where, "approve", runId, "review", "--payload", payload)
        const printed = `${result.stdout}\n${result.stderr}`
        refused({ name: payload, args: () => [], names }, result.code, printed)
        assert.notInclude(printed, "NUL")
        assert.strictEqual(await store.dump(), after, "nothing written")
      }
    })

    it("versions of a workflow file that does not exist, nor a workflow of that id, names both", async () => {
      const missing = Path.join(dir, "no-such-flow.json")
      const first = await store.dump()
      const result = await rippleInProcess(store.where, "versions", missing)
      refused({
        name: "versions",
        args: () => [],
        names: [`no such workflow file: ${missing}`, `no workflow has the id ${JSON.stringify(missing)} either`, "or pass a workflow id"]
      }, result.code, `${result.stdout}\n${result.stderr}`)
      assert.strictEqual(await store.dump(), first, "nothing written")
    })

    it("versions of a workflow id that looks like a path lists its versions", async () => {
      const slashed = Path.join(dir, "slashed.json")
      Fs.writeFileSync(slashed, JSON.stringify({ version: 1, id: "team/flow.json", blocks: [{ id: "start", type: "trigger" }], edges: [] }))
      const ran = await rippleInProcess(store.where, "run", slashed)
      assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
      const listed = await rippleInProcess(store.where, "versions", "team/flow.json", "--format", "json")
      assert.strictEqual(listed.code, 0, listed.stdout + listed.stderr)
      assert.lengthOf(JSON.parse(listed.stdout).versions, 1)
    })

    it("rerun naming a run of another workflow says whose run it is", async () => {
      const first = await store.dump()
      const result = await rippleInProcess(store.where, "rerun", example("content-pipeline.json"), "--from", "review", "--run", stored)
      const printed = `${result.stdout}\n${result.stderr}`
      refused({ name: "rerun", args: () => [], names: [`${stored} belongs to workflow support-triage`, "content-pipeline"] }, result.code, printed)
      assert.notInclude(printed, "--input")
      assert.strictEqual(await store.dump(), first, "nothing written")
    })
  })
}

describe("--input and --payload from a file", () => {
  it.live("a large input and an approval payload are read from @file", () =>
    Effect.gen(function*() {
      const { lines, ripple, store } = yield* session
      const body = "x".repeat(5_000_000)
      const inputFile = Path.join(dir, "input.json")
      Fs.writeFileSync(inputFile, JSON.stringify({ subject: "Login fails", body, tier: "pro" }))
      assert.strictEqual(yield* ripple(["run", example("support-triage.json"), "--input", `@${inputFile}`]), 0, lines.join("\n").slice(-300))
      assert.strictEqual((yield* store.getRun("run-2")).input["body"], body)
      assert.strictEqual(yield* ripple(["run", example("content-pipeline.json")]), 3)
      const payloadFile = Path.join(dir, "approval.json")
      Fs.writeFileSync(payloadFile, JSON.stringify({ by: "ada" }))
      assert.strictEqual(yield* ripple(["approve", "run-3", "review", "--payload", `@${payloadFile}`]), 0, lines.join("\n").slice(-300))
      assert.deepStrictEqual((yield* store.snapshot("run-3")).nodes["review"]?.output, { by: "ada" })
    }).pipe(Effect.provide(Platform.layer)))
})

describe("JSON files with a byte order mark", () => {
  it.live("a workflow, a run input and a payload saved with a UTF-8 BOM are read as the JSON they hold", () =>
    Effect.gen(function*() {
      const { lines, ripple, store } = yield* session
      const bom = (name: string, text: string) => {
        const path = Path.join(dir, name)
        Fs.writeFileSync(path, `\ufeff${text}`)
        return path
      }
      const workflow = bom("triage-bom.json", Fs.readFileSync(example("support-triage.json"), "utf8"))
      const input = bom("input-bom.json", JSON.stringify({ subject: "Déjà vu", body: "Token expired", tier: "pro" }))
      assert.strictEqual(yield* ripple(["run", workflow, "--input", `@${input}`]), 0, lines.join("\n").slice(-300))
      assert.strictEqual((yield* store.getRun("run-2")).input["subject"], "Déjà vu")
      assert.strictEqual(yield* ripple(["run", example("content-pipeline.json")]), 3)
      assert.strictEqual(yield* ripple(["approve", "run-3", "review", "--payload", `@${bom("approval-bom.json", JSON.stringify({ by: "Zoë" }))}`]), 0)
      assert.deepStrictEqual((yield* store.snapshot("run-3")).nodes["review"]?.output, { by: "Zoë" })
    }).pipe(Effect.provide(Platform.layer)))
})

describe("operator messages", () => {
  const fixture = flaky

  it.live("resume of a failed run whose block types need --handlers refuses, naming the types, and leaves the run", () =>
    Effect.gen(function*() {
      const { lines, ripple, store } = yield* session
      assert.strictEqual(yield* ripple(["run", fixture]), 1)
      const before = yield* dump(store)
      lines.length = 0
      assert.strictEqual(yield* ripple(["resume", "run-2"]), 2, lines.join("\n"))
      const printed = lines.join("\n")
      assert.include(printed, "\"flaky\"")
      assert.include(printed, "--handlers")
      assert.match(printed, /\n {2}fix: \S/)
      assert.strictEqual(yield* dump(store), before, "nothing written")
    }).pipe(Effect.provide(Platform.layer)))

  it.live("a signal that would wake a run here without its block types' handlers is refused, and not delivered", () =>
    Effect.gen(function*() {
      const { lines, ripple, store } = yield* session
      assert.strictEqual(yield* ripple(["run", flakyWait]), 3)
      const before = yield* dump(store)
      lines.length = 0
      const code = yield* ripple(["signal", "run-2", "go"])
      refused(needsHandlers("ripple signal run-2 go"), code, lines.join("\n"))
      assert.strictEqual(yield* dump(store), before, "nothing written")
      lines.length = 0
      assert.strictEqual(yield* ripple(["signal", "run-2", "go", "--handlers", flakyWait]), 1)
      assert.include(lines.join("\n"), "the service is down")
    }).pipe(Effect.provide(Platform.layer)))

  it.live("rerun naming a run of another workflow says whose run it is", () =>
    Effect.gen(function*() {
      const { lines, ripple, store } = yield* session
      const before = yield* dump(store)
      assert.strictEqual(yield* ripple(["rerun", example("content-pipeline.json"), "--from", "review", "--run", "run-1"]), 2)
      const printed = lines.join("\n")
      assert.include(printed, "run-1 belongs to workflow support-triage")
      assert.notInclude(printed, "--input")
      assert.strictEqual(yield* dump(store), before, "nothing written")
    }).pipe(Effect.provide(Platform.layer)))
})

// Where mkdir answers ENOENT below a parent that exists (procfs), Node's recursive mkdir retried
// forever: the binary runs with a timeout, and the test fails if it does not exit.
describe("a --data-dir that cannot be created (the binary): exit 2 naming the folder, no hang", () => {
  for (const dataDir of ["/proc/ripple-data", "/proc/ripple-parent/data"]) {
    it(dataDir, async () => {
      const result = await rippleBinary({ cwd: dir, timeout: 20_000 }, "run", example("support-triage.json"), "--input", ticket, "--data-dir", dataDir)
      const printed = `${result.stdout}\n${result.stderr}`
      refused({ name: dataDir, args: () => [], names: [`cannot open the database`, dataDir, "is not writable"] }, result.code, printed)
      assert.isFalse(Fs.existsSync(dataDir))
    })
  }
})

// The fix for a folder of other files began "check that <dir> is writable and that its disk has
// free space" (neither was the problem) before it said that a new database needs an empty folder.
describe("a --data-dir that holds other files: exit 2, the folder left as it is", () => {
  it("run, and migrate", async () => {
    const temp = tempDir("foreign")
    const folder = Path.join(temp.dir, "notes")
    Fs.mkdirSync(folder)
    Fs.writeFileSync(Path.join(folder, "todo.txt"), "buy milk")
    try {
      for (const args of [["run", example("support-triage.json"), "--input", ticket], ["migrate"]]) {
        const result = await rippleInProcess({ cwd: temp.dir, db: ["--data-dir", folder] }, ...args)
        const printed = `${result.stdout}\n${result.stderr}`
        refused({
          name: args[0]!,
          args: () => [],
          names: [`${folder}: it is not empty and holds no PostgreSQL data directory`, `fix: ${folder} holds other files: point --data-dir at a new or empty folder`]
        }, result.code, printed)
        assert.notInclude(printed, "writable")
        assert.deepStrictEqual(Fs.readdirSync(folder), ["todo.txt"])
      }
    } finally {
      temp.remove()
    }
  })
})

// Read whole, /dev/zero never ended: the command grew until memory ran out. The binary runs with a
// timeout, and the test fails if it does not exit.
describe("a JSON flag read from a device that never ends (the binary): exit 2, nothing written", () => {
  const cases: ReadonlyArray<readonly [flag: string, args: ReadonlyArray<string>]> = [
    ["--input", ["run", example("support-triage.json"), "--input", "@/dev/zero"]],
    ["--payload", ["approve", "run-1", "review", "--payload", "@/dev/zero"]],
    ["--pin ticket", ["run", example("support-triage.json"), "--input", ticket, "--pin", "ticket=@/dev/zero"]]
  ]
  for (const [flag, args] of cases) {
    it(flag, async () => {
      const temp = tempDir("zero")
      try {
        const result = await rippleBinary({ cwd: temp.dir, timeout: 30_000 }, ...args)
        const printed = `${result.stdout}\n${result.stderr}`
        refused({ name: flag, args: () => [], names: [`${flag} from /dev/zero is larger than 256 MiB`, "at most 256 MiB"] }, result.code, printed)
        assert.deepStrictEqual(Fs.readdirSync(temp.dir), [])
      } finally {
        temp.remove()
      }
    })
  }
})

// A defect (a bug of Ripple, not bad input) ended the binary with exit 1 and not a word: the
// cause was never printed.
describe("a defect (the binary): exit 1 with the cause on stderr", () => {
  it("console.log failing", async () => {
    const failing = Path.join(Path.dirname(new URL(import.meta.url).pathname), "fixtures", "failingConsole.mjs")
    const result = await rippleBinary({ cwd: dir, timeout: 30_000, env: { NODE_OPTIONS: `--import ${failing}` } }, "--help")
    assert.strictEqual(result.code, 1, result.stdout + result.stderr)
    assert.include(result.stderr, "ripple: internal error (a bug in Ripple; please report it with what follows)")
    assert.include(result.stderr, "injected: console.log failed")
  })
})

// process.cwd() throws there: every command that resolved a path (the default data directory, a
// workflow file) died with "ENOENT: no such file or directory, uv_cwd".
describe("a current directory that was deleted (the binary): exit 2, naming it", () => {
  for (const args of [["runs"], ["run", example("support-triage.json"), "--input", ticket]]) {
    it(args[0]!, () => {
      const gone = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ripple-gone-"))
      const command = `cd "$1" && rmdir "$1" && shift && exec "$@"`
      const result = spawnSync("sh", ["-c", command, "sh", gone, process.execPath, bin, ...args], {
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1", DATABASE_URL: "" },
        timeout: 30_000
      })
      refused(
        { name: "gone", args: () => [], names: ["the current directory no longer exists", "cd to an existing directory"] },
        result.status ?? -1,
        `${result.stdout}\n${result.stderr}`
      )
      assert.isFalse(Fs.existsSync(gone))
    })
  }
})

describe("an unreachable server", () => {
  // The fix said "correct DATABASE_URL" to a user who had given --db (and perhaps no DATABASE_URL).
  it("exit 2, the fix naming where the URL came from: --db, else DATABASE_URL", async () => {
    const temp = tempDir("unreachable")
    const url = "postgres://postgres@127.0.0.1:1/ripple"
    const sources = [
      { where: { cwd: temp.dir, db: ["--db", url] }, fix: "correct --db (postgres://", instead: "leave --db out to use DATABASE_URL or the embedded database" },
      { where: { cwd: temp.dir, env: { DATABASE_URL: url } }, fix: "correct DATABASE_URL (postgres://", instead: "unset DATABASE_URL to use the embedded database" }
    ]
    try {
      for (const { fix, instead, where } of sources) {
        const result = await rippleInProcess(where, "runs")
        const printed = `${result.stdout}\n${result.stderr}`
        refused({ name: fix, args: () => [], names: [`cannot open the database (Unreachable): ${url}`, `fix: start the PostgreSQL server or ${fix}`, instead] }, result.code, printed)
        assert.notInclude(printed, where.db === undefined ? "--db" : "correct DATABASE_URL")
      }
      assert.isFalse(Fs.existsSync(Path.join(temp.dir, ".ripple")))
    } finally {
      temp.remove()
    }
  })
})

// Each of these was "(Unreachable)" with the fix "start the PostgreSQL server or correct --db":
// a user the server refuses, a URL without a user ("PgConnection: No username configured: No
// username configured"; no server was asked), a database name the server does not have.
describe("a server URL with a wrong user or database: exit 2, a fix about the URL, not the server", () => {
  const nosuch = `ripple_test_nosuch_${process.pid}`
  const edited = (edit: (url: URL) => void): string => {
    const url = new URL(TestDatabase.serverUrl())
    edit(url)
    return url.toString()
  }
  const norole = `ripple_test_norole_${process.pid}`
  const cases = [
    {
      name: "a user the server refuses",
      url: edited((url) => (url.username = norole)),
      names: (flag: string) => ["cannot open the database (AuthenticationFailed)", `role "${norole}" does not exist`, `fix: correct the user or password in ${flag}`]
    },
    {
      name: "no user",
      url: "postgres://127.0.0.1:1/ripple",
      names: (flag: string) => [`cannot open the database (InvalidUrl): ${flag}: the URL names no user`, `correct ${flag} (postgres://user`]
    },
    {
      name: "a database the server does not have",
      url: edited((url) => (url.pathname = `/${nosuch}`)),
      names: (flag: string) => ["cannot open the database (DatabaseNotFound)", `database "${nosuch}" does not exist`, "fix: create it (createdb ", `${nosuch}) or correct ${flag}`]
    }
  ]
  for (const { name, names, url } of cases) {
    it(name, async () => {
      const temp = tempDir("serverurl")
      const sources = [{ where: { cwd: temp.dir, db: ["--db", url] }, flag: "--db" }, { where: { cwd: temp.dir, env: { DATABASE_URL: url } }, flag: "DATABASE_URL" }]
      try {
        for (const { flag, where } of sources) {
          const result = await rippleInProcess(where, "runs")
          const printed = `${result.stdout}\n${result.stderr}`
          refused({ name: flag, args: () => [], names: names(flag) }, result.code, printed)
          assert.notInclude(printed, "start the PostgreSQL server")
        }
        assert.deepStrictEqual(Fs.readdirSync(temp.dir), [])
      } finally {
        temp.remove()
      }
    })
  }
})

// Where the user of the URL may not create Ripple's tables, every command said "the database could
// not be prepared: PgConnection: Query failed" (the server's reason lost), told a --db user to "use
// a fresh --data-dir", and exited 1.
describe("a server database ripple cannot create its tables in: exit 2, the server's reason, nothing written", () => {
  const server = TestDatabase.serverUrl()
  const tag = `${process.pid}_${Date.now().toString(36)}`
  const schema = `ripple_test_nocreate_${tag}`
  const role = `ripple_test_nocreate_${tag}`
  const as = (user: string, searchPath: string): string => {
    const url = new URL(withSchema(server, searchPath))
    url.username = user
    url.password = ""
    return url.toString()
  }
  beforeAll(async () => {
    await onServer(server, `CREATE SCHEMA ${schema}`)
    await onServer(server, `CREATE ROLE ${role} LOGIN`)
    await onServer(server, `GRANT USAGE ON SCHEMA ${schema} TO ${role}`)
  })
  afterAll(async () => {
    await onServer(server, `DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await onServer(server, `DROP ROLE IF EXISTS ${role}`)
  })
  const cases = [
    { name: "no CREATE on the schema", url: () => as(role, schema), says: `permission denied for schema ${schema}`, fix: `GRANT CREATE ON SCHEMA` },
    { name: "a search_path naming no schema", url: () => as("postgres", `${schema}_missing`), says: "no schema has been selected to create in", fix: "search_path" }
  ]
  for (const { fix, name, says, url } of cases) {
    it(name, async () => {
      const temp = tempDir("nocreate")
      try {
        const sources = [{ where: { cwd: temp.dir, db: ["--db", url()] }, flag: "--db" }, { where: { cwd: temp.dir, env: { DATABASE_URL: url() } }, flag: "DATABASE_URL" }]
        for (const { flag, where } of sources) {
          for (const args of [["runs"], ["run", example("support-triage.json"), "--input", ticket]]) {
            const result = await rippleInProcess(where, ...args)
            const printed = `${result.stdout}\n${result.stderr}`
            refused({ name, args: () => [], names: ["cannot create Ripple's tables", says, fix, flag] }, result.code, printed)
            assert.notInclude(printed, "--data-dir")
          }
        }
        assert.deepStrictEqual(Fs.readdirSync(temp.dir), [])
        assert.strictEqual(await dumpServer(withSchema(server, schema)), "", "no table created")
      } finally {
        temp.remove()
      }
    })
  }
})

describe("--input - reads stdin (the binary, embedded PGlite)", () => {
  it.live("a run input piped in", () =>
    Effect.gen(function*() {
      const { dir, remove } = tempDir("stdin")
      const started = spawnRipple({ cwd: dir }, "run", example("support-triage.json"), "--input", "-")
      started.child.stdin?.end(JSON.stringify({ subject: "Login fails", body: "Token expired", tier: "pro" }))
      const code = yield* Effect.promise(() => started.exited).pipe(Effect.ensuring(Effect.sync(remove)))
      assert.strictEqual(code, 0, started.output())
      assert.include(started.output(), "node escalate completed")
    }))
})
