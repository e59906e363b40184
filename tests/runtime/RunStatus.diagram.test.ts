import { assert, describe, it } from "@effect/vitest"
import { RunStatus } from "@ripple/runtime"
import * as fs from "node:fs"

// Both files are generated from the machine; `npm run diagram` (UPDATE_DIAGRAM=1) rewrites them.
const diagramFile = new URL("../../packages/runtime/run-status.mmd", import.meta.url)
const readmeFile = new URL("../../README.md", import.meta.url)
const begin = "<!-- run-status:begin -->"
const end = "<!-- run-status:end -->"
const update = process.env.UPDATE_DIAGRAM === "1"
const stale = (file: string) => `${file} is stale: regenerate it with \`npm run diagram\``

const section = (diagram: string): string =>
  [
    begin,
    "## Run status",
    "",
    "The run-status machine (`RunStatus` in `packages/runtime`), drawn from its own definition. When a",
    "run's last running branch ends it settles by Failed > Paused > Suspended > Completed; the",
    "`settles <status>` guards pick that status. Regenerate with `npm run diagram`.",
    "",
    "```mermaid",
    diagram.trimEnd(),
    "```",
    end
  ].join("\n")

// The README's section, or null when the markers are missing or out of order.
const readmeSection = (readme: string): string | null => {
  const from = readme.indexOf(begin)
  const to = readme.indexOf(end)
  return from === -1 || to < from ? null : readme.slice(from, to + end.length)
}

describe("RunStatus diagram", () => {
  it("packages/runtime/run-status.mmd is generated from the machine", () => {
    const diagram = RunStatus.mermaid()
    if (update) fs.writeFileSync(diagramFile, diagram)
    assert.isTrue(fs.existsSync(diagramFile), stale("packages/runtime/run-status.mmd"))
    assert.strictEqual(fs.readFileSync(diagramFile, "utf8"), diagram, stale("packages/runtime/run-status.mmd"))
  })

  it("the README's Run status section is generated from the machine", () => {
    const expected = section(RunStatus.mermaid())
    if (update) {
      const readme = fs.readFileSync(readmeFile, "utf8")
      const current = readmeSection(readme)
      fs.writeFileSync(
        readmeFile,
        current === null ? `${readme.trimEnd()}\n\n${expected}\n` : readme.replace(current, expected)
      )
    }
    assert.strictEqual(readmeSection(fs.readFileSync(readmeFile, "utf8")), expected, stale("README.md (Run status)"))
  })

  it("draws every state and every allowed transition", () => {
    const diagram = RunStatus.mermaid()
    assert.include(diagram, "[*] --> pending")
    for (const s of RunStatus.terminal) assert.include(diagram, `${s} --> [*]`)
    for (const t of RunStatus.transitions) {
      assert.match(diagram, new RegExp(`^  ${t.from} --> ${t.to} : .*\\b${t.event}\\b`, "m"), `${t.from} ${t.event} ${t.to}`)
    }
    assert.notMatch(diagram, /: .*[:;]/, "Mermaid ends a transition label at a colon or semicolon")
  })
})
