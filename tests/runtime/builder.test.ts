import { assert, describe, it } from "@effect/vitest"
import { Plan, Workflow } from "@ripple/core"
import { BlockError, Handler, Ripple, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { TestClock } from "effect/testing"

const layerOf = (handlers: Layer.Layer<Handler.Handlers>) =>
  Runs.layer().pipe(Layer.provideMerge(RunStore.layerMemory), Layer.provideMerge(handlers))

const ok = <A, E>(result: Result.Result<A, E>): A => {
  if (Result.isFailure(result)) throw new Error(`expected a success, got ${String(result.failure)}`)
  return result.success
}

const runToEnd = (workflow: Workflow.Workflow, input: { readonly [key: string]: Workflow.Json }) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const store = yield* RunStore.RunStore
    const { runId } = yield* runs.start(workflow, input)
    const status = yield* runs.wait(runId)
    const snapshot = yield* store.snapshot(runId)
    return { runId, status, nodes: snapshot.nodes }
  })

const digest = Ripple.workflow("digest", { input: Schema.Struct({ text: Schema.String, times: Schema.Number }) })
  .step("split", (_, ctx) => Effect.succeed(ctx.input.text.split(" ")))
  .step("count", { needs: ["split"], handler: ({ split }) => Effect.succeed(split.length) })
  .step("shout", {
    needs: ["split", "count"],
    config: { suffix: "!" },
    handler: ({ count, split }, ctx) => Effect.succeed(`${split.map((w) => w.toUpperCase()).join(" ")}${ctx.config.suffix.repeat(ctx.input.times)} (${count})`)
  })
  .output("shout", "count")

describe("Ripple builder", () => {
  it("translates steps to an ordinary workflow: trigger, blocks with needs references, edges, outputs", () => {
    const built = ok(digest.build())
    assert.deepStrictEqual(built.workflow, {
      id: "digest",
      inputs: { text: { type: "string" }, times: { type: "number" } },
      blocks: [
        { id: "trigger", type: "trigger" },
        { id: "split", type: "ripple:digest/split" },
        { id: "count", type: "ripple:digest/count", params: { needs: { split: { $ref: "blocks.split.output" } } } },
        {
          id: "shout",
          type: "ripple:digest/shout",
          params: { needs: { split: { $ref: "blocks.split.output" }, count: { $ref: "blocks.count.output" } }, config: { suffix: "!" } }
        }
      ],
      edges: [
        { source: "trigger", target: "split" },
        { source: "split", target: "count" },
        { source: "split", target: "shout" },
        { source: "count", target: "shout" }
      ],
      outputs: ["shout", "count"]
    })
    assert.isTrue(Result.isSuccess(Workflow.decode(built.workflow)))
    assert.deepStrictEqual(Object.keys(built.registry).sort(), ["ripple:digest/count", "ripple:digest/shout", "ripple:digest/split"])
  })

  it.effect("runs through Runs: handlers receive typed dependency outputs, the decoded input and config", () =>
    Effect.gen(function*() {
      const built = ok(digest.build())
      const { nodes, status } = yield* runToEnd(built.workflow, built.encodeInput({ text: "a b c", times: 2 }))
      assert.strictEqual(status, "completed")
      assert.deepStrictEqual(nodes["split"]?.output, ["a", "b", "c"])
      assert.strictEqual(nodes["count"]?.output, 3)
      assert.strictEqual(nodes["shout"]?.output, "A B C!! (3)")
    }).pipe(Effect.provide(layerOf(ok(digest.build()).handlers))))

  it.effect("a run input the schema refuses fails the step that decodes it (declarations are coarser than the schema)", () =>
    Effect.gen(function*() {
      const strict = Ripple.workflow("strict", { input: Schema.Struct({ n: Schema.Number.check(Schema.isInt()) }) })
        .step("half", (_, ctx) => Effect.succeed(ctx.input.n / 2))
        .build()
      const built = ok(strict)
      assert.deepStrictEqual(built.workflow.inputs, { n: { type: "number" } })
      const good = yield* runToEnd(built.workflow, { n: 4 }).pipe(Effect.provide(layerOf(built.handlers)))
      assert.strictEqual(good.nodes["half"]?.output, 2)
      const bad = yield* runToEnd(built.workflow, { n: 1.5 }).pipe(Effect.provide(layerOf(built.handlers)))
      assert.strictEqual(bad.status, "failed")
      assert.strictEqual(bad.nodes["half"]?.status, "failed")
    }))

  it("derives input declarations from the schema: optional keys, arrays, objects, unions, descriptions", () => {
    const built = ok(
      Ripple.workflow("inputs", {
        input: Schema.Struct({
          name: Schema.String.annotate({ description: "who" }),
          tags: Schema.Array(Schema.String),
          meta: Schema.Struct({ a: Schema.Number }),
          flag: Schema.optionalKey(Schema.Boolean),
          mode: Schema.Literals(["a", "b"]),
          either: Schema.Union([Schema.String, Schema.Number])
        })
      })
        .step("noop", () => Effect.succeed(null))
        .build()
    )
    assert.deepStrictEqual(built.workflow.inputs, {
      name: { type: "string", description: "who" },
      tags: { type: "array" },
      meta: { type: "object" },
      flag: { type: "boolean", required: false },
      mode: { type: "string" },
      either: { type: "json" }
    })
  })

  it("sets the block fields a step declares: retry, volatile, version; `after` orders without a reference", () => {
    const built = ok(
      Ripple.workflow("fields")
        .step("clock", { volatile: true, handler: () => Effect.succeed(1) })
        .step("write", { after: ["clock"], version: "2", retry: { maxAttempts: 3 }, handler: () => Effect.succeed(2) })
        .build()
    )
    assert.deepStrictEqual(built.workflow.blocks.slice(1), [
      { id: "clock", type: "ripple:fields/clock", volatile: true },
      { id: "write", type: "ripple:fields/write", params: { version: "2" }, retry: { maxAttempts: 3 } }
    ])
    assert.deepStrictEqual(built.workflow.edges, [{ source: "trigger", target: "clock" }, { source: "clock", target: "write" }])
  })

  it.effect("retry: a step failing with a retryable BlockError is attempted again", () =>
    Effect.gen(function*() {
      const built = ok(
        Ripple.workflow("flaky")
          .step("call", {
            retry: { maxAttempts: 3, initialDelayMs: 0 },
            handler: (_, ctx) => ctx.attempt < 3 ? Effect.fail(new BlockError.BlockError({ message: "busy" })) : Effect.succeed(ctx.attempt)
          })
          .build()
      )
      const { nodes, status } = yield* runToEnd(built.workflow, {}).pipe(Effect.provide(layerOf(built.handlers)))
      assert.strictEqual(status, "completed")
      assert.strictEqual(nodes["call"]?.output, 3)
    }))

  it.effect("route: the handler picks a branch; the other branch is skipped and reads null afterwards", () =>
    Effect.gen(function*() {
      const triage = Ripple.workflow("triage", { input: Schema.Struct({ text: Schema.String }) })
        .step("classify", (_, ctx) => Effect.succeed(ctx.input.text.includes("crash") ? "bug" : "question"))
        .route("kind", {
          needs: ["classify"],
          handler: ({ classify }) => Effect.succeed(classify === "bug" ? "bug" as const : "question" as const),
          branches: {
            bug: (b) => b.step("ticket", { needs: ["classify"], handler: ({ classify }) => Effect.succeed(`ticket for ${classify}`) }),
            question: (b) =>
              b.step("answer", (_, ctx) => Effect.succeed(`answer to ${ctx.input.text}`))
                .step("polish", { needs: ["answer"], handler: ({ answer }) => Effect.succeed(`${answer}.`) })
          }
        })
        .step("report", {
          needs: ["kind", "ticket", "polish"],
          handler: ({ kind, polish, ticket }) => Effect.succeed({ kind, text: ticket ?? polish })
        })
        .output("report")
      const built = ok(triage.build())
      assert.deepStrictEqual(built.workflow.edges, [
        { source: "trigger", target: "classify" },
        { source: "classify", target: "kind" },
        { source: "kind", target: "ticket", handle: "bug" },
        { source: "kind", target: "answer", handle: "question" },
        { source: "answer", target: "polish" },
        { source: "kind", target: "report" },
        { source: "ticket", target: "report" },
        { source: "polish", target: "report" }
      ])
      const layer = layerOf(built.handlers)
      const bug = yield* runToEnd(built.workflow, { text: "it crashed" }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(bug.nodes["report"]?.output, { kind: "bug", text: "ticket for bug" })
      assert.strictEqual(bug.nodes["answer"]?.status, "skipped")
      assert.strictEqual(bug.nodes["polish"]?.status, "skipped")
      const question = yield* runToEnd(built.workflow, { text: "how?" }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(question.nodes["report"]?.output, { kind: "question", text: "answer to how?." })
      assert.strictEqual(question.nodes["ticket"]?.status, "skipped")
    }))

  it("a branch step that needs a step declared outside the branch waits for it through the router", () => {
    const built = ok(
      Ripple.workflow("gated")
        .step("a", () => Effect.succeed(1))
        .step("b", () => Effect.succeed(2))
        .route("r", {
          needs: ["a"],
          handler: () => Effect.succeed("x" as const),
          branches: { x: (x) => x.step("c", { needs: ["b"], handler: ({ b }) => Effect.succeed(b + 1) }) }
        })
        .build()
    )
    // An edge b → c would activate c whatever r decides (any live incoming edge activates a node).
    assert.deepStrictEqual(built.workflow.edges, [
      { source: "trigger", target: "a" },
      { source: "trigger", target: "b" },
      { source: "a", target: "r" },
      { source: "b", target: "r" },
      { source: "r", target: "c", handle: "x" }
    ])
    assert.isTrue(Result.isSuccess(Workflow.decode(built.workflow)))
  })

  it("parallel: a collection over an earlier step's array, body steps read the item and outer outputs", () => {
    const built = ok(
      Ripple.workflow("fanout")
        .step("list", () => Effect.succeed([1, 2, 3]))
        .step("factor", () => Effect.succeed(10))
        .parallel("each", { forEach: "list", concurrency: 2 }, (body) =>
          body
            .step("scale", { needs: ["factor"], handler: ({ factor }, ctx) => Effect.succeed(ctx.item * factor + ctx.index) })
            .step("label", { needs: ["scale"], handler: ({ scale }) => Effect.succeed(`#${scale}`) }))
        .step("total", {
          needs: ["each"],
          handler: ({ each }) => Effect.succeed(each.reduce((sum, branch) => sum + (branch.scale ?? 0), 0))
        })
        .output("total")
        .build()
    )
    assert.deepStrictEqual(built.workflow.parallels, [
      { id: "each", body: ["scale", "label"], kind: "collection", items: { $ref: "blocks.list.output" }, concurrency: 2 }
    ])
    assert.deepStrictEqual(built.workflow.edges, [
      { source: "trigger", target: "list" },
      { source: "trigger", target: "factor" },
      { source: "list", target: "each" },
      { source: "factor", target: "each" },
      { source: "scale", target: "label" },
      { source: "each", target: "total" }
    ])
    assert.isTrue(Result.isSuccess(Workflow.decode(built.workflow)))
    const plan = ok(Plan.full(built.workflow))
    assert.includeMembers([...plan.rerun], ["each#start", "each#end", "total"])
  })

  it("loop: count, forEach and while loops, nested in a parallel", () => {
    const built = ok(
      Ripple.workflow("loops")
        .step("items", () => Effect.succeed(["a", "b"]))
        .loop("thrice", { count: 3 }, (body) => body.step("tick", (_, ctx) => Effect.succeed(ctx.index)))
        .loop("each", { forEach: "items", maxIterations: 10 }, (body) => body.step("upper", (_, ctx) => Effect.succeed(ctx.item.toUpperCase())))
        .parallel("branches", { count: 2 }, (body) =>
          body.loop("until", { while: { left: { $ref: "loop.index" }, op: "lt", right: 3 }, maxIterations: 5 }, (inner) =>
            inner.step("step", { needs: ["items"], handler: ({ items }, ctx) => Effect.succeed(items.length + ctx.index) })))
        .build()
    )
    assert.deepStrictEqual(built.workflow.loops, [
      { id: "thrice", body: ["tick"], kind: "count", count: 3 },
      { id: "each", body: ["upper"], kind: "forEach", items: { $ref: "blocks.items.output" }, maxIterations: 10 },
      { id: "until", body: ["step"], kind: "while", condition: { left: { $ref: "loop.index" }, op: "lt", right: 3 }, maxIterations: 5 }
    ])
    assert.deepStrictEqual(built.workflow.parallels, [{ id: "branches", body: ["until"], kind: "count", count: 2 }])
    // Body steps reference their iteration (the item only over items), so the planner sees what they read.
    const paramsOf = (id: string) => built.workflow.blocks.find((b) => b.id === id)?.params
    assert.deepStrictEqual(paramsOf("tick"), { iteration: { index: { $ref: "loop.index" } } })
    assert.deepStrictEqual(paramsOf("upper"), { iteration: { index: { $ref: "loop.index" }, item: { $ref: "loop.item" } } })
    assert.deepStrictEqual(paramsOf("step"), { needs: { items: { $ref: "blocks.items.output" } }, iteration: { index: { $ref: "loop.index" } } })
    // `step` reads `items`, two containers up: the edge goes into the outermost container at items' level.
    assert.deepStrictEqual(built.workflow.edges.filter((e) => e.source === "items"), [
      { source: "items", target: "each" },
      { source: "items", target: "branches" }
    ])
    assert.isTrue(Result.isSuccess(Workflow.decode(built.workflow)))
  })

  it("sleep, waitForSignal and approval emit the built-in blocks, ordered by `after`", () => {
    const built = ok(
      Ripple.workflow("human")
        .step("draft", () => Effect.succeed("text"))
        .approval("review", { reason: "Publish?", after: ["draft"] })
        .sleep("cooldown", { ms: 1000, after: ["review"] })
        .sleep("morning", { until: "2030-01-01T09:00:00Z" })
        .waitForSignal("paid", { signal: "payment", after: ["cooldown"] })
        .step("publish", { needs: ["draft", "paid"], handler: ({ draft, paid }) => Effect.succeed({ draft, paid }) })
        .build()
    )
    assert.deepStrictEqual(built.workflow.blocks.slice(2, 6), [
      { id: "review", type: "approval", params: { reason: "Publish?" } },
      { id: "cooldown", type: "sleep", params: { ms: 1000 } },
      { id: "morning", type: "sleep", params: { until: "2030-01-01T09:00:00Z" } },
      { id: "paid", type: "wait", params: { signal: "payment" } }
    ])
    assert.deepStrictEqual(built.workflow.edges, [
      { source: "trigger", target: "draft" },
      { source: "draft", target: "review" },
      { source: "review", target: "cooldown" },
      { source: "trigger", target: "morning" },
      { source: "cooldown", target: "paid" },
      { source: "draft", target: "publish" },
      { source: "paid", target: "publish" }
    ])
  })

  it.effect("parallel and loops run: container outputs are typed arrays of the body's exit outputs", () =>
    Effect.gen(function*() {
      const built = ok(
        Ripple.workflow("containers", { input: Schema.Struct({ words: Schema.Array(Schema.String) }) })
          .step("words", (_, ctx) => Effect.succeed([...ctx.input.words]))
          .step("factor", () => Effect.succeed(10))
          .parallel("each", { forEach: "words", concurrency: 2 }, (body) =>
            body
              .step("len", { needs: ["factor"], handler: ({ factor }, ctx) => Effect.succeed(ctx.item.length * factor + ctx.index) })
              .step("label", { needs: ["len"], handler: ({ len }, ctx) => Effect.succeed(`${ctx.item}:${len}`) }))
          .loop("thrice", { count: 3 }, (body) => body.step("tick", (_, ctx) => Effect.succeed(ctx.index * ctx.index)))
          .loop("until", { while: { left: { $ref: "loop.index" }, op: "lt", right: 1 }, maxIterations: 5 }, (body) =>
            body.step("round", { needs: ["words"], handler: ({ words }, ctx) => Effect.succeed(words.length + ctx.index) }))
          .step("summary", {
            needs: ["each", "thrice", "until"],
            handler: ({ each, thrice, until }) =>
              Effect.succeed({
                labels: each.map((branch) => branch.label ?? "?"),
                ticks: thrice.map((iteration) => iteration.tick ?? -1),
                rounds: until.map((iteration) => iteration.round ?? -1)
              })
          })
          .output("summary", "each")
          .build()
      )
      const { nodes, status } = yield* runToEnd(built.workflow, { words: ["ab", "cde"] }).pipe(Effect.provide(layerOf(built.handlers)))
      assert.strictEqual(status, "completed")
      assert.deepStrictEqual(nodes["summary"]?.output, { labels: ["ab:20", "cde:31"], ticks: [0, 1, 4], rounds: [2, 3] })
      assert.deepStrictEqual(Result.getOrThrow(built.decodeOutputs({ nodes })).each, [{ label: "ab:20" }, { label: "cde:31" }])
    }))

  it.effect("approval, waitForSignal and sleep park the run until approved, signalled and due", () =>
    Effect.gen(function*() {
      const built = ok(
        Ripple.workflow("human")
          .step("draft", () => Effect.succeed("text"))
          .approval("review", { reason: "Publish?", after: ["draft"] })
          .waitForSignal("paid", { signal: "payment", after: ["review"] })
          .sleep("cooldown", { ms: 1000, after: ["paid"] })
          .step("publish", {
            needs: ["draft", "review", "paid", "cooldown"],
            handler: ({ cooldown, draft, paid, review }) => Effect.succeed({ draft, review, paid, wakeAt: cooldown.wakeAt })
          })
          .output("publish")
          .build()
      )
      yield* Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const store = yield* RunStore.RunStore
        const { runId } = yield* runs.start(built.workflow, {})
        assert.strictEqual(yield* runs.wait(runId), "paused")
        assert.isTrue(yield* runs.approve(runId, "review", { by: "ana" }))
        assert.strictEqual(yield* runs.wait(runId), "suspended")
        assert.isTrue(yield* runs.signal(runId, "payment", { amount: 5 }))
        assert.strictEqual(yield* runs.wait(runId), "suspended")
        yield* TestClock.adjust(1000)
        yield* runs.wake(runId)
        assert.strictEqual(yield* runs.wait(runId), "completed")
        const publish = (yield* store.snapshot(runId)).nodes["publish"]?.output
        assert.deepStrictEqual(publish, { draft: "text", review: { by: "ana" }, paid: { amount: 5 }, wakeAt: 1000 })
      }).pipe(Effect.provide(layerOf(built.handlers)))
    }))

  it("duplicate names do not compile and are refused by build; so are reserved characters and the trigger's name", () => {
    const twice = Ripple.workflow("dup")
      .step("a", () => Effect.succeed(1))
      // @ts-expect-error a step name is used once per workflow
      .step("a", () => Effect.succeed(2))
    const error = twice.build()
    assert.isTrue(Result.isFailure(error))
    if (Result.isFailure(error)) {
      assert.strictEqual(error.failure._tag, "DuplicateStep")
      assert.deepStrictEqual(error.failure, new Ripple.DuplicateStep({ step: "a", path: ["steps", 1] }))
    }
    const inBody = Ripple.workflow("dup2")
      .step("x", () => Effect.succeed([1]))
      // @ts-expect-error names are shared with container bodies
      .parallel("p", { forEach: "x" }, (body) => body.step("x", () => Effect.succeed(1)))
      .build()
    assert.deepStrictEqual(Result.isFailure(inBody) ? inBody.failure : undefined, new Ripple.DuplicateStep({ step: "x", path: ["steps", 1, "body", 0] }))
    // @ts-expect-error the trigger block's id is reserved
    const reserved = Ripple.workflow("dup3").step("trigger", () => Effect.succeed(1)).build()
    assert.strictEqual(Result.isFailure(reserved) ? reserved.failure._tag : undefined, "DuplicateStep")
    const dotted = Ripple.workflow("dots").step("a.b", () => Effect.succeed(1)).build()
    assert.deepStrictEqual(Result.isFailure(dotted) ? dotted.failure : undefined, new Ripple.InvalidStepName({ step: "a.b", path: ["steps", 0] }))
  })

  it("needs are typed: an unknown or later step does not compile (and is refused by build)", () => {
    const built = Ripple.workflow("typed")
      // @ts-expect-error "later" is not an earlier step
      .step("a", { needs: ["later"], handler: () => Effect.succeed(1) })
      .step("later", () => Effect.succeed(2))
      .build()
    assert.deepStrictEqual(Result.isFailure(built) ? built.failure : undefined, new Ripple.UnknownStep({ step: "later", referencedBy: "a", path: ["steps", 0] }))
    Ripple.workflow("typed2")
      .step("a", () => Effect.succeed({ n: 1 }))
      // @ts-expect-error the output of `a` is { n: number }, not a string
      .step("b", { needs: ["a"], handler: ({ a }) => Effect.succeed(a.toUpperCase()) })
  })

  it.effect("output schemas: outputs are encoded to JSON in the journal and decoded for the steps that need them", () =>
    Effect.gen(function*() {
      const Stamp = Schema.Struct({ at: Schema.DateFromString, big: Schema.BigIntFromString })
      const built = ok(
        Ripple.workflow("typed-outputs", { input: Schema.Struct({ day: Schema.String }) })
          .step("stamp", {
            output: Stamp,
            handler: (_, ctx) => Effect.succeed({ at: new Date(`${ctx.input.day}T00:00:00.000Z`), big: 2n ** 64n })
          })
          .step("next", {
            needs: ["stamp"],
            output: Schema.DateFromString,
            handler: ({ stamp }) => Effect.succeed(new Date(stamp.at.getTime() + 86_400_000))
          })
          .step("describe", {
            needs: ["stamp", "next"],
            handler: ({ next, stamp }) => Effect.succeed(`${next.toISOString().slice(0, 10)} ${(stamp.big + 1n).toString()}`)
          })
          .output("next", "describe")
          .build()
      )
      const { nodes, status } = yield* runToEnd(built.workflow, { day: "2030-01-31" }).pipe(Effect.provide(layerOf(built.handlers)))
      assert.strictEqual(status, "completed")
      assert.deepStrictEqual(nodes["stamp"]?.output, { at: "2030-01-31T00:00:00.000Z", big: "18446744073709551616" })
      assert.strictEqual(nodes["describe"]?.output, "2030-02-01 18446744073709551617")
      const outputs = Result.getOrThrow(built.decodeOutputs({ nodes }))
      assert.instanceOf(outputs.next, Date)
      assert.strictEqual(outputs.next.toISOString(), "2030-02-01T00:00:00.000Z")
      assert.strictEqual(outputs.describe, "2030-02-01 18446744073709551617")
    }))

  it.effect("output schemas: a container over a step with a schema gets decoded items", () =>
    Effect.gen(function*() {
      const built = ok(
        Ripple.workflow("typed-items")
          .step("days", {
            output: Schema.Array(Schema.DateFromString),
            handler: () => Effect.succeed([new Date("2030-01-01T00:00:00.000Z"), new Date("2030-06-01T00:00:00.000Z")])
          })
          .parallel("months", { forEach: "days" }, (body) =>
            body.step("month", (_, ctx) => Effect.succeed(ctx.item.getUTCMonth() + ctx.index * 100)))
          .output("months")
          .build()
      )
      const { nodes, status } = yield* runToEnd(built.workflow, {}).pipe(Effect.provide(layerOf(built.handlers)))
      assert.strictEqual(status, "completed")
      assert.deepStrictEqual(Result.getOrThrow(built.decodeOutputs({ nodes })).months, [{ month: 0 }, { month: 105 }])
    }))

  it.effect("an output its schema refuses fails the step permanently (no retry)", () =>
    Effect.gen(function*() {
      const built = ok(
        Ripple.workflow("refused")
          .step("n", {
            retry: { maxAttempts: 3, initialDelayMs: 0 },
            output: Schema.Number.check(Schema.isInt()),
            handler: (_, ctx) => Effect.succeed(ctx.attempt + 0.5)
          })
          .build()
      )
      const { nodes, status } = yield* runToEnd(built.workflow, {}).pipe(Effect.provide(layerOf(built.handlers)))
      assert.strictEqual(status, "failed")
      assert.strictEqual(nodes["n"]?.status, "failed")
      assert.strictEqual(nodes["n"]?.attempt, 1)
    }))

  it("without an output schema a step's output must be JSON (a Date does not compile)", () => {
    Ripple.workflow("json-only")
      // @ts-expect-error a Date is not JSON: declare an output schema to journal it
      .step("when", () => Effect.succeed(new Date(0)))
  })

  it("records compensations by step name", () => {
    const built = ok(
      Ripple.workflow("saga")
        .step("reserve", { handler: () => Effect.succeed({ id: "r1" }), compensate: (output) => Effect.succeed(output.id) })
        .step("charge", () => Effect.succeed(1))
        .build()
    )
    assert.deepStrictEqual(Object.keys(built.compensations), ["reserve"])
  })

  it("block types are unique per workflow and step, so two built workflows share one handler layer", () => {
    const a = ok(Ripple.workflow("a").step("s", () => Effect.succeed("from a")).build())
    const b = ok(Ripple.workflow("b").step("s", () => Effect.succeed("from b")).build())
    assert.notStrictEqual(a.workflow.blocks[1]!.type, b.workflow.blocks[1]!.type)
    assert.strictEqual(Ripple.blockType("a", "s"), a.workflow.blocks[1]!.type)
    const merged = Handler.layer({ ...a.registry, ...b.registry })
    return Effect.runPromise(
      Effect.gen(function*() {
        const ra = yield* runToEnd(a.workflow, {})
        const rb = yield* runToEnd(b.workflow, {})
        assert.strictEqual(ra.nodes["s"]?.output, "from a")
        assert.strictEqual(rb.nodes["s"]?.output, "from b")
      }).pipe(Effect.provide(layerOf(merged)))
    )
  })
})
