/**
 * `@ripple/core/testing` — tools to property-test run-from-block plans of your own workflows: a
 * reference executor (`Model`) and law checkers (`Laws`). Requires `fast-check` (an optional peer
 * dependency of `@ripple/core`, needed only by this entry point).
 *
 * @since 0.1.0
 */
export * as Model from "./Model.ts"
export * as Edits from "./Edits.ts"
export * as Laws from "./Laws.ts"
