/**
 * A write of an execution of `Runs` that stopped (its connection lost in flight) reaches the memory
 * store late, after the process took the lease again under a new generation — its journal write, a
 * status transition, `finish` or `setDiagnostics`: it is refused and changes nothing, and the run
 * completes once (the scenario: tests/helpers/lateWrite.ts; on PGlite and PostgreSQL:
 * tests/sql/LateWrite.test.ts).
 */
import { it } from "@effect/vitest"
import { RunStore } from "@ripple/runtime"
import * as Layer from "effect/Layer"
import * as LateWrite from "../helpers/lateWrite.ts"

for (const by of LateWrite.takers) {
  for (const late of LateWrite.lates) {
    it.effect(`${late.name} of the stopped execution, reaching the memory store after ${by} took the lease, is refused and changes nothing`, () =>
      LateWrite.lateWriteRefused(Layer.effect(RunStore.RunStore, RunStore.makeMemory), late, by))
  }
}

it.effect("an execution whose lease another process took is refused its next write, typed, and stops without crashing or writing, on the memory store", () =>
  LateWrite.takenOverStops(Layer.effect(RunStore.RunStore, RunStore.makeMemory)))
