/**
 * Containers as units: a loop or parallel member of a scope starts (its `count` / `items`
 * resolved, checked against the limits, journaled as the container's start node), runs its body
 * scope once per iteration (one after the other; a `while` loop until its condition stops holding)
 * or per branch (at most the parallel's `concurrency` at once; kept branches of a parallel reset
 * branch by branch are reused; a start the plan kept gives its count / items without being
 * evaluated again), records its scope, and ends (its end node's output is the array
 * of the iterations' / branches' exit records). A body instance blocked behind a dormant node
 * leaves the container unfinished and blocks what depends on it.
 */
import { Fingerprint, NodeId, Reference, type Snapshot, Workflow } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { unresolved } from "./edges.ts"
import { isObject } from "./json.ts"
import type { Container } from "./shape.ts"
import {
  announce,
  completed,
  endOf,
  envFor,
  failed,
  type Frame,
  keyOf,
  now,
  placeOf,
  recordsOf,
  skip,
  startPlace,
  type State,
  type StoreError
} from "./state.ts"

type Json = Workflow.Json

/** Runs the body scope of a container in a frame (the interpreter's `runScope`). */
export type RunScope = (s: State, scope: string, frame: Frame) => Effect.Effect<void, StoreError>

/** What a started container runs over. */
interface Started {
  readonly items: ReadonlyArray<Json> | undefined
  readonly planned: number
}

/** The iterations' / branches' exit records, and whether one of them is blocked. */
interface Ran {
  readonly outputs: Array<Json>
  readonly stuck: boolean
}

const specOf = (container: Container) => container.kind === "loop" ? container.loop : container.parallel

// What data decides (items, counts) checked against the limits, before any of it runs.
const exceeded = (s: State, id: string, container: Container, size: number, byItems: boolean) => {
  const limit: keyof Workflow.Limits = container.kind === "loop" ? "maxIterations" : "maxBranches"
  const members = specOf(container).body.reduce((n, m) => n + (s.shape.containers.has(m) ? 2 : 1), 0)
  const limits = s.setup.limits
  const over: { readonly limit: keyof Workflow.Limits; readonly value: number; readonly max: number } | undefined = size > limits[limit]
    ? { limit, value: size, max: limits[limit] }
    : s.expanded + size * members > limits.maxNodes
    ? { limit: "maxNodes", value: s.expanded + size * members, max: limits.maxNodes }
    : undefined
  if (over === undefined) {
    s.expanded += size * members
    return undefined
  }
  const what = over.limit === "maxNodes" ? "expanded nodes" : limit === "maxIterations" ? "iterations" : "branches"
  return `${byItems ? "items" : "count"} of ${id} asks for ${over.value} ${what}, over ${over.limit} (${over.max}); raise it with ${
    Workflow.limitVariables[over.limit]
  } or the limits option`
}

// Resolves and journals the container's start; `undefined` when it failed (start and end failed).
const start = (s: State, id: string, frame: Frame, container: Container): Effect.Effect<Started | undefined, StoreError> =>
  Effect.gen(function*() {
    const definition = container.definition
    const startAt = startPlace(frame, id)
    const startKey = startAt.key
    const spec = specOf(container)
    const max = container.kind === "loop" ? container.loop.maxIterations ?? Number.POSITIVE_INFINITY : Number.POSITIVE_INFINITY
    // A start the plan kept (the container is entered to re-run some body instances): its resolved
    // count / items are its output, and its record was reused already.
    const kept = s.setup.plan.state.nodes[startKey]
    if (kept?.status === "completed" && kept.output !== undefined && isObject(kept.output)) {
      const items = Array.isArray(kept.output["items"]) ? kept.output["items"] : undefined
      const count = typeof kept.output["count"] === "number" ? kept.output["count"] : 0
      const size = items?.length ?? Math.max(0, Math.floor(count))
      const problem = exceeded(s, id, container, size, items !== undefined)
      if (problem === undefined) return { items, planned: Math.min(size, max) }
    }
    const config: Record<string, Json> = {}
    if (spec.count !== undefined) config["count"] = spec.count
    if (spec.items !== undefined) config["items"] = spec.items
    const startedAt = now(s)
    yield* announce(s, { _tag: "NodeStarted", runId: s.setup.runId, node: startKey, attempt: 1, at: startedAt })
    const fail = (error: Snapshot.NodeError) => {
      const fields = { attempt: 1, inputs: undefined, fingerprints: { definition }, startedAt }
      return Effect.as(Effect.andThen(failed(s, startAt, id, error, fields), failed(s, placeOf(s, frame, id), id, error, fields)), undefined)
    }
    const resolved = Reference.resolve(config, envFor(s, frame))
    if (Result.isFailure(resolved)) return yield* fail(unresolved(resolved.failure))
    const values = resolved.success as Record<string, Json>
    const items = Array.isArray(values["items"]) ? values["items"] : undefined
    const count = typeof values["count"] === "number" ? values["count"] : undefined
    if ((spec.items !== undefined && items === undefined) || (spec.count !== undefined && count === undefined)) {
      return yield* fail({ message: "count must be a number and items an array", retryable: false })
    }
    const size = items?.length ?? Math.max(0, Math.floor(count ?? 0))
    const problem = exceeded(s, id, container, size, items !== undefined)
    if (problem !== undefined) return yield* fail({ message: problem, retryable: false })
    yield* completed(s, startAt, values, undefined, {
      attempt: 1,
      inputs: values,
      fingerprints: { definition, inputs: Fingerprint.hash(values) },
      startedAt
    })
    return { items, planned: Math.min(size, max) }
  })

const bodyFrame = (s: State, frame: Frame, id: string, started: Started, i: number, kept: boolean): Frame => {
  const path = [...frame.path, i]
  return {
    path,
    containers: [...frame.containers, id],
    items: [...frame.items, started.items?.[i]],
    kept,
    records: [...frame.records, recordsOf(s, id, path)]
  }
}

// The record of one iteration or branch: `{ <exit id>: output }`, keys in the exits' order.
const recordOf = (s: State, id: string, body: Frame): Record<string, Json> => {
  const record: Record<string, Json> = {}
  const records = body.records[body.records.length - 1]!
  for (const exit of s.shape.exits.get(id) ?? []) {
    const r = records[s.shape.position.get(exit)!]
    if (r?.status === "completed" && r.output !== undefined) record[exit] = r.output
  }
  return record
}

const isBlocked = (s: State, id: string, body: Frame) => (s.shape.exits.get(id) ?? []).some((exit) => s.blocked.has(keyOf(endOf(s, exit), body.path)))

const loop = (s: State, id: string, frame: Frame, spec: Workflow.Loop, definition: string, started: Started, runScope: RunScope) =>
  Effect.gen(function*() {
    const outputs: Array<Json> = []
    let stuck = false
    const bound = spec.kind === "while" ? (spec.maxIterations ?? 1) : started.planned
    for (let i = 0; i < bound; i++) {
      const body = bodyFrame(s, frame, id, started, i, false)
      yield* runScope(s, id, body)
      if (isBlocked(s, id, body)) {
        stuck = true
        break
      }
      outputs.push(recordOf(s, id, body))
      if (spec.kind === "while") {
        const condition = Reference.resolve(spec.condition ?? null, envFor(s, frame, { loop: id, index: i }))
        if (Result.isFailure(condition)) break
        if (!s.setup.loopCondition({ loop: spec, definition, condition: condition.success, iteration: i })) break
      }
    }
    const items = started.items
    const scope: Snapshot.LoopScope = { iterations: outputs.length, ...(items === undefined ? {} : { items }), outputs, done: !stuck }
    yield* s.writer.later([{ _tag: "Scope", scope: keyOf(NodeId.block(id), frame.path), scopeOf: { _tag: "loop", loop: scope } }])
    return { outputs, stuck } satisfies Ran
  })

const parallel = (s: State, id: string, frame: Frame, spec: Workflow.Parallel, started: Started, runScope: RunScope) =>
  Effect.gen(function*() {
    const scopeKey = keyOf(NodeId.block(id), frame.path)
    const keptBranches = s.partial.get(id)
    const prior = s.setup.plan.state.parallels[scopeKey]
    const branches = Array.from({ length: started.planned }, (_, i) => i)
    const results = yield* Effect.forEach(branches, (i) => {
      const body = bodyFrame(s, frame, id, started, i, keptBranches !== undefined && !keptBranches.has(i))
      return Effect.map(body.kept ? Effect.void : runScope(s, id, body), (): Json | undefined =>
        isBlocked(s, id, body) ? undefined : body.kept ? prior?.outputs[i] ?? recordOf(s, id, body) : recordOf(s, id, body))
    }, { concurrency: spec.concurrency ?? "unbounded" })
    const outputs: Array<Json> = []
    let stuck = false
    for (const r of results) {
      if (r === undefined) stuck = true
      outputs.push(r ?? null)
    }
    const items = started.items
    const scope: Snapshot.ParallelScope = { count: outputs.length, ...(items === undefined ? {} : { items }), outputs, done: !stuck }
    yield* s.writer.later([{ _tag: "Scope", scope: scopeKey, scopeOf: { _tag: "parallel", parallel: scope } }])
    return { outputs, stuck } satisfies Ran
  })

/** Runs container `id` as a member of the scope instance `frame` (`active`: an incoming edge is live). */
export const runContainer = (s: State, id: string, frame: Frame, active: boolean, runScope: RunScope): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const container = s.shape.containers.get(id)!
    const definition = container.definition
    const end = placeOf(s, frame, id)
    if (!active) {
      yield* skip(s, startPlace(frame, id), definition)
      return yield* skip(s, end, definition)
    }
    const started = yield* start(s, id, frame, container)
    if (started === undefined) return
    const { outputs, stuck } = container.kind === "loop"
      ? yield* loop(s, id, frame, container.loop, definition, started, runScope)
      : yield* parallel(s, id, frame, container.parallel, started, runScope)
    if (stuck) {
      s.blocked.add(end.key)
      return
    }
    if (!s.rerun.has(`${id}#end`)) return
    const endedAt = now(s)
    yield* announce(s, { _tag: "NodeStarted", runId: s.setup.runId, node: end.key, attempt: 1, at: endedAt })
    yield* completed(s, end, outputs, undefined, {
      attempt: 1,
      inputs: outputs,
      fingerprints: { definition, inputs: Fingerprint.hash(outputs) },
      startedAt: endedAt
    })
  })
