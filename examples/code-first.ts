/**
 * A code-first workflow: support triage written with the `Ripple` builder instead of JSON. It runs
 * in memory, then changes one step's config (the signature) and re-runs from that step, showing
 * that the built workflow plans like any other: only the signature and what reads it re-run.
 *
 * Usage: node examples/dist/code-first.js ["subject"] ["body"]
 */
import { Plan } from "@ripple/core"
import { Ripple, Runs, RunStore } from "@ripple/runtime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

const [subject = "Login fails", body = "The sign-in page says my token expired."] = process.argv.slice(2)

const Ticket = Schema.Struct({
  subject: Schema.String,
  body: Schema.String,
  tier: Schema.optionalKey(Schema.Literals(["free", "pro"]))
})

const triage = (signature: string) =>
  Ripple.workflow("code-first-triage", { input: Ticket })
    .step("classify", (_, { input }) =>
      Effect.succeed(/token|login|password/i.test(`${input.subject} ${input.body}`) ? "account" : "general"))
    .step("priority", (_, { input }) => Effect.succeed(input.tier === "pro" ? 1 : 3))
    .route("queue", {
      needs: ["classify"],
      handler: ({ classify }) => Effect.succeed(classify === "account" ? "account" as const : "general" as const),
      branches: {
        account: (branch) =>
          branch.step("resetLink", (_, { input }) => Effect.succeed(`https://example.test/reset?for=${encodeURIComponent(input.subject)}`)),
        general: (branch) => branch.step("faq", () => Effect.succeed("https://example.test/faq"))
      }
    })
    .step("signature", { config: { text: signature }, handler: (_, { config }) => Effect.succeed(config.text) })
    .step("reply", {
      needs: ["classify", "priority", "resetLink", "faq", "signature"],
      handler: ({ classify, faq, priority, resetLink, signature }) =>
        Effect.succeed({
          queue: classify,
          priority,
          text: `We are on it (${classify}). ${resetLink ?? faq ?? ""}\n-- ${signature}`
        })
    })
    .output("reply")
    .build()

const unwrap = <A>(result: Result.Result<A, Ripple.BuilderError>): A => {
  if (Result.isFailure(result)) throw new Error(`invalid code-first workflow: ${result.failure._tag}`)
  return result.success
}

const before = unwrap(triage("Ripple support"))
const after = unwrap(triage("Ripple support, weekend rota"))

const line = (text: string) => Effect.sync(() => console.log(text))

const program = Effect.gen(function*() {
  const runs = yield* Runs.Runs
  const store = yield* RunStore.RunStore
  const input = before.encodeInput({ subject, body, tier: "pro" })

  yield* line(`▶ Full run of ${before.workflow.id} (${before.workflow.blocks.length} blocks, built in code)`)
  const first = yield* runs.start(before.workflow, input)
  yield* line(`  status: ${yield* runs.wait(first.runId)}`)
  yield* line(`  reply: ${JSON.stringify((yield* store.snapshot(first.runId)).nodes["reply"]?.output)}`)

  yield* line("\n✎ Edit: the signature step's config")
  const plan = yield* runs.plan(after.workflow, { target: "signature" })
  yield* line(Plan.explain(plan))

  const second = yield* runs.runFrom(after.workflow, { target: "signature" })
  yield* line(`\n▶ Re-run from signature: ${yield* runs.wait(second.runId)}`)
  yield* line(`  reply: ${JSON.stringify((yield* store.snapshot(second.runId)).nodes["reply"]?.output)}`)
  yield* line(`Re-executed ${plan.rerun.length} of ${plan.rerun.length + plan.reused.length} nodes.`)
})

// Both versions register the same block types; the edited one's handlers read the new config.
const layer = Runs.layer().pipe(Layer.provideMerge(Layer.mergeAll(RunStore.layerMemory, after.handlers)))

Effect.runPromise(program.pipe(Effect.provide(layer))).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
