/**
 * The process around a server (`Server.launch`): runs the app's layer, turns SIGINT and SIGTERM
 * into a graceful shutdown with a hard deadline past the sum of the phases' bounds, prints the
 * shutdown report, and exits — 0, or 1 when something outlived its bounds or the layer failed to
 * build (with the error said plainly).
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import {
  DurablePayloadError,
  DurableStoreError,
  InvalidOptionError,
  QueueFullError,
  ShuttingDownError,
  TaskSchemaError,
  WorkerCrashError,
  WorkerLoadError,
  WorkerOutOfMemoryError
} from "../../Errors.js"
import * as validate from "../options.js"
import { ShutdownRecord, ShutdownRecorder } from "../report.js"

/**
 * The errors behind a failure's errors — `ServeError` says only "An error has occurred" and keeps
 * the `EADDRINUSE` that matters in its `cause`.
 */
const underlying = (cause: Cause.Cause<unknown>): string =>
  Chunk.toReadonlyArray(Cause.failures(cause))
    .flatMap((error) => {
      const inner = typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined
      return inner === undefined ? [] : [`\ncaused by: ${inner instanceof Error ? inner.message : String(inner)}`]
    })
    .join("")

/** This library's errors, whose messages say what happened and what to do: no stack trace adds to them. */
const ownErrors = [
  InvalidOptionError,
  ShuttingDownError,
  QueueFullError,
  WorkerCrashError,
  WorkerOutOfMemoryError,
  WorkerLoadError,
  TaskSchemaError,
  DurableStoreError,
  DurablePayloadError
] as const

/**
 * What a failed start prints: when it failed only with this library's errors (a bad option, a
 * worker module that does not load), each as `Name: message` — the stack frames under them are
 * Effect's own and say nothing to the user; anything else (a defect, another library's error) in
 * full, stack traces included. Either way followed by the errors behind them.
 */
const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const failures = Chunk.toReadonlyArray(Cause.failures(cause))
  const described = failures.length > 0 && Chunk.isEmpty(Cause.defects(cause)) && failures.every(isOwnError)
    ? Array.from(new Set(failures.map((error) => `${error.name}: ${error.message}`))).join("\n")
    : Cause.pretty(cause)
  return `${described}${underlying(cause)}`
}

const isOwnError = (error: unknown): error is InstanceType<(typeof ownErrors)[number]> =>
  ownErrors.some((own) => error instanceof own)

/**
 * The signals that start a graceful shutdown: Ctrl-C and a process manager's stop. SIGHUP is left
 * alone, so a server started under `nohup` keeps ignoring it.
 */
export const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM"] as const

/**
 * A repeat of the first signal within this long is the same signal delivered twice, not a second
 * request: Ctrl-C under `npm start` reaches the server from the terminal and again from npm, and
 * tsx's CLI relays it once more when its child has not answered within 30 ms. A deliberate second
 * Ctrl-C comes later than this, or is a different signal.
 */
export const DUPLICATE_SIGNAL_WINDOW_MILLIS = 1000

/**
 * Watches SIGINT and SIGTERM for a process's shutdown: the first signal arms a hard deadline (the
 * given one, or the parts' bounds plus 5 s) and calls `begin`; past the deadline, or at a second
 * signal that is not the first one relayed again, the process exits at once with 1, naming what
 * `live` says is still running. `done` disarms the deadline and removes the handlers. Shared by
 * `Server.launch` and the Promise API's `handleSignals`.
 */
export const watchSignals = (options: {
  readonly deadline: number | undefined
  readonly budgetMillis: () => number
  readonly live: () => ReadonlyArray<string>
  readonly begin: (at: number) => void
}): { readonly done: () => void } => {
  let timer: NodeJS.Timeout | undefined
  let first: { readonly signal: NodeJS.Signals; readonly at: number } | undefined
  const exitNow = (reason: string) => {
    const live = options.live()
    process.stderr.write(
      `shutdown aborted (${reason}); still running: ${live.length > 0 ? live.join(", ") : "nothing"}\n`
    )
    process.exit(1)
  }
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now()
    if (first !== undefined) {
      // One keypress reaches the server more than once: Ctrl-C signals the whole process group
      // (npm, a shell, tsx and the server), and npm and tsx relay it again.
      if (signal === first.signal && now - first.at < DUPLICATE_SIGNAL_WINDOW_MILLIS) return
      return exitNow(`second signal ${signal}`)
    }
    first = { signal, at: now }
    // The bounds may add up past what a Node timer can wait; a deadline that far off is no deadline.
    const limit = Math.min(options.deadline ?? options.budgetMillis() + 5000, validate.NODE_TIMER_MAX_MILLIS)
    timer = setTimeout(() => exitNow(`hard deadline of ${limit}ms passed`), limit)
    options.begin(now)
  }
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal)
  return {
    done: () => {
      if (timer !== undefined) clearTimeout(timer)
      for (const signal of SHUTDOWN_SIGNALS) process.off(signal, onSignal)
    }
  }
}

export const launch = <E>(
  self: Layer.Layer<never, E, never>,
  options: { readonly hardDeadline?: Duration.DurationInput | undefined }
): void => {
  const record = new ShutdownRecord()
  const checked = Effect.runSync(Effect.either(
    options.hardDeadline === undefined
      ? Effect.succeed(undefined)
      : Effect.map(
        validate.duration("hardDeadline", options.hardDeadline, "positive", validate.NODE_TIMER_MAX_MILLIS),
        Duration.toMillis
      )
  ))
  if (checked._tag === "Left") {
    process.stderr.write(`${checked.left.name}: ${checked.left.message}\n`)
    return process.exit(1)
  }
  const deadline = checked.right
  const fiber = Effect.runFork(Layer.launch(self).pipe(Effect.provideService(ShutdownRecorder, record)))
  const signals = watchSignals({
    deadline,
    budgetMillis: () => record.budgetMillis,
    live: () => record.live(),
    begin: (at) => {
      record.startedAt = at
      fiber.unsafeInterruptAsFork(FiberId.none)
    }
  })
  fiber.addObserver((exit) => {
    signals.done()
    const end = Date.now()
    if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
      process.stderr.write(`${describeFailure(exit.cause)}\n`)
      process.exit(1)
    }
    record.ended(end)
    process.stdout.write(`${record.format(end)}\n`)
    process.exit(record.stillRunning.length > 0 ? 1 : 0)
  })
}

