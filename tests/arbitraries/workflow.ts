/**
 * Random workflows for property tests. They live in the public `@ripple/core/testing` entry
 * (`Arbitraries`) so users can property-test their own workflows; this module keeps the names the
 * tests import.
 */
import { Arbitraries } from "@ripple/core/testing"

export type WorkflowJson = Arbitraries.WorkflowJson
export type WorkflowOptions = Arbitraries.WorkflowOptions
export type BrokenTag = Arbitraries.BrokenTag
export const blockTypes = Arbitraries.blockTypes
export const conditionOps = Arbitraries.conditionOps
export const arbitraryWorkflow = Arbitraries.arbitraryWorkflow
export const arbitraryBrokenWorkflow = Arbitraries.arbitraryBrokenWorkflow
