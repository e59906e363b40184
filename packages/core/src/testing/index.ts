/**
 * `@ripple/core/testing` — tools to property-test run-from-block plans of your own workflows:
 * random workflows and run-from scenarios (`Arbitraries`), random edits (`Edits`), a reference
 * executor with seeded pure blocks (`Model`), law checkers — soundness, minimality, forward closure,
 * per-instance soundness, parallel isolation, no zombies, hydration completeness, idempotence — (`Laws`) and
 * the specification planner (`Spec`), and the run-from rules of Sim and n8n to measure against
 * (`Peers`). Requires `fast-check`, an optional peer dependency of
 * `@ripple/core` needed only by this entry point.
 *
 * @since 0.1.0
 */
export * as Arbitraries from "./Arbitraries.ts"
export * as Model from "./Model.ts"
export * as Edits from "./Edits.ts"
export * as Laws from "./Laws.ts"
export * as Spec from "./Spec.ts"
export * as Peers from "./Peers.ts"
