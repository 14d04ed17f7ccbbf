/**
 * Fork cost (`npm run bench:fork-cost`), two measurements with their contenders side by side:
 *
 * 1. throughput: fork FORKS trivial tasks (each bumps a counter) and wait until all have run,
 *    through `Background.fork`, raw `FiberSet.run`, `Effect.forkDaemon` and a bare `Promise`;
 *    interleaved rounds in this process, the median over the rounds;
 * 2. memory: heap used after GC per sleeping task, 100,000 tasks that each sleep for an hour,
 *    each contender in its own child process (bench/fixtures/fork-memory.ts) so heaps do not mix.
 */
import { Effect, FiberSet, ManagedRuntime } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Background from "../src/Background.js"
import { type Contender, contenders } from "./fixtures/fork-contenders.js"
import { awaitExit, LOADER, machine, median, ratio, track, verdict } from "./support.js"

const FORKS = Number(process.env.BENCH_FORKS ?? 20_000)
const ROUNDS = Number(process.env.BENCH_FORK_ROUNDS ?? 5)
const SLEEPERS = Number(process.env.BENCH_SLEEPERS ?? 100_000)
const MEMORY_TRIALS = Number(process.env.BENCH_MEMORY_TRIALS ?? 1)

interface Round {
  /** Forks per second, from the first fork until every task has run. */
  readonly perSecond: number
}

let done = 0
let allDone: () => void = () => undefined
const tick = () => {
  if (++done === FORKS) allDone()
}
const task = Effect.sync(tick)

/** Times `forkAll` (which forks FORKS tasks running `task`) until every task has run. */
const timed = async (forkAll: () => Promise<void>): Promise<Round> => {
  done = 0
  const finished = new Promise<void>((resolve) => {
    allDone = resolve
  })
  const start = performance.now()
  await forkAll()
  await finished
  const end = performance.now()
  return { perSecond: (FORKS / (end - start)) * 1000 }
}

/** The program each Effect contender runs: fork FORKS tasks from one fiber. */
const forkLoop = <E, R>(fork: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < FORKS; i++) yield* fork
  })

const throughput = async () => {
  const runtime = ManagedRuntime.make(Background.layer())
  const contendersByName: Record<Contender, () => Promise<Round>> = {
    "Background.fork": () => timed(() => runtime.runPromise(forkLoop(Background.fork(task, "bench")))),
    "FiberSet.run": () =>
      timed(() =>
        Effect.runPromise(Effect.scoped(Effect.gen(function*() {
          const set = yield* FiberSet.make()
          yield* forkLoop(FiberSet.run(set, task))
          yield* FiberSet.awaitEmpty(set)
        })))
      ),
    "Effect.forkDaemon": () => timed(() => Effect.runPromise(forkLoop(Effect.forkDaemon(task)))),
    Promise: () =>
      timed(async () => {
        for (let i = 0; i < FORKS; i++) void Promise.resolve().then(tick).catch(console.error)
      })
  }
  const results = new Map<Contender, Array<Round>>(contenders.map((name) => [name, []]))
  // One warm-up round each, not counted.
  for (const name of contenders) await contendersByName[name]()
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < contenders.length; i++) {
      const name = contenders[(round + i) % contenders.length]!
      globalThis.gc?.()
      results.get(name)!.push(await contendersByName[name]())
    }
  }
  await runtime.runPromise(Background.awaitIdle)
  await runtime.dispose()

  console.log(`\n## 1. Fork throughput (${FORKS} trivial tasks per round, median of ${ROUNDS} interleaved rounds)\n`)
  console.log("| contender | forks/s (until all ran) | µs per task (until all ran) | vs FiberSet.run |")
  console.log("|---|---|---|---|")
  const perSecond = (name: Contender) => median(results.get(name)!.map((r) => r.perSecond))
  const baseline = perSecond("FiberSet.run")
  for (const name of contenders) {
    console.log(
      `| ${name} | ${perSecond(name).toFixed(0)} | ${(1e6 / perSecond(name)).toFixed(2)} | ${
        ratio(perSecond(name) / baseline)
      } |`
    )
  }
  const ours = perSecond("Background.fork") / baseline
  console.log(`\nBackground.fork throughput vs FiberSet.run: ${ratio(ours)} (goal ≥ 0.90×) ${verdict(ours >= 0.9)}`)
}

interface MemoryResult {
  readonly perTask: number
  readonly before: number
  readonly after: number
}

const memoryOnce = async (name: Contender): Promise<MemoryResult> => {
  const running = track(spawn(
    process.execPath,
    ["--expose-gc", "--import", LOADER, fileURLToPath(new URL("./fixtures/fork-memory.ts", import.meta.url)), name, String(SLEEPERS)],
    { stdio: ["ignore", "pipe", "pipe"] }
  ))
  const exit = await awaitExit(running, 180_000)
  const line = exit.stdout.trim().split("\n").at(-1) ?? ""
  if (exit.code !== 0 || !line.startsWith("{")) throw new Error(`fork-memory ${name} failed (${exit.code}):\n${exit.stdout}\n${exit.stderr}`)
  return JSON.parse(line) as MemoryResult
}

const memory = async () => {
  const results = new Map<Contender, Array<MemoryResult>>(contenders.map((name) => [name, []]))
  for (let trial = 0; trial < MEMORY_TRIALS; trial++) {
    for (const name of contenders) results.get(name)!.push(await memoryOnce(name))
  }
  const perTask = (name: Contender) => median(results.get(name)!.map((r) => r.perTask))
  const baseline = perTask("FiberSet.run")
  console.log(
    `\n## 2. Memory per sleeping task (${SLEEPERS} tasks sleeping 1 hour, heap used after GC, ` +
      `one child process per contender and trial, median of ${MEMORY_TRIALS} trials)\n`
  )
  console.log("| contender | bytes per task | heap before MB | heap after MB | vs FiberSet.run |")
  console.log("|---|---|---|---|---|")
  for (const name of contenders) {
    const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
    const rs = results.get(name)!
    console.log(
      `| ${name} | ${perTask(name).toFixed(0)} | ${mb(median(rs.map((r) => r.before)))} | ${mb(median(rs.map((r) => r.after)))} | ${
        ratio(perTask(name) / baseline)
      } |`
    )
  }
  const ours = perTask("Background.fork") / baseline
  console.log(`\nBackground.fork memory per task vs FiberSet.run: ${ratio(ours)} (goal ≤ 1.10×) ${verdict(ours <= 1.1)}`)
}

const main = async () => {
  console.log(`# Fork cost\n\n${machine()}`)
  await throughput()
  await memory()
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
