import { defineConfig } from "vitest/config"

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
    projects: [
      project("core"),
      project("runtime"),
      project("sql", { timeoutMs: 300_000 }),
      project("cli", { timeoutMs: 300_000 }),
      project("arbitraries"),
      project("helpers")
    ]
  }
})
