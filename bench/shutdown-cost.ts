/**
 * Shutdown cost (`npm run bench:shutdown-cost`): how long a `Server.app` + `Server.launch` process
 * takes from SIGTERM to exit with 10,000 daemons and 10,000 sleeping forks, against the same
 * process with none. The daemons are made both ways: from one layer (`Background.startDaemon`)
 * and as 10,000 merged `Background.daemon` layers. Beside them, the floor without the library: a
 * plain `@effect/platform` server under `NodeRuntime.runMain` whose `FiberSet` holds the same
 * number of fibers, and the same server empty. Each trial is a fresh child (grace 0); the kinds
 * take turns; the time is taken in this process, from sending the signal to the child's exit.
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
  ratio,
  shutdownReport,
  sleep,
  track,
  verdict,
  waitForListening
} from "./support.js"

const TRIALS = Number(process.env.BENCH_SHUTDOWN_TRIALS ?? 5)
const DAEMONS = Number(process.env.BENCH_SHUTDOWN_DAEMONS ?? 10_000)
const FORKS = Number(process.env.BENCH_SHUTDOWN_FORKS ?? 10_000)

const LOADED = `${DAEMONS} daemons (one layer) + ${FORKS} sleeping forks`
const LOADED_LAYERS = `${DAEMONS} daemon layers (merged) + ${FORKS} sleeping forks`
const EMPTY = "none"
const RAW_LOADED = `raw Effect: FiberSet of ${DAEMONS} never-ending + ${FORKS} sleeping fibers`
const RAW_EMPTY = "raw Effect: empty"

interface Kind {
  readonly name: string
  readonly script: string
  readonly daemons: number
  readonly forks: number
  readonly env?: Record<string, string>
}

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

const trial = async ({ daemons, env, forks, script }: Kind): Promise<Trial> => {
  const port = await freePort()
  const running = track(spawn(process.execPath, ["--import", LOADER, fileURLToPath(new URL(`./fixtures/${script}`, import.meta.url))], {
    env: { ...process.env, ...env, PORT: String(port), DAEMONS: String(daemons) },
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
  const kinds: ReadonlyArray<Kind> = [
    { name: LOADED, script: "shutdown-server.ts", daemons: DAEMONS, forks: FORKS, env: { DAEMON_MODE: "effect" } },
    { name: LOADED_LAYERS, script: "shutdown-server.ts", daemons: DAEMONS, forks: FORKS, env: { DAEMON_MODE: "layers" } },
    { name: EMPTY, script: "shutdown-server.ts", daemons: 0, forks: 0 },
    { name: RAW_LOADED, script: "shutdown-raw.ts", daemons: DAEMONS, forks: FORKS },
    { name: RAW_EMPTY, script: "shutdown-raw.ts", daemons: 0, forks: 0 }
  ]
  const results = new Map<string, Array<Trial>>(kinds.map((kind) => [kind.name, []]))
  for (let i = 0; i < TRIALS; i++) {
    // each round starts with a different kind
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[(i + k) % kinds.length]!
      results.get(kind.name)!.push(await trial(kind))
    }
  }
  console.log(`\n## SIGTERM → exit (${TRIALS} trials each, taking turns, grace 0)\n`)
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
  for (const kind of kinds.filter((k) => k.script === "shutdown-server.ts")) {
    console.log(`\n${kind.name}, last trial: ${brief(results.get(kind.name)!.at(-1)!.report)}`)
  }
  const p50 = (name: string) => median(results.get(name)!.map((t) => t.millis))
  const difference = p50(LOADED) - p50(EMPTY)
  const floor = p50(RAW_LOADED) - p50(RAW_EMPTY)
  console.log(
    `\nSIGTERM → exit with ${DAEMONS} daemons (one layer) + ${FORKS} forks, minus none (medians): ${difference.toFixed(0)} ms ` +
      `(goal < 200 ms) ${verdict(difference < 200)}`
  )
  console.log(`the same with the daemons as ${DAEMONS} merged layers: ${(p50(LOADED_LAYERS) - p50(EMPTY)).toFixed(0)} ms`)
  console.log(
    `raw Effect, the same number of fibers in a FiberSet, minus empty: ${floor.toFixed(0)} ms ` +
      `(Effect's own cost of interrupting them: the floor for the figure above)`
  )
  console.log(`effect-background's cost beyond that floor: ${(difference - floor).toFixed(0)} ms`)
  console.log(
    `shutdown with ${DAEMONS} daemons + ${FORKS} forks vs the same fibers in a raw FiberSet: ${ratio(difference / floor)} ` +
      `(goal ≤ 1.10×) ${verdict(difference / floor <= 1.1)}`
  )
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
