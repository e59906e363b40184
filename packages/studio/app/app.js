// The studio page: the runs list (live through /api/events), a run (its graph, node details,
// diagnostics, approve / reject / signal / resume / cancel), and the run-from plan of a block
// (execute it with one click), and two runs compared. Routes live in the location hash: #/,
// #/runs/<id>, #/runs/<id>/plan/<block>, #/compare/<a>/<b>. Every action is a call of the JSON
// API; nothing is computed here that the server did not say, except the layout.
import { h, render } from "preact"
import { useCallback, useEffect, useState } from "preact/hooks"
import htm from "htm"
import { GraphView, Legend } from "./graph.js"

const html = htm.bind(h)

const runStates = ["executed", "reused", "cutoff", "pruned", "skipped", "failed", "waiting", "sleeping", "running", "interrupted", "pending"]
const planStates = ["rerun", "reused", "pruned"]
const differences = ["added", "removed", "definition", "inputs", "output", "status", "same"]
const statuses = ["pending", "running", "suspended", "paused", "completed", "failed", "cancelled"]

// A JSON API call; a problem response (RFC 9457) is thrown as an Error carrying the problem.
const api = async (method, url, body) => {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const json = await response.json()
  if (!response.ok) throw Object.assign(new Error(json.detail ?? `HTTP ${response.status}`), { problem: json })
  return json
}

// One EventSource for the page; `listen(f)` calls f with every event until the returned function is called.
const listeners = new Set()
const source = new EventSource("/api/events")
source.onmessage = (message) => {
  const event = JSON.parse(message.data)
  for (const listener of listeners) listener(event)
}
const listen = (f) => {
  listeners.add(f)
  return () => listeners.delete(f)
}

// Reloads with `load` now, and again (debounced) whenever an event passes `relevant`.
const useLive = (load, relevant, deps) => {
  const [state, setState] = useState({ data: undefined, error: undefined })
  const refresh = useCallback(() => load().then((data) => setState({ data, error: undefined }), (error) => setState({ data: undefined, error })), deps)
  useEffect(() => {
    refresh()
    let timer
    const stop = listen((event) => {
      if (!relevant(event)) return
      clearTimeout(timer)
      timer = setTimeout(refresh, 120)
    })
    return () => {
      stop()
      clearTimeout(timer)
    }
  }, deps)
  return [state, refresh]
}

const time = (ms) => (ms === undefined ? "-" : new Date(ms).toLocaleString())
const Status = ({ status }) => html`<span class="status status-${status}" data-testid="status">${status}</span>`
// A run whose cancel was recorded but that has not ended yet (its owner ends it before its next
// block, or a resume does): it would otherwise look like any run still going on.
const CancelRequested = ({ at }) =>
  at === undefined
    ? null
    : html` <span class="cancel-requested" data-testid="cancel-requested" title=${`cancel requested ${time(at)}, not ended yet`}>cancel requested</span>`
const ErrorBox = ({ error }) => (error === undefined ? null : html`<p class="error" data-testid="error">${error.message}</p>`)
const Json = ({ value }) => html`<pre class="json">${value === undefined ? "-" : JSON.stringify(value, null, 2)}</pre>`

const StartRun = ({ onStarted }) => {
  const [workflow, setWorkflow] = useState("")
  const [input, setInput] = useState("")
  const [error, setError] = useState(undefined)
  const start = async () => {
    try {
      const body = { workflow: JSON.parse(workflow), ...(input.trim() === "" ? {} : { input: JSON.parse(input) }) }
      const started = await api("POST", "/api/runs", body)
      setError(undefined)
      onStarted(started.runId)
    } catch (e) {
      setError(e)
    }
  }
  return html`<details class="start"><summary>Start a run</summary>
    <textarea placeholder="workflow JSON" data-testid="start-workflow" value=${workflow} onInput=${(e) => setWorkflow(e.target.value)} />
    <input placeholder='input JSON, e.g. {"topic": "ripple"}' data-testid="start-input" value=${input} onInput=${(e) => setInput(e.target.value)} />
    <button onClick=${start} data-testid="start">Start</button>
    <${ErrorBox} error=${error} />
  </details>`
}

const RunsPage = () => {
  const [workflow, setWorkflow] = useState("")
  const [status, setStatus] = useState("")
  const query = new URLSearchParams({ ...(workflow === "" ? {} : { workflow }), ...(status === "" ? {} : { status }) })
  const [{ data, error }] = useLive(
    () => api("GET", `/api/runs?${query}`),
    (event) => ["RunStarted", "StatusChanged", "RunFinished", "RunsChanged"].includes(event._tag),
    [workflow, status]
  )
  const [all] = useLive(() => api("GET", "/api/runs"), (event) => event._tag === "RunStarted" || event._tag === "RunsChanged", [])
  const workflows = [...new Set((all.data?.runs ?? []).map((r) => r.workflowId))].sort()
  return html`<main>
    <h1>Runs</h1>
    <${StartRun} onStarted=${(id) => (location.hash = `#/runs/${id}`)} />
    <div class="filters">
      <label>workflow <select data-testid="filter-workflow" value=${workflow} onChange=${(e) => setWorkflow(e.target.value)}>
        <option value="">any</option>${workflows.map((w) => html`<option value=${w}>${w}</option>`)}
      </select></label>
      <label>status <select data-testid="filter-status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="">any</option>${statuses.map((s) => html`<option value=${s}>${s}</option>`)}
      </select></label>
    </div>
    <${ErrorBox} error=${error} />
    <table class="runs" data-testid="runs">
      <thead><tr><th>run</th><th>workflow</th><th>status</th><th>mode</th><th>from</th><th>created</th></tr></thead>
      <tbody>${(data?.runs ?? []).map((run) => html`<tr data-run=${run.id}>
        <td><a href="#/runs/${run.id}">${run.id}</a></td><td>${run.workflowId}</td><td><${Status} status=${run.status} /><${CancelRequested} at=${run.cancelRequestedAt} /></td>
        <td>${run.mode}</td><td>${run.target ?? "-"}</td><td>${time(run.createdAt)}</td>
      </tr>`)}</tbody>
    </table>
  </main>`
}

// The instances of the selected node (its iterations and branches), as `Runs.node` selects them.
const NodePanel = ({ id, nodes }) => {
  const instances = nodes.filter((n) => n.node === id || n.node.split("@")[0] === id)
  return html`<aside class="panel" data-testid="node-panel">
    <h3>${id}</h3>
    ${instances.length === 0 ? html`<p>Not run in this run.</p>` : null}
    ${instances.map((n) => html`<section class="instance">
      <h4>${n.node} <${Status} status=${n.status} /> <small>${n.how}${n.reusedFrom === undefined ? "" : ` from ${n.reusedFrom}`}</small></h4>
      <dl>
        <dt>why</dt><dd>${n.reasons.join("; ")}</dd>
        <dt>attempts</dt><dd>${n.attempts}</dd>
        <dt>duration</dt><dd>${n.durationMs === undefined ? "-" : `${n.durationMs} ms`}</dd>
        ${n.decision === undefined ? null : html`<dt>decision</dt><dd>${n.decision}</dd>`}
        ${n.error === undefined ? null : html`<dt>error</dt><dd class="error">${n.error.message ?? JSON.stringify(n.error)}</dd>`}
      </dl>
      <details><summary>inputs</summary><${Json} value=${n.inputs} /></details>
      <details open><summary>output</summary><${Json} value=${n.output} /></details>
    </section>`)}
  </aside>`
}

// What a waiting run can be told: approve or reject its approvals, send its signals, resume, cancel.
const Actions = ({ run, onDone }) => {
  const [error, setError] = useState(undefined)
  const [payload, setPayload] = useState("")
  const act = (path, body) => async () => {
    try {
      await api("POST", `/api/runs/${run.id}/${path}`, body)
      setError(undefined)
      onDone()
    } catch (e) {
      setError(e)
    }
  }
  const parsed = () => (payload.trim() === "" ? null : JSON.parse(payload))
  const finished = ["completed", "failed", "cancelled"].includes(run.status)
  return html`<div class="actions">
    ${run.suspension.approvals.length + run.suspension.signals.length === 0 ? null
    : html`<input placeholder="payload JSON (optional)" data-testid="payload" value=${payload} onInput=${(e) => setPayload(e.target.value)} />`}
    ${run.suspension.approvals.map((node) => html`<span class="approval">
      <button data-testid="approve-${node}" onClick=${() => act("approve", { node, payload: parsed() })()}>Approve ${node}</button>
      <button data-testid="reject-${node}" onClick=${() => {
        const reason = prompt(`Reject ${node}: why?`)
        if (reason) act("reject", { node, reason })()
      }}>Reject</button>
    </span>`)}
    ${run.suspension.signals.map((name) => html`<button data-testid="signal-${name}" onClick=${() => act("signal", { name, payload: parsed() })()}>Send signal ${name}</button>`)}
    ${run.status === "failed" ? html`<button data-testid="resume" onClick=${act("resume")}>Resume</button>` : null}
    ${finished ? null : html`<button data-testid="cancel" onClick=${act("cancel")}>Cancel</button>`}
    <${ErrorBox} error=${error} />
  </div>`
}

const Diagnostics = ({ run }) => html`<details class="diagnostics"><summary>Diagnostics, children, compensations</summary>
  <dl>
    <dt>last started</dt><dd>${run.diagnostics.lastStarted === undefined ? "-" : `${run.diagnostics.lastStarted.node} at ${time(run.diagnostics.lastStarted.at)}`}</dd>
    <dt>last completed</dt><dd>${run.diagnostics.lastCompleted === undefined ? "-" : `${run.diagnostics.lastCompleted.node} at ${time(run.diagnostics.lastCompleted.at)}`}</dd>
    <dt>finalization</dt><dd>${run.diagnostics.finalization ?? "-"}</dd>
    <dt>messages</dt><dd>${run.diagnostics.messages.join("; ") || "-"}</dd>
    <dt>children</dt><dd>${run.children.length === 0 ? "-" : run.children.map((c) => html`<a href="#/runs/${c.runId}">${c.runId}</a> `)}</dd>
    <dt>compensations</dt><dd><${Json} value=${run.compensations} /></dd>
    <dt>input</dt><dd><${Json} value=${run.input} /></dd>
  </dl>
</details>`

const PlanPicker = ({ runId, blocks }) => {
  const [block, setBlock] = useState(blocks[0])
  return html`<span class="plan-picker">
    <select data-testid="plan-block" value=${block} onChange=${(e) => setBlock(e.target.value)}>${blocks.map((b) => html`<option value=${b}>${b}</option>`)}</select>
    <button data-testid="plan" onClick=${() => (location.hash = `#/runs/${runId}/plan/${encodeURIComponent(block)}`)}>Plan a re-run from it</button>
  </span>`
}

// The other runs of the run's workflow, to compare this one with.
const ComparePicker = ({ run }) => {
  const [others, setOthers] = useState([])
  const [other, setOther] = useState(undefined)
  useEffect(() => {
    api("GET", `/api/runs?workflow=${encodeURIComponent(run.workflowId)}`).then((found) => {
      const ids = found.runs.map((r) => r.id).filter((id) => id !== run.id)
      setOthers(ids)
      setOther(ids[0])
    }, () => setOthers([]))
  }, [run.id])
  if (others.length === 0) return null
  return html`<span class="compare-picker">
    <select data-testid="compare-run" value=${other} onChange=${(e) => setOther(e.target.value)}>${others.map((id) => html`<option value=${id}>${id}</option>`)}</select>
    <button data-testid="compare" onClick=${() => (location.hash = `#/compare/${other}/${run.id}`)}>Compare with this run</button>
  </span>`
}

const ComparePage = ({ a, b }) => {
  const [selected, setSelected] = useState(undefined)
  const [{ data, error }] = useLive(() => api("GET", `/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`), () => false, [a, b])
  if (error !== undefined) return html`<main><${ErrorBox} error=${error} /></main>`
  if (data === undefined) return html`<main><p>Comparing…</p></main>`
  const shown = selected === undefined ? data.nodes : data.nodes.filter((n) => n.node.split("@")[0] === selected)
  return html`<main>
    <h1>Compare <small><a href="#/runs/${a}">${a}</a> → <a href="#/runs/${b}">${b}</a></small></h1>
    <${Legend} order=${differences} states=${data.states} />
    <div class="canvas"><${GraphView} graph=${data.graph} states=${data.states} selected=${selected} onSelect=${setSelected} /></div>
    ${data.nodes.length === 0 ? html`<p class="hint" data-testid="no-difference">No node differs: same definitions, inputs, outputs and statuses.</p>` : null}
    <table class="runs" data-testid="differences">
      <thead><tr><th>node</th><th>difference</th><th>changed</th><th>before</th><th>after</th></tr></thead>
      <tbody>${shown.map((n) => html`<tr data-node=${n.node}>
        <td>${n.node}</td><td>${n.difference}</td><td>${n.changes.join(", ")}</td>
        <td>${n.a === undefined ? "-" : html`<${Status} status=${n.a.status} /> <${Json} value=${n.a.output} />`}</td>
        <td>${n.b === undefined ? "-" : html`<${Status} status=${n.b.status} /> <${Json} value=${n.b.output} />`}</td>
      </tr>`)}</tbody>
    </table>
  </main>`
}

const RunPage = ({ runId }) => {
  const [selected, setSelected] = useState(undefined)
  const [{ data, error }, refresh] = useLive(
    () => api("GET", `/api/runs/${runId}`),
    (event) => event.runId === runId || event._tag === "RunsChanged",
    [runId]
  )
  if (error !== undefined) return html`<main><${ErrorBox} error=${error} /></main>`
  if (data === undefined) return html`<main><p>Loading…</p></main>`
  const { run } = data
  return html`<main>
    <h1>${run.workflowName ?? run.workflowId} <small>run <code data-testid="run-id">${run.id}</code></small> <${Status} status=${run.status} /><${CancelRequested} at=${run.cancelRequestedAt} /></h1>
    <p class="meta">${run.mode === "run-from" ? "re-run" : `${run.mode} run`}${run.target === undefined ? "" : ` from ${run.target}`}
      ${run.sourceRun === undefined ? "" : html` reusing <a href="#/runs/${run.sourceRun}">${run.sourceRun}</a>`}${" · "}created ${time(run.createdAt)} · updated ${time(run.updatedAt)}
      ${run.pruned === undefined ? "" : ` · pruned ${run.pruned.count}`}</p>
    <${Actions} run=${run} onDone=${refresh} />
    <${Legend} order=${runStates} states=${data.states} />
    <div class="canvas"><${GraphView} graph=${data.graph} states=${data.states} selected=${selected} onSelect=${setSelected} /></div>
    ${selected === undefined ? html`<p class="hint">Click a node for its inputs, output and why it ran.</p>` : html`<${NodePanel} id=${selected} nodes=${data.nodes} />`}
    <p><${PlanPicker} runId=${run.id} blocks=${data.blocks} /> <${ComparePicker} run=${run} /></p>
    <details><summary>Outputs</summary><${Json} value=${data.outputs} /></details>
    <${Diagnostics} run=${run} />
  </main>`
}

const reasonText = (reason) =>
  reason._tag + Object.entries(reason).filter(([k]) => k !== "_tag").map(([k, v]) => ` ${k}=${JSON.stringify(v)}`).join("")

const PlanPage = ({ runId, block }) => {
  const [selected, setSelected] = useState(undefined)
  const [error, setError] = useState(undefined)
  const [{ data, error: loadError }] = useLive(() => api("GET", `/api/runs/${runId}/plan?from=${encodeURIComponent(block)}`), () => false, [runId, block])
  const execute = async () => {
    try {
      const started = await api("POST", `/api/runs/${runId}/rerun`, { from: block })
      location.hash = `#/runs/${started.runId}`
    } catch (e) {
      setError(e)
    }
  }
  if (loadError !== undefined) return html`<main><${ErrorBox} error=${loadError} /></main>`
  if (data === undefined) return html`<main><p>Planning…</p></main>`
  const reasons = data.plan.reasons[selected] ?? []
  return html`<main>
    <h1>Plan: re-run from <code>${block}</code> <small>reusing <a href="#/runs/${runId}">${runId}</a></small></h1>
    <p class="counts" data-testid="counts">
      ${planStates.map((state) => html`<span class="state-${state}" data-state=${state} data-count=${data.counts[state]}>${state} <b>${data.counts[state]}</b></span> `)}
    </p>
    <p>A dry run: nothing is written until you execute it. <button data-testid="execute" onClick=${execute}>Execute this plan</button></p>
    <${ErrorBox} error=${error} />
    <${Legend} order=${planStates} states=${data.states} />
    <div class="canvas"><${GraphView} graph=${data.graph} states=${data.states} selected=${selected} onSelect=${setSelected} /></div>
    ${selected === undefined ? null : html`<aside class="panel" data-testid="node-panel"><h3>${selected}: ${data.states[selected] ?? "not planned"}</h3>
      <ul>${reasons.map((r) => html`<li>${reasonText(r)}</li>`)}</ul></aside>`}
  </main>`
}

const route = (hash) => {
  const compare = /^#\/compare\/([^/]+)\/([^/]+)$/.exec(hash)
  if (compare !== null) return html`<${ComparePage} a=${decodeURIComponent(compare[1])} b=${decodeURIComponent(compare[2])} />`
  const plan = /^#\/runs\/([^/]+)\/plan\/(.+)$/.exec(hash)
  if (plan !== null) return html`<${PlanPage} runId=${decodeURIComponent(plan[1])} block=${decodeURIComponent(plan[2])} />`
  const run = /^#\/runs\/([^/]+)$/.exec(hash)
  if (run !== null) return html`<${RunPage} runId=${decodeURIComponent(run[1])} />`
  return html`<${RunsPage} />`
}

const App = () => {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const onChange = () => setHash(location.hash)
    addEventListener("hashchange", onChange)
    return () => removeEventListener("hashchange", onChange)
  }, [])
  return html`<header><a href="#/">Ripple studio</a></header>${route(hash)}`
}

render(html`<${App} />`, document.getElementById("app"))
