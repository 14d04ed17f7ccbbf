/**
 * Pattern: an Express 5 app, not an Effect server, with the same guarantees — the notification is
 * written after the response (and still written, within the grace, when SIGTERM comes first), a
 * daemon lives as long as the server, CPU work goes to a worker thread, and shutdown drains the
 * server, reports and exits like `Server.launch`.
 *
 * Run: `node --import tsx examples/express.ts`, then
 *   curl -X POST 127.0.0.1:3000/send-notification/ada@example.com
 *   curl "127.0.0.1:3000/cpu?n=1000000"
 * Env: PORT, DRAIN_MS, GRACE_MS, TASK_DELAY_MS (default 0), LOG_FILE (default ./log.txt),
 * INTERVAL_MS (the daemon's beat, default 5000), OFFLOAD_THREADS (default 1).
 */
import express from "express"
import { appendFile } from "node:fs/promises"
import { setTimeout as sleep } from "node:timers/promises"
import * as Express from "../src/Express.js"
import * as Node from "../src/Node.js"
import { env } from "./env.js"
import { masked } from "./notify.js"
import { Crunch } from "./workers/cpu.tasks.js"

const taskDelay = env.taskDelayMillis(0)

const background = await Node.make({
  drainTimeout: env.drainMillis,
  grace: env.graceMillis,
  offload: {
    module: new URL("./workers/cpu.worker.ts", import.meta.url),
    minThreads: env.number("OFFLOAD_THREADS", 1),
    maxThreads: env.number("OFFLOAD_THREADS", 1)
  }
})

const app = express()
app.use(Express.middleware(background))

app.get("/health", (_req, res) => {
  res.status(background.isReady() ? 200 : 503).json({ status: background.isReady() ? "ok" : "draining" })
})

app.post("/send-notification/:email", (req, res) => {
  const email = req.params.email
  Express.after(req, async (signal) => {
    try {
      await sleep(taskDelay, undefined, { signal })
    } catch (error) {
      console.warn(`notification for ${masked(email)} was not sent: interrupted`)
      throw error
    }
    await appendFile(env.logFile, `notification for ${email}: some notification\n`)
  }, { name: `notify ${masked(email)}` })
  res.json({ message: "Notification sent in the background" })
})

app.get("/cpu", async (req, res) => {
  const n = Number(req.query.n ?? 1_000_000)
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000_000) {
    res.status(400).json({ error: "n must be a whole number from 0 to 1000000000" })
    return
  }
  res.json(await background.offload(Crunch, { n }))
})

background.daemon(async (signal) => {
  let beat = 0
  while (!signal.aborted) {
    console.log(`daemon beat #${++beat}`)
    await sleep(env.intervalMillis, undefined, { signal }).catch(() => undefined)
  }
  console.log("daemon stopped")
}, "heartbeat")

const server = app.listen(env.port, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${env.port}`))
background.attach(server)
Node.handleSignals(background)
