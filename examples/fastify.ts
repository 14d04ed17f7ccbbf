/**
 * Pattern: a Fastify 5 app with the same guarantees as an Effect server — the notification is
 * written after the response (and still written, within the grace, when SIGTERM comes first), a
 * daemon lives as long as the server, CPU work goes to a worker thread. On SIGTERM, `app.close()`
 * drains Fastify's server; its `onClose` hook then gives background work its grace, interrupts what
 * is left, and the report line is printed.
 *
 * Run: `node --import tsx examples/fastify.ts`, then
 *   curl -X POST 127.0.0.1:3000/send-notification/ada@example.com
 *   curl "127.0.0.1:3000/cpu?n=1000000"
 * Env: PORT, GRACE_MS, TASK_DELAY_MS (default 0), LOG_FILE (default ./log.txt), INTERVAL_MS (the
 * daemon's beat, default 5000), OFFLOAD_THREADS (default 1).
 */
import Fastify from "fastify"
import * as FastifyAdapter from "../src/Fastify.js"
import * as Node from "../src/Node.js"
import { env } from "./env.js"
import { CPU_INPUT_ERROR, cpuInput, Crunch, heartbeat, makeBackground, notify, notifyName } from "./framework-work.js"

const background = await makeBackground()
const app = Fastify()
await app.register(FastifyAdapter.plugin(background))

// Fastify answers 503 itself while it closes (return503OnClosing).
app.get("/health", async () => ({ status: "ok" }))

app.post<{ Params: { email: string } }>("/send-notification/:email", async (request) => {
  FastifyAdapter.after(request, notify(request.params.email), { name: notifyName(request.params.email) })
  return { message: "Notification sent in the background" }
})

app.get<{ Querystring: { n?: string } }>("/cpu", async (request, reply) => {
  const n = cpuInput(request.query.n)
  return n === undefined ? reply.code(400).send(CPU_INPUT_ERROR) : background.offload(Crunch, { n })
})

background.daemon(heartbeat, "heartbeat")

await app.listen({ port: env.port, host: "127.0.0.1" })
console.log(`listening on http://127.0.0.1:${env.port}`)
Node.handleSignals(background, { close: () => app.close() })
