/**
 * Recording the library's metrics (src/Metrics.ts) from its synchronous bookkeeping, cheaply: one
 * frozen label array per kind and per (kind, name), made once and reused. The metrics every task
 * updates (about eight updates a task) go straight to their hooks, resolved from the registry once
 * per series at first use (`TaskHooks`): the same hooks `Metric.value` reads, without the WeakMap
 * lookup by label array an `unsafeUpdate` makes each time. Every update is plain bookkeeping — no
 * effect, no fiber per task.
 *
 * Names are bounded per kind (`Metrics.nameLimit`); past the limit a kind's names share the
 * `_other` series, and a warning is queued, to be logged by the next fiber that asks
 * ({@link withNotices}).
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import * as causes from "./cause.js"
import * as keys from "./metricKeys.js"
import * as Metrics from "../Metrics.js"
import { invalidOption } from "./options.js"

/**
 * `EFFECT_BACKGROUND_METRICS=off` turns the recording off for the whole process (read once, when
 * this module loads, so no gauge is left half-counted); `on` or unset records. Anything else is
 * refused at once: a typo must not silently keep metrics on, or off.
 */
const setting = process.env.EFFECT_BACKGROUND_METRICS
if (setting !== undefined && setting !== "" && setting !== "on" && setting !== "off") {
  throw invalidOption("EFFECT_BACKGROUND_METRICS", setting, "\"on\" (the default) or \"off\"")
}
/** Whether the library records its metrics in this process. */
export const recording: boolean = setting !== "off"
const off = !recording

export type Kind = "after-response" | "task" | "daemon" | "schedule" | "durable" | "offload"

type Labels = ReadonlyArray<MetricLabel.MetricLabel>

type Counter = MetricHook.MetricHook.Counter<number>
type Gauge = MetricHook.MetricHook.Gauge<number>
type Histogram = MetricHook.MetricHook.Histogram

const registry = Metric.globalMetricRegistry

/**
 * A metric hook resolved from the registry at its first use: a series shows in snapshots and
 * exports once it has been updated, as with `unsafeUpdate`.
 */
class LazyHook<H> {
  private hook: H | undefined = undefined

  constructor(private readonly resolve: () => H) {}

  get value(): H {
    return this.hook ??= this.resolve()
  }
}

const counter = (key: MetricKey.MetricKey.Counter<number>, labels: Labels) =>
  new LazyHook<Counter>(() => registry.getCounter(MetricKey.taggedWithLabels(key, labels)))

const gauge = (key: MetricKey.MetricKey.Gauge<number>, labels: Labels) =>
  new LazyHook<Gauge>(() => registry.getGauge(MetricKey.taggedWithLabels(key, labels)))

const histogram = (key: MetricKey.MetricKey.Histogram, labels: Labels) =>
  new LazyHook<Histogram>(() => registry.getHistogram(MetricKey.taggedWithLabels(key, labels)))

/** The hooks of the gauges by `kind` alone. */
class KindHooks {
  readonly running: LazyHook<Gauge>
  readonly queued: LazyHook<Gauge>

  constructor(labels: Labels) {
    this.running = gauge(keys.tasksRunning, labels)
    this.queued = gauge(keys.tasksQueued, labels)
  }
}

/** The hooks of one (kind, name)'s task metrics. */
class TaskHooks {
  readonly started: LazyHook<Counter>
  readonly finished: LazyHook<Counter>
  readonly failed: LazyHook<Counter>
  readonly interrupted: LazyHook<Counter>
  readonly skipped: LazyHook<Counter>
  readonly duration: LazyHook<Histogram>
  readonly lag: LazyHook<Histogram>

  constructor(readonly kind: KindHooks, labels: Labels) {
    this.started = counter(keys.tasksStarted, labels)
    this.finished = counter(keys.tasksFinished, labels)
    this.failed = counter(keys.tasksFailed, labels)
    this.interrupted = counter(keys.tasksInterrupted, labels)
    this.skipped = counter(keys.tasksSkipped, labels)
    this.duration = histogram(keys.taskDuration, labels)
    this.lag = histogram(keys.taskLag, labels)
  }
}

/** The label arrays of one (kind, name), and the hooks of its task metrics. */
export interface Series {
  /** `kind` */
  readonly byKind: Labels
  /** `kind`, `name` */
  readonly byKindName: Labels
  /** `name` (metrics of one kind only: schedules, daemons, durable tasks) */
  readonly byName: Labels
  readonly name: string
  readonly hooks: TaskHooks
}

interface KindSeries {
  readonly byKind: Labels
  readonly hooks: KindHooks
  readonly names: Map<string, Series>
  readonly other: Series
  warned: boolean
}

const labels = (...pairs: ReadonlyArray<readonly [string, string]>): Labels =>
  Object.freeze(pairs.map(([key, value]) => MetricLabel.make(key, value)))

const kinds = new Map<Kind, KindSeries>()

const makeSeries = (kind: Kind, byKind: Labels, kindHooks: KindHooks, name: string): Series => {
  const byKindName = labels(["kind", kind], ["name", name])
  return Object.freeze({ byKind, byKindName, byName: labels(["name", name]), name, hooks: new TaskHooks(kindHooks, byKindName) })
}

const kindSeries = (kind: Kind): KindSeries => {
  let entry = kinds.get(kind)
  if (entry === undefined) {
    const byKind = labels(["kind", kind])
    const hooks = new KindHooks(byKind)
    entry = { byKind, hooks, names: new Map(), other: makeSeries(kind, byKind, hooks, Metrics.otherName), warned: false }
    kinds.set(kind, entry)
  }
  return entry
}

let queuedNotices: Array<string> = []

/** The labels of a task of `kind` named `name`; `_other` once the kind has its fill of names. */
export const series = (kind: Kind, name: string): Series => {
  const entry = kindSeries(kind)
  if (off) return entry.other
  const known = entry.names.get(name)
  if (known !== undefined) return known
  if (entry.names.size < Metrics.nameLimit) {
    const made = makeSeries(kind, entry.byKind, entry.hooks, name)
    entry.names.set(name, made)
    return made
  }
  if (!entry.warned) {
    entry.warned = true
    queuedNotices.push(
      `metrics: more than ${Metrics.nameLimit} distinct names of ${kind} tasks; "${name}" and later new names ` +
        `are recorded as name="${Metrics.otherName}". Name tasks after what they do, not after their data ` +
        `(a name is a metric label, and a metric's series are never forgotten)`
    )
  }
  return entry.other
}

/** The labels of `kind` alone. */
export const byKind = (kind: Kind): Labels => kindSeries(kind).byKind

/** How many names `kind` records as themselves so far (for tests of the limit). */
export const namesRecorded = (kind: Kind): number => kinds.get(kind)?.names.size ?? 0

/** `effect`, after logging any warning queued by {@link series}, in the calling fiber. */
export const withNotices = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  if (queuedNotices.length === 0) return effect
  const queued = queuedNotices
  queuedNotices = []
  return Effect.zipRight(Effect.forEach(queued, (notice) => Effect.logWarning(notice), { discard: true }), effect)
}

/** Logs any warning queued by {@link series}, in the calling fiber. */
export const notices: Effect.Effect<void> = Effect.suspend(() => withNotices(Effect.void))

const seconds = (millis: number): number => Math.max(0, millis) / 1000

// ---------------------------------------------------------------------------------------------
// Forks and after-response tasks: admitted (queued), begun (running), ended

export const rejected = (kind: Kind, name: string): void => {
  if (off) return
  Metrics.tasksRejected.unsafeUpdate(1, series(kind, name).byKindName)
}

export const admitted = (s: Series): void => {
  if (off) return
  s.hooks.kind.queued.value.modify(1)
}

/** A queued task starts: `submittedAt` and `startedAt` in the same clock's milliseconds. */
export const began = (s: Series, submittedAt: number, startedAt: number): void => {
  if (off) return
  const hooks = s.hooks
  hooks.kind.queued.value.modify(-1)
  hooks.kind.running.value.modify(1)
  hooks.started.value.update(1)
  hooks.lag.value.update(seconds(startedAt - submittedAt))
}

export type Outcome = "succeeded" | "failed" | "interrupted" | "skipped"

export const outcomeOf = (exit: Exit.Exit<unknown, unknown>, skipped: boolean): Outcome =>
  Exit.isSuccess(exit)
    ? "succeeded"
    : skipped
    ? "skipped"
    : causes.isInterruptedOnly(exit.cause)
    ? "interrupted"
    : "failed"

const counted = (s: Series, outcome: Outcome): void => {
  switch (outcome) {
    case "succeeded":
      s.hooks.finished.value.update(1)
      return
    case "failed":
      s.hooks.finished.value.update(1)
      s.hooks.failed.value.update(1)
      return
    case "interrupted":
      s.hooks.interrupted.value.update(1)
      return
    case "skipped":
      s.hooks.skipped.value.update(1)
      return
  }
}

/**
 * An admitted task ends: counted by outcome; out of the running gauge (with its duration, when
 * `clock` is given) if it had begun, out of the queued one otherwise.
 */
export const ended = (
  s: Series,
  exit: Exit.Exit<unknown, unknown>,
  skipped: boolean,
  startedAt: number | undefined,
  clock: Clock.Clock | undefined
): void => {
  if (off) return
  counted(s, outcomeOf(exit, skipped))
  if (startedAt === undefined) {
    s.hooks.kind.queued.value.modify(-1)
    return
  }
  s.hooks.kind.running.value.modify(-1)
  if (clock !== undefined) s.hooks.duration.value.update(seconds(clock.unsafeCurrentTimeMillis() - startedAt))
}

// ---------------------------------------------------------------------------------------------
// Runs: a schedule's run, a daemon's life between restarts, a durable attempt, an offload task

/** A run starts; `lagMillis` when it has a meaning; `running` false for kinds not in the gauge. */
export const runStarted = (s: Series, lagMillis: number | undefined, running = true): void => {
  if (off) return
  s.hooks.started.value.update(1)
  if (running) s.hooks.kind.running.value.modify(1)
  if (lagMillis !== undefined) s.hooks.lag.value.update(seconds(lagMillis))
}

/** A run ends, after `durationMillis`. */
export const runEnded = (s: Series, outcome: Outcome, durationMillis: number, running = true): void => {
  if (off) return
  counted(s, outcome)
  if (running) s.hooks.kind.running.value.modify(-1)
  s.hooks.duration.value.update(seconds(durationMillis))
}

/** A run started now by `clock`, and ended once (later calls to {@link Run.end} do nothing). */
export class Run {
  private readonly startedAt: number
  private ended = false

  constructor(readonly series: Series, private readonly clock: Clock.Clock, lagMillis?: number) {
    this.startedAt = clock.unsafeCurrentTimeMillis()
    runStarted(series, lagMillis)
  }

  end(outcome: Outcome): void {
    if (this.ended) return
    this.ended = true
    runEnded(this.series, outcome, this.clock.unsafeCurrentTimeMillis() - this.startedAt)
  }
}

// ---------------------------------------------------------------------------------------------
// Schedules and daemons

export const skippedTicks = (s: Series, ticks: number): void => {
  if (off) return
  if (ticks > 0) Metrics.scheduleSkippedRuns.unsafeUpdate(ticks, s.byName)
}

export const nextRun = (s: Series, epochMillis: number): void => {
  if (off) return
  Metrics.scheduleNextRun.unsafeUpdate(epochMillis / 1000, s.byName)
}

export const restarted = (s: Series): void => {
  if (off) return
  Metrics.daemonRestarts.unsafeUpdate(1, s.byName)
}

// ---------------------------------------------------------------------------------------------
// Durable tasks

export const durableAttempt = (s: Series): void => {
  if (off) return
  Metrics.durableAttempts.unsafeUpdate(1, s.byName)
}

export const durableReleased = (s: Series): void => {
  if (off) return
  Metrics.durableReleased.unsafeUpdate(1, s.byName)
}

/** The `name`, `state` labels of the durable gauge, made once each. */
const durableStates = new Map<Series, Map<string, Labels>>()

const durableLabels = (s: Series, state: string): Labels => {
  let states = durableStates.get(s)
  if (states === undefined) {
    states = new Map()
    durableStates.set(s, states)
  }
  let made = states.get(state)
  if (made === undefined) {
    made = labels(["name", s.name], ["state", state])
    states.set(state, made)
  }
  return made
}

/** The durable gauge's series set by the last count. */
export type Counted = ReadonlySet<Labels>

/**
 * Sets the durable gauge from a count of the store (`counts`: every unfinished task by name and
 * state); the series it set last time and no longer sees go to 0. Names past the limit add up in
 * `_other`. Returns what it set, to be passed back next time.
 */
export const durableCounts = (
  counts: ReadonlyArray<{ readonly name: string; readonly state: string; readonly count: number }>,
  previous: Counted
): Counted => {
  if (off) return previous
  const totals = new Map<Labels, number>()
  for (const { count, name, state } of counts) {
    const key = durableLabels(series("durable", name), state)
    totals.set(key, (totals.get(key) ?? 0) + count)
  }
  for (const key of previous) if (!totals.has(key)) Metrics.durableTasks.unsafeUpdate(0, key)
  for (const [key, count] of totals) Metrics.durableTasks.unsafeUpdate(count, key)
  return new Set(totals.keys())
}

// ---------------------------------------------------------------------------------------------
// Offload

const busy = labels(["state", "busy"])
const idle = labels(["state", "idle"])
const noLabels: Labels = Object.freeze([])

/** One pool's share of the offload gauges, as it last published them (gauges add every pool's). */
export class PoolGauges {
  private busy = 0
  private idle = 0
  private queued = 0

  publish(threads: number, busyThreads: number, queued: number): void {
    if (off) return
    const idleThreads = Math.max(0, threads - busyThreads)
    if (busyThreads !== this.busy) Metrics.offloadThreads.unsafeModify(busyThreads - this.busy, busy)
    if (idleThreads !== this.idle) Metrics.offloadThreads.unsafeModify(idleThreads - this.idle, idle)
    if (queued !== this.queued) Metrics.offloadQueueDepth.unsafeModify(queued - this.queued, noLabels)
    this.busy = busyThreads
    this.idle = idleThreads
    this.queued = queued
  }
}

export const threadReplaced = (): void => {
  if (off) return
  Metrics.offloadThreadReplacements.unsafeUpdate(1, noLabels)
}

export const cancelTerminated = (): void => {
  if (off) return
  Metrics.offloadCancelTerminations.unsafeUpdate(1, noLabels)
}

// ---------------------------------------------------------------------------------------------
// Shutdown

const phases = new Map<string, Labels>()

export const shutdownPhase = (phase: "drain" | "grace" | "interrupt" | "offload" | "services", millis: number): void => {
  if (off) return
  let key = phases.get(phase)
  if (key === undefined) {
    key = labels(["phase", phase])
    phases.set(phase, key)
  }
  Metrics.shutdownPhase.unsafeUpdate(seconds(millis), key)
}
