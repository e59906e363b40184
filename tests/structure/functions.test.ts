/**
 * House rule (issue 13): no function in `packages/*\/src` runs over 150 lines. A long function is
 * split into named parts (files or functions named after what they do), not grandfathered here.
 *
 * Functions are found with the TypeScript parser (declarations, expressions, arrows, methods,
 * accessors and constructors); a function's length counts its nested functions too.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const MAX_LINES = 150
const root = path.resolve(import.meta.dirname, "../..")

const sources = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "dist" || entry.name === "node_modules" ? [] : sources(full)
    return entry.name.endsWith(".ts") ? [full] : []
  })

const packageSources = (): Array<string> =>
  fs.readdirSync(path.join(root, "packages")).flatMap((name) => {
    const src = path.join(root, "packages", name, "src")
    return fs.existsSync(src) ? sources(src) : []
  })

interface Long {
  readonly where: string
  readonly lines: number
}

/** Functions of one source text longer than `max` lines, as `file:line` and their length. */
const longFunctions = (file: string, text: string, max: number): Array<Long> => {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: Array<Long> = []
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line
      if (last - first + 1 > max) found.push({ where: `${path.relative(root, file)}:${first + 1}`, lines: last - first + 1 })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

describe("function length", () => {
  it("the checker finds a long function and passes a short one", () => {
    const body = Array.from({ length: 5 }, (_, i) => `  const x${i} = ${i}`).join("\n")
    expect(longFunctions("a.ts", `const f = () => {\n${body}\n}\n`, 6)).toEqual([{ where: "a.ts:1", lines: 7 }])
    expect(longFunctions("a.ts", `class C {\n  m() {\n${body}\n  }\n}\n`, 7)).toEqual([])
    expect(longFunctions("a.ts", `function g() {\n${body}\n}\n`, 6)).toHaveLength(1)
  })

  it(`no function in packages/*/src is over ${MAX_LINES} lines`, () => {
    const files = packageSources()
    expect(files.length).toBeGreaterThan(50)
    const long = files.flatMap((file) => longFunctions(file, fs.readFileSync(file, "utf8"), MAX_LINES))
    expect(long).toEqual([])
  })
})
