/**
 * The Hono adapter on a real Hono app served by @hono/node-server (127.0.0.1, ephemeral port) with
 * real HTTP clients. Tasks are sequenced with promises the test resolves, never timing thresholds.
 */
import { serve } from "@hono/node-server"
import type { HttpBindings } from "@hono/node-server"
import { Hono } from "hono"
import * as Http from "node:http"
import type * as Net from "node:net"
import { afterEach, describe, expect, it, vi } from "vitest"
import { InvalidOptionError } from "../src/Errors.js"
import * as HonoAdapter from "../src/Hono.js"
import * as Node from "../src/Node.js"
import { deferred, hangUpAfterFirstChunk, send, streamed, until } from "./support/node-http.js"

type App = Hono<{ Bindings: HttpBindings }>
const opened: Array<Node.BackgroundRuntime> = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(opened.splice(0).map((runtime) => runtime.close()))
})

/** A Hono app served through the adapter on an ephemeral port, drained by the runtime. */
const start = async (routes: (app: App) => void, options: Node.Options = {}) => {
  const background = await Node.make({ printReport: false, ...options })
  opened.push(background)
  const app: App = new Hono()
  routes(app)
  const server = await new Promise<Http.Server>((resolve) => {
    const served = serve({ fetch: HonoAdapter.fetch(app, background), port: 0, hostname: "127.0.0.1" }, () =>
      resolve(served as Http.Server))
  })
  background.attach(server)
  return { background, port: (server.address() as Net.AddressInfo).port }
}

describe("Hono.after", () => {
  it("runs the route's tasks in order after the response, a failing one reported and the next run", async () => {
    const ran: Array<string> = []
    const errors = vi.spyOn(console, "error").mockImplementation(() => {})
    const logs = vi.spyOn(console, "log").mockImplementation(() => {})
    const { background, port } = await start((app) =>
      app.post("/send-notification/:email", (c) => {
        HonoAdapter.after(c, async () => {
          ran.push(`first ${c.req.param("email")} finished=${c.env.outgoing.writableFinished}`)
        }, { name: "first" })
        HonoAdapter.after(c, async () => {
          throw new Error("smtp down")
        })
        HonoAdapter.after(c, async () => {
          ran.push("third")
        }, { name: "third" })
        return c.json({ message: "Notification sent in the background" })
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
    const encoder = new TextEncoder()
    let ran = 0
    const { background, port } = await start((app) => {
      app.get("/stream", (c) => {
        HonoAdapter.after(c, async () => {
          ran++
        }, { name: "after-stream" })
        return c.body(
          new ReadableStream<Uint8Array>({
            start: (controller) => {
              controller.enqueue(encoder.encode("partial "))
              void release.promise.then(() => {
                controller.enqueue(encoder.encode("done"))
                controller.close()
              })
            }
          })
        )
      })
      app.get("/cut", (c) => {
        HonoAdapter.after(c, async () => {
          ran += 100
        }, { name: "cut-off" })
        // a body that never ends: only the client's hang-up closes the response
        return c.body(new ReadableStream<Uint8Array>({ start: (controller) => controller.enqueue(encoder.encode("only part")) }))
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

  it("refuses a context not served through Hono.fetch", async () => {
    let refused: unknown
    const app: App = new Hono()
    app.get("/", (c) => {
      try {
        HonoAdapter.after(c, async () => {})
      } catch (error) {
        refused = error
      }
      return c.text("ok")
    })
    const server = await new Promise<Http.Server>((resolve) => {
      const served = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(served as Http.Server))
    })
    await send((server.address() as Net.AddressInfo).port, "/", "GET")
    server.close()
    expect(refused).toBeInstanceOf(InvalidOptionError)
    expect(String((refused as Error).message)).toContain("Hono.fetch")
  })
})

describe("c.executionCtx.waitUntil", () => {
  it("supervises the promise: a rejection is reported once, and close waits for a pending one within the grace", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {})
    const logs = vi.spyOn(console, "log").mockImplementation(() => {})
    const pending = deferred()
    let settled = false
    const { background, port } = await start((app) => {
      app.post("/fail", (c) => {
        c.executionCtx.waitUntil(Promise.reject(new Error("analytics down")))
        return c.text("ok")
      })
      app.post("/slow", (c) => {
        c.executionCtx.waitUntil(pending.promise.then(() => {
          settled = true
        }))
        return c.text("ok")
      })
    }, { grace: "30 seconds" })
    expect((await send(port, "/fail")).status).toBe(200)
    await until(() => background.stats().failed === 1)
    const reported = [...errors.mock.calls, ...logs.mock.calls].map((call) => call.map(String).join(" "))
      .filter((line) => line.includes("analytics down"))
    expect(reported).toHaveLength(1)
    expect(reported[0]).toContain("waitUntil POST")

    expect((await send(port, "/slow")).status).toBe(200)
    expect(background.snapshot().map((task) => task.name)).toEqual(["waitUntil POST"])
    const closing = background.close()
    // close is in its grace, waiting for the promise
    await until(() => !background.isReady())
    expect(settled).toBe(false)
    pending.resolve()
    const result = await closing
    expect(settled).toBe(true)
    expect(result.report).toContain("tasks finished=2 failed=1 interrupted=0")
  })
})

describe("HonoAdapter.waitUntil", () => {
  it("names the promise after the method and route pattern (never the URL), or as asked; a rejection is reported once by that name", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {})
    const logs = vi.spyOn(console, "log").mockImplementation(() => {})
    const pending = deferred()
    const { background, port } = await start((app) => {
      app.post("/events/:kind", (c) => {
        HonoAdapter.waitUntil(c, pending.promise)
        HonoAdapter.waitUntil(c, pending.promise, { name: `audit ${c.req.param("kind")}` })
        HonoAdapter.waitUntil(c, Promise.reject(new Error("analytics down")))
        return c.text("ok")
      })
    })
    expect((await send(port, "/events/signup")).status).toBe(200)
    await until(() => background.stats().failed === 1)
    expect(background.snapshot().map((task) => task.name).sort()).toEqual(["audit signup", "waitUntil POST /events/:kind"])
    const reported = [...errors.mock.calls, ...logs.mock.calls].map((call) => call.map(String).join(" "))
      .filter((line) => line.includes("analytics down"))
    expect(reported).toHaveLength(1)
    expect(reported[0]).toContain("waitUntil POST /events/:kind")
    pending.resolve()
    await until(() => background.snapshot().length === 0)
    expect(background.stats()).toMatchObject({ finished: 3, failed: 1 })
    const refused = (() => {
      try {
        HonoAdapter.waitUntil({ req: { method: "GET", path: "/x" } } as never, Promise.resolve())
      } catch (error) {
        return error
      }
    })()
    expect(refused).toBeInstanceOf(InvalidOptionError)
  })
})

describe("Hono shutdown", () => {
  it("under load, every request answered 2xx has its task run", async () => {
    const lines: Array<string> = []
    const held = deferred()
    let arrived = 0
    const { background, port } = await start((app) =>
      app.post("/send-notification/:email", async (c) => {
        arrived++
        const email = c.req.param("email")
        HonoAdapter.after(c, async () => {
          await new Promise((resolve) => setImmediate(resolve))
          lines.push(email)
        }, { name: "notify" })
        if (arrived % 2 === 0) await held.promise
        return c.json({ ok: true })
      }), { grace: "10 seconds" })
    const total = 500
    const replies = Array.from({ length: total }, (_, index) => send(port, `/send-notification/u${index}`))
    await until(() => arrived === total)
    const closing = background.close()
    held.resolve()
    const answered = await Promise.all(replies)
    const result = await closing
    expect(answered.filter((reply) => reply.status === 200)).toHaveLength(total)
    expect(new Set(lines).size).toBe(total)
    expect(lines).toHaveLength(total)
    expect(result.report).toContain(`tasks finished=${total} failed=0 interrupted=0`)
    expect(result.exitCode).toBe(0)
  })
})
