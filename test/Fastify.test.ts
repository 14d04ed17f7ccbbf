/**
 * The Fastify 5 plugin on a real Fastify app (127.0.0.1, ephemeral port) with real HTTP clients.
 * Tasks are sequenced with promises the test resolves, never with timing thresholds.
 */
import Fastify, { type FastifyInstance } from "fastify"
import type * as Net from "node:net"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PassThrough } from "node:stream"
import { Schema } from "effect"
import * as Durable from "../src/Durable.js"
import { afterEach, describe, expect, it, vi } from "vitest"
import { InvalidOptionError } from "../src/Errors.js"
import * as FastifyAdapter from "../src/Fastify.js"
import * as Node from "../src/Node.js"
import { deferred, hangUpAfterFirstChunk, send, streamed, until } from "./support/node-http.js"

type App = FastifyInstance
const apps: Array<App> = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(apps.splice(0).map((app) => app.close()))
})

/** A Fastify app with the plugin, listening on an ephemeral port; closing it closes the runtime. */
const serve = async (routes: (app: App) => void, options: Node.Options = {}, fastifyOptions: { readonly forceCloseConnections?: boolean } = {}) => {
  const background = await Node.make({ printReport: false, ...options })
  const app = Fastify(fastifyOptions)
  apps.push(app)
  await app.register(FastifyAdapter.plugin(background))
  routes(app)
  await app.listen({ port: 0, host: "127.0.0.1" })
  return { app, background, port: (app.server.address() as Net.AddressInfo).port }
}

describe("Fastify.after", () => {
  it("runs the route's tasks in order after the response, a failing one reported and the next run", async () => {
    const ran: Array<string> = []
    const errors = vi.spyOn(console, "error").mockImplementation(() => {})
    const logs = vi.spyOn(console, "log").mockImplementation(() => {})
    const { background, port } = await serve((app) =>
      app.post<{ Params: { email: string } }>("/send-notification/:email", async (request, reply) => {
        FastifyAdapter.after(request, async () => {
          ran.push(`first ${request.params.email} finished=${reply.raw.writableFinished}`)
        }, { name: "first" })
        FastifyAdapter.after(request, async () => {
          throw new Error("smtp down")
        })
        FastifyAdapter.after(request, async () => {
          ran.push("third")
        }, { name: "third" })
        return { message: "Notification sent in the background" }
      })
    )
    expect((await send(port, "/send-notification/ada@example.com")).status).toBe(200)
    await until(() => background.stats().finished === 3)
    expect(ran).toEqual(["first ada@example.com finished=true", "third"])
    expect(background.stats()).toMatchObject({ finished: 3, failed: 1, skipped: 0 })
    const reported = [...errors.mock.calls, ...logs.mock.calls].map((call) => call.map(String).join(" "))
      .filter((line) => line.includes("smtp down"))
    expect(reported).toHaveLength(1)
    expect(reported[0]).toContain("after-response POST /send-notification/:email #2")
    expect(reported[0]).not.toContain("ada@example.com")
  })

  it("never starts a task before a streamed response's last byte, and runs it when the client hangs up first (a disconnect cancels nothing)", async () => {
    const release = deferred()
    const firstChunk = deferred()
    let ran = 0
    const { background, port } = await serve((app) => {
      app.get("/stream", async (request, reply) => {
        FastifyAdapter.after(request, async () => {
          ran++
        }, { name: "after-stream" })
        const body = new PassThrough()
        body.write("partial ")
        void release.promise.then(() => body.end("done"))
        return reply.type("text/plain").send(body)
      })
      app.get("/cut", (request, reply) => {
        FastifyAdapter.after(request, async () => {
          ran += 100
        }, { name: "cut-off" })
        reply.hijack()
        reply.raw.writeHead(200, { "content-length": "100" })
        reply.raw.write("only part")
      })
    })
    const reply = streamed(port, "/stream", firstChunk)
    await firstChunk.promise
    expect(background.snapshot().map((task) => task.state)).toEqual(["waiting"])
    expect(ran).toBe(0)
    release.resolve()
    expect(await reply).toBe("partial done")
    await until(() => ran === 1)

    await hangUpAfterFirstChunk(port, "/cut")
    await until(() => ran === 101)
    expect(background.stats()).toMatchObject({ skipped: 0 })
  })

  it("refuses a request of an app without the plugin", async () => {
    let refused: unknown
    const app = Fastify()
    apps.push(app)
    app.get("/", async (request) => {
      try {
        FastifyAdapter.after(request, async () => {})
      } catch (error) {
        refused = error
      }
      return "ok"
    })
    await app.listen({ port: 0, host: "127.0.0.1" })
    await send((app.server.address() as Net.AddressInfo).port, "/", "GET")
    expect(refused).toBeInstanceOf(InvalidOptionError)
    expect(String((refused as Error).message)).toContain("Fastify.plugin")
  })
})

describe("Fastify and durable enqueue", () => {
  it("a task enqueued for a Fastify request is committed before the answer and runs once the response is written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fastify-durable-"))
    const ran = deferred<boolean | undefined>()
    const responses = new Map<string, { readonly writableFinished: boolean }>()
    const Note = Node.durableTask("note", {
      payload: Schema.Struct({ email: Schema.String }),
      run: async ({ email }) => ran.resolve(responses.get(email)?.writableFinished)
    })
    try {
      let background: Node.BackgroundRuntime | undefined
      const served = await serve((app) =>
        app.post<{ Params: { email: string } }>("/signup/:email", async (request, reply) => {
          responses.set(request.params.email, reply.raw)
          const id = await background!.enqueue(Note, { email: request.params.email }, { request })
          return reply.code(202).send({ id })
        }), { durable: { store: Durable.sqlite({ filename: join(dir, "tasks.sqlite") }), tasks: [Note] } })
      background = served.background
      const reply = await send(served.port, "/signup/ada")
      expect(reply.status).toBe(202)
      expect(await ran.promise).toBe(true)
      await served.app.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("Fastify shutdown", () => {
  it("app.close() under load: every request answered 2xx has its task run, then late work has its signal aborted", async () => {
    const lines: Array<string> = []
    const held = deferred()
    let arrived = 0
    let aborted = 0
    const { app, background, port } = await serve((app) =>
      app.post<{ Params: { email: string } }>("/send-notification/:email", async (request) => {
        arrived++
        FastifyAdapter.after(request, async () => {
          await new Promise((resolve) => setImmediate(resolve))
          lines.push(request.params.email)
        }, { name: "notify" })
        if (arrived % 2 === 0) await held.promise
        return { ok: true }
      }), { grace: "2 seconds" })
    const poller = background.fork((signal) =>
      new Promise<void>((resolve) =>
        signal.addEventListener("abort", () => {
          aborted++
          resolve()
        })
      ), "poller")
    const total = 500
    const replies = Array.from({ length: total }, (_, index) => send(port, `/send-notification/u${index}`))
    await until(() => arrived === total)
    const closing = app.close()
    held.resolve()
    const answered = await Promise.all(replies)
    await closing
    const result = await background.close()
    const ok = answered.filter((reply) => reply.status === 200).length
    expect(ok).toBe(total)
    expect(lines).toHaveLength(ok)
    expect(new Set(lines).size).toBe(total)
    expect(aborted).toBe(1)
    expect(await poller.done()).toBe("interrupted")
    expect(result.report).toContain(`tasks finished=${total} failed=0 interrupted=1`)
    expect(result.report).toContain("interrupted: poller")
    // Fastify's own drain, counted: the held half were answered after close() began
    const drained = Number(/requests drained=(\d+) interrupted=0/.exec(result.report)?.[1])
    expect(drained).toBeGreaterThanOrEqual(total / 2)
    expect(drained).toBeLessThanOrEqual(total)
    expect(result.exitCode).toBe(0)
  })

  it("a request Fastify's own close cuts off (forceCloseConnections) is counted as interrupted in the report's drain", async () => {
    const inHandler = deferred()
    const never = deferred()
    const { app, background, port } = await serve((app) => {
      app.post("/quick", async () => ({ ok: true }))
      app.post("/stuck", async () => {
        inHandler.resolve()
        await never.promise
        return { ok: true }
      })
    }, {}, { forceCloseConnections: true })
    // answered before close: counted in neither
    expect((await send(port, "/quick")).status).toBe(200)
    const cut = send(port, "/stuck").then(() => "answered", (error: NodeJS.ErrnoException) => error.code)
    await inHandler.promise
    await app.close()
    expect(await cut).toBe("ECONNRESET")
    const result = await background.close()
    expect(result.report).toMatch(/requests drained=0 interrupted=1;/)
    never.resolve()
  })
})
