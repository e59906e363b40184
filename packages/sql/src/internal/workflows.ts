/**
 * Frozen workflow versions: saved once (content-addressed) and, being immutable, read at most once
 * per store.
 */
import { RunStore } from "@ripple/runtime"
import type { Workflow } from "@ripple/core"
import * as Effect from "effect/Effect"
import { type Db, json } from "./transact.ts"

/** Saving and loading workflow versions. */
export interface Workflows {
  readonly saveWorkflow: (workflow: Workflow.Workflow) => Effect.Effect<string, RunStore.StoreUnavailable>
  readonly loadWorkflow: (version: string) => Effect.Effect<Workflow.Workflow, RunStore.WorkflowNotFound | RunStore.StoreUnavailable>
}

/** The workflow versions of one store, with its cache. */
export const make = ({ sql, transact }: Db): Workflows => {
  // Versions are immutable: once read, a version never needs reading again.
  const workflows = new Map<string, Workflow.Workflow>()

  const saveWorkflow = (workflow: Workflow.Workflow) =>
    Effect.suspend(() => {
      const version = RunStore.versionOf(workflow)
      if (workflows.has(version)) return Effect.succeed(version)
      return transact(
        "saveWorkflow",
        sql`INSERT INTO ripple_workflow_versions (version, workflow_id, definition)
        VALUES (${version}, ${workflow.id}, ${json(workflow)}::json) ON CONFLICT (version) DO NOTHING`
      ).pipe(
        Effect.tap(() => Effect.sync(() => workflows.set(version, workflow))),
        Effect.as(version)
      )
    })

  const loadWorkflow = (version: string): Effect.Effect<Workflow.Workflow, RunStore.WorkflowNotFound | RunStore.StoreUnavailable> =>
    Effect.suspend(() => {
      const cached = workflows.get(version)
      if (cached !== undefined) return Effect.succeed(cached)
      return transact(
        "loadWorkflow",
        sql<{ readonly definition: Workflow.Workflow }>`SELECT definition FROM ripple_workflow_versions WHERE version = ${version}`
      )
        .pipe(
          Effect.flatMap((rows) => {
            const row = rows[0]
            if (row === undefined) return Effect.fail(new RunStore.WorkflowNotFound({ version }))
            workflows.set(version, row.definition)
            return Effect.succeed(row.definition)
          })
        )
    })

  return { saveWorkflow, loadWorkflow }
}
