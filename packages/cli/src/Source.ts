/**
 * Loads the workflow a command names: a JSON file using built-in block types, or an ES module
 * (`.js` / `.mjs`) exporting `workflow` (the workflow JSON) and, optionally, `handlers` (a
 * `Layer` providing `Handler.Handlers`, usually `Handler.layer({ myType: handler })`).
 *
 * **Details**
 *
 * Everything is checked before a database is opened, so a missing or invalid file writes nothing.
 *
 * **Example** (An ES module workflow)
 *
 * ```ts
 * import { Engine, Handler } from "@ripple/runtime"
 * import * as Effect from "effect/Effect"
 *
 * export const workflow = { version: 1, id: "hello", blocks: [...], edges: [...] }
 * export const handlers = Handler.layer({ shout: (ctx) => Effect.succeed(String(ctx.inputs.text).toUpperCase()) })
 * ```
 *
 * @since 0.1.0
 */
import { Workflow } from "@ripple/core"
import { Engine, Handler } from "@ripple/runtime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, type Stats, statSync } from "node:fs"
import { constants as bufferConstants } from "node:buffer"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import * as Problem from "./Problem.ts"

/**
 * A loaded workflow and the handlers its block types need.
 *
 * @since 0.1.0
 */
export interface Source {
  /** The path as the user wrote it, for messages. */
  readonly file: string
  readonly workflow: Workflow.Workflow
  readonly handlers: Layer.Layer<Handler.Handlers>
}

const moduleExtensions = [".js", ".mjs"]

/**
 * The `Workflow.Limits` raised (or lowered) through the environment (`RIPPLE_MAX_ITERATIONS`,
 * `RIPPLE_MAX_BRANCHES`, `RIPPLE_MAX_NODES`); a value that is not a positive integer is bad input.
 *
 * @since 0.1.0
 */
export const limits: Effect.Effect<Partial<Workflow.Limits>, Problem.Problem> = Effect.suspend(() => {
  const out: { -readonly [K in keyof Workflow.Limits]?: number } = {}
  for (const [limit, variable] of Object.entries(Workflow.limitVariables) as ReadonlyArray<[keyof Workflow.Limits, string]>) {
    const text = process.env[variable]
    if (text === undefined || text === "") continue
    const value = Number(text)
    if (!Number.isSafeInteger(value) || value < 1) {
      return Effect.fail(Problem.badInput(
        `${variable}=${JSON.stringify(text)} is not a positive integer`,
        `set ${variable} to a whole number of at least 1 (default ${Workflow.defaultLimits[limit]}), or unset it`
      ))
    }
    out[limit] = value
  }
  return Effect.succeed(out)
})

const decoded = (file: string, json: unknown) =>
  Effect.flatMap(limits, (raised) => {
    const result = Workflow.decode(json, { limits: raised })
    if (Result.isSuccess(result)) return Effect.succeed(result.success)
    // `limits` refused every value that is no cap.
    return result.failure._tag === "InvalidOption" ? Effect.die(result.failure) : Effect.fail(Problem.invalidWorkflow(file, result.failure))
  })

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false })

// Where the first byte sequence that is not UTF-8 starts, as a line number and a byte offset: the
// lenient decoder marks it with U+FFFD, which a valid file may also hold (as the bytes EF BF BD).
const firstInvalid = (bytes: Uint8Array): { readonly line: number; readonly offset: number } => {
  const lenient = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
  let offset = 0
  let line = 1
  for (const char of lenient) {
    if (char === "\ufffd" && !(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) break
    if (char === "\n") line++
    offset += Buffer.byteLength(char)
  }
  return { line, offset }
}

// At most `maxBytes` of a file or of stdin (`0`), `undefined` past them. Written by hand because
// `readFileSync` has no limit: it read a device that never ends (`--input @/dev/zero`) until memory
// ran out. A regular file is measured before it is read.
const readAtMost = (path: string | 0, maxBytes: number): Buffer | undefined => {
  const fd = path === 0 ? 0 : openSync(path, fsConstants.O_RDONLY)
  try {
    const stats = fstatSync(fd)
    if (stats.isFile() && stats.size > maxBytes) return undefined
    const chunks: Array<Buffer> = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(1 << 20)
      const read = readSync(fd, chunk, 0, chunk.length, null)
      if (read === 0) return Buffer.concat(chunks, total)
      chunks.push(chunk.subarray(0, read))
      total += read
      if (total > maxBytes) return undefined
    }
  } finally {
    if (path !== 0) closeSync(fd)
  }
}

const mebibytes = (bytes: number): string => `${Math.round(bytes / 1024 / 1024)} MiB`

// The most a command reads of a file: a longer text is no JavaScript string (512 MiB).
const maxTextBytes = bufferConstants.MAX_STRING_LENGTH

/**
 * The text of a file (or of stdin, `0`) a command reads JSON from, as UTF-8 (RFC 8259): a leading
 * byte order mark is dropped, and bytes that are not UTF-8 (a file saved as Latin-1 or UTF-16) are
 * bad input naming where they are, rather than characters silently replaced by U+FFFD. More than
 * `maxBytes` (default 512 MiB, the longest JavaScript string) is bad input, read no further.
 *
 * @since 0.1.0
 */
export const readText = (
  what: string,
  path: string | 0,
  unreadable = "pass a readable file (the path is relative to the current directory)",
  maxBytes = maxTextBytes
): Effect.Effect<string, Problem.Problem> =>
  Effect.flatMap(
    Effect.try({
      try: () => readAtMost(path, maxBytes),
      catch: (error) =>
        Problem.badInput(`cannot read ${what}: ${(error as Error).message}`, unreadable)
    }),
    (bytes) =>
      bytes === undefined
        ? Effect.fail(Problem.badInput(`${what} is larger than ${mebibytes(maxBytes)}`, `${unreadable}; Ripple reads at most ${mebibytes(maxBytes)} of it`))
        : Effect.try({
          try: () => utf8.decode(bytes),
          catch: () => {
            const { line, offset } = firstInvalid(bytes)
            return Problem.badInput(
              `${what} is not UTF-8 text: the byte 0x${bytes[offset]!.toString(16).padStart(2, "0")} at line ${line} (byte offset ${offset}) is not valid UTF-8`,
              `save ${what} as UTF-8 (from Latin-1: iconv -f latin1 -t utf-8)`
            )
          }
        })
  )

const fromJson = (file: string, absolute: string): Effect.Effect<Source, Problem.Problem> =>
  Effect.gen(function*() {
    const text = yield* readText(file, absolute)
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (error) =>
        Problem.badInput(`${file} is not valid JSON: ${(error as Error).message}`, `fix the JSON syntax of ${file}`)
    })
    return { file, workflow: yield* decoded(file, json), handlers: Handler.layerBuiltins }
  })

/** How long a module may take to load before the user is told what Ripple is waiting for. */
const slowImportMs = 3_000

// A module's top-level code runs as it is imported: one that awaits a connection, or a promise
// that never settles, would otherwise leave the command silent, so the wait is said once on stderr.
const importModule = (file: string, absolute: string) =>
  Effect.suspend(() => {
    const importing = import(pathToFileURL(absolute).href) as Promise<{ readonly workflow?: unknown; readonly handlers?: unknown }>
    const imported = Effect.tryPromise({
      try: () => importing,
      catch: (error) =>
        Problem.badInput(`cannot load ${file}: ${error instanceof Error ? error.message : String(error)}`, `fix the module ${file} so that Node can import it`)
    })
    return Effect.timeoutOrElse(imported, {
      duration: slowImportMs,
      orElse: () =>
        Effect.andThen(
          Console.error(`ripple: still loading ${file}: its top-level code has not finished after ${slowImportMs / 1000} s (Ctrl-C stops)`),
          imported
        )
    })
  })

const fromModule = (file: string, absolute: string): Effect.Effect<Source, Problem.Problem> =>
  Effect.gen(function*() {
    const module = yield* importModule(file, absolute)
    if (module.workflow === undefined) {
      return yield* Problem.badInput(`${file} does not export \`workflow\``, "add `export const workflow = { ... }` (the workflow JSON) to the module")
    }
    if (module.handlers !== undefined && !Layer.isLayer(module.handlers)) {
      return yield* Problem.badInput(
        `${file} exports \`handlers\` that is not a Layer`,
        "export `handlers = Handler.layer({ type: handler })` from @ripple/runtime"
      )
    }
    const workflow = yield* decoded(file, module.workflow)
    const handlers = (module.handlers ?? Handler.layerBuiltins) as Layer.Layer<Handler.Handlers>
    return { file, workflow, handlers }
  })

/**
 * Loads the `handlers` Layer an ES module exports (for commands that continue stored runs).
 *
 * @since 0.1.0
 */
export const loadHandlers = (file: string): Effect.Effect<Layer.Layer<Handler.Handlers>, Problem.Problem> =>
  Effect.gen(function*() {
    const absolute = yield* existing(file, "handlers module")
    if (!moduleExtensions.includes(Path.extname(absolute).toLowerCase())) {
      return yield* Problem.badInput(`--handlers ${file}: expected a .js / .mjs ES module`, "pass the compiled module that exports `handlers`")
    }
    const module = yield* importModule(file, absolute)
    if (!Layer.isLayer(module.handlers)) {
      return yield* Problem.badInput(`${file} does not export \`handlers\` as a Layer`, "export `handlers = Handler.layer({ type: handler })` from @ripple/runtime")
    }
    return module.handlers as Layer.Layer<Handler.Handlers>
  })

/**
 * What `stat` says of `path`: `undefined` when nothing is there, the error when it cannot tell (a
 * name too long for the file system, a folder that may not be searched).
 *
 * @since 0.1.0
 */
export const statOf = (path: string): Stats | undefined | Error => {
  try {
    return statSync(path, { throwIfNoEntry: false })
  } catch (error) {
    return error as Error
  }
}

// A path thousands of characters long is shown by its start.
const shorten = (path: string): string => path.length <= 200 ? path : `${path.slice(0, 200)}…`

/**
 * The absolute path of `file` when it is a regular file; a bad-input problem naming it as `what`
 * otherwise: missing, a folder, or anything else (a device, a pipe).
 *
 * **Gotchas**
 *
 * A folder is told apart from a missing file: "no such file" for a folder that exists sends the
 * user looking for a typo.
 *
 * @since 0.1.0
 */
export const existing = (file: string, what: string): Effect.Effect<string, Problem.Problem> =>
  Effect.suspend(() => {
    // An empty name (an unset variable) resolves to the current directory: named as what it is.
    if (file.trim() === "") return Effect.fail(Problem.badInput(`the ${what} name is empty`, `give the path of the ${what}`))
    const absolute = Path.resolve(file)
    const stat = statOf(absolute)
    if (stat instanceof Error) {
      return Effect.fail(Problem.badInput(
        `cannot read the ${what} ${shorten(file)}: ${stat.message.replace(/, \w+ '[^]*'$/, "")}`,
        "check the path; it is relative to the current directory"
      ))
    }
    if (stat?.isFile() === true) return Effect.succeed(absolute)
    return Effect.fail(
      stat === undefined
        ? Problem.badInput(`no such ${what}: ${file} (looked at ${absolute})`, "check the path; it is relative to the current directory")
        : Problem.badInput(
          `${file} is ${stat.isDirectory() ? "a folder" : "not a regular file"}, not a ${what} (looked at ${absolute})`,
          `pass the path of the ${what} itself${stat.isDirectory() ? ", inside that folder" : ""}`
        )
    )
  })

/**
 * Loads `file` (relative to the current directory).
 *
 * @since 0.1.0
 */
export const load = (file: string): Effect.Effect<Source, Problem.Problem> =>
  Effect.flatMap(existing(file, "workflow file"), (absolute) => {
    const extension = Path.extname(absolute).toLowerCase()
    if (extension === ".json") return fromJson(file, absolute)
    if (moduleExtensions.includes(extension)) return fromModule(file, absolute)
    return Effect.fail(Problem.badInput(
      `cannot load ${file}: expected a .json workflow or a .js / .mjs ES module`,
      extension === ".ts" ? "compile the module with tsc and pass the .js file" : "rename or convert the file"
    ))
  })

/**
 * Fails with a bad-input problem when `block` is not a block or container of the workflow.
 *
 * @since 0.1.0
 */
export const checkBlock = (source: Source, block: string, flag: "--from" | "--to" = "--from"): Effect.Effect<void, Problem.Problem> => {
  const { workflow } = source
  const known = workflow.blocks.some((b) => b.id === block) ||
    (workflow.loops ?? []).some((l) => l.id === block) ||
    (workflow.parallels ?? []).some((p) => p.id === block)
  return known ? Effect.void : Effect.fail(Problem.unknownBlock(source.file, block, flag))
}

/**
 * Fails with a bad-input problem when the engine cannot execute the workflow with its handlers
 * (a block type without handler, literal params that do not fit the schema a handler declares):
 * checked before any database is opened.
 *
 * @since 0.1.0
 */
export const checkExecutable = (source: Source): Effect.Effect<void, Problem.Problem> =>
  Effect.gen(function*() {
    const handlers = yield* Handler.Handlers
    const problem = Engine.check(source.workflow, handlers)
    if (problem !== undefined) return yield* Problem.fromRunsError(source.file, problem, source.workflow)
    const params = Handler.checkParams(source.workflow, handlers)
    if (params !== undefined) return yield* Problem.invalidWorkflow(source.file, params)
  }).pipe(Effect.provide(source.handlers))
