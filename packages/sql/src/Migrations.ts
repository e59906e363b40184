/**
 * The schema Ripple persists to, as effect/sql migrations kept in code: applied on start, once per
 * database (the Migrator records what it applied and serialises concurrent starts).
 *
 * **Details**
 *
 * - `ripple_workflow_versions`: frozen, content-addressed workflow versions (never updated).
 * - `ripple_runs`: one row per run with its persisted `RunStatus` machine, diagnostics columns that
 *   only move forward, the lease (owner, expiry, generation, granting token) of whoever executes the run, which
 *   fences its writes, pending pause and cancel requests, and what a run-from's plan pruned.
 * - `ripple_journal`: one row per (run, node): the node record of the run's snapshot.
 * - `ripple_scopes`: loop and parallel instances of a run (the snapshot's `loops` / `parallels`).
 * - `ripple_deliveries`: signals and approval decisions kept for a run until a node consumes them,
 *   and unpause requests kept until the run settles `paused` (a newer pause request drops one);
 *   at most one kept per (run, kind, name), so delivering twice is idempotent.
 * - `ripple_latest`: the latest finished run per (workflow, trigger).
 *
 * Columns holding user values (a workflow's definition, run input, node inputs and output, loop and
 * parallel scopes, delivery payloads) are `json`, not `jsonb`: `json` keeps the text as written,
 * object key order included, where `jsonb` would reorder keys.
 *
 * Every query of `SqlRunStore` and `Worker` has an index: primary keys for lookups by id, and the
 * partial indexes below for claiming, waking and dashboards.
 *
 * @since 0.1.0
 */
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import { storeUnavailable } from "./internal/errors.ts"
import { failing } from "./internal/transact.ts"

/**
 * The table the Migrator records applied migrations in.
 *
 * @since 0.1.0
 */
export const table = "ripple_migrations"

const initial = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE ripple_workflow_versions (
    version text PRIMARY KEY,
    workflow_id text NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`
  yield* sql`CREATE TABLE ripple_runs (
    id text PRIMARY KEY,
    seq bigserial NOT NULL,
    workflow_id text NOT NULL,
    version text NOT NULL REFERENCES ripple_workflow_versions (version),
    mode text NOT NULL CHECK (mode IN ('full', 'run-from', 'resume')),
    source_run text,
    target text,
    trigger text,
    input jsonb NOT NULL,
    status text NOT NULL,
    machine jsonb NOT NULL,
    revision bigint NOT NULL DEFAULT 0,
    error text,
    last_started_node text,
    last_started_at double precision,
    last_completed_node text,
    last_completed_at double precision,
    finalization text,
    messages jsonb NOT NULL DEFAULT '[]',
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    queued boolean NOT NULL DEFAULT FALSE,
    lease_owner text,
    lease_expires_at timestamptz,
    lease_generation bigint NOT NULL DEFAULT 0,
    wake_at double precision,
    awaited_signals text[] NOT NULL DEFAULT '{}',
    awaited_approvals text[] NOT NULL DEFAULT '{}'
  )`
  // Claiming: queued runs that still have work, oldest first (their leases are checked on the row).
  yield* sql`CREATE INDEX ripple_runs_claimable ON ripple_runs (seq)
    WHERE queued AND status IN ('pending', 'running')`
  // Waking sleepers.
  yield* sql`CREATE INDEX ripple_runs_dormant ON ripple_runs (wake_at) WHERE status IN ('suspended', 'paused')`
  // Dashboards and latest-run lookups by workflow.
  yield* sql`CREATE INDEX ripple_runs_workflow ON ripple_runs (workflow_id, status)`
  // Orders a run's rows by their last write (the snapshot lists waits and pauses in that order).
  yield* sql`CREATE SEQUENCE ripple_journal_written`
  yield* sql`CREATE TABLE ripple_journal (
    run_id text NOT NULL REFERENCES ripple_runs (id) ON DELETE CASCADE,
    node text NOT NULL,
    status text NOT NULL,
    attempt integer NOT NULL,
    inputs jsonb,
    output jsonb,
    fingerprints jsonb NOT NULL,
    decision text,
    error jsonb,
    started_at double precision,
    finished_at double precision,
    reused_from text,
    reasons jsonb,
    dormancy jsonb,
    written bigint NOT NULL DEFAULT nextval('ripple_journal_written'),
    PRIMARY KEY (run_id, node)
  )`
  // "How many runs are at each block": running journal rows only.
  yield* sql`CREATE INDEX ripple_journal_running ON ripple_journal (node) WHERE status = 'running'`
  yield* sql`CREATE TABLE ripple_scopes (
    run_id text NOT NULL REFERENCES ripple_runs (id) ON DELETE CASCADE,
    scope text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('loop', 'parallel')),
    value jsonb NOT NULL,
    PRIMARY KEY (run_id, scope)
  )`
  yield* sql`CREATE TABLE ripple_deliveries (
    seq bigserial PRIMARY KEY,
    run_id text NOT NULL REFERENCES ripple_runs (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('signal', 'approval')),
    name text NOT NULL,
    payload jsonb NOT NULL,
    at double precision NOT NULL,
    consumed_at timestamptz
  )`
  // At most one kept (unconsumed) delivery per run, kind and name: delivering twice keeps one.
  yield* sql`CREATE UNIQUE INDEX ripple_deliveries_kept ON ripple_deliveries (run_id, kind, name)
    WHERE consumed_at IS NULL`
  yield* sql`CREATE TABLE ripple_latest (
    workflow_id text NOT NULL,
    trigger_key text NOT NULL,
    run_id text NOT NULL REFERENCES ripple_runs (id) ON DELETE CASCADE,
    created_at double precision NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (workflow_id, trigger_key)
  )`
})

// The saga compensation log (issue 9): one row per compensated node instance, in log order.
const compensations = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE ripple_compensations (
    run_id text NOT NULL REFERENCES ripple_runs (id) ON DELETE CASCADE,
    node text NOT NULL,
    seq integer NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    error text,
    at double precision NOT NULL,
    PRIMARY KEY (run_id, node)
  )`
})

// Child runs (issue 9): the parent run and node that started a run.
const childRuns = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_runs ADD COLUMN parent_run text REFERENCES ripple_runs (id) ON DELETE CASCADE,
    ADD COLUMN parent_node text`
  yield* sql`CREATE INDEX ripple_runs_parent ON ripple_runs (parent_run) WHERE parent_run IS NOT NULL`
})

// Pause requests (issue 8): asked for by any process, seen by the executing one with its next journal write.
const pauseRequests = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_runs ADD COLUMN pause_requested_at double precision`
})

// Leases on every run (issue 13): expiry on the callers' clocks (epoch ms, like every other time
// here), so any process compares it with the `at` it passes; and cancel requests, seen by the
// executing process with its next journal write.
const leases = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_runs
    ALTER COLUMN lease_expires_at TYPE double precision USING extract(epoch FROM lease_expires_at) * 1000,
    ADD COLUMN cancel_requested_at double precision`
})

// Values read back exactly as written (DESIGN.md, "Values round-trip"): `jsonb` reorders object
// keys, `json` keeps the text. Only columns holding user values change; rows written before keep
// the key order `jsonb` gave them.
const exactJson = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_workflow_versions ALTER COLUMN definition TYPE json USING definition::json`
  yield* sql`ALTER TABLE ripple_runs ALTER COLUMN input TYPE json USING input::json`
  yield* sql`ALTER TABLE ripple_journal ALTER COLUMN inputs TYPE json USING inputs::json,
    ALTER COLUMN output TYPE json USING output::json`
  yield* sql`ALTER TABLE ripple_scopes ALTER COLUMN value TYPE json USING value::json`
  yield* sql`ALTER TABLE ripple_deliveries ALTER COLUMN payload TYPE json USING payload::json`
})

// Pruning (issue 14): what a run-from's plan pruned and which pruned nodes failed last time.
const prunedNodes = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_runs ADD COLUMN pruned jsonb`
})

// Lease grants marked with the granting call's token (issue 13): an `acquire` or a worker's claim
// sent again after a lost connection recognises the leases its first attempt was granted.
const leaseTokens = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_runs ADD COLUMN lease_token text`
})

// Change notifications (`RunStore.watch`): a run row whose status, machine or lease holder
// changes notifies `ripple_run_changes` with its id when the writer commits, whichever statement
// wrote it; lease renewals and journal marks do not.
const runChanges = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE FUNCTION ripple_run_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('ripple_run_changes', NEW.id);
      RETURN NULL;
    END $$`)
  yield* sql.unsafe(`CREATE TRIGGER ripple_run_changed AFTER UPDATE ON ripple_runs FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.revision IS DISTINCT FROM OLD.revision
      OR NEW.lease_owner IS DISTINCT FROM OLD.lease_owner OR NEW.lease_generation IS DISTINCT FROM OLD.lease_generation)
    EXECUTE FUNCTION ripple_run_changed()`)
})

// Run to a block and pinned outputs (issue 16): a run's destination and pins, planned again with
// them when the run is resumed or claimed by a worker.
const runOptions = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_runs ADD COLUMN destination text, ADD COLUMN pins json`
})

// A machine write's token (transitions.ts): a write sent again after a lost connection recognises
// its own committed first attempt by it, where comparing machines took another writer's identical
// write for its own (two branches starting at once) and lost an update.
const machineTokens = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_runs ADD COLUMN machine_token text`
})

// Unpause requests kept as deliveries (`RunStore.DeliveryKind`): an unpause asked for before the
// run settled `paused` wakes it once it does.
const unpauseDeliveries = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_deliveries DROP CONSTRAINT ripple_deliveries_kind_check,
    ADD CONSTRAINT ripple_deliveries_kind_check CHECK (kind IN ('signal', 'approval', 'unpause'))`
})

// Delivery tokens: `deliver` marks the delivery it keeps with its call's token, and a journal write
// the deliveries it consumes with its own, so either, sent again after a lost connection (a
// terminated backend), recognises its committed first attempt: `deliver` reports it kept, the
// journal write consumes nothing more (a delivery of the same name may have arrived since).
const deliveryTokens = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE ripple_deliveries ADD COLUMN token text, ADD COLUMN consumed_by text`
  yield* sql`CREATE INDEX ripple_deliveries_token ON ripple_deliveries (token) WHERE token IS NOT NULL`
  yield* sql`CREATE INDEX ripple_deliveries_consumed_by ON ripple_deliveries (consumed_by) WHERE consumed_by IS NOT NULL`
})

// Dormant queued runs asked to cancel: a worker claims them to end them (the process that asked
// went away before it could), found without reading every dormant run.
const dormantCancels = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX ripple_runs_dormant_cancel ON ripple_runs (seq)
    WHERE queued AND cancel_requested_at IS NOT NULL AND status IN ('suspended', 'paused')`
})

/**
 * Every migration, by id.
 *
 * @since 0.1.0
 */
export const migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> = {
  "1_initial": initial,
  "2_compensations": compensations,
  "3_child_runs": childRuns,
  "4_pause_requests": pauseRequests,
  "5_leases": leases,
  "6_exact_json": exactJson,
  "7_pruned_nodes": prunedNodes,
  "8_lease_tokens": leaseTokens,
  "9_run_changes": runChanges,
  "10_run_options": runOptions,
  "11_machine_tokens": machineTokens,
  "12_unpause_deliveries": unpauseDeliveries,
  "13_delivery_tokens": deliveryTokens,
  "14_dormant_cancels": dormantCancels
}

// A failure of the migrator that a retry may get past: its database error (its own, or a
// migration's) classified as every statement of the store is, when that is retryable.
const transient = (error: Migrator.MigrationError | SqlError): RunStore.StoreUnavailable | undefined => {
  const cause = error._tag === "SqlError" ? error : error.kind === "Failed" && isSqlError(error.cause) ? error.cause : undefined
  const unavailable = cause === undefined ? undefined : storeUnavailable(cause, "migrate")
  return unavailable?.isRetryable === true ? unavailable : undefined
}

const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table })

/**
 * Applies the pending migrations (idempotent); returns the ids and names it applied.
 *
 * **Details**
 *
 * Every process that opens the store runs this first, so a transient fault here (a lost
 * connection, a serialization failure) is retried under `RunStore.RetryPolicy` like every
 * statement of the store: the migrations are one transaction, and the migrator skips what a
 * committed first attempt applied. A fault that outlasts the retries fails with
 * `RunStore.StoreUnavailable`; any other error as the migrator reports it.
 *
 * @since 0.1.0
 */
export const run: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError | RunStore.StoreUnavailable,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const attempt = Effect.catch(failing(migrate), (error) => Effect.fail(transient(error) ?? error))
  return yield* RunStore.retry(attempt, { policy: yield* RunStore.RetryPolicy, replayable: true })
})
