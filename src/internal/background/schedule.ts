/**
 * Repeating jobs and daemons as loops that run inside the supervisor. Time comes from `Clock`, so
 * `TestClock` drives every timeline in tests.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Cron from "effect/Cron"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import type * as Scope from "effect/Scope"
import * as causes from "../cause.js"
import { InvalidOptionError } from "../../Errors.js"
import * as metrics from "../metrics.js"
import * as validate from "../options.js"
import type { Supervisor } from "./supervisor.js"
import * as taskScope from "./taskScope.js"
import { currentTaskId } from "./task.js"

/** What a repeating job does when a run is still going at its next tick. */
type Overlap = "skip" | "queue"

export type Cadence =
  | { readonly _tag: "Spaced"; readonly interval: Duration.Duration }
  | { readonly _tag: "FixedRate"; readonly period: Duration.Duration; readonly overlap: Overlap }
  | { readonly _tag: "Cron"; readonly cron: Cron.Cron; readonly overlap: Overlap }

const overlaps = ["skip", "queue"] as const

export const spaced = (interval: unknown): Effect.Effect<Cadence, InvalidOptionError> =>
  Effect.map(validate.duration("spaced", interval, "positive"), (interval) => ({ _tag: "Spaced", interval }))

export const fixedRate = (period: unknown, overlap: unknown): Effect.Effect<Cadence, InvalidOptionError> =>
  Effect.map(
    validate.all({
      period: validate.duration("fixedRate", period, "positive"),
      overlap: validate.oneOf("overlap", overlap, overlaps)
    }),
    ({ overlap, period }) => ({ _tag: "FixedRate", period, overlap })
  )

const TIME_ZONE_EXPECTED = "an IANA time zone name (e.g. \"UTC\", \"Europe/Paris\")"
const CRON_EXAMPLE = "e.g. \"0 3 * * *\", at 03:00 every day"

const timeZoneOf = (timeZone: unknown): Effect.Effect<string, InvalidOptionError> => {
  if (typeof timeZone !== "string" || timeZone.length === 0) return validate.invalid("timeZone", timeZone, TIME_ZONE_EXPECTED)
  const zoneCheck = Cron.parse("* * * * *", timeZone)
  const offset = /^[+-](\d{2}):?(\d{2})$/.exec(timeZone)
  const offsetOutOfRange = offset !== null && (Number(offset[1]) > 14 || Number(offset[2]) > 59)
  return Either.isLeft(zoneCheck) || offsetOutOfRange
    ? validate.invalid("timeZone", timeZone, TIME_ZONE_EXPECTED)
    : Effect.succeed(timeZone)
}

/** The expression in `timeZone`; with no valid zone, in UTC, so its own mistakes are still found. */
const cronOf = (expression: unknown, timeZone: string): Effect.Effect<Cron.Cron, InvalidOptionError> =>
  Effect.gen(function*() {
    if (typeof expression !== "string") {
      return yield* validate.invalid("cron", expression, `a cron expression with 5 or 6 fields (${CRON_EXAMPLE})`)
    }
    const parsed = Cron.parse(expression, timeZone)
    if (Either.isLeft(parsed)) {
      return yield* validate.invalid(
        "cron",
        expression,
        `a cron expression with 5 or 6 fields (${CRON_EXAMPLE}; the one given fails with ${JSON.stringify(parsed.left.message)})`
      )
    }
    // Cron.parse accepts dates that never come ("0 0 30 2 *"); Cron.next then throws at the first tick.
    const now = yield* Clock.currentTimeMillis
    if (Either.isLeft(Either.try(() => Cron.next(parsed.right, new Date(now))))) {
      return yield* validate.invalid("cron", expression, `a cron expression that matches some date (${CRON_EXAMPLE})`)
    }
    return parsed.right
  })

export const cron = (
  expression: unknown,
  timeZone: unknown,
  overlap: unknown
): Effect.Effect<Cadence, InvalidOptionError> =>
  Effect.flatMap(Effect.either(timeZoneOf(timeZone)), (zone) =>
    Effect.map(
      validate.all({
        timeZone: zone,
        cron: cronOf(expression, Either.getOrElse(zone, () => "UTC")),
        overlap: validate.oneOf("overlap", overlap, overlaps)
      }),
      ({ cron, overlap }) => ({ _tag: "Cron", cron, overlap })
    ))

/** When the first run starts, for a job started at `now`. */
const firstTick = (cadence: Cadence, now: number): number =>
  cadence._tag === "Cron" ? Cron.next(cadence.cron, new Date(now)).getTime() : now

/**
 * When the run after the one scheduled at `tick` (which ended at `end`) starts. With `skip`, ticks
 * that fell inside the run are dropped; with `queue`, each of them still runs, back to back.
 */
const nextTick = (cadence: Cadence, tick: number, end: number): number => {
  switch (cadence._tag) {
    case "Spaced":
      return end + Duration.toMillis(cadence.interval)
    case "FixedRate": {
      const period = Duration.toMillis(cadence.period)
      if (cadence.overlap === "queue") return tick + period
      return tick + period * Math.max(1, Math.ceil((end - tick) / period))
    }
    case "Cron":
      return Cron.next(cadence.cron, new Date(cadence.overlap === "queue" ? tick : Math.max(tick, end - 1)))
        .getTime()
  }
}

/**
 * How many ticks after the run scheduled at `tick` (which ended at `end`) {@link nextTick} drops:
 * with `skip`, those that fell inside the run. (Cron ticks are counted one by one, up to 10,000.)
 */
const skippedTicks = (cadence: Cadence, tick: number, end: number): number => {
  switch (cadence._tag) {
    case "Spaced":
      return 0
    case "FixedRate": {
      if (cadence.overlap === "queue") return 0
      const period = Duration.toMillis(cadence.period)
      return Math.max(1, Math.ceil((end - tick) / period)) - 1
    }
    case "Cron": {
      if (cadence.overlap === "queue") return 0
      let skipped = 0
      let next = Cron.next(cadence.cron, new Date(tick))
      while (next.getTime() <= end - 1 && skipped < 10_000) {
        skipped++
        next = Cron.next(cadence.cron, next)
      }
      return skipped
    }
  }
}

/**
 * Whether the current fiber itself has been interrupted (shutdown, a handle's `interrupt`). A run
 * that ends in an interruption of its own making — `Effect.interrupt`, or joining a fiber someone
 * interrupted — has not been: for the job, that is a failure like any other.
 */
const interruptedFromOutside: Effect.Effect<boolean> = Effect.withFiberRuntime((fiber) =>
  Effect.succeed(isInterruptedFromOutside(fiber))
)

/** {@link interruptedFromOutside}, for a fiber at hand. */
const isInterruptedFromOutside = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  // (what `Effect.descriptor`'s interruptors are made of, without making the descriptor)
  !causes.isEmpty(fiber.getFiberRef(FiberRef.interruptedCause))

const reportRun = (supervisor: Supervisor, name: string) => (cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  Effect.flatMap(interruptedFromOutside, (interrupted) => {
    if (interrupted && causes.isInterruptedOnly(cause)) return Effect.interrupt
    supervisor.stats.jobFailures++
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      supervisor.jobs.failed(name, cause, now)
      return Effect.logError(`schedule "${name}" run failed; the schedule goes on`, cause)
    })
  })

/**
 * Records each run of a job in the task metrics as a run of `series`: started (`lag`: how late
 * after its tick, for a schedule), then how it ended and how long it took — interrupted only when
 * the job was interrupted from outside (shutdown, a handle); an interruption of the run's own
 * making is a failure, as for the job's report. Called in the run's own fiber by
 * `taskScope.perRun`, in the same step that closes the run's scope.
 */
const observer = (series: metrics.Series, lag: (start: number) => number | undefined): taskScope.RunObserver => ({
  started: (fiber) => {
    const start = clockOf(fiber).unsafeCurrentTimeMillis()
    metrics.runStarted(series, lag(start))
    return start
  },
  ended: (fiber, exit, start) => {
    const outcome = exit._tag === "Success"
      ? "succeeded"
      : isInterruptedFromOutside(fiber) && causes.isInterruptedOnly(exit.cause)
      ? "interrupted"
      : "failed"
    metrics.runEnded(series, outcome, clockOf(fiber).unsafeCurrentTimeMillis() - start)
  }
})

const clockOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Clock.Clock =>
  Context.get(fiber.currentDefaultServices, Clock.Clock)

/**
 * Runs `run` on `cadence` forever, each run in its own scope (`taskScope.perRun`); a failing run
 * is logged and the next tick still comes.
 */
export const repeatLoop = <E, R>(
  supervisor: Supervisor,
  name: string,
  cadence: Cadence,
  run: Effect.Effect<unknown, E, R>
): Effect.Effect<never, never, R | Scope.Scope> =>
  Effect.gen(function*() {
    const id = yield* FiberRef.get(currentTaskId)
    let tick = firstTick(cadence, yield* Clock.currentTimeMillis)
    const series = metrics.series("schedule", name)
    yield* metrics.notices
    metrics.nextRun(series, tick)
    const report = reportRun(supervisor, name)
    const reported = taskScope.perRun(
      run,
      observer(series, (start) => start - tick),
      (exit) => exit._tag === "Success" ? Effect.void : report(exit.cause)
    )
    while (true) {
      const now = yield* Clock.currentTimeMillis
      supervisor.jobs.nextRun(name, tick)
      if (tick > now) yield* Effect.sleep(Duration.millis(tick - now))
      if (supervisor.closing) return yield* Effect.never
      supervisor.jobs.nextRun(name, undefined)
      supervisor.setRunning(id, true, yield* Clock.currentTimeMillis)
      yield* reported
      const end = yield* Clock.currentTimeMillis
      supervisor.setRunning(id, false, end)
      metrics.skippedTicks(series, skippedTicks(cadence, tick, end))
      tick = nextTick(cadence, tick, end)
      metrics.nextRun(series, tick)
    }
  })

/**
 * Exponential backoff from `base`, doubling up to `cap`, that starts over once the daemon has run
 * for `healthy` since its last restart. (`Schedule.resetAfter` counts from the schedule's first
 * step instead, so a daemon failing without pause would drop back to `base` every minute.)
 */
const backoff = (base: number, cap: number, healthy: number): Schedule.Schedule<Duration.Duration, unknown> =>
  Schedule.makeWithState(
    { attempt: 0, restartedAt: Number.NEGATIVE_INFINITY },
    (now, _input, state) => {
      const attempt = now - state.restartedAt >= healthy ? 0 : state.attempt
      const delay = Math.min(base * 2 ** attempt, cap)
      return Effect.succeed([
        { attempt: delay < cap ? attempt + 1 : attempt, restartedAt: now + delay },
        Duration.millis(delay),
        ScheduleDecision.continueWith(ScheduleInterval.after(now + delay))
      ] as const)
    }
  )

/**
 * The default restart policy for daemons: exponential backoff from 100 ms, capped at 30 s, and
 * started over after a minute without failures.
 */
export const defaultRestart: Schedule.Schedule<Duration.Duration, unknown> = backoff(100, 30_000, 60_000)

/**
 * Runs a daemon, each run in its own scope (`taskScope.perRun`), and restarts it by `restart`
 * after each failure or defect. Every failure is logged; when the restart schedule is exhausted
 * the daemon ends with its last failure, logged as such. Each run goes on to the next through
 * `perRun`'s own handler, so an interrupted daemon unwinds through that one frame (and stopping
 * thousands at once costs little beyond Effect's own interruption).
 */
export const daemonLoop = <E, R, Out, RS>(
  supervisor: Supervisor,
  name: string,
  effect: Effect.Effect<unknown, E, R>,
  restart: Schedule.Schedule<Out, Cause.Cause<E>, RS>
): Effect.Effect<void, E, R | RS | Scope.Scope> =>
  Effect.withFiberRuntime((fiber) => {
    const id = fiber.getFiberRef(currentTaskId)
    const series = metrics.series("daemon", name)
    let failures = 0
    // (made at the first failure: most daemons never need one)
    let driver: Schedule.ScheduleDriver<Out, Cause.Cause<E>, RS> | undefined
    const afterFailure = (cause: Cause.Cause<E>): Effect.Effect<void, E, RS> =>
      Effect.gen(function*() {
        if (causes.isInterruptedOnly(cause) && isInterruptedFromOutside(fiber)) return yield* Effect.failCause(cause)
        driver ??= yield* Schedule.driver(restart)
        failures++
        supervisor.stats.jobFailures++
        supervisor.jobs.failed(name, cause, yield* Clock.currentTimeMillis)
        supervisor.setState(id, "restarting")
        yield* Effect.logError(`daemon "${name}" failed (failure #${failures})`, cause)
        // The policy both decides and waits: it answers after the backoff, or at once when exhausted.
        const next = yield* Effect.option(driver.next(cause))
        if (Option.isNone(next)) {
          yield* Effect.logError(
            `daemon "${name}" is stopped: its restart policy is exhausted after ${failures} failure(s)`
          )
          return yield* Effect.failCause(cause)
        }
        yield* Effect.logInfo(`daemon "${name}" restarting after failure #${failures}`)
        metrics.restarted(series)
      })
    const watch = observer(series, () => undefined)
    const afterRun = (exit: Exit.Exit<unknown, E>): Effect.Effect<void, E, R | RS | Scope.Scope> =>
      exit._tag === "Success"
        ? Effect.logWarning(`daemon "${name}" returned after ${failures} failure(s); it is not restarted`)
        : Effect.zipRight(afterFailure(exit.cause), run)
    const run: Effect.Effect<void, E, R | RS | Scope.Scope> = Effect.suspend(() => {
      supervisor.setState(id, "running", clockOf(fiber).unsafeCurrentTimeMillis())
      return taskScope.perRun(effect, watch, afterRun)
    })
    return Effect.zipRight(metrics.notices, run)
  })
