/**
 * What every part of a worker shares: its services, identity and options.
 */
import type { Engine, Handler, RunEvent } from "@ripple/runtime"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Database from "../Database.ts"
import type { SqlRunStore } from "../SqlRunStore.ts"
import type * as Transact from "./transact.ts"

/** A worker's services, identity and resolved options. */
export interface WorkerEnv {
  readonly sqlStore: SqlRunStore["Service"]
  readonly sql: SqlClient.SqlClient
  /** Runs the worker's own statements with the store's retries (`Transact`). */
  readonly transact: Transact.Db["transact"]
  readonly db: Database.Database["Service"]
  readonly handlers: Handler.Handlers["Service"]
  readonly owner: string
  readonly engine: Engine.Options
  readonly publish: (event: RunEvent.RunEvent) => void
  /** Whether node events are read (`Engine.Execution.listening`): not without a `publish` option. */
  readonly listening: (() => boolean) | undefined
}
