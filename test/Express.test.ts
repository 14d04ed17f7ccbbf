/**
 * The Express 5 adapter on a real Express app (127.0.0.1, ephemeral port) with real HTTP clients.
 * Tasks are sequenced with promises the test resolves, never with timing thresholds.
 */
import express from "express"
import * as Http from "node:http"
import type * as Net from "node:net"
import { afterEach, describe, expect, it, vi } from "vitest"
import { InvalidOptionError } from "../src/Errors.js"
import * as Express from "../src/Express.js"
import * as Node from "../src/Node.js"
import { deferred, hangUpAfterFirstChunk, send, streamed, until } from "./support/node-http.js"

const opened: Array<Node.BackgroundRuntime> = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(opened.splice(0).map((runtime) => runtime.close()))
})

/**
 * An Express app listening on an ephemeral port, drained by the runtime (attached to its server),
 * with the middleware unless `middleware` is false (an attached runtime needs none).
 */
const serve = async (routes: (app: express.Express) => void, options: Node.Options = {}, middleware = true) => {
  const background = await Node.make({ printReport: false, ...options })
  opened.push(background)
  const app = express()
  if (middleware) app.use(Express.middleware(background))
  routes(app)
  const server = await new Promise<Http.Server>((resolve) => {
    const listening: Http.Server = app.listen(0, "127.0.0.1", () => resolve(listening))
  })
  background.attach(server)
  return { background, port: (server.address() as Net.AddressInfo).port }
}

describe("Express.after", () => {
  it("runs the route's tasks in order after the response, a failing one reported and the next run", async () => {
    const ran: Array<string> = []
    const errors = vi.spyOn(console, "error").mockImplementation(() => {})
    const logs = vi.spyOn(console, "log").mockImplementation(() => {})
    const { background, port } = await serve((app) =>
      app.post("/send-notification/:email", (req, res) => {
        Express.after(req, async () => {
          ran.push(`first ${req.params.email} finished=${res.writableFinished}`)
        }, { name: "first" })
        Express.after(req, async () => {
          throw new Error("smtp down")
        })
        Express.after(req, async () => {
          ran.push("third")
        }, { name: "third" })
        res.json({ message: "Notification sent in the background" })
      })
    )
    const reply = await send(port, "/send-notification/ada@example.com")
    expect(reply.status).toBe(200)
    await until(() => background.stats().finished === 3)
    expect(ran).toEqual(["first ada@example.com finished=true", "third"])
    expect(background.stats()).toMatchObject({ finished: 3, failed: 1, skipped: 0 })
    const reported = [...errors.mock.calls, ...logs.mock.calls].map((call) => call.map(String).join(" "))
      .filter((line) => line.includes("smtp down"))
    expect(reported).toHaveLength(1)
    // named by method and route pattern, never the URL (which holds the address)
    expect(reported[0]).toContain("after-response POST /send-notification/:email #2")
    expect(reported[0]).not.toContain("ada@example.com")
  })

  it("never starts a task before the response's last byte, and runs it when the client hangs up first (a disconnect cancels nothing)", async () => {
    const release = deferred()
    const firstChunk = deferred()
    let ran = 0
    const { background, port } = await serve((app) => {
      app.get("/stream", (req, res) => {
        Express.after(req, async () => {
          ran++
        }, { name: "after-stream" })
        res.write("partial ")
        void release.promise.then(() => res.end("done"))
      })
      app.get("/cut", (req, res) => {
        Express.after(req, async () => {
          ran += 100
        }, { name: "cut-off" })
        res.writeHead(200, { "content-length": "100" })
        res.write("only part")
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

  it("needs no middleware on the attached server: tasks run after the response, in order, and one added once the response has closed is refused", async () => {
    const ran: Array<string> = []
    let late: unknown
    const { background, port } = await serve((app) =>
      app.post("/send-notification/:email", (req, res) => {
        Express.after(req, async () => {
          ran.push(`first finished=${res.writableFinished}`)
        })
        // written but not yet closed: still taken, and run with the others
        res.on("finish", () => Express.after(req, async () => void ran.push("on finish")))
        res.on("close", () => {
          try {
            Express.after(req, async () => void ran.push("on close"))
          } catch (error) {
            late = error
          }
        })
        res.json({ ok: true })
      }), {}, false)
    expect((await send(port, "/send-notification/ada@example.com")).status).toBe(200)
    await until(() => background.stats().finished === 2 && late !== undefined)
    expect(ran).toEqual(["first finished=true", "on finish"])
    expect(late).toBeInstanceOf(InvalidOptionError)
    expect(String((late as Error).message)).toContain("not yet written")
    expect(background.snapshot()).toEqual([])
  })

  it("a request through another runtime's middleware runs its tasks in that runtime; an app on a server no runtime is attached to works through the middleware", async () => {
    const other = await Node.make({ printReport: false })
    opened.push(other)
    const ran: Array<string> = []
    const { background, port } = await serve((app) => {
      app.use("/other", Express.middleware(other))
      app.get("/other/work", (req, res) => {
        Express.after(req, async () => void ran.push("other"))
        res.end()
      })
      app.get("/own", (req, res) => {
        Express.after(req, async () => void ran.push("own"))
        res.end()
      })
    }, {}, false)
    await send(port, "/other/work", "GET")
    await until(() => other.stats().finished === 1)
    await send(port, "/own", "GET")
    await until(() => background.stats().finished === 1)
    expect(ran).toEqual(["other", "own"])
    expect(other.stats().finished).toBe(1)

    // not attached: the middleware alone ties the requests to the runtime
    const unattached = express()
    unattached.use(Express.middleware(other))
    unattached.get("/", (req, res) => {
      Express.after(req, async () => void ran.push("unattached"), { name: "unattached" })
      res.end()
    })
    const server = await new Promise<Http.Server>((resolve) => {
      const listening: Http.Server = unattached.listen(0, "127.0.0.1", () => resolve(listening))
    })
    await send((server.address() as Net.AddressInfo).port, "/", "GET")
    await until(() => other.stats().finished === 2)
    server.close()
    expect(ran).toEqual(["other", "own", "unattached"])
  })

  it("refuses a request that did not go through the middleware", async () => {
    let refused: unknown
    const app = express()
    app.get("/", (req, res) => {
      try {
        Express.after(req, async () => {})
      } catch (error) {
        refused = error
      }
      res.end()
    })
    const server = await new Promise<Http.Server>((resolve) => {
      const listening: Http.Server = app.listen(0, "127.0.0.1", () => resolve(listening))
    })
    await send((server.address() as Net.AddressInfo).port, "/", "GET")
    server.close()
    expect(refused).toBeInstanceOf(InvalidOptionError)
    expect(String((refused as Error).message)).toContain("Express.middleware")
  })
})

describe("Express shutdown", () => {
  it("under load, every request answered 2xx has its task run, and late callbacks have their signal aborted", async () => {
    const lines: Array<string> = []
    const held = deferred()
    let arrived = 0
    let aborted = 0
    const { background, port } = await serve((app) =>
      app.post("/send-notification/:email", (req, res) => {
        arrived++
        Express.after(req, async () => {
          await new Promise((resolve) => setImmediate(resolve))
          lines.push(req.params.email!)
        }, { name: "notify" })
        if (arrived % 2 === 0) void held.promise.then(() => res.json({ ok: true }))
        else res.json({ ok: true })
      }), { grace: "2 seconds", drainTimeout: "10 seconds" })
    // a fork that only stops when told: interrupted once the grace is over
    const stubborn = background.fork((signal) =>
      new Promise<void>((resolve) =>
        signal.addEventListener("abort", () => {
          aborted++
          resolve()
        })
      ), "poller")
    const total = 500
    const replies = Array.from({ length: total }, (_, index) => send(port, `/send-notification/u${index}`))
    await until(() => arrived === total)
    const closing = background.close()
    held.resolve()
    const answered = await Promise.all(replies)
    const result = await closing
    const ok = answered.filter((reply) => reply.status === 200).length
    expect(ok).toBe(total)
    expect(lines).toHaveLength(ok)
    expect(new Set(lines).size).toBe(total)
    expect(aborted).toBe(1)
    expect(await stubborn.done()).toBe("interrupted")
    expect(result.report).toContain(`tasks finished=${total} failed=0 interrupted=1`)
    expect(result.report).toContain("interrupted: poller")
    expect(result.exitCode).toBe(0)
  })
})
