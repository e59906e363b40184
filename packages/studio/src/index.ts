/**
 * @ripple/studio — `ripple studio`: a local web inspector of runs and plans.
 *
 * @since 0.1.0
 */

/**
 * The server: the API and the app on a Node HTTP server (`Studio.layer`).
 *
 * @since 0.1.0
 */
export * as Studio from "./Studio.ts"

/**
 * The JSON API routes over `Runs`, `RunStore` and `RunIndex`.
 *
 * @since 0.1.0
 */
export * as Api from "./Api.ts"

/**
 * The browser app's files.
 *
 * @since 0.1.0
 */
export * as Assets from "./Assets.ts"

/**
 * The drawn graph of a workflow and each node's state in a run or a plan.
 *
 * @since 0.1.0
 */
export * as Graph from "./Graph.ts"

/**
 * Two runs of one workflow compared node by node.
 *
 * @since 0.1.0
 */
export * as Compare from "./Compare.ts"

/**
 * RFC 9457 problems the API answers bad requests with.
 *
 * @since 0.1.0
 */
export * as Problem from "./Problem.ts"

/**
 * The runs the studio lists (`RunIndex.layerSql`).
 *
 * @since 0.1.0
 */
export * as RunIndex from "./RunIndex.ts"
