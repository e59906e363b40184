/**
 * @ripple/runtime — see README.md. Modules are added here as their issues land.
 */

/** The run-status machine and its pure helpers (`next`, `transitions`, `restore`, ...). */
export * as RunStatus from "./RunStatus.ts"
/** The error block handlers fail with. */
export * as BlockError from "./BlockError.ts"
/** Block handlers and the `Handlers` registry. */
export * as Handler from "./Handler.ts"
/** The built-in block types. */
export * as Builtins from "./Builtins.ts"
/** Run and node events. */
export * as RunEvent from "./RunEvent.ts"
/** The persistence port and its in-memory layer. */
export * as RunStore from "./RunStore.ts"
/** Executing a run as the holder of its lease. */
export * as Lease from "./Lease.ts"
/** The engine that executes plans. */
export * as Engine from "./Engine.ts"
/** Child runs: loading a `child` block's workflow, delivering a finished child's result to its parent. */
export * as Child from "./Child.ts"
/** What a stored run shows: its observed outputs and each node instance (status, inputs, output, why). */
export * as RunView from "./RunView.ts"
/** Who executes a stored run after a wake (here, or its owner), and its plan. */
export * as Wake from "./Wake.ts"
/** The checks of `Runs` and worker options (`InvalidOption`). */
export * as Options from "./Options.ts"
/** The facade: start, runFrom, plan, status, wait, cancel, events. */
export * as Runs from "./Runs.ts"
/** Code-first workflows: a typed builder producing a Workflow and its handlers. */
export * as Ripple from "./Ripple.ts"
