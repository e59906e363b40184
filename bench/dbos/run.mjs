// DBOS Transact on the same PostgreSQL server as bench:durable, with the same two workloads (no-op
// steps): one 100-step workflow, and 100 concurrent 10-step workflows. Prints one JSON line.
import { DBOS } from "@dbos-inc/dbos-sdk"

const server = new URL(process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres")
server.pathname = "/ripple_bench_dbos_sys"
server.search = ""
DBOS.setConfig({ name: "ripple-bench", systemDatabaseUrl: server.toString(), systemDatabasePoolSize: 20 })

const step = DBOS.registerStep(async (i) => i, { name: "noop" })
const chain = DBOS.registerWorkflow(async (n) => {
  let v = 0
  for (let i = 0; i < n; i++) v += await step(i)
  return v
}, { name: "chain" })

await DBOS.launch()

const time = async (f) => {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}
const linear = () => DBOS.startWorkflow(chain)(100).then((h) => h.getResult())
const concurrent = () => Promise.all(Array.from({ length: 100 }, () => DBOS.startWorkflow(chain)(10).then((h) => h.getResult())))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

await linear()
await concurrent()
const linearMs = []
const concurrentMs = []
for (let r = 0; r < 3; r++) {
  linearMs.push(await time(linear))
  concurrentMs.push(await time(concurrent))
}
await DBOS.shutdown()
const l = median(linearMs)
const c = median(concurrentMs)
console.log(JSON.stringify({ linearMsPerStep: l / 100, linearStepsPerSec: 100 / (l / 1000), concurrentStepsPerSec: 1000 / (c / 1000) }))
process.exit(0)
