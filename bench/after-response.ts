/**
 * After-response tasks over HTTP (`npm run bench:after-response`): the notify scenario
 * (`POST /send-notification/:email`, a task appends a line to a file after the response) under
 * autocannon, with its contenders side by side in one run, interleaved round after round:
 *
 * - effect-background with the task (`Server.app` + `BackgroundTasks.add`, `fs.appendFile`);
 * - the same with `fs/promises` `appendFile`, as examples/notify.ts writes it;
 * - the same with the library's metrics off (`EFFECT_BACKGROUND_METRICS=off`; every other
 *   contender records them): what recording them costs;
 * - the same server with a task that does nothing (the task machinery's share), and without a task;
 * - the same server doing the append with no task machinery at all (a raw `setImmediate` +
 *   `fs.appendFile` from the handler, untracked): what the append alone costs that server, the
 *   ceiling for any way of running it after the response;
 * - the same server forking the append effect into a fiber of its own (`Effect.forkDaemon`,
 *   untracked): what a fiber per append costs in Effect, before anything of the library's;
 * - a bare `node:http` server that answers, then `setImmediate` + `fs.appendFile`, and the same
 *   server without the append;
 * - FastAPI `BackgroundTasks` on uvicorn, when a python3 can import both (skipped otherwise).
 *
 * Every request carries a unique email, so the lines written are matched one by one against the
 * requests the client saw answered 2xx. Each line holds the time the handler ran and the time the
 * task issued its append (one clock, in the server), which gives the task lag. Servers are child
 * processes on free ports; at the end each gets SIGTERM and drains, and the lines are counted after
 * it has exited. All traffic is on 127.0.0.1; every load run is bounded in time.
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
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
  track,
  verdict,
  waitForPort
} from "./support.js"

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5)
const WARMUP_SECONDS = Number(process.env.BENCH_HTTP_WARMUP_SECONDS ?? 2)
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 10)

const WITH_TASK = "effect-background, with task"
const WITH_TASK_PROMISES = "effect-background, with task (fs/promises)"
const METRICS_OFF = "effect-background, with task, metrics off (EFFECT_BACKGROUND_METRICS=off)"
const WITHOUT_TASK = "effect-background, no task"
const NOOP_TASK = "effect-background, no-op task"
const RAW_APPEND = "effect-background, raw append (no task machinery)"
const FIBER_APPEND = "effect-background, append in a bare fiber (Effect.forkDaemon)"
const BARE = "node:http + setImmediate"
const BARE_NO_TASK = "node:http, no append"
const FASTAPI = "FastAPI + uvicorn"

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

interface Contender {
  readonly name: string
  /** Whether the server writes a line per request. */
  readonly writes: boolean
  readonly start: (port: number, logFile: string) => Running
}

const nodeServer = (script: string, extraEnv: Record<string, string>) => (port: number, logFile: string) =>
  track(spawn(process.execPath, ["--import", LOADER, fixture(script)], {
    // (metrics on unless the contender turns them off, whatever the shell says)
    env: { ...process.env, PORT: String(port), LOG_FILE: logFile, EFFECT_BACKGROUND_METRICS: "on", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"]
  }))

/** A python3 that imports FastAPI and uvicorn (BENCH_PYTHON, `python3`, then Debian's), with their versions. */
const findFastApi = (): { readonly python: string; readonly versions: string } | undefined => {
  const candidates = [process.env.BENCH_PYTHON, "python3", "/usr/bin/python3"].filter(
    (candidate): candidate is string => candidate !== undefined && candidate !== ""
  )
  for (const python of new Set(candidates)) {
    const probe = spawnSync(python, ["-c", "import fastapi, uvicorn; print(fastapi.__version__, uvicorn.__version__)"], {
      encoding: "utf8",
      timeout: 20_000
    })
    if (probe.status === 0) {
      const [fastapi, uvicorn] = probe.stdout.trim().split(" ")
      return { python, versions: `FastAPI ${fastapi}, uvicorn ${uvicorn}` }
    }
  }
  return undefined
}

interface Lines {
  readonly count: number
  readonly emails: Set<string>
  /** Handler → append, in ms, for lines of measured rounds (not the warm-up). */
  readonly lags: Array<number>
}

const readLines = async (logFile: string): Promise<Lines> => {
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

const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : "–")

const main = async () => {
  console.log(`# After-response tasks over HTTP\n\n${machine()}`)
  const fastapi = findFastApi()
  const contenders: Array<Contender> = [
    { name: WITH_TASK, writes: true, start: nodeServer("notify-effect.ts", { WITH_TASK: "1" }) },
    { name: WITH_TASK_PROMISES, writes: true, start: nodeServer("notify-effect.ts", { WITH_TASK: "promises" }) },
    { name: METRICS_OFF, writes: true, start: nodeServer("notify-effect.ts", { WITH_TASK: "1", EFFECT_BACKGROUND_METRICS: "off" }) },
    { name: NOOP_TASK, writes: false, start: nodeServer("notify-effect.ts", { WITH_TASK: "noop" }) },
    { name: WITHOUT_TASK, writes: false, start: nodeServer("notify-effect.ts", { WITH_TASK: "0" }) },
    { name: RAW_APPEND, writes: true, start: nodeServer("notify-effect.ts", { WITH_TASK: "raw" }) },
    { name: FIBER_APPEND, writes: true, start: nodeServer("notify-effect.ts", { WITH_TASK: "fiber" }) },
    { name: BARE, writes: true, start: nodeServer("notify-bare.ts", {}) },
    { name: BARE_NO_TASK, writes: false, start: nodeServer("notify-bare.ts", { WITH_TASK: "0" }) }
  ]
  if (fastapi !== undefined) {
    contenders.push({
      name: FASTAPI,
      writes: true,
      start: (port, logFile) =>
        track(spawn(fastapi.python, [fixture("notify_fastapi.py")], {
          env: { ...process.env, PORT: String(port), LOG_FILE: logFile },
          stdio: ["ignore", "pipe", "pipe"]
        }))
    })
    console.log(`${FASTAPI}: ${fastapi.versions} (${fastapi.python})`)
  } else {
    console.log(`${FASTAPI}: skipped (no python3 here imports fastapi and uvicorn; Debian: python3-fastapi python3-uvicorn)`)
  }

  const dir = await mkdtemp(join(tmpdir(), "bench-after-response-"))
  const servers = new Map<string, { running: Running; port: number; logFile: string; answered: Set<string> }>()
  try {
    for (const contender of contenders) {
      const port = await freePort()
      const logFile = join(dir, `${servers.size}.log`)
      const running = contender.start(port, logFile)
      servers.set(contender.name, { running, port, logFile, answered: new Set() })
      await Promise.race([
        waitForPort(port, 60_000),
        running.exited.then((exit) => {
          throw new Error(`${contender.name} exited with ${exit.code} before listening:\n${exit.stdout}\n${exit.stderr}`)
        })
      ])
    }

    for (const contender of contenders) {
      const server = servers.get(contender.name)!
      await notifyRound(server.port, CONNECTIONS, WARMUP_SECONDS, "warm", server.answered)
    }
    const rounds = new Map<string, Array<RoundResult>>(contenders.map((c) => [c.name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      // Interleaved, and each round starts with a different contender.
      for (let i = 0; i < contenders.length; i++) {
        const contender = contenders[(round + i) % contenders.length]!
        const server = servers.get(contender.name)!
        rounds.get(contender.name)!.push(await notifyRound(server.port, CONNECTIONS, SECONDS, String(round), server.answered))
      }
    }

    // Drain: SIGTERM each server, wait for it to exit, then count its lines.
    const exits = new Map<string, { code: number | null; report: string | undefined; millis: number }>()
    for (const contender of contenders) {
      const server = servers.get(contender.name)!
      const t = performance.now()
      server.running.child.kill("SIGTERM")
      const exit = await awaitExit(server.running, 90_000)
      exits.set(contender.name, { code: exit.code, report: shutdownReport(exit.stdout), millis: performance.now() - t })
    }

    console.log(
      `\n## After-response tasks (${CONNECTIONS} connections, ${SECONDS}s per contender per round, ` +
        `${ROUNDS} interleaved rounds after a ${WARMUP_SECONDS}s warm-up each; req/s and latencies are medians over the rounds, task lag is over every line of them)\n`
    )
    console.log(
      "| server | req/s | latency p50 ms | latency p99 ms | errors + non-2xx | task lag p50 ms | task lag p99 ms | task lag max ms | answered 2xx | lines written | missing | extra | exit code |"
    )
    console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    const summary = new Map<string, { perSecond: number; lagP99: number; missing: number }>()
    for (const contender of contenders) {
      const server = servers.get(contender.name)!
      const results = rounds.get(contender.name)!
      const lines = await readLines(server.logFile)
      const perSecond = median(results.map((r) => r.perSecond))
      let missing = 0
      for (const email of server.answered) if (!lines.emails.has(email)) missing++
      let extra = 0
      for (const email of lines.emails) if (!server.answered.has(email)) extra++
      extra += lines.count - lines.emails.size // duplicates
      const lagP99 = percentile(lines.lags, 0.99)
      summary.set(contender.name, { perSecond, lagP99, missing })
      const exit = exits.get(contender.name)!
      console.log(
        `| ${contender.name} | ${perSecond.toFixed(0)} | ${ms(median(results.map((r) => r.p50)))} | ${
          ms(median(results.map((r) => r.p99)))
        } | ${results.reduce((sum, r) => sum + r.failed, 0)} | ${
          contender.writes ? `${ms(percentile(lines.lags, 0.5))} | ${ms(lagP99)} | ${ms(lines.lags.reduce((max, lag) => Math.max(max, lag), Number.NEGATIVE_INFINITY))}` : "– | – | –"
        } | ${server.answered.size} | ${lines.count} | ${contender.writes ? missing : "–"} | ${contender.writes ? extra : "–"} | ${exit.code} |`
      )
    }
    console.log(
      "\nmissing: requests answered 2xx with no line after shutdown; extra: lines for requests whose answer the client " +
        "did not see (cut off when a run's time was up)."
    )
    for (const contender of contenders) {
      const exit = exits.get(contender.name)!
      console.log(`${contender.name}: SIGTERM → exit ${exit.millis.toFixed(0)} ms${exit.report ? `; ${exit.report}` : ""}`)
    }

    const ours = summary.get(WITH_TASK)!
    const throughput = ours.perSecond / summary.get(WITHOUT_TASK)!.perSecond
    console.log(`\nthroughput with task vs without: ${ratio(throughput)} (goal ≥ 0.90×) ${verdict(throughput >= 0.9)}`)
    console.log(`task lag p99 with task: ${ms(ours.lagP99)} ms (goal < 50 ms) ${verdict(ours.lagP99 < 50)}`)
    console.log(`lines missing with task: ${ours.missing} (goal 0) ${verdict(ours.missing === 0)}`)
    const metricsCost = ours.perSecond / summary.get(METRICS_OFF)!.perSecond
    console.log(
      `throughput with task, metrics on vs off: ${ratio(metricsCost)} (what recording the library's metrics costs; ` +
        `goal: under 5%, ≥ 0.95×) ${verdict(metricsCost >= 0.95)}`
    )
    const noop = summary.get(NOOP_TASK)!.perSecond / summary.get(WITHOUT_TASK)!.perSecond
    console.log(`throughput with a no-op task vs without: ${ratio(noop)} (the task machinery alone, no file write; goal ≥ 0.97×) ${verdict(noop >= 0.97)}`)
    const raw = summary.get(RAW_APPEND)!.perSecond
    console.log(
      `throughput with the append but no task machinery vs without: ${ratio(raw / summary.get(WITHOUT_TASK)!.perSecond)} ` +
        `(the append's own cost: the ceiling for the ratio above on this machine)`
    )
    console.log(
      `throughput with task vs the raw append: ${ratio(ours.perSecond / raw)} (what the task machinery costs beyond the work; ` +
        `goal ≥ 0.95×) ${verdict(ours.perSecond / raw >= 0.95)}`
    )
    const fiber = summary.get(FIBER_APPEND)!.perSecond
    console.log(
      `throughput with the append in a bare fiber vs without: ${ratio(fiber / summary.get(WITHOUT_TASK)!.perSecond)} ` +
        `(a fiber per append in Effect, nothing of the library's)`
    )
    console.log(`throughput with task vs the append in a bare fiber: ${ratio(ours.perSecond / fiber)} (the library's own share)`)
    console.log(
      `${BARE} vs ${BARE_NO_TASK}: ${ratio(summary.get(BARE)!.perSecond / summary.get(BARE_NO_TASK)!.perSecond)} ` +
        `(the same append in a bare server)`
    )
    const promises = summary.get(WITH_TASK_PROMISES)!
    console.log(
      `throughput with task (fs/promises) vs without: ${ratio(promises.perSecond / summary.get(WITHOUT_TASK)!.perSecond)}; ` +
        `its task lag p99 ${ms(promises.lagP99)} ms, lines missing ${promises.missing}`
    )
    console.log(`throughput with task vs ${BARE}: ${ratio(ours.perSecond / summary.get(BARE)!.perSecond)}`)
    const python = summary.get(FASTAPI)
    console.log(
      python === undefined
        ? `throughput with task vs ${FASTAPI}: skipped (not installed)`
        : `throughput with task vs ${FASTAPI} BackgroundTasks: ${ratio(ours.perSecond / python.perSecond)} (goal ≥ 3.00×) ${
          verdict(ours.perSecond / python.perSecond >= 3)
        }`
    )
  } finally {
    for (const { running } of servers.values()) {
      if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill("SIGKILL")
    }
    await rm(dir, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
