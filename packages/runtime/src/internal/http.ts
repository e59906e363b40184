/**
 * The `http` built-in: one HTTP request through effect's `HttpClient` (over `fetch`), its secrets
 * read from the effect `Config` at call time and kept out of everything it returns or reports.
 */
import { Params, Workflow } from "@ripple/core"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import type * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as BlockError from "../BlockError.ts"
import { maxRetryAfterMs } from "../Builtins.ts"
import type { Handler, HandlerContext } from "../Handler.ts"

type Json = Workflow.Json
type Obj = { readonly [key: string]: Json }

const resolvedSchema = Params.httpWith(Schema.String)
type Resolved = typeof Params.http.Type

const isObject = (value: Json | undefined): value is Obj => typeof value === "object" && value !== null && !Array.isArray(value)
const isReference = (value: Json | undefined): boolean => isObject(value) && Object.hasOwn(value, "$ref")

/**
 * `resolved` with every secret the block's params state literally replaced by `reveal(name)`.
 * Secrets are read only where the params as written hold one: a marker that arrives through a
 * reference (a run input, another block's output) is data, never read, so a run's input cannot
 * make the block send an environment variable.
 */
const substitute = (written: Json | undefined, resolved: Json, reveal: (name: string) => Json): Json => {
  if (written === undefined || isReference(written)) return resolved
  const name = Params.secretOf(written)
  if (name !== undefined) return reveal(name)
  if (Array.isArray(written) && Array.isArray(resolved)) return resolved.map((r, i) => substitute(written[i], r, reveal))
  if (isObject(written) && isObject(resolved)) {
    const out: { [key: string]: Json } = {}
    for (const key of Object.keys(resolved)) out[key] = substitute(written[key], resolved[key]!, reveal)
    return out
  }
  return resolved
}

const secretNames = (written: Json, into: Set<string>): Set<string> => {
  if (isReference(written) || written === null || typeof written !== "object") return into
  const name = Params.secretOf(written)
  if (name !== undefined) into.add(name)
  else for (const value of Array.isArray(written) ? written : Object.values(written)) secretNames(value, into)
  return into
}

/** Replaces every occurrence of a secret's value (and of the forms it is sent in) by `[secret NAME]`. */
interface Redactor {
  readonly text: (text: string) => string
  readonly json: (value: Json) => Json
}

const redactor = (forms: ReadonlyArray<readonly [string, string]>): Redactor => {
  // Longest first, so a secret inside a longer sent form is replaced by the form's label.
  const sorted = forms.filter(([value]) => value.length > 0).sort((a, b) => b[0].length - a[0].length)
  const text = (s: string) => sorted.reduce((acc, [value, name]) => acc.includes(value) ? acc.split(value).join(`[secret ${name}]`) : acc, s)
  const json = (value: Json): Json => {
    if (typeof value === "string") return text(value)
    if (Array.isArray(value)) return value.map(json)
    if (isObject(value)) {
      const out: { [key: string]: Json } = {}
      for (const [key, v] of Object.entries(value)) out[text(key)] = json(v)
      return out
    }
    return value
  }
  return sorted.length === 0 ? { text: (s) => s, json: (v) => v } : { text, json }
}

const invalid = (ctx: HandlerContext, message: string) =>
  Effect.fail(BlockError.permanent(`http block ${ctx.block.id}: ${message}`))

const readSecret = (ctx: HandlerContext, name: string) =>
  Effect.mapError(
    Config.Redacted(name),
    () => BlockError.permanent(`http block ${ctx.block.id}: secret ${name} is not set (set the environment variable ${name})`)
  )

const excerpt = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length <= 200 ? flat : `${flat.slice(0, 200)}…`
}

// A Retry-After in seconds or as an HTTP date, in milliseconds from `now`.
const retryAfter = (header: string | undefined, now: number): number | undefined => {
  if (header === undefined || header.trim() === "") return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined
}

const transportDetail = (error: HttpClientError.HttpClientError): string => {
  const cause = (error.reason as { readonly cause?: unknown }).cause
  const inner = (cause as { readonly cause?: { readonly code?: unknown; readonly message?: unknown } } | undefined)?.cause
  if (typeof inner?.code === "string") return inner.code
  if (typeof inner?.message === "string") return inner.message
  return error.reason._tag
}

const readBody = (
  response: HttpClientResponse.HttpClientResponse,
  method: string,
  mode: "auto" | "json" | "text"
): Effect.Effect<{ readonly text: string; readonly body: Json | undefined }, HttpClientError.HttpClientError> =>
  Effect.map(method === "HEAD" ? Effect.succeed("") : response.text, (text) => {
    const type = response.headers["content-type"] ?? ""
    const asJson = mode === "json" || (mode === "auto" && /[/+]json\b/i.test(type))
    if (!asJson) return { text, body: text }
    if (text.trim() === "") return { text, body: null }
    try {
      return { text, body: JSON.parse(text) as Json }
    } catch {
      return { text, body: undefined }
    }
  })

/**
 * The `http` handler (see `Builtins`).
 */
export const http: Handler = (ctx) =>
  Effect.gen(function*() {
    const written = ctx.params
    // Checked with every secret masked: a problem names a value only as `[secret NAME]`.
    const masked = substitute(written, ctx.inputs, (name) => `[secret ${name}]`) as Obj
    const urlIsSecret = Params.secretOf(written["url"]) !== undefined
    const found = Params.problem(resolvedSchema, masked, true) ??
      Params.builtins["http"]!.rules!(urlIsSecret ? { ...masked, url: "https://secret" } : masked)
    if (found !== undefined) return yield* invalid(ctx, `${found.reason} at ${JSON.stringify(found.path)}`)

    const values = new Map<string, string>()
    for (const name of secretNames(written, new Set())) values.set(name, Redacted.value(yield* readSecret(ctx, name)))
    const p = substitute(written, ctx.inputs, (name) => values.get(name)!) as unknown as Resolved
    const forms: Array<readonly [string, string]> = []
    for (const [name, value] of values) {
      forms.push([value, name], [encodeURIComponent(value), name])
    }

    const method = p.method ?? "GET"
    let url: URL
    try {
      url = new URL(p.url as string)
    } catch {
      url = new URL("invalid:")
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return yield* invalid(ctx, urlIsSecret ? `the url in secret ${Params.secretOf(written["url"])} is not an http(s) URL` : "url is not an http(s) URL")
    }
    for (const [key, value] of Object.entries(p.query ?? {})) url.searchParams.append(key, String(value))
    const headers: Record<string, string> = {}
    for (const [key, value] of Object.entries(p.headers ?? {})) headers[key.toLowerCase()] = value as string
    if (p.auth !== undefined) {
      if ("bearer" in p.auth) headers["authorization"] = `Bearer ${p.auth.bearer as string}`
      else {
        const basic = Buffer.from(`${p.auth.basic.username as string}:${p.auth.basic.password as string}`).toString("base64")
        headers["authorization"] = `Basic ${basic}`
        forms.push([basic, "auth"])
      }
    }
    const redact = redactor(forms)
    // Where the request goes, for messages: never its query, and never a URL read from a secret.
    const target = `${method} ${urlIsSecret ? `[secret ${Params.secretOf(written["url"])}]` : redact.text(`${url.origin}${url.pathname}`)}`

    let request = HttpClientRequest.make(method)(url, { headers })
    if (p.json !== undefined) {
      request = HttpClientRequest.bodyText(request, JSON.stringify(p.json), headers["content-type"] ?? "application/json")
    } else if (p.text !== undefined) {
      request = HttpClientRequest.bodyText(request, p.text as string, headers["content-type"] ?? "text/plain; charset=utf-8")
    }
    const timeoutMs = p.timeoutMs ?? Params.defaultHttpTimeoutMs
    const exchange = Effect.flatMap(HttpClient.execute(request), (response) =>
      Effect.map(readBody(response, method, p.response ?? "auto"), (read) => ({ response, ...read })))
    const { response, text, body } = yield* exchange.pipe(
      Effect.provide(FetchHttpClient.layer),
      Effect.mapError((error) =>
        new BlockError.BlockError({ message: redact.text(`http block ${ctx.block.id}: ${target} failed: ${transportDetail(error)}`) })
      ),
      Effect.timeoutOrElse({
        duration: timeoutMs,
        orElse: () => Effect.fail(new BlockError.BlockError({ message: `http block ${ctx.block.id}: ${target}: no response within ${timeoutMs} ms` }))
      })
    )
    const status = response.status
    const said = `${target} answered ${status}${text === "" ? "" : `: ${redact.text(excerpt(text))}`}`
    if (status === 429 || status >= 500) {
      const after = retryAfter(response.headers["retry-after"], yield* Clock.currentTimeMillis)
      if (after !== undefined && after > maxRetryAfterMs) {
        return yield* invalid(ctx, `${said} (Retry-After ${Math.ceil(after / 1000)} s is past the ${maxRetryAfterMs / 1000} s a block waits: run it again later)`)
      }
      return yield* Effect.fail(new BlockError.BlockError({ message: `http block ${ctx.block.id}: ${said}`, retryAfterMs: after }))
    }
    if (status >= 400) return yield* invalid(ctx, said)
    if (body === undefined) return yield* invalid(ctx, `${target} answered ${status} with a body that is not JSON: ${redact.text(excerpt(text))}`)
    const outHeaders: { [key: string]: Json } = {}
    for (const [key, value] of Object.entries(response.headers)) outHeaders[key] = redact.text(value)
    return { status, headers: outHeaders, body: redact.json(body) } satisfies Json
  })
