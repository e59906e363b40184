/**
 * Turns whatever PGlite throws into an effect/sql `SqlError` whose reason follows the SQLSTATE,
 * so callers can match `UniqueViolation`, `SerializationError`, ... the same way on both backends;
 * and any `SqlError`, from either backend, into the store's `RunStore.StoreUnavailable`.
 */
import { RunStore } from "@ripple/runtime"
import {
  AuthorizationError,
  ConnectionError,
  ConstraintError,
  DeadlockError,
  LockTimeoutError,
  SerializationError,
  SqlError,
  type SqlErrorReason,
  SqlSyntaxError,
  StatementTimeoutError,
  UniqueViolation,
  UnknownError
} from "effect/sql/SqlError"
import * as Data from "effect/Data"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as DirectoryLock from "../DirectoryLock.ts"

interface Props {
  readonly cause: unknown
  readonly message: string
  readonly operation: string
}

const field = (cause: unknown, name: string): string | undefined => {
  if (typeof cause !== "object" || cause === null) return undefined
  const value = (cause as Record<string, unknown>)[name]
  return typeof value === "string" && value.length > 0 ? value : undefined
}

const reasonOf = (code: string | undefined, constraint: string | undefined, props: Props): SqlErrorReason => {
  if (code === undefined) return new UnknownError(props)
  if (code.startsWith("08")) return new ConnectionError(props)
  if (code === "42501") return new AuthorizationError(props)
  if (code.startsWith("42")) return new SqlSyntaxError(props)
  if (code === "23505") return new UniqueViolation({ ...props, constraint: constraint ?? "unknown" })
  if (code.startsWith("23")) return new ConstraintError(props)
  if (code === "40P01") return new DeadlockError(props)
  if (code === "40001") return new SerializationError(props)
  if (code === "55P03") return new LockTimeoutError(props)
  if (code === "57014") return new StatementTimeoutError(props)
  return new UnknownError(props)
}

/** The `SqlError` for a failed PGlite call made by `operation`. */
export const sqlError = (cause: unknown, operation: string): SqlError => {
  const detail = field(cause, "message") ?? String(cause)
  const props: Props = { cause, message: `PGlite: ${detail}`, operation }
  return new SqlError({ reason: reasonOf(field(cause, "code"), field(cause, "constraint"), props) })
}

/** A `SqlError` raised by this adapter itself (no PGlite call failed). */
export const adapterError = (message: string, operation: string): SqlError =>
  new SqlError({ reason: new UnknownError({ cause: new Error(message), message, operation }) })

// Below this much free space PGlite cannot start (it writes WAL while it opens) nor grow its WAL.
const lowSpace = 32 * 1024 * 1024

// Bytes free (for this user) on the file system holding `path` or its nearest existing ancestor.
const freeBytes = (path: string): number | undefined => {
  for (let current = path; ; current = Path.dirname(current)) {
    try {
      const stats = Fs.statfsSync(current)
      return stats.bavail * stats.bsize
    } catch {
      if (Path.dirname(current) === current) return undefined
    }
  }
}

const mebibytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

// The error codes of a folder the user may not write in: a read-only or pseudo file system (which
// also reports no free space, hence checked before the space).
const notWritable = new Set(["EACCES", "EPERM", "EROFS"])

/**
 * Why a data directory could not be opened, from what was `reported`: a folder the user may not
 * write in, and a full disk, are named as such (PGlite itself only says that it "failed to
 * initialize properly").
 */
export const openDetail = (cause: unknown, dataDir: string, reported: string): string => {
  const code = field(cause, "code")
  // `makeDirectory` creates each parent first, so an ENOENT from mkdir is a file system that refuses
  // new folders (procfs), not a missing parent.
  const refusedFolder = code === "ENOENT" && field(cause, "syscall") === "mkdir"
  if (refusedFolder || (code !== undefined && notWritable.has(code))) return `it is not writable (${reported})`
  const free = (cause instanceof DirectoryLock.DirectoryLockError && cause.reason._tag === "InUse") || cause instanceof NoDatabase ||
      cause instanceof ForeignFolder
    ? undefined
    : freeBytes(dataDir)
  return free !== undefined && free < lowSpace ? `its disk is full (${mebibytes(free)} free; ${reported})` : reported
}

/** The `SqlError` for a data directory PGlite cannot open; a `DirectoryLockError` stays the reason's cause. */
export const openError = (cause: unknown, dataDir: string): SqlError => {
  const errno = (cause as { readonly errno?: unknown } | undefined)?.errno
  const reported = field(cause, "message") ?? field(cause, "code") ??
    (typeof errno === "number" ? `filesystem error (errno ${errno})` : String(cause))
  const detail = openDetail(cause, dataDir, reported)
  const message = `Cannot open the PGlite data directory ${dataDir}: ${detail}. Fix: ${openFix(cause, dataDir)}.`
  return new SqlError({ reason: new ConnectionError({ cause, message, operation: "open" }) })
}

/** A data directory holding no database, opened by a client told not to create one. */
export class NoDatabase extends Data.TaggedError("NoDatabase")<{ readonly dataDir: string }> {
  override get message(): string {
    return Fs.existsSync(this.dataDir) ? "it holds no database" : "it does not exist"
  }
}

/** A data directory that holds files but no PostgreSQL data directory: a new database needs an empty folder. */
export class ForeignFolder extends Data.TaggedError("ForeignFolder")<{ readonly dataDir: string }> {
  override get message(): string {
    return "it is not empty and holds no PostgreSQL data directory"
  }
}

// The nearest existing path at or above `path` when it is a file: what keeps a folder from being there.
const fileInTheWay = (path: string): string | undefined => {
  for (let current = path; ; current = Path.dirname(current)) {
    const stat = Fs.statSync(current, { throwIfNoEntry: false })
    if (stat !== undefined) return stat.isDirectory() ? undefined : current
    if (Path.dirname(current) === current) return undefined
  }
}

/**
 * What to do about a data directory that could not be opened. It never advises deleting the
 * directory: one that fails to open (a full disk, a live owner) usually holds intact runs.
 */
export const openFix = (cause: unknown, dataDir: string): string => {
  if (cause instanceof NoDatabase) {
    return `run a workflow first to create the database there (ripple run <workflow.json>), or point --data-dir ` +
      `at the folder of an existing one, or use a PostgreSQL server (--db or DATABASE_URL)`
  }
  if (cause instanceof ForeignFolder) {
    return `${dataDir} holds other files: point --data-dir at a new or empty folder to create a database, or at the ` +
      `folder of an existing Ripple database; or use a PostgreSQL server (--db or DATABASE_URL)`
  }
  if (cause instanceof DirectoryLock.DirectoryLockError) {
    const reason = cause.reason
    switch (reason._tag) {
      case "InUse":
        return `wait for process ${reason.pid} to finish or stop it (\`ripple worker\` stops on Ctrl-C), ` +
          `or use another data directory; to share runs between processes, set DATABASE_URL to a PostgreSQL server`
      case "UnreadableLock":
        return `if no Ripple process uses ${dataDir}, remove the lock file ${reason.file} (only that file: the data stays intact)`
      case "FileSystem":
        break
    }
  }
  const file = fileInTheWay(dataDir)
  if (file !== undefined) return `${file} is a file, not a folder: point --data-dir at a folder (a missing one is created)`
  return `check that ${dataDir} is writable and that its disk has free space (at least ${mebibytes(lowSpace)}), ` +
    `then try again; keep the folder, it may hold runs: to check it without writing to it, copy it ` +
    `(cp -a ${dataDir} ${dataDir}-check) and open the copy (ripple runs --data-dir ${dataDir}-check); ` +
    `a new database needs an empty folder, or set DATABASE_URL to use a PostgreSQL server`
}

/** The `SqlError` for a channel name that is not portable across both backends. */
export const invalidChannel = (channel: string, operation: string): SqlError =>
  adapterError(
    `Invalid channel name ${JSON.stringify(channel)}: use a lower-case identifier of at most 63 characters`,
    operation
  )

// effect/sql classifies 40001, 40P01 and class 08 itself; admin shutdown and "busy" it leaves
// `UnknownError`, so the SQLSTATE (PgClient and PGlite both keep it on the cause as `code`) decides.
const storeReasonOf = (error: SqlError): RunStore.StoreUnavailableReason => {
  const code = field(error.reason.cause, "code")
  const props = { message: field(error.reason.cause, "message") ?? error.message, code, cause: error }
  switch (error.reason._tag) {
    case "SerializationError":
      return new RunStore.SerializationFailure(props)
    case "DeadlockError":
      return new RunStore.Deadlock(props)
    case "ConnectionError":
      return new RunStore.ConnectionLost(props)
    case "LockTimeoutError":
      return new RunStore.DatabaseBusy(props)
  }
  if (code === "57P01" || code === "57P02" || code === "57P03") return new RunStore.AdminShutdown(props)
  if (code === "53300" || code === "EBUSY") return new RunStore.DatabaseBusy(props)
  return new RunStore.StoreFailure(props)
}

/** The store error for a `SqlError` of store operation `operation`: retryable or not by its SQLSTATE. */
export const storeUnavailable = (error: SqlError, operation: string): RunStore.StoreUnavailable =>
  new RunStore.StoreUnavailable({ reason: storeReasonOf(error), operation })
