/**
 * Shutdown cost (`npm run bench:shutdown-cost`): how long a `Server.app` + `Server.launch` process
 * takes from SIGTERM to exit with 10,000 daemons and 10,000 sleeping forks, against the same
 * process with none. Each trial is a fresh child (bench/fixtures/shutdown-server.ts, grace 0); the
 * two kinds alternate; the time is taken in this process, from sending the signal to the child's
 * exit.
 */
import { spawn } from "node:child_process"
import * as http from "node:http"
import { fileURLToPath } from "node:url"
import {
  awaitExit,
  LOADER,
  freePort,
  machine,
  median,
  percentile,
  shutdownReport,
  sleep,
  track,
  verdict,
  waitForListening
} from "./support.js"

const TRIALS = Number(process.env.BENCH_SHUTDOWN_TRIALS ?? 5)
const DAEMONS = Number(process.env.BENCH_SHUTDOWN_DAEMONS ?? 10_000)
const FORKS = Number(process.env.BENCH_SHUTDOWN_FORKS ?? 10_000)

const LOADED = `${DAEMONS} daemons + ${FORKS} sleeping forks`
const EMPTY = "none"

const post = (port: number, path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, path, method: "POST", agent: false, timeout: 60_000 }, (response) => {
      let body = ""
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk))
      response.on("end", () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`${response.statusCode}: ${body}`))))
    })
    request.on("timeout", () => request.destroy(new Error("timed out")))
    request.on("error", reject)
    request.end()
  })

interface Trial {
  readonly millis: number
  readonly code: number | null
  readonly tasks: number
  readonly report: string | undefined
}

const trial = async (daemons: number, forks: number): Promise<Trial> => {
  const port = await freePort()
  const running = track(spawn(process.execPath, ["--import", LOADER, fileURLToPath(new URL("./fixtures/shutdown-server.ts", import.meta.url))], {
    env: { ...process.env, PORT: String(port), DAEMONS: String(daemons) },
    stdio: ["ignore", "pipe", "pipe"]
  }))
  try {
    await waitForListening(running.child, 120_000)
    const { tasks } = JSON.parse(await post(port, `/fork/${forks}`)) as { tasks: number }
    if (tasks !== daemons + forks) throw new Error(`the supervisor owns ${tasks} tasks, expected ${daemons + forks}`)
    // Let the process settle (the fork request's connection closes, start-up garbage is collected).
    await sleep(1000)
    const start = performance.now()
    running.child.kill("SIGTERM")
    const exit = await awaitExit(running, 60_000)
    return { millis: performance.now() - start, code: exit.code, tasks, report: shutdownReport(exit.stdout) }
  } finally {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill("SIGKILL")
  }
}

/** The report line without its (long) list of interrupted task names. */
const brief = (report: string | undefined) => report?.replace(/; interrupted: .*$/, "; interrupted: …") ?? "(no report)"

const main = async () => {
  console.log(`# Shutdown cost\n\n${machine()}`)
  const kinds = [
    { name: LOADED, daemons: DAEMONS, forks: FORKS },
    { name: EMPTY, daemons: 0, forks: 0 }
  ]
  const results = new Map<string, Array<Trial>>(kinds.map((kind) => [kind.name, []]))
  for (let i = 0; i < TRIALS; i++) {
    for (const kind of i % 2 === 0 ? kinds : [...kinds].reverse()) {
      results.get(kind.name)!.push(await trial(kind.daemons, kind.forks))
    }
  }
  console.log(`\n## SIGTERM → exit (${TRIALS} trials each, alternating, grace 0)\n`)
  console.log("| process | tasks owned | p50 ms | min ms | max ms | exit codes |")
  console.log("|---|---|---|---|---|---|")
  for (const kind of kinds) {
    const trials = results.get(kind.name)!
    const millis = trials.map((t) => t.millis)
    console.log(
      `| ${kind.name} | ${trials[0]!.tasks} | ${median(millis).toFixed(0)} | ${Math.min(...millis).toFixed(0)} | ${
        percentile(millis, 1).toFixed(0)
      } | ${[...new Set(trials.map((t) => t.code))].join(", ")} |`
    )
  }
  for (const kind of kinds) console.log(`\n${kind.name}, last trial: ${brief(results.get(kind.name)!.at(-1)!.report)}`)
  const difference = median(results.get(LOADED)!.map((t) => t.millis)) - median(results.get(EMPTY)!.map((t) => t.millis))
  console.log(`\nSIGTERM → exit, difference of medians: ${difference.toFixed(0)} ms (goal < 200 ms) ${verdict(difference < 200)}`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
