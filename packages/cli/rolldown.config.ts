/**
 * Bundles the `ripple` executable (`npm run build`; `npm test` too): `src/bin.ts` and everything it
 * imports, from the TypeScript sources of the workspace packages and from node_modules, into
 * `dist/bin.js` and a few `dist/ripple-*.js` chunks, so that a command loads a handful of files
 * instead of resolving and compiling ~400 modules (issue 19: a later command's start).
 *
 * **Details**
 *
 * - `bin.ts` imports `main.ts` dynamically (after turning on Node's compile cache), so the command
 *   is a chunk of its own; the studio (`import("@ripple/studio")`) is another, loaded only by
 *   `ripple studio`.
 * - PGlite stays external: its WebAssembly and data files load relative to its own module, and it is
 *   imported only when a database is opened.
 * - A module that finds files beside itself (`import.meta.url`: the studio's `app/`, the shipped
 *   template of `@ripple/sql`, `createRequire`) still finds them: `import.meta.url` is rewritten to
 *   the module's own file, relative to the bundle, which holds where the packages sit side by side
 *   (this workspace, or `node_modules/@ripple/*` once installed).
 * - Source maps point into the TypeScript sources.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { defineConfig, type Plugin } from "rolldown"

const here = Path.dirname(fileURLToPath(import.meta.url))
const outDir = Path.join(here, "dist")

const ownImportMetaUrl: Plugin = {
  name: "ripple-own-import-meta-url",
  transform: {
    filter: { code: "import.meta.url" },
    handler(code, id) {
      // Rolldown's own runtime (a virtual module) makes `require` for bundled CommonJS: any file of the bundle will do.
      if (id.startsWith("\0")) return null
      const relative = Path.relative(outDir, id).split(Path.sep).join("/")
      const rewritten = code.replaceAll(/\bimport\.meta\.url\b/g, `new URL(${JSON.stringify(relative)}, import.meta.url).href`)
      // Only columns of those lines move, so the sources' own mappings still hold (`map: null`).
      return { code: rewritten, map: null }
    }
  }
}

// Chunk names follow their contents: the chunks of an earlier build would otherwise stay beside the new ones.
const removeStaleChunks: Plugin = {
  name: "ripple-remove-stale-chunks",
  buildStart() {
    if (!Fs.existsSync(outDir)) return
    for (const file of Fs.readdirSync(outDir)) {
      if (/^ripple-.*\.js(\.map)?$/.test(file)) Fs.rmSync(Path.join(outDir, file))
    }
  }
}

export default defineConfig({
  input: { bin: Path.join(here, "src/bin.ts") },
  platform: "node",
  external: [/^@electric-sql\/pglite(\/|$)/],
  resolve: { conditionNames: ["@ripple/source", "node", "import", "module", "default"] },
  plugins: [removeStaleChunks, ownImportMetaUrl],
  output: {
    dir: outDir,
    format: "esm",
    entryFileNames: "[name].js",
    chunkFileNames: "ripple-[name].js",
    sourcemap: true
  }
})
