import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Logger, Option, Schedule, Schema, Scope } from "effect"
import { createHash } from "node:crypto"
import { execFileSync } from "node:child_process"
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { threadId } from "node:worker_threads"
import { afterAll } from "vitest"
import {
  InvalidOptionError,
  Offload,
  QueueFullError,
  ShuttingDownError,
  TaskSchemaError,
  WorkerCrashError,
  WorkerLoadError,
  WorkerOutOfMemoryError
} from "../src/index.js"
import { ShutdownRecord, ShutdownRecorder } from "../src/internal/report.js"
import { Event } from "./fixtures/batcher.isolate.js"
import {
  Append,
  Exit as ExitTask,
  Hog,
  Later,
  Liar,
  LoadedAt,
  Negative,
  Reverse,
  Spin,
  Sum,
  ThreadId,
  Throws,
  WaitFor
} from "./fixtures/tasks.js"

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url)
const tasksModule = fixture("tasks.worker.ts")

const scratch = mkdtempSync(join(tmpdir(), "offload-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))
let fileCount = 0
const scratchFile = () => join(scratch, `file-${++fileCount}.txt`)
const linesOf = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((line) => line !== "") : [])

/** Polls the pool's numbers until they satisfy `predicate` (vitest's timeout bounds the wait). */
const statsWhen = (predicate: (stats: Offload.Stats) => boolean): Effect.Effect<Offload.Stats, never, Offload.Offload> =>
  Effect.flatMap(
    Offload.stats,
    (stats) => predicate(stats) ? Effect.succeed(stats) : Effect.zipRight(Effect.sleep("5 millis"), statsWhen(predicate))
  )

/** OS threads of this process (Linux); every worker thread is one. */
const osThreads = (): number | undefined => (existsSync("/proc/self/task") ? readdirSync("/proc/self/task").length : undefined)

/** Waits until this process has no more OS threads than `baseline`: no worker thread was left behind. */
const noThreadsBeyond = (baseline: number | undefined) =>
  baseline === undefined
    ? Effect.void
    : Effect.sync(osThreads).pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (n) => n! <= baseline }))

/**
 * Fills the one-thread pool: a task that runs until `release()` is called, and `next` queued
 * behind it.
 */
const fillPool = <A, E>(next: Effect.Effect<A, E, Offload.Offload>) =>
  Effect.gen(function*() {
    const gate = scratchFile()
    const running = yield* Effect.fork(Offload.run(WaitFor, gate))
    yield* statsWhen((stats) => stats.busy === 1)
    const queued = yield* Effect.fork(next)
    yield* statsWhen((stats) => stats.queued === 1)
    return { running, queued, release: () => writeFileSync(gate, "") }
  })

const defectOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined

const buildFails = <E>(layer: Layer.Layer<Offload.Offload, E>) => Effect.scoped(Effect.flip(Layer.build(layer)))

// One pool for the tests that leave it serving: one thread, one queue place, a heap limit.
layer(
  Offload.layer({ module: tasksModule, minThreads: 1, maxThreads: 1, maxQueued: 1, maxHeapMb: 128, grace: "1 second" }),
  { excludeTestServices: true }
)("Offload.run on a one-thread pool", (it) => {
  it.effect("runs a task on a worker thread and returns its typed result, data-first and data-last", () =>
    Effect.gen(function*() {
      expect(yield* Offload.run(Sum, 5)).toBe(10)
      expect(yield* Effect.succeed(4).pipe(Effect.flatMap(Offload.run(Sum)))).toBe(6)
      expect(yield* Offload.run(ThreadId, undefined)).not.toBe(threadId)
    }))

  it.effect("decodes the task's typed failure on the main thread", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Offload.run(Sum, -3))
      expect(error).toBeInstanceOf(Negative)
      expect(error).toMatchObject({ _tag: "Negative", value: -3 })
    }))

  it.effect("a handler's promise answers too: rejected with the failure type it is typed, otherwise a defect", () =>
    Effect.gen(function*() {
      expect(yield* Offload.run(Later, 7)).toBe(7)
      expect(yield* Effect.flip(Offload.run(Later, -1))).toMatchObject({ _tag: "Negative", value: -1 })
      const defect = defectOf(yield* Effect.exit(Offload.run(Later, 0)))
      expect((defect as Error).message).toBe("rejected: zero")
    }))

  it.effect("rejects an input that does not match its schema before it reaches the queue", () =>
    Effect.gen(function*() {
      // The thread is busy and the one queue place taken: only a check before queueing can answer.
      const { running, queued, release } = yield* fillPool(Offload.run(Sum, 3))
      const error = yield* Effect.flip(Offload.run(Sum, "three" as unknown as number))
      expect(error).toBeInstanceOf(TaskSchemaError)
      expect(error).toMatchObject({ task: "sum", phase: "input" })
      expect((error as TaskSchemaError).details).toContain("Expected number")
      release()
      yield* Fiber.join(running)
      expect(yield* Fiber.join(queued)).toBe(3)
    }))

  it.effect("fails with TaskSchemaError when the worker's output does not match the schema", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Offload.run(Liar, "abc"))
      expect(error).toBeInstanceOf(TaskSchemaError)
      expect(error).toMatchObject({ task: "liar", phase: "output" })
    }))

  it.effect("turns an Error thrown by the handler into a defect carrying its message", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Offload.run(Throws, "boom"))
      const defect = defectOf(exit)
      expect(defect).toBeInstanceOf(Error)
      expect((defect as Error).message).toBe("thrown: boom")
    }))

  it.effect("rejects a run with QueueFullError when the thread is busy and the queue is full", () =>
    Effect.gen(function*() {
      const { running, queued, release } = yield* fillPool(Offload.run(Sum, 4))
      const error = yield* Effect.flip(Offload.run(Sum, 5))
      expect(error).toBeInstanceOf(QueueFullError)
      expect(error).toMatchObject({ task: "sum", concurrency: 1, maxQueued: 1 })
      // the two accepted runs are unaffected
      release()
      yield* Fiber.join(running)
      expect(yield* Fiber.join(queued)).toBe(6)
    }))

  it.effect("interrupting a running task terminates its thread, and the next task runs on a fresh one", () =>
    Effect.gen(function*() {
      const before = yield* Offload.stats
      const oldThread = yield* Offload.run(ThreadId, undefined)
      // a minute of CPU, cut short by a timeout; the test would time out if the next run waited for it
      const timedOut = yield* Effect.flip(Offload.run(Spin, 60_000).pipe(Effect.timeout("100 millis")))
      expect(timedOut._tag).toBe("TimeoutException")
      expect(yield* Offload.run(Sum, 10)).toBe(45)
      expect(yield* Offload.run(ThreadId, undefined)).not.toBe(oldThread)
      const after = yield* Offload.stats
      expect(after).toMatchObject({ threads: 1, busy: 0, queued: 0, spawned: before.spawned + 1, crashed: before.crashed })
    }))

  it.effect("interrupting a queued task removes it from the queue: it never runs", () =>
    Effect.gen(function*() {
      const file = scratchFile()
      const { running, queued, release } = yield* fillPool(Offload.run(Append, { file, line: "cancelled" }))
      yield* Fiber.interrupt(queued)
      expect(yield* Offload.stats).toMatchObject({ busy: 1, queued: 0 })
      release()
      yield* Fiber.join(running)
      // the queue is FIFO on one thread: had the cancelled task stayed queued, it would run first
      yield* Offload.run(Append, { file, line: "after" })
      expect(linesOf(file)).toEqual(["after"])
    }))

  it.effect("a worker that exits fails its task with WorkerCrashError and the exit code; the pool carries on", () =>
    Effect.gen(function*() {
      const before = yield* Offload.stats
      const error = yield* Effect.flip(Offload.run(ExitTask, 3))
      expect(error).toBeInstanceOf(WorkerCrashError)
      expect(error).toMatchObject({ task: "exit", exitCode: 3 })
      expect(yield* Offload.run(Sum, 4)).toBe(6)
      expect(yield* Offload.stats).toMatchObject({ threads: 1, spawned: before.spawned + 1, crashed: before.crashed + 1 })
    }))

  it.effect("a task that exceeds maxHeapMb fails with WorkerOutOfMemoryError; the pool carries on", () =>
    Effect.gen(function*() {
      const before = yield* Offload.stats
      const error = yield* Effect.flip(Offload.run(Hog, 0))
      expect(error).toBeInstanceOf(WorkerOutOfMemoryError)
      expect(error).toMatchObject({ task: "hog", maxHeapMb: 128 })
      expect(yield* Offload.run(Sum, 4)).toBe(6)
      expect(yield* Offload.stats).toMatchObject({ threads: 1, crashed: before.crashed + 1 })
    }))

  it.effect("moves buffers listed in `transfer` to the worker instead of copying them", () =>
    Effect.gen(function*() {
      const bytes = Uint8Array.from([1, 2, 3, 4])
      const reversed = yield* Offload.run(Reverse, bytes, { transfer: [bytes.buffer] })
      expect(Array.from(reversed)).toEqual([4, 3, 2, 1])
      expect(bytes.buffer.byteLength).toBe(0) // detached: it now belongs to the worker

      const more = Uint8Array.from([5, 6])
      const back = yield* Effect.succeed(more).pipe(Effect.flatMap(Offload.run(Reverse, { transfer: [more.buffer] })))
      expect(Array.from(back)).toEqual([6, 5])
      expect(more.byteLength).toBe(0)
    }))

  it.effect("runs a one-off blocking call with node's modules and returns its result", () =>
    Effect.gen(function*() {
      const roundTrip = yield* Offload.blocking(
        ({ zlib }, text: string) => zlib.gunzipSync(zlib.gzipSync(text)).toString("utf8"),
        "hello, thread"
      )
      expect(roundTrip).toBe("hello, thread")
      const digest = yield* Offload.blocking(
        ({ crypto }, text: string) => {
          function sha256(input: string) {
            return crypto.createHash("sha256").update(input).digest("hex")
          }
          return sha256(text)
        },
        "abc"
      )
      expect(digest).toBe(createHash("sha256").update("abc").digest("hex"))
      // tsx compiles with kept names, so nested functions arrive wrapped in esbuild's __name helper
      const keptNames = new Function(
        `return ({ path }, file) => { const base = __name((p) => path.basename(p), "base"); return base(file) }`
      )() as (modules: Offload.BlockingModules, file: string) => string
      expect(yield* Offload.blocking(keptNames, "/srv/app/data.json")).toBe("data.json")
    }))

  it.effect("a blocking call that uses a variable from its surroundings fails with a ReferenceError defect", () =>
    Effect.gen(function*() {
      const secret = "outer"
      const exit = yield* Effect.exit(Offload.blocking(() => secret.length, undefined))
      const defect = defectOf(exit)
      expect(defect).toMatchObject({ name: "ReferenceError" })
      expect((defect as Error).message).toContain("secret")
    }))

  it.effect("interrupting a blocking call stuck in native code returns, and a replacement thread serves meanwhile", () =>
    Effect.gen(function*() {
      const fifo = join(scratch, "stuck.fifo")
      execFileSync("mkfifo", [fifo])
      const stuck = yield* Effect.fork(Offload.blocking(({ fs }, path: string) => fs.readFileSync(path, "utf8"), fifo))
      // Opening the write end succeeds once the worker has the read end open; holding it open
      // keeps the worker blocked in read(2), where terminating the thread cannot reach it.
      const writer = yield* Effect.try(() => openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)).pipe(
        Effect.retry(Schedule.spaced("5 millis"))
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => closeSync(writer)))
      yield* Fiber.interrupt(stuck)
      expect(yield* Offload.run(Sum, 3)).toBe(3)
      expect(yield* Offload.stats).toMatchObject({ threads: 1, busy: 0 })
    }).pipe(Effect.scoped))

  it.effect("a blocking call whose argument cannot be cloned fails as a defect and leaves the thread free", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Offload.blocking((_, fn: () => number) => typeof fn, () => 1))
      expect(defectOf(exit)).toMatchObject({ name: "DataCloneError" })
      expect(yield* Offload.run(Sum, 3)).toBe(3)
      expect(yield* Offload.stats).toMatchObject({ busy: 0, queued: 0 })
    }))
})

describe("Offload.layer", () => {
  it.effect("validates every option when the layer is built, naming the option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Offload.Options, string]> = [
        [{ module: tasksModule, minThreads: 3, maxThreads: 2 }, "minThreads"],
        [{ module: tasksModule, maxThreads: 0 }, "maxThreads"],
        [{ module: tasksModule, minThreads: -1 }, "minThreads"],
        [{ module: tasksModule, maxThreads: 1.5 }, "maxThreads"],
        [{ module: tasksModule, maxQueued: -1 }, "maxQueued"],
        [{ module: tasksModule, idleTimeout: 0 }, "idleTimeout"],
        [{ module: tasksModule, grace: "-1 seconds" }, "grace"],
        [{ module: tasksModule, startupTimeout: "soon" as never }, "startupTimeout"],
        [{ module: tasksModule, maxHeapMb: 4 }, "maxHeapMb"],
        [{ module: "" }, "module"]
      ]
      for (const [options, option] of cases) {
        const error = yield* buildFails(Offload.layer(options))
        expect(error).toBeInstanceOf(InvalidOptionError)
        expect(error).toMatchObject({ option })
      }
    }))

  it.live("fails to build with WorkerLoadError for a module path that does not exist, leaving no thread behind", () =>
    Effect.gen(function*() {
      const baseline = osThreads()
      const error = yield* buildFails(Offload.layer({ module: fixture("missing.worker.ts") }))
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect(error).toMatchObject({ module: fixture("missing.worker.ts").href })
      expect((error as WorkerLoadError).reason).toMatch(/cannot find module/i)
      yield* noThreadsBeyond(baseline)
    }))

  it.live("a thread lost during the shutdown's grace is replaced for the jobs still queued, which then run", () =>
    Effect.gen(function*() {
      const gate = scratchFile()
      const scope = yield* Scope.make()
      const pool = yield* Layer.buildWithScope(
        Offload.layer({ module: tasksModule, minThreads: 1, maxThreads: 1, maxQueued: 4, grace: "1 minute" }),
        scope
      )
      const forked = <A, E>(effect: Effect.Effect<A, E, Offload.Offload>) =>
        Effect.fork(Effect.exit(Effect.provide(effect, pool)))
      const first = yield* forked(Offload.run(WaitFor, gate))
      const dies = yield* forked(Offload.run(ExitTask, 3))
      const last = yield* forked(Offload.run(Sum, 4))
      yield* statsWhen((stats) => stats.queued === 2).pipe(Effect.provide(pool))
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      // shutdown has begun: the running job finishes, the next kills its thread, one is left
      writeFileSync(gate, "")
      expect(Exit.isSuccess(yield* Fiber.join(first))).toBe(true)
      const died = yield* Fiber.join(dies)
      expect(Exit.isFailure(died) && Cause.failureOption(died.cause).pipe(Option.map((error) => error._tag))).toEqual(
        Option.some("WorkerCrashError")
      )
      expect(yield* Fiber.join(last)).toEqual(Exit.succeed(6))
      yield* Fiber.join(closing)
    }))

  it.live("a build interrupted while its threads load (a timeout here) leaves no thread behind", () =>
    Effect.gen(function*() {
      const baseline = osThreads()
      const build = Effect.scoped(Layer.build(Offload.layer({ module: tasksModule, minThreads: 2, maxThreads: 2 })))
      const exit = yield* Effect.exit(Effect.timeout(build, "5 millis"))
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.map((error) => error._tag))).toEqual(
        Option.some("TimeoutException")
      )
      yield* noThreadsBeyond(baseline)
    }))

  it.live("fails to build with WorkerLoadError for a module with a syntax error, leaving no thread behind", () =>
    Effect.gen(function*() {
      const baseline = osThreads()
      const error = yield* buildFails(Offload.layer({ module: fixture("syntax-error.worker.mjs"), minThreads: 2, maxThreads: 2 }))
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect((error as WorkerLoadError).reason).toContain("SyntaxError")
      yield* noThreadsBeyond(baseline)
    }))

  it.live("fails to build with WorkerLoadError for a module without an Offload.worker default export", () =>
    Effect.gen(function*() {
      const baseline = osThreads()
      const error = yield* buildFails(Offload.layer({ module: fixture("no-default.worker.ts") }))
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect((error as WorkerLoadError).reason).toContain("no default export made with Offload.worker")
      yield* noThreadsBeyond(baseline)
    }))

  it.live("fails to build with WorkerLoadError for an isolated-runtime module, which serves no tasks", () =>
    Effect.gen(function*() {
      const error = yield* buildFails(Offload.layer({ module: fixture("batcher.isolate.ts") }))
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect((error as WorkerLoadError).reason).toContain("Offload.isolate(")
    }))

  it.live("fails to build with WorkerLoadError that names maxHeapMb when a worker runs out of memory while loading", () =>
    Effect.gen(function*() {
      const baseline = osThreads()
      const error = yield* buildFails(Offload.layer({ module: fixture("hoarder.worker.ts"), maxHeapMb: 32 }))
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect((error as WorkerLoadError).reason).toBe("it ran out of memory while loading (maxHeapMb: 32); raise maxHeapMb")
      yield* noThreadsBeyond(baseline)
    }))

  it.live("fails to build with WorkerLoadError naming startupTimeout for a module that never becomes ready, leaving no thread behind", () =>
    Effect.gen(function*() {
      const baseline = osThreads()
      const error = yield* buildFails(Offload.layer({ module: fixture("never-ready.worker.ts"), startupTimeout: "200 millis" }))
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect((error as WorkerLoadError).reason).toBe(
        "the worker did not become ready within 200ms (startupTimeout); " +
          "if the module is only slow to load (a loaded machine, a large module), raise startupTimeout"
      )
      yield* noThreadsBeyond(baseline)
    }))

  for (
    const [loser, reason] of [
      ["throw", "another thread has loaded this module"],
      ["exit", "the worker exited with code 3 while starting"]
    ] as const
  ) {
    it.live(`the build waits for the first thread only; one that fails to load later (${loser}) is logged, and the pool serves on without it`, () => {
      const logged: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${String(message)}`))
      return Effect.gen(function*() {
        const gate = scratchFile()
        process.env["OFFLOAD_TEST_CLAIM"] = scratchFile()
        process.env["OFFLOAD_TEST_GATE"] = gate
        process.env["OFFLOAD_TEST_LOSER"] = loser
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            delete process.env["OFFLOAD_TEST_CLAIM"]
            delete process.env["OFFLOAD_TEST_GATE"]
            delete process.env["OFFLOAD_TEST_LOSER"]
          })
        )
        const module = fixture("first-only.worker.ts")
        const ctx = yield* Layer.build(Offload.layer({ module, minThreads: 2, maxThreads: 2 }))
        const run = <A, E>(effect: Effect.Effect<A, E, Offload.Offload>) => Effect.provide(effect, ctx)
        // built, though the second thread cannot be ready before the gate opens
        expect(yield* run(Offload.stats)).toMatchObject({ threads: 2, spawned: 2 })
        expect(yield* run(Offload.run(Sum, 3))).toBe(3)
        writeFileSync(gate, "")
        yield* run(statsWhen((stats) => stats.threads === 1))
        const errors = () => logged.filter((line) => line.startsWith("ERROR"))
        yield* Effect.sync(errors).pipe(Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (lines) => lines.length > 0 }))
        expect(errors()).toEqual([
          `ERROR offload: a worker thread failed to load ${module.href}: ${reason}; the pool carries on with 1 thread(s)`
        ])
        expect(yield* run(Offload.run(Sum, 4))).toBe(6)
      }).pipe(Effect.scoped, Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    })
  }

  it.live("retires threads above minThreads after idleTimeout and starts one again on demand", () =>
    Effect.gen(function*() {
      const ctx = yield* Layer.build(Offload.layer({ module: tasksModule, minThreads: 0, maxThreads: 1, idleTimeout: 50 }))
      const stats = statsWhen((stats) => stats.threads === 0).pipe(Effect.provide(ctx))
      yield* stats
      expect(yield* Offload.run(Sum, 4).pipe(Effect.provide(ctx))).toBe(6)
      expect(yield* stats).toMatchObject({ spawned: 2, crashed: 0, busy: 0 })
    }).pipe(Effect.scoped))

  it.live("shutdown lets running tasks finish within grace, interrupts the rest, and returns", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        Offload.layer({ module: tasksModule, minThreads: 2, maxThreads: 2, grace: "1 second" }),
        scope
      )
      // forked outside the pool's scope, so it is the pool's shutdown (not the fiber's owner) that stops them
      const gate = scratchFile()
      const short = yield* Effect.forkDaemon(Offload.run(WaitFor, gate).pipe(Effect.provide(ctx)))
      const stuck = yield* Effect.forkDaemon(Offload.run(Spin, 60_000).pipe(Effect.provide(ctx)))
      yield* statsWhen((stats) => stats.busy === 2).pipe(Effect.provide(ctx))
      // finalizers run last-added first: the short task is let go just as the pool's shutdown starts
      yield* Scope.addFinalizer(scope, Effect.sync(() => writeFileSync(gate, "")))
      yield* Scope.close(scope, Exit.void)
      expect(Exit.isSuccess(yield* Fiber.await(short))).toBe(true)
      const stuckExit = yield* Fiber.await(stuck)
      expect(Exit.isInterrupted(stuckExit)).toBe(true)
      expect(yield* Offload.stats.pipe(Effect.provide(ctx))).toMatchObject({ threads: 0, busy: 0, queued: 0 })
      const refused = yield* Effect.flip(Offload.run(Sum, 1).pipe(Effect.provide(ctx)))
      expect(refused).toBeInstanceOf(ShuttingDownError)
    }))

  it.live("a replacement worker that cannot load is not respawned in a loop; waiting tasks fail, later ones retry; the failure is logged", () => {
    const logged: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${String(message)}`))
    return Effect.gen(function*() {
      const marker = scratchFile()
      process.env["OFFLOAD_TEST_BREAK_MARKER"] = marker
      yield* Effect.addFinalizer(() => Effect.sync(() => delete process.env["OFFLOAD_TEST_BREAK_MARKER"]))
      const ctx = yield* Layer.build(Offload.layer({ module: fixture("breakable.worker.ts"), maxThreads: 1 }))
      const run = <A, E>(effect: Effect.Effect<A, E, Offload.Offload>) => Effect.provide(effect, ctx)
      writeFileSync(marker, "broken")
      // the crash's replacement finds the module broken
      expect(yield* Effect.flip(run(Offload.run(ExitTask, 7)))).toMatchObject({ _tag: "WorkerCrashError", exitCode: 7 })
      const failed = yield* Effect.flip(run(Offload.run(Sum, 3)))
      expect(failed).toBeInstanceOf(WorkerCrashError)
      expect((failed as WorkerCrashError).reason).toContain("broken on purpose")
      const settled = yield* run(statsWhen((stats) => stats.threads === 0))
      yield* Effect.sleep("200 millis")
      expect(yield* run(Offload.stats)).toMatchObject({ threads: 0, spawned: settled.spawned })
      // one line per thread that failed to load (the replacement, and a thread the failed task started if it came later)
      const errors = logged.filter((line) => line.startsWith("ERROR"))
      expect(errors.length).toBeGreaterThan(0)
      for (const line of errors) {
        expect(line).toMatch(/^ERROR offload: a worker thread failed to load .*broken on purpose; the pool carries on with 0 thread\(s\)$/)
      }
      rmSync(marker)
      expect(yield* run(Offload.run(Sum, 3))).toBe(3)
    }).pipe(Effect.scoped, Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })
})

describe("Offload.isolate", () => {
  it.live("runs a program on its own thread; closing the scope flushes what it holds before returning", () =>
    Effect.gen(function*() {
      const file = scratchFile()
      const scope = yield* Scope.make()
      const events = yield* Offload.isolate({ name: "batcher", module: fixture("batcher.isolate.ts"), message: Event }).pipe(
        Scope.extend(scope)
      )
      for (const name of ["a", "b", "c", "d", "e"]) yield* events.send({ file, name })
      yield* Scope.close(scope, Exit.void)
      expect(linesOf(file)).toEqual(["batch a,b,c", "batch d,e"])
      expect(yield* Effect.flip(events.send({ file, name: "late" }))).toBeInstanceOf(ShuttingDownError)
    }))

  for (
    const [mode, problem] of [
      ["throw", "its finalizers failed: flush failed"],
      ["exit", "its thread exited with code 7 while stopping"]
    ] as const
  ) {
    it.live(`a stop whose flush goes wrong (${mode}) is logged as an error, not taken for a clean stop`, () => {
      const logged: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${String(message)}`))
      return Effect.gen(function*() {
        const scope = yield* Scope.make()
        const leaky = yield* Offload.isolate({ name: "leaky", module: fixture("leaky.isolate.ts"), message: Schema.String })
          .pipe(Scope.extend(scope))
        // taken before the stop interrupts the program (a stop lets it read what was sent first)
        yield* leaky.send(mode)
        yield* Scope.close(scope, Exit.void)
        expect(logged.filter((line) => line.startsWith("ERROR") || line.startsWith("WARN"))).toEqual([
          `ERROR isolate "leaky" did not stop cleanly: ${problem}`
        ])
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    })
  }

  it.live("a program that stops on its own is logged as an error through the caller's logger; send then fails", () =>
    Effect.gen(function*() {
      const logged: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${String(message)}`))
      const fragile = yield* Offload.isolate({ name: "fragile", module: fixture("fragile.isolate.ts"), message: Schema.String })
        .pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      yield* fragile.send("die")
      // sends succeed until the main thread hears of the death
      const error = yield* Effect.flip(Effect.forever(Effect.zipRight(fragile.send("ping"), Effect.sleep("5 millis"))))
      expect(error).toBeInstanceOf(WorkerCrashError)
      expect((error as WorkerCrashError).reason).toContain("told to die")
      expect(logged.filter((line) => line.startsWith("ERROR"))).toEqual([
        expect.stringContaining(`isolate "fragile" stopped unexpectedly`)
      ])
      expect(logged[0]).toContain("told to die")
    }).pipe(Effect.scoped))

  it.live("fails with WorkerLoadError for a module that is not an isolated runtime", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Offload.isolate({ name: "not-isolate", module: tasksModule, message: Event }))
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect((error as WorkerLoadError).reason).toContain("Offload.isolated(")
    }).pipe(Effect.scoped))

  it.live("fails with WorkerLoadError naming startupTimeout when its module never becomes ready, leaving no thread behind", () =>
    Effect.gen(function*() {
      const baseline = osThreads()
      const error = yield* Effect.flip(
        Offload.isolate({ name: "never", module: fixture("never-ready.worker.ts"), message: Event, startupTimeout: "200 millis" })
      )
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect((error as WorkerLoadError).reason).toContain("did not become ready within 200ms (startupTimeout)")
      expect((error as WorkerLoadError).message).toContain("raise startupTimeout")
      yield* noThreadsBeyond(baseline)
    }).pipe(Effect.scoped))

  it.live("fails with WorkerLoadError that names maxHeapMb when its module runs out of memory while loading", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Offload.isolate({ name: "hoarder", module: fixture("hoarder.worker.ts"), message: Event, maxHeapMb: 32 })
      )
      expect(error).toBeInstanceOf(WorkerLoadError)
      expect((error as WorkerLoadError).reason).toBe("it ran out of memory while loading (maxHeapMb: 32); raise maxHeapMb")
    }).pipe(Effect.scoped))

  it.live("adds its stopTimeout to the shutdown's bounds, and is named while it stops", () =>
    Effect.gen(function*() {
      const record = new ShutdownRecord()
      const scope = yield* Scope.make()
      yield* Offload.isolate({ name: "batcher", module: fixture("batcher.isolate.ts"), message: Event, stopTimeout: "7 seconds" }).pipe(
        Effect.provideService(ShutdownRecorder, record),
        Scope.extend(scope)
      )
      // a launcher's default hard deadline is this sum plus 5 seconds
      expect(record.budgetMillis).toBe(7000)
      expect(record.live()).toEqual([])
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow()
      expect(record.live()).toEqual(["isolate batcher: stopping"])
      yield* Fiber.join(closing)
      expect(record.live()).toEqual([])
    }))

  it.effect("validates its options", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Offload.isolate({ name: " ", module: fixture("batcher.isolate.ts"), message: Event }))
      expect(error).toMatchObject({ _tag: "InvalidOptionError", option: "name" })
    }).pipe(Effect.scoped))
})

layer(
  Offload.layer({ module: tasksModule, minThreads: 1, maxThreads: 1, maxQueued: 4, spareThread: true }),
  { excludeTestServices: true }
)("Offload with a spare thread", (it) => {
  it.effect("a thread terminated to cancel its task is replaced by the spare, loaded before the cancel, and a new spare loads", () =>
    Effect.gen(function*() {
      const ready = yield* statsWhen((stats) => stats.spare === "ready")
      expect(ready).toMatchObject({ threads: 1, busy: 0 })
      const oldThread = yield* Offload.run(ThreadId, undefined)
      const cancelledAt = Date.now()
      const timedOut = yield* Effect.flip(Offload.run(Spin, 60_000).pipe(Effect.timeout("100 millis")))
      expect(timedOut._tag).toBe("TimeoutException")
      // The next task runs on a thread that had loaded the module before the cancellation.
      expect(yield* Offload.run(LoadedAt, undefined)).toBeLessThan(cancelledAt)
      expect(yield* Offload.run(ThreadId, undefined)).not.toBe(oldThread)
      const after = yield* statsWhen((stats) => stats.spare === "ready")
      expect(after).toMatchObject({ threads: 1, busy: 0, spawned: ready.spawned + 1, crashed: ready.crashed })
    }))
})

// Each busy thread is sent the next job before it finishes the current one. These tests pin down
// that a job waiting inside a thread is never lost, never run twice, and never stuck behind a
// long job while another thread is free.
layer(
  Offload.layer({ module: tasksModule, minThreads: 1, maxThreads: 1, maxQueued: 4 }),
  { excludeTestServices: true }
)("Offload pipelining on one thread", (it) => {
  it.effect("a job waiting behind a cancelled running job is handed back and runs on the replacement thread", () =>
    Effect.gen(function*() {
      const file = scratchFile()
      const gate = scratchFile()
      const running = yield* Effect.fork(Offload.run(WaitFor, gate))
      yield* statsWhen((stats) => stats.busy === 1)
      const behind = yield* Effect.fork(Offload.run(Append, { file, line: "behind" }))
      yield* statsWhen((stats) => stats.queued === 1)
      // The gate is never opened: only terminating the thread ends the first job.
      yield* Fiber.interrupt(running)
      yield* Fiber.join(behind)
      expect(linesOf(file)).toEqual(["behind"])
    }))
})

layer(
  Offload.layer({ module: tasksModule, minThreads: 2, maxThreads: 2, maxQueued: 4 }),
  { excludeTestServices: true }
)("Offload pipelining on two threads", (it) => {
  it.effect("a thread that becomes free takes the job waiting behind another thread's long job", () =>
    Effect.gen(function*() {
      const file = scratchFile()
      const [long, short] = [scratchFile(), scratchFile()]
      const first = yield* Effect.fork(Offload.run(WaitFor, long))
      const second = yield* Effect.fork(Offload.run(WaitFor, short))
      yield* statsWhen((stats) => stats.busy === 2)
      const third = yield* Effect.fork(Offload.run(Append, { file, line: "third" }))
      yield* statsWhen((stats) => stats.queued === 1)
      writeFileSync(short, "")
      yield* Fiber.join(second)
      // The long job is still running, so the third can only have run on the freed thread.
      yield* Fiber.join(third)
      expect(linesOf(file)).toEqual(["third"])
      expect(Option.isNone(yield* Fiber.poll(first))).toBe(true)
      writeFileSync(long, "")
      yield* Fiber.join(first)
    }))

  it.effect("a job that transfers buffers waits for an idle thread: it never moves between threads with its buffers gone", () =>
    Effect.gen(function*() {
      const [long, short] = [scratchFile(), scratchFile()]
      const first = yield* Effect.fork(Offload.run(WaitFor, long))
      const second = yield* Effect.fork(Offload.run(WaitFor, short))
      yield* statsWhen((stats) => stats.busy === 2)
      const bytes = new Uint8Array(16).buffer
      const third = yield* Effect.fork(
        Offload.blocking((_, buffer: ArrayBuffer) => buffer.byteLength, bytes, { transfer: [bytes] })
      )
      yield* statsWhen((stats) => stats.queued === 1)
      // the short job's thread frees up first: the transfer job runs there, with its 16 bytes
      writeFileSync(short, "")
      yield* Fiber.join(second)
      expect(yield* Fiber.join(third)).toBe(16)
      writeFileSync(long, "")
      yield* Fiber.join(first)
    }))
})
