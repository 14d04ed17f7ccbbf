/**
 * Bad input, table-driven over every public option: each bad value is refused with an
 * `InvalidOptionError` whose message names the option and the value and gives an example of a valid
 * one — when the layer is built (or, for `fork`, when it is called), before anything starts. Several
 * bad options of one call are refused together, by one error that lists them all.
 *
 * The last section holds the inputs this suite first found accepted or crashing: null for an
 * option or for the options object, values of the wrong kind, overlap with spaced, duplicate job
 * names, out-of-range offsets and durations Node's timers cannot wait for.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Schedule, Schema } from "effect"
import { Background, BackgroundTasks, InvalidOptionError, Offload, Server } from "../../src/index.js"
import { request } from "../support/http-client.js"
import { serving } from "../support/http-server.js"
import { exampleTest, freePort, request as processRequest } from "../support/process-example.js"

const tasksModule = new URL("../fixtures/tasks.worker.ts", import.meta.url)
const isolateModule = new URL("../fixtures/batcher.isolate.ts", import.meta.url)

/** What the message must show for a value: strings quoted, numbers as written, objects as JSON. */
const shown = (value: unknown): string => {
  if (typeof value === "function") return "function"
  if (typeof value === "string" || (typeof value === "object" && value !== null)) return JSON.stringify(value)
  return String(value)
}

const buildError = <A, E>(layer: Layer.Layer<A, E>) => Effect.flip(Effect.scoped(Layer.build(layer)))

const withSupervisor = <E>(layer: Layer.Layer<never, E, Background.Background>) =>
  layer.pipe(Layer.provide(Background.layer()))

// Bad values by kind of option.
const wrongTypes = ["4", {}, true, [1]]
const counts = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, ...wrongTypes]
const durations = [
  -1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  "-1 seconds",
  "soon",
  " 5 seconds",
  "5",
  [-1, 0],
  {},
  true
]
const positiveDurations = [...durations, 0, "0 millis"]
const names = ["", "   ", " padded", "padded ", 5, {}]

interface Case {
  readonly label: string
  readonly option: string
  readonly value: unknown
  /** Builds the layer (or runs the call) that must fail. */
  readonly run: () => Effect.Effect<unknown, unknown>
}

const cases = (
  family: string,
  option: string,
  values: ReadonlyArray<unknown>,
  make: (value: unknown) => Effect.Effect<unknown, unknown>
): ReadonlyArray<Case> => values.map((value) => ({ label: `${family} ${option}`, option, value, run: () => make(value) }))

const background = (options: object) => buildError(Background.layer(options as Background.Options))
const fork = (options: unknown) =>
  Effect.flip(Background.fork(Effect.void, options as Background.ForkOptions).pipe(Effect.provide(Background.layer())))
/** Job options with the name in them; a value that is not an object holds no name, and is passed as it is. */
const named = (options: unknown, name: unknown): unknown =>
  typeof options === "object" && options !== null ? { name, ...options } : options
const every = (options: unknown, name = "job") =>
  buildError(withSupervisor(Background.every(Effect.void, named(options, name) as Background.EveryOptions)))
const cron = (options: object, name = "job") =>
  buildError(withSupervisor(
    Background.cron(Effect.void, { name, cron: "0 3 * * *", timeZone: "UTC", ...options } as Background.CronOptions)
  ))
const daemon = (name: unknown, options: object = {}) =>
  buildError(withSupervisor(Background.daemon(Effect.never, { name: name as string, ...options } as Background.DaemonOptions)))
/** The effect-level starters, run against a supervisor: the same checks as their layers. */
const started = (start: Effect.Effect<void, unknown, Background.Background>) =>
  Effect.flip(start.pipe(Effect.provide(Background.layer())))
const server = (options: object) => buildError(Server.layer({ port: 0, ...options } as Server.Options))
const app = (options: object) =>
  buildError(Server.app(HttpRouter.empty, { port: 0, ...options } as Server.AppOptions<never, never>))
const offload = (options: object) =>
  buildError(Offload.layer({ module: tasksModule, maxThreads: 1, ...options } as Offload.Options))
const isolate = (options: object) =>
  Effect.flip(Effect.scoped(Offload.isolate({
    name: "batcher",
    module: isolateModule,
    message: Schema.String,
    ...options
  } as Offload.IsolateOptions<string, string>)))

const table: ReadonlyArray<Case> = [
  ...cases("Background.layer", "concurrency", [0, ...counts], (v) => background({ concurrency: v })),
  ...cases("Background.layer", "maxQueued", counts, (v) => background({ maxQueued: v })),
  ...cases("Background.layer", "grace", durations, (v) => background({ grace: v })),
  ...cases("Background.layer", "interruptTimeout", durations, (v) => background({ interruptTimeout: v })),

  ...cases("Background.fork(effect, { name })", "name", [...names, undefined, null], (v) => fork({ name: v })),
  ...cases("Background.fork(effect, name)", "name", names.filter((v) => typeof v === "string"), (v) => fork(v)),
  ...cases("Background.fork", "key", [...names, null], (v) => fork({ name: "task", key: v })),
  ...cases("Background.fork", "onConflict", ["merge", "", "KEEP", 1, null], (v) => fork({ name: "task", key: "k", onConflict: v })),

  ...cases("Background.daemon", "name", names, (v) => daemon(v)),
  ...cases("Background.startDaemon(effect, { name })", "name", names, (v) =>
    started(Background.startDaemon(Effect.never, { name: v } as Background.DaemonOptions))),
  ...cases("Background.startDaemon(effect, name)", "name", names.filter((v) => typeof v === "string"), (v) =>
    started(Background.startDaemon(Effect.never, v as string))),
  ...cases("Background.startDaemon", "restart", ["1 second", 5, null], (v) =>
    started(Background.startDaemon(Effect.never, { name: "d", restart: v } as Background.DaemonOptions))),
  ...cases("Background.startEvery", "spaced", positiveDurations, (v) =>
    started(Background.startEvery(Effect.void, { name: "job", spaced: v } as Background.EveryOptions))),
  ...cases("Background.startEvery", "every", [{}, null, 5], (v) =>
    started(Background.startEvery(Effect.void, named(v, "job") as Background.EveryOptions))),
  ...cases("Background.startCron", "cron", ["61 * * * *", "", "* * *", 5], (v) =>
    started(Background.startCron(Effect.void, { name: "job", cron: v, timeZone: "UTC" } as Background.CronOptions))),
  ...cases("Background.startCron", "timeZone", ["Mars/Olympus", "", 5], (v) =>
    started(Background.startCron(Effect.void, { name: "job", cron: "0 3 * * *", timeZone: v } as Background.CronOptions))),
  ...cases("Background.daemon", "restart", ["1 second", 5, {}, Schedule.spaced], (v) => daemon("d", { restart: v })),

  ...cases("Background.every", "name", names, (v) => every({ spaced: 10 }, v as string)),
  ...cases("Background.every", "spaced", positiveDurations, (v) => every({ spaced: v })),
  ...cases("Background.every", "fixedRate", positiveDurations, (v) => every({ fixedRate: v })),
  ...cases("Background.every", "overlap", ["both", "", "SKIP", 1], (v) => every({ fixedRate: 10, overlap: v })),
  ...cases("Background.every", "every", [{}, { spaced: 10, fixedRate: 10 }, null, 5, "10 seconds"], (v) => every(v)),

  ...cases("Background.cron", "name", names, (v) => cron({}, v as string)),
  ...cases(
    "Background.cron",
    "cron",
    ["61 * * * *", "* * *", "* * * * * * *", "every day", "0 0 30 2 *", "", 5, null],
    (v) => cron({ cron: v })
  ),
  ...cases("Background.cron", "timeZone", ["Mars/Olympus", "", " UTC", "UTC ", 5, null], (v) => cron({ timeZone: v })),
  ...cases("Background.cron", "overlap", ["later", "", 1], (v) => cron({ overlap: v })),

  ...cases("Server.layer", "port", [-1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "3000", {}, true], (v) => server({ port: v })),
  ...cases("Server.layer", "host", ["", " 127.0.0.1", "127.0.0.1 ", 5, {}], (v) => server({ host: v })),
  ...cases("Server.layer", "drainTimeout", durations, (v) => server({ drainTimeout: v })),
  ...cases("Server.layer", "interruptTimeout", durations, (v) => server({ interruptTimeout: v })),

  // Server.app takes the server's and the supervisor's options, and the jobs' errors flow out.
  ...cases("Server.app", "port", [-1, 65536], (v) => app({ port: v })),
  ...cases("Server.app", "drainTimeout", ["soon"], (v) => app({ drainTimeout: v })),
  ...cases("Server.app", "concurrency", [0], (v) => app({ concurrency: v })),
  ...cases("Server.app", "maxQueued", [-1], (v) => app({ maxQueued: v })),
  ...cases("Server.app", "grace", [-1], (v) => app({ grace: v })),
  ...cases("Server.app", "interruptTimeout", [Number.NaN], (v) => app({ interruptTimeout: v })),
  ...cases("Server.app jobs", "cron", ["0 0 31 2 *"], (v) =>
    app({ jobs: Background.cron(Effect.void, { name: "nightly", cron: v as string, timeZone: "UTC" }) })),

  ...cases("Offload.layer", "module", ["", 5, {}, true], (v) => offload({ module: v })),
  ...cases("Offload.layer", "maxThreads", [0, ...counts], (v) => offload({ maxThreads: v })),
  ...cases("Offload.layer", "minThreads", counts, (v) => offload({ minThreads: v })),
  ...cases("Offload.layer", "minThreads", [3], (v) => offload({ minThreads: v, maxThreads: 2 })),
  ...cases("Offload.layer", "maxQueued", counts, (v) => offload({ maxQueued: v })),
  ...cases("Offload.layer", "idleTimeout", positiveDurations, (v) => offload({ idleTimeout: v })),
  ...cases("Offload.layer", "maxHeapMb", [4, 0, -1, Number.NaN, Number.POSITIVE_INFINITY, "64", {}, null], (v) => offload({ maxHeapMb: v })),
  ...cases("Offload.layer", "grace", durations, (v) => offload({ grace: v })),
  ...cases("Offload.layer", "startupTimeout", positiveDurations, (v) => offload({ startupTimeout: v })),
  ...cases("Offload.layer", "spareThread", ["yes", 1, 0, null, {}], (v) => offload({ spareThread: v })),

  ...cases("Offload.isolate", "name", [...names, null], (v) => isolate({ name: v })),
  ...cases("Offload.isolate", "module", ["", 5, null], (v) => isolate({ module: v })),
  ...cases("Offload.isolate", "stopTimeout", durations, (v) => isolate({ stopTimeout: v })),
  ...cases("Offload.isolate", "startupTimeout", positiveDurations, (v) => isolate({ startupTimeout: v })),
  ...cases("Offload.isolate", "maxHeapMb", [4, Number.NaN, "64"], (v) => isolate({ maxHeapMb: v }))
]

/** What a valid value looks like: an example, or the whole list of valid values. */
const withExample = /\(e\.g\. |^one of "|^true or false$/

const expectRefused = (error: unknown, option: string, value: unknown) => {
  expect(error).toBeInstanceOf(InvalidOptionError)
  const refused = error as InvalidOptionError
  expect(refused.issues).toHaveLength(1)
  expect(refused.option).toBe(option)
  expect(refused.value).toEqual(value)
  expect(refused.expected).toMatch(withExample)
  expect(refused.message).toBe(`Invalid option "${option}": expected ${refused.expected}, got ${shown(value)}`)
}

/**
 * One error lists every bad option, in order, each with its value and an example of a valid one,
 * one line each under a count.
 */
const expectAllRefused = (error: unknown, refused: ReadonlyArray<readonly [option: string, value: unknown]>) => {
  expect(error).toBeInstanceOf(InvalidOptionError)
  const { issues, message } = error as InvalidOptionError
  expect(issues.map((issue) => [issue.option, issue.value])).toEqual(refused)
  const lines = message.split("\n")
  expect(lines[0]).toBe(`${refused.length} invalid options:`)
  expect(lines.slice(1)).toEqual(issues.map((issue) => `  - ${issue.option}: expected ${issue.expected}, got ${shown(issue.value)}`))
  for (const issue of issues) expect(issue.expected).toMatch(withExample)
}

describe("bad input is refused with InvalidOptionError naming the option and the value", () => {
  for (const { label, option, run, value } of table) {
    it.effect(`${label}: ${shown(value)}`, () =>
      Effect.gen(function*() {
        expectRefused(yield* run(), option, value)
      }))
  }

  it("Server.snapshotRoute token: an empty or non-string token is refused when the route is made", () => {
    for (const token of ["", 5, {}]) {
      let thrown: unknown
      try {
        Server.snapshotRoute({ token: token as string })
      } catch (error) {
        thrown = error
      }
      expectRefused(thrown, "token", token)
    }
  })

  it.effect("a malformed job never starts, nor does anything beside it", () =>
    Effect.gen(function*() {
      let ran = false
      const started = Effect.sync(() => (ran = true))
      const jobs = Layer.mergeAll(
        Background.daemon(started, "beside"),
        Background.cron(started, { name: "broken", cron: "61 * * * *", timeZone: "UTC" })
      )
      expectRefused(yield* app({ jobs }), "cron", "61 * * * *")
      expect(ran).toBe(false)
    }))
})

describe("several bad options of one call are refused together, by one error listing each", () => {
  it.effect("Background.layer", () =>
    Effect.gen(function*() {
      const error = yield* background({ concurrency: 0, maxQueued: -1, grace: "-5 seconds", interruptTimeout: "soon" })
      expectAllRefused(error, [["concurrency", 0], ["maxQueued", -1], ["grace", "-5 seconds"], ["interruptTimeout", "soon"]])
    }))

  it.effect("Background.fork options", () =>
    Effect.gen(function*() {
      expectAllRefused(yield* fork({ name: "", key: " k", onConflict: "merge" }), [["name", ""], ["key", " k"], ["onConflict", "merge"]])
    }))

  it.effect("Background.daemon: its name and restart", () =>
    Effect.gen(function*() {
      expectAllRefused(yield* daemon(" d", { restart: 5 }), [["name", " d"], ["restart", 5]])
    }))

  it.effect("Background.every: its name, fixedRate and overlap", () =>
    Effect.gen(function*() {
      expectAllRefused(yield* every({ fixedRate: 0, overlap: "both" }, ""), [["name", ""], ["fixedRate", 0], ["overlap", "both"]])
    }))

  it.effect("Background.every: spaced, and an overlap given with it", () =>
    Effect.gen(function*() {
      expectAllRefused(yield* every({ spaced: "soon", overlap: "queue" }), [["spaced", "soon"], ["overlap", "queue"]])
    }))

  it.effect("Background.cron: its name, expression, time zone and overlap (the expression checked even in a bad zone)", () =>
    Effect.gen(function*() {
      const error = yield* cron({ cron: "61 * * * *", timeZone: "Mars/Olympus", overlap: "later" }, " nightly")
      expectAllRefused(error, [["name", " nightly"], ["timeZone", "Mars/Olympus"], ["cron", "61 * * * *"], ["overlap", "later"]])
    }))

  it.effect("Background.startCron: a date that never comes, in a bad zone", () =>
    Effect.gen(function*() {
      const error = yield* started(Background.startCron(Effect.void, { name: "job", cron: "0 0 30 2 *", timeZone: "" }))
      expectAllRefused(error, [["timeZone", ""], ["cron", "0 0 30 2 *"]])
    }))

  it.effect("Server.layer", () =>
    Effect.gen(function*() {
      const error = yield* server({ port: 65536, host: " localhost", drainTimeout: -1, interruptTimeout: "later" })
      expectAllRefused(error, [["port", 65536], ["host", " localhost"], ["drainTimeout", -1], ["interruptTimeout", "later"]])
    }))

  it.effect("Server.app: the server's and the supervisor's options in one error, an option both take listed once", () =>
    Effect.gen(function*() {
      const error = yield* app({ port: -1, grace: "-5 seconds", drainTimeout: "abc", concurrency: 0, interruptTimeout: -2 })
      expectAllRefused(error, [["port", -1], ["drainTimeout", "abc"], ["interruptTimeout", -2], ["concurrency", 0], ["grace", "-5 seconds"]])
    }))

  it.effect("Server.app: a jobs value that is not a Layer is listed with the other options, and no job starts", () =>
    Effect.gen(function*() {
      expectAllRefused(yield* app({ grace: -1, jobs: "nightly" }), [["grace", -1], ["jobs", "nightly"]])
    }))

  it.effect("Server.app: with a bad option nothing starts — no job runs, and the port is never bound", () =>
    Effect.gen(function*() {
      let ran = false
      const port = yield* Effect.promise(freePort)
      const jobs = Background.daemon(Effect.sync(() => (ran = true)), "beside")
      const error = yield* buildError(Server.app(HttpRouter.empty, { port, grace: -1, jobs }))
      expectRefused(error, "grace", -1)
      expect(ran).toBe(false)
      // the port is free: a server of our own can take it
      yield* Effect.scoped(Layer.build(Server.layer({ port })))
    }))

  it.effect("Offload.layer (no thread is started)", () =>
    Effect.gen(function*() {
      const error = yield* offload({
        module: 5,
        maxThreads: 0,
        minThreads: -1,
        maxQueued: 1.5,
        idleTimeout: 0,
        maxHeapMb: 4,
        grace: -1,
        startupTimeout: "soon"
      })
      expectAllRefused(error, [
        ["module", 5],
        ["maxThreads", 0],
        ["minThreads", -1],
        ["maxQueued", 1.5],
        ["idleTimeout", 0],
        ["maxHeapMb", 4],
        ["grace", -1],
        ["startupTimeout", "soon"]
      ])
    }))

  it.effect("Offload.layer: minThreads above maxThreads, beside another bad option", () =>
    Effect.gen(function*() {
      expectAllRefused(yield* offload({ minThreads: 3, maxThreads: 2, maxQueued: -1 }), [["minThreads", 3], ["maxQueued", -1]])
    }))

  it.effect("Offload.isolate", () =>
    Effect.gen(function*() {
      const error = yield* isolate({ name: "", module: 5, message: "text", stopTimeout: -1, startupTimeout: 0, maxHeapMb: "64" })
      expectAllRefused(error, [
        ["name", ""],
        ["module", 5],
        ["message", "text"],
        ["stopTimeout", -1],
        ["startupTimeout", 0],
        ["maxHeapMb", "64"]
      ])
    }))

  it.scopedLive("BackgroundTasks.add: one defect listing its bad name and flags", () =>
    Effect.gen(function*() {
      const route = HttpRouter.empty.pipe(HttpRouter.get(
        "/add",
        Effect.gen(function*() {
          const exit = yield* Effect.exit(
            BackgroundTasks.add(Effect.void, { name: "", always: "yes", concurrent: 1 } as unknown as BackgroundTasks.Options)
          )
          const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
          return yield* HttpServerResponse.json({
            issues: error instanceof InvalidOptionError ? error.issues.map((issue) => issue.option) : []
          })
        })
      ))
      const running = yield* serving(route)
      const reply = yield* request(running.port, "/add")
      expect(JSON.parse(reply.body)).toEqual({ issues: ["name", "always", "concurrent"] })
    }))
})

/**
 * Inputs the first run of this suite found accepted (or crashing with a defect); each is refused
 * now, with the typed error.
 */
describe.concurrent("refused since the first reliability run found them accepted", () => {
  const nulls: ReadonlyArray<readonly [string, string, () => Effect.Effect<unknown, unknown>]> = [
    ["Background.layer", "concurrency", () => background({ concurrency: null })],
    ["Background.layer", "grace", () => background({ grace: null })],
    ["Server.layer", "host", () => server({ host: null })],
    ["Server.layer", "drainTimeout", () => server({ drainTimeout: null })],
    ["Offload.layer", "minThreads", () => offload({ minThreads: null })],
    ["Background.daemon", "restart", () => daemon("d", { restart: null })],
    ["Background.every", "overlap", () => every({ fixedRate: 10, overlap: null })],
    ["Background.cron", "overlap", () => cron({ overlap: null })],
    ["Offload.isolate", "stopTimeout", () => isolate({ stopTimeout: null })]
  ]
  for (const [family, option, run] of nulls) {
    it.effect(`${family} ${option}: null is refused, not taken as "not given" (the default)`, () =>
      Effect.gen(function*() {
        expectRefused(yield* run(), option, null)
      }))
  }

  const nullOptions: ReadonlyArray<readonly [string, () => Effect.Effect<unknown, unknown>]> = [
    ["Background.layer(null)", () => background(null as never)],
    ["Server.layer(null)", () => buildError(Server.layer(null as never))],
    ["Offload.layer(null)", () => buildError(Offload.layer(null as never))],
    ["Offload.isolate(null)", () => Effect.flip(Effect.scoped(Offload.isolate(null as never)))],
    ["Background.fork(effect, null)", () => fork(null)],
    ["Background.cron(effect, null)", () => Effect.suspend(() => buildError(withSupervisor(Background.cron(Effect.void, null as never))))]
  ]
  for (const [call, run] of nullOptions) {
    it.effect(`${call} is refused with InvalidOptionError, not a TypeError defect`, () =>
      Effect.gen(function*() {
        expect(yield* run()).toBeInstanceOf(InvalidOptionError)
      }))
  }

  it.effect("Server.app jobs: a value that is not a Layer is refused, not a defect", () =>
    Effect.gen(function*() {
      expectRefused(yield* app({ jobs: "nightly" }), "jobs", "nightly")
    }))

  it.effect("Offload.isolate message: a value that is not a Schema is refused, not a defect", () =>
    Effect.gen(function*() {
      expectRefused(yield* isolate({ message: undefined }), "message", undefined)
    }))

  it.effect("Background.every: overlap given with spaced (where it means nothing) is refused, not ignored", () =>
    Effect.gen(function*() {
      expectRefused(yield* every({ spaced: 10, overlap: "queue" }), "overlap", "queue")
    }))

  it.effect("two jobs with the same name are refused when the layer is built", () =>
    Effect.gen(function*() {
      const jobs = Layer.mergeAll(
        Background.daemon(Effect.never, "sync"),
        Background.every(Effect.void, { name: "sync", spaced: "1 minute" })
      )
      expectRefused(yield* buildError(withSupervisor(jobs)), "name", "sync")
    }))

  it.effect("Background.cron timeZone: an offset outside ±14:00 is refused", () =>
    Effect.gen(function*() {
      expectRefused(yield* cron({ timeZone: "+25:00" }), "timeZone", "+25:00")
    }))

  it.effect("the message shows an infinite part of an [seconds, nanos] duration as Infinity, not null", () =>
    Effect.gen(function*() {
      const error = yield* background({ grace: [Number.POSITIVE_INFINITY, 0] })
      expect(error).toBeInstanceOf(InvalidOptionError)
      expect((error as InvalidOptionError).message).toContain("Infinity")
    }))

  it.effect("Offload.layer startupTimeout and grace beyond Node's timer range (30 days) are refused, not cut to Node's 1 ms fallback", () =>
    Effect.gen(function*() {
      for (const option of ["startupTimeout", "grace"] as const) {
        const error = yield* Effect.flip(Effect.scoped(Layer.build(Offload.layer({ module: tasksModule, [option]: "30 days" }))))
        expectRefused(error, option, "30 days")
      }
    }))

  for (const [label, options] of [
    ["an empty name", { name: "" }],
    ["a padded name", { name: " email" }],
    ["always that is not a boolean", { always: "yes" }],
    ["concurrent that is not a boolean", { concurrent: 1 }]
  ] as const) {
    it.scopedLive(`BackgroundTasks.add: ${label} is refused`, () =>
      Effect.gen(function*() {
        const route = HttpRouter.empty.pipe(HttpRouter.get(
          "/add",
          Effect.gen(function*() {
            const exit = yield* Effect.exit(BackgroundTasks.add(Effect.void, options as BackgroundTasks.Options))
            const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
            return yield* HttpServerResponse.json({ refused: error instanceof InvalidOptionError })
          })
        ))
        const running = yield* serving(route)
        const reply = yield* request(running.port, "/add")
        expect(JSON.parse(reply.body)).toEqual({ refused: true })
      }))
  }

  exampleTest("Server.launch hardDeadline: a negative one is refused at start, not a 0 ms deadline", async ({ examples }) => {
    const app = await examples.spawn("notify", { HARD_DEADLINE_MS: "-1" })
    const first = await app.waitForListening().then(() => "listening", () => "exited")
    expect(first).toBe("exited")
    expect(app.stderr).toContain('Invalid option "hardDeadline"')
  })

  exampleTest("Server.launch: phase bounds beyond Node's timer range (a 30-day drain) are honoured, or refused at start; the hard deadline does not fire at once", async ({ examples }) => {
    const app = await examples.spawn("server", { DRAIN_MS: String(30 * 24 * 3600 * 1000) })
    const first = await app.waitForListening().then(() => "listening", () => "exited")
    if (first === "exited") return expect(app.stderr).toContain('Invalid option "drainTimeout"')
    const slow = processRequest(app.port, "GET", "/slow?ms=500")
    await app.waitForLine(/slow request: answering in 500ms/)
    app.signal("SIGTERM")
    expect((await slow).status).toBe(200)
    const exit = await app.waitForExit()
    expect(exit.code, app.output()).toBe(0)
  })
})
