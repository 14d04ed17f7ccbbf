/**
 * The keys of the metrics recorded for every task (started, finished, failed, interrupted,
 * skipped, running, queued, duration, lag): `Metrics` builds its public metrics from them
 * (`Metric.fromMetricKey`, what `Metric.counter` does), and internal/metrics.ts resolves each
 * series' hook from them once, so a task's updates go straight to their hooks.
 */
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"

/** Upper bounds of the duration histograms, in seconds: 1 ms doubling to about 65 s. */
export const secondsBuckets: MetricBoundaries.MetricBoundaries = MetricBoundaries.exponential({
  start: 0.001,
  factor: 2,
  count: 17
})

/** A counter's key: counters are incremental, so exporters type them as counters. */
const counter = (name: string, description: string) => MetricKey.counter(name, { description, incremental: true })

export const tasksStarted = counter("effect_background_tasks_started_total", "Background tasks started, by kind and name.")

export const tasksFinished = counter(
  "effect_background_tasks_finished_total",
  "Background tasks that ran to the end, successfully or not, by kind and name."
)

export const tasksFailed = counter("effect_background_tasks_failed_total", "Background tasks that failed, by kind and name.")

export const tasksInterrupted = counter(
  "effect_background_tasks_interrupted_total",
  "Background tasks interrupted before they finished, by kind and name."
)

export const tasksSkipped = counter(
  "effect_background_tasks_skipped_total",
  "After-response tasks skipped because their handler failed, by kind and name."
)

export const tasksRunning = MetricKey.gauge("effect_background_tasks_running", {
  description: "Background tasks running now, by kind."
})

export const tasksQueued = MetricKey.gauge("effect_background_tasks_queued", {
  description: "Background tasks admitted but not started yet, by kind."
})

export const taskDuration = MetricKey.histogram(
  "effect_background_task_duration_seconds",
  secondsBuckets,
  "How long background tasks ran, in seconds, by kind and name."
)

export const taskLag = MetricKey.histogram(
  "effect_background_task_lag_seconds",
  secondsBuckets,
  "How late background tasks started after they were added, forked or due, in seconds, by kind and name."
)
