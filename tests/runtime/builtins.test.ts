import { assert, describe, it } from "@effect/vitest"
import type { Workflow } from "@ripple/core"
import { Builtins, Handler } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

const ctxFor = (
  type: string,
  inputs: { readonly [key: string]: Workflow.Json },
  input: { readonly [key: string]: Workflow.Json } = {}
): Handler.HandlerContext => ({
  inputs,
  params: inputs,
  block: { id: "b", type, params: inputs },
  input,
  runId: "run-1",
  node: "b",
  attempt: 1,
  loop: undefined,
  parallel: undefined,
  signal: new AbortController().signal
})

const run = (type: string, inputs: { readonly [key: string]: Workflow.Json }, input = {}) =>
  Effect.exit(Builtins.handlers[type]!(ctxFor(type, inputs, input)))

const output = (exit: Exit.Exit<Handler.Output, unknown>): Handler.Output => {
  if (Exit.isFailure(exit)) throw new Error(`expected success, got ${String(exit.cause)}`)
  return exit.value
}

const failure = (exit: Exit.Exit<Handler.Output, { readonly message: string; readonly isRetryable: boolean }>) => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  assert.isDefined(error)
  return (error as { readonly error: { readonly message: string; readonly isRetryable: boolean } }).error
}

describe("Builtins", () => {
  it.effect("trigger outputs the run input", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(output(yield* run("trigger", {}, { name: "Ada", n: 1 })), { name: "Ada", n: 1 })
    }))

  it.effect("value outputs its value and needs one", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(output(yield* run("value", { value: [1, { a: null }] })), [1, { a: null }])
      assert.strictEqual(output(yield* run("value", { value: null })), null)
      assert.isFalse(failure(yield* run("value", {})).isRetryable)
    }))

  it.effect("template fills placeholders and fails on a missing key", () =>
    Effect.gen(function*() {
      const hi = yield* run("template", { template: "Hi {{name}}, {{ n }} {{obj}}!", values: { name: "Ada", n: 3, obj: { a: 1 } } })
      assert.strictEqual(output(hi), "Hi Ada, 3 {\"a\":1}!")
      assert.strictEqual(output(yield* run("template", { template: "no placeholders" })), "no placeholders")
      const missing = failure(yield* run("template", { template: "Hi {{name}} {{other}}", values: { name: "Ada" } }))
      assert.include(missing.message, "{{other}}")
      assert.isFalse(missing.isRetryable)
      assert.include(failure(yield* run("template", { template: 3 })).message, "must be a string")
      assert.include(failure(yield* run("template", { template: "x", values: [1] })).message, "must be an object")
    }))

  it.effect("condition compares declaratively and decides true/false", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Workflow.Json, string, Workflow.Json, boolean]> = [
        [1, "eq", 1, true],
        [{ a: [1, 2] }, "eq", { a: [1, 2] }, true],
        [{ a: 1, b: 2 }, "eq", { b: 2, a: 1 }, true],
        ["a", "eq", "b", false],
        ["a", "neq", "b", true],
        [1, "lt", 2, true],
        [2, "lte", 2, true],
        [3, "gt", 2, true],
        ["b", "gte", "a", true],
        ["b", "lt", "a", false],
        ["hello", "contains", "ell", true],
        [[1, { x: 1 }], "contains", { x: 1 }, true],
        [{ k: 1 }, "contains", "k", true],
        [{ k: 1 }, "contains", "j", false],
        [0, "exists", null, true],
        [null, "exists", null, false]
      ]
      for (const [left, op, right, expected] of cases) {
        const result = output(yield* run("condition", { left, op, right }))
        assert.instanceOf(result, Handler.Decision)
        assert.deepStrictEqual(result, Handler.decide(String(expected), expected), `${JSON.stringify(left)} ${op} ${JSON.stringify(right)}`)
      }
      assert.isTrue((output(yield* run("condition", { op: "exists" })) as Handler.Decision).output === false)
      assert.include(failure(yield* run("condition", { left: 1, op: "lt", right: "2" })).message, "cannot order")
      assert.include(failure(yield* run("condition", { left: 1, op: "like", right: 1 })).message, "must be one of")
      assert.include(failure(yield* run("condition", { left: 5, op: "contains", right: 1 })).message, "containment")
      assert.include(failure(yield* run("condition", { left: 5, op: "eq" })).message, "needs both")
    }))

  it.effect("router picks the first matching route, else the default, else fails", () =>
    Effect.gen(function*() {
      const routes = [{ handle: "a", equals: "x" }, { handle: "b", equals: { deep: [1] } }, { handle: "c", equals: "x" }]
      assert.deepStrictEqual(output(yield* run("router", { value: "x", routes })), Handler.decide("a", "a"))
      assert.deepStrictEqual(output(yield* run("router", { value: { deep: [1] }, routes })), Handler.decide("b", "b"))
      assert.deepStrictEqual(output(yield* run("router", { value: "y", routes, default: "d" })), Handler.decide("d", "d"))
      const none = failure(yield* run("router", { value: "y", routes }))
      assert.include(none.message, "no route matches")
      assert.isFalse(none.isRetryable)
      assert.include(failure(yield* run("router", { value: "y", routes: [{ equals: 1 }] })).message, "routes[0]")
    }))

  it.effect("response outputs its value", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(output(yield* run("response", { value: { ok: true } })), { ok: true })
      assert.strictEqual(output(yield* run("response", {})), null)
    }))

  it.effect("fail always fails, not retryable", () =>
    Effect.gen(function*() {
      const error = failure(yield* run("fail", { message: "nope" }))
      assert.strictEqual(error.message, "nope")
      assert.isFalse(error.isRetryable)
    }))
})
