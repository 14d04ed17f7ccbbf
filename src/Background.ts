/**
 * The server-lifetime supervisor. Every background fiber — a fire-and-forget fork, an
 * after-response task, a daemon, a repeating job — is owned by it, reported when it fails, and
 * drained, then interrupted with its finalizers run, when the supervisor's layer is released.
 *
 * @since 0.1.0
 * @module
 */
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { dual } from "effect/Function"
import type { InvalidOptionError, QueueFullError, ShuttingDownError } from "./Errors.js"
import * as validate from "./internal/options.js"
import * as service from "./internal/background/service.js"
import * as internalSchedule from "./internal/background/schedule.js"
import type { SupervisorStats } from "./internal/background/supervisor.js"
import type { TaskHandle, TaskInfo } from "./internal/background/task.js"

// Documented where they are declared, which is where the API reference and editors read it.
export type { SupervisorStats, TaskHandle, TaskInfo }

/**
 * Options of {@link layer}; each is validated when the layer is built.
 *
 * @example
 * ```ts
 * import { Background } from "effect-background"
 *
 * const options: Background.Options = { concurrency: 8, maxQueued: 100, grace: "5 seconds" }
 * export const BackgroundLive = Background.layer(options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How many plain tasks may run at once; `"unbounded"` (the default) never queues. */
  readonly concurrency?: number | "unbounded" | undefined
  /** How many tasks may wait for a slot before `fork` fails with `QueueFullError`. Default 1000. */
  readonly maxQueued?: number | undefined
  /** How long pending work may keep running once shutdown begins. Default 5 seconds. */
  readonly grace?: Duration.DurationInput | undefined
  /** How long to wait for interrupted fibers' finalizers before giving up on them. Default 5 seconds. */
  readonly interruptTimeout?: Duration.DurationInput | undefined
}

/**
 * The supervisor service. Most code uses the module's functions ({@link fork}, {@link awaitIdle},
 * {@link snapshot}) rather than this interface directly.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const program = Effect.gen(function*() {
 *   const background = yield* Background.Background
 *   const tasks = yield* background.snapshot
 *   yield* Effect.log(`${tasks.length} tasks running`)
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface BackgroundService {
  /** Waits until no task, after-response task or schedule run is pending (daemons excluded). */
  readonly awaitIdle: Effect.Effect<void>
  /** Every task the supervisor owns right now. */
  readonly snapshot: Effect.Effect<ReadonlyArray<TaskInfo>>
  /** Whether shutdown has begun (new forks are then rejected). */
  readonly isShuttingDown: Effect.Effect<boolean>
  /** What the supervisor has counted so far: finished, failed, interrupted, rejected, skipped tasks and job figures. */
  readonly stats: Effect.Effect<SupervisorStats>
}

/**
 * The tag of the supervisor service, provided by {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const shuttingDown = Effect.flatMap(Background.Background, (service) => service.isShuttingDown)
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Background extends Context.Tag("effect-background/Background")<Background, BackgroundService>() {}

/**
 * Builds the supervisor. Releasing the layer runs the shutdown phases: new forks are rejected,
 * pending work gets the `grace` period, then everything left (daemons and schedules too) is
 * interrupted in parallel and its finalizers run.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const program = Effect.gen(function*() {
 *   yield* Background.fork(Effect.log("sent"), "send-email")
 *   yield* Background.awaitIdle
 * }).pipe(Effect.provide(Background.layer({ grace: "2 seconds" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Background, InvalidOptionError> =>
  service.layer(service.resolveOptions(options), false)

/**
 * Options of {@link fork}: a name, or a name with a key.
 *
 * @example
 * ```ts
 * import type { Background } from "effect-background"
 *
 * const options: Background.ForkOptions = { name: "refresh-cache", key: "cache", onConflict: "replace" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type ForkOptions = string | {
  /** Shown in logs, snapshots, spans and the shutdown report. */
  readonly name: string
  /** At most one task per key runs at a time. */
  readonly key?: string | undefined
  /**
   * When a task with the same key exists: `"keep"` it and skip this one (the default), or
   * `"replace"` it (interrupt it, wait for its finalizers, then start this one).
   */
  readonly onConflict?: "keep" | "replace" | undefined
}

/** What {@link fork} returns: the task brings its own `Scope`, so the caller needs none for it. */
type Forked<R> = Effect.Effect<
  TaskHandle,
  QueueFullError | ShuttingDownError | InvalidOptionError,
  Exclude<R, Scope.Scope> | Background
>

/** A valid job name, for the message that refuses a bad one. */
const JOB_NAME_EXAMPLE = "refresh-cache"

const forkImpl = <A, E, R>(self: Effect.Effect<A, E, R>, options: ForkOptions): Forked<R> => {
  if (typeof options !== "string") return forkWithOptions(self, options)
  const spec = { name: options, kind: "task", effect: self } as const
  // The common case, a name alone, is checked and submitted in one step of the calling fiber.
  return Effect.withFiberRuntime<TaskHandle, QueueFullError | ShuttingDownError | InvalidOptionError, Exclude<R, Scope.Scope> | Background>(
    (fiber) => {
      if (!validate.isName(options)) return validate.invalid("name", options, validate.nameExpected("send-email"))
      const background = Context.getOption(fiber.currentContext, Background)
      return background._tag === "Some"
        ? service.supervisorOf(background.value).submitFrom(fiber, spec)
        : Effect.flatMap(service.currentSupervisor, (supervisor) => supervisor.submit(spec)) // dies: no Background provided
    }
  )
}

const forkWithOptions = <A, E, R>(self: Effect.Effect<A, E, R>, options: Exclude<ForkOptions, string>): Forked<R> =>
  Effect.flatMap(service.currentSupervisor, (supervisor): Forked<R> =>
    Effect.gen(function*() {
      const spec = yield* validate.record("options", options, "{ name: \"refresh\", key: \"cache\" }")
      const { name } = yield* validate.all({
        name: validate.name("name", spec.name, "send-email"),
        key: spec.key === undefined ? Effect.void : validate.name("key", spec.key, "user-42"),
        onConflict: spec.onConflict === undefined ? Effect.void : validate.oneOf("onConflict", spec.onConflict, ["keep", "replace"])
      })
      return yield* supervisor.submit({
        name,
        kind: "task",
        effect: self,
        key: spec.key,
        onConflict: spec.onConflict
      })
    }))

/**
 * Starts a named fire-and-forget task that outlives the calling request but not the server. The
 * task runs in its own `Scope` (so it needs none from the caller) under a root span linked to the
 * caller's span; its failure is logged once with its name and never reaches the caller. Fails with
 * `QueueFullError` when the cap and queue are full, or `ShuttingDownError` once shutdown has begun.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const track = (event: string) => Effect.log(`tracked ${event}`)
 *
 * // data-first
 * const a = Background.fork(track("signup"), "analytics")
 * // data-last, keyed: a second refresh while one runs is skipped
 * const b = Effect.log("refreshing").pipe(Background.fork({ name: "refresh", key: "cache" }))
 * ```
 *
 * @since 0.1.0
 * @category forking
 */
export const fork: {
  (options: ForkOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => Forked<R>
  <A, E, R>(self: Effect.Effect<A, E, R>, options: ForkOptions): Forked<R>
} = dual(2, forkImpl)

/**
 * Waits until no task, after-response task or schedule run is pending. Daemons do not count.
 * Tests use it instead of sleeping.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const program = Effect.gen(function*() {
 *   yield* Background.fork(Effect.log("work"), "work")
 *   yield* Background.awaitIdle
 * })
 * ```
 *
 * @since 0.1.0
 * @category observing
 */
export const awaitIdle: Effect.Effect<void, never, Background> = Effect.flatMap(Background, (s) => s.awaitIdle)

/**
 * Every task the supervisor owns right now: name, key, id, kind, state and start time.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const names = Effect.map(Background.snapshot, (tasks) => tasks.map((task) => task.name))
 * ```
 *
 * @since 0.1.0
 * @category observing
 */
export const snapshot: Effect.Effect<ReadonlyArray<TaskInfo>, never, Background> = Effect.flatMap(
  Background,
  (s) => s.snapshot
)

/**
 * What the supervisor has counted since it started — for metrics and health pages.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const failures = Effect.map(Background.stats, (stats) => stats.failed + stats.jobFailures)
 * ```
 *
 * @since 0.1.0
 * @category observing
 */
export const stats: Effect.Effect<SupervisorStats, never, Background> = Effect.flatMap(Background, (s) => s.stats)

/**
 * Options of {@link daemon} and {@link startDaemon}: the daemon's name (unique among jobs) and when
 * to restart it. A bare string, as for {@link fork}, is the name with the default restart.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import type { Background } from "effect-background"
 *
 * const options: Background.DaemonOptions = { name: "consumer", restart: Schedule.spaced("1 second") }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DaemonOptions {
  /** Shown in logs, snapshots, spans and the shutdown report; unique among running jobs. */
  readonly name: string
  /**
   * When to restart after a failure or defect; the input is the failure's `Cause`. When the
   * schedule ends, the daemon stays stopped (logged as an error). Default: exponential backoff from
   * 100 ms capped at 30 s, reset after a minute without failures, forever.
   */
  readonly restart?: Schedule.Schedule<unknown, Cause.Cause<unknown>> | undefined
}

/** What a job's layer form ({@link daemon}, {@link every}, {@link cron}) returns. */
type JobLayer<R> = Layer.Layer<never, InvalidOptionError, Background | Exclude<R, Scope.Scope>>

/** What a job's Effect form ({@link startDaemon}, {@link startEvery}, {@link startCron}) returns. */
type JobStarted<R> = Effect.Effect<
  TaskHandle,
  InvalidOptionError | ShuttingDownError,
  Background | Exclude<R, Scope.Scope>
>

/** A valid daemon's options, for the message that refuses options that are not an object. */
const DAEMON_OPTIONS_EXAMPLE = "\"consumer\" or { name: \"consumer\", restart: Schedule.spaced(\"1 second\") }"

const startDaemonImpl = <A, E, R>(self: Effect.Effect<A, E, R>, options: string | DaemonOptions): JobStarted<R> =>
  Effect.gen(function*() {
    const given: Partial<DaemonOptions> = typeof options === "string"
      ? { name: options }
      : yield* validate.record("options", options, DAEMON_OPTIONS_EXAMPLE)
    const restart = validate.orDefault(given.restart, internalSchedule.defaultRestart)
    const { validName } = yield* validate.all({
      validName: validate.name("name", given.name, JOB_NAME_EXAMPLE),
      restart: Schedule.isSchedule(restart)
        ? Effect.void
        : validate.invalid("restart", restart, "a Schedule (e.g. Schedule.exponential(\"100 millis\"))")
    })
    return yield* service.startJob(
      validName,
      "daemon",
      (supervisor) => internalSchedule.daemonLoop(supervisor, validName, self, restart)
    )
  })

/**
 * A layer that starts a long-running effect with the server and interrupts it (finalizers run) at
 * shutdown, after the grace period. A failure or defect is logged and the daemon is restarted by
 * its `restart` schedule; it is never silently dead. The options are its name, or its name and
 * restart schedule; they are validated when the layer is built.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Background } from "effect-background"
 *
 * const hello = Effect.log("Hello").pipe(Effect.repeat(Schedule.spaced("5 seconds")))
 *
 * // data-first, with a name alone
 * export const HelloDaemon = Background.daemon(hello, "hello")
 * // data-last, with a restart schedule
 * export const Watcher = Effect.log("watching").pipe(
 *   Effect.forever,
 *   Background.daemon({ name: "watcher", restart: Schedule.exponential("200 millis") })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const daemon: {
  (options: string | DaemonOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => JobLayer<R>
  <A, E, R>(self: Effect.Effect<A, E, R>, options: string | DaemonOptions): JobLayer<R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, options: string | DaemonOptions): JobLayer<R> =>
  jobLayer(startDaemonImpl(self, options)))

/**
 * The Effect form of {@link daemon}: starts the daemon now, for daemons known only at run time
 * (one per tenant, per queue partition) or started by a handler, and returns its handle —
 * `interrupt` stops it, and its name is free again once it has ended. Many daemons started from
 * one effect cost far less to build and release than as many merged layers. Fails with
 * `InvalidOptionError` for a bad option or a name a running job has, and `ShuttingDownError` once
 * shutdown has begun; under `Server.app`, a daemon started before the app is up waits for it.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Background } from "effect-background"
 *
 * const consume = (partition: number) => Effect.log(`consuming partition ${partition}`).pipe(Effect.forever)
 *
 * export const Consumers = Layer.effectDiscard(
 *   Effect.forEach([0, 1, 2, 3], (partition) =>
 *     consume(partition).pipe(Background.startDaemon(`consumer-${partition}`)))
 * )
 * ```
 *
 * @since 0.2.0
 * @category jobs
 */
export const startDaemon: {
  (options: string | DaemonOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => JobStarted<R>
  <A, E, R>(self: Effect.Effect<A, E, R>, options: string | DaemonOptions): JobStarted<R>
} = dual(2, startDaemonImpl)

/**
 * Options of {@link every} and {@link startEvery}: the job's name (unique among jobs) and its
 * cadence. `spaced` waits the interval after each run ends; `fixedRate` starts runs on a fixed
 * grid, and `overlap` says what happens to ticks that fall while a run is still going (`"skip"`
 * them, the default, or `"queue"` them to run back to back).
 *
 * @example
 * ```ts
 * import type { Background } from "effect-background"
 *
 * const poll: Background.EveryOptions = { name: "poll", spaced: "5 seconds" }
 * const report: Background.EveryOptions = { name: "report", fixedRate: "1 minute", overlap: "skip" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type EveryOptions =
  | {
    readonly name: string
    readonly spaced: Duration.DurationInput
    readonly fixedRate?: never
    readonly overlap?: never
  }
  | {
    readonly name: string
    readonly fixedRate: Duration.DurationInput
    readonly overlap?: "skip" | "queue" | undefined
    readonly spaced?: never
  }

const EVERY_EXPECTED =
  "either { spaced } or { fixedRate }, not both (e.g. { spaced: \"5 seconds\" } or { fixedRate: \"1 minute\" })"

const startEveryImpl = <A, E, R>(self: Effect.Effect<A, E, R>, options: EveryOptions): JobStarted<R> =>
  Effect.suspend(() => {
    const given: unknown = options
    // Options that are not an object hold no name to check: the one error is about them.
    if (typeof given !== "object" || given === null || Array.isArray(given)) {
      return validate.invalid("every", given, EVERY_EXPECTED)
    }
    const { name, ...cadence } = given as { readonly name?: unknown }
    return startRepeating(name, self, everyCadence(cadence))
  })

/** The cadence part of {@link EveryOptions} (the options without their name), validated. */
const everyCadence = (given: object): Effect.Effect<internalSchedule.Cadence, InvalidOptionError> => {
  const hasSpaced = "spaced" in given
  const hasFixedRate = "fixedRate" in given
  if (hasSpaced === hasFixedRate) return validate.invalid("every", given, EVERY_EXPECTED)
  const { fixedRate, overlap, spaced } = given as {
    readonly spaced?: unknown
    readonly fixedRate?: unknown
    readonly overlap?: unknown
  }
  if (hasSpaced) {
    return Effect.map(
      validate.all({
        cadence: internalSchedule.spaced(spaced),
        overlap: overlap === undefined ? Effect.void : validate.invalid(
          "overlap",
          overlap,
          "no overlap with { spaced }, whose runs never overlap (e.g. { spaced: \"5 seconds\" }; for a policy, { fixedRate: \"1 minute\", overlap: \"queue\" })"
        )
      }),
      ({ cadence }) => cadence
    )
  }
  return internalSchedule.fixedRate(fixedRate, validate.orDefault(overlap, "skip"))
}

/**
 * A layer that runs `effect` repeatedly for the server's lifetime, the first run at start. A
 * failing run is logged with the job's name and the schedule goes on. Options are validated when
 * the layer is built.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * // data-first
 * export const Heartbeat = Background.every(Effect.log("Hello"), { name: "heartbeat", spaced: "5 seconds" })
 * // data-last
 * export const Metrics = Effect.log("flushing metrics").pipe(
 *   Background.every({ name: "metrics", fixedRate: "1 minute", overlap: "skip" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const every: {
  (options: EveryOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => JobLayer<R>
  <A, E, R>(self: Effect.Effect<A, E, R>, options: EveryOptions): JobLayer<R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, options: EveryOptions): JobLayer<R> =>
  jobLayer(startEveryImpl(self, options)))

/**
 * The Effect form of {@link every}: starts the repeating job now, for jobs made at run time (see
 * {@link startDaemon}), and returns its handle. Fails with `InvalidOptionError` for a bad option
 * or a name a running job has, and `ShuttingDownError` once shutdown has begun.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Background } from "effect-background"
 *
 * const refresh = (feed: string) => Effect.log(`refreshing ${feed}`)
 *
 * export const Feeds = Layer.effectDiscard(
 *   Effect.forEach(["news", "weather"], (feed) =>
 *     Background.startEvery(refresh(feed), { name: `refresh-${feed}`, spaced: "1 minute" }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category jobs
 */
export const startEvery: {
  (options: EveryOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => JobStarted<R>
  <A, E, R>(self: Effect.Effect<A, E, R>, options: EveryOptions): JobStarted<R>
} = dual(2, startEveryImpl)

/**
 * Options of {@link cron} and {@link startCron}: the job's name (unique among jobs), a cron
 * expression (5 fields, or 6 with seconds first), an explicit IANA time zone, and the overlap
 * policy (`"skip"` by default).
 *
 * @example
 * ```ts
 * import type { Background } from "effect-background"
 *
 * const nightly: Background.CronOptions = { name: "nightly", cron: "0 3 * * *", timeZone: "Europe/Paris" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CronOptions {
  /** Shown in logs, snapshots, spans and the shutdown report; unique among running jobs. */
  readonly name: string
  readonly cron: string
  readonly timeZone: string
  readonly overlap?: "skip" | "queue" | undefined
}

const startCronImpl = <A, E, R>(self: Effect.Effect<A, E, R>, options: CronOptions): JobStarted<R> =>
  Effect.flatMap(
    validate.record("options", options, "{ name: \"cleanup\", cron: \"0 3 * * *\", timeZone: \"UTC\" }"),
    (given) =>
      startRepeating(
        given.name,
        self,
        internalSchedule.cron(given.cron, given.timeZone, validate.orDefault(given.overlap, "skip"))
      )
  )

/**
 * A layer that runs `effect` at each time matching a cron expression in the given time zone. The
 * name, expression and time zone are validated when the layer is built, not at the first tick.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * // data-first
 * export const Nightly = Background.cron(Effect.log("cleaning"), {
 *   name: "cleanup",
 *   cron: "0 3 * * *",
 *   timeZone: "UTC"
 * })
 * // data-last
 * export const Weekly = Effect.log("sending the weekly report").pipe(
 *   Background.cron({ name: "weekly-report", cron: "0 9 * * 1", timeZone: "Europe/Paris" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const cron: {
  (options: CronOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => JobLayer<R>
  <A, E, R>(self: Effect.Effect<A, E, R>, options: CronOptions): JobLayer<R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, options: CronOptions): JobLayer<R> =>
  jobLayer(startCronImpl(self, options)))

/**
 * The Effect form of {@link cron}: starts the cron job now, for jobs made at run time (see
 * {@link startDaemon}), and returns its handle. Fails with `InvalidOptionError` for a bad option
 * (a malformed expression, an unknown time zone) or a name a running job has, and
 * `ShuttingDownError` once shutdown has begun.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Background } from "effect-background"
 *
 * const digest = (team: string) => Effect.log(`sending the ${team} digest`)
 *
 * export const Digests = Layer.effectDiscard(
 *   Effect.forEach(["sales", "support"], (team) =>
 *     Background.startCron(digest(team), { name: `digest-${team}`, cron: "0 9 * * 1-5", timeZone: "Europe/Paris" }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category jobs
 */
export const startCron: {
  (options: CronOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => JobStarted<R>
  <A, E, R>(self: Effect.Effect<A, E, R>, options: CronOptions): JobStarted<R>
} = dual(2, startCronImpl)

/** A job's layer: the job starts when it is built (built once shutdown has begun, it is a defect). */
const jobLayer = <R>(
  start: Effect.Effect<TaskHandle, InvalidOptionError | ShuttingDownError, R>
): Layer.Layer<never, InvalidOptionError, R> =>
  Layer.effectDiscard(start.pipe(Effect.catchTag("ShuttingDownError", Effect.die)))

/** Starts a repeating job once its name (checked here) and its cadence are both valid. */
const startRepeating = <A, E, R>(
  name: unknown,
  effect: Effect.Effect<A, E, R>,
  cadence: Effect.Effect<internalSchedule.Cadence, InvalidOptionError>
): JobStarted<R> =>
  Effect.gen(function*() {
    const { validCadence, validName } = yield* validate.all({
      validName: validate.name("name", name, JOB_NAME_EXAMPLE),
      validCadence: cadence
    })
    return yield* service.startJob(
      validName,
      "schedule",
      (supervisor) => internalSchedule.repeatLoop(supervisor, validName, validCadence, effect)
    )
  })
