import { Dag, Fingerprint, Reference, type Workflow } from "@ripple/core"

type Json = Workflow.Json

/**
 * What the engine precomputes once per workflow value (workflows are immutable once frozen).
 * Only for the engine's fast path (workflows without containers): every node is a block.
 */
export interface Compiled {
  readonly dag: Dag.Dag
  readonly ids: ReadonlyArray<string>
  readonly blocks: ReadonlyArray<Workflow.Block>
  readonly params: ReadonlyArray<{ readonly [key: string]: Json }>
  readonly definitions: ReadonlyArray<string>
  /** The inputs fingerprint of blocks whose params hold no reference (their inputs are their params). */
  readonly staticInputs: ReadonlyArray<string | undefined>
  /** Per CSR out-edge: its handle. */
  readonly handles: ReadonlyArray<string | undefined>
  readonly hasErrorEdge: Uint8Array
}

const compiledCache = new WeakMap<Workflow.Workflow, Compiled>()
const dags = new WeakMap<Workflow.Workflow, Dag.Dag>()

/** The expanded DAG of a workflow, once per workflow value (any workflow, containers included). */
export const dagOf = (workflow: Workflow.Workflow): Dag.Dag => {
  let dag = dags.get(workflow)
  if (dag === undefined) {
    dag = Dag.make(workflow)
    dags.set(workflow, dag)
  }
  return dag
}
const emptyParams: { readonly [key: string]: Json } = {}
const emptyFingerprint = Fingerprint.hash(emptyParams)

export const compile = (workflow: Workflow.Workflow): Compiled => {
  const cached = compiledCache.get(workflow)
  if (cached !== undefined) return cached
  const dag = dagOf(workflow)
  const n = dag.size
  const blocks: Array<Workflow.Block> = []
  const params: Array<{ readonly [key: string]: Json }> = []
  const definitions: Array<string> = []
  const staticInputs: Array<string | undefined> = []
  const byId = new Map(workflow.blocks.map((b) => [b.id, b]))
  for (let i = 0; i < n; i++) {
    const block = byId.get(Dag.idOf(dag, i))!
    const p = block.params ?? emptyParams
    blocks.push(block)
    params.push(p)
    definitions.push(Fingerprint.ofBlock(block))
    staticInputs.push(Object.keys(p).length === 0 ? emptyFingerprint : Reference.hasReferences(p) ? undefined : Fingerprint.hash(p))
  }
  const handles: Array<string | undefined> = []
  const hasErrorEdge = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    for (let k = dag.outOffsets[i]!; k < dag.outOffsets[i + 1]!; k++) {
      const handle = Dag.handleOf(dag, dag.outEdges[k]!)
      handles.push(handle)
      if (handle === "error") hasErrorEdge[i] = 1
    }
  }
  const compiled: Compiled = { dag, ids: dag.ids!, blocks, params, definitions, staticInputs, handles, hasErrorEdge }
  compiledCache.set(workflow, compiled)
  return compiled
}

