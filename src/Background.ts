/**
 * The server-lifetime supervisor. Every background fiber — a fire-and-forget fork, an
 * after-response task, a daemon, a repeating job — is owned by it, reported when it fails, and
 * drained, then interrupted with its finalizers run, when the supervisor's layer is released.
 *
 * @since 0.1.0
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
import * as taskScope from "./internal/background/taskScope.js"
import type { SupervisorStats } from "./internal/background/supervisor.js"
import type { TaskHandle, TaskInfo } from "./internal/background/task.js"

export type {
  /**
   * A running or finished task, returned by {@link fork}.
   *
   * @example
   * ```ts
   * import { Effect, Exit } from "effect"
   * import { Background } from "effect-background"
   *
   * const program = Effect.gen(function*() {
   *   const handle: Background.TaskHandle = yield* Background.fork(Effect.sleep("1 minute"), "slow")
   *   yield* handle.interrupt
   *   const exit = yield* handle.await
   *   yield* Effect.log(`${handle.name} interrupted: ${Exit.isInterrupted(exit)}`)
   * })
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  TaskHandle,
  /**
   * One entry of {@link snapshot}: a task's name, key, id, kind, state and times.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { Background } from "effect-background"
   *
   * const describe = (task: Background.TaskInfo) => `${task.kind} ${task.name}: ${task.state}`
   * const lines = Effect.map(Background.snapshot, (tasks) => tasks.map(describe))
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  TaskInfo
}
export type {
  /**
   * What the supervisor counted so far.
   *
   * @example
   * ```ts
   * import type { Background } from "effect-background"
   *
   * const summary = (stats: Background.SupervisorStats) => `${stats.finished} finished, ${stats.failed} failed`
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  SupervisorStats
} from "./internal/background/supervisor.js"

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
 * Options of {@link daemon}.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import type { Background } from "effect-background"
 *
 * const options: Background.DaemonOptions = { restart: Schedule.spaced("1 second") }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DaemonOptions {
  /**
   * When to restart after a failure or defect; the input is the failure's `Cause`. When the
   * schedule ends, the daemon stays stopped (logged as an error). Default: exponential backoff from
   * 100 ms capped at 30 s, reset after a minute without failures, forever.
   */
  readonly restart?: Schedule.Schedule<unknown, Cause.Cause<unknown>> | undefined
}

/**
 * A layer that starts a long-running effect with the server and interrupts it (finalizers run) at
 * shutdown, after the grace period. A failure or defect is logged and the daemon is restarted by
 * its `restart` schedule; it is never silently dead.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Background } from "effect-background"
 *
 * const hello = Effect.log("Hello").pipe(Effect.repeat(Schedule.spaced("5 seconds")))
 * export const HelloDaemon = Background.daemon("hello", hello, {
 *   restart: Schedule.exponential("200 millis")
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const daemon = <E, R>(
  name: string,
  effect: Effect.Effect<unknown, E, R>,
  options?: DaemonOptions
): Layer.Layer<never, InvalidOptionError, Background | Exclude<R, Scope.Scope>> =>
  jobLayer(startDaemon(name, effect, options))

/**
 * Starts a daemon from an effect rather than a layer: the same job as {@link daemon} (its name
 * unique among jobs, restarted by `restart`, interrupted at shutdown after the grace period), for
 * jobs whose number is known only at run time — one per tenant, per queue partition — or that a
 * handler starts. Many daemons started from one layer also cost far less to build and release than
 * as many merged layers. Returns the daemon's handle (`interrupt` stops it; its name is free
 * again once it has ended). Fails with `InvalidOptionError` for a bad option or a name a running
 * job has, and `ShuttingDownError` once shutdown has begun; under `Server.app`, a daemon started
 * before the app is up waits for it.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Background } from "effect-background"
 *
 * const consume = (partition: number) => Effect.log(`consuming partition ${partition}`).pipe(Effect.forever)
 *
 * export const Consumers = Layer.effectDiscard(
 *   Effect.forEach([0, 1, 2, 3], (partition) => Background.startDaemon(`consumer-${partition}`, consume(partition)))
 * )
 * ```
 *
 * @since 0.2.0
 * @category jobs
 */
export const startDaemon = <E, R>(
  name: string,
  effect: Effect.Effect<unknown, E, R>,
  options?: DaemonOptions
): Effect.Effect<TaskHandle, InvalidOptionError | ShuttingDownError, Background | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const restart = validate.orDefault(options?.restart, internalSchedule.defaultRestart)
    const { validName } = yield* validate.all({
      validName: validate.name("name", name, JOB_NAME_EXAMPLE),
      restart: Schedule.isSchedule(restart)
        ? Effect.void
        : validate.invalid("restart", restart, "a Schedule (e.g. Schedule.exponential(\"100 millis\"))")
    })
    return yield* service.startJob(
      validName,
      "daemon",
      (supervisor) => internalSchedule.daemonLoop(supervisor, validName, taskScope.perRun(effect), restart)
    )
  })

/**
 * Options of {@link every}: `spaced` waits the interval after each run ends; `fixedRate` starts
 * runs on a fixed grid, and `overlap` says what happens to ticks that fall while a run is still
 * going (`"skip"` them, the default, or `"queue"` them to run back to back).
 *
 * @example
 * ```ts
 * import type { Background } from "effect-background"
 *
 * const poll: Background.EveryOptions = { spaced: "5 seconds" }
 * const report: Background.EveryOptions = { fixedRate: "1 minute", overlap: "skip" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type EveryOptions =
  | { readonly spaced: Duration.DurationInput; readonly fixedRate?: never; readonly overlap?: never }
  | {
    readonly fixedRate: Duration.DurationInput
    readonly overlap?: "skip" | "queue" | undefined
    readonly spaced?: never
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
 * export const Heartbeat = Background.every("heartbeat", Effect.log("Hello"), { spaced: "5 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const every = <E, R>(
  name: string,
  effect: Effect.Effect<unknown, E, R>,
  options: EveryOptions
): Layer.Layer<never, InvalidOptionError, Background | Exclude<R, Scope.Scope>> =>
  jobLayer(startEvery(name, effect, options))

/**
 * Starts a repeating job from an effect rather than a layer: the same job as {@link every}, for
 * jobs made at run time (see {@link startDaemon}), and returns its handle. Fails with
 * `InvalidOptionError` for a bad option or a name a running job has, and `ShuttingDownError` once
 * shutdown has begun.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Background } from "effect-background"
 *
 * const refresh = (feed: string) => Effect.log(`refreshing ${feed}`)
 *
 * export const Feeds = Layer.effectDiscard(
 *   Effect.forEach(["news", "weather"], (feed) => Background.startEvery(`refresh-${feed}`, refresh(feed), { spaced: "1 minute" }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category jobs
 */
export const startEvery = <E, R>(
  name: string,
  effect: Effect.Effect<unknown, E, R>,
  options: EveryOptions
): Effect.Effect<TaskHandle, InvalidOptionError | ShuttingDownError, Background | Exclude<R, Scope.Scope>> =>
  startRepeating(name, effect, Effect.suspend(() => everyCadence(options)))

const everyCadence = (options: EveryOptions): Effect.Effect<internalSchedule.Cadence, InvalidOptionError> => {
  const given: unknown = options
  const hasSpaced = typeof given === "object" && given !== null && "spaced" in given
  const hasFixedRate = typeof given === "object" && given !== null && "fixedRate" in given
  if (hasSpaced === hasFixedRate) {
    return validate.invalid(
      "every",
      given,
      "either { spaced } or { fixedRate }, not both (e.g. { spaced: \"5 seconds\" } or { fixedRate: \"1 minute\" })"
    )
  }
  if ("spaced" in options) {
    const overlap: unknown = (options as { readonly overlap?: unknown }).overlap
    return Effect.map(
      validate.all({
        cadence: internalSchedule.spaced(options.spaced),
        overlap: overlap === undefined ? Effect.void : validate.invalid(
          "overlap",
          overlap,
          "no overlap with { spaced }, whose runs never overlap (e.g. { spaced: \"5 seconds\" }; for a policy, { fixedRate: \"1 minute\", overlap: \"queue\" })"
        )
      }),
      ({ cadence }) => cadence
    )
  }
  return internalSchedule.fixedRate(options.fixedRate, validate.orDefault(options.overlap, "skip"))
}

/**
 * Options of {@link cron}: a cron expression (5 fields, or 6 with seconds first), an explicit IANA
 * time zone, and the overlap policy (`"skip"` by default).
 *
 * @example
 * ```ts
 * import type { Background } from "effect-background"
 *
 * const nightly: Background.CronOptions = { cron: "0 3 * * *", timeZone: "Europe/Paris" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CronOptions {
  readonly cron: string
  readonly timeZone: string
  readonly overlap?: "skip" | "queue" | undefined
}

/**
 * A layer that runs `effect` at each time matching a cron expression in the given time zone. The
 * expression and time zone are validated when the layer is built, not at the first tick.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * export const Nightly = Background.cron("cleanup", Effect.log("cleaning"), {
 *   cron: "0 3 * * *",
 *   timeZone: "UTC"
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const cron = <E, R>(
  name: string,
  effect: Effect.Effect<unknown, E, R>,
  options: CronOptions
): Layer.Layer<never, InvalidOptionError, Background | Exclude<R, Scope.Scope>> =>
  jobLayer(startCron(name, effect, options))

/**
 * Starts a cron job from an effect rather than a layer: the same job as {@link cron}, for jobs
 * made at run time (see {@link startDaemon}), and returns its handle. Fails with
 * `InvalidOptionError` for a bad option (a malformed expression, an unknown time zone) or a name a
 * running job has, and `ShuttingDownError` once shutdown has begun.
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
 *     Background.startCron(`digest-${team}`, digest(team), { cron: "0 9 * * 1-5", timeZone: "Europe/Paris" }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category jobs
 */
export const startCron = <E, R>(
  name: string,
  effect: Effect.Effect<unknown, E, R>,
  options: CronOptions
): Effect.Effect<TaskHandle, InvalidOptionError | ShuttingDownError, Background | Exclude<R, Scope.Scope>> =>
  startRepeating(
    name,
    effect,
    Effect.flatMap(
      validate.record("options", options, "{ cron: \"0 3 * * *\", timeZone: \"UTC\" }"),
      (given) => internalSchedule.cron(given.cron, given.timeZone, validate.orDefault(given.overlap, "skip"))
    )
  )

/** A job's layer: the job starts when it is built (built once shutdown has begun, it is a defect). */
const jobLayer = <R>(
  start: Effect.Effect<TaskHandle, InvalidOptionError | ShuttingDownError, R>
): Layer.Layer<never, InvalidOptionError, R> =>
  Layer.effectDiscard(start.pipe(Effect.catchTag("ShuttingDownError", Effect.die)))

const startRepeating = <E, R>(
  name: string,
  effect: Effect.Effect<unknown, E, R>,
  cadence: Effect.Effect<internalSchedule.Cadence, InvalidOptionError>
): Effect.Effect<TaskHandle, InvalidOptionError | ShuttingDownError, Background | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const { validCadence, validName } = yield* validate.all({
      validName: validate.name("name", name, JOB_NAME_EXAMPLE),
      validCadence: cadence
    })
    return yield* service.startJob(
      validName,
      "schedule",
      (supervisor) => internalSchedule.repeatLoop(supervisor, validName, validCadence, taskScope.perRun(effect))
    )
  })
