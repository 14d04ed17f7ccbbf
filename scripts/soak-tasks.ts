/**
 * The soak's task half, run by scripts/soak.ts as `node --expose-gc --import tsx scripts/soak-tasks.ts`:
 * a million fire-and-forget tasks (SOAK_TASKS) forked through one supervisor in batches — most
 * trivial, some sleeping, some failing, some keyed with replacement — with the supervisor's
 * concurrency cap and queue in use. Then the layer is released and the script simply ends: it
 * never calls `process.exit`, so the process exits only if nothing is left holding it open.
 *
 * Prints one line, `soak-tasks {json}`, with what it measured.
 */
import { Duration, Effect, Logger, LogLevel } from "effect"
import { setImmediate as nextTurn } from "node:timers/promises"
import { currentSupervisor } from "../src/internal/background/service.js"
import { Background } from "../src/index.js"

const total = Number(process.env.SOAK_TASKS ?? 1_000_000)
const batchSize = 10_000
const batches = Math.ceil(total / batchSize)

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with --expose-gc")

/** Heap in use after full collections, once the event loop has let go of what it held. */
const settledHeap = async (): Promise<number> => {
  for (let i = 0; i < 4; i++) {
    await nextTurn()
    gc()
  }
  return process.memoryUsage().heapUsed
}

let ran = 0
let errorsLogged = 0
const countingLogger = Logger.make(({ logLevel }) => {
  if (LogLevel.greaterThanEqual(logLevel, LogLevel.Error)) errorsLogged++
})

/** Task `n` of the soak: 90% trivial, 8% sleeping 0–2 ms, 1% failing, 1% keyed (replacing). */
const fork = (n: number) => {
  const kind = n % 100
  if (kind < 90) return Background.fork(Effect.sync(() => ran++), "tick")
  if (kind < 98) return Background.fork(Effect.zipRight(Effect.sleep(Duration.millis(n % 3)), Effect.sync(() => ran++)), "nap")
  if (kind < 99) return Background.fork(Effect.fail(new Error("failing on purpose")), "fails")
  return Background.fork(Effect.sync(() => ran++), { name: "keyed", key: `key-${n % 7}`, onConflict: "replace" })
}

/** Live heap while a batch is still pending, sampled every tenth batch (after full collections). */
const pendingHeaps: Array<number> = []

const batch = (index: number) =>
  Effect.gen(function*() {
    const start = index * batchSize
    for (let n = start; n < Math.min(start + batchSize, total); n++) yield* fork(n)
    if (index % 10 === 5) {
      gc()
      pendingHeaps.push(process.memoryUsage().heapUsed)
    }
    yield* Background.awaitIdle
  })

const started = Date.now()
let baselineHeap = 0

const supervisorStats = await Effect.runPromise(
  Effect.gen(function*() {
    const supervisor = yield* currentSupervisor
    yield* batch(0)
    baselineHeap = yield* Effect.promise(settledHeap)
    for (let index = 1; index < batches; index++) {
      yield* batch(index)
    }
    // Compared with the baseline in the same state: the supervisor's layer still alive, all idle.
    const idleHeap = yield* Effect.promise(settledHeap)
    const snapshot = yield* Background.snapshot
    return { stats: { ...supervisor.stats }, owned: snapshot.length, held: supervisor.size, idleHeap }
  }).pipe(
    Effect.provide(Background.layer({ concurrency: 256, maxQueued: batchSize, grace: "5 seconds" })),
    Effect.provide(Logger.replace(Logger.defaultLogger, countingLogger))
  )
)
const elapsedMillis = Date.now() - started
const finalHeap = await settledHeap()
// What still holds the event loop once the layer is released (stdout and stderr always do).
const activeResources = process.getActiveResourcesInfo()

process.stdout.write(
  `soak-tasks ${
    JSON.stringify({
      total,
      ran,
      errorsLogged,
      ...supervisorStats,
      elapsedMillis,
      baselineHeap,
      pendingHeapMax: pendingHeaps.length > 0 ? Math.max(...pendingHeaps) : undefined,
      finalHeap,
      activeResources,
      printedAt: Date.now()
    })
  }\n`
)
