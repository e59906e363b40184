/**
 * `ripple show <run> [--node <id>]`: a stored run node by node (status, re-ran or reused and why,
 * duration, attempts, output), its observed outputs and what it awaits; with `--node`, one node's
 * resolved inputs, output, error and attempts.
 *
 * @since 0.1.0
 */
import type { Snapshot } from "@ripple/core"
import { RunView, type RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Problem from "../Problem.ts"
import * as Progress from "../Progress.ts"
import * as Awaiting from "./Awaiting.ts"
import * as Flags from "./Flags.ts"
import * as Output from "./Output.ts"
import { print, printOutputs, printValue, table } from "./Output.ts"
import { continuation, type Session } from "./Session.ts"

const when = (at: number | undefined) => at === undefined ? "-" : new Date(at).toISOString()

// A node journaled `running` in a run nobody executes was stopped before it finished.
const statusOf = (view: RunView.NodeView) => view.interrupted ? "interrupted" : view.status

const how = (view: RunView.NodeView, run: RunStore.Run) =>
  view.how === "reused" && view.reusedFrom !== run.sourceRun ? `reused from ${view.reusedFrom}` : view.how

// The table of every node: one line each, the output cut short.
const nodeTable = (run: RunStore.Run, views: ReadonlyArray<RunView.NodeView>) =>
  table([
    ["NODE", "STATUS", "HOW", "WHY", "DURATION", "ATTEMPT", "OUTPUT"],
    ...views.map((view) => [
      view.node,
      statusOf(view),
      how(view, run),
      view.reasons.length === 0 ? "-" : view.reasons.join("; "),
      view.durationMs === undefined ? "-" : Progress.duration(view.durationMs),
      String(view.attempts),
      view.output === undefined ? "-" : Progress.jsonValue(view.output, false).slice(0, 40)
    ])
  ])

// One node instance in full: what it ran with, what it produced or why it failed.
const printNode = (run: RunStore.Run, view: RunView.NodeView, full: boolean) =>
  Effect.gen(function*() {
    const why = view.reasons.length === 0 ? "" : ` (${view.reasons.join("; ")})`
    yield* print(`node ${view.node}${view.block === view.node ? "" : ` (block ${view.block})`}: ${statusOf(view)}, ${how(view, run)}${why}`)
    yield* print(`  attempts: ${view.attempts}  started ${when(view.startedAt)}  finished ${when(view.finishedAt)}` +
      (view.durationMs === undefined ? "" : `  took ${Progress.duration(view.durationMs)}`))
    yield* printValue("  ", "inputs", view.inputs, full)
    yield* printValue("  ", "output", view.output, full)
    if (view.decision !== undefined) yield* print(`  decision: ${view.decision}`)
    if (view.error !== undefined) yield* print(`  error: ${view.error.message}`)
  })

// Who ends a run whose cancel is pending: its executor, a worker (queued), or a resume here.
const cancelPending = (run: RunStore.Run) =>
  run.status === "running" || run.status === "pending"
    ? "the process executing it ends it before its next block"
    : run.queued === true
    ? "a worker ends it"
    : `\`ripple resume ${run.id}\` ends it`

const header = (run: RunStore.Run) =>
  Effect.gen(function*() {
    yield* print(`run ${run.id}  workflow ${run.workflowId}  ${run.status}  (${run.mode}` +
      `${run.target === undefined ? "" : ` from ${run.target}`}${run.sourceRun === undefined ? "" : `, reusing ${run.sourceRun}`})`)
    yield* print(`created ${when(run.createdAt)}  updated ${when(run.updatedAt)}`)
    if (run.pruned !== undefined) {
      yield* print(`${Progress.pruned("plain", run.pruned)}: needed by no observed output, neither run nor reused`)
    }
    if (run.pauseRequestedAt !== undefined) {
      yield* print(`pause requested ${when(run.pauseRequestedAt)}: it parks at its next node boundary`)
    }
    if (run.cancelRequestedAt !== undefined) {
      yield* print(`cancel requested ${when(run.cancelRequestedAt)}: not ended yet; ${cancelPending(run)}`)
    }
  })

const runJson = (run: RunStore.Run) => ({
  runId: run.id,
  workflowId: run.workflowId,
  version: run.version,
  status: run.status,
  mode: run.mode,
  target: run.target,
  sourceRun: run.sourceRun,
  input: run.input,
  createdAt: run.createdAt,
  updatedAt: run.updatedAt,
  pruned: run.pruned,
  pauseRequestedAt: run.pauseRequestedAt,
  cancelRequestedAt: run.cancelRequestedAt
})

const show = (store: RunStore.RunStore["Service"], runId: string, node: string | undefined, options: Output.Options) =>
  Effect.gen(function*() {
    const run = yield* store.getRun(runId)
    const snapshot: Snapshot.Snapshot = yield* store.snapshot(runId)
    const views = RunView.nodes(run, snapshot, yield* store.reasons(runId))
    const awaited = yield* Awaiting.of(store, runId, yield* continuation)
    // Checked before the header: a refusal prints its problem alone.
    const selected = node === undefined ? [] : RunView.select(views, node)
    if (node !== undefined && selected.length === 0 && !RunView.names(snapshot.workflow, node)) {
      return yield* Problem.badInput(`run ${runId} has no node ${JSON.stringify(node)}`, `pass a node id from \`ripple show ${runId}\``)
    }
    yield* header(run)
    if (node !== undefined) {
      if (selected.length === 0) yield* print(`node ${node}: not run in ${runId}`)
      for (const view of selected) yield* printNode(run, view, options.full)
      for (const line of Progress.awaiting(awaited, options.full)) yield* print(line)
      return { code: 0, json: { run: runJson(run), nodes: selected, awaiting: awaited } }
    }
    yield* print(nodeTable(run, views))
    for (const view of views) if (view.error !== undefined) yield* print(`${view.node}: ${view.error.message}`)
    const outputs = RunView.outputs(snapshot)
    yield* printOutputs(outputs, run.status, options.full)
    for (const line of Progress.awaiting(awaited, options.full)) yield* print(line)
    return { code: 0, json: { run: runJson(run), outputs, nodes: views, awaiting: awaited } }
  })

// An empty `--node "$NODE"` (the variable unset) is refused before the store is opened.
const checkNode = (node: Option.Option<string>): Effect.Effect<void, Problem.Problem> =>
  Option.isSome(node) && node.value.trim() === ""
    ? Effect.fail(Problem.badInput("--node is empty", "give a node id (a block, a container or an instance such as step@2), or leave --node out for every node"))
    : Effect.void

/**
 * The `show` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("show", {
    run: Flags.run,
    node: Flag.String("node").pipe(
      Flag.withDescription("Only this node (a block, a container, or one instance such as step@2): its resolved inputs, output, error and attempts"),
      Flag.optional
    ),
    ...Output.flags
  }, ({ node, run, ...options }) =>
    Output.report(
      options.format,
      Effect.andThen(checkNode(node), session.withStore((store) =>
        show(store, run, Option.getOrUndefined(node), options).pipe(
          Effect.mapError((error) => error instanceof Problem.Problem ? error : Problem.fromStoreError(run, error))
        ))),
      { answer: true }
    )).pipe(Command.withDescription("Show a run: each node's status, whether it re-ran or was reused and why, duration, attempts and output; its outputs; what it awaits"))
