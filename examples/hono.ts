/**
 * Pattern: a Hono app on Node (`@hono/node-server`) with the same guarantees as an Effect server —
 * the notification is written after the response (and still written, within the grace, when
 * SIGTERM comes first), `c.executionCtx.waitUntil` works as it does on Workers, a daemon lives as
 * long as the server, CPU work goes to a worker thread, and shutdown drains the server, reports
 * and exits like `Server.launch`.
 *
 * Run: `node --import tsx examples/hono.ts`, then
 *   curl -X POST 127.0.0.1:3000/send-notification/ada@example.com
 *   curl "127.0.0.1:3000/cpu?n=1000000"
 * Env: PORT, DRAIN_MS, GRACE_MS, TASK_DELAY_MS (default 0), LOG_FILE (default ./log.txt),
 * INTERVAL_MS (the daemon's beat, default 5000), OFFLOAD_THREADS (default 1).
 */
import { type HttpBindings, serve } from "@hono/node-server"
import { Hono } from "hono"
import type * as Http from "node:http"
import * as HonoAdapter from "../src/Hono.js"
import * as Node from "../src/Node.js"
import { env } from "./env.js"
import { CPU_INPUT_ERROR, cpuInput, Crunch, heartbeat, makeBackground, notify, notifyName } from "./framework-work.js"

const background = await makeBackground()
const app = new Hono<{ Bindings: HttpBindings }>()

app.get("/health", (c) =>
  background.isReady() ? c.json({ status: "ok" }) : c.json({ status: "draining" }, 503))

app.post("/send-notification/:email", (c) => {
  const email = c.req.param("email")
  HonoAdapter.after(c, notify(email), { name: notifyName(email) })
  return c.json({ message: "Notification sent in the background" })
})

app.get("/cpu", async (c) => {
  const n = cpuInput(c.req.query("n"))
  return n === undefined ? c.json(CPU_INPUT_ERROR, 400) : c.json(await background.offload(Crunch, { n }))
})

background.daemon(heartbeat, "heartbeat")

const server = serve({ fetch: HonoAdapter.fetch(app, background), port: env.port, hostname: "127.0.0.1" }, () =>
  console.log(`listening on http://127.0.0.1:${env.port}`))
background.attach(server as Http.Server) // an http.Server: serve() was not asked for http2
Node.handleSignals(background)
