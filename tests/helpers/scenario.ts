/**
 * Scenarios for the planner properties (from `@ripple/core/testing`): a random valid workflow,
 * random edits of it, a random target and a seed for the block functions.
 */
import { Arbitraries } from "@ripple/core/testing"

export type EditedScenario = Arbitraries.EditedScenario
export type ScenarioOptions = Arbitraries.ScenarioOptions
export const targetsOf = Arbitraries.targetsOf
export const arbitraryScenario = (options: ScenarioOptions = {}) => Arbitraries.arbitraryScenario(options)
