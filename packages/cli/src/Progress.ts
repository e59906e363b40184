/**
 * Live progress of a run: a line per node as it starts and as it ends (reused and cutoff nodes
 * marked, with the planner's reasons), then a one-line summary.
 *
 * **Details**
 *
 * On a terminal the lines carry colours and symbols; otherwise (a pipe, a file, CI) they are plain
 * text without escape codes, one event per line, so they can be grepped.
 *
 * @since 0.1.0
 */
import type { Snapshot, Workflow } from "@ripple/core"
import type { RunEvent, RunStatus } from "@ripple/runtime"
import type { Awaited } from "./commands/Awaiting.ts"

/**
 * How lines are rendered: `tty` (colours, symbols) or `plain`.
 *
 * @since 0.1.0
 */
export type Style = "tty" | "plain"

/**
 * Counts kept while a run is followed, for the summary.
 *
 * @since 0.1.0
 */
export interface Tally {
  executed: number
  reused: number
  cutoff: number
  skipped: number
  failed: number
}

const colour = (style: Style, code: number, text: string) => style === "tty" ? `\u001b[${code}m${text}\u001b[0m` : text
const green = (style: Style, text: string) => colour(style, 32, text)
const red = (style: Style, text: string) => colour(style, 31, text)
const cyan = (style: Style, text: string) => colour(style, 36, text)
const dim = (style: Style, text: string) => colour(style, 2, text)
const yellow = (style: Style, text: string) => colour(style, 33, text)

/**
 * Whether a reused node was kept because a re-executed upstream produced the same output.
 *
 * @since 0.1.0
 */
export const isCutoff = (reasons: ReadonlyArray<string>): boolean => reasons.some((reason) => reason.startsWith("cutoff"))

/**
 * A duration for humans: `850 ms`, `2.4 s`.
 *
 * @since 0.1.0
 */
export const duration = (ms: number): string => ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`

/**
 * A follower of one run's events: returns the line an event prints (or `undefined`) and keeps the tally.
 *
 * @since 0.1.0
 */
export const follower = (style: Style) => {
  const started = new Map<string, number>()
  const tally: Tally = { executed: 0, reused: 0, cutoff: 0, skipped: 0, failed: 0 }
  const tty = style === "tty"
  const line = (event: RunEvent.RunEvent): string | undefined => {
    switch (event._tag) {
      case "RunStarted":
        return tty ? `${cyan(style, "▶")} run ${event.runId} (${event.mode})` : `run ${event.runId} started (${event.mode})`
      case "NodeStarted":
        started.set(event.node, event.at)
        return tty
          ? `  ${dim(style, "…")} ${event.node}${event.attempt > 1 ? dim(style, ` attempt ${event.attempt}`) : ""}`
          : `node ${event.node} started${event.attempt > 1 ? ` (attempt ${event.attempt})` : ""}`
      case "NodeCompleted": {
        tally.executed++
        const took = duration(event.at - (started.get(event.node) ?? event.at))
        const decision = event.decision === undefined ? "" : ` -> ${event.decision}`
        return tty
          ? `  ${green(style, "✓")} ${event.node}${decision} ${dim(style, took)}`
          : `node ${event.node} completed${decision} in ${took}`
      }
      case "NodeReused": {
        tally.reused++
        const cutoff = isCutoff(event.reasons)
        if (cutoff) tally.cutoff++
        const why = event.reasons.length === 0 ? "" : ` (${event.reasons.join("; ")})`
        const from = event.from === undefined ? "" : ` from ${event.from}`
        return tty
          ? `  ${cyan(style, cutoff ? "✂" : "↺")} ${event.node} ${dim(style, `${cutoff ? "reused by cutoff" : "reused"}${from}${why}`)}`
          : `node ${event.node} ${cutoff ? "reused by cutoff" : "reused"}${from}${why}`
      }
      case "NodeFailed":
        tally.failed++
        return tty
          ? `  ${red(style, "✗")} ${event.node} ${red(style, event.error.message)}`
          : `node ${event.node} failed (attempt ${event.attempt}): ${event.error.message}`
      case "NodeDormant":
        return tty
          ? `  ${yellow(style, "⏸")} ${event.node} ${yellow(style, `waiting (${event.reason})`)}`
          : `node ${event.node} waiting (${event.reason})`
      case "NodeSkipped":
        tally.skipped++
        return tty ? `  ${dim(style, `· ${event.node} skipped (branch not taken)`)}` : `node ${event.node} skipped (branch not taken)`
      default:
        return undefined
    }
  }
  return { line, tally }
}

/**
 * What a run's plan pruned: `3 pruned`, then the pruned nodes whose last known state was failed
 * (a full run would have failed on them) with the run they failed in.
 *
 * @since 0.1.0
 */
export const pruned = (style: Style, pruned: Snapshot.Pruned): string => {
  const failed = pruned.failed.map((f) => f.run === undefined ? f.node : `${f.node} in ${f.run}`)
  return `${pruned.count} pruned` + (failed.length === 0 ? "" : ` (${yellow(style, `last known failed: ${failed.join(", ")}`)})`)
}

/**
 * The one-line summary printed when a run stops executing (with what its plan pruned, if anything).
 *
 * @since 0.1.0
 */
export const summary = (
  style: Style,
  runId: string,
  status: RunStatus.Status,
  tally: Tally,
  elapsedMs: number,
  prunedNodes?: Snapshot.Pruned | undefined
): string => {
  const counts = `${tally.executed} executed, ${tally.reused} reused${tally.cutoff > 0 ? ` (${tally.cutoff} by cutoff)` : ""}, ` +
    `${tally.skipped} skipped, ${tally.failed} failed${prunedNodes === undefined ? "" : `, ${pruned(style, prunedNodes)}`}`
  const paint = status === "completed" ? green : status === "paused" || status === "suspended" ? yellow : red
  return style === "tty"
    ? `${paint(style, "■")} run ${runId} ${paint(style, status)} in ${duration(elapsedMs)}: ${counts}`
    : `run ${runId} ${status} in ${duration(elapsedMs)}: ${counts}`
}

/**
 * What a dormant run awaits (`Awaiting.of`) as lines: each with the command that continues it; an
 * approval with what is to be approved (`params`, cut to a line unless `full`).
 *
 * @since 0.1.0
 */
export const awaiting = (items: ReadonlyArray<Awaited>, full = false): ReadonlyArray<string> =>
  items.flatMap((item) => {
    const what = item.kind === "approval"
      ? `approval of ${item.node}`
      : item.kind === "signal"
      ? `signal ${item.signal}`
      : item.kind === "pause"
      ? `an unpause at ${item.node}`
      : item.kind === "sleep"
      ? `a timer due ${new Date(item.until!).toISOString()}`
      : `its end (${item.status})`
    const head = item.through.length === 0
      ? item.kind === "pause" ? `  paused at ${item.node}` : item.kind === "sleep" ? `  sleeping until ${new Date(item.until!).toISOString()}` : `  awaiting ${what}`
      : `  awaiting child run ${item.through.join(" > ")}, which awaits ${what}`
    const params = item.kind === "approval" && item.params !== undefined
      ? [`    to approve: ${jsonValue(item.params, full).replaceAll("\n", "\n    ")}`]
      : []
    return [`${head}: ${item.command}`, ...params]
  })

const limit = 160

/**
 * A JSON value for a human: compact and cut to one line of ~160 characters (saying how long it
 * is), or indented and whole with `full`.
 *
 * @since 0.1.0
 */
export const jsonValue = (json: Workflow.Json | undefined, full: boolean): string => {
  if (json === undefined) return "-"
  if (full) return JSON.stringify(json, null, 2)
  const text = JSON.stringify(json)
  return text.length <= limit ? text : `${text.slice(0, limit)}… (${text.length} characters; --full prints all)`
}
