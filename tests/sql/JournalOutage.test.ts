/**
 * An execution of `Runs` whose journal write fails past the store's retries before its lease's
 * deadline (the database refusing every statement a few seconds) is taken up again by its process
 * once the database is back, and completes as a run without faults (the scenario:
 * tests/helpers/journalOutage.ts; on the memory store: tests/runtime/runs.outage.test.ts).
 */
import { layer } from "@effect/vitest"
import { Migrations } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestDatabase from "../helpers/database.ts"
import * as JournalOutage from "../helpers/journalOutage.ts"
import * as LosingConnection from "../helpers/losingConnection.ts"

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`a journal write during an outage on ${backend}`, (it) => {
    it.effect("a journal write refused past the retries: the run is taken up again and completes once the database is back", () =>
      Effect.gen(function*() {
        yield* Migrations.run
        const losing = yield* LosingConnection.make(yield* SqlClient.SqlClient)
        const store = LosingConnection.store(losing)
        return yield* JournalOutage.runTakenUpAfterOutage(store, {
          begin: Effect.sync(() => losing.refuse(() => true, Infinity)),
          end: Effect.sync(() => losing.refuse(() => false, 0)),
          failed: losing.lost,
          total: true
        })
      }).pipe(Effect.provide(TestDatabase.layer)))
  })
}
