/**
 * The engine's scheduling core, shared by the wave scheduler (its units: handler attempts) and
 * the scope interpreter (its units: the members of a scope instance): units forked from plain
 * JavaScript (`Effect.runForkWith`, completion observed by callback, no Deferred per unit), their
 * exits queued until the fiber driving the pool takes them, and released successors counted over
 * integer indices. Units are not children of the driving fiber: whoever drives a pool runs `stop`
 * whatever ends the driver, so no unit outlives it.
 *
 * Built by hand: it is the engine's hot path (`bench:engine`).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"

/** The exit of an effect that is already one (it answered when it was built), else `undefined`. */
export const answered = <A, E>(effect: Effect.Effect<A, E>): Exit.Exit<A, E> | undefined =>
  Exit.isExit(effect) ? effect as Exit.Exit<A, E> : undefined

/** A unit's exit, with the unit it ended. */
export interface Completion<U, A, E> {
  readonly unit: U
  readonly exit: Exit.Exit<A, E>
}

/** Units of one driver in flight, and the exits they ended with. */
export class Pool<U, A, E> {
  /** Units forked and not ended. */
  inflight = 0
  completions: Array<Completion<U, A, E>> = []
  private readonly running = new Set<Fiber.Fiber<A, E>>()
  private wake: (() => void) | undefined = undefined

  constructor(
    private readonly fork: (effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>,
    /** Called as a unit ends, before its exit is queued (e.g. to abort what an interrupted handler left). */
    private readonly onExit: ((unit: U, exit: Exit.Exit<A, E>) => void) | undefined = undefined
  ) {}

  /** Runs `effect` for `unit`; an effect that is already an `Exit` (it answered when built) needs no fiber. */
  launch(unit: U, effect: Effect.Effect<A, E>): void {
    const exit = answered(effect)
    if (exit !== undefined) {
      this.completions.push({ unit, exit })
      return
    }
    this.inflight++
    const fiber = this.fork(effect)
    this.running.add(fiber)
    fiber.addObserver((exit) => {
      this.inflight--
      this.running.delete(fiber)
      this.onExit?.(unit, exit)
      this.completions.push({ unit, exit })
      const wake = this.wake
      if (wake !== undefined) {
        this.wake = undefined
        wake()
      }
    })
  }

  /** The exits queued so far (the queue starts again empty). */
  take(): Array<Completion<U, A, E>> {
    const done = this.completions
    this.completions = []
    return done
  }

  /** Resumes once an exit is queued (at once when one is). */
  readonly waiting: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.completions.length > 0) return resume(Effect.void)
    this.wake = () => resume(Effect.void)
  })

  /** Interrupts every unit still running and waits for them. */
  readonly stop: Effect.Effect<void> = Effect.suspend(() => {
    if (this.running.size === 0) return Effect.void
    const fibers = [...this.running]
    return Fiber.interruptAll(fibers)
  })
}

/**
 * Runs every node of a graph over integer indices (`indegree`, CSR successors) once its
 * predecessors ended, at once as many as are ready, each through `unit`; fails with the first unit
 * that fails (interrupting and awaiting the rest). A unit that did not end successfully releases
 * nothing: an interrupted one (a cancel) starts none of its successors.
 */
export const runGraph = <E>(
  graph: { readonly indegree: Int32Array; readonly outOffsets: Int32Array; readonly outTargets: Int32Array },
  unit: (index: number) => Effect.Effect<void, E>
): Effect.Effect<void, E> =>
  Effect.flatMap(Effect.context<never>(), (services) => {
    const pool = new Pool<number, void, E>(Effect.runForkWith(services))
    const { indegree, outOffsets, outTargets } = graph
    const n = indegree.length
    const pending = indegree.slice()
    const driver = Effect.gen(function*() {
      for (let i = 0; i < n; i++) if (pending[i] === 0) pool.launch(i, unit(i))
      let left = n
      while (left > 0) {
        yield* pool.waiting
        for (const { exit, unit: i } of pool.take()) {
          if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
          left--
          for (let k = outOffsets[i]!; k < outOffsets[i + 1]!; k++) {
            const j = outTargets[k]!
            if (--pending[j]! === 0) pool.launch(j, unit(j))
          }
        }
      }
    })
    return Effect.ensuring(driver, pool.stop)
  })
