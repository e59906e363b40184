/**
 * A sleeper's timer that fires while the memory store is unavailable past its retries tries again
 * until the store is back, and wakes the run then (the scenario: tests/helpers/timerOutage.ts;
 * on PGlite and PostgreSQL: tests/sql/TimerFaults.test.ts).
 */
import { it } from "@effect/vitest"
import * as MemoryOutage from "../helpers/memoryOutage.ts"
import * as TimerOutage from "../helpers/timerOutage.ts"

it.effect("a sleeper whose timer fires while the memory store is down is woken once the store is back", () => {
  const { outage, store } = MemoryOutage.make()
  return TimerOutage.sleeperWokenAfterOutage(store, outage)
})
