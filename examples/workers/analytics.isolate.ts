/**
 * The isolated-loop example's worker module: an analytics batcher running its own Effect runtime
 * on its own thread. It collects events and appends one line per flushed batch to LOG_FILE — when
 * BATCH_SIZE events are held, every FLUSH_MS, and, through its finalizer, at shutdown.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import { appendFile } from "node:fs/promises"
import * as Offload from "../../src/Offload.js"
import { AnalyticsEvent } from "./analytics.events.js"

const logFile = process.env.LOG_FILE ?? "./log.txt"
const batchSize = Number(process.env.BATCH_SIZE ?? 10)
const flushEvery = Duration.millis(Number(process.env.FLUSH_MS ?? 1000))

export default Offload.isolated(AnalyticsEvent, (mailbox) =>
  Effect.gen(function*() {
    const held = yield* Ref.make<ReadonlyArray<AnalyticsEvent>>([])
    const flush = Effect.gen(function*() {
      const batch = yield* Ref.getAndSet(held, [])
      if (batch.length === 0) return
      const ids = batch.map((event) => event.id).join(",")
      yield* Effect.promise(() => appendFile(logFile, `batch of ${batch.length}: ${ids}\n`))
    })
    // Whatever is held when the thread is asked to stop is written before it goes.
    yield* Effect.addFinalizer(() => flush)
    yield* Effect.forkScoped(Effect.repeat(flush, Schedule.spaced(flushEvery)))
    while (true) {
      const event = yield* Queue.take(mailbox)
      const size = (yield* Ref.updateAndGet(held, (events) => [...events, event])).length
      if (size >= batchSize) yield* flush
    }
  }).pipe(Effect.scoped))
