/**
 * The options of `effect-background/Node`'s runtime and their checks: `make`'s options resolved
 * into `Settings` (synchronously, throwing an `InvalidOptionError`), the checks of a callback and of
 * `offload`'s options, and `durableTask`, a durable task type whose handler is a plain callback.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Http from "node:http"
import type * as Background from "../../Background.js"
import * as Durable from "../../Durable.js"
import type { InvalidOptionError } from "../../Errors.js"
import type { DurableOptions, DurableTask, DurableTaskOptions } from "../../Node.js"
import type * as Offload from "../../Offload.js"
import { fromCallback } from "../background/callback.js"
import * as service from "../background/service.js"
import type { ResolvedOptions } from "../background/supervisor.js"
import * as validate from "../options.js"

export interface Options extends Background.Options {
  readonly server?: Http.Server | undefined
  readonly drainTimeout?: Duration.DurationInput | undefined
  readonly offload?: Offload.Options | undefined
  readonly durable?: DurableOptions | undefined
  readonly printReport?: boolean | undefined
}

/** `offload`'s options: `Offload.run`'s, an `AbortSignal` that cancels the task, and a timeout. */
export interface OffloadOptions extends Offload.RunOptions {
  readonly signal?: AbortSignal | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

/** `enqueue`'s options: `Durable.enqueue`'s, and the request whose response the task waits for. */
export interface EnqueueOptions {
  readonly key?: string | undefined
  readonly runIn?: Duration.DurationInput | undefined
  readonly runAt?: Date | undefined
  readonly request?:
    | Http.ServerResponse
    | Http.IncomingMessage
    | { readonly res: Http.ServerResponse }
    | { readonly raw: Http.IncomingMessage }
    | undefined
}

export interface Settings {
  readonly background: ResolvedOptions
  readonly drainTimeout: Duration.Duration
  readonly interruptTimeout: Duration.Duration
  readonly offload: Offload.Options | undefined
  readonly durable: DurableOptions | undefined
  readonly server: Http.Server | undefined
  readonly printReport: boolean
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** A durable task type whose handler is a plain callback, run as {@link fromCallback} runs one. */
export const durableTask = <A, I>(name: string, options: DurableTaskOptions<A, I>): Durable.Task<A, I, unknown, never> => {
  const { run, ...rest } = options
  return Durable.task<A, I, unknown, never>(name, {
    ...rest,
    run: typeof run === "function"
      ? (payload, info) => fromCallback((signal) => run(payload, { ...info, signal }))
      // not a function: kept as given, so that `make` names `tasks[i].run` in its InvalidOptionError
      : run
  })
}

const CALLBACK_EXPECTED = "a function taking an AbortSignal (e.g. async (signal) => fetch(url, { signal }))"

export const checkCallback = (option: string, callback: unknown): void => {
  if (typeof callback !== "function") throw validate.invalidOption(option, callback, CALLBACK_EXPECTED)
}

/** Validates the options of `make`, synchronously. */
export const resolveSettings = (given: Options | undefined): Settings => {
  const checked = Effect.runSync(Effect.either(Effect.flatMap(
    validate.record("options", given, "{ server, grace: \"5 seconds\" }"),
    (options) =>
      validate.all({
        background: service.resolveOptions(options),
        drainTimeout: validate.duration(
          "drainTimeout",
          validate.orDefault(options.drainTimeout, "10 seconds"),
          "nonNegative"
        ),
        interruptTimeout: validate.duration(
          "interruptTimeout",
          validate.orDefault(options.interruptTimeout, "5 seconds"),
          "nonNegative"
        ),
        offload: options.offload === undefined || isObject(options.offload)
          ? Effect.succeed(options.offload)
          : validate.invalid("offload", options.offload, "the worker pool's options (e.g. { module: new URL(\"./tasks.js\", import.meta.url) })"),
        durable: checkDurable(options.durable),
        server: options.server === undefined || options.server instanceof Http.Server
          ? Effect.succeed(options.server)
          : validate.invalid("server", options.server, "a node:http Server (e.g. http.createServer(handler), or Express's app.listen())"),
        printReport: Effect.map(validate.boolean("printReport", options.printReport), (value) => value ?? true)
      })
  )))
  if (checked._tag === "Left") throw checked.left
  return checked.right
}

export const DURABLE_EXAMPLE = "{ store: Durable.sqlite({ filename: \"./data/tasks.sqlite\" }), tasks: [SendEmail] }"

/** `durable`'s shape; its task types are checked by `Durable.layer` when `make` builds it. */
const checkDurable = (given: unknown): Effect.Effect<DurableOptions | undefined, InvalidOptionError> => {
  if (given === undefined) return Effect.succeed(undefined)
  if (!isObject(given)) return validate.invalid("durable", given, DURABLE_EXAMPLE)
  return Effect.map(
    validate.all({
      store: Layer.isLayer(given.store)
        ? Effect.succeed(given.store as DurableOptions["store"])
        : validate.invalid("durable.store", given.store, "a store layer (e.g. Durable.sqlite({ filename: \"./data/tasks.sqlite\" }) or Durable.postgres({ url }))"),
      tasks: Array.isArray(given.tasks)
        ? Effect.succeed(given.tasks as ReadonlyArray<DurableTask>)
        : validate.invalid("durable.tasks", given.tasks, "an array of task types (e.g. [Node.durableTask(\"send-email\", { payload, run })])")
    }),
    (checked): DurableOptions => checked
  )
}

export const checkOffloadOptions = (given: OffloadOptions | undefined) =>
  Effect.flatMap(validate.record("options", given, "{ signal: controller.signal, timeout: \"5 seconds\" }"), (options) =>
    validate.all({
      signal: options.signal === undefined || options.signal instanceof AbortSignal
        ? Effect.succeed(options.signal)
        : validate.invalid("signal", options.signal, "an AbortSignal (e.g. AbortSignal.timeout(5000), or req's own signal)"),
      timeout: options.timeout === undefined
        ? Effect.succeed(undefined)
        : validate.duration("timeout", options.timeout, "positive", validate.NODE_TIMER_MAX_MILLIS)
    }))
