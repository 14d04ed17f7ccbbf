/**
 * The fault matrix, on a real server process (test/fixtures/faults-server.ts): a task that fails,
 * one that dies with a defect, one whose finalizer fails, a daemon in a crash loop, a worker that
 * crashes, one that runs out of memory, and a task that stays uninterruptible past the grace. After
 * each fault the server still answers `/ping`; each is reported once; and shutdown either goes to
 * plan (exit 0, the report counts them) or, for the stuck task, ends at a bound naming it (exit 1).
 */
import { describe, expect } from "vitest"
import { expectCleanExit, request, type RunningExample as Server } from "../support/process-example.js"
import { fixtureTest as test } from "./support/fixture-process.js"
import { errorsOfTask, logEntries, parseReport } from "./support/report.js"

const ping = async (server: Server) => (await request(server.port, "GET", "/ping")).status

const json = async (server: Server, path: string) => {
  const response = await request(server.port, "GET", path)
  return { status: response.status, body: JSON.parse(response.body) as unknown }
}

const daemonFailures = (stdout: string): ReadonlyArray<number> =>
  logEntries(stdout).flatMap((entry) => {
    const match = /level=ERROR .*message="daemon \\"crash-loop\\" failed \(failure #(\d+)\)"/.exec(entry)
    return match === null ? [] : [Number(match[1])]
  })

const taskFaults = [
  { path: "/fault/fail", task: "failing-task", kind: "task", cause: "Error: task failed on purpose" },
  { path: "/fault/defect", task: "dying-task", kind: "after-response", cause: "task died on purpose" },
  { path: "/fault/finalizer", task: "broken-finalizer-task", kind: "task", cause: "finalizer failed on purpose" }
] as const

describe.concurrent("fault matrix", () => {
  test("the server keeps serving through a failing task, a defect, a failing finalizer, a crash-looping daemon, a worker crash and a worker out of memory; each is reported once and shutdown goes to plan", async ({ fixtures }) => {
    const server = await fixtures.start("faults-server", { GRACE_MS: "1000" })
    expect(await ping(server)).toBe(200)

    for (const fault of taskFaults) {
      expect((await request(server.port, "POST", fault.path)).status).toBe(202)
      await server.waitForLine(new RegExp(` task=${fault.task}$`))
      expect(await ping(server), `after ${fault.task}`).toBe(200)
    }

    // The daemon fails at once each time it starts; it is restarted, with a backoff, each time.
    await server.waitForLine(/daemon \\"crash-loop\\" failed \(failure #5\)/)
    expect(await ping(server)).toBe(200)

    expect(await json(server, "/offload/crash")).toEqual({
      status: 500,
      body: expect.objectContaining({ error: "WorkerCrashError", detail: expect.objectContaining({ exitCode: 7 }) })
    })
    expect(await ping(server)).toBe(200)
    expect(await json(server, "/offload/sum")).toEqual({ status: 200, body: { result: 499500 } })

    expect(await json(server, "/offload/oom")).toEqual({
      status: 500,
      body: expect.objectContaining({ error: "WorkerOutOfMemoryError", detail: expect.objectContaining({ maxHeapMb: 64 }) })
    })
    expect(await ping(server)).toBe(200)
    expect(await json(server, "/offload/sum")).toEqual({ status: 200, body: { result: 499500 } })

    // Still owned, never silently dead.
    const { body: snapshot } = await json(server, "/background")
    expect(snapshot).toEqual({ tasks: [expect.objectContaining({ name: "crash-loop", kind: "daemon" })] })

    server.signal("SIGTERM")
    const report = parseReport(await expectCleanExit(server))

    for (const fault of taskFaults) {
      const errors = errorsOfTask(server.stdout, fault.task)
      expect(errors, `${fault.task} reported once`).toHaveLength(1)
      expect(errors[0]).toContain(`message="background ${fault.kind} \\"${fault.task}\\" failed"`)
      expect(errors[0]).toContain(fault.cause)
    }
    const failures = daemonFailures(server.stdout)
    expect(failures.length).toBeGreaterThanOrEqual(5)
    expect(failures).toEqual(failures.map((_, index) => index + 1))
    expect(report).toMatchObject({
      tasksFinished: 3,
      tasksFailed: 3,
      tasksInterrupted: 0,
      jobsStopped: 1,
      jobFailures: failures.length,
      stillRunning: []
    })
  })

  test("a task that stays uninterruptible past the grace: the hard deadline exits 1 at once and names it", async ({ fixtures }) => {
    const server = await fixtures.start("faults-server", {
      GRACE_MS: "100",
      INTERRUPT_TIMEOUT_MS: "600000",
      HARD_DEADLINE_MS: "2000"
    })
    expect((await request(server.port, "POST", "/fault/stuck")).status).toBe(202)
    expect(await ping(server)).toBe(200)

    server.signal("SIGTERM")
    const exit = await server.waitForExit()
    expect(exit.code, server.output()).toBe(1)
    expect(exit.stderr).toMatch(/^shutdown aborted \(hard deadline of 2000ms passed\); still running: task stuck-task$/m)
    expect(server.report()).toBeUndefined()
  })

  test("a task that stays uninterruptible past the interrupt timeout: the report names it as still running and the exit code is 1", async ({ fixtures }) => {
    const server = await fixtures.start("faults-server", { GRACE_MS: "100", INTERRUPT_TIMEOUT_MS: "300" })
    expect((await request(server.port, "POST", "/fault/stuck")).status).toBe(202)
    expect(await ping(server)).toBe(200)

    server.signal("SIGTERM")
    const exit = await server.waitForExit()
    expect(exit.code, server.output()).toBe(1)
    const report = parseReport(server.report() ?? "")
    expect(report).toMatchObject({ interruptedNames: ["stuck-task"], stillRunning: ["stuck-task"] })
    // told once that the grace ended and it was interrupted, once that it is still running
    const lines = server.stdout.split("\n")
    expect(lines.filter((line) => /level=WARN .*grace period ended; interrupted stuck-task/.test(line))).toHaveLength(1)
    expect(lines.filter((line) => /level=ERROR .*still running after interruption timeout: stuck-task/.test(line))).toHaveLength(1)
  })
})
