/**
 * The offload pool's options, checked when its layer is built (and the isolate's options it
 * shares): the worker module (a path or URL, with a compiled sibling found for a `.ts` one once
 * the code is built), thread counts, queue bound, timers and heap limit.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { existsSync } from "node:fs"
import * as os from "node:os"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { Options } from "../../Offload.js"
import type { InvalidOptionError } from "../../Errors.js"
import * as validate from "../options.js"
import { toModuleUrl } from "./spawn.js"

/** A worker module: a file path or file URL (undefined is refused). */
export const moduleUrlOf = (value: unknown): Effect.Effect<string, InvalidOptionError> =>
  value instanceof URL || (typeof value === "string" && value.length > 0)
    ? Effect.sync(() => compiledSibling(toModuleUrl(value)))
    : validate.invalid(
      "module",
      value,
      "a file path or file URL of a worker module (e.g. new URL(\"./cpu.worker.ts\", import.meta.url))"
    )

const moduleOption = (value: unknown): Effect.Effect<string | undefined, InvalidOptionError> =>
  value === undefined ? Effect.succeed(undefined) : moduleUrlOf(value)

/**
 * `new URL("./x.worker.ts", import.meta.url)` still says `.ts` once the code is compiled; when that
 * file is not there but its compiled sibling is, the sibling is meant.
 */
const compiledSibling = (url: string): string => {
  if (!url.startsWith("file:")) return url
  const source = fileURLToPath(url)
  const match = /\.([cm]?)ts$/.exec(source)
  if (match === null || existsSync(source)) return url
  const compiled = `${source.slice(0, -match[0].length)}.${match[1]}js`
  return existsSync(compiled) ? pathToFileURL(compiled).href : url
}

/** See `startupTimeout` in `Offload.Options`: generous, because load on the machine stretches it. */
export const DEFAULT_STARTUP_TIMEOUT = "60 seconds"

export const heapOption = (value: unknown): Effect.Effect<number | undefined, InvalidOptionError> =>
  value === undefined
    ? Effect.succeed(undefined)
    : typeof value === "number" && Number.isFinite(value) && value >= 8
    ? Effect.succeed(value)
    : validate.invalid("maxHeapMb", value, "a number of megabytes, at least 8 (e.g. 256)")

/** `maxThreads` and `minThreads`, each valid on its own and together (at most as many kept as allowed). */
const threadsOption = (
  min: unknown,
  max: unknown
): Effect.Effect<{ readonly minThreads: number; readonly maxThreads: number }, InvalidOptionError> =>
  Effect.flatMap(
    validate.all({
      maxThreads: validate.count("maxThreads", validate.orDefault(max, Math.max(1, os.availableParallelism() - 1)), 1, 4),
      minThreads: validate.count("minThreads", validate.orDefault(min, 1), 0, 1)
    }),
    (threads) =>
      threads.minThreads > threads.maxThreads
        ? validate.invalid(
          "minThreads",
          threads.minThreads,
          `at most maxThreads (${threads.maxThreads}) (e.g. ${Math.min(1, threads.maxThreads)})`
        )
        : Effect.succeed(threads)
  )

/** These end up in Node timers, which cannot wait longer than about 24 days. */
const timerOption = (option: string, value: unknown, bound: "positive" | "nonNegative") =>
  Effect.map(validate.duration(option, value, bound, validate.NODE_TIMER_MAX_MILLIS), Duration.toMillis)

export const resolveOptions = (given: Options | undefined) =>
  Effect.flatMap(validate.record("options", given, "{ module: new URL(\"./cpu.worker.ts\", import.meta.url), maxThreads: 4 }"), (options) =>
    Effect.map(
      validate.all({
        module: moduleOption(options.module),
        threads: threadsOption(options.minThreads, options.maxThreads),
        maxQueued: validate.count("maxQueued", validate.orDefault(options.maxQueued, 1000), 0, 1000),
        idleTimeoutMillis: timerOption("idleTimeout", validate.orDefault(options.idleTimeout, "30 seconds"), "positive"),
        maxHeapMb: heapOption(options.maxHeapMb),
        graceMillis: timerOption("grace", validate.orDefault(options.grace, "5 seconds"), "nonNegative"),
        startupTimeoutMillis: timerOption("startupTimeout", validate.orDefault(options.startupTimeout, DEFAULT_STARTUP_TIMEOUT), "positive"),
        spareThread: Effect.map(validate.boolean("spareThread", options.spareThread), (spare) => spare ?? false)
      }),
      ({ threads, ...rest }) => ({ ...rest, ...threads })
    ))
