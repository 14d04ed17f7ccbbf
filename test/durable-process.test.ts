/**
 * Durable tasks as processes: examples/durable.ts run as real node processes on one store (a
 * SQLite file, or a PostgreSQL table), with real HTTP on 127.0.0.1 and real signals — `kill -9` at
 * a random moment under load, several processes sharing one queue, SIGTERM with tasks running and
 * queued, a store that cannot be reached. Judged from the outside: what the clients were answered,
 * the log file (one line per run of a task), the store's own counts, exit codes and report lines.
 * Waits are upper bounds for "eventually", never timing thresholds.
 *
 * Delivery is at least once: a task whose process died while it ran is run again by another once
 * its lease (LEASE_MS, 2 s here) expires, so a line may be written twice; one answered 2xx is never
 * written zero times. Each trial prints a `durable-result` line with what it measured.
 *
 * `npm test` runs one trial of each; `npm run soak` runs DURABLE_TRIALS (at least 20) and sums them up.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, ManagedRuntime } from "effect"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, type TestContext } from "vitest"
import { Durable } from "../src/index.js"
import { type Attempt, startLoad, until } from "./reliability/support/load.js"
import { describePostgres, postgresUrl, uniqueTable } from "./support/postgres.js"
import {
  type ExampleLauncher,
  exampleTest as test,
  expectCleanExit,
  freePort,
  patience,
  request,
  type RunningExample,
  sleep
} from "./support/process-example.js"

const trials = Number(process.env.DURABLE_TRIALS ?? 1)
/** How long a store may take to run its backlog after a crash (a lease, then the rest): an upper bound. */
const recovery = 150_000
const lease = "2000"

type Kind = "sqlite" | "postgres"
/** The test's `onTestFinished`: what cleans up its store. */
type Finished = TestContext["onTestFinished"]

/** One test's store, log file and view of the store's own counts. */
interface Bench {
  readonly kind: Kind
  /** What puts an example process on this store, writing to this log. */
  readonly env: Record<string, string>
  readonly logFile: string
  /** Tasks the store holds that are not done, by state (`{}` once every task is done). */
  readonly left: () => Promise<Record<string, number>>
  /** Drops the store's table while processes use it. */
  readonly dropTable: () => Promise<void>
}

/**
 * A store for one test — a SQLite file in a directory of its own, or a table of its own in
 * PostgreSQL — read by the test through its own client; removed when the test ends.
 */
const makeBench = async (kind: Kind, onTestFinished: Finished): Promise<Bench> => {
  const dir = await mkdtemp(join(tmpdir(), "effect-background-durable-"))
  const table = uniqueTable("durable")
  const filename = join(dir, "tasks.sqlite")
  const runtime = ManagedRuntime.make(
    kind === "sqlite" ? Durable.sqlite({ filename }) : Durable.postgres({ url: postgresUrl, table, maxConnections: 2 })
  )
  const sqlTable = kind === "sqlite" ? "effect_queue" : table
  const dropTable = () =>
    runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TABLE IF EXISTS ${sql(sqlTable)}`))
  onTestFinished(async () => {
    if (kind === "postgres") await dropTable().catch(() => undefined)
    await runtime.dispose()
    await rm(dir, { recursive: true, force: true })
  })
  return {
    kind,
    env: {
      ...(kind === "sqlite" ? { SQLITE_FILE: filename } : { DATABASE_URL: postgresUrl, DURABLE_TABLE: table }),
      LOG_FILE: join(dir, "log.txt")
    },
    logFile: join(dir, "log.txt"),
    left: async () => {
      const counts = await runtime.runPromise(Durable.counts)
      const byState: Record<string, number> = {}
      for (const { count, state } of counts) byState[state] = (byState[state] ?? 0) + count
      return byState
    },
    dropTable: async () => {
      await dropTable()
    }
  }
}

/** Polls `check` until it holds, for at most `timeout` ms (an upper bound, not a threshold). */
const eventually = async (check: () => Promise<boolean>, what: () => Promise<string>, timeout = patience): Promise<void> => {
  const deadline = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened within ${timeout}ms: ${await what()}`)
    await sleep(50)
  }
}

const startServer = (examples: ExampleLauncher, env: Record<string, string>) => examples.start("durable", env)

/** A `ROLE=worker` process, once it says its workers are started. */
const startWorker = async (examples: ExampleLauncher, env: Record<string, string>): Promise<RunningExample> => {
  const worker = await examples.spawn("durable", { ...env, ROLE: "worker" })
  await worker.waitForStart(/worker ready/)
  return worker
}

const email = (id: number) => `n${id}@example.com`
const written = /^notification for n(\d+)@example\.com$/

const logLines = async (logFile: string): Promise<ReadonlyArray<string>> => {
  try {
    return (await readFile(logFile, "utf8")).split("\n").filter((line) => line !== "")
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return []
    throw error
  }
}

/** What the clients were answered against what the log holds. */
interface Tally {
  /** Requests answered 202: their tasks are committed. */
  readonly accepted: number
  /** Lines in the log: runs of a task that got as far as writing. */
  readonly written: number
  /** Tasks written at least once. */
  readonly unique: number
  /** Lines beyond the first of their task. */
  readonly duplicates: number
  /** Accepted requests with no line. */
  readonly lost: ReadonlyArray<number>
  /** Tasks written whose request got no answer (the process died after committing it). */
  readonly unansweredWritten: number
  /** Lines that match no request, or a request answered other than 202. */
  readonly strange: ReadonlyArray<string>
}

const tally = (attempts: ReadonlyArray<Attempt>, lines: ReadonlyArray<string>): Tally => {
  const byId = new Map(attempts.map((attempt) => [attempt.id, attempt]))
  const counts = new Map<number, number>()
  const strange: Array<string> = []
  for (const line of lines) {
    const match = written.exec(line)
    const attempt = match === null ? undefined : byId.get(Number(match[1]))
    if (attempt === undefined || (attempt.outcome === "answered" && attempt.status !== 202)) {
      strange.push(line)
      continue
    }
    counts.set(attempt.id, (counts.get(attempt.id) ?? 0) + 1)
  }
  const accepted = attempts.filter((attempt) => attempt.outcome === "answered" && attempt.status === 202)
  return {
    accepted: accepted.length,
    written: lines.length,
    unique: counts.size,
    duplicates: [...counts.values()].reduce((sum, count) => sum + count - 1, 0),
    lost: accepted.filter((attempt) => !counts.has(attempt.id)).map((attempt) => attempt.id),
    unansweredWritten: [...counts.keys()].filter((id) => byId.get(id)?.outcome !== "answered").length,
    strange
  }
}

const describeTally = (t: Tally) =>
  `accepted=${t.accepted} written=${t.written} unique=${t.unique} duplicates=${t.duplicates} lost=${t.lost.length}` +
  ` unanswered-written=${t.unansweredWritten}`

/** Polls until every accepted task is written and the store has nothing left to do; returns the tally. */
const settle = async (bench: Bench, attempts: ReadonlyArray<Attempt>, context: () => string): Promise<Tally> => {
  const deadline = Date.now() + recovery
  for (;;) {
    const left = await bench.left()
    const now = tally(attempts, await logLines(bench.logFile))
    if (Object.keys(left).length === 0 && now.lost.length === 0) return now
    if (Date.now() > deadline) {
      throw new Error(`the store never settled: left ${JSON.stringify(left)}, ${describeTally(now)}\n${context()}`)
    }
    await sleep(100)
  }
}

/** Bounded load: a few keep-alive clients, each request enqueuing one task (`n<id>@example.com`). */
const load = (port: number, maxRequests: number) =>
  startLoad(port, {
    clients: 4,
    maxRequests,
    maxMillis: patience,
    requestTimeoutMillis: patience,
    path: (id) => `/send-notification/${email(id)}`
  })

const durableReport = /durable done=(\d+) retried=0 dead=0 released=(\d+)/

/** The `durable done=` count of a process that exited cleanly. */
const doneBy = async (proc: RunningExample): Promise<number> => {
  const exit = await proc.waitForExit()
  expect(exit.code, proc.output()).toBe(0)
  const report = proc.report() ?? ""
  expect(report, proc.output()).toMatch(durableReport)
  expect(report).toContain("failed=0")
  return Number(durableReport.exec(report)![1])
}

const result = (scenario: string, kind: Kind, trial: number, t: Tally, extra = "") =>
  console.log(`durable-result ${scenario} ${kind} trial ${trial}: ${describeTally(t)}${extra}`)

/**
 * Load on one server; `kill -9` after a random number of answers; a new process on the same store
 * (same SQLite file or table, same log) runs what was accepted.
 */
const killAndRestart = async (examples: ExampleLauncher, onTestFinished: Finished, kind: Kind, trial: number) => {
  const bench = await makeBench(kind, onTestFinished)
  const env = { ...bench.env, LEASE_MS: lease, WORKERS: "4", TASK_DELAY_MS: "20" }
  const first = await startServer(examples, env)
  const traffic = load(first.port, 400)
  const killAfter = 20 + Math.floor(Math.random() * 200)
  await until(() => traffic.answered() >= killAfter, patience, `${killAfter} answers`)
  first.kill()
  await first.exited
  await traffic.done
  // What the crash left: tasks pending, held for their response, running (leased to the dead process).
  const leftAtCrash = await bench.left()

  const second = await startServer(examples, env)
  const t = await settle(bench, traffic.attempts, () => examples.outputs())
  second.signal("SIGTERM")
  const rerun = await doneBy(second)

  expect(traffic.attempts.filter((attempt) => attempt.outcome === "answered" && attempt.status !== 202)).toEqual([])
  expect(t.lost, "accepted tasks never written").toEqual([])
  expect(t.strange, "lines of no accepted request").toEqual([])
  expect(t.accepted).toBeGreaterThanOrEqual(killAfter)
  result("kill-9", kind, trial, t, ` killed after ${killAfter} answers; left at the crash ${JSON.stringify(leftAtCrash)}; run by the next process ${rerun}`)
}

describe("kill -9 under load, then a restart on the same store: every task answered 202 is written at least once", () => {
  for (let trial = 1; trial <= trials; trial++) {
    test(`SQLite, trial ${trial}`, async ({ examples, onTestFinished }) => {
      await killAndRestart(examples, onTestFinished, "sqlite", trial)
    })
  }
  describePostgres("PostgreSQL", () => {
    for (let trial = 1; trial <= trials; trial++) {
      test(`PostgreSQL, trial ${trial}`, async ({ examples, onTestFinished }) => {
        await killAndRestart(examples, onTestFinished, "postgres", trial)
      })
    }
  })

  for (let trial = 1; trial <= trials; trial++) {
    test(`for comparison, examples/notify.ts (in memory) under the same kill -9: what it accepted and never wrote, trial ${trial}`, async ({ examples }) => {
      const app = await examples.start("notify", { TASK_DELAY_MS: "20" })
      const traffic = load(app.port, 400)
      const killAfter = 20 + Math.floor(Math.random() * 200)
      await until(() => traffic.answered() >= killAfter, patience, `${killAfter} answers`)
      app.kill()
      await app.exited
      await traffic.done
      const accepted = traffic.attempts.filter((attempt) => attempt.outcome === "answered" && attempt.status === 200)
      const lines = await app.logLines()
      const writtenIds = new Set(lines.map((line) => Number(/^notification for n(\d+)@/.exec(line)?.[1])))
      // Only what was accepted is written, once; the rest went down with the process.
      expect([...writtenIds].every((id) => accepted.some((attempt) => attempt.id === id))).toBe(true)
      expect(writtenIds.size).toBe(lines.length)
      const lost = accepted.filter((attempt) => !writtenIds.has(attempt.id)).length
      console.log(`durable-result kill-9 in-memory trial ${trial}: accepted=${accepted.length} written=${lines.length} duplicates=0 lost=${lost} (examples/notify.ts, killed after ${killAfter} answers)`)
    })
  }
})

describePostgres("three processes on one PostgreSQL table under load (a server and two ROLE=worker)", () => {
  const trial = async (examples: ExampleLauncher, onTestFinished: Finished, kill: boolean, index: number) => {
    const bench = await makeBench("postgres", onTestFinished)
    const env = { ...bench.env, LEASE_MS: lease, WORKERS: "2", TASK_DELAY_MS: "20" }
    const [server, ...workers] = await Promise.all([startServer(examples, env), startWorker(examples, env), startWorker(examples, env)])
    const processes = [server!, ...workers]
    const traffic = load(server!.port, 300)
    let victim: RunningExample | undefined
    if (kill) {
      // A random one of the three, after a random number of answers: a worker with tasks in hand,
      // or the server, with tasks held for responses it may not have written yet.
      const killAfter = 20 + Math.floor(Math.random() * 200)
      await until(() => traffic.answered() >= killAfter, patience, `${killAfter} answers`)
      victim = processes[Math.floor(Math.random() * processes.length)]!
      victim.kill()
    }
    await traffic.done
    const t = await settle(bench, traffic.attempts, () => examples.outputs())
    const survivors = processes.filter((proc) => proc !== victim)
    for (const proc of survivors) proc.signal("SIGTERM")
    const done = await Promise.all(survivors.map(doneBy))

    expect(traffic.attempts.filter((attempt) => attempt.outcome === "answered" && attempt.status !== 202)).toEqual([])
    expect(t.lost, "accepted tasks never written").toEqual([])
    expect(t.strange, "lines of no accepted request").toEqual([])
    if (!kill) {
      // Every request answered, every task run once, by one of the three.
      expect(traffic.attempts.every((attempt) => attempt.outcome === "answered")).toBe(true)
      expect(t.duplicates, "tasks run twice").toBe(0)
      expect(done.reduce((sum, count) => sum + count, 0)).toBe(t.accepted)
    }
    const who = victim === undefined ? "none" : victim === server ? "the server" : "a worker"
    result(kill ? "three-processes-kill" : "three-processes", "postgres", index, t, ` killed: ${who}; done per process ${done.join("+")}`)
  }

  for (let index = 1; index <= trials; index++) {
    test(`one of them killed mid-run, trial ${index}: every accepted task is written`, async ({ examples, onTestFinished }) => {
      await trial(examples, onTestFinished, true, index)
    })
    test(`none killed, trial ${index}: every task is written exactly once`, async ({ examples, onTestFinished }) => {
      await trial(examples, onTestFinished, false, index)
    })
  }
})

/**
 * SIGTERM to a server and a worker with tasks running (slots full, each task sleeping ten minutes)
 * and more queued: both exit 0 once the grace ends, reporting the running ones released (not
 * failed); the store then holds them all as pending (none left leased, and the lease is ten
 * minutes, so only a release frees them); a new worker on the same store runs them all.
 */
const sigtermTrial = async (examples: ExampleLauncher, onTestFinished: Finished, kind: Kind) => {
  const bench = await makeBench(kind, onTestFinished)
  const env = { ...bench.env, LEASE_MS: "600000", WORKERS: "2", TASK_DELAY_MS: "600000", GRACE_MS: "300" }
  const [server, worker] = await Promise.all([startServer(examples, env), startWorker(examples, env)])
  for (let i = 1; i <= 8; i++) {
    const response = await request(server!.port, "POST", `/send-notification/${email(i)}`)
    expect(response.status).toBe(202)
  }
  await eventually(
    async () => (await bench.left()).running === 4,
    async () => `4 running; the store holds ${JSON.stringify(await bench.left())}\n${examples.outputs()}`
  )
  server!.signal("SIGTERM")
  worker!.signal("SIGTERM")
  for (const proc of [server!, worker!]) {
    const exit = await proc.waitForExit()
    expect(exit.code, proc.output()).toBe(0)
    expect(proc.report(), proc.output()).toContain("durable done=0 retried=0 dead=0 released=2")
    expect(proc.report()).toContain("failed=0")
  }
  expect(await bench.left()).toEqual({ pending: 8 })
  expect(await logLines(bench.logFile)).toEqual([])

  const next = await startWorker(examples, { ...env, TASK_DELAY_MS: "0" })
  await eventually(
    async () => (await logLines(bench.logFile)).length >= 8 && Object.keys(await bench.left()).length === 0,
    async () => `the next worker runs all 8; the store holds ${JSON.stringify(await bench.left())}\n${examples.outputs()}`
  )
  expect([...await logLines(bench.logFile)].sort()).toEqual(
    Array.from({ length: 8 }, (_, i) => `notification for ${email(i + 1)}`).sort()
  )
  next.signal("SIGTERM")
  expect(await doneBy(next)).toBe(8)
}

describe("SIGTERM with durable tasks running and queued", () => {
  test("SQLite: exit 0, the running tasks released (not failed), and the next start runs them all", async ({ examples, onTestFinished }) => {
    await sigtermTrial(examples, onTestFinished, "sqlite")
  })
  describePostgres("PostgreSQL", () => {
    test("PostgreSQL: exit 0, the running tasks released (not failed), and the next start runs them all", async ({ examples, onTestFinished }) => {
      await sigtermTrial(examples, onTestFinished, "postgres")
    })
  })
})

describe("a store that fails", () => {
  test("unreachable at start: a server and a worker exit 1 with a DurableStoreError naming the store, password redacted, having started nothing", async ({ examples }) => {
    const port = await freePort()
    const password = "pa55-w0rd-never-printed"
    const env = { DATABASE_URL: `postgres://app:${password}@127.0.0.1:${port}/app` }
    const server = await examples.spawn("durable", env)
    const worker = await examples.spawn("durable", { ...env, ROLE: "worker" })
    for (const proc of [server, worker]) {
      const exit = await proc.waitForFailedStart()
      expect(exit.code, proc.output()).toBe(1)
      expect(exit.stderr).toContain(`DurableStoreError: Durable task store postgres://app:***@127.0.0.1:${port}/app: connect failed`)
      expect(exit.stderr).toContain("ECONNREFUSED")
      expect(exit.stderr, "no stack frames").not.toMatch(/^\s+at /m)
      expect(proc.output()).not.toContain(password)
      expect(exit.stdout).not.toContain("listening on")
      expect(exit.stdout).not.toContain("worker ready")
    }
  })

  test("failing while serving (its table dropped): enqueue answers 503 with Retry-After, status 503; SIGTERM still exits 0", async ({ examples, onTestFinished }) => {
    const bench = await makeBench("sqlite", onTestFinished)
    const app = await startServer(examples, bench.env)
    expect((await request(app.port, "POST", "/send-notification/before@example.com")).status).toBe(202)
    await bench.dropTable()

    const refused = await request(app.port, "POST", "/send-notification/after@example.com")
    expect(refused.status).toBe(503)
    expect(refused.headers["retry-after"]).toBe("1")
    expect((await request(app.port, "GET", "/tasks/00000000-0000-4000-8000-00000000dead")).status).toBe(503)
    expect(app.stdout).toMatch(/DurableStoreError|Durable task store sqlite:.*: enqueue failed/)

    app.signal("SIGTERM")
    await expectCleanExit(app)
  })
})
