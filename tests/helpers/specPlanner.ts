/**
 * The specification planner used by the differential property; it lives in `@ripple/core/testing`
 * (`Spec`) so that `bench:plan` can measure against it too.
 */
import { Spec } from "@ripple/core/testing"

export const specPlan = Spec.specPlan
export const observedOf = Spec.observedOf
export type SpecPlan = Spec.SpecPlan
