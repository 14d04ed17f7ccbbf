/**
 * The supervisor as a service: its tag, its layer (options checked when it is built, its
 * shutdown run when it is released and summarised for the report), and the way the library's own
 * modules reach the supervisor behind a service — a registry, so the public service type has
 * nothing on it a user should not call.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Background as BackgroundId, BackgroundService, Options } from "../../Background.js"
import type { InvalidOptionError, ShuttingDownError } from "../../Errors.js"
import * as validate from "../options.js"
import { currentRecord } from "../report.js"
import { type ResolvedOptions, Supervisor } from "./supervisor.js"
import type { TaskHandle } from "./task.js"

/**
 * `Background.Background`, by its key: a context finds a service by its tag's key, so this is the
 * same tag, reachable here without importing the public module (which imports this one).
 */
export const Background = Context.GenericTag<BackgroundId, BackgroundService>("effect-background/Background")

const supervisors = new WeakMap<BackgroundService, Supervisor>()

/** The supervisor behind a service this module made. */
export const supervisorOf = (service: BackgroundService): Supervisor => {
  const supervisor = supervisors.get(service)
  // (a service a user built by hand, say in a test, has none: using it for a task is a defect)
  if (supervisor === undefined) throw new Error("effect-background: this Background service was not made by Background.layer")
  return supervisor
}

/** The supervisor in a context, if it has a `Background` service. */
export const supervisorIn = (context: Context.Context<never>): Supervisor | undefined => {
  const service = Context.getOption(context, Background)
  return service._tag === "Some" ? supervisors.get(service.value) : undefined
}

/** The supervisor of the `Background` service in the fiber's context (a defect without one). */
export const currentSupervisor: Effect.Effect<Supervisor, never, BackgroundId> = Effect.map(Background, supervisorOf)

const serviceOf = (supervisor: Supervisor): BackgroundService => {
  const service: BackgroundService = {
    awaitIdle: supervisor.awaitIdle,
    snapshot: supervisor.snapshot,
    isShuttingDown: Effect.sync(() => supervisor.closing),
    stats: Effect.sync(() => ({ ...supervisor.stats }))
  }
  supervisors.set(service, supervisor)
  return service
}

/** Validates `Background.Options` into the supervisor's settings. */
export const resolveOptions = (given?: Options): Effect.Effect<ResolvedOptions, InvalidOptionError> =>
  Effect.flatMap(validate.record("options", given, "{ grace: \"5 seconds\" }"), (options) =>
    validate.all({
      concurrency: validate.count("concurrency", validate.orDefault(options.concurrency, "unbounded"), 1, 10, true),
      maxQueued: validate.count("maxQueued", validate.orDefault(options.maxQueued, 1000), 0, 1000),
      grace: validate.duration("grace", validate.orDefault(options.grace, "5 seconds"), "nonNegative"),
      interruptTimeout: validate.duration(
        "interruptTimeout",
        validate.orDefault(options.interruptTimeout, "5 seconds"),
        "nonNegative"
      )
    }))

/**
 * The supervisor's layer. With `holdJobs`, its daemons and schedules wait for {@link releaseJobs}:
 * `Server.app` releases them once the whole app has started.
 */
export const layer = <E>(
  options: Effect.Effect<ResolvedOptions, E>,
  holdJobs: boolean
): Layer.Layer<BackgroundId, E> =>
  Layer.scoped(
    Background,
    Effect.gen(function*() {
      const resolved = yield* options
      const supervisor = new Supervisor(resolved, holdJobs)
      const record = yield* currentRecord
      record.bound(
        Duration.toMillis(resolved.grace) + Duration.toMillis(resolved.interruptTimeout),
        () => supervisor.liveNames.map((name) => `task ${name}`)
      )
      yield* Effect.addFinalizer(() =>
        Effect.flatMap(supervisor.shutdown, (outcome) => {
          record.backgroundDone({ ...supervisor.stats, ...outcome, doneAt: Date.now() })
          const warned = outcome.interruptedNames.length === 0 ? Effect.void : Effect.logWarning(
            `background: grace period ended; interrupted ${listed(outcome.interruptedNames)}`
          )
          const stuck = outcome.stillRunning.length === 0 ? Effect.void : Effect.logError(
            `background: still running after interruption timeout: ${listed(outcome.stillRunning)}`
          )
          return Effect.zipRight(warned, stuck)
        })
      )
      return serviceOf(supervisor)
    })
  )

/** Lets the held daemons and schedules of the supervisor in context start. */
export const releaseJobs: Effect.Effect<void, never, BackgroundId> = Effect.map(
  currentSupervisor,
  (supervisor) => supervisor.jobs.release()
)

/** Names for a log line: the first 20, then how many more (the shutdown report lists them all). */
const listed = (names: ReadonlyArray<string>): string =>
  names.length <= 20
    ? names.join(", ")
    : `${names.slice(0, 20).join(", ")} and ${names.length - 20} more (all in the shutdown report)`

/**
 * Registers a daemon or schedule under a name no other job has (jobs are told apart by name in
 * logs, snapshots and the report); its loop waits until jobs are released. Also used by the
 * modules that run jobs of their own (durable workers).
 */
export const startJob = <E, R>(
  name: string,
  kind: "daemon" | "schedule",
  loop: (supervisor: Supervisor) => Effect.Effect<unknown, E, R>
): Effect.Effect<TaskHandle, InvalidOptionError | ShuttingDownError, BackgroundId | Exclude<R, Scope.Scope>> =>
  Effect.flatMap(currentSupervisor, (supervisor): Effect.Effect<
    TaskHandle,
    InvalidOptionError | ShuttingDownError,
    Exclude<R, Scope.Scope>
  > => {
    // Refused as shutting down before the name is looked at: the names of jobs that stop during a
    // shutdown are freed at its end.
    if (supervisor.closing) return supervisor.refuseClosing(kind, name)
    if (!supervisor.jobs.claim(name)) {
      return validate.invalid(
        "name",
        name,
        `a name no other daemon or job of this supervisor has (e.g. ${JSON.stringify(`${name}-2`)})`
      )
    }
    return supervisor.submit({
      name,
      kind,
      effect: Effect.zipRight(supervisor.jobs.awaitRelease, loop(supervisor))
    }).pipe(
      Effect.catchTag("QueueFullError", Effect.die), // jobs are not capped, so never queued
      Effect.tapError(() => Effect.sync(() => supervisor.jobs.forget(name)))
    )
  })
