/**
 * Offload benchmark (`npm run bench:offload`). Three measurements, each with its contenders side
 * by side in one run, printed as ratios next to the goals:
 *
 * 1. tiny-task throughput and latency: effect-background's pool vs Piscina vs @effect/platform's
 *    worker pool, same thread count, interleaved rounds;
 * 2. `/ping` p50/p99 on examples/offload.ts while four clients load `/cpu` (offloaded), versus
 *    `/cpu-inline` (on the event loop), versus idle;
 * 3. how soon a cancelled running task's thread is free: interrupt → worker terminated, and
 *    interrupt → the next task's result;
 * 4. on the demo's one-thread pool under its own loader (examples/offload.ts, `node --import tsx`),
 *    how soon the next task answers after one is cut off by its timeout, with the spare thread
 *    (`spareThread`, the demo's default) and without.
 *
 * All traffic is on 127.0.0.1; every loop is bounded in count and time.
 */
import { Worker as PlatformWorker } from "@effect/platform"
import { NodeWorker } from "@effect/platform-node"
import autocannon from "autocannon"
import { Context, Duration, Effect, Exit, Fiber, Layer, ManagedRuntime, Schema } from "effect"
import { spawn } from "node:child_process"
import * as http from "node:http"
import { Worker } from "node:worker_threads"
import { Piscina } from "piscina"
import * as Offload from "../src/Offload.js"
import { Spin } from "../test/fixtures/tasks.js"
import {
  awaitExit,
  freePort,
  LOADER,
  machine,
  median,
  percentile,
  ratio,
  sleep,
  track,
  waitForListening
} from "./support.js"
import { Increment } from "./workers/tiny.tasks.js"

const THREADS = 2
const TASKS = Number(process.env.BENCH_TASKS ?? 20_000)
const WINDOW = 64
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)

interface RunResult {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
}

const summarize = (latencies: Array<number>, elapsed: number): RunResult => ({
  perSecond: (latencies.length / elapsed) * 1000,
  p50: percentile(latencies, 0.5),
  p99: percentile(latencies, 0.99)
})

/** Runs TASKS calls of `runOne` with WINDOW in flight, timing each call. */
const promiseWindow = async (runOne: (n: number) => Promise<unknown>): Promise<RunResult> => {
  const latencies: Array<number> = []
  let next = 0
  const start = performance.now()
  const lane = async () => {
    while (next < TASKS) {
      const n = next++
      const t = performance.now()
      await runOne(n)
      latencies.push(performance.now() - t)
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, lane))
  return summarize(latencies, performance.now() - start)
}

/** The same, inside one Effect program, as an Effect user would write it. */
const effectWindow = <E, R>(runOne: (n: number) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    const start = performance.now()
    yield* Effect.forEach(
      Array.from({ length: TASKS }, (_, i) => i),
      (n) => {
        const t = performance.now()
        return Effect.map(runOne(n), () => latencies.push(performance.now() - t))
      },
      { concurrency: WINDOW, discard: true }
    )
    return summarize(latencies, performance.now() - start)
  })

class IncrementRequest extends Schema.TaggedRequest<IncrementRequest>()("Increment", {
  failure: Schema.Never,
  success: Schema.Number,
  payload: { n: Schema.Number }
}) {}

class PlatformPool extends Context.Tag("bench/PlatformPool")<
  PlatformPool,
  PlatformWorker.SerializedWorkerPool<IncrementRequest>
>() {}

const tinyTasks = async () => {
  const ours = ManagedRuntime.make(Offload.layer({
    module: new URL("./workers/tiny.worker.ts", import.meta.url),
    minThreads: THREADS,
    maxThreads: THREADS,
    maxQueued: TASKS
  }))
  const platform = ManagedRuntime.make(
    PlatformWorker.makePoolSerializedLayer(PlatformPool, { size: THREADS, concurrency: WINDOW }).pipe(
      Layer.provide(NodeWorker.layer(() => new Worker(new URL("./workers/tiny.effect-platform.mjs", import.meta.url))))
    )
  )
  const piscina = new Piscina({
    filename: new URL("./workers/tiny.piscina.mjs", import.meta.url).href,
    minThreads: THREADS,
    maxThreads: THREADS
  })
  const contenders: Record<string, () => Promise<RunResult>> = {
    "effect-background": () => ours.runPromise(effectWindow((n) => Offload.run(Increment, n))),
    // Piscina in the same Effect harness as the other two, and in its own Promise harness.
    piscina: () => Effect.runPromise(effectWindow((n) => Effect.promise(() => piscina.run(n)))),
    "piscina (plain Promise loop)": () => promiseWindow((n) => piscina.run(n)),
    "@effect/platform": () =>
      platform.runPromise(effectWindow((n) => Effect.flatMap(PlatformPool, (pool) => pool.executeEffect(new IncrementRequest({ n })))))
  }
  // Warm up every pool (threads started, code paths hot): one whole untimed round each.
  for (const run of Object.values(contenders)) await run()

  const results: Record<string, Array<RunResult>> = {}
  const entries = Object.entries(contenders)
  for (let round = 0; round < ROUNDS; round++) {
    // Interleaved, and each round starts with a different contender.
    for (let i = 0; i < entries.length; i++) {
      const [name, run] = entries[(round + i) % entries.length]!
      ;(results[name] ??= []).push(await run())
    }
  }
  await ours.dispose()
  await platform.dispose()
  await piscina.destroy()

  const medianOf = (name: string, key: keyof RunResult) => median(results[name]!.map((r) => r[key]))
  console.log(
    `\n## 1. Tiny tasks (${TASKS} per round, ${WINDOW} in flight, ${THREADS} threads, ${ROUNDS} interleaved rounds; each figure is its median over the rounds)\n`
  )
  console.log("| pool | tasks/s | p50 ms | p99 ms |")
  console.log("|---|---|---|---|")
  for (const name of Object.keys(contenders)) {
    console.log(`| ${name} | ${medianOf(name, "perSecond").toFixed(0)} | ${medianOf(name, "p50").toFixed(2)} | ${medianOf(name, "p99").toFixed(2)} |`)
  }
  const vsPiscina = medianOf("effect-background", "perSecond") / medianOf("piscina", "perSecond")
  const vsPlatform = medianOf("effect-background", "perSecond") / medianOf("@effect/platform", "perSecond")
  const vsRawPiscina = medianOf("effect-background", "perSecond") / medianOf("piscina (plain Promise loop)", "perSecond")
  console.log(`\nthroughput ratio vs Piscina, same Effect harness: ${ratio(vsPiscina)} (goal ≥ 1.00×) ${vsPiscina >= 1 ? "MET" : "NOT MET"}`)
  console.log(`throughput ratio vs Piscina in a plain Promise loop: ${ratio(vsRawPiscina)}`)
  console.log(`throughput ratio vs @effect/platform: ${ratio(vsPlatform)}`)
}

/** Sequential keep-alive GETs of /ping for `millis`, at most `limit` of them, each within 10 s. */
const pingLoop = async (port: number, millis: number, limit: number): Promise<Array<number>> => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const latencies: Array<number> = []
  const end = performance.now() + millis
  try {
    while (performance.now() < end && latencies.length < limit) {
      const t = performance.now()
      await new Promise<void>((resolve, reject) => {
        const request = http.get({ host: "127.0.0.1", port, path: "/ping", agent, timeout: 10_000 }, (res) => {
          res.resume()
          res.on("end", () => resolve())
        })
        request.on("timeout", () => request.destroy(new Error("/ping did not answer within 10 s")))
        request.on("error", reject)
      })
      latencies.push(performance.now() - t)
      await sleep(5)
    }
  } finally {
    agent.destroy()
  }
  return latencies
}

interface PingRound {
  readonly p50: number
  readonly p99: number
  readonly pings: number
  readonly served: number
  readonly errors: number
}

const pingUnderLoad = async () => {
  const port = await freePort()
  const running = track(spawn(process.execPath, ["--import", LOADER, "examples/offload.ts"], {
    env: { ...process.env, PORT: String(port), OFFLOAD_THREADS: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  }))
  try {
    await waitForListening(running.child, 60_000)
    const seconds = Number(process.env.BENCH_LOAD_SECONDS ?? 5)
    const modes: Record<string, string | undefined> = {
      idle: undefined,
      "/cpu (offloaded)": "/cpu?n=1000000",
      "/cpu-inline (event loop)": "/cpu-inline?n=1000000"
    }
    // Warm-up, untimed: every route served for a while, so no mode is measured on a cold server.
    await pingLoop(port, 1000, 200)
    for (const path of Object.values(modes)) {
      if (path !== undefined) await autocannon({ url: `http://127.0.0.1:${port}${path}`, connections: 4, duration: 1 })
    }
    // The load starts half a second before the pings and runs half a second past them.
    const measure = async (path: string | undefined): Promise<PingRound> => {
      const load = path === undefined
        ? undefined
        : autocannon({ url: `http://127.0.0.1:${port}${path}`, connections: 4, duration: seconds + 1 })
      await sleep(500)
      const pings = await pingLoop(port, seconds * 1000, 2000)
      const result = load === undefined ? undefined : await load
      return {
        p50: percentile(pings, 0.5),
        p99: percentile(pings, 0.99),
        pings: pings.length,
        served: result?.requests.total ?? 0,
        errors: result === undefined ? 0 : result.errors + result.non2xx
      }
    }
    const names = Object.keys(modes)
    const rounds = new Map<string, Array<PingRound>>(names.map((name) => [name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      // Interleaved, and each round starts with a different mode.
      for (let i = 0; i < names.length; i++) {
        const name = names[(round + i) % names.length]!
        rounds.get(name)!.push(await measure(modes[name]))
      }
    }
    const medianOf = (name: string, key: "p50" | "p99") => median(rounds.get(name)!.map((r) => r[key]))
    const total = (name: string, key: "pings" | "served" | "errors") => rounds.get(name)!.reduce((sum, r) => sum + r[key], 0)
    console.log(
      `\n## 2. /ping while 4 clients load (examples/offload.ts, OFFLOAD_THREADS=1; ${ROUNDS} interleaved rounds after a ` +
        `warm-up: each load runs ${seconds + 1}s around a ${seconds}s ping window; p50 and p99 are medians over the rounds)\n`
    )
    console.log("| load | pings (all rounds) | /ping p50 ms | /ping p99 ms | p99 vs idle | load requests served (all rounds) | errors |")
    console.log("|---|---|---|---|---|---|---|")
    for (const name of names) {
      console.log(
        `| ${name} | ${total(name, "pings")} | ${medianOf(name, "p50").toFixed(2)} | ${medianOf(name, "p99").toFixed(2)} | ${
          ratio(medianOf(name, "p99") / medianOf("idle", "p99"))
        } | ${total(name, "served")} | ${total(name, "errors")} |`
      )
    }
    const offloaded = medianOf("/cpu (offloaded)", "p99") / medianOf("idle", "p99")
    console.log(`\n/ping p99 under offloaded load vs idle: ${ratio(offloaded)} (goal ≤ 2.00×) ${offloaded <= 2 ? "MET" : "NOT MET"}`)
  } finally {
    running.child.kill("SIGTERM")
    await awaitExit(running, 10_000).catch((error: unknown) => console.error(String(error)))
  }
}

const cancellation = async () => {
  const trials = 5
  const runtime = ManagedRuntime.make(Offload.layer({
    module: new URL("../test/fixtures/tasks.worker.ts", import.meta.url),
    minThreads: 2,
    maxThreads: 2
  }))
  const freed: Array<number> = []
  const nextResult: Array<number> = []
  try {
    for (let i = 0; i < trials; i++) {
      await runtime.runPromise(Effect.gen(function*() {
        const fiber = yield* Effect.fork(Offload.run(Spin, 60_000))
        yield* Effect.sleep(Duration.millis(100))
        const t = performance.now()
        yield* Fiber.interrupt(fiber)
        freed.push(performance.now() - t)
        const exit = yield* Effect.exit(Offload.run(Spin, 1))
        if (Exit.isFailure(exit)) throw new Error("the task after a cancellation failed")
        nextResult.push(performance.now() - t)
        // let the replacement thread finish starting before the next trial
        yield* Effect.sleep(Duration.seconds(3))
      }))
    }
  } finally {
    await runtime.dispose()
  }
  const worst = Math.max(...freed)
  console.log(`\n## 3. Cancelling a running task (2 threads, ${trials} trials)\n`)
  console.log(`interrupt → worker terminated: p50 ${percentile(freed, 0.5).toFixed(1)} ms, max ${worst.toFixed(1)} ms (goal < 50 ms) ${worst < 50 ? "MET" : "NOT MET"}`)
  console.log(`interrupt → next task's result (on the other thread): p50 ${percentile(nextResult, 0.5).toFixed(1)} ms, max ${Math.max(...nextResult).toFixed(1)} ms`)
}

/** One GET on 127.0.0.1, bounded at 60 s: its status. */
const get = async (port: number, path: string): Promise<number> => {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(60_000) })
  await response.arrayBuffer()
  return response.status
}

const afterTimeout = async () => {
  const trials = Number(process.env.BENCH_TIMEOUT_TRIALS ?? 5)
  const modes = [["spare thread", "1"], ["no spare", "0"]] as const
  const servers = await Promise.all(modes.map(async ([, spare]) => {
    const port = await freePort()
    const running = track(spawn(process.execPath, ["--import", "tsx", "examples/offload.ts"], {
      env: { ...process.env, PORT: String(port), OFFLOAD_THREADS: "1", OFFLOAD_SPARE: spare },
      stdio: ["ignore", "pipe", "pipe"]
    }))
    // (watched from the start: output printed before a listener is attached is not seen)
    return { port, running, listening: waitForListening(running.child, 60_000) }
  }))
  const waits: Record<string, Array<number>> = Object.fromEntries(modes.map(([name]) => [name, []]))
  try {
    for (const { listening } of servers) await listening
    // every thread (and spare) loaded before the first trial
    await sleep(5000)
    for (let trial = 0; trial < trials; trial++) {
      for (const [index, [name]] of modes.entries()) {
        const { port } = servers[index]!
        const cut = await get(port, "/cpu?n=500000000&timeoutMs=100")
        if (cut !== 504) throw new Error(`${name}: the task to be cut off answered ${cut}, not 504`)
        const start = performance.now()
        const next = await get(port, "/cpu?n=1000")
        if (next !== 200) throw new Error(`${name}: the next task answered ${next}, not 200`)
        waits[name]!.push(performance.now() - start)
        // the replacement thread (or new spare) loads before the next measurement on either server
        await sleep(5000)
      }
    }
  } finally {
    for (const { running } of servers) {
      running.child.kill("SIGTERM")
      await awaitExit(running, 10_000).catch((error: unknown) => console.error(String(error)))
    }
  }
  console.log(`\n## 4. The next task after a timeout, demo's one-thread pool under tsx (${trials} trials each, interleaved)\n`)
  console.log("| pool | p50 ms | max ms |")
  console.log("|---|---|---|")
  for (const [name] of modes) {
    const values = waits[name]!
    console.log(`| ${name} | ${percentile(values, 0.5).toFixed(0)} | ${Math.max(...values).toFixed(0)} |`)
  }
  const worst = Math.max(...waits["spare thread"]!)
  console.log(`\nnext task after a timeout, with the spare thread, slowest trial: ${worst.toFixed(0)} ms (goal ≤ 1000 ms) ${worst <= 1000 ? "MET" : "NOT MET"}`)
}

const main = async () => {
  console.log(`# Offload benchmark\n\n${machine()}`)
  const only = process.env.BENCH_OFFLOAD_ONLY
  if (only === undefined || only === "1") await tinyTasks()
  if (only === undefined || only === "2") await pingUnderLoad()
  if (only === undefined || only === "3") await cancellation()
  if (only === undefined || only === "4") await afterTimeout()
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
