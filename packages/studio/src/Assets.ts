/**
 * The browser app's files: the page and its modules (`app/` beside `src/` and `dist/`), and the
 * client libraries as ES modules straight from `node_modules` (no CDN, no bundler).
 *
 * **Details**
 *
 * - Only the files listed here are served, each read once and kept in memory: a request can name
 *   no other path.
 * - The page's import map (in `app/index.html`) maps `preact`, `preact/hooks`, `htm` and
 *   `@dagrejs/dagre` to `/vendor/...`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Problem from "./Problem.ts"

const app = fileURLToPath(new URL("../app/", import.meta.url))
const require = createRequire(import.meta.url)

// The folder of an installed package: up from its entry point to the package.json naming it.
const packageRoot = (name: string): string => {
  let dir = Path.dirname(require.resolve(name))
  for (;;) {
    const manifest = Path.join(dir, "package.json")
    if (Fs.existsSync(manifest) && (JSON.parse(Fs.readFileSync(manifest, "utf8")) as { name?: string }).name === name) return dir
    const parent = Path.dirname(dir)
    if (parent === dir) throw new Error(`cannot find the package folder of ${name}`)
    dir = parent
  }
}

/**
 * A served file: its URL path, where it is on disk and its content type.
 *
 * @since 0.1.0
 */
export interface Asset {
  readonly path: `/${string}`
  readonly file: () => string
  readonly contentType: string
}

const js = "text/javascript; charset=utf-8"

/**
 * Every file the studio serves besides the API.
 *
 * @since 0.1.0
 */
export const assets: ReadonlyArray<Asset> = [
  { path: "/", file: () => Path.join(app, "index.html"), contentType: "text/html; charset=utf-8" },
  { path: "/app.js", file: () => Path.join(app, "app.js"), contentType: js },
  { path: "/graph.js", file: () => Path.join(app, "graph.js"), contentType: js },
  { path: "/style.css", file: () => Path.join(app, "style.css"), contentType: "text/css; charset=utf-8" },
  { path: "/vendor/preact.mjs", file: () => Path.join(packageRoot("preact"), "dist/preact.mjs"), contentType: js },
  { path: "/vendor/hooks.mjs", file: () => Path.join(packageRoot("preact"), "hooks/dist/hooks.mjs"), contentType: js },
  { path: "/vendor/htm.mjs", file: () => Path.join(packageRoot("htm"), "dist/htm.mjs"), contentType: js },
  { path: "/vendor/dagre.mjs", file: () => Path.join(packageRoot("@dagrejs/dagre"), "dist/dagre.esm.js"), contentType: js }
]

// A file that cannot be read (an installation without it) is logged and answered with a problem.
const serve = (asset: Asset) => {
  let content: Uint8Array | undefined
  return Effect.try(() => {
    content ??= Fs.readFileSync(asset.file())
    return HttpServerResponse.uint8Array(content, { contentType: asset.contentType, headers: { "cache-control": "no-cache" } })
  }).pipe(Effect.catch((error) => Effect.as(Effect.logError(`studio: cannot read ${asset.path}`, error), Problem.toResponse(new Problem.Internal()))))
}

/**
 * The routes of the app's files (the app routes itself in the location hash).
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<never, never, HttpRouter.HttpRouter> = HttpRouter.addAll(
  assets.map((asset) => HttpRouter.route("GET", asset.path, serve(asset)))
)
