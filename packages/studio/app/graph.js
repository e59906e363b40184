// The workflow graph of a run or a plan: laid out left to right by dagre (containers as compound
// nodes, drawn as boxes), drawn as SVG, each node coloured by its state (see style.css).
import { layout as dagreLayout, graphlib } from "@dagrejs/dagre"
import { h } from "preact"
import htm from "htm"

const html = htm.bind(h)

const nodeHeight = 36
const short = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

/** Positions of every node, box and edge of `graph` (from the API: nodes, edges, containers). */
export const layout = (graph) => {
  const g = new graphlib.Graph({ compound: true, multigraph: true })
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 46, marginx: 16, marginy: 16 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const box of graph.containers) g.setNode(`box:${box.id}`, { label: box.label, paddingTop: 26 })
  for (const box of graph.containers) if (box.parent !== undefined) g.setParent(`box:${box.id}`, `box:${box.parent}`)
  for (const node of graph.nodes) {
    const sentinel = node.kind !== "block"
    const label = sentinel ? node.label : short(node.label, 26)
    g.setNode(node.id, { label, width: Math.max(sentinel ? 50 : 90, 22 + label.length * 7), height: sentinel ? 26 : nodeHeight })
    if (node.container !== undefined) g.setParent(node.id, `box:${node.container}`)
  }
  graph.edges.forEach((edge, i) => g.setEdge(edge.source, edge.target, { handle: edge.handle }, `e${i}`))
  dagreLayout(g)
  const boxes = graph.containers.map((box) => ({ ...box, ...g.node(`box:${box.id}`) }))
  const nodes = graph.nodes.map((node) => ({ ...node, ...g.node(node.id), label: g.node(node.id).label }))
  const edges = g.edges().map((e) => ({ id: e.name, handle: g.edge(e).handle, points: g.edge(e).points }))
  const { width, height } = g.graph()
  return { width, height, boxes, nodes, edges }
}

const mid = (points) => points[Math.floor(points.length / 2)]
const path = (points) => points.map((p, i) => `${i === 0 ? "M" : "L"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ")

/**
 * The SVG of a laid-out graph: `states` maps a node id to its state (a CSS class `state-<state>`),
 * `selected` is highlighted, `onSelect(id)` is called on a click.
 */
export const GraphView = ({ graph, states, selected, onSelect }) => {
  const laid = layout(graph)
  // Shrunk to the page's width when wider (see style.css), never enlarged.
  return html`<svg class="graph" width=${laid.width} height=${laid.height} viewBox="0 0 ${laid.width} ${laid.height}" data-testid="graph">
    <defs>
      <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
        <path d="M 0 0 L 10 5 L 0 10 z" class="arrow" />
      </marker>
    </defs>
    ${laid.boxes.map((box) => html`<g class="box box-${box.kind}" data-box=${box.id}>
      <rect x=${box.x - box.width / 2} y=${box.y - box.height / 2} width=${box.width} height=${box.height} rx="8" />
      <text x=${box.x - box.width / 2 + 8} y=${box.y - box.height / 2 + 16}>${box.kind === "loop" ? "↻" : "⇉"} ${box.label}</text>
    </g>`)}
    ${laid.edges.map((edge) => html`<g class="edge">
      <path d=${path(edge.points)} marker-end="url(#arrow)" />
      ${edge.handle === undefined ? null : html`<text x=${mid(edge.points).x} y=${mid(edge.points).y - 4} text-anchor="middle">${edge.handle}</text>`}
    </g>`)}
    ${laid.nodes.map((node) => html`<g
        class="node node-${node.kind} state-${states[node.id] ?? "pending"} ${selected === node.id ? "selected" : ""}"
        data-node=${node.id} data-state=${states[node.id] ?? "pending"}
        onClick=${() => onSelect(node.id)}>
      <title>${node.id}: ${states[node.id] ?? "pending"}</title>
      <rect x=${node.x - node.width / 2} y=${node.y - node.height / 2} width=${node.width} height=${node.height} rx=${node.kind === "block" ? 6 : 13} />
      <text x=${node.x} y=${node.y + 4} text-anchor="middle">${node.label}</text>
    </g>`)}
  </svg>`
}

/** A legend of the states shown, with how many nodes are in each (`data-count`). */
export const Legend = ({ order, states }) => {
  const counts = {}
  for (const state of Object.values(states)) counts[state] = (counts[state] ?? 0) + 1
  return html`<ul class="legend" data-testid="legend">
    ${order.filter((state) => counts[state] !== undefined).map((state) => html`<li class="state-${state}" data-state=${state} data-count=${counts[state]}>
      <svg width="14" height="14"><rect x="1" y="1" width="12" height="12" rx="3" /></svg> ${state} <b>${counts[state]}</b>
    </li>`)}
  </ul>`
}
