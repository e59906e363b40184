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
