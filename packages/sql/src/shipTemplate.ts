/**
 * `node packages/sql/dist/shipTemplate.js [folder]`: puts the current embedded-database template
 * (`PgliteTemplate.ship`) in the package, so that the first `ripple` command on a machine copies
 * it instead of running initdb. The workspace's `npm run build` runs it after `tsc -b`; when the
 * template is current it only checks that.
 */
import * as Effect from "effect/Effect"
import * as Path from "node:path"
import * as PgliteTemplate from "./PgliteTemplate.ts"

const folder = process.argv[2] === undefined ? undefined : Path.resolve(process.argv[2])
const started = performance.now()
const shown = (directory: string) => Path.relative(process.cwd(), directory) || directory

const program = PgliteTemplate.ship({
  folder,
  onBuild: (directory) =>
    Effect.sync(() => console.error(`building the embedded database template in ${shown(directory)} (once per PGlite version and schema)`))
}).pipe(
  Effect.tap(({ built, directory }) =>
    built ? Effect.sync(() => console.error(`built ${shown(directory)} in ${((performance.now() - started) / 1000).toFixed(1)} s`)) : Effect.void
  ),
  // Not fatal: without a shipped template, the first command builds one in the user's cache.
  Effect.catch((error) =>
    Effect.sync(() => console.error(`the embedded database template was not built: ${error instanceof Error ? error.message : String(error)}`))
  )
)

Effect.runPromise(program)
