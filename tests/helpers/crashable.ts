/**
 * A store as a crashed process sees it: once `flag.crashed` is set, every write dies (reads still
 * work, for the test to inspect), so a test can kill the "process" at any point of an execution
 * and resume the run over the underlying store, as another process would.
 */
import { RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"

/** `base` whose writes die once `flag.crashed` is set. */
export const crashable = (base: RunStore.RunStore["Service"], flag: { crashed: boolean }): RunStore.RunStore["Service"] => {
  const guard = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> => Effect.suspend(() => flag.crashed ? Effect.die("crashed") : effect)
  return RunStore.RunStore.of({
    ...base,
    // An execution writes through its lease's fenced store: that one crashes too.
    fenced: (lease) => crashable(base.fenced(lease), flag),
    journal: (runId, entries) => guard(base.journal(runId, entries)),
    transition: (runId, event, at) => guard(base.transition(runId, event, at)),
    setDiagnostics: (runId, diagnostics, at) => guard(base.setDiagnostics(runId, diagnostics, at)),
    finish: (runId, event, diagnostics, at) => guard(base.finish(runId, event, diagnostics, at)),
    planCompensations: (runId, nodes, at) => guard(base.planCompensations(runId, nodes, at)),
    compensated: (runId, node, outcome, at) => guard(base.compensated(runId, node, outcome, at))
  })
}
