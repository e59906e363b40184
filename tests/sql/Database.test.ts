import { assert, layer } from "@effect/vitest"
import { Database } from "@ripple/sql"
import * as Arr from "effect/Array"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import * as TestDatabase from "../helpers/database.ts"

class Boom {
  readonly _tag = "Boom"
}

// One copy of every test per backend; each test gets a schema of its own.
for (const backend of TestDatabase.backends) {
  layer(TestDatabase.shared(backend), { excludeTestServices: true })(backend, (it) => {
    const test = <A, E>(
      name: string,
      body: Effect.Effect<A, E, SqlClient.SqlClient | Database.Database | Scope.Scope>
    ) =>
      // Scoped inside the provide: a listener must stop before its database closes.
      it.effect(name, () => Effect.asVoid(Effect.provide(Effect.scoped(body), TestDatabase.layer)))

    test(
      "reports the backend it runs on",
      Effect.gen(function*() {
        const db = yield* Database.Database
        assert.strictEqual(db.kind, backend)
        assert.isTrue(db.describe.startsWith(backend === "pglite" ? "pglite:/" : "postgres://"))
      })
    )

    test(
      "binds parameters of every common type and decodes results alike",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const at = new Date("2026-01-02T03:04:05.678Z")
        const [row] = yield* sql<{
          readonly sum: number
          readonly text: string
          readonly big: bigint
          readonly flag: boolean
          readonly at: Date
          readonly nothing: null
          readonly day: string
          readonly ratio: number
        }>`SELECT ${2} + ${40} AS sum, ${"it's"}::text AS text, ${9007199254740993n} AS big,
                  ${true} AS flag, ${at} AS at, ${null}::int AS nothing, DATE '2026-03-04' AS day,
                  ${0.25} AS ratio`
        assert.deepStrictEqual(row, {
          sum: 42,
          text: "it's",
          big: 9007199254740993n,
          flag: true,
          at,
          nothing: null,
          day: "2026-03-04",
          ratio: 0.25
        })
        const counted = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM generate_series(1, 3)`
        assert.deepStrictEqual(counted, [{ n: 3n }])
        const ids = yield* sql<{ readonly x: number }>`SELECT x FROM generate_series(1, 5) AS x WHERE ${
          sql.in("x", [2, 4])
        } ORDER BY x`
        assert.deepStrictEqual(ids.map((r) => r.x), [2, 4])
        const values = yield* sql`SELECT 1 AS a, 'b' AS b`.values
        assert.deepStrictEqual(values, [[1, "b"]])
        const streamed = yield* Stream.runCollect(sql<{ readonly x: number }>`SELECT x FROM generate_series(1, 4) x`.stream)
        assert.deepStrictEqual(Array.from(streamed, (r) => r.x), [1, 2, 3, 4])
      })
    )

    test(
      "round-trips json and jsonb documents",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const db = yield* Database.Database
        const doc = { name: "fetch", nested: { list: [1, "two", null, { three: true }] }, unicode: "ü→✓" }
        yield* sql`CREATE TABLE docs (id int PRIMARY KEY, body jsonb NOT NULL, plain json)`
        yield* sql`INSERT INTO docs (id, body, plain) VALUES (${1}, ${db.json(doc)}, ${JSON.stringify(doc)}::json)`
        yield* sql`INSERT INTO docs ${sql.insert({ id: 2, body: db.json([doc, doc]) })}`
        const rows = yield* sql<{ readonly id: number; readonly body: unknown; readonly plain: unknown }>`
          SELECT id, body, plain FROM docs ORDER BY id`
        assert.deepStrictEqual(rows, [
          { id: 1, body: doc, plain: doc },
          { id: 2, body: [doc, doc], plain: null }
        ])
        const picked = yield* sql<{ readonly v: unknown }>`SELECT body -> 'nested' -> 'list' -> 3 AS v FROM docs WHERE id = 1`
        assert.deepStrictEqual(picked, [{ v: { three: true } }])
      })
    )

    test(
      "inserts many rows with sql.insert",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL, weight float8)`
        const rows = Arr.makeBy(2000, (i) => ({ id: i, label: `item-${i}`, weight: i / 2 }))
        yield* sql`INSERT INTO items ${sql.insert(rows)}`
        const [stats] = yield* sql<{ readonly n: bigint; readonly total: number; readonly last: string }>`
          SELECT count(*) AS n, sum(weight) AS total, max(label) AS last FROM items`
        assert.deepStrictEqual(stats, { n: 2000n, total: 999_500, last: "item-999" })
        const returned = yield* sql<{ readonly id: number }>`
          INSERT INTO items ${sql.insert([{ id: 5000, label: "a", weight: null }])} RETURNING id`
        assert.deepStrictEqual(returned, [{ id: 5000 }])
      })
    )

    test(
      "commits a transaction and rolls back everything when it fails",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE ledger (id int PRIMARY KEY, amount int NOT NULL)`
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO ledger VALUES (1, 10)`
          yield* sql`INSERT INTO ledger VALUES (2, 20)`
        }))
        const failed = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO ledger VALUES (3, 30)`
          yield* sql`UPDATE ledger SET amount = 0`
          return yield* Effect.fail(new Boom())
        })))
        assert.isTrue(Exit.isFailure(failed))
        const violated = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO ledger VALUES (4, 40)`
          yield* sql`INSERT INTO ledger VALUES (1, 1)`
        })))
        assert.strictEqual(violated.reason._tag, "UniqueViolation")
        const rows = yield* sql<{ readonly id: number; readonly amount: number }>`SELECT * FROM ledger ORDER BY id`
        assert.deepStrictEqual(rows, [{ id: 1, amount: 10 }, { id: 2, amount: 20 }])
      })
    )

    test(
      "does not report a commit for a transaction a swallowed statement error aborted",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE aborted (id int PRIMARY KEY)`
        const error = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO aborted VALUES (1)`
          yield* Effect.ignore(sql`SELECT * FROM no_such_table`)
        })))
        assert.include(error.message, "COMMIT rolled back an aborted transaction")
        assert.deepStrictEqual(yield* sql`SELECT count(*) AS n FROM aborted`, [{ n: 0n }])
      })
    )

    test(
      "nests transactions as savepoints",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE steps (id int PRIMARY KEY)`
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO steps VALUES (1)`
          const inner = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
            yield* sql`INSERT INTO steps VALUES (2)`
            yield* sql`INSERT INTO steps VALUES (1)`
          })))
          assert.isTrue(Exit.isFailure(inner))
          yield* sql.withTransaction(sql`INSERT INTO steps VALUES (3)`)
          yield* sql.withTransaction(sql.withTransaction(sql`INSERT INTO steps VALUES (4)`))
        }))
        const kept = yield* sql<{ readonly id: number }>`SELECT id FROM steps ORDER BY id`
        assert.deepStrictEqual(kept.map((r) => r.id), [1, 3, 4])
        const outer = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
          yield* sql.withTransaction(sql`INSERT INTO steps VALUES (5)`)
          return yield* Effect.fail(new Boom())
        })))
        assert.isTrue(Exit.isFailure(outer))
        const after = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM steps`
        assert.deepStrictEqual(after, [{ n: 3n }])
      })
    )

    test(
      "runs 50 concurrent transactions without interleaving them",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE counter (id int PRIMARY KEY, value int NOT NULL)`
        yield* sql`CREATE TABLE seen (value int PRIMARY KEY, fiber int NOT NULL)`
        yield* sql`INSERT INTO counter VALUES (1, 0)`
        const bump = (fiber: number) =>
          sql.withTransaction(Effect.gen(function*() {
            const [row] = yield* sql<{ readonly value: number }>`SELECT value FROM counter WHERE id = 1 FOR UPDATE`
            const value = row!.value
            // Give every other fiber the chance to run a statement inside this transaction.
            yield* Effect.yieldNow
            yield* sql`INSERT INTO seen VALUES (${value}, ${fiber})`
            yield* Effect.yieldNow
            yield* sql`UPDATE counter SET value = ${value + 1} WHERE id = 1`
            return value
          }))
        const read = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), bump, { concurrency: "unbounded" })
        assert.deepStrictEqual([...read].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i))
        const [counter] = yield* sql<{ readonly value: number }>`SELECT value FROM counter`
        assert.strictEqual(counter!.value, 50)
        const seen = yield* sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM seen`
        assert.deepStrictEqual(seen, [{ n: 50n }])
      })
    )

    test(
      "keeps statements of other fibers out of an open transaction",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE pending (id int)`
        const inserted = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const writer = yield* Effect.forkChild(Effect.exit(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO pending VALUES (1)`
          yield* Deferred.succeed(inserted, undefined)
          yield* Deferred.await(release)
          return yield* Effect.fail(new Boom())
        }))))
        yield* Deferred.await(inserted)
        // On PGlite this waits for the writer's rollback; on a server it reads committed data.
        const reader = yield* Effect.forkChild(sql<{ readonly n: bigint }>`SELECT count(*) AS n FROM pending`)
        yield* Effect.sleep("20 millis")
        yield* Deferred.succeed(release, undefined)
        assert.isTrue(Exit.isFailure(yield* Fiber.join(writer)))
        assert.deepStrictEqual(yield* Fiber.join(reader), [{ n: 0n }])
      })
    )

    test(
      "rolls back and frees the session when a transaction is interrupted",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE interrupted (id int)`
        const inserted = yield* Deferred.make<void>()
        const stuck = yield* Effect.forkChild(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO interrupted VALUES (1)`
          yield* Deferred.succeed(inserted, undefined)
          return yield* Effect.never
        })))
        yield* Deferred.await(inserted)
        yield* Fiber.interrupt(stuck)
        yield* sql.withTransaction(sql`INSERT INTO interrupted VALUES (2)`)
        const rows = yield* sql<{ readonly id: number }>`SELECT id FROM interrupted`
        assert.deepStrictEqual(rows, [{ id: 2 }])
      })
    )

    test(
      "runs statements raw, unprepared and as value rows",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const unprepared = yield* sql`SELECT ${1} + 1 AS two`.unprepared
        assert.deepStrictEqual(unprepared, [{ two: 2 }])
        const values = yield* sql`SELECT ${"a"}::text AS a, ${2} AS b`.valuesUnprepared
        assert.deepStrictEqual(values, [["a", 2]])
        const raw = yield* sql`SELECT 1 AS one`.raw
        assert.isObject(raw)
        const [row] = yield* sql.unsafe<{ readonly n: number }>("SELECT $1::int AS n", [7])
        assert.deepStrictEqual(row, { n: 7 })
        const untyped = yield* Effect.flip(sql`SELECT ${{ plain: "object" } as unknown as string} AS x`)
        assert.strictEqual(untyped._tag, "SqlError")
      })
    )

    test(
      "applies effect/sql Migrator migrations once",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const migrate = Migrator.make({})({
          loader: Migrator.fromRecord({
            "1_create": Effect.asVoid(sql`CREATE TABLE migrated (id int PRIMARY KEY)`),
            "2_seed": Effect.asVoid(sql`INSERT INTO migrated VALUES (1), (2)`)
          })
        })
        const first = yield* migrate
        const again = yield* migrate
        assert.deepStrictEqual(first, [[1, "create"], [2, "seed"]])
        assert.deepStrictEqual(again, [])
        assert.deepStrictEqual(yield* sql`SELECT count(*) AS n FROM migrated`, [{ n: 2n }])
      })
    )

    test(
      "delivers NOTIFY payloads to LISTEN, transactional ones only on commit",
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const db = yield* Database.Database
        const channel = `ripple_test_${Math.random().toString(36).slice(2, 10)}`
        const payloads = yield* db.listen(channel)
        const received = yield* Effect.forkChild(Stream.runCollect(Stream.take(payloads, 2)))
        yield* db.notify(channel, "plain")
        yield* Effect.exit(sql.withTransaction(Effect.andThen(db.notify(channel, "rolled back"), Effect.fail(new Boom()))))
        yield* sql.withTransaction(db.notify(channel, "committed"))
        const got = yield* Fiber.join(received).pipe(Effect.timeout("10 seconds"))
        assert.deepStrictEqual(Array.from(got), ["plain", "committed"])
        const invalid = yield* Effect.flip(db.notify("Bad Channel", "x"))
        assert.match(invalid.message, /Invalid channel name/)
      })
    )
  })
}
