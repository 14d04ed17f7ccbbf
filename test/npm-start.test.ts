/**
 * Signals through `npm start`, as a user sends them: Ctrl-C in the terminal (SIGINT to the whole
 * foreground process group: npm and the server), SIGTERM to the npm process (a process manager
 * that started `npm start`), and SIGTERM to the server itself. Each trial has a request in flight
 * and an after-response task pending when the signal comes; in every one the request is answered,
 * the task runs, the server exits 0 with its report, npm passes that 0 on, and no process is left.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { cpus } from "node:os"
import { afterAll, beforeAll, describe, expect } from "vitest"
import { childrenOf, type ForegroundJob, isAlive, type JobLauncher, jobTest } from "./support/process-group.js"
import { reportShape, request } from "./support/process-example.js"

/** Trials per way of stopping; `SIGNAL_TRIALS` raises or lowers it. */
const trials = Number(process.env.SIGNAL_TRIALS ?? 20)

const test = jobTest

type Stop = (job: ForegroundJob, server: number) => void

const ways: ReadonlyArray<readonly [string, Stop]> = [
  ["Ctrl-C (SIGINT to the process group)", (job) => job.signalGroup("SIGINT")],
  ["SIGTERM to the npm process", (job) => job.signal("SIGTERM")],
  ["SIGTERM to the server process", (_, server) => process.kill(server, "SIGTERM")]
]

/** One `npm start`, stopped by `stop` while a slow request and an after-response task are pending. */
const trial = async (jobs: JobLauncher, stop: Stop, index: number): Promise<void> => {
  const job = await jobs.spawn(`npm-start-${index}`, "npm", ["start"], {
    env: { DRAIN_MS: "30000", GRACE_MS: "30000", TASK_DELAY_MS: "300", REFRESH_MS: "600000", INTERVAL_MS: "600000" }
  })
  await job.waitForLine(new RegExp(`listening on http://127\\.0\\.0\\.1:${job.port}\\b`))
  const server = await job.serverPid("examples/server.ts")
  // `exec` in the start script: the server is npm's own child, with no shell in between to drop a signal.
  expect(await childrenOf(job.group)).toEqual([server])

  const notified = await request(job.port, "POST", "/send-notification/ada@example.com")
  expect(notified.status).toBe(200)
  const slow = request(job.port, "GET", "/slow?ms=1500")
  await job.waitForLine(/slow request: answering in 1500ms/)
  stop(job, server)

  const answer = await slow
  expect(answer.status, job.output()).toBe(200)
  expect(answer.headers.connection).toBe("close")
  const exit = await job.exited
  expect(exit.code, job.output()).toBe(0)
  expect(job.stderr).not.toContain("shutdown aborted")
  expect(job.report(), job.output()).toMatch(reportShape)
  expect(job.report()).toMatch(/requests drained=1 interrupted=0; tasks finished=1 failed=0 interrupted=0/)
  expect(await job.logLines()).toEqual(["notification for ada@example.com: some notification"])
  expect(isAlive(server), `server ${server} outlived npm`).toBe(false)
}

describe.concurrent(`npm start, ${trials} trials each`, () => {
  for (const [way, stop] of ways) {
    test(`${way}: drains, runs the pending task and exits 0`, async ({ jobs }) => {
      for (let index = 0; index < trials; index++) await trial(jobs, stop, index)
    }, 600_000)
  }
})

/** Busy loops on every core, each bounded in time, for the tests below. */
const burners: Array<ChildProcess> = []
describe("npm start with the machine under load", () => {
  beforeAll(() => {
    for (let i = 0; i < cpus().length; i++) {
      burners.push(spawn(process.execPath, ["-e", "const end = Date.now() + 300_000; while (Date.now() < end);"], { stdio: "ignore" }))
    }
  })
  afterAll(() => {
    for (const burner of burners) burner.kill("SIGKILL")
  })

  for (const [way, stop] of ways) {
    test(`${way}: drains, runs the pending task and exits 0`, async ({ jobs }) => {
      for (let index = 0; index < Math.max(1, Math.ceil(trials / 4)); index++) await trial(jobs, stop, index)
    }, 600_000)
  }
})
