/**
 * The workers' queries agree with `Wake.event`, the one definition of what wakes a dormant run: on
 * PGlite and PostgreSQL, for random dormant runs (every branch asleep, awaiting a signal, an
 * approval or an unpause, in any mix) with random kept deliveries at a random time, the run is in
 * `wakeable` and `claim` takes it exactly when `Wake.event` finds the event that wakes it.
 *
 * Both directions matter: a run claimed that `Wake.event` cannot wake is released and claimed again
 * at the worker's next turn (a hot loop that starves the runs behind it), and a run `Wake.event`
 * can wake that is not claimed never wakes.
 */
import { assert, layer } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { type RunStatus, RunStore, Wake } from "@ripple/runtime"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SqlClient from "effect/sql/SqlClient"
import * as fc from "fast-check"
import * as TestDatabase from "../helpers/database.ts"

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
const dormantRun = fc.record({ reasons, deliveries, at: fc.constantFrom(0, 50, 100, 150, 200) })
type Case = typeof dormantRun extends fc.Arbitrary<infer A> ? A : never

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(backend, (it) => {
    it.effect("a dormant run is wakeable and claimed exactly when Wake.event wakes it", () =>
      Effect.gen(function*() {
        const sqlStore = yield* SqlRunStore.SqlRunStore
        const { store } = sqlStore
        const sql = yield* SqlClient.SqlClient
        const version = yield* store.saveWorkflow(workflow)
        const check = (c: Case) =>
          Effect.gen(function*() {
            const run = yield* store.createRun({ version, mode: "full", input: {}, at: 0 })
            yield* sql`UPDATE ripple_runs SET queued = TRUE WHERE id = ${run.id}`
            yield* store.transition(run.id, { type: "START" }, 1)
            for (let k = 1; k < c.reasons.length; k++) yield* store.transition(run.id, { type: "BRANCH_STARTED" }, 1)
            for (const reason of c.reasons) yield* store.transition(run.id, { type: "BRANCH_DORMANT", branch: reason.node, reason }, 2)
            for (const d of c.deliveries) yield* store.deliver(run.id, { ...d, payload: null, at: 3 })
            const stored = yield* store.getRun(run.id)
            const wakes = Wake.event(stored, yield* store.deliveries(run.id), c.at) !== undefined
            const listed = (yield* store.wakeable(c.at)).some((w) => w.runId === run.id)
            const claimed = yield* sqlStore.claim("props", { ttlMs: 1_000, at: c.at }, 1_000)
            for (const taken of claimed) yield* store.release(taken.lease)
            // Out of the queue, so that later cases claim only their own run.
            yield* sql`UPDATE ripple_runs SET queued = FALSE WHERE id = ${run.id}`
            const label = `${stored.status} run, Wake.event ${wakes ? "wakes" : "does not wake"} it`
            assert.strictEqual(listed, wakes, `wakeable: ${label}`)
            assert.strictEqual(claimed.some((t) => t.id === run.id), wakes, `claim: ${label}`)
          })
        const context = yield* Effect.context<SqlRunStore.SqlRunStore | SqlClient.SqlClient>()
        yield* Effect.promise(() =>
          fc.assert(fc.asyncProperty(dormantRun, (c) => Effect.runPromise(Effect.provideContext(check(c), context))), { numRuns: 60 })
        )
      }).pipe(Effect.provide(SqlRunStore.layer.pipe(Layer.provideMerge(TestDatabase.layer)))))
  })
}
