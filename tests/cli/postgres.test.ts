/**
 * The CLI end to end on the PostgreSQL server (`DATABASE_URL`, default the local server): the same
 * scenario as on PGlite, in a fresh schema selected through the URL and dropped afterwards.
 */
import * as TestDatabase from "../helpers/database.ts"
import { dumpServer, onServer, tempDir, withSchema } from "./ripple.ts"
import { scenario } from "./scenario.ts"

const server = TestDatabase.serverUrl()
const schema = `ripple_test_cli_${process.pid}_${Date.now().toString(36)}`
const url = withSchema(server, schema)
const temp = tempDir("postgres")

scenario("the PostgreSQL server", async () => {
  await onServer(server, `CREATE SCHEMA ${schema}`)
  return { where: { cwd: temp.dir, db: ["--db", url] }, dump: () => dumpServer(url), shared: true }
}, async () => {
  await onServer(server, `DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  temp.remove()
})
