/**
 * @ripple/runtime — see README.md. Modules are added here as their issues land.
 */

/** The run-status machine and its pure helpers (`next`, `transitions`, `restore`, ...). */
export * as RunStatus from "./RunStatus.ts"
