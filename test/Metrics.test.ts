/**
 * The library's metrics after known workloads: each test runs work of one kind with known outcomes
 * and asserts the values the metrics hold. Effect's metric registry is global to the process, so
 * every test names its tasks uniquely (their series start at 0) and reads the kind-wide gauges as
 * changes from what they were when it began. Time is the `TestClock` wherever the work allows it
 * (forks, schedules, daemons, shutdown phases), so durations and lags are asserted exactly; work
 * on real threads, a real server and a real database runs live, and is waited for by polling,
 * bounded, never by timing.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import {
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  MetricKeyType,
  MetricLabel,
  Option,
  Schedule,
  Schema,
  Scope,
  TestClock
} from "effect"
import { spawnSync } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Background, BackgroundTasks, Durable, Metrics, Offload } from "../src/index.js"
import { namesRecorded } from "../src/internal/metrics.js"
import { Negative, Spin, Sum } from "./fixtures/tasks.js"
import { request } from "./support/http-client.js"
import { captureLogs, orHang, serving } from "./support/http-server.js"
import { makeLogCapture, startSupervisor } from "./support/unit-harness.js"

// ---------------------------------------------------------------------------------------------
// Reading the metrics

type Labels = Readonly<Record<string, string>>

/** The metric with `labels`, in the order given (the order the library records them in). */
const labelled = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, labels: Labels) =>
  Metric.taggedWithLabels(metric, Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value)))

const count = (metric: Metric.Metric.Counter<number>, labels: Labels) =>
  Effect.map(Metric.value(labelled(metric, labels)), (state) => state.count)

const gauge = (metric: Metric.Metric.Gauge<number>, labels: Labels = {}) =>
  Effect.map(Metric.value(labelled(metric, labels)), (state) => state.value)

const histogram = (metric: Metric.Metric.Histogram<number>, labels: Labels) =>
  Effect.map(Metric.value(labelled(metric, labels)), (state) => ({ count: state.count, sum: state.sum }))

/** How many observations of the histogram fell at or below `bound` (its cumulative bucket). */
const atOrBelow = (metric: Metric.Metric.Histogram<number>, labels: Labels, bound: number) =>
  Effect.map(Metric.value(labelled(metric, labels)), (state) => state.buckets.find(([le]) => le === bound)?.[1])

/** Every counter of a task series, by outcome. */
const outcomes = (kind: string, name: string) =>
  Effect.all({
    started: count(Metrics.tasksStarted, { kind, name }),
    finished: count(Metrics.tasksFinished, { kind, name }),
    failed: count(Metrics.tasksFailed, { kind, name }),
    interrupted: count(Metrics.tasksInterrupted, { kind, name }),
    rejected: count(Metrics.tasksRejected, { kind, name }),
    skipped: count(Metrics.tasksSkipped, { kind, name })
  })

const none = { started: 0, finished: 0, failed: 0, interrupted: 0, rejected: 0, skipped: 0 }

/** The running and queued gauges of a kind. */
const load = (kind: string) =>
  Effect.all({ running: gauge(Metrics.tasksRunning, { kind }), queued: gauge(Metrics.tasksQueued, { kind }) })

/** Polls `read` until `accept` holds, for at most 30 s (work on threads, servers and databases). */
const until = <A, E, R>(what: string, read: Effect.Effect<A, E, R>, accept: (value: A) => boolean) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const value = yield* read
      if (accept(value)) return value
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.dieMessage(`never happened within 30 s: ${what}`)
  })

/** Starts `jobs` on a fresh supervisor (grace 0 unless given). */
const startJobs = <E>(jobs: Layer.Layer<never, E, Background.Background>, options: Background.Options = { grace: 0 }) =>
  startSupervisor(jobs.pipe(Layer.provideMerge(Background.layer(options))))

// ---------------------------------------------------------------------------------------------

describe("Metrics", () => {
  it("names every metric once, with Prometheus's suffixes", () => {
    expect(new Set(Metrics.names).size).toBe(Metrics.names.length)
    for (const name of Metrics.names) expect(name).toMatch(/^effect_background_[a-z_]+$/)
    const metrics = Object.values(Metrics).filter((value) => typeof value === "function" && "keyType" in value)
    expect(metrics).toHaveLength(Metrics.names.length)
    // every counter is incremental (typed a counter by exporters), and only counters end in _total
    const counters = metrics.filter((metric) => MetricKeyType.isCounterKey(metric.keyType))
    for (const counter of counters) expect(counter.keyType).toMatchObject({ incremental: true })
    expect(Metrics.names.filter((name) => name.endsWith("_total"))).toHaveLength(counters.length)
    expect(Metrics.secondsBuckets.values[0]).toBe(0.001)
  })

  it.effect("forks: outcomes, rejections, queued and running gauges, and lag and duration in seconds", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const bg = yield* startSupervisor(Background.layer({ concurrency: 1, maxQueued: 1, grace: 0 }))
      const before = yield* load("task")

      // one slot, one place in the queue: the first runs 2 s, the second waits, the third is refused
      yield* bg.use(Background.fork(Effect.sleep("2 seconds"), "m-fork-ok"))
      yield* bg.use(Background.fork(Effect.fail("boom"), "m-fork-fail"))
      const refused = yield* bg.use(Background.fork(Effect.void, "m-fork-refused")).pipe(Effect.flip)
      expect(refused._tag).toBe("QueueFullError")
      expect(yield* load("task")).toEqual({ running: before.running + 1, queued: before.queued + 1 })

      yield* TestClock.adjust("2 seconds")
      yield* bg.use(Background.awaitIdle)
      expect(yield* outcomes("task", "m-fork-ok")).toEqual({ ...none, started: 1, finished: 1 })
      expect(yield* outcomes("task", "m-fork-fail")).toEqual({ ...none, started: 1, finished: 1, failed: 1 })
      expect(yield* outcomes("task", "m-fork-refused")).toEqual({ ...none, rejected: 1 })
      // seconds, by the Clock: the first ran 2 s at once; the second waited 2 s for the slot
      expect(yield* histogram(Metrics.taskDuration, { kind: "task", name: "m-fork-ok" })).toEqual({ count: 1, sum: 2 })
      expect(yield* histogram(Metrics.taskLag, { kind: "task", name: "m-fork-ok" })).toEqual({ count: 1, sum: 0 })
      expect(yield* histogram(Metrics.taskLag, { kind: "task", name: "m-fork-fail" })).toEqual({ count: 1, sum: 2 })
      expect(yield* atOrBelow(Metrics.taskLag, { kind: "task", name: "m-fork-fail" }, 1.024)).toBe(0)
      expect(yield* atOrBelow(Metrics.taskLag, { kind: "task", name: "m-fork-fail" }, 2.048)).toBe(1)
      expect(yield* load("task")).toEqual(before)

      // interrupted: one running, one that never left the queue
      const stuck = yield* bg.use(Background.fork(Effect.never, "m-fork-stuck"))
      const waiting = yield* bg.use(Background.fork(Effect.void, "m-fork-never-started"))
      expect(yield* load("task")).toEqual({ running: before.running + 1, queued: before.queued + 1 })
      yield* waiting.interrupt
      yield* TestClock.adjust("1 second")
      yield* stuck.interrupt
      expect(yield* outcomes("task", "m-fork-never-started")).toEqual({ ...none, interrupted: 1 })
      expect(yield* outcomes("task", "m-fork-stuck")).toEqual({ ...none, started: 1, interrupted: 1 })
      expect(yield* histogram(Metrics.taskDuration, { kind: "task", name: "m-fork-stuck" })).toEqual({ count: 1, sum: 1 })
      expect(yield* histogram(Metrics.taskDuration, { kind: "task", name: "m-fork-never-started" })).toEqual({
        count: 0,
        sum: 0
      })
      expect(yield* load("task")).toEqual(before)
      yield* bg.shutdown
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("shutdown: refusals once it has begun, the tasks it interrupts, and each phase's duration", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const bg = yield* startSupervisor(Background.layer({ grace: "3 seconds", interruptTimeout: "1 second" }))
      const before = yield* load("task")
      yield* bg.use(Background.fork(Effect.never, "m-shutdown-stuck"))
      const closing = yield* Effect.fork(bg.shutdown)
      yield* bg.use(Effect.flatMap(Background.Background, (service) => service.isShuttingDown)).pipe(
        Effect.repeat({ until: (closing) => closing })
      )
      yield* TestClock.adjust("1 second")
      const late = yield* bg.use(Background.fork(Effect.void, "m-shutdown-late")).pipe(Effect.flip)
      expect(late._tag).toBe("ShuttingDownError")
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(closing)

      expect(yield* outcomes("task", "m-shutdown-late")).toEqual({ ...none, rejected: 1 })
      expect(yield* outcomes("task", "m-shutdown-stuck")).toEqual({ ...none, started: 1, interrupted: 1 })
      expect(yield* histogram(Metrics.taskDuration, { kind: "task", name: "m-shutdown-stuck" })).toEqual({
        count: 1,
        sum: 3
      })
      expect(yield* gauge(Metrics.shutdownPhase, { phase: "grace" })).toBe(3)
      expect(yield* gauge(Metrics.shutdownPhase, { phase: "interrupt" })).toBe(0)
      expect(yield* load("task")).toEqual(before)
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("schedules: runs by outcome, skipped ticks, the lag behind a tick, the next run, a run cut off", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const before = yield* load("schedule")
      // run 0 takes 2.5 s (the ticks at 1 s and 2 s are skipped), run 1 fails, the others are instant
      let skipRuns = 0
      const skipping = Effect.suspend(() => {
        const run = skipRuns++
        return run === 0 ? Effect.sleep("2500 millis") : run === 1 ? Effect.fail("no") : Effect.void
      })
      // run 0 takes 1.5 s; the tick at 1 s is queued behind it and starts 0.5 s late
      let queueRuns = 0
      const queueing = Effect.suspend(() => (queueRuns++ === 0 ? Effect.sleep("1500 millis") : Effect.void))
      const bg = yield* startJobs(Layer.mergeAll(
        Background.every(skipping, { name: "m-sched-skip", fixedRate: "1 second" }),
        Background.every(queueing, { name: "m-sched-queue", fixedRate: "1 second", overlap: "queue" }),
        Background.every(Effect.never, { name: "m-sched-cut", spaced: "1 second" }),
        // its run succeeds, then the run's scope closes and a finalizer dies: the run failed
        Background.every(Effect.addFinalizer(() => Effect.die("finalizer broke")), {
          name: "m-sched-finalizer",
          spaced: "1 minute"
        })
      ))
      expect((yield* load("schedule")).running).toBe(before.running + 3)

      yield* TestClock.adjust("4 seconds")
      // skip: runs at 0, 3 s (fails) and 4 s; next at 5 s
      expect(yield* outcomes("schedule", "m-sched-skip")).toEqual({ ...none, started: 3, finished: 3, failed: 1 })
      expect(yield* count(Metrics.scheduleSkippedRuns, { name: "m-sched-skip" })).toBe(2)
      expect(yield* gauge(Metrics.scheduleNextRun, { name: "m-sched-skip" })).toBe(5)
      expect(yield* histogram(Metrics.taskDuration, { kind: "schedule", name: "m-sched-skip" })).toEqual({
        count: 3,
        sum: 2.5
      })
      expect(yield* histogram(Metrics.taskLag, { kind: "schedule", name: "m-sched-skip" })).toEqual({ count: 3, sum: 0 })
      // queue: runs at 0, 1.5 s (0.5 s late), 2 s, 3 s and 4 s; none skipped
      expect(yield* outcomes("schedule", "m-sched-queue")).toEqual({ ...none, started: 5, finished: 5 })
      expect(yield* count(Metrics.scheduleSkippedRuns, { name: "m-sched-queue" })).toBe(0)
      expect(yield* histogram(Metrics.taskLag, { kind: "schedule", name: "m-sched-queue" })).toEqual({
        count: 5,
        sum: 0.5
      })
      expect(yield* outcomes("schedule", "m-sched-finalizer")).toEqual({ ...none, started: 1, finished: 1, failed: 1 })
      // the third is still in its first run
      expect((yield* load("schedule")).running).toBe(before.running + 1)

      yield* bg.shutdown
      expect(yield* outcomes("schedule", "m-sched-cut")).toEqual({ ...none, started: 1, interrupted: 1 })
      expect(yield* histogram(Metrics.taskDuration, { kind: "schedule", name: "m-sched-cut" })).toEqual({
        count: 1,
        sum: 4
      })
      expect(yield* load("schedule")).toEqual(before)
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("daemons: each start and failure, restarts, and the ones interrupted at shutdown", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const before = yield* load("daemon")
      const bg = yield* startJobs(Layer.mergeAll(
        Background.daemon(Effect.fail("lost connection"), { name: "m-daemon-flaky", restart: Schedule.spaced("1 second") }),
        Background.daemon(Effect.never, "m-daemon-steady"),
        // its run holds a finalizer that takes a second: the run ends once that has run
        Background.daemon(
          Effect.addFinalizer(() => Effect.sleep("1 second")).pipe(Effect.zipRight(Effect.never)),
          "m-daemon-held"
        )
      ))
      yield* TestClock.adjust("2 seconds")
      // started at 0, 1 s and 2 s, each failing; restarted twice; now waiting for the third restart
      expect(yield* outcomes("daemon", "m-daemon-flaky")).toEqual({ ...none, started: 3, finished: 3, failed: 3 })
      expect(yield* count(Metrics.daemonRestarts, { name: "m-daemon-flaky" })).toBe(2)
      expect((yield* load("daemon")).running).toBe(before.running + 2)

      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      expect(yield* outcomes("daemon", "m-daemon-steady")).toEqual({ ...none, started: 1, interrupted: 1 })
      expect(yield* histogram(Metrics.taskDuration, { kind: "daemon", name: "m-daemon-steady" })).toEqual({
        count: 1,
        sum: 2
      })
      expect(yield* outcomes("daemon", "m-daemon-held")).toEqual({ ...none, started: 1, interrupted: 1 })
      expect(yield* histogram(Metrics.taskDuration, { kind: "daemon", name: "m-daemon-held" })).toEqual({
        count: 1,
        sum: 3
      })
      // the flaky one was waiting to restart, not running: nothing more is counted for it
      expect(yield* outcomes("daemon", "m-daemon-flaky")).toEqual({ ...none, started: 3, finished: 3, failed: 3 })
      expect(yield* load("daemon")).toEqual(before)
    }).pipe(Effect.provide(logs.layer))
  })

  it.live("after-response tasks: run, failed, skipped after a failed handler, interrupted at shutdown", () =>
    Effect.gen(function*() {
      const before = yield* load("after-response")
      const never = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/ok",
          BackgroundTasks.add(Effect.void, { name: "m-ar-ok" }).pipe(
            Effect.zipRight(BackgroundTasks.add(Effect.fail("no"), { name: "m-ar-fail" })),
            Effect.as(HttpServerResponse.text("ok"))
          )
        ),
        HttpRouter.get(
          "/boom",
          BackgroundTasks.add(Effect.void, { name: "m-ar-skipped" }).pipe(Effect.zipRight(Effect.fail("handler failed")))
        ),
        HttpRouter.get(
          "/stuck",
          Effect.as(BackgroundTasks.add(Deferred.await(never), { name: "m-ar-stuck" }), HttpServerResponse.text("ok"))
        )
      )
      const server = yield* serving(app, { grace: 0 })
      expect((yield* request(server.port, "/ok").pipe(orHang("/ok"))).status).toBe(200)
      expect((yield* request(server.port, "/boom").pipe(orHang("/boom"))).status).toBe(500)
      yield* server.use(Background.awaitIdle)

      expect(yield* outcomes("after-response", "m-ar-ok")).toEqual({ ...none, started: 1, finished: 1 })
      expect(yield* outcomes("after-response", "m-ar-fail")).toEqual({ ...none, started: 1, finished: 1, failed: 1 })
      expect(yield* outcomes("after-response", "m-ar-skipped")).toEqual({ ...none, skipped: 1 })
      expect((yield* histogram(Metrics.taskLag, { kind: "after-response", name: "m-ar-ok" })).count).toBe(1)
      expect((yield* histogram(Metrics.taskDuration, { kind: "after-response", name: "m-ar-fail" })).count).toBe(1)
      expect((yield* histogram(Metrics.taskLag, { kind: "after-response", name: "m-ar-skipped" })).count).toBe(0)
      expect(yield* load("after-response")).toEqual(before)

      expect((yield* request(server.port, "/stuck").pipe(orHang("/stuck"))).status).toBe(200)
      yield* until("the stuck task running", load("after-response"), (now) => now.running === before.running + 1)
      yield* Fiber.join(yield* server.shutdown)
      expect(yield* outcomes("after-response", "m-ar-stuck")).toEqual({ ...none, started: 1, interrupted: 1 })
      expect(yield* load("after-response")).toEqual(before)
    }).pipe(Effect.scoped))

  it.live("offload: outcomes, threads busy and idle, the queue, a terminated and replaced thread", () =>
    Effect.gen(function*() {
      const threads = Effect.all({
        busy: gauge(Metrics.offloadThreads, { state: "busy" }),
        idle: gauge(Metrics.offloadThreads, { state: "idle" }),
        queued: gauge(Metrics.offloadQueueDepth)
      })
      const lost = Effect.all({
        terminated: count(Metrics.offloadCancelTerminations, {}),
        replaced: count(Metrics.offloadThreadReplacements, {})
      })
      const idleBefore = yield* threads
      const lostBefore = yield* lost
      const sumBefore = yield* outcomes("offload", "sum")
      const spinBefore = yield* outcomes("offload", "spin")

      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Offload.layer({
          module: new URL("./fixtures/tasks.worker.ts", import.meta.url),
          minThreads: 1,
          maxThreads: 1,
          maxQueued: 4
        }),
        scope
      )
      const use = <A, E>(effect: Effect.Effect<A, E, Offload.Offload>) => Effect.provide(effect, context)
      expect(yield* use(Offload.run(Sum, 4))).toBe(6)
      const negative = yield* use(Offload.run(Sum, -1)).pipe(Effect.flip)
      expect(negative).toBeInstanceOf(Negative)
      yield* until("the thread idle", threads, (now) => now.idle === idleBefore.idle + 1 && now.busy === idleBefore.busy)

      // a long task holds the thread, a second waits behind it; the first is cancelled
      const spinning = yield* Effect.fork(use(Offload.run(Spin, 60_000)))
      yield* until("the thread busy", threads, (now) => now.busy === idleBefore.busy + 1)
      const waiting = yield* Effect.fork(use(Offload.run(Sum, 3)))
      yield* until("a task queued", threads, (now) => now.queued === idleBefore.queued + 1)
      yield* Fiber.interrupt(spinning)
      expect(yield* Fiber.join(waiting).pipe(orHang("the queued task"))).toBe(3)

      expect(yield* lost).toEqual({ terminated: lostBefore.terminated + 1, replaced: lostBefore.replaced + 1 })
      const sum = yield* outcomes("offload", "sum")
      expect(sum).toEqual({
        ...sumBefore,
        started: sumBefore.started + 3,
        finished: sumBefore.finished + 3,
        failed: sumBefore.failed + 1
      })
      expect(yield* outcomes("offload", "spin")).toEqual({
        ...spinBefore,
        started: spinBefore.started + 1,
        interrupted: spinBefore.interrupted + 1
      })
      yield* until("the new thread idle", threads, (now) =>
        now.idle === idleBefore.idle + 1 && now.busy === idleBefore.busy && now.queued === idleBefore.queued)

      yield* Scope.close(scope, Exit.void)
      expect(yield* threads).toEqual(idleBefore)
    }))

  it.live("durable tasks: attempts, failures, the dead and the released, and the store's counts by state", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "metrics-test-"))),
        (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
      )
      const N = Schema.Struct({ n: Schema.Number })
      const Flaky = Durable.task("m-durable-flaky", {
        payload: N,
        run: (_, { attempt }) => (attempt === 1 ? Effect.fail("not yet") : Effect.void),
        maxAttempts: 3,
        retry: Schedule.spaced("10 millis")
      })
      const Doomed = Durable.task("m-durable-doomed", {
        payload: N,
        run: () => Effect.fail("never"),
        maxAttempts: 2,
        retry: Schedule.spaced("10 millis")
      })
      const Blocked = Durable.task("m-durable-blocked", { payload: N, run: () => Effect.never })
      const before = yield* load("durable")

      const layer = Durable.layer([Flaky, Doomed, Blocked]).pipe(
        Layer.provideMerge(Background.layer({ grace: 0 })),
        Layer.provideMerge(Durable.sqlite({ filename: join(dir, "tasks.sqlite"), lease: "2 seconds", pollInterval: "20 millis" }))
      )
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(layer, scope)
      const use = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<typeof layer>>) => Effect.provide(effect, context)
      const stateOf = (id: string) => use(Effect.map(Durable.status(id), Option.map((task) => task.state)))
      const flaky = yield* use(Durable.enqueue(Flaky, { n: 1 }))
      const doomed = yield* use(Durable.enqueue(Doomed, { n: 2 }))
      yield* use(Durable.enqueue(Blocked, { n: 3 }))
      yield* until("the flaky task done", stateOf(flaky), (state) => Option.getOrUndefined(state) === "done")
      yield* until("the doomed task dead", stateOf(doomed), (state) => Option.getOrUndefined(state) === "dead")

      expect(yield* count(Metrics.durableAttempts, { name: "m-durable-flaky" })).toBe(2)
      expect(yield* outcomes("durable", "m-durable-flaky")).toEqual({ ...none, started: 2, finished: 2, failed: 1 })
      expect(yield* count(Metrics.durableAttempts, { name: "m-durable-doomed" })).toBe(2)
      expect(yield* outcomes("durable", "m-durable-doomed")).toEqual({ ...none, started: 2, finished: 2, failed: 2 })
      // the store as the workers count it (by name and state)
      yield* until(
        "the dead task counted",
        gauge(Metrics.durableTasks, { name: "m-durable-doomed", state: "dead" }),
        (dead) => dead === 1
      )
      yield* until(
        "the blocked task counted as running",
        gauge(Metrics.durableTasks, { name: "m-durable-blocked", state: "running" }),
        (running) => running === 1
      )
      expect((yield* load("durable")).running).toBe(before.running + 1)

      // shutdown with no grace: the blocked run is released to the store
      yield* Scope.close(scope, Exit.void)
      expect(yield* count(Metrics.durableReleased, { name: "m-durable-blocked" })).toBe(1)
      expect(yield* outcomes("durable", "m-durable-blocked")).toEqual({ ...none, started: 1, interrupted: 1 })
      expect(yield* load("durable")).toEqual(before)
    }).pipe(Effect.scoped, Effect.provide(captureLogs().layer)))

  // Last: it fills the names of forks up to the limit.
  it.effect("caps the names of each kind: later names share `_other`, with one warning", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const bg = yield* startSupervisor(Background.layer({ grace: 0 }))
      const other = { kind: "task", name: Metrics.otherName }
      const otherBefore = yield* count(Metrics.tasksStarted, other)
      const room = Metrics.nameLimit - namesRecorded("task")
      expect(room).toBeGreaterThan(0)
      for (let i = 0; i < room; i++) yield* bg.use(Background.fork(Effect.void, `m-cap-${i}`))
      expect(yield* count(Metrics.tasksStarted, { kind: "task", name: `m-cap-${room - 1}` })).toBe(1)
      expect(logs.entries.filter((entry) => entry.level === "WARN")).toEqual([])

      // over the limit: three tasks, two new names
      yield* bg.use(Background.fork(Effect.void, "m-cap-over-1"))
      yield* bg.use(Background.fork(Effect.fail("no"), "m-cap-over-2"))
      yield* bg.use(Background.fork(Effect.void, "m-cap-over-1"))
      yield* bg.use(Background.awaitIdle)
      expect(yield* count(Metrics.tasksStarted, other)).toBe(otherBefore + 3)
      expect(yield* count(Metrics.tasksFailed, other)).toBe(1)
      const series = Metric.unsafeSnapshot().filter((pair) =>
        pair.metricKey.tags.some((label) => label.key === "name" && label.value.startsWith("m-cap-over"))
      )
      expect(series).toEqual([])
      const warnings = logs.entries.filter((entry) => entry.level === "WARN")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]!.message).toContain(`more than ${Metrics.nameLimit} distinct names of task tasks`)
      expect(warnings[0]!.message).toContain("\"m-cap-over-1\"")
      yield* bg.shutdown
    }).pipe(Effect.provide(logs.layer))
  })

  it("EFFECT_BACKGROUND_METRICS=off records nothing for the process; a value it does not know is refused at load", async () => {
    const run = (setting: string) =>
      spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./fixtures/metrics-switch.ts", import.meta.url))], {
        env: { ...process.env, EFFECT_BACKGROUND_METRICS: setting },
        encoding: "utf8",
        timeout: 120_000
      })
    // the counts are the last line (the failed fork's report is logged before it)
    const counts = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1) ?? "")
    const on = run("on")
    expect(on.status).toBe(0)
    expect(counts(on.stdout)).toEqual({ started: 2, finished: 2, failed: 1 })
    const off = run("off")
    expect(off.status).toBe(0)
    expect(counts(off.stdout)).toEqual({ started: 0, finished: 0, failed: 0 })
    const bogus = run("no")
    expect(bogus.status).not.toBe(0)
    expect(bogus.stderr).toContain("InvalidOptionError")
    expect(bogus.stderr).toContain("EFFECT_BACKGROUND_METRICS")
  })
})
