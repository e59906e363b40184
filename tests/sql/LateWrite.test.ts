/**
 * A write of an execution of `Runs` that stopped (its connection lost in flight) reaches the
 * database late, after the process took the lease again under a new generation — its journal
 * write, a status transition, `finish` or `setDiagnostics`: it is refused and changes nothing, and
 * the run completes once (the scenario: tests/helpers/lateWrite.ts; on the memory store:
 * tests/runtime/runs.lateWrite.test.ts).
 */
import { layer } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import { Migrations, SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestDatabase from "../helpers/database.ts"
import * as LateWrite from "../helpers/lateWrite.ts"

// The SQL store, on the test's schema (migrated first, by `onDatabase`).
const sqlStore = Layer.effect(RunStore.RunStore, Effect.map(SqlRunStore.make, ({ store }) => store))
const onDatabase = <R>(scenario: Effect.Effect<void, unknown, R>) => Effect.andThen(Migrations.run, scenario).pipe(Effect.provide(TestDatabase.layer))

for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(`a late write on ${backend}`, (it) => {
    for (const by of LateWrite.takers) {
      for (const late of LateWrite.lates) {
        it.effect(`${late.name} of the stopped execution, reaching the database after ${by} took the lease, is refused and changes nothing`, () =>
          onDatabase(LateWrite.lateWriteRefused(sqlStore, late, by)))
      }
    }
    it.effect("an execution whose lease another process took is refused its next write, typed, and stops without crashing or writing", () =>
      onDatabase(LateWrite.takenOverStops(sqlStore)))
  })
}
