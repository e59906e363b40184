/**
 * The engine's scheduling core, driven by each scope instance of the interpreter (its units:
 * handler attempts, containers, intrinsic blocks): units forked from plain JavaScript
 * (`Effect.runForkWith`, completion observed by callback, no Deferred per unit; no fiber at all
 * for an effect that is already an `Exit`), their exits queued until the fiber driving the pool
 * takes them, and the execution's handler permits. Units are not children of the driving fiber:
 * whoever drives a pool runs `stop` whatever ends the driver, so no unit outlives it.
 *
 * Built by hand: it is the engine's hot path (`bench:engine`).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { isKnownExit } from "./handlerResult.ts"

/** The exit of an effect that is already one (it answered when it was built), else `undefined`. */
export const answered = <A, E>(effect: Effect.Effect<A, E>): Exit.Exit<A, E> | undefined =>
  isKnownExit(effect) || Exit.isExit(effect) ? effect as Exit.Exit<A, E> : undefined

/** Units of one driver in flight, and the exits they ended with. */
export class Pool<U, A, E> {
  /** Units forked and not ended. */
  inflight = 0
  /** Units ended and not taken yet: the first `ended` of `units`, with their exits in `exits`. */
  ended = 0
  private units: Array<U | undefined> = []
  private exits: Array<Exit.Exit<A, E> | undefined> = []
  /**
   * What `take` handed over last (read with `unitAt` / `exitAt`), swapped with the queue at the
   * next `take`: a driver takes about a wave of exits at a time, and two pairs of arrays serve every
   * wave instead of a new array and an object per exit.
   */
  private takenUnits: Array<U | undefined> = []
  private takenExits: Array<Exit.Exit<A, E> | undefined> = []
  /** Made with the first fiber: a pool whose units all answered at once (a branch of no-op handlers) never needs it. */
  private running: Set<Fiber.Fiber<A, E>> | undefined = undefined
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
      this.queue(unit, exit)
      return
    }
    this.inflight++
    const fiber = this.fork(effect)
    const running = this.running ??= new Set()
    running.add(fiber)
    fiber.addObserver((exit) => {
      this.inflight--
      running.delete(fiber)
      this.onExit?.(unit, exit)
      this.queue(unit, exit)
      const wake = this.wake
      if (wake !== undefined) {
        this.wake = undefined
        wake()
      }
    })
  }

  private queue(unit: U, exit: Exit.Exit<A, E>): void {
    const k = this.ended++
    this.units[k] = unit
    this.exits[k] = exit
  }

  /**
   * Hands over the exits queued so far (the queue starts again empty): how many, each read with
   * `unitAt(k)` and `exitAt(k)` until the next `take`.
   */
  take(): number {
    const count = this.ended
    const units = this.units
    const exits = this.exits
    this.units = this.takenUnits
    this.exits = this.takenExits
    this.takenUnits = units
    this.takenExits = exits
    this.ended = 0
    return count
  }

  /** The unit of the `k`th exit handed over by the last `take`; read once, it is let go. */
  unitAt(k: number): U {
    const unit = this.takenUnits[k]!
    this.takenUnits[k] = undefined
    return unit
  }

  /** The `k`th exit handed over by the last `take`; read once, it is let go. */
  exitAt(k: number): Exit.Exit<A, E> {
    const exit = this.takenExits[k]!
    this.takenExits[k] = undefined
    return exit
  }

  /** Calls `wake` once an exit is queued (at once when one is); a later call replaces an earlier one. */
  notify(wake: () => void): void {
    if (this.ended > 0) return wake()
    this.wake = wake
  }

  /** Interrupts every unit still running, without waiting for them (`stop` waits). */
  halt(): void {
    if (this.running === undefined) return
    for (const fiber of this.running) fiber.interruptUnsafe()
  }

  /** Interrupts every unit still running and waits for them. */
  stop(): Effect.Effect<void> {
    if (this.running === undefined || this.running.size === 0) return Effect.void
    return Fiber.interruptAll([...this.running])
  }
}

/**
 * The handler permits of one execution (its concurrency bound), shared by every scope instance
 * that runs handlers: taken synchronously as a handler is prepared, given back as it settles.
 */
export class Permits {
  private waiters: Array<() => void> = []

  constructor(private available: number) {}

  /** Whether a permit is free. */
  free(): boolean {
    return this.available > 0
  }

  /** Takes a permit if one is free. */
  take(): boolean {
    if (this.available === 0) return false
    this.available--
    return true
  }

  /** Gives a permit back, waking whoever waits for one. */
  release(): void {
    this.available++
    if (this.waiters.length === 0) return
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  /** Calls `wake` once a permit is free (at once when one is). */
  notify(wake: () => void): void {
    if (this.available > 0) return wake()
    this.waiters.push(wake)
  }
}
