/**
 * An independent plain reducer of the run-status rules, written from the prose rather than
 * from the machine, so model-based tests can check that the two agree step by step.
 */
import type { RunStatus } from "@ripple/runtime"

/** The model's view of a run. */
export interface Model {
  readonly status: RunStatus.Status
  readonly running: number
  readonly dormant: ReadonlyMap<string, RunStatus.DormantReason>
  readonly failed: boolean
}

/** What the model says about one event. */
export type Step =
  | { readonly _tag: "Accepted"; readonly model: Model }
  | { readonly _tag: "Rejected"; readonly reason: RunStatus.Rejection }

/** A pending run. */
export const initialModel: Model = {
  status: "pending",
  running: 0,
  dormant: new Map(),
  failed: false
}

const accept = (model: Model): Step => ({ _tag: "Accepted", model })
const reject = (reason: RunStatus.Rejection): Step => ({ _tag: "Rejected", reason })

// Failed > Paused > Suspended > Completed, applied once no branch is running.
const settle = (model: Model): Model => {
  if (model.running > 0) return model
  const reasons = [...model.dormant.values()]
  const status: RunStatus.Status = model.failed
    ? "failed"
    : reasons.some((r) => r._tag === "Pause" || r._tag === "Approval")
    ? "paused"
    : reasons.length > 0
    ? "suspended"
    : "completed"
  return { ...model, status }
}

const wake = (model: Model, wakes: (reason: RunStatus.DormantReason) => boolean, none: RunStatus.Rejection): Step => {
  const dormant = new Map(model.dormant)
  let woken = 0
  for (const [branch, reason] of model.dormant) {
    if (wakes(reason)) {
      dormant.delete(branch)
      woken += 1
    }
  }
  return woken === 0 ? reject(none) : accept({ ...model, status: "running", running: woken, dormant })
}

/** Applies one event to the model. */
export const stepModel = (model: Model, event: RunStatus.Event): Step => {
  switch (model.status) {
    case "completed":
    case "cancelled":
      return reject("terminal")
    case "failed":
      return event.type === "RESUME"
        ? accept({ ...model, status: "running", running: 1, failed: false })
        : reject("awaiting-resume")
    default:
      break
  }
  if (event.type === "CANCEL") return accept({ ...model, status: "cancelled", running: 0, dormant: new Map() })
  if (event.type === "FAIL") return accept({ ...model, status: "failed", running: 0 })
  if (event.type === "RESUME") return reject("not-failed")
  if (event.type === "START") {
    return model.status === "pending" ? accept({ ...model, status: "running", running: 1 }) : reject("already-started")
  }
  if (event.type === "SIGNAL" || event.type === "TIMER_FIRED") {
    if (model.status !== "suspended") return reject("not-suspended")
    return event.type === "SIGNAL"
      ? wake(model, (r) => r._tag === "Signal" && r.signal === event.name, "signal-not-awaited")
      : wake(model, (r) => r._tag === "Sleep" && r.until <= event.at, "no-sleeper-due")
  }
  if (event.type === "UNPAUSE" || event.type === "APPROVE") {
    if (model.status !== "paused") return reject("not-paused")
    return event.type === "UNPAUSE"
      ? wake(model, (r) => r._tag === "Pause" && r.node === event.node, "pause-not-awaited")
      : wake(model, (r) => r._tag === "Approval" && r.node === event.node, "approval-not-awaited")
  }
  if (model.status !== "running") return reject("not-running")
  switch (event.type) {
    case "NODE_FAILED":
      return accept({ ...model, failed: true })
    case "BRANCH_STARTED":
      return accept({ ...model, running: model.running + 1 })
    case "ALL_BRANCHES_FINISHED":
      return accept(settle({ ...model, running: 0 }))
    case "BRANCH_DORMANT": {
      if (model.dormant.has(event.branch)) return reject("branch-already-dormant")
      const dormant = new Map(model.dormant).set(event.branch, event.reason)
      return accept(settle({ ...model, running: model.running - 1, dormant }))
    }
  }
}
