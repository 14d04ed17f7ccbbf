/**
 * The typed errors of effect-background. Every error is a `Data.TaggedError`, so handlers can
 * recover from one precisely with `Effect.catchTag`, and every message says what happened and what
 * to do about it.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * An option given to a layer or constructor is out of range, of the wrong type, or malformed.
 * Raised when the layer is built, before anything starts.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Background } from "effect-background"
 *
 * const program = Layer.launch(Background.layer({ concurrency: -1 })).pipe(
 *   Effect.catchTag("InvalidOptionError", (error) => Effect.logError(error.message))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptionError extends Data.TaggedError("InvalidOptionError")<{
  /** The option's path, for example `"concurrency"` or `"cron"`. */
  readonly option: string
  /** The value that was given. */
  readonly value: unknown
  /** What a valid value looks like. */
  readonly expected: string
}> {
  override get message(): string {
    return `Invalid option "${this.option}": expected ${this.expected}, got ${describeValue(this.value)}`
  }
}

/**
 * The supervisor has begun shutting down, so it accepts no new work. The task was not started.
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
    return `Background task "${this.task}" was rejected: the server is shutting down and accepts no new background work`
  }
}

/**
 * Every concurrency slot is taken and the waiting queue is full. The task was not started; a
 * handler would usually answer 503 with a `Retry-After` header.
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
  /** The configured number of tasks that may run at once. */
  readonly concurrency: number
  /** The configured number of tasks that may wait for a slot. */
  readonly maxQueued: number
}> {
  override get message(): string {
    return `Background task "${this.task}" was rejected: all ${this.concurrency} slots are busy and ${this.maxQueued} tasks are already queued; retry later or raise "concurrency"/"maxQueued"`
  }
}

const describeValue = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "boolean" || value === undefined || value === null) {
    return String(value)
  }
  if (typeof value === "bigint") return `${value}n`
  try {
    return JSON.stringify(value) ?? typeof value
  } catch {
    return typeof value
  }
}
