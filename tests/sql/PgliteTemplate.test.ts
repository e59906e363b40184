/**
 * The embedded database template: built once into a folder (`ship`, what the workspace build does
 * for the package), preferred over the user's cache when it is the current one, and what the
 * `ripple` binary copies for a new data directory without running initdb.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { PgliteTemplate } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { example, ripple } from "../cli/ripple.ts"

const made: Array<string> = []
const temp = (label: string) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `ripple-template-${label}-`))
  made.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of made) Fs.rmSync(dir, { recursive: true, force: true })
})

// A folder that looks like a template of another PGlite version or schema.
const stale = (folder: string) => {
  Fs.mkdirSync(Path.join(folder, "pglite-0.0.0-000000000000"), { recursive: true })
  Fs.writeFileSync(Path.join(folder, "pglite-0.0.0-000000000000", "PG_VERSION"), "17\n")
}

describe("PgliteTemplate", () => {
  // One initdb for the whole file: every case below copies or finds this template.
  const shipped = temp("shipped")
  let built: Promise<{ readonly directory: string; readonly built: boolean }> | undefined
  const ship = () => built ??= Effect.runPromise(PgliteTemplate.ship({ folder: shipped }))

  it("ship builds the current template once, and removes the templates of other versions", async () => {
    stale(shipped)
    const first = await ship()
    assert.deepStrictEqual(first, { directory: Path.join(shipped, PgliteTemplate.name()), built: true })
    assert.deepStrictEqual(Fs.readdirSync(shipped), [PgliteTemplate.name()])
    assert.isTrue(Fs.existsSync(Path.join(first.directory, "PG_VERSION")))
    const told: Array<string> = []
    const again = await Effect.runPromise(PgliteTemplate.ship({ folder: shipped, onBuild: (d) => Effect.sync(() => told.push(d)) }))
    assert.deepStrictEqual([again.built, told], [false, []])
  }, 180_000)

  it("ensure takes the shipped template when it is current, else the cache, without building", async () => {
    const { directory } = await ship()
    const cache = Path.join(temp("cache"), "ripple")
    const told: Array<string> = []
    const onBuild = (d: string) => Effect.sync(() => told.push(d))
    assert.strictEqual(await Effect.runPromise(PgliteTemplate.ensure({ shipped, cacheDir: cache, onBuild })), directory)
    assert.isFalse(Fs.existsSync(cache), "nothing is written to the cache")

    // A package that ships only another version's template: the cache's current one is used.
    const old = temp("old")
    stale(old)
    Fs.cpSync(directory, Path.join(cache, PgliteTemplate.name()), { recursive: true })
    assert.strictEqual(await Effect.runPromise(PgliteTemplate.ensure({ shipped: old, cacheDir: cache, onBuild })), Path.join(cache, PgliteTemplate.name()))
    assert.deepStrictEqual(told, [])
  }, 180_000)

  it("the binary's first command copies the shipped template: no template is built, the schema is current", async () => {
    await ship()
    const cwd = temp("first")
    const cache = Path.join(cwd, "cache")
    const where = { cwd, env: { RIPPLE_TEMPLATE_DIR: shipped, RIPPLE_CACHE_DIR: cache } }
    const run = await ripple(where, "run", example("support-triage.json"), "--input", '{"subject": "s", "body": "b"}')
    assert.strictEqual(run.code, 0, run.stderr)
    assert.include(run.stderr, "creating the database in .ripple/ (first use)")
    assert.notInclude(run.stderr, "preparing a template")
    assert.isFalse(Fs.existsSync(cache), "the user's cache is not needed")
    const migrate = await ripple(where, "migrate")
    assert.strictEqual(migrate.code, 0, migrate.stderr)
    assert.include(migrate.stdout, "up to date")
    const runs = await ripple(where, "runs")
    assert.include(runs.stdout, "support-triage")
  }, 180_000)
})
