/**
 * A sleeper's timer that fires while the database is unavailable past the store's retries tries
 * again until it is back, and wakes the run then (the scenario: tests/helpers/timerOutage.ts; on
 * the memory store: tests/runtime/timer.faults.test.ts). The store's client refuses every statement
 * during the outage (a server that is down), or runs the statements that write a run's machine and
 * loses the connection after each (the wake's write committed, its every acknowledgement lost).
 */
import { layer } from "@effect/vitest"
import { Migrations } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import * as LosingConnection from "../helpers/losingConnection.ts"
import * as TimerOutage from "../helpers/timerOutage.ts"

// The store over a client that fails statements during an outage (`fault`), and the outage.
const faulty = (total: boolean, fault: (losing: LosingConnection.LosingConnection) => void) =>
  Effect.gen(function*() {
    yield* Migrations.run
    const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
    const store = LosingConnection.store(losing)
    const outage: TimerOutage.Outage = {
      begin: Effect.sync(() => fault(losing)),
      end: Effect.sync(() => losing.refuse(() => false, 0)),
      failed: losing.lost,
      total
    }
    return yield* TimerOutage.sleeperWokenAfterOutage(store, outage)
  })

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`a sleeper's timer during an outage on ${backend}`, (it) => {
    it.effect("a timer that fires while every statement is refused wakes the run once the database is back", () =>
      faulty(true, (losing) => losing.refuse(() => true, Infinity)).pipe(Effect.provide(TestDatabase.layer)))

    it.effect("a timer whose wake is written but every acknowledgement of it lost wakes the run once the database is back", () =>
      faulty(false, (losing) => losing.loseAfter((sql) => sql.includes("machine_token = req.token"), Infinity)).pipe(Effect.provide(TestDatabase.layer)))
  })
}
