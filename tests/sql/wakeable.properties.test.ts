/**
 * What wakes a dormant run, as the run-status machine defines it: on PGlite and PostgreSQL, for
 * random dormant runs (every branch asleep, awaiting a signal, an approval or an unpause, in any
 * mix) with random kept deliveries at a random time, the run is in `wakeable`, `claim` takes it and
 * `Wake.event` (the executors' rule) finds an event exactly when the machine accepts one of the
 * events those deliveries and that time make: `SIGNAL` per kept signal, `APPROVE` per kept approval,
 * `UNPAUSE` of any node when an unpause is kept, `TIMER_FIRED` at that time.
 *
 * The reference is the independent run-status model (`tests/helpers/runStatusModel.ts`, a plain
 * reducer written from the rules' prose, not from the machine), driven from a pending run through
 * the events the test sends the store: neither the runtime's machine nor its own waking rule.
 * Both directions matter: a run claimed that nothing wakes is released and claimed again at the
 * worker's next turn (a hot loop that starves the runs behind it), and a run an event can wake that
 * is not claimed never wakes.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { RunStatus, RunStore, Wake } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as fc from "fast-check"
import * as TestDatabase from "../helpers/database.ts"
import { initialModel, stepModel } from "../helpers/runStatusModel.ts"

const workflow: Workflow.Workflow = { id: "wakeable-props", blocks: [{ id: "b", type: "value", params: { value: 1 } }], edges: [] }

/** Dormant reasons, one per branch: nodes are numbered by branch so that they are distinct. */
const reasons: fc.Arbitrary<ReadonlyArray<RunStatus.DormantReason>> = fc.array(
  fc.oneof(
    fc.record({ _tag: fc.constant("Sleep" as const), until: fc.constantFrom(50, 100, 150) }),
    fc.record({ _tag: fc.constant("Signal" as const), signal: fc.constantFrom("a", "b") }),
    fc.record({ _tag: fc.constant("Approval" as const) }),
    fc.record({ _tag: fc.constant("Pause" as const), reason: fc.constant("paused") })
  ),
  { minLength: 1, maxLength: 4 }
).map((list) => list.map((reason, k) => ({ ...reason, node: `n${k}` }) as RunStatus.DormantReason))

/** Kept deliveries: signals by name, approvals by node, the unpause `Wake.overrule` keeps. */
const deliveries: fc.Arbitrary<ReadonlyArray<Pick<RunStore.Delivery, "kind" | "name">>> = fc.uniqueArray(
  fc.oneof(
    fc.record({ kind: fc.constant("signal" as const), name: fc.constantFrom("a", "b") }),
    fc.record({ kind: fc.constant("approval" as const), name: fc.constantFrom("n0", "n1", "n2", "n3") }),
    fc.constant({ kind: "unpause" as const, name: "" })
  ),
  { maxLength: 3, selector: (d) => `${d.kind}:${d.name}` }
)

// Times on a coarse grid, so that a sleeper is often due exactly at the time asked.
const dormantRun = fc.record({ reasons, deliveries, at: fc.constantFrom(0, 50, 100, 150, 200), cancel: fc.boolean() })
type Case = typeof dormantRun extends fc.Arbitrary<infer A> ? A : never

const nodes = ["n0", "n1", "n2", "n3"] as const

/** Whether the model, driven through `events` from a pending run, accepts one of `candidates`. */
const machineAccepts = (events: ReadonlyArray<RunStatus.Event>, ...candidates: ReadonlyArray<RunStatus.Event>): boolean => {
  let model = initialModel
  for (const event of events) {
    const next = stepModel(model, event)
    if (next._tag === "Rejected") throw new Error(`the reference model refused ${event.type}: ${next.reason}`)
    model = next.model
  }
  return candidates.some((event) => stepModel(model, event)._tag === "Accepted")
}

/** Whether the machine, driven through `events`, accepts one of the events the kept deliveries and the time make. */
const machineWakes = (events: ReadonlyArray<RunStatus.Event>, c: Case): boolean => {
  const candidates: Array<RunStatus.Event> = [{ type: "TIMER_FIRED", at: c.at }]
  for (const d of c.deliveries) {
    if (d.kind === "signal") candidates.push({ type: "SIGNAL", name: d.name, payload: null })
    if (d.kind === "approval") candidates.push({ type: "APPROVE", node: d.name, payload: null })
    if (d.kind === "unpause") for (const node of nodes) candidates.push({ type: "UNPAUSE", node, payload: null })
  }
  return machineAccepts(events, ...candidates)
}

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(backend, (it) => {
    it.effect("a dormant run is wakeable, claimed and woken by Wake.event exactly when the machine takes a waking event", () =>
      Effect.gen(function*() {
        const sqlStore = yield* SqlRunStore.SqlRunStore
        const { store } = sqlStore
        const sql = yield* SqlClient.SqlClient
        const version = yield* store.saveWorkflow(workflow)
        const check = (c: Case) =>
          Effect.gen(function*() {
            const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
            yield* sql`UPDATE ripple_runs SET queued = TRUE WHERE id = ${run.id}`
            const events: Array<RunStatus.Event> = [
              { type: "START" },
              ...c.reasons.slice(1).map((): RunStatus.Event => ({ type: "BRANCH_STARTED" })),
              ...c.reasons.map((reason): RunStatus.Event => ({ type: "BRANCH_DORMANT", branch: reason.node, reason }))
            ]
            for (const event of events) yield* store.transition(run.id, event, event.type === "BRANCH_DORMANT" ? 2 : 1)
            for (const d of c.deliveries) yield* store.deliver(run.id, { ...d, payload: null, at: 3 })
            // A cancel asked by a process that went away before it could end the run itself.
            if (c.cancel) yield* store.requestCancel(run.id, 4)
            const stored = yield* store.getRun(run.id)
            const wakes = machineWakes(events, c)
            const executorWakes = Wake.event(stored, yield* store.deliveries(run.id), c.at) !== undefined
            const listed = (yield* store.wakeable(c.at)).some((w) => w.runId === run.id)
            const claimed = yield* sqlStore.claim("props", { ttlMs: 1_000, at: c.at }, 1_000)
            for (const taken of claimed) yield* store.release(taken.lease)
            // Out of the queue, so that later cases claim only their own run.
            yield* sql`UPDATE ripple_runs SET queued = FALSE WHERE id = ${run.id}`
            const label = `${stored.status} run, the machine ${wakes ? "takes" : "takes no"} waking event`
            assert.strictEqual(executorWakes, wakes, `Wake.event: ${label}`)
            assert.strictEqual(listed, wakes, `wakeable: ${label}`)
            // A worker also takes a dormant run to end it on a recorded cancel (the machine takes CANCEL).
            const cancels = c.cancel && machineAccepts(events, { type: "CANCEL" })
            assert.strictEqual(claimed.some((t) => t.id === run.id), wakes || cancels, `claim: ${label}${c.cancel ? ", cancel asked" : ""}`)
          })
        const context = yield* Effect.context<SqlRunStore.SqlRunStore | SqlClient.SqlClient>()
        yield* Effect.promise(() =>
          fc.assert(fc.asyncProperty(dormantRun, (c) => Effect.runPromise(Effect.provideContext(check(c), context))), { numRuns: 60 })
        )
      }).pipe(Effect.provide(SqlRunStore.layer.pipe(Layer.provideMerge(TestDatabase.layer)))))
  })
}
