/**
 * Deliveries to a run (`signal`, `approve` / `reject`): checked against what the run's workflow
 * awaits, kept in the store (so one that arrives while the run still runs is not lost), and then
 * the run is woken here or its owner told (`Waking.settle`).
 *
 * @since 0.1.0
 */
import { NodeId, Workflow } from "@ripple/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as RunStatus from "../../RunStatus.ts"
import { InvalidPayload } from "./errors.ts"
import type { State } from "./state.ts"
import * as Waking from "./wake.ts"

type Json = Workflow.Json

/**
 * The request as every store holds it (`Workflow.toStorable`: a copy, normalised as JSON
 * normalises), or its refusal when a field is something no store can hold (path: the field, then
 * into the payload) or larger than `Workflow.maxValueBytes`; nothing is written.
 *
 * @since 0.1.0
 */
export const storable = <Request extends { readonly [field: string]: Json }>(
  runId: string,
  request: Request
): Effect.Effect<Request, InvalidPayload> => {
  const copied = Workflow.toStorable(request)
  if (Result.isFailure(copied)) return Effect.fail(new InvalidPayload({ runId, cause: copied.failure }))
  const fields = copied.success as Request
  for (const field in fields) {
    const large = Workflow.oversized(fields[field], [field])
    if (large !== undefined) return Effect.fail(new InvalidPayload({ runId, cause: large }))
  }
  return Effect.succeed(fields)
}

const bodyMembers = new WeakMap<Workflow.Workflow, ReadonlySet<string>>()
const inContainers = (workflow: Workflow.Workflow) => {
  let found = bodyMembers.get(workflow)
  if (found === undefined) {
    found = new Set([...(workflow.loops ?? []), ...(workflow.parallels ?? [])].flatMap((c) => c.body))
    bodyMembers.set(workflow, found)
  }
  return found
}

/**
 * Delivers signal `name` to the run's `wait` blocks awaiting it; whether it was accepted (see
 * `Runs.signal`).
 *
 * @since 0.1.0
 */
export const signal = (state: State, runId: string, name: string, payload: Json) =>
  Effect.gen(function*() {
    const snapshot = yield* state.store.snapshot(runId)
    if (RunStatus.terminal.includes(snapshot.status)) return false
    const awaiting = snapshot.workflow.blocks.filter((b) => {
      if (b.type !== "wait") return false
      const wanted = b.params?.["signal"]
      return wanted === name || typeof wanted !== "string"
    })
    if (awaiting.length === 0) return false
    const nested = inContainers(snapshot.workflow)
    // Every wait for it is top level and has taken its signal already: a duplicate.
    if (awaiting.every((b) => !nested.has(b.id) && snapshot.nodes[b.id]?.status === "completed")) return false
    const at = yield* Clock.currentTimeMillis
    if (!(yield* state.store.deliver(runId, { kind: "signal", name, payload, at }))) return false
    yield* Waking.settle(state, runId)
    return true
  })

/**
 * Delivers an approval decision to the paused `approval` node instance `node`; whether it was
 * accepted.
 *
 * @since 0.1.0
 */
export const decide = (state: State, runId: string, node: string, decision: Json) =>
  Effect.gen(function*() {
    const snapshot = yield* state.store.snapshot(runId)
    if (RunStatus.terminal.includes(snapshot.status) || snapshot.nodes[node]?.status !== "paused") return false
    const parsed = NodeId.parseInstance(node)
    if (Result.isFailure(parsed) || parsed.success.node.kind !== "block") return false
    const id = parsed.success.node.id
    if (!snapshot.workflow.blocks.some((b) => b.id === id && b.type === "approval")) return false
    const at = yield* Clock.currentTimeMillis
    if (!(yield* state.store.deliver(runId, { kind: "approval", name: node, payload: decision, at }))) return false
    yield* Waking.settle(state, runId)
    return true
  })
