import { Dag, type Workflow } from "@ripple/core"

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

const types = new WeakMap<Workflow.Workflow, ReadonlyArray<string>>()

/**
 * The distinct block types of a workflow, once per workflow value: what is checked per type
 * (handlers, compensations, params schemas) is checked per type on every start, not per block.
 */
export const typesOf = (workflow: Workflow.Workflow): ReadonlyArray<string> => {
  let found = types.get(workflow)
  if (found === undefined) {
    found = [...new Set(workflow.blocks.map((b) => b.type))]
    types.set(workflow, found)
  }
  return found
}
