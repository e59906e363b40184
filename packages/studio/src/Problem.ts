/**
 * What the studio answers a request it cannot serve: one tagged error per kind of problem, each
 * rendered as an RFC 9457 problem details document (`application/problem+json`).
 *
 * **Details**
 *
 * - Every problem names what is wrong in members of its own (`parameter`, `field`, `runId`,
 *   `runStatus`, `what`, `id`, `error`, `path`), beside the standard `type`, `title`, `status`
 *   (the HTTP status) and `detail`.
 * - `type` is `urn:ripple:studio:<kind>` (kebab case of the tag): stable, and a URI that needs no
 *   host.
 * - A defect never reaches the client: it becomes an `Internal` problem without a stack (the
 *   cause goes to the server's log).
 *
 * @since 0.1.0
 */
import type { Workflow } from "@ripple/core"
import type { Runs, RunStore } from "@ripple/runtime"
import * as Data from "effect/Data"
import * as ProblemDetails from "effect/http/ProblemDetails"
import type * as HttpServerResponse from "effect/http/HttpServerResponse"

type Json = Workflow.Json

/**
 * A query or path parameter is missing or has a value the route does not take.
 *
 * @since 0.1.0
 */
export class BadParameter extends Data.TaggedError("BadParameter")<{
  readonly parameter: string
  readonly value: string | undefined
  /** What the parameter takes. */
  readonly expected: string
}> {
  override get message() {
    return this.value === undefined
      ? `parameter ${this.parameter} is missing: give ${this.expected}`
      : `parameter ${this.parameter} is ${JSON.stringify(this.value)}: expected ${this.expected}`
  }
}

/**
 * The request body is not JSON, or a field of it is missing or of the wrong type.
 *
 * @since 0.1.0
 */
export class BadBody extends Data.TaggedError("BadBody")<{
  /** The field at fault (`""` for the body itself). */
  readonly field: string
  readonly reason: string
}> {
  override get message() {
    return this.field === "" ? `the request body ${this.reason}` : `body field ${this.field} ${this.reason}`
  }
}

/**
 * What the request names does not exist: a run, a node or block of its workflow, a stored
 * workflow version, or the route itself.
 *
 * @since 0.1.0
 */
export class NotFound extends Data.TaggedError("NotFound")<{
  readonly what: "run" | "node" | "block" | "workflow" | "route"
  readonly id: string
  readonly runId?: string | undefined
}> {
  override get message() {
    return `no ${this.what} ${JSON.stringify(this.id)}${this.runId === undefined ? "" : ` in run ${this.runId}`}`
  }
}

/**
 * The workflow, input or plan of the request is invalid: `error` is the tag of the core or runtime
 * error, `path` where in the workflow (or input) it is.
 *
 * @since 0.1.0
 */
export class Invalid extends Data.TaggedError("Invalid")<{
  readonly error: string
  readonly detail: string
  readonly path: ReadonlyArray<string | number> | undefined
}> {
  override get message() {
    return this.detail
  }
}

/**
 * The run is not in a state that takes the request (no such approval waiting, a signal no block
 * awaits, a transition its status machine refuses); nothing was changed.
 *
 * @since 0.1.0
 */
export class Refused extends Data.TaggedError("Refused")<{
  readonly runId: string
  readonly status: string | undefined
  readonly reason: string
}> {
  override get message() {
    return `run ${this.runId}${this.status === undefined ? "" : ` (${this.status})`}: ${this.reason}`
  }
}

/**
 * A request from a page of another site, or naming a host that is not this machine (a rebound DNS
 * name): the studio acts only for pages it served itself.
 *
 * @since 0.1.0
 */
export class Forbidden extends Data.TaggedError("Forbidden")<{
  readonly reason: string
}> {
  override get message() {
    return `refused: ${this.reason}`
  }
}

/**
 * The store could not be reached or answered with a transient error; the request may be retried.
 *
 * @since 0.1.0
 */
export class Unavailable extends Data.TaggedError("Unavailable")<{
  readonly operation: string
  readonly reason: string
}> {
  override get message() {
    return `the store is unavailable (${this.operation}: ${this.reason}); try again`
  }
}

/**
 * An unexpected failure of the server (a defect); its cause is logged, never sent.
 *
 * @since 0.1.0
 */
export class Internal extends Data.TaggedError("Internal")<{}> {
  override get message() {
    return "the studio failed unexpectedly; see its log"
  }
}

/**
 * Every problem the studio reports.
 *
 * @since 0.1.0
 */
export type Problem = BadParameter | BadBody | NotFound | Invalid | Refused | Forbidden | Unavailable | Internal

const statusOf: { readonly [K in Problem["_tag"]]: number } = {
  BadParameter: 400,
  BadBody: 400,
  NotFound: 404,
  Invalid: 422,
  Refused: 409,
  Forbidden: 403,
  Unavailable: 503,
  Internal: 500
}

const titleOf: { readonly [K in Problem["_tag"]]: string } = {
  BadParameter: "Bad parameter",
  BadBody: "Bad request body",
  NotFound: "Not found",
  Invalid: "Invalid workflow, input or plan",
  Refused: "Refused by the run",
  Forbidden: "Forbidden",
  Unavailable: "Store unavailable",
  Internal: "Internal error"
}

const kebab = (tag: string): string => tag.replace(/[A-Z]/g, (c, i: number) => `${i === 0 ? "" : "-"}${c.toLowerCase()}`)

// The members that name what is wrong, by problem (the standard members come from the tag).
const membersOf = (problem: Problem): { readonly [key: string]: Json } => {
  switch (problem._tag) {
    case "BadParameter":
      return { parameter: problem.parameter, ...(problem.value === undefined ? {} : { value: problem.value }), expected: problem.expected }
    case "BadBody":
      return { field: problem.field }
    case "NotFound":
      return { what: problem.what, id: problem.id, ...(problem.runId === undefined ? {} : { runId: problem.runId }) }
    case "Invalid":
      return { error: problem.error, ...(problem.path === undefined ? {} : { path: [...problem.path] }) }
    case "Refused":
      return { runId: problem.runId, ...(problem.status === undefined ? {} : { runStatus: problem.status }) }
    case "Forbidden":
      return {}
    case "Unavailable":
      return { operation: problem.operation }
    case "Internal":
      return {}
  }
}

/**
 * The RFC 9457 document of a problem.
 *
 * @since 0.1.0
 */
export const details = (problem: Problem): ProblemDetails.ProblemDetails => ({
  type: `urn:ripple:studio:${kebab(problem._tag)}`,
  status: statusOf[problem._tag],
  title: titleOf[problem._tag],
  detail: problem.message,
  ...membersOf(problem)
})

/**
 * The `application/problem+json` response of a problem.
 *
 * @since 0.1.0
 */
export const toResponse = (problem: Problem): HttpServerResponse.HttpServerResponse => ProblemDetails.toResponse(details(problem))

/**
 * The problem of an error of the `Runs` facade or the store.
 *
 * @since 0.1.0
 */
export const fromRuns = (
  error: Runs.RunsError | RunStore.RunStoreError | Runs.InvalidPayload | Runs.NodeNotFound
): Problem => {
  switch (error._tag) {
    case "RunNotFound":
      return new NotFound({ what: "run", id: error.runId })
    case "WorkflowNotFound":
      return new NotFound({ what: "workflow", id: error.version })
    case "NodeNotFound":
      return new NotFound({ what: "node", id: error.node, runId: error.runId })
    case "StoreUnavailable":
      return new Unavailable({ operation: error.operation, reason: error.reason._tag })
    case "IllegalTransition":
      return new Refused({ runId: error.runId, status: error.from, reason: `its status machine refuses ${error.event} (${error.reason})` })
    case "InvalidPayload":
    case "InvalidOption":
      return new Invalid({ error: error._tag, detail: error.message, path: undefined })
    case "InvalidWorkflow":
    case "InvalidInput":
    case "PlanFailed":
      return new Invalid({ error: error.cause._tag, detail: error.message, path: pathOf(error.cause) })
    case "UnknownBlockType":
      return new Invalid({ error: error._tag, detail: error.message, path: error.path })
  }
}

const pathOf = (cause: unknown): ReadonlyArray<string | number> | undefined => {
  const path = (cause as { readonly path?: unknown }).path
  return Array.isArray(path) ? path : undefined
}
