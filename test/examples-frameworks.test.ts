/**
 * Process tests for the framework examples (examples/express.ts, fastify.ts, hono.ts): each runs as a real node process
 * on a free port under tsx, gets real HTTP requests and a real SIGTERM, and is judged by its exit
 * code, its shutdown report and its log file — the same contract as the Effect examples.
 */
import { describe, expect } from "vitest"
import { exampleTest as test, expectCleanExit, request } from "./support/process-example.js"

const notification = (email: string) => `notification for ${email}: some notification`

describe.concurrent.each(["express", "fastify", "hono"])("examples/%s.ts", (example) => {
  test("answers at once, writes the notification after the response, offloads CPU work, and exits cleanly on SIGTERM", async ({ examples }) => {
    const app = await examples.start(example, { OFFLOAD_THREADS: "1" })

    expect((await request(app.port, "GET", "/health")).status).toBe(200)
    const response = await request(app.port, "POST", "/send-notification/ada@example.com")
    expect(response.status).toBe(200)
    expect(JSON.parse(response.body)).toEqual({ message: "Notification sent in the background" })
    expect(await app.waitForLog((lines) => lines.length > 0)).toEqual([notification("ada@example.com")])
    const cpu = await request(app.port, "GET", "/cpu?n=1000")
    expect(cpu.status).toBe(200)
    // a worker thread's id, not the main thread's 0
    expect((JSON.parse(cpu.body) as { thread: number }).thread).toBeGreaterThan(0)
    expect(app.stdout).toContain("daemon beat #1")

    app.signal("SIGTERM")
    const report = await expectCleanExit(app)
    expect(report).toContain("tasks finished=1 failed=0 interrupted=0 rejected=0 skipped=0")
    expect(report).toContain("jobs stopped=1 failures=0")
    expect(report).toContain("offload tasks interrupted=0")
    expect(app.stdout).toContain("daemon stopped")
  })

  test("a task still pending at SIGTERM finishes within the grace period before the process exits", async ({ examples }) => {
    const app = await examples.start(example, { TASK_DELAY_MS: "2000", GRACE_MS: "60000" })

    const response = await request(app.port, "POST", "/send-notification/grace@example.com")
    expect(response.status).toBe(200)
    // Precondition: the task is still sleeping when the signal goes out.
    expect(await app.logLines()).toEqual([])
    app.signal("SIGTERM")

    const report = await expectCleanExit(app)
    expect(await app.logLines()).toEqual([notification("grace@example.com")])
    expect(report).toContain("tasks finished=1 failed=0 interrupted=0")
  })

  test("a task still running when the grace period ends has its signal aborted, and is named as interrupted", async ({ examples }) => {
    const app = await examples.start(example, { TASK_DELAY_MS: "600000", GRACE_MS: "200" })

    const response = await request(app.port, "POST", "/send-notification/late@example.com")
    expect(response.status).toBe(200)
    app.signal("SIGTERM")

    const report = await expectCleanExit(app)
    expect(report).toContain("tasks finished=0 failed=0 interrupted=1")
    expect(report).toMatch(/; interrupted: notify l\*\*\*@example\.com$/)
    expect(app.output()).toContain("notification for l***@example.com was not sent: interrupted")
    expect(await app.logLines()).toEqual([])
  })
})
