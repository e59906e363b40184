/**
 * `@ripple/core/testing` — tools to property-test run-from-block plans of your own workflows: a
 * reference executor (`Model`), random edits (`Edits`), law checkers (`Laws`) and the specification
 * planner (`Spec`). Requires `fast-check` (an optional peer
 * dependency of `@ripple/core`, needed only by this entry point).
 *
 * @since 0.1.0
 */
export * as Model from "./Model.ts"
export * as Edits from "./Edits.ts"
export * as Laws from "./Laws.ts"
export * as Spec from "./Spec.ts"
