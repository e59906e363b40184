/**
 * `trigger → echo → out`: `echo` reads the run input through the trigger's output (never by an
 * `input.` reference), and `out` observes it. Shared by the planner's and the engine's tests of a
 * run from a block with a new run input (tests/core/plan.trigger, tests/runtime/engine.cutoff).
 */
import type { Workflow } from "@ripple/core"

export const echoInput: Workflow.Workflow = {
  id: "echo-input",
  inputs: { x: { type: "number" } },
  blocks: [
    { id: "trigger", type: "trigger" },
    { id: "echo", type: "value", params: { value: { $ref: "blocks.trigger.output.x" } } },
    { id: "out", type: "response", params: { value: { $ref: "blocks.echo.output" } } }
  ],
  edges: [{ source: "trigger", target: "echo" }, { source: "echo", target: "out" }]
}
