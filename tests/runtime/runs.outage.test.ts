/**
 * An execution of `Runs` whose journal write fails past the store's retries before its lease's
 * deadline is taken up again by its process once the memory store is back, and completes as a run
 * without faults (the scenario: tests/helpers/journalOutage.ts; on PGlite and PostgreSQL:
 * tests/sql/JournalOutage.test.ts).
 */
import { it } from "@effect/vitest"
import * as JournalOutage from "../helpers/journalOutage.ts"
import * as MemoryOutage from "../helpers/memoryOutage.ts"

it.effect("a journal write that fails while the memory store is down: the run is taken up again and completes once it is back", () => {
  const { outage, store } = MemoryOutage.make()
  return JournalOutage.runTakenUpAfterOutage(store, outage)
})
