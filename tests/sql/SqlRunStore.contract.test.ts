import { afterAll } from "@effect/vitest"
import { SqlRunStore } from "@ripple/sql"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as TestDatabase from "../helpers/database.ts"
import { runStoreContract } from "../helpers/runStoreContract.ts"

// The contract provides its layer per test; the backend's shared resources (one PGlite) are built
// once for the file and every test still gets a fresh, migrated schema.
const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const once = (backend: TestDatabase.Backend) => {
  let built: Promise<Layer.Layer<TestDatabase.Shared>> | undefined
  return Layer.unwrap(Effect.promise(() => {
    built ??= Effect.runPromise(
      Effect.map(Layer.buildWithScope(TestDatabase.shared(backend), scope), (context) => Layer.succeedContext(context))
    )
    return built
  }))
}

for (const backend of TestDatabase.backends) {
  runStoreContract(
    backend,
    SqlRunStore.layer.pipe(Layer.provide(TestDatabase.layer), Layer.provide(once(backend)))
  )
}
