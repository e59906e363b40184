/**
 * The `RunStore` over effect/sql, for a PostgreSQL server or embedded PGlite (see `Migrations`
 * for the tables).
 *
 * **Details**
 *
 * - `journal` is one statement (one implicit transaction): the run row is locked for share (and
 *   must hold the lease, when fenced) and the batch is upserted into `ripple_journal`; a `Reused`
 *   entry whose source run is stored is copied server-side (`INSERT … SELECT` from the source
 *   run's rows), its record is never read back. The run row is not rewritten per node: the last
 *   started and completed node are read from the journal, and diagnostics only move forward.
 * - `transition` restores the persisted `RunStatus` machine (cached from this store's last read or
 *   write), offers the event and writes the result with a compare-and-set on the row's revision:
 *   concurrent writers never lose an update, a stale cache only costs a re-read, and an illegal
 *   event writes nothing. A run settling as completed or failed becomes the latest of its
 *   (workflow, trigger) in the same statement.
 * - Group commit: journal writes and machine writes of different runs that arrive while one is in
 *   flight go out together in one statement, so many concurrent runs cost far less than a round
 *   trip per node; a caller still returns only once its own write is committed (a node's
 *   completion is durable before its dependents start).
 * - Leases are columns of the run row (owner, generation, expiry in epoch ms on the callers'
 *   clocks, and the token of the call that granted it): `acquire` is one conditional update
 *   (concurrent acquires serialize on the row lock, and the loser re-checks the condition on the
 *   winner's row, so one is granted); sent again after a lost connection, it recognises its own
 *   grant by the token and returns that lease. `fenced(lease)`
 *   is the same store for one run whose every write (journal, machine, diagnostics, compensation
 *   log) also requires the lease (owner, generation): a process that lost its lease cannot write
 *   (`LeaseLost`).
 * - Pause and cancel requests are columns of the run row: `requestPause` / `requestCancel` set
 *   them, the journal statement and lease renewals return them (the row is read there anyway), and
 *   the machine write that settles the run `paused` (a pause) or ends it clears them.
 * - Values keep their JSON text (DESIGN.md, "Values round-trip"): user values travel inside the
 *   batched `jsonb` parameters as JSON *strings* (a `jsonb` string is kept as is, a `jsonb` object
 *   would have its keys reordered), are cast to the `json` columns that keep the text, and are read
 *   back the same way (as text parsed here).
 * - A snapshot is read as its run row and then a row per node record and per scope, in one
 *   repeatable-read transaction: no row (one wire message) holds more than one node's inputs and
 *   output, so any value up to `Workflow.maxValueBytes` (64 MiB of JSON) reads back, however many
 *   a run holds (`Database.maxMessageSize`).
 * - Every statement is its own transaction and goes through one place that turns a `SqlError` into
 *   `RunStore.StoreUnavailable` (reason by SQLSTATE) and retries the retryable ones with backoff
 *   on the effect `Clock` (`RunStore.RetryPolicy`, read when the store is built). After a lost
 *   connection every statement is sent again, as each is harmless to apply twice: journal rows and
 *   scopes are upserts, a run insert returns the row it made, and a machine write (`markFailed`
 *   too), `acquire` and `claim`, `deliver` and a journal write that consumes deliveries find their
 *   committed first attempt by a token. A terminated backend (`pg_terminate_backend`, a restart, a
 *   failover) loses the statement in flight this way: the wire client reports the closed socket,
 *   not the server's 57P01.
 *
 * @since 0.1.0
 */
import { type Snapshot, Workflow } from "@ripple/core"
import { type RunStatus, RunStore } from "@ripple/runtime"
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type { MigrationError } from "effect/sql/Migrator"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as Database from "./Database.ts"
import * as Compensations from "./internal/compensations.ts"
import * as Control from "./internal/control.ts"
import * as Deliveries from "./internal/deliveries.ts"
import * as Journal from "./internal/journal.ts"
import * as Leases from "./internal/leases.ts"
import * as Listener from "./internal/listener.ts"
import * as Queries from "./internal/queries.ts"
import * as Rows from "./internal/rows.ts"
import * as Runs from "./internal/runs.ts"
import * as Snapshots from "./internal/snapshots.ts"
import * as Transact from "./internal/transact.ts"
import * as Transitions from "./internal/transitions.ts"
import * as Workflows from "./internal/workflows.ts"
import * as Migrations from "./Migrations.ts"

/**
 * The channel workers listen on: submitters and control requests (`RunStore.notify`) notify it
 * with the run id.
 *
 * @since 0.1.0
 */
export const channel = "ripple_runs"

/**
 * A run's lease (`RunStore.Lease`).
 *
 * @since 0.1.0
 */
export type Lease = RunStore.Lease

/**
 * The lease was taken by another owner (or released): the write was refused (`RunStore.LeaseLost`).
 *
 * @since 0.1.0
 */
export const LeaseLost = RunStore.LeaseLost

/**
 * The lease was taken by another owner (or released): the write was refused (`RunStore.LeaseLost`).
 *
 * @since 0.1.0
 */
export type LeaseLost = RunStore.LeaseLost

/**
 * A stored run or journal row does not decode: the run cannot be resumed.
 *
 * @since 0.1.0
 */
export const CorruptRun = Rows.CorruptRun

/**
 * A stored run or journal row does not decode: the run cannot be resumed.
 *
 * @since 0.1.0
 */
export type CorruptRun = Rows.CorruptRun

/**
 * The SQL store: the `RunStore` port plus what workers and dashboards need.
 *
 * @since 0.1.0
 */
export class SqlRunStore extends Context.Service<SqlRunStore, {
  /** The port, unfenced (for `Runs`, submitters and tools). */
  readonly store: RunStore.RunStore["Service"]
  /** The port for one leased run: every write also requires the lease; a lost lease fails it with `LeaseLost`. */
  readonly fenced: (lease: Lease) => RunStore.RunStore["Service"]
  /** The run's snapshot, decoded and checked: a row that does not decode is `CorruptRun`. */
  readonly checkedSnapshot: (
    runId: string
  ) => Effect.Effect<Snapshot.Snapshot, RunStore.RunNotFound | RunStore.WorkflowNotFound | RunStore.StoreUnavailable | CorruptRun>
  /**
   * Offers several events to a leased run and writes the outcome once (all accepted, or nothing
   * written); a lost lease fails it with `LeaseLost`.
   */
  readonly transitionAll: (
    lease: Lease,
    events: ReadonlyArray<RunStatus.Event>,
    at: number
  ) => Effect.Effect<
    { readonly from: RunStatus.Status; readonly to: RunStatus.Status },
    RunStore.RunNotFound | RunStore.IllegalTransition | RunStore.StoreUnavailable | LeaseLost
  >
  /**
   * Offers an event to a run (unfenced) and queues it for the workers, notifying them, in the same
   * write: a refused event writes nothing, a write that fails leaves the run as it was, and one that
   * commits leaves it queued (`Worker.requeue`).
   */
  readonly requeue: (
    runId: string,
    event: RunStatus.Event,
    at: number
  ) => Effect.Effect<{ readonly from: RunStatus.Status; readonly to: RunStatus.Status }, RunStore.RunNotFound | RunStore.IllegalTransition | RunStore.StoreUnavailable>
  /** Marks a run failed with `reason`, whatever its stored machine holds (a corrupt run included), unless it is terminal. */
  readonly markFailed: (lease: Lease, reason: string, at: number) => Effect.Effect<void, LeaseLost | RunStore.StoreUnavailable>
  /**
   * Tells the store a run's machine as just read by the caller (a worker's claim returns it), so
   * the run's first transition needs no read of its own. A stale one only costs a re-read.
   */
  readonly prime: (runId: string, revision: number | bigint | string, machine: RunStatus.Persisted) => void
  /**
   * `RunStore.acquire` over the workers' queue: takes, for `owner`, the leases of up to `limit`
   * queued runs with work — pending, running without a live lease (their worker stopped), dormant
   * ones that can wake at `terms.at` (a sleeper due, an awaited delivery kept) — oldest first, with
   * the same condition and grant as `acquire`, skipping rows another worker is claiming. Retried
   * like every statement of the store, and sent again after a lost connection (it takes again the
   * rows its first attempt was granted).
   */
  readonly claim: (owner: string, terms: RunStore.LeaseTerms, limit: number) => Effect.Effect<ReadonlyArray<Claimed>, RunStore.StoreUnavailable>
  /**
   * How many unfinished runs of a workflow are at each block right now (nodes journaled as
   * running). Retried like every statement of the store.
   */
  readonly atBlocks: (workflowId: string) => Effect.Effect<{ readonly [node: string]: number }, RunStore.StoreUnavailable>
}>()("ripple/sql/SqlRunStore") {}

/**
 * A run `claim` took the lease of, as its row was when claimed.
 *
 * @since 0.1.0
 */
export type Claimed = Leases.Claimed

/**
 * The channel a run row's change is notified on (its id), when its status, machine or lease holder
 * changes (a trigger of migration `9_run_changes`): what `RunStore.watch` listens to.
 *
 * @since 0.1.0
 */
export const changesChannel = "ripple_run_changes"

// `RunStore.watch` over LISTEN: a listener of its own per subscription (on the server, a pooled
// connection for its scope), active when `watch` returns, so no later change is missed. A listener
// that cannot start, or is lost with its connection, leaves waiting to the caller's fallback poll
// until it listens again (every `relistenMs`), then wakes the caller once for what it missed.
const watchOver = (db: Database.Database["Service"]) => (runId: string) =>
  Effect.gen(function*() {
    const changed = yield* Queue.sliding<void>(1)
    const wake = Effect.asVoid(Queue.offer(changed, undefined))
    yield* Listener.keep(db, changesChannel, {
      onPayload: (id) => id === runId ? wake : Effect.void,
      onAgain: wake,
      retryMs: relistenMs
    })
    return Effect.asVoid(Queue.take(changed))
  })

// As often as `RunStore.changes` falls back to a poll by default.
const relistenMs = 1_000

// A run id is stored as text: one holding what no store can hold (a NUL, which PostgreSQL refuses
// with 22021, or a lone surrogate, which the wire sends as U+FFFD) names no run, as on the memory
// store, rather than failing the statement or reading another run's row.
const stored = <A extends ReadonlyArray<unknown>, B, E>(
  request: (runId: string, ...rest: A) => Effect.Effect<B, E>
) =>
(runId: string, ...rest: A): Effect.Effect<B, E | RunStore.RunNotFound> =>
  Workflow.unstorable(runId) === undefined ? request(runId, ...rest) : Effect.fail(new RunStore.RunNotFound({ runId }))

/**
 * Builds the store over the `SqlClient` (migrations must have run: see `layer`); with the
 * `Database` service present it also has `watch` (LISTEN on `changesChannel`).
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<SqlRunStore["Service"], never, SqlClient.SqlClient> = Effect.gen(function*() {
  const db = yield* Transact.make
  const workflows = Workflows.make(db)
  const runs = Runs.make(db, workflows, channel)
  const transitions = Transitions.make(db, runs, channel)
  const journal = Journal.make(db, runs)
  const snapshots = Snapshots.make(db, workflows)
  const deliveries = Deliveries.make(db)
  const compensations = Compensations.make(db, runs)
  const control = Control.make(db)
  const leases = Leases.make(db, runs)
  const queries = Queries.make(db)
  const database = yield* Effect.serviceOption(Database.Database)
  const watch = Option.isSome(database) ? watchOver(database.value) : undefined

  const storeWith = (lease: Lease | undefined): RunStore.Port =>
    RunStore.RunStore.of({
      requestCancel: stored(control.requestCancel),
      requestPause: stored(control.requestPause),
      withdrawPause: stored(control.withdrawPause),
      acquire: stored(leases.acquire),
      renew: leases.renew,
      release: leases.release,
      fenced: storeWith,
      saveWorkflow: workflows.saveWorkflow,
      loadWorkflow: workflows.loadWorkflow,
      createRun: runs.createRun,
      getRun: stored((runId) => Effect.map(runs.readRun(runId), Rows.runOf)),
      transition: transitions.transition(lease),
      finish: (runId, event, diagnostics, at) => transitions.transitionAll(lease)(runId, [event], at, diagnostics),
      journal: journal.journal(lease),
      reasons: stored(snapshots.reasons),
      setDiagnostics: journal.setDiagnostics(lease),
      snapshot: stored(snapshots.snapshot),
      latestSnapshot: snapshots.latestSnapshot,
      deliver: stored(deliveries.deliver),
      deliveries: stored(deliveries.deliveries),
      wakeable: deliveries.wakeable,
      planCompensations: compensations.planCompensations(lease),
      compensated: compensations.compensated(lease),
      compensations: stored(compensations.compensations),
      children: stored(queries.children),
      // A lost notification only delays the owner until its next poll: logged, never a failure.
      notify: (runId) =>
        Effect.ignoreCause(db.sql`SELECT pg_notify(${channel}, ${runId})`, { log: true, message: "notifying the owner of a run failed" }),
      ...(watch === undefined ? {} : { watch })
    })

  return SqlRunStore.of({
    store: storeWith(undefined),
    fenced: storeWith,
    transitionAll: (lease, events, at) => transitions.transitionAll(lease)(lease.runId, events, at),
    checkedSnapshot: snapshots.checkedSnapshot,
    requeue: stored(transitions.requeue),
    markFailed: transitions.markFailed,
    prime: (runId, revision, machine) => runs.remember(runId, revision, machine),
    claim: leases.claim,
    atBlocks: queries.atBlocks
  })
})

/**
 * The store over a `SqlClient`: applies the migrations (`Migrations.run`: a transient fault is
 * retried, one that outlasts the retries fails with `RunStore.StoreUnavailable`), then provides
 * `SqlRunStore` and the `RunStore` port.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<
  SqlRunStore | RunStore.RunStore,
  MigrationError | SqlError | RunStore.StoreUnavailable,
  SqlClient.SqlClient
> = Layer
  .effectContext(
    Effect.gen(function*() {
      yield* Migrations.run
      const service = yield* make
      return Context.make(SqlRunStore, service).pipe(Context.add(RunStore.RunStore, service.store))
    })
  )

/**
 * `layer` over `Database.layerFromConfig`: a server at `DATABASE_URL`, else PGlite in `dataDir`.
 *
 * @since 0.1.0
 */
export const layerFromConfig = (
  options: Omit<Database.Options, "url"> = {}
): Layer.Layer<
  SqlRunStore | RunStore.RunStore | Database.Database | SqlClient.SqlClient,
  MigrationError | SqlError | RunStore.StoreUnavailable | Database.DatabaseError | Config.ConfigError
> => Layer.provideMerge(layer, Database.layerFromConfig(options))
