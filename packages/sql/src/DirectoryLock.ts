/**
 * An exclusive lock on a directory held through files in it, so that one process (and one client
 * in it) at a time opens an embedded data directory; a lock left by a dead process is taken over.
 *
 * **Details**
 *
 * PGlite lets any number of instances open one directory and then corrupts it, and Node offers no
 * OS file lock (`flock`), so the lock is made of files, using only the two atomic operations POSIX
 * file systems give: creating a name that must not exist (`link`, failing with `EEXIST`), and
 * replacing a name (`rename`). Every file is written completely under a private name first and then
 * published by one of those, so no reader ever sees a half-written owner.
 *
 * - `ripple.lock` names the owner: `{"pid", "host", "nonce"}` (a fresh random nonce per
 *   acquisition, so one lock instance is never mistaken for another).
 * - `ripple.lock.<nonce>.owner` is a contender's private copy of its own owner record.
 * - `ripple.lock.<nonce>.takeover` is a claim: whoever creates it (exclusively) holds the right to
 *   replace the lock, or to act for the dead claimant, whose nonce it names.
 *
 * Acquiring:
 * 1. `link(own, ripple.lock)`: success means the directory is ours.
 * 2. Otherwise read the owner. A live owner (or one on another host, which cannot be checked) is
 *    refused with its pid. A dead one is taken over in a second atomic step:
 * 3. `link(own, <dead>.takeover)`. If that claim exists and its claimant is alive, that process is
 *    taking the directory over: wait and start again (it will own the lock, or give up). If the
 *    claimant is dead, claim `<claimant>.takeover` instead, and so on down the chain.
 * 4. Holding a claim, re-read `ripple.lock`: only if it still names the dead owner we started from
 *    do we `rename(own, ripple.lock)`; otherwise drop our claim and start again.
 *
 * Why two racers can never both win, interleaving by interleaving:
 * - Both find no lock: `link` lets exactly one create it; the other reads a live owner and is refused.
 * - Both find the same dead owner D: exactly one creates `D.takeover`; the other finds a live
 *   claimant, waits, and then finds the winner's live lock.
 * - A slow racer that read D long ago creates `D.takeover` after the winner has replaced D and
 *   dropped its claim: its re-read (step 4) finds the winner's lock, not D, so it renames nothing.
 *   Nonces are never reused, so D never comes back.
 * - The lock's content changes only by `link` while it is absent, by its living owner's release, or by
 *   a `rename` of the one live holder of D's claim chain (each link of the chain is created
 *   exclusively, and a link is extended only past a dead claimant, which never acts again). So
 *   between that holder's re-read (step 4) and its `rename`, nobody else can change the lock.
 * - A claimant that dies after its `rename` leaves a lock naming a dead owner: the next contender
 *   takes that over like any stale lock. One that dies before leaves its claim, and the chain
 *   (step 3) passes its right on.
 * - Claims naming anything but the current lock are inert (their holders' re-read fails), so the
 *   new owner removes them, and the private copies of dead processes.
 *
 * Gotchas: liveness is `kill(pid, 0)` on this host, so a pid reused by an unrelated process keeps a
 * stale lock "in use" until that process ends; a lock written on another host is always in use.
 * A lock holding only a pid (written by Ripple before 0.2) is read as an owner on this host.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * The lock file's name inside the locked directory.
 *
 * @since 0.1.0
 */
export const lockFile = "ripple.lock"

/**
 * Whether a directory entry belongs to the lock (the lock, a claim, or a contender's copy).
 *
 * @since 0.1.0
 */
export const isLockEntry = (name: string): boolean => name === lockFile || name.startsWith(`${lockFile}.`)

/**
 * Who holds (or claims) a lock.
 *
 * @since 0.1.0
 */
export interface Owner {
  readonly pid: number
  readonly host: string
  readonly nonce: string
}

/**
 * The lock is held by a live process (`pid` on `host`), possibly this one.
 *
 * @since 0.1.0
 */
export class InUse extends Data.TaggedClass("InUse")<{ readonly pid: number; readonly host: string }> {}

/**
 * A lock file names no owner (it was not written by Ripple), so nothing can tell whether it is stale.
 *
 * @since 0.1.0
 */
export class UnreadableLock extends Data.TaggedClass("UnreadableLock")<{ readonly file: string; readonly content: string }> {}

/**
 * The file system refused an operation on the lock's files (permissions, a full disk, ...).
 *
 * @since 0.1.0
 */
export class FileSystem extends Data.TaggedClass("FileSystem")<{ readonly operation: string; readonly cause: unknown }> {}

/**
 * Why a directory could not be locked.
 *
 * @since 0.1.0
 */
export type Reason = InUse | UnreadableLock | FileSystem

/**
 * A directory could not be locked; `reason` says why.
 *
 * @since 0.1.0
 */
export class DirectoryLockError extends Data.TaggedError("DirectoryLockError")<{
  readonly directory: string
  readonly reason: Reason
}> {
  override get message(): string {
    const reason = this.reason
    switch (reason._tag) {
      case "InUse":
        return `in use by pid ${reason.pid}${reason.host === Os.hostname() ? "" : ` on host ${reason.host}`}` +
          (reason.pid === process.pid && reason.host === Os.hostname() ? " (another client of this process)" : "")
      case "UnreadableLock":
        return `the lock ${reason.file} names no owner (${JSON.stringify(reason.content.slice(0, 80))})`
      case "FileSystem": {
        const cause = reason.cause as { readonly message?: unknown } | undefined
        return `cannot ${reason.operation}: ${typeof cause?.message === "string" ? cause.message : String(reason.cause)}`
      }
    }
  }
}

/**
 * A held lock.
 *
 * @since 0.1.0
 */
export interface DirectoryLock {
  readonly directory: string
  readonly owner: Owner
}

/**
 * Whether `owner` may still be using the lock: a process on another host cannot be checked, so it is.
 *
 * @since 0.1.0
 */
export const isAlive = (owner: Pick<Owner, "pid" | "host">): boolean => {
  if (owner.host !== Os.hostname()) return true
  try {
    process.kill(owner.pid, 0)
    return true
  } catch (error) {
    return codeOf(error) === "EPERM"
  }
}

const codeOf = (error: unknown): unknown => (error as { readonly code?: unknown } | undefined)?.code

const legacyPid = /^\d+$/

// `undefined` for a file that vanished (its owner released it meanwhile), `null` for one naming no owner.
const readOwner = (file: string): Owner | null | undefined => {
  let text: string
  try {
    text = Fs.readFileSync(file, "utf8")
  } catch (error) {
    if (codeOf(error) === "ENOENT") return undefined
    throw error
  }
  const trimmed = text.trim()
  if (legacyPid.test(trimmed)) return { pid: Number(trimmed), host: Os.hostname(), nonce: `pid-${trimmed}` }
  try {
    const parsed = JSON.parse(trimmed) as Partial<Owner>
    if (
      Number.isSafeInteger(parsed.pid) && parsed.pid! > 0 && typeof parsed.host === "string" &&
      typeof parsed.nonce === "string" && /^[\w-]+$/.test(parsed.nonce)
    ) return { pid: parsed.pid!, host: parsed.host, nonce: parsed.nonce }
  } catch {
    // Not JSON: reported below like any other content naming no owner.
  }
  return null
}

// `link` publishes a complete file under a name that must not exist yet: false when it does.
const created = (from: string, to: string): boolean => {
  try {
    Fs.linkSync(from, to)
    return true
  } catch (error) {
    if (codeOf(error) === "EEXIST") return false
    throw error
  }
}

const remove = (file: string): void => Fs.rmSync(file, { force: true })

type Step =
  | { readonly _tag: "Acquired" }
  | { readonly _tag: "Again" }
  | { readonly _tag: "Wait"; readonly claimant: Owner }
  | { readonly _tag: "Refused"; readonly reason: Reason }

const acquired: Step = { _tag: "Acquired" }
const again: Step = { _tag: "Again" }

const makeAttempt = (directory: string, own: string) => {
  const lock = Path.join(directory, lockFile)
  const claimOf = (nonce: string) => Path.join(directory, `${lockFile}.${nonce}.takeover`)

  // Step 3-4: claim the right held by `holder` (the dead owner `stale` itself, or a dead claimant).
  const takeOver = (stale: Owner, holder: Owner): Step => {
    const claim = claimOf(holder.nonce)
    if (!created(own, claim)) {
      const claimant = readOwner(claim)
      if (claimant === undefined) return again
      if (claimant === null) return { _tag: "Refused", reason: new UnreadableLock({ file: claim, content: Fs.readFileSync(claim, "utf8") }) }
      return isAlive(claimant) ? { _tag: "Wait", claimant } : takeOver(stale, claimant)
    }
    const current = readOwner(lock)
    if (current?.nonce !== stale.nonce) {
      remove(claim)
      return again
    }
    Fs.renameSync(own, lock)
    return acquired
  }

  return (): Step => {
    if (created(own, lock)) return acquired
    const owner = readOwner(lock)
    if (owner === undefined) return again
    if (owner === null) return { _tag: "Refused", reason: new UnreadableLock({ file: lock, content: Fs.readFileSync(lock, "utf8") }) }
    if (isAlive(owner)) return { _tag: "Refused", reason: new InUse({ pid: owner.pid, host: owner.host }) }
    return takeOver(owner, owner)
  }
}

// What dead contenders left: claims on anything but our own lock are inert (see the module notes).
const sweep = (directory: string, owner: Owner): void => {
  for (const name of Fs.readdirSync(directory)) {
    if (!isLockEntry(name) || name === lockFile || name.startsWith(`${lockFile}.${owner.nonce}.`)) continue
    const file = Path.join(directory, name)
    if (name.endsWith(".takeover")) remove(file)
    else if (name.endsWith(".owner")) {
      // An unreadable copy may be one a live contender is still writing.
      const contender = readOwner(file)
      if (contender != null && !isAlive(contender)) remove(file)
    }
  }
}

// A live claimant finishes within a few file operations; how long to let it before reporting it.
const claimWaitMs = 25
const claimWaits = 80
const maxAttempts = 1000

const fileSystem = (directory: string, operation: string) => (cause: unknown) =>
  new DirectoryLockError({ directory, reason: new FileSystem({ operation, cause }) })

/**
 * Takes the lock on `directory` (which must exist), or fails with why not; see `make` for a scoped lock.
 *
 * @since 0.1.0
 */
export const acquire = (directory: string): Effect.Effect<DirectoryLock, DirectoryLockError> =>
  Effect.gen(function*() {
    const owner: Owner = { pid: process.pid, host: Os.hostname(), nonce: Crypto.randomUUID() }
    const own = Path.join(directory, `${lockFile}.${owner.nonce}.owner`)
    yield* Effect.try({
      try: () => Fs.writeFileSync(own, JSON.stringify(owner), { flag: "wx" }),
      catch: fileSystem(directory, `write a lock file in ${directory}`)
    })
    const attempt = makeAttempt(directory, own)
    let waits = 0
    for (let attempts = 0; attempts < maxAttempts; attempts++) {
      const step = yield* Effect.try({ try: attempt, catch: fileSystem(directory, `take the lock ${Path.join(directory, lockFile)}`) })
      if (step._tag === "Acquired") {
        // Leftovers cost nothing but clutter, so failing to sweep them does not fail the acquisition.
        yield* Effect.try(() => {
          remove(own)
          sweep(directory, owner)
        }).pipe(Effect.ignore({ log: true, message: `Sweeping stale lock files of ${directory}` }))
        return { directory, owner }
      }
      if (step._tag === "Refused" || (step._tag === "Wait" && ++waits > claimWaits)) {
        remove(own)
        const reason = step._tag === "Refused" ? step.reason : new InUse({ pid: step.claimant.pid, host: step.claimant.host })
        return yield* new DirectoryLockError({ directory, reason })
      }
      if (step._tag === "Wait") yield* Effect.sleep(claimWaitMs)
    }
    remove(own)
    return yield* fileSystem(directory, `take the lock ${Path.join(directory, lockFile)}`)(
      new Error(`it changed hands ${maxAttempts} times while we tried`)
    )
  })

/**
 * Gives a lock back: removes the lock file if it still names this holder.
 *
 * @since 0.1.0
 */
export const release = (lock: DirectoryLock): Effect.Effect<void> =>
  Effect.try(() => {
    const file = Path.join(lock.directory, lockFile)
    // Nobody else replaces a lock whose owner is alive, so reading then removing is not a race.
    if (readOwner(file)?.nonce === lock.owner.nonce) remove(file)
  }).pipe(Effect.ignore({ log: true, message: `Releasing the lock of ${lock.directory}` }))

/**
 * Holds the lock on `directory` for the life of the scope.
 *
 * @since 0.1.0
 */
export const make = (directory: string): Effect.Effect<DirectoryLock, DirectoryLockError, Scope.Scope> =>
  Effect.acquireRelease(acquire(directory), release)
