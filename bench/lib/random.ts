/**
 * xorshift32: a tiny seeded generator, so every benchmark run measures the same graphs and
 * workflows. Returns a function drawing an integer in `[0, bound)`.
 */
export const generator = (seed: number) => {
  let state = seed >>> 0 || 1
  return (bound: number): number => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) % bound
  }
}
