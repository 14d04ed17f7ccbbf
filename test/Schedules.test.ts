import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Context, Cron, Deferred, Duration, Effect, Either, Fiber, Layer, Option, Schedule, Scope, TestClock } from "effect"
import { Background, InvalidOptionError } from "../src/index.js"
import { makeLogCapture, startSupervisor } from "./support/unit-harness.js"

/** Starts `jobs` on a fresh supervisor; `grace: 0` unless the test needs one. */
const start = <E>(jobs: Layer.Layer<never, E, Background.Background>, options: Background.Options = { grace: 0 }) =>
  startSupervisor(jobs.pipe(Layer.provideMerge(Background.layer(options))))

/**
 * A job body that records the instant each run starts. Run `n` (from 0) takes `durations[n]`
 * (the last entry repeats, default 0) and then does `outcome(n)`.
 */
const recordedRuns = (
  durations: ReadonlyArray<Duration.DurationInput> = [0],
  outcome: (run: number) => Effect.Effect<void, string> = () => Effect.void
) => {
  const starts: Array<number> = []
  const run = Effect.gen(function*() {
    const n = starts.length
    starts.push(yield* Clock.currentTimeMillis)
    yield* Effect.sleep(durations[Math.min(n, durations.length - 1)] ?? 0)
    yield* outcome(n)
  })
  return { starts, run }
}

const failAlways = () => Effect.fail("lost connection")

/**
 * A job body that numbers its runs: run `n` records `run n`, adds a finalizer to its own scope that
 * records `close n`, then does `then(n)`.
 */
const numberedRuns = <E>(events: Array<string>, then: (n: number) => Effect.Effect<void, E, Scope.Scope>) => {
  let run = 0
  return Effect.gen(function*() {
    const n = ++run
    events.push(`run ${n}`)
    yield* Effect.addFinalizer(() => Effect.sync(() => events.push(`close ${n}`)))
    yield* then(n)
  })
}

const buildError = <E>(jobs: Layer.Layer<never, E, Background.Background>) =>
  Effect.flip(Effect.scoped(Layer.build(jobs.pipe(Layer.provide(Background.layer())))))

describe("Background.daemon", () => {
  it.effect("restarts a failing daemon by its restart schedule", () =>
    Effect.gen(function*() {
      const daemon = recordedRuns([0], failAlways)
      const bg = yield* start(
        Background.daemon(daemon.run, { name: "flaky", restart: Schedule.spaced("1 second") })
      )
      expect(daemon.starts).toEqual([0])
      yield* TestClock.adjust("999 millis")
      expect(daemon.starts).toEqual([0])
      yield* TestClock.adjust("1 millis")
      expect(daemon.starts).toEqual([0, 1000])
      yield* TestClock.adjust("2 seconds")
      expect(daemon.starts).toEqual([0, 1000, 2000, 3000])
      yield* bg.shutdown
    }))

  it.effect("restarts after a defect just as after a failure", () =>
    Effect.gen(function*() {
      const daemon = recordedRuns([0], () => Effect.die(new Error("bug")))
      const bg = yield* start(
        Background.daemon(daemon.run, { name: "buggy", restart: Schedule.spaced("1 second") })
      )
      yield* TestClock.adjust("2 seconds")
      expect(daemon.starts).toEqual([0, 1000, 2000])
      yield* bg.shutdown
    }))

  it.effect("logs every failure once, with the daemon's name and cause", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const daemon = recordedRuns([0], (n) => n === 1 ? Effect.die(new Error("bug")) : Effect.fail(`failure ${n}`))
      const bg = yield* start(Background.daemon(daemon.run, { name: "flaky", restart: Schedule.spaced("1 second") }))
      yield* TestClock.adjust("2 seconds")
      const errors = logs.errors()
      expect(errors).toHaveLength(3)
      for (const entry of errors) {
        expect(entry.message).toContain("flaky")
        expect(entry.annotations).toMatchObject({ task: "flaky" })
      }
      expect(errors.map((entry) => Option.getOrUndefined(Cause.failureOption(entry.cause)))).toEqual([
        "failure 0",
        undefined,
        "failure 2"
      ])
      expect(Option.getOrUndefined(Cause.dieOption(errors[1]!.cause))).toMatchObject({ message: "bug" })
      yield* bg.shutdown
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("each run gets its own Scope, closed before the restart", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const body = numberedRuns(events, () => Effect.fail("boom"))
      const bg = yield* start(Background.daemon(body, { name: "scoped", restart: Schedule.spaced("1 second") }))
      yield* TestClock.adjust("1 second")
      expect(events).toEqual(["run 1", "close 1", "run 2", "close 2"])
      yield* bg.shutdown
    }))

  it.effect("shows as restarting in the snapshot while it waits to restart", () =>
    Effect.gen(function*() {
      const daemon = recordedRuns(["1 second"], failAlways)
      const bg = yield* start(
        Background.daemon(daemon.run, { name: "flaky", restart: Schedule.spaced("5 seconds") })
      )
      const state = bg.use(Effect.map(Background.snapshot, (tasks) => tasks.map((task) => [task.kind, task.state])))
      expect(yield* state).toEqual([["daemon", "running"]])
      yield* TestClock.adjust("1 second")
      expect(yield* state).toEqual([["daemon", "restarting"]])
      yield* TestClock.adjust("5 seconds")
      expect(yield* state).toEqual([["daemon", "running"]])
      expect((yield* bg.use(Background.snapshot))[0]?.startedAt).toBe(6000)
      yield* bg.shutdown
    }))

  it.effect("stops for good once its restart schedule is exhausted, and says so in the log", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const daemon = recordedRuns([0], failAlways)
      const restart = Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2)))
      const bg = yield* start(Background.daemon(daemon.run, { name: "doomed", restart }))
      yield* TestClock.adjust("10 seconds")
      expect(daemon.starts).toEqual([0, 1000, 2000])
      const errors = logs.errors().map((entry) => entry.message)
      expect(errors).toHaveLength(4)
      expect(errors[3]).toContain("doomed")
      expect(errors[3]).toContain("stopped")
      expect(yield* bg.use(Background.snapshot)).toEqual([])
      yield* bg.shutdown
      // three failures of a job, and a stopped job — not a failed task
      expect(bg.record.background).toMatchObject({ jobFailures: 3, jobsStopped: 1, failed: 0, finished: 0 })
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("a run that ends in an interruption of its own making is a failure: logged, counted and restarted", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const daemon = recordedRuns([0], () => Effect.interrupt)
      const restart = Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2)))
      const bg = yield* start(Background.daemon(daemon.run, { name: "self-interrupting", restart }))
      yield* TestClock.adjust("10 seconds")
      expect(daemon.starts).toEqual([0, 1000, 2000])
      expect(logs.errors().map((entry) => entry.message)).toEqual([
        expect.stringContaining("failure #1"),
        expect.stringContaining("failure #2"),
        expect.stringContaining("failure #3"),
        expect.stringContaining("restart policy is exhausted")
      ])
      yield* bg.shutdown
      expect(bg.record.background).toMatchObject({ jobFailures: 3, jobsStopped: 1, interrupted: 0 })
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("by default backs off exponentially from 100 ms, capped at 30 seconds", () =>
    Effect.gen(function*() {
      const daemon = recordedRuns([0], failAlways)
      const bg = yield* start(Background.daemon(daemon.run, "flaky"))
      yield* TestClock.adjust("200 seconds")
      const delays = daemon.starts.slice(1).map((at, i) => at - daemon.starts[i]!)
      expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000, 30000])
      yield* bg.shutdown
    }))

  it.effect("by default starts the backoff over after a minute without failures", () =>
    Effect.gen(function*() {
      // runs 0-3 fail at once; run 4 stays healthy for two minutes; then it fails at once again
      const daemon = recordedRuns([0, 0, 0, 0, "2 minutes", 0], failAlways)
      const bg = yield* start(Background.daemon(daemon.run, "flaky"))
      yield* TestClock.adjust("200 seconds")
      const delays = daemon.starts.slice(1).map((at, i) => at - daemon.starts[i]!)
      expect(delays.slice(0, 6)).toEqual([100, 200, 400, 800, 120_000 + 100, 200])
      yield* bg.shutdown
    }))

  it.effect("a daemon that returns is not restarted, and a warning says so", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const daemon = recordedRuns([0])
      const bg = yield* start(Background.daemon(daemon.run, { name: "quitter", restart: Schedule.spaced("1 second") }))
      yield* TestClock.adjust("5 seconds")
      expect(daemon.starts).toEqual([0])
      const warnings = logs.entries.filter((entry) => entry.level === "WARN")
      expect(warnings.map((entry) => entry.message)).toEqual([expect.stringContaining("quitter")])
      yield* bg.shutdown
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("is stopped at shutdown even while waiting to restart: shutdown does not wait out the backoff", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const body = Effect.addFinalizer(() => Effect.sync(() => events.push("closed"))).pipe(
        Effect.zipRight(Effect.sleep("1 second")),
        Effect.zipRight(Effect.fail("boom"))
      )
      const bg = yield* start(Background.daemon(body, { name: "flaky", restart: Schedule.spaced("1 minute") }))
      yield* TestClock.adjust("2 seconds")
      // the failed run's scope closed when it ended; the daemon now waits a minute to restart
      expect(events).toEqual(["closed"])
      expect((yield* bg.use(Background.snapshot)).map((task) => task.state)).toEqual(["restarting"])
      // no clock moves from here: a shutdown that waited for the restart would never complete
      yield* bg.shutdown
      expect(events).toEqual(["closed"])
      expect(bg.record.background).toMatchObject({ jobsStopped: 1, jobFailures: 1, interruptMillis: 0, stillRunning: [] })
    }))
})

describe("Background.every, spaced", () => {
  it.effect("runs at start, then the interval after each run ends", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["300 millis"])
      const bg = yield* start(Background.every(job.run, { name: "poll", spaced: "1 second" }))
      expect(job.starts).toEqual([0])
      yield* TestClock.adjust("1299 millis")
      expect(job.starts).toEqual([0])
      yield* TestClock.adjust("1 millis")
      expect(job.starts).toEqual([0, 1300])
      yield* TestClock.adjust("1300 millis")
      expect(job.starts).toEqual([0, 1300, 2600])
      yield* bg.shutdown
    }))

  it.effect("pipeable: effect.pipe(Background.every({ name, spaced })) is the same job", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["300 millis"])
      const bg = yield* start(job.run.pipe(Background.every({ name: "poll", spaced: "1 second" })))
      expect(job.starts).toEqual([0])
      yield* TestClock.adjust("1300 millis")
      expect(job.starts).toEqual([0, 1300])
      const snapshot = yield* bg.use(Background.snapshot)
      expect(snapshot.map((task) => [task.name, task.kind])).toContainEqual(["poll", "schedule"])
      yield* bg.shutdown
    }))

  it.effect("a run that ends in an interruption of its own making is logged as a failure, and the schedule goes on", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const job = recordedRuns([0], () => Effect.interrupt)
      const bg = yield* start(Background.every(job.run, { name: "self-interrupting", spaced: "1 second" }))
      yield* TestClock.adjust("3 seconds")
      expect(job.starts).toEqual([0, 1000, 2000, 3000])
      expect(logs.errors()).toHaveLength(4)
      expect((yield* bg.use(Background.snapshot)).map((task) => task.name)).toEqual(["self-interrupting"])
      yield* bg.shutdown
      expect(bg.record.background).toMatchObject({ jobFailures: 4, jobsStopped: 1, interrupted: 0 })
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("each run gets its own Scope: what a run opens is closed when that run ends, before the next starts", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const body = numberedRuns(events, (n) =>
        Effect.gen(function*() {
          const running = yield* Deferred.make<void>()
          yield* Effect.forkScoped(
            Deferred.succeed(running, undefined).pipe(
              Effect.zipRight(Effect.never),
              Effect.onInterrupt(() => Effect.sync(() => events.push(`child ${n} interrupted`)))
            )
          )
          yield* Deferred.await(running)
        }))
      const bg = yield* start(Background.every(body, { name: "poll", spaced: "1 second" }))
      yield* TestClock.adjust("1 millis")
      // released in reverse order of acquisition, as Effect.scoped would
      expect(events).toEqual(["run 1", "child 1 interrupted", "close 1"])
      yield* TestClock.adjust("999 millis")
      expect(events).toEqual(["run 1", "child 1 interrupted", "close 1", "run 2", "child 2 interrupted", "close 2"])
      yield* bg.shutdown
    }))

  it.effect("a failing run is logged once with the job's name, and the schedule goes on", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const outcomes = [Effect.fail("flaky upstream"), Effect.die("bug")]
      const job = recordedRuns([0], (n) => outcomes[n] ?? Effect.void)
      const bg = yield* start(Background.every(job.run, { name: "sync", spaced: "1 second" }))
      yield* TestClock.adjust("3 seconds")
      expect(job.starts).toEqual([0, 1000, 2000, 3000])
      const errors = logs.errors()
      expect(errors).toHaveLength(2)
      expect(errors.map((entry) => entry.annotations["task"])).toEqual(["sync", "sync"])
      expect(errors[0]!.message).toContain("sync")
      expect(Option.getOrUndefined(Cause.failureOption(errors[0]!.cause))).toBe("flaky upstream")
      expect(Option.getOrUndefined(Cause.dieOption(errors[1]!.cause))).toBe("bug")
      yield* bg.shutdown
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("a run in progress, the first included, is pending work: awaitIdle waits for it", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["2 seconds"])
      const bg = yield* start(Background.every(job.run, { name: "report", spaced: "10 seconds" }))
      const state = bg.use(Effect.map(Background.snapshot, (tasks) => tasks.map((task) => [task.kind, task.state])))
      expect(yield* state).toEqual([["schedule", "running"]])
      const idle = yield* Effect.fork(bg.use(Background.awaitIdle))
      yield* TestClock.adjust("1999 millis")
      expect(idle.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(idle)
      expect(yield* state).toEqual([["schedule", "idle"]])
      yield* bg.shutdown
    }))

  it.effect("at shutdown, a run in progress finishes within the grace and no new run starts", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["2 seconds"])
      const bg = yield* start(Background.every(job.run, { name: "report", spaced: "1 millis" }), { grace: "5 seconds" })
      // other work keeps the grace open past the run's end, when the next run would be due (2001 ms)
      yield* bg.use(Background.fork(Effect.sleep("3 seconds"), "slow"))
      yield* TestClock.adjust("500 millis")
      const closing = yield* Effect.fork(bg.shutdown)
      // the run ends at 2000 ms; "slow" keeps the grace going until 3000 ms
      yield* TestClock.adjust("2500 millis")
      yield* Fiber.join(closing)
      expect(job.starts).toEqual([0])
      expect(bg.record.background).toMatchObject({ graceMillis: 2500, interruptedNames: [], stillRunning: [] })
    }))

  it.effect("once shutdown has begun no new run starts, even while other work keeps the grace going", () =>
    Effect.gen(function*() {
      const job = recordedRuns()
      const bg = yield* start(Background.every(job.run, { name: "tick", spaced: "1 second" }), { grace: "1 minute" })
      yield* bg.use(Background.fork(Effect.sleep("5 seconds"), "slow"))
      yield* TestClock.adjust("500 millis")
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("4500 millis")
      yield* Fiber.join(closing)
      expect(job.starts).toEqual([0])
      expect(bg.record.background).toMatchObject({ graceMillis: 4500, finished: 1, stillRunning: [] })
    }))

  it.effect("at shutdown, a run past the grace is interrupted with its finalizers run", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const run = Effect.addFinalizer(() => Effect.sync(() => events.push("run closed"))).pipe(
        Effect.zipRight(Effect.never)
      )
      const bg = yield* start(Background.every(run, { name: "stuck", spaced: "1 second" }), { grace: "1 second" })
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      expect(events).toEqual(["run closed"])
      expect(bg.record.background?.interruptedNames).toEqual(["stuck"])
    }))
})

describe("Background.every, fixed rate", () => {
  it.effect("runs on a fixed grid while runs are short", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["300 millis"])
      const bg = yield* start(Background.every(job.run, { name: "tick", fixedRate: "1 second" }))
      yield* TestClock.adjust("3 seconds")
      expect(job.starts).toEqual([0, 1000, 2000, 3000])
      yield* bg.shutdown
    }))

  it.effect("with overlap \"skip\" (the default), ticks that fall during a long run are skipped", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["2500 millis"])
      const bg = yield* start(Background.every(job.run, { name: "tick", fixedRate: "1 second" }))
      yield* TestClock.adjust("2999 millis")
      expect(job.starts).toEqual([0])
      yield* TestClock.adjust("1 millis")
      expect(job.starts).toEqual([0, 3000])
      yield* TestClock.adjust("3 seconds")
      expect(job.starts).toEqual([0, 3000, 6000])
      yield* bg.shutdown
    }))

  it.effect("with overlap \"queue\", ticks missed during a long run run back to back, then the grid resumes", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["2500 millis", 0])
      const bg = yield* start(Background.every(job.run, { name: "tick", fixedRate: "1 second", overlap: "queue" }))
      yield* TestClock.adjust("2500 millis")
      expect(job.starts).toEqual([0, 2500, 2500])
      yield* TestClock.adjust("1500 millis")
      expect(job.starts).toEqual([0, 2500, 2500, 3000, 4000])
      yield* bg.shutdown
    }))
})

describe("Background.cron", () => {
  const at = (expression: string, timeZone: string, from: number) =>
    Cron.next(Either.getOrThrow(Cron.parse(expression, timeZone)), new Date(from)).getTime()

  it.effect("runs at each match in UTC, the first at the next match after start", () =>
    Effect.gen(function*() {
      const first = at("0 3 * * *", "UTC", 0)
      expect(first).toBe(Date.UTC(1970, 0, 1, 3))
      const job = recordedRuns()
      const bg = yield* start(Background.cron(job.run, { name: "nightly", cron: "0 3 * * *", timeZone: "UTC" }))
      yield* TestClock.adjust(first - 1)
      expect(job.starts).toEqual([])
      yield* TestClock.adjust(1)
      expect(job.starts).toEqual([first])
      yield* TestClock.adjust("1 day")
      expect(job.starts).toEqual([first, at("0 3 * * *", "UTC", first)])
      expect(job.starts[1]).toBe(Date.UTC(1970, 0, 2, 3))
      yield* bg.shutdown
    }))

  it.effect("reads the expression in its time zone: 03:00 in Paris is 02:00 UTC in winter", () =>
    Effect.gen(function*() {
      const first = at("0 3 * * *", "Europe/Paris", 0)
      expect(first).toBe(Date.UTC(1970, 0, 1, 2))
      const job = recordedRuns()
      const bg = yield* start(Background.cron(job.run, { name: "nightly", cron: "0 3 * * *", timeZone: "Europe/Paris" }))
      yield* TestClock.adjust(first - 1)
      expect(job.starts).toEqual([])
      yield* TestClock.adjust(1)
      expect(job.starts).toEqual([first])
      yield* bg.shutdown
    }))

  it.effect("follows daylight saving time: 03:00 in Paris is 01:00 UTC in summer", () =>
    Effect.gen(function*() {
      const start0 = Date.UTC(2024, 6, 1)
      yield* TestClock.setTime(start0)
      const job = recordedRuns()
      const bg = yield* start(Background.cron(job.run, { name: "nightly", cron: "0 3 * * *", timeZone: "Europe/Paris" }))
      yield* TestClock.adjust("2 days")
      expect(job.starts).toEqual([Date.UTC(2024, 6, 1, 1), Date.UTC(2024, 6, 2, 1)])
      yield* bg.shutdown
    }))

  it.effect("with overlap \"skip\" (the default), matches during a long run are skipped", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["150 seconds", 0])
      const bg = yield* start(Background.cron(job.run, { name: "minutely", cron: "* * * * *", timeZone: "UTC" }))
      yield* TestClock.adjust("5 minutes")
      expect(job.starts).toEqual([60_000, 240_000, 300_000])
      yield* bg.shutdown
    }))

  it.effect("with overlap \"queue\", matches during a long run run back to back afterwards", () =>
    Effect.gen(function*() {
      const job = recordedRuns(["150 seconds", 0])
      const bg = yield* start(
        Background.cron(job.run, { name: "minutely", cron: "* * * * *", timeZone: "UTC", overlap: "queue" })
      )
      yield* TestClock.adjust("5 minutes")
      expect(job.starts).toEqual([60_000, 210_000, 210_000, 240_000, 300_000])
      yield* bg.shutdown
    }))

  it.effect("a failing run is logged and the next match still runs", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const job = recordedRuns([0], (n) => n === 0 ? Effect.fail("disk full") : Effect.void)
      const bg = yield* start(Background.cron(job.run, { name: "minutely", cron: "* * * * *", timeZone: "UTC" }))
      yield* TestClock.adjust("2 minutes")
      expect(job.starts).toEqual([60_000, 120_000])
      expect(logs.errors().map((entry) => [entry.annotations["task"], Cause.squash(entry.cause)])).toEqual([
        ["minutely", "disk full"]
      ])
      yield* bg.shutdown
    }).pipe(Effect.provide(logs.layer))
  })

  it.effect("supports a seconds field", () =>
    Effect.gen(function*() {
      const job = recordedRuns()
      const bg = yield* start(Background.cron(job.run, { name: "fast", cron: "*/15 * * * * *", timeZone: "UTC" }))
      yield* TestClock.adjust("1 minute")
      expect(job.starts).toEqual([15_000, 30_000, 45_000, 60_000])
      yield* bg.shutdown
    }))
})

describe("options are validated when the layer is built", () => {
  // Loosely typed on purpose: these stand for callers the type checker cannot see (JS, config files).
  const every = (options: object, name = "job") =>
    Background.every(Effect.void, { name, ...options } as Background.EveryOptions)
  const cron = (options: object, name = "job") =>
    Background.cron(Effect.void, { name, cron: "0 3 * * *", timeZone: "UTC", ...options } as Background.CronOptions)
  const daemon = (name: string, options: object = {}) =>
    Background.daemon(Effect.void, { name, ...options } as Background.DaemonOptions)

  const cases: ReadonlyArray<
    readonly [label: string, Layer.Layer<never, InvalidOptionError, Background.Background>, string, unknown]
  > = [
    ["every: spaced 0", every({ spaced: 0 }), "spaced", 0],
    ["every: spaced -1", every({ spaced: -1 }), "spaced", -1],
    ["every: spaced NaN", every({ spaced: Number.NaN }), "spaced", Number.NaN],
    ["every: spaced Infinity", every({ spaced: Number.POSITIVE_INFINITY }), "spaced", Number.POSITIVE_INFINITY],
    ["every: spaced \"-1 seconds\"", every({ spaced: "-1 seconds" }), "spaced", "-1 seconds"],
    ["every: spaced \"0 millis\"", every({ spaced: "0 millis" }), "spaced", "0 millis"],
    ["every: spaced \"often\"", every({ spaced: "often" }), "spaced", "often"],
    ["every: fixedRate 0", every({ fixedRate: 0 }), "fixedRate", 0],
    ["every: fixedRate -5", every({ fixedRate: -5 }), "fixedRate", -5],
    ["every: overlap \"both\"", every({ fixedRate: 10, overlap: "both" }), "overlap", "both"],
    ["every: no cadence", every({}), "every", {}],
    ["every: both cadences", every({ spaced: 10, fixedRate: 10 }), "every", { spaced: 10, fixedRate: 10 }],
    ["every: empty name", every({ spaced: 10 }, ""), "name", ""],
    ["every: padded name", every({ spaced: 10 }, " job"), "name", " job"],
    ["cron: out of range", cron({ cron: "61 * * * *" }), "cron", "61 * * * *"],
    ["cron: too few fields", cron({ cron: "* * *" }), "cron", "* * *"],
    ["cron: words", cron({ cron: "every day" }), "cron", "every day"],
    ["cron: a date that never comes", cron({ cron: "0 0 30 2 *" }), "cron", "0 0 30 2 *"],
    ["cron: unknown time zone", cron({ timeZone: "Mars/Olympus" }), "timeZone", "Mars/Olympus"],
    ["cron: empty time zone", cron({ timeZone: "" }), "timeZone", ""],
    ["cron: overlap \"later\"", cron({ overlap: "later" }), "overlap", "later"],
    ["cron: empty name", cron({}, ""), "name", ""],
    ["daemon: empty name", daemon(""), "name", ""],
    ["daemon: padded name", daemon("d "), "name", "d "],
    ["daemon: restart not a Schedule", daemon("d", { restart: "1 second" }), "restart", "1 second"]
  ]

  for (const [label, layer, option, value] of cases) {
    it.effect(`${label} fails with InvalidOptionError naming "${option}"`, () =>
      Effect.gen(function*() {
        const error = yield* buildError(layer)
        expect(error).toBeInstanceOf(InvalidOptionError)
        expect(error.option).toBe(option)
        expect(error.value).toEqual(value)
      }))
  }

  it.effect("a name missing from the options object fails the layer's build, naming \"name\"", () =>
    Effect.gen(function*() {
      const unnamed = { spaced: "1 second" } as Background.EveryOptions
      for (const layer of [Background.every(Effect.void, unnamed), Effect.void.pipe(Background.every(unnamed))]) {
        const error = yield* buildError(layer)
        expect(error).toBeInstanceOf(InvalidOptionError)
        expect(error.option).toBe("name")
        expect(error.value).toBeUndefined()
      }
    }))
})

describe("jobs started from an effect (startDaemon, startEvery, startCron)", () => {
  it.effect("many daemons from one effect: each runs, shows in the snapshot, and is interrupted with its finalizers at shutdown", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const consumer = (partition: number) =>
        Effect.addFinalizer(() => Effect.sync(() => events.push(`closed ${partition}`))).pipe(
          Effect.zipRight(Effect.sync(() => events.push(`consuming ${partition}`))),
          Effect.zipRight(Effect.never)
        )
      const bg = yield* start(Layer.empty)
      yield* bg.use(Effect.forEach([0, 1, 2], (partition) => Background.startDaemon(consumer(partition), `consumer-${partition}`)))
      yield* TestClock.adjust(0)
      expect(events).toEqual(["consuming 0", "consuming 1", "consuming 2"])
      const snapshot = yield* bg.use(Background.snapshot)
      expect(snapshot.map((task) => [task.name, task.kind])).toEqual([
        ["consumer-0", "daemon"],
        ["consumer-1", "daemon"],
        ["consumer-2", "daemon"]
      ])
      yield* bg.shutdown
      expect([...events].sort()).toEqual(["closed 0", "closed 1", "closed 2", "consuming 0", "consuming 1", "consuming 2"])
      expect(bg.record.stillRunning).toEqual([])
    }))

  it.effect("startEvery and startCron run on their cadence, as their layers do", () =>
    Effect.gen(function*() {
      const poll = recordedRuns()
      const nightly = recordedRuns()
      const bg = yield* start(Layer.empty)
      yield* bg.use(Background.startEvery(poll.run, { name: "poll", spaced: "1 hour" }))
      yield* bg.use(Background.startCron(nightly.run, { name: "nightly", cron: "0 3 * * *", timeZone: "UTC" }))
      yield* TestClock.adjust("3 hours")
      const hour = 3_600_000
      expect(poll.starts).toEqual([0, hour, 2 * hour, 3 * hour])
      expect(nightly.starts).toEqual([3 * hour])
      yield* bg.shutdown
    }))

  it.effect("a name another job already has is refused with InvalidOptionError, and the first job keeps running", () =>
    Effect.gen(function*() {
      const first = recordedRuns()
      const bg = yield* start(Background.every(first.run, { name: "sync", spaced: "1 second" }))
      const error = yield* bg.use(Effect.flip(Background.startDaemon(Effect.never, "sync")))
      expect(error).toBeInstanceOf(InvalidOptionError)
      expect(error.message).toContain("sync")
      yield* TestClock.adjust("1 second")
      expect(first.starts).toEqual([0, 1000])
      yield* bg.shutdown
    }))

  it.effect("the returned handle stops the job; a name is free again once its job has ended", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const bg = yield* start(Layer.empty)
      const tenant = (run: string) =>
        Effect.addFinalizer(() => Effect.sync(() => events.push(`${run} closed`))).pipe(
          Effect.zipRight(Effect.sync(() => events.push(`${run} running`))),
          Effect.zipRight(Effect.never)
        )
      const first = yield* bg.use(Background.startDaemon(tenant("first"), "tenant-1"))
      expect(first.name).toBe("tenant-1")
      yield* first.interrupt
      expect(events).toEqual(["first running", "first closed"])
      const second = yield* bg.use(Background.startDaemon(tenant("second"), "tenant-1"))
      expect(second.id).not.toBe(first.id)
      // a daemon that returns (and is therefore not restarted) frees its name as well
      yield* bg.use(Background.startDaemon(Effect.void, "report"))
      yield* TestClock.adjust(0)
      const again = yield* bg.use(Effect.either(Background.startDaemon(Effect.never, "report")))
      expect(again._tag).toBe("Right")
      yield* bg.shutdown
      expect(events).toEqual(["first running", "first closed", "second running", "second closed"])
    }))

  it.effect("once shutdown has begun, starting a job fails with ShuttingDownError and nothing runs", () =>
    Effect.gen(function*() {
      let ran = false
      const bg = yield* start(Layer.empty)
      const background = Context.get(bg.context, Background.Background)
      yield* bg.shutdown
      expect(yield* background.isShuttingDown).toBe(true)
      const error = yield* Effect.flip(
        Background.startDaemon(Effect.sync(() => (ran = true)), "late").pipe(
          Effect.provideService(Background.Background, background)
        )
      )
      expect(error._tag).toBe("ShuttingDownError")
      expect(ran).toBe(false)
    }))

  it.effect("during the grace, a job that has stopped keeps its name refused as shutting down, not as taken", () =>
    Effect.gen(function*() {
      const bg = yield* start(Layer.empty, { grace: "2 seconds" })
      const handle = yield* bg.use(Background.startDaemon(Effect.never, "poller"))
      yield* bg.use(Background.fork(Effect.sleep("2 seconds"), "pending"))
      const closing = yield* Effect.fork(bg.shutdown)
      yield* TestClock.adjust("1 second")
      // in the grace: the daemon is stopped through its handle, then started again under its name
      yield* handle.interrupt
      const error = yield* Effect.flip(bg.use(Background.startDaemon(Effect.never, "poller")))
      expect(error._tag).toBe("ShuttingDownError")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      expect(bg.record.background).toMatchObject({ jobsStopped: 1, rejected: 1 })
    }))
})
