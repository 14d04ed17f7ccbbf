/**
 * Durable tasks (`npm run bench:durable`), with their contenders side by side in one run:
 *
 * 1. Throughput: no-op tasks enqueued from ENQUEUERS loops and run by WORKERS workers, on
 *    effect-background's durable store (SQLite in a temporary file; PostgreSQL) against
 *    graphile-worker 0.17 (as it comes, and with its batching on) and pg-boss 10. Two ways, each in
 *    interleaved rounds, each contender in a process of its own (bench/fixtures/durable-throughput.ts):
 *    - together (the headline): JOBS tasks enqueued while the workers run, timed from the first
 *      enqueue until all have run: jobs/s, and each enqueue's latency;
 *    - drain: the same tasks enqueued with no worker running (enqueue alone), then the workers
 *      started and timed until all have run (the workers alone, on a backlog).
 *    Each process also reports its CPU time over the timed step, per job.
 * 2. The notify route (`POST /send-notification/:email`, a task appends a line to a file) under
 *    autocannon, with the task given to `BackgroundTasks.add` (in memory) or to `Durable.enqueue`
 *    on SQLite (held until the response is written, the default, with WORKERS tasks at once and with
 *    WIDE_WORKERS, enough to keep up with the route; with `afterResponse: false`; with an fsync per
 *    commit) and on PostgreSQL (bench/fixtures/notify-durable.ts). Every request
 *    carries a unique email. The servers run side by side; the one under load runs alone (the others
 *    are paused with SIGSTOP, so that their idle pollers do not share the cores), and its backlog
 *    is run before the next one's turn. At the end each server is stopped, and its lines are
 *    matched with the requests answered 2xx.
 *
 * PostgreSQL is TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test; its contenders
 * are skipped, saying so, when it does not answer. Every table and schema is named for this run
 * and dropped after it. All traffic is on 127.0.0.1; every loop is bounded in count and time.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  awaitExit,
  freePort,
  LOADER,
  machine,
  median,
  notifyRound,
  percentile,
  ratio,
  type RoundResult,
  type Running,
  shutdownReport,
  sleep,
  track,
  verdict,
  waitForPort
} from "./support.js"

const PG_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const JOBS = Number(process.env.BENCH_DURABLE_JOBS ?? 1500)
const WARMUP_JOBS = Number(process.env.BENCH_DURABLE_WARMUP_JOBS ?? 200)
const ROUNDS = Number(process.env.BENCH_DURABLE_ROUNDS ?? 3)
const DRAIN_ROUNDS = Number(process.env.BENCH_DURABLE_DRAIN_ROUNDS ?? 1)
/** Enqueuing loops, each awaiting its enqueue before the next. */
const ENQUEUERS = 8
/** Tasks running at once, for every contender. */
const WORKERS = 8
/** The notify route's durable workers in the contender where they keep up with the route. */
const WIDE_WORKERS = 32
/** Our stores' pollInterval (the default is 250 ms): how long an idle poller sleeps after an empty poll. */
const POLL_MS = Number(process.env.BENCH_DURABLE_POLL_MS ?? 10)
/** Connections: ours' one pool (enqueue and workers share it); graphile-worker's two pools of half each; pg-boss's one. */
const CONNECTIONS = 20
/** pg-boss's batchSize: its loop sleeps its polling interval (0.5 s at least) after every fetch. */
const PGBOSS_BATCH = 50
const STEP_TIMEOUT_MS = 60_000
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 4)
const HTTP_WARMUP_SECONDS = Number(process.env.BENCH_HTTP_WARMUP_SECONDS ?? 1)
const HTTP_ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3)
const HTTP_CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 10)

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const load = () => os.loadavg().map((value) => value.toFixed(2)).join(" ")
const fixed = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : "–")
const runId = `bench_durable_${process.pid}_${Date.now().toString(36)}`
let nameCount = 0
/** A table or schema name for this run alone (PostgreSQL folds it to lower case; it is lower case). */
const uniqueName = () => `${runId}_${nameCount++}`.toLowerCase()

/** Whether PostgreSQL answers on its port (a TCP connect, bounded by 2 s). */
const reachable = (url: string): Promise<boolean> =>
  new Promise((resolve) => {
    const parsed = new URL(url)
    const socket = net.connect({ host: parsed.hostname, port: Number(parsed.port || 5432) })
    socket.setTimeout(2_000)
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    socket.once("timeout", () => done(false))
  })

/** Runs statements on PostgreSQL, one connection, one after the other. */
const pgRun = (statements: ReadonlyArray<string>): Promise<ReadonlyArray<ReadonlyArray<Record<string, unknown>>>> =>
  Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const sql = yield* PgClient.make({ url: Redacted.make(PG_URL), maxConnections: 1 })
      const results: Array<ReadonlyArray<Record<string, unknown>>> = []
      for (const statement of statements) results.push(yield* sql.unsafe<Record<string, unknown>>(statement))
      return results
    })).pipe(Effect.provide(Reactivity.layer))
  )

/** Drops what a contender made: our table, or the schema of graphile-worker or pg-boss. */
const dropStatements = (contender: string, name: string): Array<string> =>
  contender === "durable-pg"
    ? [`DROP TABLE IF EXISTS "${name}"`]
    : contender === "durable-sqlite"
    ? []
    : [`DROP SCHEMA IF EXISTS "${name}" CASCADE`]

// ---------------------------------------------------------------------------------------------
// 1. Throughput

interface Timed {
  readonly enqueued: number
  readonly enqueueMillis: number
  readonly enqueueP50: number
  readonly enqueueP99: number
  readonly ran: number
  readonly repeats: number
  readonly millis: number
  readonly timedOut: boolean
  readonly cpuMillis: number
}

interface ThroughputResult {
  readonly contender: string
  readonly settings: string
  readonly timed: Timed
  readonly incomplete: number
}

const LABELS: Record<string, string> = {
  "durable-sqlite": "effect-background Durable, SQLite",
  "durable-pg": "effect-background Durable, PostgreSQL",
  "graphile-worker": "graphile-worker 0.17",
  "graphile-worker-batched": "graphile-worker 0.17, batching on",
  "pg-boss": "pg-boss 10"
}

/** One contender's run, in a child process, bounded in time; its table or schema dropped after. */
const runThroughput = async (contender: string, phase: "together" | "drain", dir: string): Promise<ThroughputResult> => {
  const name = uniqueName()
  const running = track(spawn(process.execPath, ["--import", LOADER, fixture("durable-throughput.ts")], {
    env: {
      ...process.env,
      PHASE: phase,
      CONTENDER: contender,
      JOBS: String(JOBS),
      WARMUP_JOBS: String(WARMUP_JOBS),
      ENQUEUERS: String(ENQUEUERS),
      WORKERS: String(WORKERS),
      PG_URL,
      NAME: name,
      SQLITE_FILE: join(dir, `${name}.sqlite`),
      POLL_MS: String(POLL_MS),
      POOL: String(contender.startsWith("graphile-worker") ? CONNECTIONS / 2 : CONNECTIONS),
      BATCH: String(PGBOSS_BATCH),
      TIMEOUT_MS: String(STEP_TIMEOUT_MS)
    },
    stdio: ["ignore", "pipe", "pipe"]
  }))
  try {
    const exit = await awaitExit(running, 3 * STEP_TIMEOUT_MS)
    const line = exit.stdout.split("\n").find((text) => text.startsWith("result "))
    if (exit.code !== 0 || line === undefined) {
      throw new Error(`${contender} (${phase}) exited with ${exit.code}:\n${exit.stdout}\n${exit.stderr}`)
    }
    return JSON.parse(line.slice("result ".length)) as ThroughputResult
  } finally {
    const drops = dropStatements(contender, name)
    if (drops.length > 0) await pgRun(drops)
    await rm(join(dir, `${name}.sqlite`), { force: true })
    await rm(join(dir, `${name}.sqlite-wal`), { force: true })
    await rm(join(dir, `${name}.sqlite-shm`), { force: true })
  }
}

const jobsPerSecond = (timed: Timed) => (timed.ran / timed.millis) * 1000

const throughput = async (contenders: ReadonlyArray<string>, dir: string) => {
  const together = new Map<string, Array<ThroughputResult>>(contenders.map((c) => [c, []]))
  const drain = new Map<string, Array<ThroughputResult>>(contenders.map((c) => [c, []]))
  for (let round = 0; round < Math.max(ROUNDS, DRAIN_ROUNDS); round++) {
    // Interleaved, each round starting with a different contender.
    for (let i = 0; i < contenders.length; i++) {
      const contender = contenders[(round + i) % contenders.length]!
      if (round < ROUNDS) together.get(contender)!.push(await runThroughput(contender, "together", dir))
      if (round < DRAIN_ROUNDS) drain.get(contender)!.push(await runThroughput(contender, "drain", dir))
    }
  }

  console.log(
    `\n## 1. Throughput: ${JOBS} no-op tasks, ${ENQUEUERS} enqueuing loops, ${WORKERS} tasks running at once ` +
      `(after ${WARMUP_JOBS} untimed); medians over ${ROUNDS} interleaved rounds (spread: min–max)\n`
  )
  console.log("### Together: enqueued while the workers run, from the first enqueue until all have run\n")
  console.log("| contender | jobs/s (min–max) | all enqueued after, ms | enqueue p50 ms | enqueue p99 ms | CPU ms per job (this process) | runs / repeats / left undone |")
  console.log("|---|---|---|---|---|---|---|")
  const summary = new Map<string, number>()
  for (const contender of contenders) {
    const results = together.get(contender)!
    const rates = results.map((r) => jobsPerSecond(r.timed))
    summary.set(contender, median(rates))
    const timedOut = results.some((r) => r.timed.timedOut)
    console.log(
      `| ${LABELS[contender]} | ${median(rates).toFixed(0)} (${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)})${timedOut ? " TIMED OUT" : ""} | ${
        median(results.map((r) => r.timed.enqueueMillis)).toFixed(0)
      } | ${fixed(median(results.map((r) => r.timed.enqueueP50)))} | ${fixed(median(results.map((r) => r.timed.enqueueP99)))} | ${
        fixed(median(results.map((r) => r.timed.cpuMillis / Math.max(1, r.timed.ran))), 3)
      } | ${results.reduce((sum, r) => sum + r.timed.ran, 0)} / ${results.reduce((sum, r) => sum + r.timed.repeats, 0)} / ${
        results.reduce((sum, r) => sum + r.incomplete, 0)
      } |`
    )
  }
  const drainRates = new Map<string, number>()
  if (DRAIN_ROUNDS > 0) {
    console.log(
      `\n### Drain: ${JOBS + WARMUP_JOBS} tasks enqueued with no worker running, then the workers started and timed until all have run (${DRAIN_ROUNDS} round${DRAIN_ROUNDS === 1 ? "" : "s"})\n`
    )
    console.log("| contender | workers alone, jobs/s | enqueue alone, enqueues/s | enqueue p50 ms | enqueue p99 ms | CPU ms per job while draining |")
    console.log("|---|---|---|---|---|---|")
    for (const contender of contenders) {
      const results = drain.get(contender)!
      const rate = median(results.map((r) => jobsPerSecond(r.timed)))
      drainRates.set(contender, rate)
      console.log(
        `| ${LABELS[contender]} | ${rate.toFixed(0)}${results.some((r) => r.timed.timedOut) ? " TIMED OUT" : ""} | ${
          median(results.map((r) => (r.timed.enqueued / r.timed.enqueueMillis) * 1000)).toFixed(0)
        } | ${fixed(median(results.map((r) => r.timed.enqueueP50)))} | ${fixed(median(results.map((r) => r.timed.enqueueP99)))} | ${
          fixed(median(results.map((r) => r.timed.cpuMillis / Math.max(1, r.timed.ran))), 3)
        } |`
      )
    }
  }
  console.log("\nsettings:")
  for (const contender of contenders) console.log(`- ${LABELS[contender]}: ${together.get(contender)![0]!.settings}`)

  const ours = summary.get("durable-pg")
  const graphile = summary.get("graphile-worker")
  if (ours !== undefined && graphile !== undefined) {
    console.log(
      `\nDurable on PostgreSQL vs graphile-worker, together: ${ratio(ours / graphile)} (${ours.toFixed(0)} vs ${graphile.toFixed(0)} jobs/s; goal ≥ 1.00×) ${
        verdict(ours >= graphile)
      }`
    )
    const batched = summary.get("graphile-worker-batched")
    if (batched !== undefined) console.log(`Durable on PostgreSQL vs graphile-worker with batching, together: ${ratio(ours / batched)}`)
    const oursDrain = drainRates.get("durable-pg")
    const graphileDrain = drainRates.get("graphile-worker")
    if (oursDrain !== undefined && graphileDrain !== undefined) {
      console.log(`Durable on PostgreSQL vs graphile-worker, workers alone (drain): ${ratio(oursDrain / graphileDrain)}`)
    }
    const pgBoss = summary.get("pg-boss")
    if (pgBoss !== undefined) console.log(`Durable on PostgreSQL vs pg-boss, together: ${ratio(ours / pgBoss)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// 2. The notify route

const MEMORY = "BackgroundTasks.add (in memory)"
const SQLITE = "Durable, SQLite, held until the response is written"
const SQLITE_WIDE = `Durable, SQLite, held, ${WIDE_WORKERS} at once`
const SQLITE_NO_HOLD = "Durable, SQLite, afterResponse: false"
const SQLITE_FULL = "Durable, SQLite, held, synchronous = FULL (fsync per commit)"
const POSTGRES = "Durable, PostgreSQL, held"

interface HttpContender {
  readonly name: string
  readonly mode: string
  /** Durable tasks run at once (WORKERS unless said). */
  readonly workers?: number
}

/** Waits until the server has no task left to run (bounded); the time it took, or undefined. */
const awaitBacklog = async (port: number, timeoutMillis: number): Promise<number | undefined> => {
  const start = performance.now()
  while (performance.now() - start < timeoutMillis) {
    const response = await fetch(`http://127.0.0.1:${port}/backlog`)
    const { backlog } = (await response.json()) as { readonly backlog: number }
    if (backlog === 0) return performance.now() - start
    await sleep(50)
  }
  return undefined
}

const readLines = async (logFile: string) => {
  let text = ""
  try {
    text = await readFile(logFile, "utf8")
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
  }
  const emails = new Set<string>()
  const lags: Array<number> = []
  let count = 0
  for (const line of text.split("\n")) {
    if (line === "") continue
    count++
    // notification for <email> <handled-at> <write-at>
    const [, , email = "", handledAt = "", writtenAt = ""] = line.split(" ")
    emails.add(email)
    if (!email.startsWith("rwarm")) lags.push(Number(writtenAt) - Number(handledAt))
  }
  return { count, emails, lags }
}

const notifyRoute = async (contenders: ReadonlyArray<HttpContender>, dir: string) => {
  const servers = new Map<string, { running: Running; port: number; logFile: string; table: string; answered: Set<string> }>()
  try {
    for (const contender of contenders) {
      const port = await freePort()
      const table = uniqueName()
      const logFile = join(dir, `${table}.log`)
      const running = track(spawn(process.execPath, ["--import", LOADER, fixture("notify-durable.ts")], {
        env: {
          ...process.env,
          PORT: String(port),
          LOG_FILE: logFile,
          MODE: contender.mode,
          SQLITE_FILE: join(dir, `${table}.sqlite`),
          PG_URL,
          TABLE: table,
          WORKERS: String(contender.workers ?? WORKERS),
          POLL_MS: String(POLL_MS),
          POOL: String(CONNECTIONS)
        },
        stdio: ["ignore", "pipe", "pipe"]
      }))
      servers.set(contender.name, { running, port, logFile, table, answered: new Set() })
      await Promise.race([
        waitForPort(port, 60_000),
        running.exited.then((exit) => {
          throw new Error(`${contender.name} exited with ${exit.code} before listening:\n${exit.stdout}\n${exit.stderr}`)
        })
      ])
    }
    // Only the server under load runs; the others wait, paused, with nothing left to run.
    const pause = (running: Running) => running.child.kill("SIGSTOP")
    const resume = (running: Running) => running.child.kill("SIGCONT")
    const backlogs = new Map<string, Array<number | undefined>>(contenders.map((c) => [c.name, []]))
    for (const contender of contenders) {
      const server = servers.get(contender.name)!
      await notifyRound(server.port, HTTP_CONNECTIONS, HTTP_WARMUP_SECONDS, "warm", server.answered)
      await awaitBacklog(server.port, 60_000)
      pause(server.running)
    }
    const rounds = new Map<string, Array<RoundResult>>(contenders.map((c) => [c.name, []]))
    for (let round = 0; round < HTTP_ROUNDS; round++) {
      for (let i = 0; i < contenders.length; i++) {
        const contender = contenders[(round + i) % contenders.length]!
        const server = servers.get(contender.name)!
        resume(server.running)
        rounds.get(contender.name)!.push(await notifyRound(server.port, HTTP_CONNECTIONS, HTTP_SECONDS, String(round), server.answered))
        // The next contender starts on a machine that is not still running this one's backlog.
        backlogs.get(contender.name)!.push(await awaitBacklog(server.port, 60_000))
        pause(server.running)
      }
    }
    for (const { running } of servers.values()) resume(running)
    // Every task run, then SIGTERM; the lines are counted once the server has exited.
    const ends = new Map<string, { backlogMillis: number | undefined; code: number | null; report: string | undefined; store: string | undefined }>()
    for (const contender of contenders) {
      const server = servers.get(contender.name)!
      const backlogMillis = await awaitBacklog(server.port, 60_000)
      server.running.child.kill("SIGTERM")
      const exit = await awaitExit(server.running, 90_000)
      ends.set(contender.name, {
        backlogMillis,
        code: exit.code,
        report: shutdownReport(exit.stdout),
        store: exit.stdout.split("\n").find((line) => line.startsWith("store: "))
      })
    }

    console.log(
      `\n## 2. The notify route (${HTTP_CONNECTIONS} connections, ${HTTP_SECONDS}s per contender per round, ${HTTP_ROUNDS} interleaved rounds ` +
        `after a ${HTTP_WARMUP_SECONDS}s warm-up each, each run's backlog run before the next; req/s and latencies are medians over the rounds)\n`
    )
    console.log("| server | req/s (min–max) | vs in memory | latency p50 ms | latency p99 ms | errors + non-2xx | task lag p50 ms | task lag p99 ms | answered 2xx | lines written | missing | extra | exit code |")
    console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    const rates = new Map<string, number>()
    for (const contender of contenders) {
      const results = rounds.get(contender.name)!
      rates.set(contender.name, median(results.map((r) => r.perSecond)))
    }
    const memory = rates.get(MEMORY)!
    const missingOf = new Map<string, number>()
    for (const contender of contenders) {
      const server = servers.get(contender.name)!
      const results = rounds.get(contender.name)!
      const lines = await readLines(server.logFile)
      let missing = 0
      for (const email of server.answered) if (!lines.emails.has(email)) missing++
      let extra = 0
      for (const email of lines.emails) if (!server.answered.has(email)) extra++
      extra += lines.count - lines.emails.size // repeats
      missingOf.set(contender.name, missing)
      const perSecond = rates.get(contender.name)!
      const all = results.map((r) => r.perSecond)
      console.log(
        `| ${contender.name} | ${perSecond.toFixed(0)} (${Math.min(...all).toFixed(0)}–${Math.max(...all).toFixed(0)}) | ${ratio(perSecond / memory)} | ${
          fixed(median(results.map((r) => r.p50)))
        } | ${fixed(median(results.map((r) => r.p99)))} | ${results.reduce((sum, r) => sum + r.failed, 0)} | ${fixed(percentile(lines.lags, 0.5))} | ${
          fixed(percentile(lines.lags, 0.99))
        } | ${server.answered.size} | ${lines.count} | ${missing} | ${extra} | ${ends.get(contender.name)!.code} |`
      )
    }
    console.log(
      "\nmissing: requests answered 2xx with no line once the server had run its backlog and exited; extra: lines for requests " +
        "whose answer the client did not see (cut off when a run's time was up), or written twice. Task lag: handler → the task's append."
    )
    const millis = (value: number | undefined) => (value === undefined ? "NOT within 60 s" : `${value.toFixed(0)} ms`)
    for (const contender of contenders) {
      const end = ends.get(contender.name)!
      console.log(
        `${contender.name}: backlog left when each run's time was up, run in ${backlogs.get(contender.name)!.map(millis).join(", ")}` +
          `${end.store === undefined ? "" : `; ${end.store}`}${end.report === undefined ? "" : `; ${end.report}`}`
      )
    }
    console.log(`settings: durable workers concurrency ${WORKERS} (unless the name says), pollInterval ${POLL_MS} ms; PostgreSQL maxConnections ${CONNECTIONS}`)
    const sqlite = rates.get(SQLITE)!
    console.log(
      `\nDurable on SQLite (held) vs in memory: ${ratio(sqlite / memory)} (${sqlite.toFixed(0)} vs ${memory.toFixed(0)} req/s; goal ≥ 0.50×) ${verdict(sqlite / memory >= 0.5)}`
    )
    // In memory every task runs at once; with 8 at once the durable workers fall behind a route at
    // full speed (the backlog above), so the goal is also judged where they keep up.
    const wide = rates.get(SQLITE_WIDE)
    if (wide !== undefined) {
      console.log(
        `Durable on SQLite (held, ${WIDE_WORKERS} at once) vs in memory: ${ratio(wide / memory)} (${wide.toFixed(0)} vs ${memory.toFixed(0)} req/s; goal ≥ 0.50×) ${
          verdict(wide / memory >= 0.5)
        }`
      )
    }
    const noHold = rates.get(SQLITE_NO_HOLD)
    if (noHold !== undefined) console.log(`Durable on SQLite, afterResponse: false vs held: ${ratio(noHold / sqlite)} (not held, each enqueue is a statement of its own, through PersistedQueue)`)
    const full = rates.get(SQLITE_FULL)
    if (full !== undefined) console.log(`Durable on SQLite, synchronous = FULL vs the store's NORMAL: ${ratio(full / sqlite)} (an fsync per commit)`)
    const postgres = rates.get(POSTGRES)
    if (postgres !== undefined) console.log(`Durable on PostgreSQL (held) vs in memory: ${ratio(postgres / memory)}`)
    const lost = [...missingOf.values()].reduce((sum, n) => sum + n, 0)
    console.log(`lines missing, all servers: ${lost} (goal 0) ${verdict(lost === 0)}`)
  } finally {
    for (const { running } of servers.values()) {
      if (running.child.exitCode === null && running.child.signalCode === null) {
        running.child.kill("SIGCONT")
        running.child.kill("SIGKILL")
      }
    }
    const tables = [...servers.entries()].filter(([name]) => name === POSTGRES).map(([, server]) => `DROP TABLE IF EXISTS "${server.table}"`)
    if (tables.length > 0) await pgRun(tables)
  }
}

const main = async () => {
  console.log(`# Durable tasks\n\n${machine()}`)
  const postgres = await reachable(PG_URL)
  const where = new URL(PG_URL).host
  if (postgres) {
    const [version, commit] = await pgRun(["SHOW server_version", "SHOW synchronous_commit"])
    console.log(
      `PostgreSQL ${String(version?.[0]?.server_version)} at ${where} (synchronous_commit ${String(commit?.[0]?.synchronous_commit)}), on this machine`
    )
  } else {
    console.log(`PostgreSQL not reachable at ${where}: its contenders are skipped (set TEST_DATABASE_URL)`)
  }
  const dir = await mkdtemp(join(os.tmpdir(), "bench-durable-"))
  try {
    console.log(`load average before: ${load()}`)
    await throughput(
      postgres ? ["durable-sqlite", "durable-pg", "graphile-worker", "graphile-worker-batched", "pg-boss"] : ["durable-sqlite"],
      dir
    )
    if (!postgres) console.log("graphile-worker and pg-boss: skipped (they need PostgreSQL)")
    console.log(`\nload average between the parts: ${load()}`)
    await notifyRoute(
      [
        { name: MEMORY, mode: "memory" },
        { name: SQLITE, mode: "sqlite" },
        { name: SQLITE_WIDE, mode: "sqlite", workers: WIDE_WORKERS },
        { name: SQLITE_NO_HOLD, mode: "sqlite-no-hold" },
        { name: SQLITE_FULL, mode: "sqlite-full" },
        ...(postgres ? [{ name: POSTGRES, mode: "postgres" }] : [])
      ],
      dir
    )
    console.log(`\nload average after: ${load()}`)
  } finally {
    if (postgres) {
      // Anything of this run's left behind by a contender that failed half-way.
      const [tables, schemas] = await pgRun([
        `SELECT tablename AS name FROM pg_tables WHERE tablename LIKE '${runId.toLowerCase()}%'`,
        `SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE '${runId.toLowerCase()}%'`
      ])
      const drops = [
        ...(tables ?? []).map((row) => `DROP TABLE IF EXISTS "${String(row.name)}"`),
        ...(schemas ?? []).map((row) => `DROP SCHEMA IF EXISTS "${String(row.name)}" CASCADE`)
      ]
      if (drops.length > 0) await pgRun(drops)
    }
    await rm(dir, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
