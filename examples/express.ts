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
import * as Express from "../src/Express.js"
import * as Node from "../src/Node.js"
import { env } from "./env.js"
import { CPU_INPUT_ERROR, cpuInput, Crunch, heartbeat, makeBackground, notify, notifyName } from "./framework-work.js"

const background = await makeBackground()
const app = express()

app.get("/health", (_req, res) => {
  res.status(background.isReady() ? 200 : 503).json({ status: background.isReady() ? "ok" : "draining" })
})

app.post("/send-notification/:email", (req, res) => {
  Express.after(req, notify(req.params.email), { name: notifyName(req.params.email) })
  res.json({ message: "Notification sent in the background" })
})

app.get("/cpu", async (req, res) => {
  const n = cpuInput(req.query.n)
  if (n === undefined) res.status(400).json(CPU_INPUT_ERROR)
  else res.json(await background.offload(Crunch, { n }))
})

background.daemon(heartbeat, "heartbeat")

const server = app.listen(env.port, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${env.port}`))
background.attach(server)
Node.handleSignals(background)
