/**
 * A content pipeline with custom Effect handlers, runnable by the CLI once compiled:
 *
 *   ripple run examples/dist/content-pipeline-handlers.js --input '{"topic": "durable workflows"}'
 *
 * An ES module workflow exports `workflow` (the same JSON as a `.json` workflow file) and `handlers`
 * (a `Layer` of the handler registry: the built-ins plus the types below). Handlers are ordinary
 * Effects: they may use services, fail with a `BlockError` (retryable or not), and are interrupted
 * when a run is cancelled.
 */
import type { Workflow } from "@ripple/core"
import { BlockError, Handler } from "@ripple/runtime"
import * as Effect from "effect/Effect"

/** The articles a real pipeline would fetch from a CMS or a feed. */
const library = [
  { title: "Build systems à la carte", words: 9200, tags: ["build", "incremental"] },
  { title: "Adapton: composable, demand-driven incremental computation", words: 11800, tags: ["incremental"] },
  { title: "Self-adjusting computation", words: 15400, tags: ["incremental", "durable"] },
  { title: "Durable execution, explained", words: 4100, tags: ["durable"] }
]

type Article = (typeof library)[number]

const isArticle = (value: unknown): value is Article =>
  typeof value === "object" && value !== null && typeof (value as Article).title === "string" &&
  typeof (value as Article).words === "number"

/** `fetchArticles` — `{ tag }`: the articles carrying the tag (fails, retryably, when none do). */
const fetchArticles: Handler.Handler = (ctx) => {
  const tag = String(ctx.inputs.tag ?? "")
  const found = library.filter((article) => article.tags.includes(tag))
  return found.length === 0
    ? Effect.fail(new BlockError.BlockError({ message: `no article is tagged ${JSON.stringify(tag)} yet` }))
    : Effect.succeed(found)
}

/** `digest` — `{ articles, audience }`: one line per article with its reading time. */
const digest: Handler.Handler = (ctx) => {
  const articles = ctx.inputs.articles
  if (!Array.isArray(articles) || !articles.every(isArticle)) {
    return Effect.fail(BlockError.permanent("digest: param \"articles\" must be a list of { title, words }"))
  }
  const minutes = (words: number) => Math.max(1, Math.round(words / 230))
  return Effect.succeed(
    articles.map((article) => `${article.title} — ${minutes(article.words)} min read for ${String(ctx.inputs.audience)}`)
  )
}

/** `headline` — `{ topic, items }`: a headline; the branch depends on how much there is to read. */
const headline: Handler.Handler = (ctx) => {
  const count = Array.isArray(ctx.inputs.items) ? ctx.inputs.items.length : 0
  const text = `${count} reads on ${String(ctx.inputs.topic)}`
  return Effect.succeed(Handler.decide(count >= 3 ? "long" : "short", text))
}

/** The workflow: fetch → digest → headline (router) → newsletter or short note → response. */
export const workflow: Workflow.Workflow = {
  version: 1,
  id: "content-pipeline-handlers",
  name: "Content pipeline with custom handlers",
  inputs: {
    topic: { type: "string", default: "incremental computation" },
    tag: { type: "string", default: "incremental" }
  },
  variables: { audience: "engineers" },
  blocks: [
    { id: "start", type: "trigger" },
    { id: "fetch", type: "fetchArticles", params: { tag: { $ref: "input.tag" } }, retry: { maxAttempts: 3, initialDelayMs: 50 } },
    { id: "digest", type: "digest", params: { articles: { $ref: "blocks.fetch.output" }, audience: { $ref: "vars.audience" } } },
    { id: "headline", type: "headline", params: { topic: { $ref: "input.topic" }, items: { $ref: "blocks.digest.output" } } },
    {
      id: "newsletter",
      type: "template",
      params: { template: "# {{title}}\n\n{{items}}", values: { title: { $ref: "blocks.headline.output" }, items: { $ref: "blocks.digest.output" } } }
    },
    { id: "note", type: "template", params: { template: "{{title}}: {{items}}", values: { title: { $ref: "blocks.headline.output" }, items: { $ref: "blocks.digest.output" } } } },
    { id: "send", type: "response", params: { value: { $ref: "blocks.newsletter.output" } } },
    { id: "post", type: "response", params: { value: { $ref: "blocks.note.output" } } }
  ],
  edges: [
    { source: "start", target: "fetch" },
    { source: "fetch", target: "digest" },
    { source: "digest", target: "headline" },
    { source: "headline", target: "newsletter", handle: "long" },
    { source: "headline", target: "note", handle: "short" },
    { source: "newsletter", target: "send" },
    { source: "note", target: "post" }
  ]
}

/** The registry the workflow runs with: the built-ins plus the three custom types. */
export const handlers = Handler.layer({ fetchArticles, digest, headline })
