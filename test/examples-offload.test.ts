/**
 * Process tests for the offload examples: real node processes, real worker threads, real HTTP and
 * real signals. Waits are upper bounds for "eventually", never timing thresholds.
 */
import { pbkdf2Sync } from "node:crypto"
import { describe, expect } from "vitest"
import { crunch } from "../examples/workers/crunch.js"
import { exampleTest, expectCleanExit, request } from "./support/process-example.js"

const test = exampleTest

describe.concurrent("examples/offload.ts", () => {
  test("serves CPU work from a worker thread and on the event loop with the same result", async ({ examples }) => {
    const app = await examples.start("offload", { OFFLOAD_THREADS: "1" })

    expect((await request(app.port, "GET", "/ping")).body).toBe("pong")
    const offloaded = await request(app.port, "GET", "/cpu?n=12345")
    expect(offloaded.status).toBe(200)
    const worker = JSON.parse(offloaded.body)
    expect(worker).toEqual({ n: 12345, result: crunch(12345), thread: expect.any(Number) })
    // threadId 0 is the main thread, where the event loop runs
    expect(worker.thread).toBeGreaterThan(0)
    const inline = await request(app.port, "GET", "/cpu-inline?n=12345")
    expect(JSON.parse(inline.body)).toEqual({ n: 12345, result: crunch(12345), thread: 0 })
    expect((await request(app.port, "GET", "/cpu?n=-5")).status).toBe(400)

    const io = await request(app.port, "GET", "/io")
    expect(io.status).toBe(200)
    const expected = pbkdf2Sync("correct horse battery staple", "salt", 100_000, 32, "sha256").toString("hex")
    expect(JSON.parse(io.body)).toEqual({ key: expected })

    app.signal("SIGTERM")
    await expectCleanExit(app)
  })

  test("a task cut off by its timeout answers 504 and frees its thread for the next task", async ({ examples }) => {
    const app = await examples.start("offload", { OFFLOAD_THREADS: "1" })
    const first = JSON.parse((await request(app.port, "GET", "/cpu?n=1")).body)

    // About forty seconds of work on the only thread, cancelled after 100 ms.
    const cancelled = await request(app.port, "GET", "/cpu?n=1000000000&timeoutMs=100")
    expect(cancelled.status).toBe(504)
    // Had the thread not been freed, this task would queue behind the cancelled one for far longer
    // than its own 20 s timeout and answer 504 too.
    const next = await request(app.port, "GET", "/cpu?n=1000&timeoutMs=20000")
    expect(next.status, next.body).toBe(200)
    const after = JSON.parse(next.body)
    expect(after).toEqual({ n: 1000, result: crunch(1000), thread: expect.any(Number) })
    // the cancelled task's thread was terminated; the next task ran on its replacement
    expect(after.thread).not.toBe(first.thread)
    expect(after.thread).toBeGreaterThan(0)

    app.signal("SIGTERM")
    await expectCleanExit(app)
  })

  test("SIGTERM while a worker is busy still drains and exits 0", async ({ examples }) => {
    const app = await examples.start("offload", { OFFLOAD_THREADS: "1", DRAIN_MS: "200" })

    const busy = request(app.port, "GET", "/cpu?n=1000000000")
    await app.waitForLine(/crunching n=1000000000 on a worker thread/)
    app.signal("SIGTERM")

    const report = await expectCleanExit(app)
    expect(report).toMatch(/requests drained=0 interrupted=1/)
    await expect(busy).rejects.toThrow()
  })
})

describe.concurrent("examples/isolated-loop.ts", () => {
  test("batches events on its own thread and flushes what it holds at SIGTERM before exiting 0", async ({ examples }) => {
    const app = await examples.start("isolated-loop", { BATCH_SIZE: "3", FLUSH_MS: "600000" })

    for (let i = 1; i <= 5; i++) {
      const response = await request(app.port, "POST", "/event")
      expect(response.status).toBe(202)
      expect(JSON.parse(response.body)).toEqual({ accepted: i })
    }
    expect(await app.waitForLog((lines) => lines.length >= 1)).toEqual(["batch of 3: 1,2,3"])
    app.signal("SIGTERM")

    await expectCleanExit(app)
    expect(await app.logLines()).toEqual(["batch of 3: 1,2,3", "batch of 2: 4,5"])
  })
})
