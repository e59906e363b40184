/**
 * @ripple/sql — PostgreSQL persistence for Ripple: a server through `@effect/sql-pg`, or embedded
 * PGlite by default, behind one effect/sql `SqlClient`.
 *
 * @since 0.1.0
 */

/**
 * The database Ripple persists to (`Database.layer`, `Database.layerFromConfig`, `Database.Database`).
 *
 * @since 0.1.0
 */
export * as Database from "./Database.ts"

/**
 * An effect/sql `SqlClient` over embedded PGlite.
 *
 * @since 0.1.0
 */
export * as PgliteClient from "./PgliteClient.ts"

/**
 * A per-user template for new embedded databases, so that creating one is a copy, not an initdb.
 *
 * @since 0.1.0
 */
export * as PgliteTemplate from "./PgliteTemplate.ts"

/**
 * The exclusive, crash-safe lock that keeps an embedded data directory to one client (`DirectoryLock.make`).
 *
 * @since 0.1.0
 */
export * as DirectoryLock from "./DirectoryLock.ts"

/**
 * The schema as effect/sql migrations in code (`Migrations.run`).
 *
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.ts"

/**
 * The `RunStore` over effect/sql (`SqlRunStore.layer`, `SqlRunStore.layerFromConfig`).
 *
 * @since 0.1.0
 */
export * as SqlRunStore from "./SqlRunStore.ts"

/**
 * The stored runs, newest first, filtered by workflow and status (`RunList.list`).
 *
 * @since 0.1.0
 */
export * as RunList from "./RunList.ts"

/**
 * Workers that claim, lease and execute submitted runs (`Worker.layer`, `Worker.submit`).
 *
 * @since 0.1.0
 */
export * as Worker from "./Worker.ts"
