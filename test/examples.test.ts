/**
 * Process tests for the example contract: each example runs as a real node process on a free port,
 * gets real HTTP requests and real signals, and is judged by its exit code, its shutdown report and
 * its log file. Waits are upper bounds for "eventually", never timing thresholds.
 */
import * as Net from "node:net"
import { describe, expect } from "vitest"
import {
  exampleTest,
  expectCleanExit,
  heldRequest,
  request,
  sleep,
  waitUntilRefusing
} from "./support/process-example.js"

/** Each test owns its launcher; its children are killed by PID when the test ends, pass or fail. */
const test = exampleTest

/** How long after the first signal a repeat of it counts as the same signal (`Server.launch`). */
const duplicateSignalWindow = 1000

const notification = (email: string) => `notification for ${email}: some notification`

describe.concurrent("examples/notify.ts", () => {
  // That the task starts only once the response is written is pinned down in BackgroundTasks.test.ts.
  test("answers at once, writes the notification in the background, and reports it finished", async ({ examples }) => {
    const app = await examples.start("notify")

    const health = await request(app.port, "GET", "/health")
    expect(health.status).toBe(200)
    const response = await request(app.port, "POST", "/send-notification/ada@example.com")
    expect(response.status).toBe(200)
    expect(JSON.parse(response.body)).toEqual({ message: "Notification sent in the background" })
    expect(await app.waitForLog((lines) => lines.length > 0)).toEqual([notification("ada@example.com")])

    app.signal("SIGTERM")
    const report = await expectCleanExit(app)
    expect(report).toContain("tasks finished=1 failed=0 interrupted=0 rejected=0 skipped=0")
    expect(report).not.toContain("interrupted:")
  })

  test("a task still pending at SIGTERM finishes within the grace period before the process exits", async ({ examples }) => {
    const app = await examples.start("notify", { TASK_DELAY_MS: "2000", GRACE_MS: "60000" })

    const response = await request(app.port, "POST", "/send-notification/grace@example.com")
    expect(response.status).toBe(200)
    // Precondition: the task is still sleeping when the signal goes out.
    expect(await app.logLines()).toEqual([])
    app.signal("SIGTERM")

    const report = await expectCleanExit(app)
    expect(await app.logLines()).toEqual([notification("grace@example.com")])
    expect(report).toContain("tasks finished=1 failed=0 interrupted=0")
  })

  test("a task still running when the grace period ends is interrupted, named, and its finalizer runs", async ({ examples }) => {
    const app = await examples.start("notify", { TASK_DELAY_MS: "600000", GRACE_MS: "200" })

    const response = await request(app.port, "POST", "/send-notification/late@example.com")
    expect(response.status).toBe(200)
    app.signal("SIGTERM")

    const report = await expectCleanExit(app)
    expect(report).toContain("tasks finished=0 failed=0 interrupted=1")
    expect(report).toMatch(/; interrupted: notify l\*\*\*@example\.com$/)
    expect(app.stdout).toContain("notification for l***@example.com was not sent: interrupted")
    // the address itself is the task's input: it reaches the notification, not the logs
    expect(app.output()).not.toContain("late@example.com")
    expect(await app.logLines()).toEqual([])
  })

  test("the same signal delivered twice within a second (a process group, a relaying CLI) is one signal: the task still finishes and the exit is 0", async ({ examples }) => {
    const app = await examples.start("notify", { TASK_DELAY_MS: "2000", GRACE_MS: "60000" })

    const response = await request(app.port, "POST", "/send-notification/twice@example.com")
    expect(response.status).toBe(200)
    expect(await app.logLines()).toEqual([])
    // What Ctrl-C under `npm start` delivers: SIGINT from the terminal, and again from npm a moment
    // later — once the first has been taken in (the listener is closed), so the two are not merged
    // into one by the kernel.
    app.signal("SIGINT")
    await waitUntilRefusing(app.port)
    app.signal("SIGINT")

    const report = await expectCleanExit(app)
    expect(app.stderr).not.toContain("shutdown aborted")
    expect(await app.logLines()).toEqual([notification("twice@example.com")])
    expect(report).toContain("tasks finished=1 failed=0 interrupted=0")
  })

  test("a second signal during the grace period exits at once with code 1, naming the task still running", async ({ examples }) => {
    // Grace and delay far beyond the wait below: only the second signal can end this process.
    const app = await examples.start("notify", { TASK_DELAY_MS: "600000", GRACE_MS: "600000" })

    const response = await request(app.port, "POST", "/send-notification/stuck@example.com")
    expect(response.status).toBe(200)
    app.signal("SIGTERM")
    await waitUntilRefusing(app.port)
    app.signal("SIGINT")

    const exit = await app.waitForExit()
    expect(exit.code, app.output()).toBe(1)
    expect(exit.stderr).toMatch(/shutdown aborted \(second signal SIGINT\); still running: .*task notify s\*\*\*@example\.com/)
    expect(app.report()).toBeUndefined()
    expect(await app.logLines()).toEqual([])
  })
})

describe.concurrent("Server.launch limits", () => {
  test("past the hard deadline the process exits 1 at once, naming the task still running", async ({ examples }) => {
    const app = await examples.start("notify", { TASK_DELAY_MS: "600000", GRACE_MS: "600000", HARD_DEADLINE_MS: "500" })

    const response = await request(app.port, "POST", "/send-notification/stuck@example.com")
    expect(response.status).toBe(200)
    app.signal("SIGTERM")

    const exit = await app.waitForExit()
    expect(exit.code, app.output()).toBe(1)
    expect(exit.stderr).toMatch(/shutdown aborted \(hard deadline of 500ms passed\); still running: .*task notify s\*\*\*@example\.com/)
    expect(app.report()).toBeUndefined()
  })

  test("a port already in use fails startup with the reason, exit 1, and no job ever runs", async ({ examples }) => {
    const blocker = Net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const { port } = blocker.address() as Net.AddressInfo
    try {
      const app = await examples.spawn("daemon", { PORT: String(port), INTERVAL_MS: "10" })
      const exit = await app.waitForFailedStart()
      expect(exit.code, app.output()).toBe(1)
      expect(exit.stderr).toContain("EADDRINUSE")
      // jobs are held until the whole app is up; this one never started
      expect(exit.stdout).not.toContain("Hello")
      expect(exit.stdout).not.toContain("daemon stopped")
    } finally {
      blocker.close()
    }
  })

  test("a bad option fails startup with a typed error naming it, before any job runs", async ({ examples }) => {
    const app = await examples.spawn("server", { CRON_TZ: "Mars/Base", INTERVAL_MS: "10", REFRESH_MS: "10" })
    const exit = await app.waitForFailedStart()
    expect(exit.code, app.output()).toBe(1)
    expect(exit.stderr).toContain('InvalidOptionError: Invalid option "timeZone"')
    expect(exit.stderr).toContain('"Mars/Base"')
    expect(exit.stderr, "no stack frames").not.toMatch(/^\s+at /m)
    expect(exit.stdout).not.toContain("Hello")
    expect(exit.stdout).not.toContain("cache refreshed")
  })

  test("several bad options (the server's and the supervisor's) fail startup with one error listing each, without stack frames", async ({ examples }) => {
    const app = await examples.spawn("notify", { PORT: "-1", DRAIN_MS: "-7", GRACE_MS: "-5" })
    const exit = await app.waitForExit()
    expect(exit.code, app.output()).toBe(1)
    expect(exit.stderr).toBe(
      "InvalidOptionError: 3 invalid options:\n" +
        "  - port: expected a whole number from 0 to 65535 (e.g. 3000, or 0 for any free port), got -1\n" +
        "  - drainTimeout: expected a finite duration of zero or more (e.g. 0, 500, \"2 seconds\"), got -7\n" +
        "  - grace: expected a finite duration of zero or more (e.g. 0, 500, \"2 seconds\"), got -5\n"
    )
    expect(exit.stdout).not.toContain("listening on")
  })
})

describe.concurrent("examples/durable.ts", () => {
  test("answers 202 with the task's id once it is committed, runs it, and answers its state; an unknown id is 404", async ({ examples }) => {
    const app = await examples.start("durable")

    const response = await request(app.port, "POST", "/send-notification/ada@example.com")
    expect(response.status).toBe(202)
    const { id, status } = JSON.parse(response.body) as { id: string; status: string }
    expect(status).toBe(`/tasks/${id}`)
    expect(await app.waitForLog((lines) => lines.length > 0)).toEqual(["notification for ada@example.com"])
    // the task writes its line before its end is committed: read its state until it is no longer
    // running (bounded; a task stuck running fails below)
    let task = await request(app.port, "GET", status)
    for (let tries = 0; tries < 100 && task.status === 200 && JSON.parse(task.body).state === "running"; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      task = await request(app.port, "GET", status)
    }
    expect(task.status).toBe(200)
    // the state, never the payload (an address)
    expect(JSON.parse(task.body)).toEqual({ id, name: "send-notification", state: "done", attempts: 1 })
    expect((await request(app.port, "GET", "/tasks/00000000-0000-4000-8000-00000000dead")).status).toBe(404)

    app.signal("SIGTERM")
    const report = await expectCleanExit(app)
    expect(report).toContain("durable done=1 retried=0 dead=0 released=0")
  })
})

describe.concurrent("examples/daemon.ts", () => {
  test("the daemon says Hello every interval and its finalizer prints `daemon stopped` at shutdown", async ({ examples }) => {
    const app = await examples.start("daemon", { INTERVAL_MS: "100" })

    await app.waitForLine(/Hello.*#2\b/)
    expect(app.stdout).not.toContain("daemon stopped")
    app.signal("SIGTERM")

    await expectCleanExit(app)
    const lines = app.stdout.split("\n")
    const stopped = lines.findIndex((line) => line.includes("daemon stopped"))
    const lastHello = lines.map((line) => line.includes("Hello")).lastIndexOf(true)
    const report = lines.findIndex((line) => line.startsWith("shutdown report:"))
    expect(stopped, app.output()).toBeGreaterThan(lastHello)
    expect(report).toBeGreaterThan(stopped)
  })
})

describe.concurrent("examples/fire-and-forget.ts", () => {
  test("answers 202 at once and records every event in the background", async ({ examples }) => {
    const app = await examples.start("fire-and-forget")

    const responses = await Promise.all([1, 2, 3].map(() => request(app.port, "POST", "/track")))
    expect(responses.map((response) => response.status)).toEqual([202, 202, 202])
    const lines = await app.waitForLog((lines) => lines.length >= 3)
    expect([...lines].sort()).toEqual(["tracked 1", "tracked 2", "tracked 3"])

    app.signal("SIGINT")
    const report = await expectCleanExit(app)
    expect(report).toContain("tasks finished=3 failed=0 interrupted=0 rejected=0")
  })

  test("when every slot and the queue are taken, a fork is refused with 503 and Retry-After", async ({ examples }) => {
    const app = await examples.start("fire-and-forget", {
      CONCURRENCY: "1",
      MAX_QUEUED: "0",
      TASK_DELAY_MS: "600000",
      GRACE_MS: "200"
    })

    expect((await request(app.port, "POST", "/track")).status).toBe(202)
    const refused = await request(app.port, "POST", "/track")
    expect(refused.status).toBe(503)
    expect(refused.headers["retry-after"]).toBe("1")

    app.signal("SIGTERM")
    const report = await expectCleanExit(app)
    expect(report).toContain("tasks finished=0 failed=0 interrupted=1 rejected=1")
    expect(report).toMatch(/; interrupted: analytics #1$/)
    expect(await app.logLines()).toEqual([])
  })
})

describe.concurrent("examples/server.ts", () => {
  test("prints its banner and serves every kind of work together", async ({ examples }) => {
    const app = await examples.start("server", { INTERVAL_MS: "100", REFRESH_MS: "100" })

    for (const route of [
      "POST /send-notification/:email",
      "POST /track",
      "GET  /slow?ms=N",
      "GET  /background",
      "GET  /health",
      "POST /durable/send-notification/:email",
      "GET  /durable/tasks/:id"
    ]) {
      expect(app.stdout).toContain(route)
    }
    expect((await request(app.port, "GET", "/health")).status).toBe(200)
    expect((await request(app.port, "POST", "/send-notification/demo@example.com")).status).toBe(200)
    expect((await request(app.port, "POST", "/track")).status).toBe(202)
    const durable = await request(app.port, "POST", "/durable/send-notification/durable@example.com")
    expect(durable.status).toBe(202)
    const { id, status } = JSON.parse(durable.body) as { id: string; status: string }
    expect(status).toBe(`/durable/tasks/${id}`)
    const slow = await request(app.port, "GET", "/slow?ms=10")
    expect(slow.status).toBe(200)
    expect(JSON.parse(slow.body)).toEqual({ sleptMillis: 10 })
    expect((await request(app.port, "GET", "/slow?ms=soon")).status).toBe(400)

    const snapshot = await request(app.port, "GET", "/background")
    expect(snapshot.status).toBe(200)
    const { tasks } = JSON.parse(snapshot.body) as { tasks: Array<{ name: string; kind: string }> }
    expect(tasks).toEqual(expect.arrayContaining([
      expect.objectContaining({ name: "hello", kind: "daemon" }),
      expect.objectContaining({ name: "refresh-cache", kind: "schedule" }),
      expect.objectContaining({ name: "minute-report", kind: "schedule" })
    ]))
    const lines = await app.waitForLog((lines) => lines.length >= 3)
    expect([...lines].sort()).toEqual([notification("demo@example.com"), "notification for durable@example.com", "tracked 1"])
    const task = JSON.parse((await request(app.port, "GET", status)).body) as { state: string }
    expect(task.state).toBe("done")
    await app.waitForLine(/cache refreshed/)
    await app.waitForLine(/Hello/)

    app.signal("SIGTERM")
    await expectCleanExit(app)
    expect(app.stdout).toContain("daemon stopped")
  })

  test("a slow request in flight at SIGTERM completes with 200 and Connection: close", async ({ examples }) => {
    const app = await examples.start("server")

    const slow = request(app.port, "GET", "/slow?ms=1500")
    await app.waitForLine(/slow request: answering in 1500ms/)
    app.signal("SIGTERM")

    const response = await slow
    expect(response.status).toBe(200)
    expect(JSON.parse(response.body)).toEqual({ sleptMillis: 1500 })
    expect(response.headers.connection).toBe("close")
    const report = await expectCleanExit(app)
    expect(report).toContain("requests drained=1 interrupted=0")
  })

  test("a request still running when the drain timeout ends is cut off and counted as interrupted", async ({ examples }) => {
    const app = await examples.start("server", { DRAIN_MS: "300" })

    const slow = request(app.port, "GET", "/slow?ms=600000").catch((error: unknown) => error)
    await app.waitForLine(/slow request: answering in 600000ms/)
    app.signal("SIGTERM")

    const report = await expectCleanExit(app)
    expect(report).toContain("requests drained=0 interrupted=1")
    expect(await slow).toBeInstanceOf(Error)
  })

  test("while a slow request holds the drain, health answers 503; a second signal exits at once with code 1, naming the request", async ({ examples }) => {
    const app = await examples.start("server", { DRAIN_MS: "600000" })

    // Sent in part now, handled only when finished — after shutdown has begun.
    const health = await heldRequest(app.port, "/health")
    const slow = request(app.port, "GET", "/slow?ms=600000").catch((error: unknown) => error)
    await app.waitForLine(/slow request: answering in 600000ms/)
    app.signal("SIGTERM")
    await waitUntilRefusing(app.port)

    const draining = await health.finish()
    expect(draining.status).toBe(503)
    expect(JSON.parse(draining.body)).toEqual({ status: "draining" })

    // The same signal again within a second is the first one delivered twice; this one comes later.
    await sleep(duplicateSignalWindow + 500)
    app.signal("SIGTERM")
    const exit = await app.waitForExit()
    expect(exit.code, app.output()).toBe(1)
    expect(exit.stderr).toMatch(/shutdown aborted \(second signal SIGTERM\); still running: .*request GET \/slow\?ms=600000/)
    expect(app.report()).toBeUndefined()
    // The client's connection was cut by the exit, not answered.
    expect(await slow).toBeInstanceOf(Error)
  })
})
