/**
 * Schedules (`npm run bench:schedules`): event-loop utilisation of 10,000 concurrent repeating jobs
 * — `Background.every` with `spaced`, against the same with `setInterval`, and with plain
 * `Effect.repeat(Schedule.spaced)` fibers in a `FiberSet` to tell the library's share from
 * Effect's. Each trial is a fresh child process (bench/fixtures/schedules.ts) measured over a fixed
 * window after a warm-up; contenders alternate, trial after trial.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { type Contender, contenders } from "./fixtures/schedule-contenders.js"
import { awaitExit, LOADER, machine, median, ratio, track } from "./support.js"

const JOBS = Number(process.env.BENCH_SCHEDULE_JOBS ?? 10_000)
const INTERVALS = (process.env.BENCH_SCHEDULE_INTERVALS ?? "100,1000").split(",").map(Number)
const TRIALS = Number(process.env.BENCH_SCHEDULE_TRIALS ?? 3)
const WARMUP_MS = Number(process.env.BENCH_SCHEDULE_WARMUP_MS ?? 2000)
const WINDOW_MS = Number(process.env.BENCH_SCHEDULE_WINDOW_MS ?? 4000)

interface Measured {
  readonly utilization: number
  readonly runsPerSecond: number
  readonly cpuPercent: number
  readonly heapUsed: number
}

const measure = async (contender: Contender, interval: number): Promise<Measured> => {
  const running = track(spawn(
    process.execPath,
    [
      "--import",
      LOADER,
      fileURLToPath(new URL("./fixtures/schedules.ts", import.meta.url)),
      contender,
      String(JOBS),
      String(interval),
      String(WARMUP_MS),
      String(WINDOW_MS)
    ],
    { stdio: ["ignore", "pipe", "pipe"] }
  ))
  const exit = await awaitExit(running, 60_000 + WARMUP_MS + WINDOW_MS)
  const line = exit.stdout.trim().split("\n").at(-1) ?? ""
  if (exit.code !== 0 || !line.startsWith("{")) throw new Error(`schedules ${contender} failed (${exit.code}):\n${exit.stdout}\n${exit.stderr}`)
  return JSON.parse(line) as Measured
}

const main = async () => {
  console.log(`# Schedules\n\n${machine()}`)
  for (const interval of INTERVALS) {
    const results = new Map<Contender, Array<Measured>>(contenders.map((name) => [name, []]))
    for (let trial = 0; trial < TRIALS; trial++) {
      for (let i = 0; i < contenders.length; i++) {
        const name = contenders[(trial + i) % contenders.length]!
        results.get(name)!.push(await measure(name, interval))
      }
    }
    const target = (JOBS * 1000) / interval
    const of = (name: Contender, key: keyof Measured) => median(results.get(name)!.map((r) => r[key]))
    /** Busy event-loop time per run: utilisation spread over the runs made, per trial, then the median. */
    const busyPerRun = (name: Contender) =>
      median(results.get(name)!.map((r) => (r.utilization * 1e6) / r.runsPerSecond))
    console.log(
      `\n## ${JOBS} jobs every ${interval} ms (target ${target.toFixed(0)} runs/s; ${WINDOW_MS / 1000}s window after ` +
        `${WARMUP_MS / 1000}s warm-up; one process per trial; median of ${TRIALS} alternating trials)\n`
    )
    console.log("| contender | event-loop utilisation | runs/s | busy µs per run | CPU % | heap used MB |")
    console.log("|---|---|---|---|---|---|")
    for (const name of contenders) {
      console.log(
        `| ${name} | ${of(name, "utilization").toFixed(3)} | ${of(name, "runsPerSecond").toFixed(0)} | ${busyPerRun(name).toFixed(2)} | ${
          of(name, "cpuPercent").toFixed(1)
        } | ${(of(name, "heapUsed") / 2 ** 20).toFixed(0)} |`
      )
    }
    const ours = "Background.every"
    console.log(
      `\nevent-loop utilisation, Background.every vs setInterval: ${ratio(of(ours, "utilization") / of("setInterval", "utilization"))}` +
        ` (${of(ours, "utilization").toFixed(3)} vs ${of("setInterval", "utilization").toFixed(3)})`
    )
    console.log(`busy time per run, Background.every vs setInterval: ${ratio(busyPerRun(ours) / busyPerRun("setInterval"))}`)
    console.log(
      `busy time per run, Background.every vs Effect.repeat + Schedule.spaced: ${
        ratio(busyPerRun(ours) / busyPerRun("Effect.repeat + Schedule.spaced"))
      }`
    )
    console.log(`runs made, Background.every vs target: ${ratio(of(ours, "runsPerSecond") / target)}`)
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
