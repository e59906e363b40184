/**
 * @ripple/cli — the `ripple` command: run workflows, plan and re-run from a block, inspect runs.
 * The command tree is exported for embedding and tests; `bin.ts` is the executable.
 *
 * @since 0.1.0
 */

/** The command tree, `main` (arguments → exit code) and the `Backend` it runs on. */
export * as Cli from "./Cli.ts"
/** Loading a workflow file or ES module with its handlers. */
export * as Source from "./Source.ts"
/** User-facing problems and exit codes. */
export * as Problem from "./Problem.ts"
/** Live progress lines and the run summary. */
export * as Progress from "./Progress.ts"
/** The default backend: `SqlRunStore` on PostgreSQL or embedded PGlite. */
export * as Store from "./Store.ts"
/** The Node services `Cli.main` needs. */
export * as Platform from "./Platform.ts"
