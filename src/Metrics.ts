/**
 * The library's metrics, as Effect `Metric`s: every exporter of Effect metrics sees them (the
 * Prometheus route of `effect-background/Telemetry`, `@effect/opentelemetry`'s `NodeSdk`), beside
 * the application's own. They are recorded by the library as work happens; this module exports
 * them so an application can read them (`Metric.value`), tag its dashboards by their names, or
 * test on them.
 *
 * Names and labels follow Prometheus and OpenTelemetry conventions: counters end in `_total` and
 * are made with `{ incremental: true }` (exporters type them as counters), durations are in
 * seconds, labels are `kind`, `name`, `state` and `phase`.
 *
 * Task names are a label, and a task's name is the user's to choose — `notify ${email}` would give
 * every email a series of its own, and Effect's metric registry never forgets one. So each kind of
 * work records its first {@link nameLimit} distinct names (per process) as themselves, and every
 * later one as `name="_other"` ({@link otherName}), with one warning logged the first time a kind
 * overflows. Name tasks after what they do (`send-email`), not after their data. The full table is
 * in docs/observability.md.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * // how many after-response "send-email" tasks failed in this process so far
 * export const failedEmails = Metric.value(
 *   Metrics.tasksFailed.pipe(Metric.tagged("kind", "after-response"), Metric.tagged("name", "send-email"))
 * ).pipe(Effect.map((state) => state.count))
 * ```
 *
 * @since 0.4.0
 * @module
 */
import * as Metric from "effect/Metric"
import type * as MetricBoundaries from "effect/MetricBoundaries"
import * as keys from "./internal/metricKeys.js"

/**
 * How many distinct task names each kind of work records as a `name` label, per process; names
 * past these are recorded as {@link otherName}.
 *
 * @example
 * ```ts
 * import { Metrics } from "effect-background"
 *
 * const note = `the first ${Metrics.nameLimit} task names of each kind are labels of their own`
 * ```
 *
 * @since 0.4.0
 * @category labels
 */
export const nameLimit = 100

/**
 * The `name` label of a task whose name came past {@link nameLimit} for its kind.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const overflowStarts = Metrics.tasksStarted.pipe(
 *   Metric.tagged("kind", "task"),
 *   Metric.tagged("name", Metrics.otherName)
 * )
 * ```
 *
 * @since 0.4.0
 * @category labels
 */
export const otherName = "_other"

/**
 * The buckets of the duration and lag histograms, in seconds: 1 ms doubling up to about 65 s
 * (17 buckets, and one for anything longer).
 *
 * @example
 * ```ts
 * import { Metrics } from "effect-background"
 *
 * const upperBounds = Metrics.secondsBuckets.values // [0.001, 0.002, 0.004, …, 65.536]
 * ```
 *
 * @since 0.4.0
 * @category labels
 */
// (made with the task metrics' keys, in internal/metricKeys.ts; the parentheses keep that module's
// name out of the API reference, which shows a plain name or property as the value)
export const secondsBuckets: MetricBoundaries.MetricBoundaries = (keys.secondsBuckets)

// ---------------------------------------------------------------------------------------------
// Tasks of every kind

/**
 * Tasks started, by `kind` and `name`: a fork (`task`) or after-response task leaving its wait, a
 * schedule's run, a daemon's start or restart, a durable task's attempt, an offload task accepted
 * by the pool.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const reportRuns = Metric.value(
 *   Metrics.tasksStarted.pipe(Metric.tagged("kind", "schedule"), Metric.tagged("name", "report"))
 * ).pipe(Effect.map((state) => state.count))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const tasksStarted: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.tasksStarted)

/**
 * Tasks that ran to the end, successfully or not (the meaning of `SupervisorStats.finished`), by
 * `kind` and `name`; the failed ones are also in {@link tasksFailed}.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const emailsDone = Metrics.tasksFinished.pipe(Metric.tagged("kind", "after-response"), Metric.tagged("name", "send-email"))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const tasksFinished: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.tasksFinished)

/**
 * Tasks that ended with a failure or a defect (each was logged once), by `kind` and `name`; for a
 * durable task, a failed attempt.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const failedForks = Metrics.tasksFailed.pipe(Metric.tagged("kind", "task"), Metric.tagged("name", "analytics"))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const tasksFailed: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.tasksFailed)

/**
 * Tasks interrupted before they finished — by shutdown, a handle, a replacement, a timeout — those
 * that never left their queue included, by `kind` and `name`. For durable tasks, runs cut off at
 * shutdown (released to the store).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const cutOff = Metrics.tasksInterrupted.pipe(Metric.tagged("kind", "offload"), Metric.tagged("name", "fib"))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const tasksInterrupted: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.tasksInterrupted)

/**
 * Tasks refused, by `kind` and `name`: shutdown had begun, or the queue was full (`QueueFullError`).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const refused = Metrics.tasksRejected.pipe(Metric.tagged("kind", "task"), Metric.tagged("name", "analytics"))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const tasksRejected: Metric.Metric.Counter<number> = Metric.counter("effect_background_tasks_rejected_total", {
  description: "Background tasks refused (shutting down, or the queue full), by kind and name.",
  incremental: true
})

/**
 * After-response tasks not run because their handler failed (`kind="after-response"`), by `name`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const skipped = Metrics.tasksSkipped.pipe(Metric.tagged("kind", "after-response"), Metric.tagged("name", "send-email"))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const tasksSkipped: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.tasksSkipped)

/**
 * Tasks running now, by `kind`: forks and after-response tasks past their wait, schedule runs in
 * progress, daemons running (not waiting to restart), durable attempts. (Offload work is in
 * {@link offloadThreads} and {@link offloadQueueDepth}.)
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const runningForks = Metric.value(Metrics.tasksRunning.pipe(Metric.tagged("kind", "task"))).pipe(
 *   Effect.map((state) => state.value)
 * )
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const tasksRunning: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.tasksRunning)

/**
 * Forks and after-response tasks admitted but not started yet, by `kind`: waiting for a
 * concurrency slot, for their response to be written, for the task before them in line, or for
 * the keyed task they replace to stop.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const waitingAfterResponse = Metrics.tasksQueued.pipe(Metric.tagged("kind", "after-response"))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const tasksQueued: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.tasksQueued)

/**
 * How long each task ran, from its start to its end whatever the outcome, in seconds, by `kind`
 * and `name` (buckets {@link secondsBuckets}). For offload tasks, from the pool's acceptance to
 * the result, any wait for a thread included.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const meanSeconds = Metric.value(
 *   Metrics.taskDuration.pipe(Metric.tagged("kind", "after-response"), Metric.tagged("name", "send-email"))
 * ).pipe(Effect.map((state) => (state.count === 0 ? 0 : state.sum / state.count)))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const taskDuration: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.taskDuration)

/**
 * How late each task started, in seconds, by `kind` and `name`: from the fork or the handler's
 * `BackgroundTasks.add` to the start (the response's writing included), or from a schedule's tick
 * to its run. Not recorded for daemons, durable and offload tasks.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const lateReports = Metrics.taskLag.pipe(Metric.tagged("kind", "schedule"), Metric.tagged("name", "report"))
 * ```
 *
 * @since 0.4.0
 * @category tasks
 */
export const taskLag: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.taskLag)

// ---------------------------------------------------------------------------------------------
// Schedules and daemons

/**
 * Ticks of a schedule with `overlap: "skip"` that were dropped because a run was still going, by
 * `name`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const dropped = Metrics.scheduleSkippedRuns.pipe(Metric.tagged("name", "report"))
 * ```
 *
 * @since 0.4.0
 * @category schedules
 */
export const scheduleSkippedRuns: Metric.Metric.Counter<number> = Metric.counter(
  "effect_background_schedule_skipped_runs_total",
  { description: "Schedule ticks skipped because the previous run was still going, by name.", incremental: true }
)

/**
 * When a schedule runs next, in Unix seconds, by `name` (a schedule that has stopped keeps its
 * last value).
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const nextReport = Metric.value(Metrics.scheduleNextRun.pipe(Metric.tagged("name", "report"))).pipe(
 *   Effect.map((state) => new Date(state.value * 1000))
 * )
 * ```
 *
 * @since 0.4.0
 * @category schedules
 */
export const scheduleNextRun: Metric.Metric.Gauge<number> = Metric.gauge(
  "effect_background_schedule_next_run_timestamp_seconds",
  { description: "When each schedule runs next, in Unix seconds, by name." }
)

/**
 * Daemon restarts after a failure, by `name` (a daemon whose restart policy is exhausted is not
 * restarted, and not counted).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const consumerRestarts = Metrics.daemonRestarts.pipe(Metric.tagged("name", "consumer"))
 * ```
 *
 * @since 0.4.0
 * @category schedules
 */
export const daemonRestarts: Metric.Metric.Counter<number> = Metric.counter("effect_background_daemon_restarts_total", {
  description: "Daemon restarts after a failure, by name.",
  incremental: true
})

// ---------------------------------------------------------------------------------------------
// Durable tasks

/**
 * Durable tasks in the store by `name` and `state` (`pending`, `scheduled`, `running`,
 * `retrying`, `dead`), as this process's workers last counted them: once when they start, then
 * every ten poll intervals (no more often than once a second), with one statement for every task
 * type. Every process on a shared store reports the same counts.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const deadWelcomes = Metrics.durableTasks.pipe(Metric.tagged("name", "send-welcome"), Metric.tagged("state", "dead"))
 * ```
 *
 * @since 0.4.0
 * @category durable
 */
export const durableTasks: Metric.Metric.Gauge<number> = Metric.gauge("effect_background_durable_tasks", {
  description: "Durable tasks in the store, by name and state, as last counted."
})

/**
 * Attempts this process's durable workers made, by `name` (a payload that no longer decodes counts
 * one, as the store does).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const attempts = Metrics.durableAttempts.pipe(Metric.tagged("name", "send-welcome"))
 * ```
 *
 * @since 0.4.0
 * @category durable
 */
export const durableAttempts: Metric.Metric.Counter<number> = Metric.counter("effect_background_durable_attempts_total", {
  description: "Durable task attempts made by this process, by name.",
  incremental: true
})

/**
 * Durable runs cut off at shutdown and handed back to the store for the next process, by `name`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const handedBack = Metrics.durableReleased.pipe(Metric.tagged("name", "send-welcome"))
 * ```
 *
 * @since 0.4.0
 * @category durable
 */
export const durableReleased: Metric.Metric.Counter<number> = Metric.counter("effect_background_durable_released_total", {
  description: "Durable runs released to the store at shutdown, by name.",
  incremental: true
})

// ---------------------------------------------------------------------------------------------
// Offload

/**
 * The offload pool's worker threads by `state`: `busy` (running a task) or `idle` (loaded or
 * loading, with nothing to run). Summed over every pool of the process.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const busyThreads = Metrics.offloadThreads.pipe(Metric.tagged("state", "busy"))
 * ```
 *
 * @since 0.4.0
 * @category offload
 */
export const offloadThreads: Metric.Metric.Gauge<number> = Metric.gauge("effect_background_offload_threads", {
  description: "Offload worker threads, by state (busy or idle)."
})

/**
 * Offload tasks waiting for a thread (the pool's `queued`), summed over every pool of the process.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const waiting = Metric.value(Metrics.offloadQueueDepth).pipe(Effect.map((state) => state.value))
 * ```
 *
 * @since 0.4.0
 * @category offload
 */
export const offloadQueueDepth: Metric.Metric.Gauge<number> = Metric.gauge("effect_background_offload_queue_depth", {
  description: "Offload tasks waiting for a thread."
})

/**
 * Threads the offload pool started to replace one it lost (terminated to cancel its task, or
 * crashed), to stay at `minThreads`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const replaced = Metric.value(Metrics.offloadThreadReplacements)
 * ```
 *
 * @since 0.4.0
 * @category offload
 */
export const offloadThreadReplacements: Metric.Metric.Counter<number> = Metric.counter(
  "effect_background_offload_thread_replacements_total",
  { description: "Offload threads started to replace a lost one.", incremental: true }
)

/**
 * Offload threads terminated to cancel the task they were running (a timeout, an interrupted
 * caller) — the only way to stop JavaScript running on another thread.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const terminated = Metric.value(Metrics.offloadCancelTerminations)
 * ```
 *
 * @since 0.4.0
 * @category offload
 */
export const offloadCancelTerminations: Metric.Metric.Counter<number> = Metric.counter(
  "effect_background_offload_cancel_terminations_total",
  { description: "Offload threads terminated to cancel their running task.", incremental: true }
)

// ---------------------------------------------------------------------------------------------
// Shutdown

/**
 * How long each phase of the last shutdown took, in seconds, by `phase`: `drain` (requests),
 * `grace` (background work finishing), `interrupt` (what was left, interrupted), `offload` (the
 * pool's stop) and `services` (the layers released after them; set by `Server.launch`) — the
 * phases of the shutdown report line.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const lastGrace = Metrics.shutdownPhase.pipe(Metric.tagged("phase", "grace"))
 * ```
 *
 * @since 0.4.0
 * @category shutdown
 */
export const shutdownPhase: Metric.Metric.Gauge<number> = Metric.gauge("effect_background_shutdown_phase_seconds", {
  description: "How long each phase of the last shutdown took, in seconds, by phase."
})

/**
 * The names of every metric of this module, as exporters show them.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * const ours = Metric.unsafeSnapshot().filter((pair) => Metrics.names.includes(pair.metricKey.name))
 * ```
 *
 * @since 0.4.0
 * @category labels
 */
export const names: ReadonlyArray<string> = [
  "effect_background_tasks_started_total",
  "effect_background_tasks_finished_total",
  "effect_background_tasks_failed_total",
  "effect_background_tasks_interrupted_total",
  "effect_background_tasks_rejected_total",
  "effect_background_tasks_skipped_total",
  "effect_background_tasks_running",
  "effect_background_tasks_queued",
  "effect_background_task_duration_seconds",
  "effect_background_task_lag_seconds",
  "effect_background_schedule_skipped_runs_total",
  "effect_background_schedule_next_run_timestamp_seconds",
  "effect_background_daemon_restarts_total",
  "effect_background_durable_tasks",
  "effect_background_durable_attempts_total",
  "effect_background_durable_released_total",
  "effect_background_offload_threads",
  "effect_background_offload_queue_depth",
  "effect_background_offload_thread_replacements_total",
  "effect_background_offload_cancel_terminations_total",
  "effect_background_shutdown_phase_seconds"
]
