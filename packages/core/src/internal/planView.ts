/**
 * Renderings of a plan: a text table, JSON, Mermaid and DOT. Kept apart from `Plan` so the planner
 * module stays about planning.
 */
import type * as Dag from "../Dag.ts"
import type * as Plan from "../Plan.ts"
import type { Json } from "../Workflow.ts"

type Status = "re-run" | "reused" | "pruned"

const statusOf = (plan: Plan.Plan): Map<string, Status> => {
  const out = new Map<string, Status>()
  for (const id of plan.rerun) out.set(id, "re-run")
  for (const id of plan.reused) out.set(id, "reused")
  for (const id of plan.pruned) out.set(id, "pruned")
  return out
}

/** The order nodes are shown in: the plan's lists merged back into one topological order. */
const ordered = (plan: Plan.Plan, dag: Dag.Dag | undefined): ReadonlyArray<string> => {
  const all = [...plan.rerun, ...plan.reused, ...plan.pruned]
  if (dag === undefined || dag.index === undefined) return all
  const index = dag.index
  return all.sort((a, b) => index.get(a)! - index.get(b)!)
}

/** Reason text: `downstream(<root>)`, `container-reset(<container>)`, or the tag. */
export const formatReason = (reason: Plan.Reason): string =>
  reason._tag === "downstream"
    ? `downstream(${reason.root})`
    : reason._tag === "container-reset"
    ? `container-reset(${reason.container})`
    : reason._tag

export const explain = (plan: Plan.Plan): string => {
  const status = statusOf(plan)
  const rows = [...plan.rerun, ...plan.pruned, ...plan.reused].map((id) => [
    id,
    status.get(id)!,
    (plan.reasons.get(id) ?? []).map(formatReason).join(", ")
  ])
  const header = ["node", "plan", "reasons"]
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()
  const title = `${plan.mode} plan of ${plan.workflow.id}${plan.target === undefined ? "" : ` from ${plan.target}`}` +
    `${plan.to === undefined ? "" : ` to ${plan.to}`}: ` +
    `${plan.rerun.length} re-run, ${plan.reused.length} reused, ${plan.pruned.length} pruned`
  return [title, line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line), ...plan.resets.map(resetLine)].join("\n")
}

/** How a container re-runs, one line: `<container>: <kind> re-runs <whole|per instance> (<why>)`. */
const resetLine = (reset: Plan.Reset): string => {
  const branches = reset._tag === "parallel" && reset.branches !== "all" ? `, branches ${reset.branches.join(", ") || "none"}` : ""
  return `${reset.container}: ${reset._tag} re-runs ${reset.restart === "whole" ? "whole" : "per instance"} (${reset.why}${branches})`
}

export const toJson = (plan: Plan.Plan): Json => ({
  mode: plan.mode,
  workflow: plan.workflow.id,
  target: plan.target ?? null,
  to: plan.to ?? null,
  pins: plan.pins ?? null,
  rerun: [...plan.rerun],
  reused: [...plan.reused],
  pruned: [...plan.pruned],
  start: [...plan.start],
  resets: plan.resets.map((reset) =>
    reset._tag === "loop"
      ? { _tag: reset._tag, container: reset.container, restart: reset.restart, why: reset.why }
      : {
        _tag: reset._tag,
        container: reset.container,
        branches: reset.branches === "all" ? "all" : [...reset.branches],
        restart: reset.restart,
        why: reset.why
      }
  ),
  reasons: Object.fromEntries(Array.from(plan.reasons, ([id, reasons]) => [id, reasons.map((reason) => ({ ...reason }))]))
})

const quote = (text: string) => `"${text.replace(/"/gu, "'")}"`
/** Mermaid reads `#…;` in a label as an entity: write `#` as the `#35;` entity. */
const label = (text: string) => quote(text.replace(/#/gu, "#35;"))

/** Edges between node ids, with the workflow handle as label. */
const edgesOf = (dag: Dag.Dag): Array<readonly [string, string, string | undefined]> => {
  const out: Array<readonly [string, string, string | undefined]> = []
  const ids = dag.ids!
  for (let i = 0; i < dag.size; i++) {
    for (let k = dag.outOffsets[i]!; k < dag.outOffsets[i + 1]!; k++) {
      const e = dag.outEdges[k]!
      out.push([ids[i]!, ids[dag.outTargets[k]!]!, e < 0 ? undefined : dag.workflow?.edges[e]?.handle])
    }
  }
  return out
}

export const toMermaid = (plan: Plan.Plan, dag: Dag.Dag): string => {
  const status = statusOf(plan)
  const ids = ordered(plan, dag)
  const key = new Map(ids.map((id, i) => [id, `n${i}`] as const))
  const lines = ["flowchart TD"]
  const nodes = dag.nodes!
  const byContainer = new Map<string, Array<string>>()
  for (const id of ids) {
    const info = nodes[dag.index!.get(id)!]!
    // A container's sentinels are drawn inside its own box.
    const owner = info.kind === "block" ? info.chain[info.chain.length - 1] ?? "" : info.id
    byContainer.set(owner, [...(byContainer.get(owner) ?? []), id])
  }
  const children = new Map<string, Array<string>>()
  for (const id of [...(plan.workflow.loops ?? []), ...(plan.workflow.parallels ?? [])].map((c) => c.id)) {
    const start = nodes[dag.index!.get(`${id}#start`)!]!
    const owner = start.chain[start.chain.length - 1] ?? ""
    children.set(owner, [...(children.get(owner) ?? []), id])
  }
  const emit = (owner: string, indent: string) => {
    for (const id of byContainer.get(owner) ?? []) {
      lines.push(`${indent}${key.get(id)}[${label(id)}]:::${status.get(id)!.replace("-", "")}`)
    }
    for (const child of children.get(owner) ?? []) {
      lines.push(`${indent}subgraph ${key.get(`${child}#start`)}_box [${label(child)}]`)
      emit(child, `${indent}  `)
      lines.push(`${indent}end`)
    }
  }
  emit("", "  ")
  for (const [from, to, handle] of edgesOf(dag)) {
    lines.push(`  ${key.get(from)} -->${handle === undefined ? "" : `|${label(handle)}|`} ${key.get(to)}`)
  }
  lines.push(
    "  classDef rerun fill:#fde2e1,stroke:#c0392b,stroke-width:2px",
    "  classDef reused fill:#e3f4e1,stroke:#27ae60",
    "  classDef pruned fill:#eeeeee,stroke:#999999,stroke-dasharray:4 3,color:#888888"
  )
  return lines.join("\n")
}

const dotStyle: Record<Status, string> = {
  "re-run": `style="filled,bold", fillcolor="#fde2e1", color="#c0392b"`,
  reused: `style=filled, fillcolor="#e3f4e1", color="#27ae60"`,
  pruned: `style="dashed", color="#999999", fontcolor="#888888"`
}

export const toDot = (plan: Plan.Plan, dag: Dag.Dag): string => {
  const status = statusOf(plan)
  const lines = [`digraph ${quote(plan.workflow.id)} {`, "  rankdir=TB;", "  node [shape=box];"]
  for (const id of ordered(plan, dag)) {
    const s = status.get(id)!
    lines.push(`  ${quote(id)} [label=${quote(`${id}\\n${s}`)}, ${dotStyle[s]}];`)
  }
  for (const [from, to, handle] of edgesOf(dag)) {
    lines.push(`  ${quote(from)} -> ${quote(to)}${handle === undefined ? "" : ` [label=${quote(handle)}]`};`)
  }
  lines.push("}")
  return lines.join("\n")
}
