/**
 * Random JSON values that every store must read back as written: unicode edge cases (astral
 * characters, escapes, line separators, combining marks), object keys in random order (integer-like
 * ones included, which JavaScript always lists first), and numbers at the edges of what a double
 * holds. Never a NUL or a lone surrogate: those are refused at the boundary (see `unstorableText`).
 */
import type { Workflow } from "@ripple/core"
import * as fc from "fast-check"

type Json = Workflow.Json

const edgeStrings = [
  "",
  "\"",
  "\\",
  "\\u0000",
  "\n\t\r\b\f",
  "\u0001\u001f\u007f",
  "\u2028\u2029",
  "\ud83d\ude00",
  "\ud834\udd1e",
  "e\u0301",
  "\ufeff\uffff\ufffd",
  "</script>",
  "__proto__",
  "constructor",
  "0",
  "1",
  "01",
  "-1",
  "4294967295",
  "a b"
]

/** A string a store can hold: any code point but NUL, well-formed UTF-16. */
export const storableText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...edgeStrings),
  fc.string({ unit: "binary", maxLength: 8 }).map((s) => s.replaceAll("\u0000", "")),
  fc.string({ unit: "grapheme", maxLength: 4 })
)

/** Numbers as JSON carries them: integers, doubles, -0 and the edges of a double. */
export const jsonNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1e21, 1e-7, 5e-324, Number.MAX_VALUE)
)

/** A JSON value (nested arrays and objects whose keys come in a random order). */
export const storableJson: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    jsonNumber,
    storableText,
    fc.array(tie("value"), { maxLength: 4 }),
    // Object.fromEntries defines own properties, so a "__proto__" key is a key like any other.
    fc.array(fc.tuple(storableText, tie("value")), { maxLength: 5 }).map((entries) => Object.fromEntries(entries) as Json)
  )
})).value

/** A string a store cannot hold (a NUL or a lone surrogate somewhere), and what is wrong with it. */
export const unstorableText: fc.Arbitrary<string> = fc.tuple(
  fc.string({ maxLength: 3 }),
  fc.constantFrom("\u0000", "\ud800", "\udbff", "\udc00", "\udfff", "\udc00\ud800"),
  fc.string({ maxLength: 3 })
).map(([before, bad, after]) => before + bad + after)
