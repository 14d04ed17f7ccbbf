/**
 * Worker-thread offloading with typed tasks, true cancellation and isolated runtimes — the
 * counterpart of `asyncio.to_thread`, greenletio and "a thread with its own event loop", without a
 * GIL and with cancellation that really stops the work.
 *
 * A task is defined once with {@link task} (a name and schemas), implemented in a worker module
 * whose default export is {@link worker}, and run from any effect with {@link run}. The pool
 * ({@link layer}) belongs to the server's lifetime: it closes after background work, before your
 * services.
 *
 * @since 0.1.0
 * @module
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as ParseResult from "effect/ParseResult"
import * as Runtime from "effect/Runtime"
import type * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import {
  type InvalidOptionError,
  QueueFullError,
  ShuttingDownError,
  TaskSchemaError,
  WorkerCrashError,
  WorkerLoadError,
  WorkerOutOfMemoryError
} from "./Errors.js"
import {
  type Implementation,
  type IsolateModule,
  receiver,
  type TaskDefinition,
  type TasksModule,
  WorkerModuleTypeId
} from "./internal/offload/definitions.js"
import { IsolateWorker } from "./internal/offload/isolate.js"
import * as metrics from "./internal/metrics.js"
import { type Job, type JobResult, Pool, type PoolStats } from "./internal/offload/pool.js"
import { deserializeDefect, type JobMessage } from "./internal/offload/protocol.js"
import * as offloadOptions from "./internal/offload/options.js"
import * as validate from "./internal/options.js"
import { currentRecord } from "./internal/report.js"

/**
 * A typed task: its name and the schemas of its input, output and typed failure. Define it in a
 * module that both the server and the worker module import.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Offload } from "effect-background"
 *
 * export const Fib = Offload.task("fib", { input: Schema.Number, output: Schema.Number })
 * export type FibTask = Offload.Task<number, number, number, number, never, never>
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Task<I, IE, O, OE, F, FE> extends TaskDefinition<I, IE, O, OE, F, FE> {}

/**
 * Defines a task. Values cross the thread boundary in their encoded form, so schemas may
 * transform (dates, bigints, classes); schemas must not need services.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Offload } from "effect-background"
 *
 * class TooLarge extends Schema.TaggedError<TooLarge>()("TooLarge", { limit: Schema.Number }) {}
 *
 * export const Fib = Offload.task("fib", {
 *   input: Schema.Number,
 *   output: Schema.Number,
 *   failure: TooLarge
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const task = <I, IE, O, OE, F = never, FE = never>(
  name: string,
  schemas: {
    readonly input: Schema.Schema<I, IE>
    readonly output: Schema.Schema<O, OE>
    readonly failure?: Schema.Schema<F, FE> | undefined
  }
): Task<I, IE, O, OE, F, FE> => ({
  _tag: "TaskDefinition",
  name,
  input: schemas.input,
  output: schemas.output,
  failure: schemas.failure ?? (Schema.Never as unknown as Schema.Schema<F, FE>)
})

/**
 * Implements a task inside a worker module. The handler may return a value, a promise or an
 * `Effect`; failing with (or throwing) a value of the task's failure schema is a typed failure,
 * anything else is a defect.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Offload } from "effect-background"
 *
 * const Fib = Offload.task("fib", { input: Schema.Number, output: Schema.Number })
 * const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2))
 *
 * export default Offload.worker(Offload.implement(Fib, fib))
 * ```
 *
 * @since 0.1.0
 * @category worker
 */
export const implement = <I, IE, O, OE, F, FE>(
  self: Task<I, IE, O, OE, F, FE>,
  handler: (input: I) => O | PromiseLike<O> | Effect.Effect<O, F>
): Implementation => ({ definition: self, handler: handler as (input: unknown) => unknown })

/**
 * The default export of a worker module: the tasks it implements.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Offload } from "effect-background"
 *
 * const Hash = Offload.task("hash", { input: Schema.String, output: Schema.String })
 *
 * export default Offload.worker(
 *   Offload.implement(Hash, (text) => Effect.succeed(text.split("").reverse().join("")))
 * )
 * ```
 *
 * @since 0.1.0
 * @category worker
 */
export const worker = (...implementations: ReadonlyArray<Implementation>): TasksModule => ({
  [WorkerModuleTypeId]: WorkerModuleTypeId,
  kind: "tasks",
  implementations: new Map(implementations.map((implementation) => [implementation.definition.name, implementation]))
})

/**
 * The default export of a worker module that runs one long-lived Effect program on its own thread
 * and runtime. The program reads typed messages from `mailbox`. At shutdown it first takes the
 * messages already sent, then its fiber is interrupted, so its finalizers flush what it holds.
 *
 * @example
 * ```ts
 * import { Effect, Queue, Schema } from "effect"
 * import { Offload } from "effect-background"
 *
 * export default Offload.isolated(Schema.String, (mailbox) =>
 *   Effect.forever(Effect.flatMap(Queue.take(mailbox), (event) => Effect.log(`event ${event}`)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category worker
 */
export const isolated = <M, ME>(
  message: Schema.Schema<M, ME>,
  program: (mailbox: Queue.Dequeue<M>) => Effect.Effect<unknown, unknown>
): IsolateModule => ({
  [WorkerModuleTypeId]: WorkerModuleTypeId,
  kind: "isolate",
  message: message as Schema.Schema<unknown, unknown>,
  program: program as (mailbox: Queue.Dequeue<unknown>) => Effect.Effect<unknown, unknown>
})

/**
 * Options of {@link layer}; each is validated when the layer is built.
 *
 * @example
 * ```ts
 * import type { Offload } from "effect-background"
 *
 * const options: Offload.Options = {
 *   module: new URL("./cpu.worker.ts", import.meta.url),
 *   maxThreads: 4,
 *   maxQueued: 100,
 *   maxHeapMb: 256
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The worker module (path or URL; `.ts` under tsx or compiled `.js`). A `.ts` path that does not
   * exist while its `.js` sibling does means the sibling, so `new URL("./x.worker.ts",
   * import.meta.url)` works before and after compiling. Without a module only {@link blocking} works.
   */
  readonly module?: string | URL | undefined
  /** Threads kept alive when idle. Default 1 (at most `maxThreads`). */
  readonly minThreads?: number | undefined
  /** Threads at most. Default: available cores minus one, at least 1. */
  readonly maxThreads?: number | undefined
  /** Tasks that may wait for a thread before `run` fails with `QueueFullError`. Default 1000. */
  readonly maxQueued?: number | undefined
  /** How long a thread above `minThreads` may stay idle. Default 30 seconds. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** Heap limit per worker in MB; a task that exceeds it fails with `WorkerOutOfMemoryError`. */
  readonly maxHeapMb?: number | undefined
  /** How long queued and running tasks may finish at shutdown before workers are terminated. Default 5 seconds. */
  readonly grace?: Duration.DurationInput | undefined
  /**
   * How long a worker thread may take to load its module (and what it imports) and say it is
   * ready. Default 60 seconds. The machine's load stretches a thread's start: on a busy 2-core
   * machine, a thread of the examples took longer than the former default of 10 seconds and failed
   * the server's start, and a whole start of `examples/server.ts` took over 20 seconds; a start
   * must not fail for that. The bound is there so that a module that never finishes loading (a
   * top-level `await` that never settles) fails the start instead of hanging it. When it passes
   * for the thread the build waits on, the build fails with `WorkerLoadError` whose reason names
   * this option; if the module is only slow to load, raise it. When it passes for a thread loading
   * later (see {@link layer}), that thread is stopped and the failure logged.
   */
  readonly startupTimeout?: Duration.DurationInput | undefined
  /**
   * Keep one more thread loaded and idle, beside the `maxThreads` that run tasks, to take over at
   * once when a thread is lost: terminated because its task was cancelled (a timeout, an
   * interrupted request) or crashed. Without it the next task waits for a new thread to load the
   * module (seconds under a TypeScript loader); with it, the spare takes that thread's place and a
   * new spare loads in the background. It costs one idle thread's memory, and starts once the pool
   * has started. A spare that fails to load is logged like any thread, and not started again.
   * Default `false`.
   */
  readonly spareThread?: boolean | undefined
}

/**
 * The pool's numbers, as {@link stats} reads them.
 *
 * @example
 * ```ts
 * import type { Offload } from "effect-background"
 *
 * const saturated = (stats: Offload.Stats) => stats.busy === stats.threads && stats.queued > 0
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats extends PoolStats {}

/**
 * The pool service, provided by {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Offload } from "effect-background"
 *
 * const busy = Effect.map(Offload.stats, (stats) => `${stats.busy}/${stats.threads} threads busy`)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface OffloadService {
  readonly stats: Effect.Effect<Stats>
}

/** The pool behind each service {@link layer} made (the public service type has only `stats`). */
const pools = new WeakMap<OffloadService, Pool>()

const poolOf = (service: OffloadService): Pool => {
  const pool = pools.get(service)
  // (a service a user built by hand, say in a test, has none: running a job on it is a defect)
  if (pool === undefined) throw new Error("effect-background: this Offload service was not made by Offload.layer")
  return pool
}

/**
 * The tag of the pool service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Offload } from "effect-background"
 *
 * const threads = Effect.flatMap(Offload.Offload, (pool) => pool.stats)
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Offload extends Context.Tag("effect-background/Offload")<Offload, OffloadService>() {}

/**
 * Builds the worker pool. Building starts `minThreads` workers (at least one) and waits until the
 * first has loaded the module, so a bad path, a syntax error or a module that does not load within
 * `startupTimeout` fails here with `WorkerLoadError` (a failure of any thread before one has
 * loaded fails the build) instead of looping; the others go on loading in the background and take
 * tasks once ready, so the server does not wait for every thread to start. A thread that fails to
 * load after the build (one of those, a replacement, one started on demand) is logged as an error
 * and the pool carries on with the threads it has. Releasing it refuses new tasks, lets queued and
 * running ones finish within `grace`, then terminates every worker.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Offload } from "effect-background"
 *
 * const Fib = Offload.task("fib", { input: Schema.Number, output: Schema.Number })
 *
 * const program = Offload.run(Fib, 30).pipe(
 *   Effect.provide(Offload.layer({ module: new URL("./fib.worker.ts", import.meta.url), maxThreads: 2 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Offload, InvalidOptionError | WorkerLoadError> =>
  Layer.scoped(
    Offload,
    Effect.gen(function*() {
      const resolved = yield* offloadOptions.resolveOptions(options)
      // The caller's runtime, so the report goes through the caller's logger.
      const runtime = yield* Effect.runtime<never>()
      const module = resolved.module ?? "(none)"
      const pool = new Pool({
        ...resolved,
        name: "effect-background offload",
        onLoadFailure: (reason, threadsLeft) => {
          Runtime.runFork(runtime)(Effect.logError(
            `offload: a worker thread failed to load ${module}: ${reason}; the pool carries on with ${threadsLeft} thread(s)`
          ))
        }
      })
      const recorder = yield* currentRecord
      // Started as the acquire step of its release: a build interrupted while the threads load
      // (a timeout, a sibling layer failing, a signal) waits for them, then shuts them down.
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => pool.start(),
          catch: (error) =>
            new WorkerLoadError({ module, reason: error instanceof Error ? error.message : String(error) })
        }),
        () =>
          Effect.gen(function*() {
            const start = Date.now()
            const outcome = yield* Effect.promise(() => pool.shutdown(resolved.graceMillis))
            const doneAt = Date.now()
            recorder.offloadDone({ millis: doneAt - start, interrupted: outcome.interrupted, doneAt })
          })
      )
      recorder.bound(
        resolved.graceMillis,
        () => (pool.stats.busy > 0 ? [`offload: ${pool.stats.busy} busy thread(s)`] : [])
      )
      const service: OffloadService = { stats: Effect.sync(() => pool.stats) }
      pools.set(service, pool)
      return service
    })
  )

/**
 * What {@link run} and {@link blocking} can fail with besides a task's own typed failure.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Offload } from "effect-background"
 *
 * const log = (error: Offload.RunError) => Effect.logError(`${error._tag}: ${error.message}`)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type RunError =
  | QueueFullError
  | ShuttingDownError
  | WorkerCrashError
  | WorkerOutOfMemoryError
  | TaskSchemaError

let nextJobId = 1

/**
 * Sends one job and resumes with its result, settled by `onSuccess` / `onFailure` (see
 * {@link settle}). Interruption removes a queued job or terminates the worker running it.
 */
const submit = <O, F>(
  label: string,
  message: JobMessage,
  transfer: ReadonlyArray<ArrayBuffer>,
  onSuccess: (output: unknown) => Effect.Effect<O, TaskSchemaError>,
  onFailure: (error: unknown) => Effect.Effect<never, F | TaskSchemaError>
): Effect.Effect<O, F | RunError, Offload> =>
  Effect.flatMap(Offload, (service) => {
    const pool = poolOf(service)
    const series = metrics.series("offload", label)
    return metrics.withNotices(Effect.async<O, F | RunError>((resume) => {
      // timed by the pool's clock, from acceptance to the result (or the cancellation)
      let startedAt = 0
      const ended = (outcome: metrics.Outcome) => metrics.runEnded(series, outcome, performance.now() - startedAt, false)
      const job: Job = {
        label,
        message,
        transfer,
        onResult: (result) => {
          ended(result._tag === "Success" ? "succeeded" : result._tag === "Interrupted" ? "interrupted" : "failed")
          resume(settle(label, result, onSuccess, onFailure, pool.options.maxHeapMb))
        }
      }
      startedAt = performance.now()
      const status = pool.submit(job)
      if (status !== "accepted") metrics.rejected("offload", label)
      if (status === "closing") return resume(Effect.fail(new ShuttingDownError({ task: label })))
      if (status === "full") {
        return resume(Effect.fail(
          new QueueFullError({ task: label, concurrency: pool.options.maxThreads, maxQueued: pool.options.maxQueued })
        ))
      }
      metrics.runStarted(series, undefined, false)
      return Effect.promise(() => {
        ended("interrupted")
        return pool.cancel(job)
      })
    }))
  })

const settle = <O, F>(
  label: string,
  result: JobResult,
  onSuccess: (output: unknown) => Effect.Effect<O, TaskSchemaError>,
  onFailure: (error: unknown) => Effect.Effect<never, F | TaskSchemaError>,
  maxHeapMb: number | undefined
): Effect.Effect<O, F | RunError> => {
  switch (result._tag) {
    case "Success":
      return onSuccess(result.output)
    case "Failure":
      return onFailure(result.error)
    case "Defect":
      return Effect.die(deserializeDefect(result.defect))
    case "SchemaError":
      return Effect.fail(new TaskSchemaError({ task: label, phase: result.phase, details: result.message }))
    case "Crash":
      return Effect.fail(new WorkerCrashError({ task: label, exitCode: result.exitCode, reason: result.reason }))
    case "OutOfMemory":
      return Effect.fail(new WorkerOutOfMemoryError({ task: label, maxHeapMb }))
    case "Interrupted":
      return Effect.interrupt
  }
}

const schemaError = (task: string, phase: "input" | "output" | "failure") => (error: { readonly message: string }) =>
  new TaskSchemaError({ task, phase, details: error.message })

/**
 * Runs a task on the pool and returns its typed result. Interrupting the calling fiber (a timeout,
 * a client abort, shutdown) removes a queued task from the queue, or terminates the worker running
 * it and starts a replacement, so the thread is free at once. Buffers listed in `transfer` are
 * moved to the worker instead of copied; array buffers in the result are always moved back.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Offload } from "effect-background"
 *
 * const Fib = Offload.task("fib", { input: Schema.Number, output: Schema.Number })
 *
 * // data-first, and data-last with a timeout that really frees the thread
 * const a = Offload.run(Fib, 30)
 * const b = Effect.succeed(40).pipe(
 *   Effect.flatMap(Offload.run(Fib)),
 *   Effect.timeout("100 millis")
 * )
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run: {
  // Data-first comes first so that `run(task, undefined)` runs a task whose input is `void`.
  <I, IE, O, OE, F, FE>(
    self: Task<I, IE, O, OE, F, FE>,
    input: I,
    options?: RunOptions
  ): Effect.Effect<O, F | RunError, Offload>
  <I, IE, O, OE, F, FE>(self: Task<I, IE, O, OE, F, FE>, options?: RunOptions): (input: I) => Effect.Effect<O, F | RunError, Offload>
} = function() {
  // Not `dual`: its data-last form supplies the first parameter last, while ours supplies the
  // input (the second) — `run(task)(input)`.
  const [self, second, options] = arguments as unknown as [AnyTask, unknown, RunOptions | undefined]
  if (isRunDataFirst(arguments)) return runTask(self, second, options)
  return (input: unknown) => runTask(self, input, second as RunOptions | undefined)
} as never

type AnyTask = Task<unknown, unknown, unknown, unknown, unknown, unknown>

/**
 * Options of {@link run}.
 *
 * @example
 * ```ts
 * import type { Offload } from "effect-background"
 *
 * const bytes = new Uint8Array(1024)
 * const options: Offload.RunOptions = { transfer: [bytes.buffer] }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Buffers moved to the worker instead of copied; they are detached (empty) on this side afterwards. */
  readonly transfer?: ReadonlyArray<ArrayBuffer> | undefined
}

interface MainCodecs {
  readonly encodeInput: (input: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly decodeOutput: (output: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly decodeFailure: (error: unknown) => Either.Either<unknown, ParseResult.ParseError>
}

/** Each task's codecs, compiled once: the per-run path does no schema compilation. */
const codecsCache = new WeakMap<AnyTask, MainCodecs>()
const codecsOf = (task: AnyTask): MainCodecs => {
  let codecs = codecsCache.get(task)
  if (codecs === undefined) {
    codecs = {
      encodeInput: Schema.encodeEither(task.input),
      decodeOutput: receiver(task.output),
      decodeFailure: Schema.decodeUnknownEither(task.failure)
    }
    codecsCache.set(task, codecs)
  }
  return codecs
}

const runTask = <I, IE, O, OE, F, FE>(
  self: Task<I, IE, O, OE, F, FE>,
  input: I,
  options: RunOptions | undefined
): Effect.Effect<O, F | RunError, Offload> =>
  Effect.suspend(() => {
    const codecs = codecsOf(self as unknown as AnyTask)
    const encoded = codecs.encodeInput(input)
    if (Either.isLeft(encoded)) return Effect.fail(schemaError(self.name, "input")(encoded.left))
    return submit(
      self.name,
      { _tag: "Run", id: nextJobId++, task: self.name, input: encoded.right },
      options?.transfer ?? [],
      (output) => {
        const decoded = codecs.decodeOutput(output)
        return Either.isRight(decoded)
          ? Effect.succeed(decoded.right as O)
          : Effect.fail(schemaError(self.name, "output")(decoded.left))
      },
      (error) => {
        const decoded = codecs.decodeFailure(error)
        return Either.isRight(decoded)
          ? Effect.fail(decoded.right as F)
          : Effect.fail(schemaError(self.name, "failure")(decoded.left))
      }
    )
  })

const isRunOptions = (value: unknown): boolean =>
  typeof value === "object" && value !== null && Object.keys(value).every((key) => key === "transfer") &&
  Object.keys(value).length > 0

/**
 * `run(task, x)` is ambiguous: `x` is the input when the task accepts it, otherwise the options of
 * the data-last form — the same choice the overloads make, so the types and the runtime agree.
 */
const isRunDataFirst = (args: IArguments): boolean => {
  if (args.length !== 2) return args.length > 2
  const second: unknown = args[1]
  if (second !== undefined && !isRunOptions(second)) return true
  return Schema.is((args[0] as AnyTask).input)(second)
}

/**
 * The node modules a {@link blocking} function receives as its first argument.
 *
 * @example
 * ```ts
 * import type { Offload } from "effect-background"
 *
 * const gzip = ({ zlib }: Offload.BlockingModules, text: string) => zlib.gzipSync(text)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface BlockingModules {
  readonly buffer: typeof import("node:buffer")
  readonly childProcess: typeof import("node:child_process")
  readonly crypto: typeof import("node:crypto")
  readonly fs: typeof import("node:fs")
  readonly os: typeof import("node:os")
  readonly path: typeof import("node:path")
  readonly zlib: typeof import("node:zlib")
}

/**
 * Runs a one-off blocking call (`fs.*Sync`, `zlib.*Sync`, `crypto.*Sync`, …) on the pool without
 * writing a worker module — the `asyncio.to_thread` case. Limits, by design: `fn` is sent as source
 * text, so it must not use variables from its surroundings (pass what it needs as `arg`, reach
 * node's modules through its first argument); `arg` and the result must be structured-clonable;
 * the result is not schema-checked. Cancellation works as in {@link run}, with one limit no thread
 * API lifts: a call blocked in native code (`execSync`, a read from a pipe nobody writes) cannot be
 * stopped. Cancelling it still frees the caller and the pool starts a replacement thread, but the
 * blocked thread lingers until the call returns, and the process cannot exit before that.
 *
 * @example
 * ```ts
 * import { Offload } from "effect-background"
 *
 * const digest = Offload.blocking(
 *   ({ crypto }, text: string) => crypto.createHash("sha256").update(text).digest("hex"),
 *   "hello"
 * )
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const blocking = <A, B>(
  fn: (modules: BlockingModules, arg: A) => B,
  arg: A,
  options?: { readonly name?: string | undefined; readonly transfer?: ReadonlyArray<ArrayBuffer> | undefined }
): Effect.Effect<Awaited<B>, RunError, Offload> =>
  Effect.suspend(() => {
    const label = options?.name ?? (fn.name.length > 0 ? `blocking ${fn.name}` : "blocking call")
    return submit(
      label,
      { _tag: "Blocking", id: nextJobId++, source: fn.toString(), arg },
      options?.transfer ?? [],
      (output) => Effect.succeed(output as Awaited<B>),
      () => Effect.die(new Error("unreachable: blocking calls have no typed failure"))
    )
  })

/**
 * The pool's current numbers: threads, busy threads, queued tasks, threads spawned and crashed.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Offload } from "effect-background"
 *
 * const report = Effect.flatMap(Offload.stats, (stats) => Effect.log(stats))
 * ```
 *
 * @since 0.1.0
 * @category observing
 */
export const stats: Effect.Effect<Stats, never, Offload> = Effect.flatMap(Offload, (service) => service.stats)

/**
 * A handle on an isolated runtime started by {@link isolate}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Offload } from "effect-background"
 *
 * const track = (events: Offload.Isolate<string>) => events.send("signup")
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Isolate<M> {
  readonly name: string
  /** Sends a message to the program's mailbox. */
  readonly send: (message: M) => Effect.Effect<void, TaskSchemaError | WorkerCrashError | ShuttingDownError>
}

/**
 * Options of {@link isolate}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Offload } from "effect-background"
 *
 * const options: Offload.IsolateOptions<string, string> = {
 *   name: "analytics",
 *   module: new URL("./analytics.worker.ts", import.meta.url),
 *   message: Schema.String
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface IsolateOptions<M, ME> {
  readonly name: string
  readonly module: string | URL
  readonly message: Schema.Schema<M, ME>
  /** How long the program may take to stop (flush) at shutdown before its thread is terminated. Default 5 seconds. */
  readonly stopTimeout?: Duration.DurationInput | undefined
  /** Heap limit of the thread in MB. */
  readonly maxHeapMb?: number | undefined
  /**
   * How long the thread may take to load its module and say it is ready. Default 60 seconds, as
   * for {@link layer} (see `startupTimeout` in {@link Options}): when it passes, the thread is
   * stopped and {@link isolate} fails with `WorkerLoadError` whose reason names this option; if
   * the module is only slow to load, raise it.
   */
  readonly startupTimeout?: Duration.DurationInput | undefined
}

/**
 * Starts a worker thread running the module's {@link isolated} program with its own Effect runtime,
 * for as long as the scope lives. Closing the scope lets the program take the messages already
 * sent, then interrupts it — its finalizers flush what it holds — all within `stopTimeout`, then
 * terminates the thread. Starting waits until the module has loaded: one that cannot load, or not
 * within `startupTimeout`, fails it with `WorkerLoadError`. A program that stops on its own is
 * logged as an error and `send` then fails with `WorkerCrashError`.
 *
 * @example
 * ```ts
 * import { Context, Effect, Layer, Schema } from "effect"
 * import { Offload } from "effect-background"
 *
 * class Analytics extends Context.Tag("Analytics")<Analytics, Offload.Isolate<string>>() {}
 *
 * export const AnalyticsLive = Layer.scoped(
 *   Analytics,
 *   Offload.isolate({
 *     name: "analytics",
 *     module: new URL("./analytics.worker.ts", import.meta.url),
 *     message: Schema.String
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const isolate = <M, ME>(
  given: IsolateOptions<M, ME>
): Effect.Effect<Isolate<M>, InvalidOptionError | WorkerLoadError, Scope.Scope> =>
  Effect.gen(function*() {
    const options = yield* validate.record(
      "options",
      given,
      "{ name: \"analytics\", module: new URL(\"./analytics.worker.ts\", import.meta.url), message: Schema.String }"
    )
    const { maxHeapMb, message, moduleUrl, name, startupTimeout, stopTimeout } = yield* validate.all({
      name: validate.name("name", options.name, "analytics"),
      moduleUrl: offloadOptions.moduleUrlOf(options.module),
      message: Schema.isSchema(options.message)
        ? Effect.succeed<Schema.Schema<M, ME>>(options.message)
        : validate.invalid("message", options.message, "a Schema for the messages (e.g. Schema.String)"),
      stopTimeout: validate.duration(
        "stopTimeout",
        validate.orDefault(options.stopTimeout, "5 seconds"),
        "nonNegative",
        validate.NODE_TIMER_MAX_MILLIS
      ),
      startupTimeout: validate.duration(
        "startupTimeout",
        validate.orDefault(options.startupTimeout, offloadOptions.DEFAULT_STARTUP_TIMEOUT),
        "positive",
        validate.NODE_TIMER_MAX_MILLIS
      ),
      maxHeapMb: offloadOptions.heapOption(options.maxHeapMb)
    })
    // The caller's runtime, so the report goes through the caller's logger.
    const runtime = yield* Effect.runtime<never>()
    const logDead = (reason: string) => {
      Runtime.runFork(runtime)(Effect.logError(`isolate "${name}" stopped unexpectedly: ${reason}`))
    }
    const worker = new IsolateWorker({
      name,
      module: moduleUrl,
      maxHeapMb,
      startupTimeoutMillis: Duration.toMillis(startupTimeout),
      onUnexpectedExit: logDead
    })
    let closing = false
    // Its stop is one of the shutdown's bounds: a launcher's default hard deadline waits for it.
    const recorder = yield* currentRecord
    let stopped = false
    recorder.bound(Duration.toMillis(stopTimeout), () => (closing && !stopped ? [`isolate ${name}: stopping`] : []))
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => worker.start(),
        catch: (error) => new WorkerLoadError({ module: moduleUrl, reason: error instanceof Error ? error.message : String(error) })
      }),
      () =>
        Effect.gen(function*() {
          closing = true
          const inTime = yield* Effect.promise(() => worker.stop(Duration.toMillis(stopTimeout)))
          stopped = true
          if (!inTime) {
            yield* Effect.logWarning(`isolate "${name}" did not stop within ${Duration.format(stopTimeout)}; its thread was terminated`)
          } else if (worker.stopProblem !== undefined) {
            yield* Effect.logError(`isolate "${name}" did not stop cleanly: ${worker.stopProblem}`)
          }
        })
    )
    const encode = Schema.encode(message)
    return {
      name,
      send: (message: M) =>
        Effect.gen(function*() {
          if (closing) return yield* Effect.fail(new ShuttingDownError({ task: name }))
          const payload = yield* encode(message).pipe(Effect.mapError(schemaError(name, "input")))
          if (!worker.post(payload)) {
            return yield* Effect.fail(
              new WorkerCrashError({ task: name, exitCode: worker.exitCode, reason: worker.deadReason })
            )
          }
        })
    }
  })
