/**
 * A durable task type's workers, as one job of the supervisor: one fetcher that leases tasks from
 * the store in batches (as many as there are free slots, in one statement) and runs each in its own
 * fiber, up to `concurrency` at once. A task enqueued during a request of this process is handed
 * to the fetcher once its response is written, and claimed with the others in one statement (those
 * it has no free slot for go back to the store, together); successes are recorded in groups (one
 * statement for those that end within a few milliseconds; the slot is free at once); the leases of
 * running tasks are renewed by one fiber for all of them.
 *
 * While any task runs, the job counts as pending work, so shutdown's grace waits for it; when
 * shutdown begins, the fetcher stops taking. A run cut off when the grace ends is interrupted, and
 * its task is handed back to the store (released, not failed), for the next process to run.
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
import * as Either from "effect/Either"
import * as Tracer from "effect/Tracer"
import type { Supervisor } from "../background/supervisor.js"
import { currentTaskId } from "../background/task.js"
import { nativeTracer } from "../background/taskFiber.js"
import * as metrics from "../metrics.js"
import type { Store, Taken } from "./store.js"

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

/**
 * Keeps the durable gauge of the metrics (`Metrics.durableTasks`) up to date: one count of the
 * store by task name and state (one statement, for every task type) now, then every ten poll
 * intervals and no more often than once a second, while the workers run. A count that fails is
 * skipped (the workers report the store's failures).
 */
export const countLoop = (store: Store): Effect.Effect<never> =>
  Effect.suspend(() => {
    let previous: metrics.Counted = new Set()
    const every = Duration.millis(Math.max(1000, 10 * Duration.toMillis(store.pollInterval)))
    const count = store.counts.pipe(
      Effect.map((counts) => {
        previous = metrics.durableCounts(counts, previous)
      }),
      Effect.zipRight(metrics.notices),
      Effect.ignore
    )
    return count.pipe(Effect.zipRight(Effect.sleep(every)), Effect.forever)
  })

/** How long successes gather before they are recorded together. */
const GROUP_WINDOW = Duration.millis(2)

/** The job: the fetcher, the runs, and their shared lease renewal and success recording. */
export const loop = <A, R>(
  supervisor: Supervisor,
  store: Store,
  spec: WorkerSpec<A, R>
): Effect.Effect<void, never, R> =>
  Effect.gen(function*() {
    const jobId = yield* FiberRef.get(currentTaskId)
    const { stats } = store
    const series = metrics.series("durable", spec.name)
    yield* metrics.notices
    const clock = yield* Effect.clock
    const decodeEnvelope = Schema.decodeUnknownEither(EnvelopeSchema)
    const renewEvery = Duration.millis(Math.max(50, Duration.toMillis(store.lockExpiration) / 3))

    /** Tasks leased to this process by this job (sequences), renewed while they run. */
    const leased = new Set<number>()
    const runs = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    /** Held tasks whose response is written, waiting to be claimed. */
    let handOffs: Array<string> = []
    /** Whether the store may hold available tasks: the poll interval passed, an enqueue said so, or the last take was full. */
    let pollDue = true
    /** Whether the last take was full: more tasks are likely waiting in the store. */
    let backlog = false
    let stopped = false
    let running = 0
    const wakeUp = Effect.unsafeMakeLatch(false)
    const wake = () => wakeUp.unsafeOpen()

    // Successes are recorded in groups, by one fiber, a moment after the first of a group: the
    // run's slot is free as soon as it ends, and its task stays leased here (its lease renewed)
    // until the group is written. A crash in between runs it again, as any crash before a record.
    let completions: Array<Taken> = []
    const completionsDue = Effect.unsafeMakeLatch(false)
    const flush = Effect.suspend(() => {
      const group = completions
      completions = []
      if (group.length === 0) return Effect.void
      return store.complete(group.map((task) => task.sequence)).pipe(
        Effect.matchCauseEffect({
          onSuccess: () =>
            Effect.sync(() => {
              for (const task of group) leased.delete(task.sequence)
              stats.done += group.length
            }),
          onFailure: (cause) => {
            // not renewed: each lease expires and its task runs again
            for (const task of group) leased.delete(task.sequence)
            return Effect.logError(
              `durable worker "${spec.name}": the store failed while recording ${group.length} successful run(s) ` +
                `(${group.map((task) => task.id).join(", ")}); they run again once their lease expires ` +
                `(${Duration.format(store.lockExpiration)})`,
              cause
            )
          }
        })
      )
    }).pipe(Effect.uninterruptible)
    const completer = Effect.gen(function*() {
      while (true) {
        yield* completionsDue.await
        completionsDue.unsafeClose()
        yield* Effect.sleep(GROUP_WINDOW)
        yield* flush
      }
    })

    /** The stored envelope, checked: JSON with the envelope's shape, or why not. */
    const parseEnvelope = (element: string): Effect.Effect<Envelope, string> => {
      let json: unknown
      try {
        json = JSON.parse(element)
      } catch (cause) {
        return Effect.fail(`the stored task is not JSON (${cause instanceof Error ? cause.message : String(cause)})`)
      }
      const envelope = decodeEnvelope(json)
      return Either.isRight(envelope)
        ? Effect.succeed(envelope.right)
        : Effect.fail(`the payload does not decode: ${ParseResult.TreeFormatter.formatErrorSync(envelope.left)}`)
    }

    const runOne = (task: Taken) => {
      // one attempt in the metrics, ended once: by its outcome, or as interrupted
      const metered = new metrics.Run(series, clock)
      metrics.durableAttempt(series)
      return Effect.gen(function*() {
        const attempt = task.attempts + 1
        const info: RunInfo = { id: task.id, name: spec.name, attempt }
        const decoded = yield* parseEnvelope(task.element).pipe(
          Effect.flatMap((envelope) =>
            Effect.map(spec.decode(envelope.payload), (payload) => ({ envelope, payload })).pipe(
              Effect.mapError((error) => `the payload does not decode: ${ParseResult.TreeFormatter.formatErrorSync(error)}`)
            )
          ),
          Effect.either
        )
        if (decoded._tag === "Left") {
          metered.end("failed")
          leased.delete(task.sequence)
          yield* store.markDead(task.id, attempt, decoded.left)
          stats.dead++
          return yield* Effect.logError(`durable task "${spec.name}" ${task.id}: ${decoded.left}; kept as dead`)
        }
        const { envelope, payload } = decoded.right
        const attemptRun = spec.timeout === undefined
          ? spec.run(payload, info)
          : Effect.timeoutFail(spec.run(payload, info), {
            duration: spec.timeout,
            onTimeout: () => new Cause.TimeoutException(`attempt ${attempt} timed out after ${Duration.format(spec.timeout!)}`)
          })
        // (no span under Effect's built-in tracer, which exports nothing; no stack trace of this
        // module's frames, which would tell a reader of the trace nothing)
        const traced = (yield* Effect.tracer) === nativeTracer ? attemptRun : Effect.withSpan(attemptRun, `durable ${spec.name}`, {
          kind: "consumer",
          captureStackTrace: false,
          attributes: { "durable.task": spec.name, "durable.id": task.id, "durable.attempt": attempt },
          links: envelope.trace === undefined ? [] : [{
            _tag: "SpanLink",
            span: Tracer.externalSpan({ traceId: envelope.trace.traceId, spanId: envelope.trace.spanId }),
            attributes: { "link.reason": "enqueued-by" }
          }]
        })
        const outcome = yield* traced.pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              stats.released++
              metrics.durableReleased(series)
              metered.end("interrupted")
            })
          ),
          Effect.exit
        )
        if (Exit.isSuccess(outcome)) metered.end("succeeded")
        else if (!Cause.isInterruptedOnly(outcome.cause)) metered.end("failed")
        if (Exit.isSuccess(outcome)) {
          completions.push(task)
          completionsDue.unsafeOpen()
          return
        }
        // interrupted (shutdown past its grace): the job hands the task back to the store
        if (Cause.isInterruptedOnly(outcome.cause)) return yield* outcome
        leased.delete(task.sequence)
        const failure = failureText(outcome.cause)
        const now = yield* Clock.currentTimeMillis
        const delay = attempt >= spec.maxAttempts ? Option.none() : yield* retryDelay(spec.retry, attempt, now)
        if (Option.isNone(delay)) {
          yield* store.markDead(task.id, attempt, failure)
          stats.dead++
          return yield* Effect.logError(
            `durable task "${spec.name}" ${task.id} failed attempt ${attempt} of ${spec.maxAttempts}, its last; kept as dead`,
            outcome.cause
          )
        }
        yield* store.reschedule(task.id, attempt, failure, Duration.toMillis(delay.value))
        stats.retried++
        yield* Effect.logError(
          `durable task "${spec.name}" ${task.id} failed attempt ${attempt} of ${spec.maxAttempts}; ` +
            `next attempt in ${Duration.format(delay.value)}`,
          outcome.cause
        )
      }).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.logError(
            `durable worker "${spec.name}": the store failed while recording the outcome of ${task.id}; ` +
              `it runs again once its lease expires (${Duration.format(store.lockExpiration)})`,
            cause
          )
        ),
        Effect.ensuring(Effect.sync(() => {
          metered.end("interrupted")
          if (--running === 0) supervisor.setRunning(jobId, false, Date.now())
          wake()
        })),
        Effect.annotateLogs({ durableTask: spec.name, durableTaskId: task.id })
      )
    }

    /** Starts leased tasks: the slots promised to them become running ones at once. */
    const startAll = (tasks: ReadonlyArray<Taken>) =>
      Effect.suspend(() => {
        if (running === 0 && tasks.length > 0) supervisor.setRunning(jobId, true, Date.now())
        running += tasks.length
        return Effect.forEach(tasks, (task) =>
          Effect.map(Effect.forkDaemon(runOne(task)), (fiber) => {
            runs.add(fiber)
            fiber.addObserver(() => runs.delete(fiber))
          }), { discard: true })
      })

    /** Leases hand-offs and, when due, available tasks: up to `free` in all, registered as leased before anything can interrupt. */
    const acquire = (ids: ReadonlyArray<string>, size: number) =>
      Effect.gen(function*() {
        const claimed = yield* store.claimHeld(ids)
        const taken = size > 0 ? yield* store.take(spec.name, spec.maxAttempts, size) : []
        for (const task of claimed) leased.add(task.sequence)
        for (const task of taken) leased.add(task.sequence)
        return { claimed, taken }
      }).pipe(Effect.uninterruptible)

    /** Releases held tasks to the store, for any worker; if that fails, they run once their hold expires. */
    const letGo = (ids: ReadonlyArray<string>) =>
      store.releaseHeld(ids).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning(`${error.message}; those tasks run once their hold expires (${Duration.format(store.lockExpiration)})`)
        )
      )

    const fetcher = Effect.gen(function*() {
      while (!supervisor.closing) {
        wakeUp.unsafeClose()
        // Hand-offs fill the free slots; the others are let go to the store in one statement,
        // for any worker of any process (this one's included, once a slot frees).
        const slots = spec.concurrency - running
        const ids = handOffs.slice(0, Math.max(0, slots))
        const excess = handOffs.slice(ids.length)
        handOffs = []
        if (excess.length > 0) {
          yield* letGo(excess)
          pollDue = backlog = true
        }
        const free = slots - ids.length
        // With a backlog in the store (the last take was full), take once half the slots are free
        // rather than one slot at a time: a take costs about the same for one task as for several.
        const size = free > 0 && pollDue && (!backlog || free >= Math.ceil(spec.concurrency / 2) || running === 0) ? free : 0
        if (ids.length === 0 && size === 0) {
          if (excess.length === 0) yield* wakeUp.await
          continue
        }
        const got = yield* Effect.either(acquire(ids, size))
        if (got._tag === "Left") {
          // the store failed: held tasks stay held until their hold expires, then are taken as
          // any other; the fetcher waits a moment before it tries again
          yield* Effect.logError(`durable worker "${spec.name}": the store failed; retrying in 1 second`, got.left)
          yield* Effect.sleep("1 second")
          pollDue = true
          continue
        }
        const tasks = [...got.right.claimed, ...got.right.taken]
        if (size > 0) pollDue = backlog = got.right.taken.length === size
        if (supervisor.closing) {
          // taken as shutdown began: handed back untouched, for the next process
          for (const task of tasks) leased.delete(task.sequence)
          yield* store.release(tasks.map((task) => task.sequence)).pipe(
            Effect.catchAll((error) => Effect.logWarning(error.message))
          )
          break
        }
        yield* startAll(tasks)
      }
    })

    const poller = Effect.sleep(store.pollInterval).pipe(
      Effect.zipRight(Effect.sync(() => {
        pollDue = true
        wake()
      })),
      Effect.forever
    )
    const renewer = Effect.sleep(renewEvery).pipe(
      Effect.zipRight(Effect.suspend(() => store.renew(Array.from(leased)))),
      Effect.catchAll((error) => Effect.logWarning(error.message)),
      Effect.forever
    )

    /** Stops taking: held tasks not yet claimed are let go, to be taken by any worker. */
    const stop = Effect.suspend(() => {
      stopped = true
      const left = handOffs
      handOffs = []
      return letGo(left)
    })

    store.locals.set(spec.name, {
      handOff: (id) => {
        // once the workers stop taking, the caller releases the task for any worker instead
        if (stopped || supervisor.closing) return false
        handOffs.push(id)
        wake()
        return true
      },
      wake: () => {
        pollDue = true
        wake()
      }
    })
    const helpers = [
      yield* Effect.fork(completer),
      yield* Effect.fork(poller),
      yield* Effect.fork(renewer)
    ]
    const fetching = yield* Effect.fork(fetcher.pipe(Effect.zipRight(stop)))
    // Shutdown: the fetcher stops taking once it begins; running tasks finish (the grace waits for
    // them). At the grace's end the job is interrupted: runs still going are interrupted (released),
    // and every task of this type still leased here is handed back before the supervisor counts the
    // job ended and the store may close.
    yield* Effect.onInterrupt(Effect.never, () =>
      Effect.gen(function*() {
        store.locals.delete(spec.name)
        yield* Fiber.interrupt(fetching)
        yield* stop
        yield* Fiber.interruptAll(Array.from(runs))
        yield* Fiber.interruptAll(helpers)
        yield* flush
        yield* store.releaseAll(spec.name).pipe(Effect.catchAll((error) => Effect.logWarning(error.message)))
      }))
  })
