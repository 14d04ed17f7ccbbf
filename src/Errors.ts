/**
 * The typed errors of effect-background. Every error is a `Data.TaggedError`, so handlers can
 * recover from one precisely with `Effect.catchTag`, and every message says what happened and what
 * to do about it.
 *
 * @since 0.1.0
 * @module
 */
import * as Data from "effect/Data"

/**
 * One invalid option, as {@link InvalidOptionError} lists it: where it is, what was given, and what
 * a valid value looks like.
 *
 * @example
 * ```ts
 * import type { OptionIssue } from "effect-background"
 *
 * const issue: OptionIssue = {
 *   option: "grace",
 *   value: -5,
 *   expected: "a finite duration of zero or more (e.g. 0, 500, \"2 seconds\")"
 * }
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export interface OptionIssue {
  /** The option's path, for example `"concurrency"` or `"cron"`. */
  readonly option: string
  /** The value that was given. */
  readonly value: unknown
  /** What a valid value looks like, with an example. */
  readonly expected: string
}

/**
 * Options given to a layer or constructor are out of range, of the wrong type, or malformed.
 * Raised when the layer is built, before anything starts. Every option of the call is checked
 * first, and `issues` lists each invalid one — so one start reports them all; the message says,
 * one line each, the option, the value given and an example of a valid one. `option`, `value` and
 * `expected` are the first issue's.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Background } from "effect-background"
 *
 * const program = Layer.launch(Background.layer({ concurrency: -1, grace: "-5 seconds" })).pipe(
 *   Effect.catchTag("InvalidOptionError", (error) =>
 *     Effect.logError(`${error.issues.length} invalid options: ${error.issues.map((issue) => issue.option).join(", ")}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptionError extends Data.TaggedError("InvalidOptionError")<{
  /** Every invalid option of the call, in the order they were checked; never empty. */
  readonly issues: readonly [OptionIssue, ...Array<OptionIssue>]
}> {
  /** The first invalid option's path, for example `"concurrency"` or `"cron"`. */
  get option(): string {
    return this.issues[0].option
  }

  /** The value given for the first invalid option. */
  get value(): unknown {
    return this.issues[0].value
  }

  /** What a valid value of the first invalid option looks like. */
  get expected(): string {
    return this.issues[0].expected
  }

  override get message(): string {
    if (this.issues.length === 1) {
      return `Invalid option "${this.option}": expected ${this.expected}, got ${describeValue(this.value)}`
    }
    const lines = this.issues.map((issue) =>
      `\n  - ${issue.option}: expected ${issue.expected}, got ${describeValue(issue.value)}`
    )
    return `${this.issues.length} invalid options:${lines.join("")}`
  }
}

/**
 * Shutdown has begun (of the supervisor, the offload pool or an isolate), so no new work is
 * accepted. The task was not started.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const forkOrLog = Background.fork(Effect.log("hi"), "greet").pipe(
 *   Effect.catchTag("ShuttingDownError", (error) => Effect.logWarning(error.message))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ShuttingDownError extends Data.TaggedError("ShuttingDownError")<{
  /** The name of the task that was refused. */
  readonly task: string
}> {
  override get message(): string {
    return `Task "${this.task}" was rejected: shutdown has begun and no new background or offloaded work is accepted`
  }
}

/**
 * Every slot (supervisor concurrency, or offload thread) is taken and the waiting queue is full.
 * The task was not started; a handler would usually answer 503 with a `Retry-After` header.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServerResponse } from "@effect/platform"
 * import { Background } from "effect-background"
 *
 * const handler = Background.fork(Effect.log("work"), "work").pipe(
 *   Effect.as(HttpServerResponse.empty({ status: 202 })),
 *   Effect.catchTag("QueueFullError", () =>
 *     Effect.succeed(HttpServerResponse.empty({ status: 503, headers: { "retry-after": "1" } }))
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class QueueFullError extends Data.TaggedError("QueueFullError")<{
  /** The name of the task that was refused. */
  readonly task: string
  /** The configured number of tasks that may run at once (`concurrency`, or `maxThreads` for offload). */
  readonly concurrency: number
  /** The configured number of tasks that may wait for a slot. */
  readonly maxQueued: number
}> {
  override get message(): string {
    return `Task "${this.task}" was rejected: all ${this.concurrency} slots are busy and ${this.maxQueued} tasks are already queued; retry later, or raise the limits ("concurrency" of Background.layer or "maxThreads" of Offload.layer, and "maxQueued")`
  }
}

/**
 * The worker thread running a task exited or crashed before answering. The pool has replaced it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerCrashError } from "effect-background"
 *
 * const describe = (error: WorkerCrashError) => Effect.logError(`exit code ${error.exitCode}`)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerCrashError extends Data.TaggedError("WorkerCrashError")<{
  /** The task that was running. */
  readonly task: string
  /** The worker's exit code. */
  readonly exitCode: number
  /** What the worker reported last, if anything. */
  readonly reason: string | undefined
}> {
  override get message(): string {
    return `Offloaded task "${this.task}" lost its worker thread (exit code ${this.exitCode}${
      this.reason === undefined ? "" : `: ${this.reason}`
    }); the pool replaces lost threads as work needs them`
  }
}

/**
 * The worker thread running a task ran out of its heap limit (`maxHeapMb`) and was terminated. The
 * pool has replaced it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { WorkerOutOfMemoryError } from "effect-background"
 *
 * const describe = (error: WorkerOutOfMemoryError) => Effect.logError(error.message)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerOutOfMemoryError extends Data.TaggedError("WorkerOutOfMemoryError")<{
  /** The task that was running. */
  readonly task: string
  /** The configured heap limit in megabytes. */
  readonly maxHeapMb: number | undefined
}> {
  override get message(): string {
    return `Offloaded task "${this.task}" ran out of memory (heap limit ${
      this.maxHeapMb === undefined ? "default" : `${this.maxHeapMb} MB`
    }); the worker was replaced — raise "maxHeapMb" or reduce the task's input`
  }
}

/**
 * A worker module could not be loaded: a bad path, a syntax error, a throw at import time, or no
 * default export made with `Offload.worker` / `Offload.isolated`. Raised when the layer is built.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { WorkerLoadError } from "effect-background"
 *
 * const describe = (error: WorkerLoadError) => Effect.logError(error.message)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerLoadError extends Data.TaggedError("WorkerLoadError")<{
  /** The module's URL. */
  readonly module: string
  /** Why it failed to load. */
  readonly reason: string
}> {
  override get message(): string {
    return `Worker module ${this.module} failed to load: ${this.reason}`
  }
}

/**
 * A value crossing the thread boundary did not match its task's schema: the input (checked before
 * the task is sent), the output, or the typed failure.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { TaskSchemaError } from "effect-background"
 *
 * const describe = (error: TaskSchemaError) => Effect.logError(`${error.phase}: ${error.message}`)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskSchemaError extends Data.TaggedError("TaskSchemaError")<{
  readonly task: string
  readonly phase: "input" | "output" | "failure"
  readonly details: string
}> {
  override get message(): string {
    return `Offloaded task "${this.task}": the ${this.phase} does not match its schema: ${this.details}`
  }
}

/**
 * `BackgroundTasks.add` was called where no request's handler is running, so there is no response
 * for the task to wait for: in a program or test with no request (`reason: "no-request"`), in a
 * background task, daemon or schedule run (`"background-task"`, with its name), or from a fiber
 * the handler left running once its response was written (`"after-response"`). A programming
 * error, raised as a defect: `add` has no error channel. Use `Background.fork` there instead.
 *
 * @example
 * ```ts
 * import { Cause, Option } from "effect"
 * import { OutsideRequestError } from "effect-background"
 *
 * // a misplaced add in a cause (a test or an error reporter may look for it)
 * const misplacedAdd = (cause: Cause.Cause<unknown>) =>
 *   Cause.dieOption(cause).pipe(Option.filter((defect) => defect instanceof OutsideRequestError))
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class OutsideRequestError extends Data.TaggedError("OutsideRequestError")<{
  /** Where `add` was called from. */
  readonly reason: "no-request" | "background-task" | "after-response"
  /** The background task, daemon or schedule that called it, when it was one. */
  readonly task: string | undefined
}> {
  override get message(): string {
    const where = this.reason === "after-response"
      ? "after its response was written, from a fiber the handler left running"
      : this.reason === "background-task"
      ? `in ${this.task === undefined ? "a background task" : `the background task "${this.task}"`}, which runs apart from any request`
      : "there is no HttpServerRequest in its context"
    return `BackgroundTasks.add was called outside a request's handler (${where}): use Background.fork for work not tied to a request`
  }
}

/**
 * `BackgroundTasks.add` was called in a request's handler, but the request was served without
 * `BackgroundTasks.middleware` (`missing: "middleware"`), or the middleware runs without the
 * `Background` supervisor (`"supervisor"`). `Server.app` installs both, and `Server.serve` the
 * middleware; with `HttpServer.serve` or `HttpApiBuilder.serve`, pass it yourself. Raised as a defect.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { BackgroundTasks } from "effect-background"
 *
 * const router = HttpRouter.empty.pipe(HttpRouter.get("/", HttpServerResponse.text("ok")))
 * // without the middleware, an add in a handler dies with MissingMiddlewareError
 * export const ServeLive = HttpServer.serve(router, BackgroundTasks.middleware)
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class MissingMiddlewareError extends Data.TaggedError("MissingMiddlewareError")<{
  /** What the request was served without. */
  readonly missing: "middleware" | "supervisor"
}> {
  override get message(): string {
    return this.missing === "middleware"
      ? "BackgroundTasks.add needs BackgroundTasks.middleware around the app, and this request was served without it: Server.serve installs it; with HttpServer.serve or HttpApiBuilder.serve, pass BackgroundTasks.middleware"
      : "BackgroundTasks.add needs the Background supervisor, and BackgroundTasks.middleware runs without it: provide Background.layer to the server (Server.app does)"
  }
}

const describeValue = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "boolean" || value === undefined || value === null) {
    return String(value)
  }
  if (typeof value === "bigint") return `${value}n`
  try {
    // JSON has no Infinity or NaN (it writes null): keep them visible, they are often the mistake.
    const json = JSON.stringify(value, (_key, part: unknown) =>
      typeof part === "number" && !Number.isFinite(part) ? `\u0000${part}\u0000` : part)
    return json === undefined ? typeof value : json.replace(/"\\u0000(-?Infinity|NaN)\\u0000"/g, "$1")
  } catch {
    return typeof value
  }
}

/**
 * The durable task store could not be reached or did not answer: at start (the store layer's build
 * fails with it, and nothing starts), or when an `enqueue` could not be committed (a handler can
 * answer 503; nothing was half-written), or when a status query failed. `store` names the store
 * (`sqlite:./data/tasks.sqlite`, `postgres://app:***@db:5432/app`, with any password redacted).
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 * import type { DurableStoreError } from "effect-background"
 *
 * const unavailable = (error: DurableStoreError) =>
 *   Effect.as(Effect.logWarning(error.message), HttpServerResponse.text("try again later", { status: 503 }))
 * ```
 *
 * @since 0.3.0
 * @category errors
 */
export class DurableStoreError extends Data.TaggedError("DurableStoreError")<{
  /** The store, as `sqlite:<file>` or a `postgres://` URL with its password redacted. */
  readonly store: string
  /** What was being done: `"connect"`, `"enqueue"`, `"status"`, `"retry"`, `"discard"`, `"counts"`. */
  readonly operation: string
  /** The driver's own explanation. */
  readonly reason: string
}> {
  override get message(): string {
    return `Durable task store ${this.store}: ${this.operation} failed: ${this.reason}`
  }
}

/**
 * A durable task's payload does not match its schema when it is enqueued, or its encoded form
 * cannot be stored as JSON as it is (a bigint, a `Date`, an `undefined` field, `NaN`): nothing was
 * stored.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { DurablePayloadError } from "effect-background"
 *
 * const report = (error: DurablePayloadError) => Effect.logError(`${error.task}: ${error.details}`)
 * ```
 *
 * @since 0.3.0
 * @category errors
 */
export class DurablePayloadError extends Data.TaggedError("DurablePayloadError")<{
  readonly task: string
  readonly details: string
}> {
  override get message(): string {
    return `Durable task "${this.task}": the payload does not match its schema: ${this.details}`
  }
}
