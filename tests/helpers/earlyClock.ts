/**
 * A clock whose timers end early: it reads the time as `live` does, but every sleep ends `ms`
 * before its duration is up. Node's timers count from the event loop's cached time, so a real
 * timer may end a little before the clock reads its deadline; this makes that happen every time.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export const early = (ms: number): Effect.Effect<Clock.Clock> =>
  Effect.map(Effect.gen(function*() { return yield* Clock.Clock }), (live: Clock.Clock): Clock.Clock => ({
    ...live,
    currentTimeMillisUnsafe: () => live.currentTimeMillisUnsafe(),
    currentTimeNanosUnsafe: () => live.currentTimeNanosUnsafe(),
    monotonicTimeNanosUnsafe: () => live.monotonicTimeNanosUnsafe(),
    sleep: (duration) => live.sleep(Duration.millis(Math.max(0, Duration.toMillis(duration) - ms)))
  }))
