/**
 * The Promise-facing runtime (effect-background/Node) on a real node:http server (127.0.0.1,
 * ephemeral port) with real HTTP clients. Tasks are sequenced with promises the test resolves,
 * never with timing thresholds.
 */
import { Cause } from "effect"
import { afterEach, describe, expect, it, vi } from "vitest"
import { existsSync, mkdtempSync } from "node:fs"
import * as Http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { InvalidOptionError, ShuttingDownError } from "../src/Errors.js"
import * as Node from "../src/Node.js"
import { StartThenWait, Sum, ThreadId, WaitFor } from "./fixtures/tasks.js"
import { deferred, listen, send, streamed, until } from "./support/node-http.js"

const opened: Array<Node.BackgroundRuntime> = []
const make = async (options: Node.Options = {}): Promise<Node.BackgroundRuntime> => {
  const runtime = await Node.make({ printReport: false, ...options })
  opened.push(runtime)
  return runtime
}
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(opened.splice(0).map((runtime) => runtime.close()))
})

describe("Node.make", () => {
  it("refuses bad options at once with InvalidOptionError naming them", () => {
    expect(() => Node.make({ grace: "-1 seconds", drainTimeout: "soon" as never })).toThrow(InvalidOptionError)
    try {
      void Node.make({ grace: "-1 seconds", drainTimeout: "soon" as never })
    } catch (error) {
      expect((error as InvalidOptionError).issues.map((issue) => issue.option)).toEqual(["grace", "drainTimeout"])
    }
    expect(() => Node.make({ server: {} as Http.Server })).toThrow(/server/)
  })

  it("refuses a callback that is not a function, a bad name and a response already written", async () => {
    const runtime = await make()
    expect(() => runtime.fork("work" as never, "work")).toThrow(InvalidOptionError)
    expect(() => runtime.fork(async () => {}, " padded ")).toThrow(/name/)
    expect(() => runtime.every(async () => {}, { name: "tick" } as never)).toThrow(InvalidOptionError)
    expect(() => runtime.after({} as never, async () => {})).toThrow(/ServerResponse/)
    let late: unknown
    const server = Http.createServer((_request, response) => {
      response.on("finish", () => {
        try {
          runtime.after(response, async () => {})
        } catch (error) {
          late = error
        }
      })
      response.end("ok")
    })
    const port = await listen(server)
    await send(port, "/")
    await until(() => late !== undefined)
    expect(late).toBeInstanceOf(InvalidOptionError)
    server.close()
  })
})

describe("after", () => {
  it("runs a request's tasks in order after the response, a failing one reported and the next still run", async () => {
    const ran: Array<string> = []
    const errors = vi.spyOn(console, "error").mockImplementation(() => {})
    const logs = vi.spyOn(console, "log").mockImplementation(() => {})
    const server = Http.createServer()
    const runtime = await make({ server })
    server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      runtime.after(request, async () => {
        ran.push(`first finished=${response.writableFinished}`)
      }, { name: "first" })
      runtime.after(response, async () => {
        throw new Error("smtp down")
      }, { name: "second" })
      runtime.after(response, async () => {
        ran.push("third")
      }, { name: "third" })
      response.end("ok")
    })
    const port = await listen(server)
    expect(await send(port, "/notify")).toEqual({ status: 200, body: "ok" })
    await until(() => runtime.stats().finished === 3)
    expect(ran).toEqual(["first finished=true", "third"])
    expect(runtime.stats()).toMatchObject({ finished: 3, failed: 1, skipped: 0 })
    const reported = [...errors.mock.calls, ...logs.mock.calls].map((call) => call.map(String).join(" "))
      .filter((line) => line.includes("smtp down"))
    expect(reported).toHaveLength(1)
    expect(reported[0]).toContain("background after-response \\\"second\\\" failed")
  })

  it("finds the response of a request given alone, with the handler passed to createServer before make", async () => {
    const ran = deferred<unknown>()
    const server = Http.createServer((request, response) => {
      try {
        runtime.after(request, async () => ran.resolve(response.writableFinished), { name: "by-request" })
      } catch (error) {
        ran.resolve(error)
      }
      response.end("ok")
    })
    const runtime = await make({ server })
    const port = await listen(server)
    expect(await send(port, "/")).toEqual({ status: 200, body: "ok" })
    expect(await ran.promise).toBe(true)
  })

  it("never starts a task before the response's last byte", async () => {
    const server = Http.createServer()
    const runtime = await make({ server })
    const release = deferred()
    const firstChunk = deferred()
    let ran = false
    server.on("request", (_request: Http.IncomingMessage, response: Http.ServerResponse) => {
      runtime.after(response, async () => {
        ran = true
      }, { name: "after-stream" })
      response.write("partial ")
      void release.promise.then(() => response.end("done"))
    })
    const port = await listen(server)
    const reply = streamed(port, "/", firstChunk)
    await firstChunk.promise
    expect(runtime.snapshot().map((task) => [task.name, task.state])).toEqual([["after-stream", "waiting"]])
    expect(ran).toBe(false)
    release.resolve()
    expect(await reply).toBe("partial done")
    await until(() => ran)
    expect(runtime.stats()).toMatchObject({ finished: 1, skipped: 0 })
  })

  it("runs the tasks of a response whose client hangs up before it is written (a disconnect cancels nothing)", async () => {
    const server = Http.createServer()
    const runtime = await make({ server })
    const closed = deferred()
    let ran = false
    server.on("request", (_request: Http.IncomingMessage, response: Http.ServerResponse) => {
      runtime.after(response, async () => {
        ran = true
      }, { name: "cut-off" })
      response.once("close", () => closed.resolve())
      response.writeHead(200, { "content-length": "100" })
      response.write("only part")
    })
    const port = await listen(server)
    await new Promise<void>((resolve) => {
      const request = Http.request({ host: "127.0.0.1", port, path: "/", agent: false }, (response) => {
        response.once("data", () => {
          request.destroy()
          resolve()
        })
      })
      request.on("error", () => {})
      request.end()
    })
    await closed.promise
    await until(() => runtime.stats().finished === 1)
    expect(ran).toBe(true)
    expect(runtime.stats()).toMatchObject({ finished: 1, skipped: 0 })
  })

  it("skips, and counts, the tasks of a request answered with an error status", async () => {
    const server = Http.createServer()
    const runtime = await make({ server })
    let ran = false
    server.on("request", (_request: Http.IncomingMessage, response: Http.ServerResponse) => {
      runtime.after(response, async () => {
        ran = true
      }, { name: "on-error" })
      response.statusCode = 500
      response.end("failed")
    })
    const port = await listen(server)
    expect(await send(port, "/")).toEqual({ status: 500, body: "failed" })
    await until(() => runtime.stats().skipped === 1)
    expect(ran).toBe(false)
    expect(runtime.stats()).toMatchObject({ finished: 0, skipped: 1 })
  })
})

describe("close", () => {
  it("drains the server under load: every request answered 2xx has its task run", async () => {
    const server = Http.createServer()
    const runtime = await make({ server, drainTimeout: "10 seconds", grace: "10 seconds" })
    const lines: Array<string> = []
    const held = deferred()
    let arrived = 0
    server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      arrived++
      runtime.after(response, async () => {
        await new Promise((resolve) => setImmediate(resolve))
        lines.push(request.url ?? "")
      }, { name: "log" })
      // half of the requests are still being handled when close() begins
      if (arrived % 2 === 0) void held.promise.then(() => response.end("ok"))
      else response.end("ok")
    })
    const port = await listen(server)
    const total = 500
    const replies = Array.from({ length: total }, (_, index) => send(port, `/n/${index}`).catch(() => undefined))
    await until(() => arrived === total)
    const closing = runtime.close()
    expect(runtime.isReady()).toBe(false)
    held.resolve()
    const [result, answered] = await Promise.all([closing, Promise.all(replies)])
    const ok = answered.filter((reply) => reply?.status === 200)
    expect(ok).toHaveLength(total)
    expect(lines.sort()).toEqual(Array.from({ length: total }, (_, index) => `/n/${index}`).sort())
    // the held half were answered during the drain; the other half may have closed before it began
    const drained = Number(/requests drained=(\d+) interrupted=0/.exec(result.report)?.[1])
    expect(drained).toBeGreaterThanOrEqual(total / 2)
    expect(drained).toBeLessThanOrEqual(total)
    expect(result.report).toContain(`tasks finished=${total} failed=0 interrupted=0`)
    expect(result.exitCode).toBe(0)
    expect(() => runtime.fork(async () => {}, "late")).toThrow(ShuttingDownError)
  })

  it("aborts a task's signal past the grace and names it as interrupted", async () => {
    const runtime = await make({ grace: 0, interruptTimeout: "10 seconds" })
    const started = deferred()
    let reason: unknown
    const task = runtime.fork((signal) =>
      new Promise<void>((_resolve, reject) => {
        started.resolve()
        signal.addEventListener("abort", () => {
          reason = signal.reason
          reject(signal.reason)
        })
      }), "upload")
    await started.promise
    const result = await runtime.close()
    expect(reason).toBeDefined()
    expect(await task.done()).toBe("interrupted")
    expect(result.report).toContain("interrupted=1")
    expect(result.report).toContain("interrupted: upload")
    expect(result.exitCode).toBe(0)
  })

  it("names a callback that ignores its signal as still running, and exits 1", async () => {
    const runtime = await make({ grace: 0, interruptTimeout: 0 })
    const release = deferred()
    let aborted = false
    runtime.fork(async (signal) => {
      signal.addEventListener("abort", () => (aborted = true))
      await release.promise
    }, "stubborn")
    const waited = runtime.waitUntil(release.promise, { name: "held-promise" })
    const result = await runtime.close()
    expect(aborted).toBe(true)
    expect(result.stillRunning).toEqual(["stubborn", "held-promise"])
    expect(result.report).toContain("still running: stubborn, held-promise")
    expect(result.exitCode).toBe(1)
    release.resolve()
    expect(await waited.done()).toBe("interrupted")
  })

  it("runs schedules and daemons until close, and reports them stopped", async () => {
    const runtime = await make()
    let ticks = 0
    runtime.every(async () => {
      ticks++
    }, { name: "tick", spaced: "1 millis" })
    const daemonStarted = deferred()
    runtime.daemon((signal) =>
      new Promise<void>((resolve) => {
        daemonStarted.resolve()
        signal.addEventListener("abort", () => resolve())
      }), "consumer")
    await daemonStarted.promise
    await until(() => ticks >= 3)
    expect(runtime.snapshot().map((task) => task.name).sort()).toEqual(["consumer", "tick"])
    const result = await runtime.close()
    expect(result.report).toContain("jobs stopped=2")
    expect(() => runtime.cron(async () => {}, { name: "nightly", cron: "0 3 * * *", timeZone: "UTC" })).toThrow(ShuttingDownError)
  })
})

/** Resolves once `predicate` holds, checked every 10 ms (an upper bound of 30 s for "eventually", not a threshold). */
const eventually = async (predicate: () => boolean): Promise<void> => {
  for (let waited = 0; waited < 30_000 && !predicate(); waited += 10) await new Promise((resolve) => setTimeout(resolve, 10))
  expect(predicate()).toBe(true)
}

describe("offload", () => {
  const tasksModule = new URL("./fixtures/tasks.worker.ts", import.meta.url)
  const neverCreated = () => join(mkdtempSync(join(tmpdir(), "node-offload-")), "never")

  it("a task cancelled by its signal rejects with the signal's reason, its thread is replaced, and the pool answers the next task", async () => {
    const runtime = await make({ offload: { module: tasksModule, minThreads: 1, maxThreads: 1 } })
    const before = await runtime.offload(ThreadId, undefined)
    const controller = new AbortController()
    const started = neverCreated()
    const stuck = runtime.offload(StartThenWait, { started, release: neverCreated() }, { signal: controller.signal })
    // aborted once the task runs on the one thread: then only terminating it can free the pool
    await eventually(() => existsSync(started))
    const reason = new Error("the client went away")
    controller.abort(reason)
    await expect(stuck).rejects.toBe(reason)
    const after = await runtime.offload(ThreadId, undefined)
    expect(after).not.toBe(before)
    expect(await runtime.offload(Sum, 4)).toBe(6)
    // an already aborted signal: rejected at once with its reason (a DOMException AbortError by default)
    await expect(runtime.offload(Sum, 4, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" })
    const result = await runtime.close()
    expect(result.report).toContain("offload tasks")
  })

  it("a task past its timeout rejects with a TimeoutException naming it, and the pool answers the next task", async () => {
    const runtime = await make({ offload: { module: tasksModule, minThreads: 1, maxThreads: 1 } })
    const before = await runtime.offload(ThreadId, undefined)
    const timedOut = await runtime.offload(WaitFor, neverCreated(), { timeout: "50 millis" }).catch((error: unknown) => error)
    expect(timedOut).toBeInstanceOf(Cause.TimeoutException)
    expect(String((timedOut as Error).message)).toMatch(/offload "waitFor" timed out after 50ms: its worker thread was stopped/)
    expect(await runtime.offload(ThreadId, undefined)).not.toBe(before)
    // a timeout the task beats changes nothing
    expect(await runtime.offload(Sum, 4, { timeout: "1 minute" })).toBe(6)
  })

  it("refuses a bad signal or timeout, and offload without a pool, with InvalidOptionError", async () => {
    const runtime = await make({ offload: { module: tasksModule, minThreads: 1, maxThreads: 1 } })
    const refused = await runtime.offload(Sum, 4, { signal: "stop" as never, timeout: -1 }).catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(InvalidOptionError)
    expect((refused as InvalidOptionError).issues.map((issue) => issue.option)).toEqual(["signal", "timeout"])
    const plain = await make()
    await expect(plain.offload(Sum, 4)).rejects.toThrow(/offload/)
  })
})
