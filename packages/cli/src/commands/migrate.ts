/**
 * `ripple migrate`: creates or upgrades the database schema.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Command from "effect/cli/Command"
import * as Output from "./Output.ts"
import { print } from "./Output.ts"
import { databaseOptions, type Session } from "./Session.ts"

/**
 * The `migrate` command.
 *
 * @since 0.1.0
 */
export const command = (session: Session) =>
  Command.make("migrate", { format: Output.format }, ({ format }) =>
    Output.report(
      format,
      Effect.gen(function*() {
        const { applied, database } = yield* session.backend.migrate(yield* databaseOptions)
        yield* print(applied.length === 0 ? `${database}: schema up to date` : `${database}: applied ${applied.join(", ")}`)
        return { code: 0, json: { database, applied } }
      })
    )).pipe(Command.withDescription("Create or upgrade the database schema (every command also does it when needed)"))
