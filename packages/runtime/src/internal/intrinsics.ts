/**
 * The block types the engine implements itself (`Engine.intrinsicTypes`): `approval` (paused until
 * approved or rejected), `wait` (suspended until a signal), `sleep` (suspended until a wake time on
 * the effect `Clock`) and `child` (a child run, awaited as the internal signal `childSignal`). Each
 * completes or fails at once when what it waits for is there (a delivery not yet consumed, a wake
 * time reached) and parks its instance otherwise; a node still dormant in the run's machine stays
 * parked.
 */
import { Params, type Snapshot, Workflow } from "@ripple/core"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type { JournalEntry } from "../RunStore.ts"
import { confirmed } from "./control.ts"
import { isObject } from "./json.ts"
import { childOf, childSignal } from "./parking.ts"
import { completed, failed, type Fields, park, type Place, type State, type StoreError, take } from "./state.ts"

type Json = Workflow.Json
type Params = { readonly [key: string]: Json }

/** One started intrinsic node instance. */
interface Started {
  readonly place: Place
  readonly id: string
  readonly inputs: Params
  readonly fingerprints: Snapshot.Fingerprints
  readonly fields: Fields & { readonly inputs: Json }
}

const approval = (s: State, n: Started): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const decision = s.setup.dormant.has(n.place.key) ? undefined : yield* take(s, "approval", n.place.key)
    if (decision !== undefined) {
      const consumed: JournalEntry = { _tag: "Consumed", kind: "approval", name: n.place.key }
      const payload = isObject(decision.payload) ? decision.payload : {}
      if (payload["approved"] === true) return yield* completed(s, n.place, payload["payload"] ?? null, undefined, n.fields, [consumed])
      const reason = typeof payload["reason"] === "string" ? payload["reason"] : "no reason given"
      return yield* failed(s, n.place, n.id, { message: `rejected: ${reason}`, retryable: false }, n.fields, [consumed])
    }
    const reason = typeof n.inputs["reason"] === "string" ? n.inputs["reason"] : "approval"
    return yield* park(s, n.place, n.inputs, n.fingerprints, { _tag: "Paused", reason, branch: { _tag: "Approval", node: n.place.key } })
  })

const awaitSignal = (s: State, n: Started, signal: string) =>
  park(s, n.place, n.inputs, n.fingerprints, {
    _tag: "Waiting",
    wait: { kind: "signal", signal },
    branch: { _tag: "Signal", node: n.place.key, signal }
  })

const wait = (s: State, n: Started): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const signal = n.inputs["signal"]
    if (typeof signal !== "string") {
      return yield* failed(s, n.place, n.id, { message: `wait block ${n.id}: param "signal" must be a string`, retryable: false }, n.fields)
    }
    // A name read by a reference is known only now (a literal one was checked with the workflow):
    // one the stores cannot keep a delivery for would leave the run waiting for ever.
    const bytes = Params.utf8LengthOver(signal, Params.maxSignalBytes)
    if (bytes !== undefined) {
      const message = `wait block ${n.id}: its signal name takes ${bytes} bytes, at most ${Params.maxSignalBytes} can be signalled`
      return yield* failed(s, n.place, n.id, { message, retryable: false }, n.fields)
    }
    const delivery = s.setup.dormant.has(n.place.key) ? undefined : yield* take(s, "signal", signal)
    if (delivery !== undefined) {
      return yield* completed(s, n.place, delivery.payload, undefined, n.fields, [{ _tag: "Consumed", kind: "signal", name: signal }])
    }
    return yield* awaitSignal(s, n, signal)
  })

const child = (s: State, n: Started): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    // The child started by an earlier execution of this run is awaited, never started twice.
    let signal = s.waits.get(n.place.key)?.signal
    if (signal === undefined) {
      const spawn = s.setup.spawn
      if (spawn === undefined) {
        return yield* failed(s, n.place, n.id, { message: `child block ${n.id}: child runs need the Runs service`, retryable: false }, n.fields)
      }
      // A child run's blocks are started on this run's behalf, and no journal write of this run
      // acknowledges them: the store is asked whether this run was cancelled (or its lease lost) first.
      const starting = confirmed(s.setup.control)
      if (starting !== undefined) yield* starting
      const spawned = yield* spawn({ node: n.place.key, workflow: n.inputs["workflow"] ?? null, input: n.inputs["input"] ?? {} })
      if (Result.isFailure(spawned)) {
        return yield* failed(s, n.place, n.id, { message: `child block ${n.id}: ${spawned.failure}`, retryable: false }, n.fields)
      }
      signal = childSignal(spawned.success)
    }
    const delivery = s.setup.dormant.has(n.place.key) ? undefined : yield* take(s, "signal", signal)
    if (delivery === undefined) return yield* awaitSignal(s, n, signal)
    const consumed: JournalEntry = { _tag: "Consumed", kind: "signal", name: signal }
    const payload = isObject(delivery.payload) ? delivery.payload : {}
    if (payload["status"] === "completed") return yield* completed(s, n.place, payload["output"] ?? null, undefined, n.fields, [consumed])
    const error = typeof payload["error"] === "string" ? `: ${payload["error"]}` : ""
    return yield* failed(s, n.place, n.id, {
      message: `child run ${childOf(signal) ?? signal} ${String(payload["status"])}${error}`,
      retryable: false
    }, n.fields, [consumed])
  })

const sleep = (s: State, n: Started): Effect.Effect<void, StoreError> => {
  const { id, inputs } = n
  const key = n.place.key
  const until = inputs["until"]
  const ms = inputs["ms"]
  const startedAt = n.fields.startedAt
  const wakeAt = s.waits.get(key)?.wakeAt ??
    (typeof until === "number" ? until : typeof until === "string" ? Date.parse(until) : typeof ms === "number" ? startedAt + ms : Number.NaN)
  if (!Number.isFinite(wakeAt)) {
    return failed(s, n.place, id, { message: `sleep block ${id}: needs "ms" (a number) or "until" (epoch ms or an ISO date)`, retryable: false }, n.fields)
  }
  // A time read through a reference escapes decode's check; past the range of `Date` it could
  // be neither stored as a wake time nor shown.
  if (Math.abs(wakeAt) > Workflow.maxTime) {
    return failed(s, n.place, id, {
      message: `sleep block ${id}: wakes at ${wakeAt}, past the last date (epoch ms ${Workflow.maxTime}, year 275760)`,
      retryable: false
    }, n.fields)
  }
  if (!s.setup.dormant.has(key) && startedAt >= wakeAt) return completed(s, n.place, { wakeAt }, undefined, n.fields)
  return park(s, n.place, inputs, n.fingerprints, {
    _tag: "Waiting",
    wait: { kind: "timer", wakeAt },
    branch: { _tag: "Sleep", node: key, until: wakeAt }
  })
}

const intrinsics: { readonly [type: string]: (s: State, n: Started) => Effect.Effect<void, StoreError> } = { approval, wait, child, sleep }

/** Runs a started instance of an intrinsic block type; `undefined` for any other type (a handler runs it). */
export const intrinsic = (s: State, type: string, n: Started): Effect.Effect<void, StoreError> | undefined => {
  const run = Object.hasOwn(intrinsics, type) ? intrinsics[type] : undefined
  return run === undefined ? undefined : run(s, n)
}
