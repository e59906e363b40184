/**
 * @ripple/sql — see README.md. Modules are added here as their issues land.
 */
export {}
