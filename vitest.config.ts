import * as Os from "node:os"
import { defineConfig } from "vitest/config"

// Vitest 5's failure reporter calls Map.groupBy (Node 21+). The project needs Node 22.19 (CI runs it),
// but on an older Node, where npm only warns, a failing test would otherwise print "Map.groupBy is not
// a function" instead of its own error.
if (typeof (Map as { groupBy?: unknown }).groupBy !== "function") {
  Object.defineProperty(Map, "groupBy", {
    configurable: true,
    writable: true,
    value: <K, V>(items: Iterable<V>, key: (item: V, index: number) => K): Map<K, Array<V>> => {
      const groups = new Map<K, Array<V>>()
      let index = 0
      for (const item of items) {
        const k = key(item, index++)
        const group = groups.get(k)
        if (group === undefined) groups.set(k, [item])
        else group.push(item)
      }
      return groups
    }
  })
}

// One project per tests/ folder. Packages are imported by name and resolved to their TypeScript
// sources through the `@ripple/source` export condition, so tests never need a prior build.
const project = (name: string, options: { readonly timeoutMs?: number } = {}) => ({
  extends: true as const,
  test: {
    name,
    include: [`tests/${name}/**/*.test.ts`],
    testTimeout: options.timeoutMs ?? 60_000
  }
})

export default defineConfig({
  resolve: { conditions: ["@ripple/source"] },
  ssr: { resolve: { conditions: ["@ripple/source"], externalConditions: ["@ripple/source"] } },
  test: {
    setupFiles: ["./vitest.setup.ts"],
    hookTimeout: 60_000,
    // Vitest's default in run mode is one file fewer than the cores: a single file at a time on a
    // 2-core machine (CI's), where most files wait on PostgreSQL, PGlite or child processes and the
    // second core stays idle. Two files at a time at least; tests are isolated per schema/database.
    maxWorkers: Math.max(2, Os.availableParallelism() - 1),
    projects: [
      project("core"),
      project("runtime"),
      project("sql", { timeoutMs: 300_000 }),
      project("cli", { timeoutMs: 300_000 }),
      project("studio", { timeoutMs: 120_000 }),
      project("arbitraries"),
      project("helpers"),
      project("structure")
    ]
  }
})
