import { Fingerprint } from "@ripple/core"
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

const json = fc.jsonValue() as fc.Arbitrary<Json>

// Rebuilds every object of a value with its keys in a shuffled order.
const shuffleKeys = (value: Json, random: () => number): Json => {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, random))
  if (value === null || typeof value !== "object") return value
  const entries = Object.entries(value as { readonly [key: string]: Json })
  for (let i = entries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[entries[i], entries[j]] = [entries[j]!, entries[i]!]
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, random)]))
}

const block = fc.record({
  id: fc.constant("b"),
  type: fc.constantFrom("fn", "value", "template"),
  params: fc.dictionary(fc.string({ maxLength: 4 }), json, { maxKeys: 4 })
})

describe("Fingerprint", () => {
  it("canonical ignores key order; hash covers it, as a handler sees it", () => {
    fc.assert(
      fc.property(json, fc.infiniteStream(fc.double({ min: 0, max: 0.999 })), (value, stream) => {
        const it = stream[Symbol.iterator]()
        const shuffled = shuffleKeys(value, () => it.next().value as number)
        assert.strictEqual(Fingerprint.canonical(shuffled), Fingerprint.canonical(value))
        assert.strictEqual(Fingerprint.hash(shuffled) === Fingerprint.hash(value), JSON.stringify(shuffled) === JSON.stringify(value))
      }),
      { numRuns: 300 }
    )
  })

  it("canonical is valid JSON denoting the same value", () => {
    fc.assert(
      fc.property(json, (value) => {
        assert.deepStrictEqual(JSON.parse(Fingerprint.canonical(value)), JSON.parse(JSON.stringify(value)))
      }),
      { numRuns: 300 }
    )
  })

  it("hash is 16 hex characters and differs for different JSON texts", () => {
    fc.assert(
      fc.property(json, json, (a, b) => {
        const ha = Fingerprint.hash(a)
        assert.match(ha, /^[0-9a-f]{16}$/)
        if (JSON.stringify(a) !== JSON.stringify(b)) assert.notStrictEqual(ha, Fingerprint.hash(b))
      }),
      { numRuns: 1000 }
    )
  })

  it("a block fingerprint changes when a param changes and ignores the name", () => {
    fc.assert(
      fc.property(block, fc.string({ maxLength: 4 }), json, fc.string(), (b, key, value, name) => {
        const before = Fingerprint.ofBlock(b)
        assert.strictEqual(Fingerprint.ofBlock({ ...b, name }), before)
        const changed = { ...b, params: { ...b.params, [key]: value } }
        const same = JSON.stringify(changed.params) === JSON.stringify(b.params)
        assert.strictEqual(Fingerprint.ofBlock(changed) === before, same)
      }),
      { numRuns: 300 }
    )
  })

  it("a block fingerprint covers type, volatile and retry", () => {
    const b = { id: "b", type: "fn", params: { x: 1 } }
    const fp = Fingerprint.ofBlock(b)
    assert.notStrictEqual(Fingerprint.ofBlock({ ...b, type: "value" }), fp)
    assert.notStrictEqual(Fingerprint.ofBlock({ ...b, volatile: true }), fp)
    assert.notStrictEqual(Fingerprint.ofBlock({ ...b, retry: { maxAttempts: 3 } }), fp)
    assert.strictEqual(Fingerprint.ofBlock({ ...b, id: "other" }), fp)
    assert.strictEqual(Fingerprint.ofBlock({ ...b, params: {} }), Fingerprint.ofBlock({ id: "b", type: "fn", params: {} }))
  })

  it("a container fingerprint covers its config and body set, not its name or body order", () => {
    const loop = { id: "L", kind: "count" as const, count: 3, body: ["a", "b"], maxIterations: 5 }
    const fp = Fingerprint.ofContainer(loop)
    assert.strictEqual(Fingerprint.ofContainer({ ...loop, body: ["b", "a"], name: "x" }), fp)
    assert.notStrictEqual(Fingerprint.ofContainer({ ...loop, count: 4 }), fp)
    assert.notStrictEqual(Fingerprint.ofContainer({ ...loop, maxIterations: 6 }), fp)
    assert.notStrictEqual(Fingerprint.ofContainer({ ...loop, body: ["a"] }), fp)
    const parallel = { id: "P", kind: "count" as const, count: 3, body: ["a"] }
    assert.notStrictEqual(Fingerprint.ofContainer(parallel, "parallel"), Fingerprint.ofContainer(parallel, "loop"))
    assert.notStrictEqual(Fingerprint.ofContainer({ ...parallel, concurrency: 2 }), Fingerprint.ofContainer(parallel))
  })

  it("known canonical forms and hashes stay stable across versions", () => {
    assert.strictEqual(Fingerprint.canonical({ b: [1, { d: null, c: "x" }], a: true }), '{"a":true,"b":[1,{"c":"x","d":null}]}')
    // Fingerprints are persisted by earlier runs: changing the hash function invalidates every snapshot.
    assert.strictEqual(Fingerprint.hashString(""), "ab3e7c0b0578ab1b")
    assert.strictEqual(Fingerprint.hashString("ab"), "eb98839c56a591b2")
    // A value whose keys are in sorted order keeps the fingerprint of the versions that sorted keys.
    assert.strictEqual(Fingerprint.hash({ a: [1, "x"], b: null }), "1dbc417463d20f20")
    assert.notStrictEqual(Fingerprint.hash({ b: null, a: [1, "x"] }), "1dbc417463d20f20")
  })
})
