/**
 * The run-from rules of two other workflow products, to measure Ripple's re-executions against:
 * which blocks each re-executes after an edit, written from their published behaviour over the
 * specification's expanded DAG (`Spec`), sharing no code with the planner.
 *
 * - **Sim** (simstudio `executor/utils/run-from-block.ts`, `computeDirtySet`): the start block and
 *   everything reachable from it over outgoing edges re-execute; everything else keeps its cached
 *   output. A block inside a loop or parallel cannot be a start block (`validateRunFromBlock`), so
 *   an in-container target is run from its outermost container (whose start reaches the whole body).
 *   Sim has no destination and no diff.
 * - **n8n** (partial executions, `findStartNodes` / `isDirty`): the start nodes are the target and
 *   the dirty nodes (no run data, an error, changed properties); they and all of their downstream
 *   run, up to the destination when one is given. A loop or parallel runs as a unit: a dirty node
 *   inside one starts it from its start.
 *
 * Both are modelled as sets of blocks; a block in the set re-executes every instance a full run of
 * the edited workflow executes.
 *
 * Built by hand: these are other products' rules, which no library provides.
 *
 * @since 0.1.0
 */
import * as fc from "fast-check"
import type * as Snapshot from "../Snapshot.ts"
import type * as Workflow from "../Workflow.ts"
import * as Arbitraries from "./Arbitraries.ts"
import * as Laws from "./Laws.ts"
import * as Model from "./Model.ts"
import * as Spec from "./Spec.ts"

/**
 * An edit to compare rules on: a prior run of `before`, then a run of `after` from `target`
 * (optionally to `to`).
 *
 * @since 0.1.0
 */
export interface Edit {
  readonly before: Workflow.Workflow
  readonly after: Workflow.Workflow
  readonly target: string
  readonly to?: string | undefined
}

const blocksIn = (workflow: Workflow.Workflow, nodes: ReadonlySet<string>): Set<string> =>
  new Set(workflow.blocks.map((b) => b.id).filter((id) => nodes.has(id)))

/** The entry a run from `id` starts at: the outermost enclosing container's start, or its own entry. */
const unitOf = (s: Model.Structure, id: string): string => {
  const chain = Model.chainOf(s, id)
  return chain.length > 0 ? `${chain[0]!}#start` : Model.entryNode(s, id)
}

/**
 * The blocks Sim re-executes for a run from `target`.
 *
 * @since 0.1.0
 */
export const sim = (edit: Edit): ReadonlySet<string> => {
  const s = Model.structure(edit.after)
  return blocksIn(edit.after, Spec.downstreamOf(edit.after, unitOf(s, edit.target)))
}

/**
 * The blocks n8n re-executes for a partial execution from `target` (to `to`), given the prior
 * run's snapshot: dirty blocks are those the edit changed (type, params, `volatile`, `disabled`),
 * new ones, and those without a completed or skipped record in the prior run.
 *
 * @since 0.1.0
 */
export const n8n = (edit: Edit, prior: Snapshot.Snapshot): ReadonlySet<string> => {
  const s = Model.structure(edit.after)
  const old = new Map(edit.before.blocks.map((b) => [b.id, b] as const))
  const text = (b: Workflow.Block) => JSON.stringify([b.type, b.params ?? null, b.volatile ?? false, b.disabled ?? false])
  const ran = new Set<string>()
  for (const [key, record] of Object.entries(prior.nodes)) {
    if (record.status === "completed" || record.status === "skipped") ran.add(Model.nodeOfKey(key))
  }
  const starts = [edit.target]
  for (const block of edit.after.blocks) {
    const was = old.get(block.id)
    if (was === undefined || text(was) !== text(block) || !ran.has(block.id)) starts.push(block.id)
  }
  const reached = new Set<string>()
  for (const start of starts) for (const node of Spec.downstreamOf(edit.after, unitOf(s, start))) reached.add(node)
  if (edit.to !== undefined) {
    const needed = Spec.neededBy(edit.after, undefined, edit.to)
    for (const node of [...reached]) if (!needed.has(node)) reached.delete(node)
  }
  return blocksIn(edit.after, reached)
}

/**
 * How many block instances a rule re-executes: the instances of its blocks that a full run of the
 * edited workflow executes (`executed`, instance keys of that run).
 *
 * @since 0.1.0
 */
export const instancesOf = (blocks: ReadonlySet<string>, executed: ReadonlyArray<string>): number =>
  executed.filter((key) => !key.includes("#") && blocks.has(Model.nodeOfKey(key))).length

/**
 * Random edits with in-container targets, where the three rules answer the same question: a
 * random workflow (no `volatile` block: neither peer re-runs one for being volatile) whose run with
 * block seed `seed` completes, a block inside a loop or parallel as the target, its params edited
 * (the user changed the block and runs from it), and a destination depending on it half the time.
 *
 * @since 0.1.0
 */
export const arbitraryEdit = (seed: number): fc.Arbitrary<Edit> =>
  fc.tuple(fc.nat({ max: 1000 }), fc.nat({ max: 1000 }), fc.boolean(), Arbitraries.arbitraryWorkflow({ maxMembers: 5 }))
    .map(([pick, to, destination, json]): Edit | undefined => {
      const before = JSON.parse(JSON.stringify(json)) as { blocks: Array<Workflow.Block & { volatile?: boolean }> }
      for (const block of before.blocks) delete block.volatile
      const workflow = before as unknown as Workflow.Workflow
      const s = Model.structure(workflow)
      const inside = workflow.blocks.filter((b) => Model.chainOf(s, b.id).length > 0)
      if (inside.length === 0) return undefined
      const target = inside[pick % inside.length]!.id
      const after: Workflow.Workflow = {
        ...workflow,
        blocks: workflow.blocks.map((b) => (b.id === target ? { ...b, params: { ...b.params, edited: pick } } : b))
      }
      const destinations = Arbitraries.destinationsOf(after, target)
      return { before: workflow, after, target, to: destination ? destinations[to % destinations.length]! : undefined }
    })
    .filter((edit): edit is Edit =>
      edit !== undefined && Model.execute(edit.before, { seed, input: Laws.inputFor(edit.before) }).snapshot.status === "completed"
    )
