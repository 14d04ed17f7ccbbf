/**
 * A durable task type's workers: `concurrency` slots, each taking one task at a time from the
 * store, as one job of the supervisor. While any slot runs a task the job counts as pending work,
 * so shutdown's grace waits for it; when shutdown begins, idle slots stop taking and busy ones
 * stop after their task. A run cut off when the grace ends is interrupted, and the queue hands its
 * task back to the store (released, not failed), for the next process to run.
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Tracer from "effect/Tracer"
import { currentTaskId, type Supervisor } from "../supervisor.js"
import type { Store } from "./store.js"

/** What the store keeps of a task: its encoded payload and the span that enqueued it. */
export interface Envelope {
  readonly payload: unknown
  readonly trace?: { readonly traceId: string; readonly spanId: string } | undefined
}

const EnvelopeSchema = Schema.Struct({
  payload: Schema.Unknown,
  trace: Schema.optional(Schema.Struct({ traceId: Schema.String, spanId: Schema.String }))
})

/** A task type, with its options checked. */
export interface WorkerSpec<A, R> {
  readonly name: string
  readonly decode: (input: unknown) => Effect.Effect<A, ParseResult.ParseError>
  readonly run: (payload: A, info: RunInfo) => Effect.Effect<unknown, unknown, R>
  readonly maxAttempts: number
  readonly retry: Schedule.Schedule<unknown, unknown>
  readonly concurrency: number
  readonly timeout: Duration.Duration | undefined
}

/** What a run knows of its task. */
export interface RunInfo {
  readonly id: string
  readonly name: string
  /** 1 for the first attempt. */
  readonly attempt: number
}

/**
 * How long after failed attempt `attempt` (1-based) the next one starts; none when the schedule has
 * ended. `Schedule.run` also collects the output of the step that ends the schedule, so the
 * schedule is stepped once more than `attempt`: it allowed a retry after `attempt` only if it made
 * `attempt + 1` steps.
 */
export const retryDelay = (
  schedule: Schedule.Schedule<unknown, unknown>,
  attempt: number,
  now: number
): Effect.Effect<Option.Option<Duration.Duration>> =>
  Effect.map(
    Schedule.run(Schedule.delays(schedule), now, Array.from({ length: attempt + 1 }, (_, i) => i)),
    (delays) => (delays.length <= attempt ? Option.none() : Chunk.get(delays, attempt - 1))
  )

const failureText = (cause: Cause.Cause<unknown>): string => Cause.pretty(cause, { renderErrorCause: true })

/** The job's loop: starts the slots, and stops them taking work once shutdown begins. */
export const loop = <A, R>(
  supervisor: Supervisor,
  store: Store,
  spec: WorkerSpec<A, R>
): Effect.Effect<void, never, R> =>
  Effect.gen(function*() {
    const jobId = yield* FiberRef.get(currentTaskId)
    const queue = yield* store.factory.make({ name: spec.name, schema: Schema.Unknown })
    const heartbeatEvery = Duration.millis(Math.max(50, Duration.toMillis(store.lockExpiration) / 3))
    const { stats } = store
    let busy = 0

    const runOne = (element: unknown, meta: { readonly id: string; readonly attempts: number }) =>
      Effect.gen(function*() {
        const attempt = meta.attempts + 1
        const info: RunInfo = { id: meta.id, name: spec.name, attempt }
        const decoded = yield* Schema.decodeUnknown(EnvelopeSchema)(element).pipe(
          Effect.flatMap((envelope) => Effect.map(spec.decode(envelope.payload), (payload) => ({ envelope, payload }))),
          Effect.either
        )
        if (decoded._tag === "Left") {
          const reason = `the payload does not decode: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`
          yield* store.markDead(meta.id, attempt, reason)
          stats.dead++
          return yield* Effect.logError(`durable task "${spec.name}" ${meta.id}: ${reason}; kept as dead`)
        }
        const { envelope, payload } = decoded.right
        const heartbeat = Effect.sleep(heartbeatEvery).pipe(
          Effect.zipRight(store.heartbeat(meta.id).pipe(Effect.catchAll((error) => Effect.logWarning(error.message)))),
          Effect.forever
        )
        const attemptRun = spec.timeout === undefined
          ? spec.run(payload, info)
          : Effect.timeoutFail(spec.run(payload, info), {
            duration: spec.timeout,
            onTimeout: () => new Cause.TimeoutException(`attempt ${attempt} timed out after ${Duration.format(spec.timeout!)}`)
          })
        const traced = Effect.withSpan(attemptRun, `durable ${spec.name}`, {
          kind: "consumer",
          attributes: { "durable.task": spec.name, "durable.id": meta.id, "durable.attempt": attempt },
          links: envelope.trace === undefined ? [] : [{
            _tag: "SpanLink",
            span: Tracer.externalSpan({ traceId: envelope.trace.traceId, spanId: envelope.trace.spanId }),
            attributes: { "link.reason": "enqueued-by" }
          }]
        })
        const outcome = yield* Effect.scoped(Effect.zipRight(Effect.forkScoped(heartbeat), traced)).pipe(
          Effect.onInterrupt(() => Effect.sync(() => stats.released++)),
          Effect.exit
        )
        if (Exit.isSuccess(outcome)) {
          stats.done++
          return
        }
        // interrupted (shutdown past its grace): the queue hands the task back to the store
        if (Cause.isInterruptedOnly(outcome.cause)) return yield* outcome
        const failure = failureText(outcome.cause)
        const now = yield* Clock.currentTimeMillis
        const delay = attempt >= spec.maxAttempts ? Option.none() : yield* retryDelay(spec.retry, attempt, now)
        if (Option.isNone(delay)) {
          yield* store.markDead(meta.id, attempt, failure)
          stats.dead++
          return yield* Effect.logError(
            `durable task "${spec.name}" ${meta.id} failed attempt ${attempt} of ${spec.maxAttempts}, its last; kept as dead`,
            outcome.cause
          )
        }
        yield* store.reschedule(meta.id, attempt, failure, Duration.toMillis(delay.value))
        stats.retried++
        yield* Effect.logError(
          `durable task "${spec.name}" ${meta.id} failed attempt ${attempt} of ${spec.maxAttempts}; ` +
            `next attempt in ${Duration.format(delay.value)}`,
          outcome.cause
        )
      }).pipe(Effect.annotateLogs({ durableTask: spec.name, durableTaskId: meta.id }))

    const slotLoop = Effect.gen(function*() {
      while (!supervisor.closing) {
        const taken = yield* Effect.exit(queue.take((element, meta) =>
          // Taken as shutdown began: handed back to the store untouched (an interrupted take
          // releases its task), for the next process.
          supervisor.closing ? Effect.interrupt : Effect.suspend(() => {
            if (busy++ === 0) supervisor.setRunning(jobId, true, Date.now())
            return runOne(element, meta)
          }).pipe(Effect.ensuring(Effect.sync(() => {
            if (--busy === 0) supervisor.setRunning(jobId, false, Date.now())
          }))), { maxAttempts: spec.maxAttempts }))
        if (Exit.isFailure(taken) && !Cause.isInterruptedOnly(taken.cause)) {
          // the store failed while recording an outcome: the task stays leased, and is taken again
          // once its lease expires; this slot waits a moment, as the queue's own poller does
          yield* Effect.logError(`durable worker "${spec.name}": the store failed; retrying in 1 second`, taken.cause)
          yield* Effect.sleep("1 second")
        }
      }
    })

    const slots: Array<Fiber.RuntimeFiber<void>> = []
    for (let i = 0; i < spec.concurrency; i++) slots.push(yield* Effect.fork(slotLoop))
    // Shutdown: no slot starts a task once it has begun (an idle slot's take stays open, as an
    // interrupted take would leave the queue polling for it, and hands back what it gets); busy ones
    // finish their task (the grace waits for them). At the grace's end the job is interrupted, and
    // waits for its slots to hand back their tasks before the supervisor counts it ended and the
    // store may close.
    yield* Effect.onInterrupt(Effect.never, () => Fiber.interruptAll(slots))
  })
