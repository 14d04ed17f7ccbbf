/**
 * The framework adapters (`npm run bench:frameworks`): the notify scenario (`POST
 * /send-notification/:email`, a line appended to a file after the response) on Express 5 and
 * Fastify 5, each with the library's after-response task (`Express.after`, `Fastify.after`)
 * against the same framework route doing the same append with a bare `setImmediate`, and without
 * the append — side by side in one run, interleaved round after round, under autocannon.
 *
 * Then shutdown with nothing to drain: each server is started fresh, SIGTERMed, and reports how
 * long its shutdown took from the signal (the library's `close`, against the framework's own
 * `server.close()` / `app.close()`), median of several starts.
 *
 * Rounds are many and short (15 of 2 s each, by default): on the 2-vCPU VMs these figures come
 * from, a server's CPU per request drifts between states lasting several seconds (in one probe,
 * the same server took 89 to 165 µs of CPU per request from one round to the next), and one
 * state shift can sink or lift a contender's median over a few long rounds. The verdict needs
 * both the ratio of the two contenders' medians and the median of their round-by-round ratios
 * (a round pairs them close in time) at ≥ 0.90×.
 *
 * Goals (issue 14): with task ≥ 0.90× the same route with `setImmediate`; the library's shutdown
 * adds < 50 ms to the framework's own close. Every request answered 2xx must have its line.
 * Servers are child processes on free ports on 127.0.0.1; every load run is bounded in time.
 */
import { spawn } from "node:child_process"
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
  ratio,
  type RoundResult,
  type Running,
  track,
  verdict,
  waitForListening,
  waitForPort
} from "./support.js"

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 2)
const WARMUP_SECONDS = Number(process.env.BENCH_HTTP_WARMUP_SECONDS ?? 2)
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 15)
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 10)
const SHUTDOWN_STARTS = Number(process.env.BENCH_SHUTDOWN_STARTS ?? 5)

const FRAMEWORKS = ["express", "fastify"] as const
const MODES = ["task", "immediate", "none"] as const
type Framework = (typeof FRAMEWORKS)[number]
type Mode = (typeof MODES)[number]

const LABELS: Record<Mode, string> = {
  task: "after-response task (effect-background)",
  immediate: "setImmediate + append",
  none: "no append"
}

interface Contender {
  readonly framework: Framework
  readonly mode: Mode
  readonly name: string
}

const contenders: ReadonlyArray<Contender> = FRAMEWORKS.flatMap((framework) =>
  MODES.map((mode) => ({ framework, mode, name: `${framework}, ${LABELS[mode]}` }))
)

const fixture = fileURLToPath(new URL("./fixtures/notify-frameworks.ts", import.meta.url))

const start = (contender: Contender, port: number, logFile: string): Running =>
  track(spawn(process.execPath, ["--import", LOADER, fixture], {
    env: { ...process.env, FRAMEWORK: contender.framework, MODE: contender.mode, PORT: String(port), LOG_FILE: logFile },
    stdio: ["ignore", "pipe", "pipe"]
  }))

const listening = async (contender: Contender, running: Running, port: number) =>
  Promise.race([
    waitForPort(port, 60_000),
    running.exited.then((exit) => {
      throw new Error(`${contender.name} exited with ${exit.code} before listening:\n${exit.stdout}\n${exit.stderr}`)
    })
  ])

/** The emails of the lines written (`notification for <email> ...`), with duplicates counted. */
const linesOf = async (logFile: string): Promise<{ readonly emails: Set<string>; readonly count: number }> => {
  let text = ""
  try {
    text = await readFile(logFile, "utf8")
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
  }
  const lines = text.split("\n").filter((line) => line !== "")
  return { emails: new Set(lines.map((line) => line.split(" ")[2] ?? "")), count: lines.length }
}

/** SIGTERM a server, wait for it, and read its `closed in <ms> ms` line. */
const stop = async (running: Running): Promise<{ readonly code: number | null; readonly closeMillis: number }> => {
  running.child.kill("SIGTERM")
  const exit = await awaitExit(running, 90_000)
  const closed = /closed in ([\d.]+) ms/.exec(exit.stdout)
  if (closed === null) {
    // (a process killed before it set its handler, as the Fastify fixture once allowed: say what it said)
    console.log(`no "closed in" line: exit code ${exit.code}; stdout: ${exit.stdout.slice(-500)}; stderr: ${exit.stderr.slice(-1500)}`)
  }
  return { code: exit.code, closeMillis: closed === null ? Number.NaN : Number(closed[1]) }
}

const main = async () => {
  console.log(`# Framework adapters: Express and Fastify\n\n${machine()}`)
  const dir = await mkdtemp(join(tmpdir(), "bench-frameworks-"))
  const servers = new Map<string, { running: Running; port: number; logFile: string; answered: Set<string> }>()
  try {
    for (const contender of contenders) {
      const port = await freePort()
      const logFile = join(dir, `${servers.size}.log`)
      const running = start(contender, port, logFile)
      servers.set(contender.name, { running, port, logFile, answered: new Set() })
      await listening(contender, running, port)
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
    const exits = new Map<string, { code: number | null }>()
    for (const contender of contenders) exits.set(contender.name, await stop(servers.get(contender.name)!.running))

    console.log(
      `\n## Throughput (${CONNECTIONS} connections, ${SECONDS}s per contender per round, ${ROUNDS} interleaved rounds ` +
        `after a ${WARMUP_SECONDS}s warm-up each; medians over the rounds)\n`
    )
    console.log("| server | req/s | latency p50 ms | latency p99 ms | errors + non-2xx | answered 2xx | lines written | missing | exit code |")
    console.log("|---|---|---|---|---|---|---|---|---|")
    const perSecond = new Map<string, number>()
    const missingBy = new Map<string, number>()
    for (const contender of contenders) {
      const server = servers.get(contender.name)!
      const results = rounds.get(contender.name)!
      const writes = contender.mode !== "none"
      const lines = await linesOf(server.logFile)
      let missing = 0
      for (const email of server.answered) if (!lines.emails.has(email)) missing++
      const rate = median(results.map((r) => r.perSecond))
      perSecond.set(contender.name, rate)
      missingBy.set(contender.name, missing)
      console.log(
        `| ${contender.name} | ${rate.toFixed(0)} | ${median(results.map((r) => r.p50)).toFixed(2)} | ${
          median(results.map((r) => r.p99)).toFixed(2)
        } | ${results.reduce((sum, r) => sum + r.failed, 0)} | ${server.answered.size} | ${writes ? lines.count : "–"} | ${
          writes ? missing : "–"
        } | ${exits.get(contender.name)!.code} |`
      )
    }

    console.log(`\n## Shutdown with nothing to drain (SIGTERM → closed, median of ${SHUTDOWN_STARTS} fresh starts)\n`)
    console.log("| server | close ms (median) | close ms (max) |")
    console.log("|---|---|---|")
    const closeMedians = new Map<string, number>()
    for (const contender of contenders.filter((c) => c.mode !== "none")) {
      const samples: Array<number> = []
      for (let i = 0; i < SHUTDOWN_STARTS; i++) {
        const port = await freePort()
        const running = start(contender, port, join(dir, `shutdown-${i}.log`))
        // Its `listening on` line, not a probe connection: an open connection is something to drain.
        await waitForListening(running.child, 60_000)
        samples.push((await stop(running)).closeMillis)
      }
      closeMedians.set(contender.name, median(samples))
      console.log(`| ${contender.name} | ${median(samples).toFixed(2)} | ${Math.max(...samples).toFixed(2)} |`)
    }

    console.log("")
    for (const framework of FRAMEWORKS) {
      const name = (mode: Mode) => `${framework}, ${LABELS[mode]}`
      const vsImmediate = perSecond.get(name("task"))! / perSecond.get(name("immediate"))!
      // The same ratio round by round (each round runs every contender once, in turns, so a round
      // pairs the two close in time): its median is spared the drift that can put one contender's
      // median in a slow stretch and the other's in a fast one. The verdict needs both figures.
      const taskRounds = rounds.get(name("task"))!
      const immediateRounds = rounds.get(name("immediate"))!
      const byRound = taskRounds.map((r, i) => r.perSecond / immediateRounds[i]!.perSecond)
      const paired = median(byRound)
      console.log(
        // (three decimals: at two, a figure just under the goal would print as 0.90×)
        `${framework}: with task vs setImmediate: ${vsImmediate.toFixed(3)}× (ratio of the medians), ${paired.toFixed(3)}× ` +
          `(median of the round-by-round ratios) (goal ≥ 0.90× by both) ${verdict(vsImmediate >= 0.9 && paired >= 0.9)}`
      )
      console.log(
        `${framework}: with task vs setImmediate, round by round: ${byRound.map(ratio).join(" ")} ` +
          `(${byRound.filter((r) => r >= 0.9).length} of ${byRound.length} at ≥ 0.90×)`
      )
      const added = closeMedians.get(name("task"))! - closeMedians.get(name("immediate"))!
      console.log(
        `${framework}: shutdown adds ${added.toFixed(2)} ms to the framework's own close (goal < 50 ms) ${verdict(added < 50)}`
      )
      const missing = missingBy.get(name("task"))!
      console.log(`${framework}: lines missing with task: ${missing} (goal 0) ${verdict(missing === 0)}`)
    }
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
