/**
 * `after` tasks of the Promise API (effect-background/Node) at their ends: a callback that settles
 * at once or throws, and — past the grace period — one that stops on its signal and one that
 * ignores it. On a real node:http server (127.0.0.1, ephemeral port) with real HTTP clients.
 */
import { afterEach, describe, expect, it, vi } from "vitest"
import * as Http from "node:http"
import * as Node from "../src/Node.js"
import { deferred, listen, send, until } from "./support/node-http.js"

const opened: Array<Node.BackgroundRuntime> = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(opened.splice(0).map((runtime) => runtime.close()))
})

describe("Node after-response callbacks", () => {
  /**
   * A runtime draining a new server, closed after the test, with the console captured: `reported`
   * says whether a line containing `text` was printed.
   */
  const started = async (options: Omit<Node.Options, "server"> = {}) => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {})
    const logs = vi.spyOn(console, "log").mockImplementation(() => {})
    const server = Http.createServer()
    const runtime = await Node.make({ server, printReport: false, ...options })
    opened.push(runtime)
    const lines = (text: string) =>
      [...errors.mock.calls, ...logs.mock.calls].map((call) => call.map(String).join(" ")).filter((line) => line.includes(text))
    return { server, runtime, lines, reported: (text: string) => lines(text).length > 0 }
  }

  it("a callback that returns a value finishes, one that throws fails and is reported once, without waiting on a promise", async () => {
    const { server, runtime, lines } = await started()
    const ran: Array<string> = []
    server.on("request", (_request: Http.IncomingMessage, response: Http.ServerResponse) => {
      runtime.after(response, () => void ran.push("sync"), { name: "sync" })
      runtime.after(response, () => {
        throw new Error("thrown at once")
      }, { name: "throws" })
      runtime.after(response, () => void ran.push("after the throw"), { name: "next" })
      response.end("ok")
    })
    const port = await listen(server)
    expect(await send(port, "/")).toEqual({ status: 200, body: "ok" })
    await until(() => runtime.stats().finished === 3)
    expect(ran).toEqual(["sync", "after the throw"])
    expect(runtime.stats()).toMatchObject({ finished: 3, failed: 1, interrupted: 0 })
    const reported = lines("thrown at once")
    expect(reported).toHaveLength(1)
    expect(reported[0]).toContain("background after-response \\\"throws\\\" failed")
  })

  it("20,000 callbacks on one response that each return at once all run, in order", async () => {
    const { server, runtime } = await started()
    const count = 20_000
    let next = 0
    let outOfOrder = 0
    server.on("request", (_request: Http.IncomingMessage, response: Http.ServerResponse) => {
      for (let index = 0; index < count; index++) {
        runtime.after(response, () => {
          if (next !== index) outOfOrder++
          next++
        }, { name: "count" })
      }
      response.end("ok")
    })
    const port = await listen(server)
    expect(await send(port, "/")).toEqual({ status: 200, body: "ok" })
    await until(() => runtime.stats().finished === count)
    expect({ next, outOfOrder, failed: runtime.stats().failed }).toEqual({ next: count, outOfOrder: 0, failed: 0 })
  })

  it("a callback handed over while earlier ones still run starts at once beside them, ends on its own (a failure reported once, by name), and is cut off with them past the grace", async () => {
    const { server, runtime, lines } = await started({ grace: 0, interruptTimeout: "300 millis" })
    const started_: Array<string> = []
    const aborted: Array<string> = []
    const polite = (name: string) => (signal: AbortSignal) => {
      started_.push(name)
      return new Promise<void>((_resolve, reject) =>
        signal.addEventListener("abort", () => {
          aborted.push(name)
          reject(signal.reason)
        }))
    }
    server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      if (request.url === "/first") {
        runtime.after(response, polite("first"), { name: "first" })
      } else {
        runtime.after(response, () => Promise.reject(new Error("second failed")), { name: "second" })
        runtime.after(response, polite("third"), { name: "third" })
      }
      response.end("ok")
    })
    const port = await listen(server)
    await send(port, "/first")
    await until(() => started_.length === 1)
    await send(port, "/second")
    await until(() => started_.length === 2 && runtime.stats().failed === 1)
    expect(started_).toEqual(["first", "third"])
    expect(runtime.snapshot().map((task) => `${task.name} ${task.state}`).sort()).toEqual(["first running", "third running"])
    await until(() => lines("second failed").length > 0)
    expect(lines("second failed")).toHaveLength(1)
    expect(lines("second failed")[0]).toContain("background after-response \\\"second\\\" failed")
    const result = await runtime.close()
    expect(aborted.sort()).toEqual(["first", "third"])
    expect(result.stillRunning).toEqual([])
    expect(runtime.stats()).toMatchObject({ finished: 1, failed: 1, interrupted: 2 })
  })

  it("callbacks started together (responses written in one turn) each end on their own, and are each cut off past the grace", async () => {
    const { server, runtime, lines } = await started({ grace: 0, interruptTimeout: "300 millis" })
    const names = ["fails", "fast", "polite", "stubborn"] as const
    const held: Array<Http.ServerResponse> = []
    const release = deferred()
    let politeAborted = false
    let stubbornAborted = false
    server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      const name = request.url!.slice(1) as (typeof names)[number]
      runtime.after(response, (signal) => {
        switch (name) {
          case "fails":
            return Promise.reject(new Error("rejected at once"))
          case "fast":
            return new Promise<void>((resolve) => setTimeout(resolve, 5))
          case "polite":
            return new Promise<void>((_resolve, reject) =>
              signal.addEventListener("abort", () => {
                politeAborted = true
                reject(signal.reason)
              }))
          case "stubborn":
            signal.addEventListener("abort", () => (stubbornAborted = true))
            return release.promise
        }
      }, { name })
      held.push(response)
      // every response is written in the same turn, so their tasks are handed over together
      if (held.length === names.length) for (const each of held) each.end("ok")
    })
    const port = await listen(server)
    const replies = await Promise.all(names.map((name) => send(port, `/${name}`)))
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200, 200])
    // the two that settle end (one failed, reported by name) while the others still run
    await until(() => runtime.stats().finished === 2)
    expect(runtime.stats()).toMatchObject({ finished: 2, failed: 1, interrupted: 0 })
    expect(runtime.snapshot().map((task) => task.name).sort()).toEqual(["polite", "stubborn"])
    await until(() => lines("rejected at once").length > 0)
    expect(lines("rejected at once")).toHaveLength(1)
    const result = await runtime.close()
    expect({ politeAborted, stubbornAborted }).toEqual({ politeAborted: true, stubbornAborted: true })
    expect(result.stillRunning).toEqual(["stubborn"])
    expect(result.exitCode).toBe(1)
    expect(runtime.stats()).toMatchObject({ finished: 2, failed: 1, interrupted: 1 })
    release.resolve()
    await until(() => runtime.stats().interrupted === 2)
  })

  it("a failure whose report cannot be written (its reason throws when read) stops no other task's report", async () => {
    const { server, runtime, reported } = await started()
    const names = ["unreadable", "plain", "later"] as const
    const held: Array<Http.ServerResponse> = []
    // a rejection reason that throws on every look at it, so logging it throws
    const unreadable = new Proxy({}, {
      get: () => {
        throw new Error("do not look")
      },
      getPrototypeOf: () => {
        throw new Error("do not look")
      },
      ownKeys: () => {
        throw new Error("do not look")
      }
    })
    server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      const name = request.url!.slice(1) as (typeof names)[number]
      runtime.after(response, () => {
        if (name === "unreadable") return Promise.reject(unreadable)
        if (name === "plain") return Promise.reject(new Error("plain failure"))
        return new Promise<void>((_resolve, reject) => setTimeout(() => reject(new Error("later failure")), 20))
      }, { name })
      held.push(response)
      if (held.length === names.length) for (const each of held) each.end("ok")
    })
    const port = await listen(server)
    await Promise.all(names.map((name) => send(port, `/${name}`)))
    await until(() => runtime.stats().failed === 3)
    await until(() => reported("later failure"))
    expect(reported("plain failure")).toBe(true)
  })

  it("past the grace: a callback that stops on its signal ends interrupted; one that ignores it is named still running", async () => {
    const { server, runtime } = await started({ grace: 0, interruptTimeout: "300 millis" })
    const bothStarted = { polite: deferred(), stubborn: deferred() }
    const release = deferred()
    let politeReason: unknown
    let stubbornAborted = false
    server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      if (request.url === "/polite") {
        runtime.after(response, (signal) =>
          new Promise<void>((_resolve, reject) => {
            bothStarted.polite.resolve()
            signal.addEventListener("abort", () => {
              politeReason = signal.reason
              reject(signal.reason)
            })
          }), { name: "polite" })
      } else {
        runtime.after(response, async (signal) => {
          bothStarted.stubborn.resolve()
          signal.addEventListener("abort", () => (stubbornAborted = true))
          await release.promise
        }, { name: "stubborn" })
      }
      response.end("ok")
    })
    const port = await listen(server)
    expect((await send(port, "/polite")).status).toBe(200)
    expect((await send(port, "/stubborn")).status).toBe(200)
    await Promise.all([bothStarted.polite.promise, bothStarted.stubborn.promise])
    const result = await runtime.close()
    expect(politeReason).toBeDefined()
    expect(stubbornAborted).toBe(true)
    expect(result.stillRunning).toEqual(["stubborn"])
    expect(result.report).toContain("interrupted: polite, stubborn")
    expect(result.exitCode).toBe(1)
    release.resolve()
    await until(() => runtime.stats().interrupted === 2)
  })

  it("a callback that declares no parameter is called with none, and one that declares it gets its own AbortSignal; both are waited for past the grace", async () => {
    const { server, runtime } = await started({ grace: 0, interruptTimeout: "5 seconds" })
    const release = deferred()
    const argumentCounts: Array<number> = []
    const signals: Array<AbortSignal> = []
    let count = 0
    server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      if (request.url === "/without") {
        // (a function expression: it declares no parameter, and can still count what it was given)
        runtime.after(response, function() {
          argumentCounts.push(arguments.length)
          return release.promise
        }, { name: "no-parameter" })
      } else {
        runtime.after(response, (signal) => {
          signals.push(signal)
          return new Promise<void>((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason)))
        }, { name: "with-signal" })
      }
      response.end("ok")
      count++
    })
    const port = await listen(server)
    for (const path of ["/without", "/with", "/without", "/with"]) {
      expect(await send(port, path)).toEqual({ status: 200, body: "ok" })
    }
    await until(() => argumentCounts.length === 2 && signals.length === 2)
    expect(argumentCounts).toEqual([0, 0])
    expect(signals.every((signal) => signal instanceof AbortSignal && !signal.aborted)).toBe(true)
    expect(signals[0]).not.toBe(signals[1])
    const closing = runtime.close()
    // the tasks given a signal are stopped through it; the others are waited for, and end when they settle
    await until(() => signals.every((signal) => signal.aborted))
    release.resolve()
    const result = await closing
    expect(count).toBe(4)
    expect(result.report).toContain("interrupted=4")
    expect(result.exitCode).toBe(0)
  })
})
