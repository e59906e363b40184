import { assert, describe, it } from "@effect/vitest"
import { Plan, Workflow } from "@ripple/core"
import { type Handler, Ripple, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as fc from "fast-check"

/** A random step DAG: step i needs some earlier steps and has a config `k`; some steps are observed. */
interface Shape {
  readonly steps: ReadonlyArray<{ readonly needs: ReadonlyArray<number>; readonly k: number }>
  readonly outputs: ReadonlyArray<number>
}

const shape: fc.Arbitrary<Shape> = fc.integer({ min: 1, max: 7 }).chain((n) =>
  fc.record({
    steps: fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        fc.record({
          needs: i === 0 ? fc.constant([]) : fc.uniqueArray(fc.integer({ min: 0, max: i - 1 }), { maxLength: 3 }),
          k: fc.integer({ min: -9, max: 9 })
        }))
    ),
    outputs: fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { minLength: 1, maxLength: n })
  })
)

const name = (i: number) => `s${i}`

/** What the builder is typed for; a loop over a random shape only knows names at run time. */
interface Loose {
  step(name: string, options: object): Loose
  output(...names: ReadonlyArray<string>): { build(): Result.Result<Ripple.Built<unknown, unknown, never>, Ripple.BuilderError> }
}

/** Step outputs: k + n + the sum of what it needs, and the instances executed. */
const codeFirst = (s: Shape, executed: Array<string>) => {
  let builder = Ripple.workflow("rand", { input: Schema.Struct({ n: Schema.Number }) }) as unknown as Loose
  s.steps.forEach((step, i) => {
    builder = builder.step(name(i), {
      needs: step.needs.map(name),
      config: { k: step.k },
      handler: (deps: Record<string, number>, ctx: { readonly input: { readonly n: number }; readonly config: { readonly k: number }; readonly node: string }) =>
        Effect.sync(() => {
          executed.push(ctx.node)
          return Object.values(deps).reduce((sum, v) => sum + v, ctx.config.k + ctx.input.n)
        })
    })
  })
  const built = builder.output(...s.outputs.map(name)).build()
  if (Result.isFailure(built)) throw new Error(String(built.failure))
  return built.success
}

/** The expected translation, written independently of the builder's code. */
const oracle = (s: Shape): Workflow.Workflow => ({
  id: "rand",
  inputs: { n: { type: "number" } },
  blocks: [
    { id: "trigger", type: "trigger" },
    ...s.steps.map((step, i) => ({
      id: name(i),
      type: `ripple:rand/${name(i)}`,
      params: {
        ...(step.needs.length > 0 ? { needs: Object.fromEntries(step.needs.map((d) => [name(d), { $ref: `blocks.${name(d)}.output` }])) } : {}),
        config: { k: step.k }
      }
    }))
  ],
  edges: s.steps.flatMap((step, i) =>
    step.needs.length === 0 ? [{ source: "trigger", target: name(i) }] : step.needs.map((d) => ({ source: name(d), target: name(i) }))
  ),
  outputs: s.outputs.map(name)
})

const evaluate = (s: Shape, n: number): Array<number> => {
  const out: Array<number> = []
  s.steps.forEach((step, i) => (out[i] = step.needs.reduce((sum, d) => sum + out[d]!, step.k + n)))
  return out
}

const layerOf = (handlers: Layer.Layer<Handler.Handlers>) =>
  Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(handlers))

const scenario = shape.chain((before) =>
  fc.record({
    before: fc.constant(before),
    edited: fc.integer({ min: 0, max: before.steps.length - 1 }),
    k: fc.integer({ min: -9, max: 9 }),
    target: fc.integer({ min: 0, max: before.steps.length - 1 }),
    n: fc.integer({ min: -5, max: 5 })
  })
)

describe("Ripple builder: random step DAGs", () => {
  it("translate to the expected workflow, which decodes and plans like it", () => {
    fc.assert(
      fc.property(shape, (s) => {
        const built = codeFirst(s, [])
        assert.deepStrictEqual(built.workflow, oracle(s))
        assert.isTrue(Result.isSuccess(Workflow.decode(oracle(s))))
        const full = Result.getOrThrow(Plan.full(built.workflow))
        assert.deepStrictEqual([full.rerun, full.start], [Result.getOrThrow(Plan.full(oracle(s))).rerun, Result.getOrThrow(Plan.full(oracle(s))).start])
      }),
      { numRuns: 200 }
    )
  })

  it.effect("run from any step after editing one: only re-run steps execute, outputs equal a direct evaluation", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(scenario, async ({ before, edited, k, n, target }) => {
          const after: Shape = { ...before, steps: before.steps.map((step, i) => (i === edited ? { ...step, k } : step)) }
          const executed: Array<string> = []
          const first = codeFirst(before, executed)
          const second = codeFirst(after, executed)
          const outcome = await Effect.runPromise(
            Effect.gen(function*() {
              const runs = yield* Runs.Runs
              const store = yield* RunStore.RunStore
              const prior = yield* runs.start(first.workflow, { n })
              assert.strictEqual(yield* runs.wait(prior.runId), "completed")
              executed.length = 0
              const again = yield* runs.runFrom(second.workflow, { target: name(target), run: prior.runId })
              assert.strictEqual(yield* runs.wait(again.runId), "completed")
              const expected = Result.getOrThrow(Plan.runFrom({ workflow: oracle(after), snapshot: yield* store.snapshot(prior.runId), target: name(target) }))
              return { plan: again.plan, expected, snapshot: yield* store.snapshot(again.runId) }
            }).pipe(Effect.provide(layerOf(second.handlers)))
          )
          assert.deepStrictEqual([outcome.plan.rerun, outcome.plan.reused], [outcome.expected.rerun, outcome.expected.reused])
          const rerun = new Set(outcome.plan.rerun)
          for (const node of executed) assert.isTrue(rerun.has(node), `${node} executed but the plan reuses it`)
          assert.strictEqual(new Set(executed).size, executed.length)
          assert.isTrue(executed.includes(name(target)))
          const values = evaluate(after, n)
          for (const o of after.outputs) assert.strictEqual(outcome.snapshot.nodes[name(o)]?.output, values[o], name(o))
        }),
        { numRuns: 100 }
      )
    ))
})
