/**
 * The library for servers that are not Effect's: node:http, Express, Fastify, Hono on Node. `make`
 * builds the runtime once — the supervisor, and a worker pool when asked — and hands back plain
 * functions: `after` (a task after a response's last byte), `waitUntil`, `fork`, `daemon`,
 * `every`, `cron`, `offload` (with an `AbortSignal` and a timeout), `enqueue` (durable tasks, on
 * SQLite or PostgreSQL, run by workers `make` starts), `snapshot`, and `close`, the same bounded shutdown as
 * `Server.launch` (drain the server, give background work its grace, interrupt the rest) with the
 * same report line. Callbacks are `async (signal) => ...` functions: `signal` aborts when the task
 * is interrupted, so the callback can stop its own I/O; one that ignores it and outlives the
 * interrupt timeout is named in the report.
 *
 * @example
 * ```ts
 * import * as Http from "node:http"
 * import * as Node from "effect-background/Node"
 *
 * const server = Http.createServer((req, res) => {
 *   background.after(res, async (signal) => {
 *     await fetch("https://example.com/audit", { method: "POST", signal })
 *   }, { name: "audit" })
 *   res.end("ok")
 * })
 * const background = await Node.make({ server, grace: "5 seconds" })
 * Node.handleSignals(background)
 * server.listen(3000, "127.0.0.1")
 * ```
 *
 * @since 0.5.0
 * @module
 */
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Layer from "effect/Layer"
import type * as Http from "node:http"
import type * as Background from "./Background.js"
import type * as Durable from "./Durable.js"
import * as internal from "./internal/node/runtime.js"
import * as internalSettings from "./internal/node/settings.js"
import type * as Offload from "./Offload.js"

/**
 * A task's body: a plain function, usually `async`, given an `AbortSignal` that aborts when the
 * task is interrupted (shutdown past its grace, `interrupt()`). A rejection is the task's failure,
 * reported once by name.
 *
 * The signal is made only for a function that declares a parameter: one whose `length` is 0
 * (`async () => ...`) is called with none, as making a signal costs each task about 2.6 µs and
 * memory the garbage collector keeps longer (on Node 20). A wrapper with only a rest parameter
 * (`(...args) => f(...args)`) has `length` 0 as well: declare the signal to pass it on
 * (`(signal) => f(signal)`).
 *
 * @example
 * ```ts
 * import type * as Node from "effect-background/Node"
 *
 * const ping: Node.Callback = async (signal) => {
 *   await fetch("https://example.com/ping", { signal })
 * }
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export type Callback<A = unknown> = (signal: AbortSignal) => PromiseLike<A> | A

/**
 * Options of {@link make}: the supervisor's (`grace`, `interruptTimeout`, `concurrency`,
 * `maxQueued`, as `Background.layer` takes them), the server to drain with its `drainTimeout`
 * (default 10 seconds), the worker pool's (`Offload.layer`'s; no pool without them), `durable`
 * (a store and the durable task types this process runs: see {@link DurableOptions}), and
 * `printReport` (default true: `close` prints the report line to stdout).
 *
 * @example
 * ```ts
 * import * as Http from "node:http"
 * import type * as Node from "effect-background/Node"
 *
 * const options: Node.Options = {
 *   server: Http.createServer(),
 *   drainTimeout: "10 seconds",
 *   grace: "5 seconds",
 *   interruptTimeout: "2 seconds"
 * }
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface Options extends internalSettings.Options {}

/**
 * How a task ended: `"failed"` has already been reported (logged once, with its name and cause).
 *
 * @example
 * ```ts
 * import type * as Node from "effect-background/Node"
 *
 * const isClean = (outcome: Node.Outcome) => outcome === "finished"
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export type Outcome = "finished" | "failed" | "interrupted"

/**
 * A task started by `fork`, `waitUntil`, `daemon`, `every` or `cron`: its id and name, `done()`
 * (resolves with its {@link Outcome}, never rejects) and `interrupt()` (aborts its signal and
 * waits for it).
 *
 * @example
 * ```ts
 * import type * as Node from "effect-background/Node"
 *
 * const stop = async (task: Node.Task) => {
 *   await task.interrupt()
 *   return task.done()
 * }
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface Task extends internal.Task {}

/**
 * What `close` resolves with: the report line (as printed), what outlived its interrupt timeout,
 * and the exit code `handleSignals` uses (1 when anything did).
 *
 * @example
 * ```ts
 * import type * as Node from "effect-background/Node"
 *
 * const exitWith = (result: Node.CloseResult) => process.exit(result.exitCode)
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface CloseResult extends internal.CloseResult {}

/**
 * The `durable` option of {@link make}: the store (`Durable.sqlite(...)`, or `Durable.postgres(...)`
 * for many processes) and the task types this process runs, made with {@link durableTask} (or
 * `Durable.task`, with an Effect handler that needs no service). `make` builds the store first,
 * starts each type's workers as jobs of the supervisor, and `close` gives their running tasks the
 * grace, then hands those still running back to the store for the next process (counted as
 * released in the report), and closes the store last. A bad task option rejects `make` with
 * `InvalidOptionError` naming it (`tasks[0].maxAttempts`); a store that cannot be reached, with
 * `DurableStoreError`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as Durable from "effect-background/Durable"
 * import * as Node from "effect-background/Node"
 *
 * const SendWelcome = Node.durableTask("send-welcome", {
 *   payload: Schema.Struct({ email: Schema.String }),
 *   run: async ({ email }, { signal }) => {
 *     await fetch("https://mail.example.com/send", { method: "POST", body: email, signal })
 *   }
 * })
 * const durable: Node.DurableOptions = {
 *   store: Durable.sqlite({ filename: "./data/tasks.sqlite" }),
 *   tasks: [SendWelcome]
 * }
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface DurableOptions {
  /** The store layer: `Durable.sqlite(...)` or `Durable.postgres(...)`. */
  readonly store: Layer.Layer<Context.Tag.Identifier<typeof Durable.DurableStore>, unknown>
  /** The task types this process runs (and may enqueue). */
  readonly tasks: ReadonlyArray<DurableTask>
}

/**
 * A durable task type whose handler needs no service: what {@link DurableOptions} `tasks` takes.
 *
 * @example
 * ```ts
 * import type * as Node from "effect-background/Node"
 *
 * const names = (tasks: ReadonlyArray<Node.DurableTask>) => tasks.map((task) => task.name)
 * ```
 *
 * @since 0.5.0
 * @category models
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any: payload, encoded form and error differ per task type (the payload type is invariant), as in Durable.AnyTask; the requirements stay `never`
export type DurableTask = Durable.Task<any, any, any, never>

/**
 * What a durable handler of {@link durableTask} is given besides its payload: the task's id, name
 * and attempt (1 for the first), and a `signal` that aborts when the run is cut off (shutdown past
 * its grace, the task's `timeout`).
 *
 * @example
 * ```ts
 * import type * as Node from "effect-background/Node"
 *
 * const line = (info: Node.DurableRunInfo) => `${info.name} ${info.id}, attempt ${info.attempt}`
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface DurableRunInfo extends Durable.RunInfo {
  readonly signal: AbortSignal
}

/**
 * Options of {@link durableTask}: `Durable.task`'s (`payload` schema, `maxAttempts`, `retry`,
 * `concurrency`, `timeout`), with a plain `async` handler.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type * as Node from "effect-background/Node"
 *
 * const options: Node.DurableTaskOptions<{ readonly to: string }, { readonly to: string }> = {
 *   payload: Schema.Struct({ to: Schema.String }),
 *   run: async ({ to }) => console.log(`mail to ${to}`),
 *   maxAttempts: 5,
 *   timeout: "30 seconds"
 * }
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface DurableTaskOptions<A, I> extends Omit<Durable.TaskOptions<A, I, unknown, never>, "run"> {
  /**
   * The handler. It may run more than once for one task (delivery is at least once): make it
   * idempotent. A rejection fails the attempt (retried by `retry`, dead after `maxAttempts`).
   */
  readonly run: (payload: A, info: DurableRunInfo) => PromiseLike<unknown> | unknown
}

/**
 * Defines a durable task type with a plain `async` handler, for {@link DurableOptions} `tasks` and
 * `enqueue`. The payload is described by an Effect `Schema`: only its encoded form is stored.
 * Nothing is checked here: `make` checks the options when it starts the workers.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as Node from "effect-background/Node"
 *
 * export const SendWelcome = Node.durableTask("send-welcome", {
 *   payload: Schema.Struct({ email: Schema.String }),
 *   run: async ({ email }, { attempt, signal }) => {
 *     await fetch("https://mail.example.com/send", { method: "POST", body: email, signal })
 *     console.log(`welcome mail to ${email} (attempt ${attempt})`)
 *   },
 *   maxAttempts: 8
 * })
 * ```
 *
 * @since 0.5.0
 * @category constructors
 */
export const durableTask = <A, I>(name: string, options: DurableTaskOptions<A, I>): Durable.Task<A, I, unknown, never> =>
  internalSettings.durableTask(name, options)

/**
 * Options of {@link BackgroundRuntime} `offload`: `Offload.run`'s (`transfer`), a `signal` that
 * cancels the task (the promise rejects with the signal's reason), and a `timeout` (it rejects with
 * a `TimeoutException` saying so). Either way the thread running the task is terminated and
 * replaced, so the pool answers the next task.
 *
 * @example
 * ```ts
 * import type * as Node from "effect-background/Node"
 *
 * const controller = new AbortController()
 * const options: Node.OffloadOptions = { signal: controller.signal, timeout: "2 seconds" }
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface OffloadOptions extends internalSettings.OffloadOptions {}

/**
 * Options of {@link BackgroundRuntime} `enqueue`: `Durable.enqueue`'s `key` (idempotency),
 * `runIn`/`runAt`, and `request` — the request whose response the task waits for (a request of the
 * server given to `make`, its `ServerResponse`, Express's `req`, Fastify's `request` with
 * `Fastify.plugin`, Hono's `c.env.outgoing`): committed at once, run once the response is written,
 * as `Durable.enqueue` does in an Effect handler. Without `request`, the task is available to the
 * workers at once.
 *
 * @example
 * ```ts
 * import type * as Http from "node:http"
 * import type * as Node from "effect-background/Node"
 *
 * declare const req: Http.IncomingMessage
 * const options: Node.EnqueueOptions = { key: "welcome:ada@example.com", request: req }
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface EnqueueOptions extends internalSettings.EnqueueOptions {}

/**
 * The runtime {@link make} returns: the library's functions for code outside Effect. Every
 * function checks its arguments at once and throws `InvalidOptionError` naming a bad one;
 * `fork`, `waitUntil` and the jobs throw `ShuttingDownError` once `close` has begun (and `fork`
 * `QueueFullError` past `maxQueued`).
 *
 * @example
 * ```ts
 * import * as Node from "effect-background/Node"
 *
 * const background: Node.BackgroundRuntime = await Node.make()
 * background.fork(async () => console.log("warming the cache"), "warm-cache")
 * background.every(async () => console.log("tick"), { name: "tick", spaced: "1 minute" })
 * await background.close()
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface BackgroundRuntime {
  /**
   * Runs `callback` after the response is written: once it closes, just after its `finish` event
   * said the last byte went to the OS (a task may still be added between the two). `target` is the `ServerResponse`, or a request carrying it (`req.res`, as Express
   * and Fastify's raw request do, or a request of the server given to {@link make}). A request's
   * tasks run one after another in the order added; one failing is reported and the next still
   * runs. As with `BackgroundTasks.add`, they run only when the handler succeeded (a status under
   * 400), and a client hanging up before the last byte cancels nothing (they start when the
   * response closes); after an error status they are skipped and counted as such. `route` is the
   * route's pattern, shown by the inspector and in default names (never the URL).
   */
  readonly after: (
    target: Http.ServerResponse | Http.IncomingMessage | { readonly res: Http.ServerResponse },
    callback: Callback,
    options?: { readonly name?: string | undefined; readonly route?: string | undefined }
  ) => void
  /** Keeps a promise already started under supervision: shutdown waits for it (within the grace). */
  readonly waitUntil: (promise: PromiseLike<unknown>, options?: { readonly name?: string | undefined }) => Task
  /** A named fire-and-forget task (`Background.fork`'s options: a name, or `{ name, key, onConflict }`). */
  readonly fork: (callback: Callback, options: Background.ForkOptions) => Task
  /** A long-running callback, restarted with backoff when it fails (`Background.daemon`'s options). */
  readonly daemon: (callback: Callback, options: string | Background.DaemonOptions) => Task
  /** A callback run on a cadence, `{ name, spaced }` or `{ name, fixedRate, overlap }` (`Background.every`). */
  readonly every: (callback: Callback, options: Background.EveryOptions) => Task
  /** A callback run by a cron expression in an explicit time zone (`Background.cron`). */
  readonly cron: (callback: Callback, options: Background.CronOptions) => Task
  /**
   * Runs an `Offload` task on the worker pool configured by `make({ offload })`; rejects with the
   * task's own failure or `Offload.RunError`, or `InvalidOptionError` when no pool was configured
   * or an option is bad. With `signal` (aborted: rejects with its reason) or `timeout` (past it:
   * rejects with `TimeoutException`), the cancelled task's thread is terminated and replaced.
   */
  readonly offload: <I, IE, O, OE, F, FE>(
    task: Offload.Task<I, IE, O, OE, F, FE>,
    input: I,
    options?: OffloadOptions
  ) => Promise<O>
  /**
   * Commits a durable task to the store configured by `make({ durable })` and resolves with its id
   * once it is on disk (answer 2xx then). With `request`, it runs only once that request's
   * response is written (whatever its status); it survives a crash either way. Rejects with
   * `DurableStoreError` when the store cannot commit it (answer 503), `DurablePayloadError` for a
   * payload its schema refuses, `InvalidOptionError` for a bad option or when no store was
   * configured.
   */
  readonly enqueue: <A, I, E, R>(task: Durable.Task<A, I, E, R>, payload: A, options?: EnqueueOptions) => Promise<string>
  /** The tasks owned now, as `Background.snapshot` gives them. */
  readonly snapshot: () => ReadonlyArray<Background.TaskInfo>
  /** Counts since the runtime was made, as `Background.stats` gives them. */
  readonly stats: () => Background.SupervisorStats
  /** Has the server drained from `close()`, if it was not given to `make`. One server per runtime. */
  readonly attach: (server: Http.Server) => void
  /** False once `close` has begun: answer a health check 503 then. */
  readonly isReady: () => boolean
  /**
   * Graceful shutdown, once (later calls get the same promise): stops accepting connections, lets
   * in-flight requests finish within `drainTimeout` (idle keep-alive sockets closed, the last
   * answers saying `Connection: close`), gives background work its `grace`, interrupts what is
   * left (aborting signals) within `interruptTimeout`, closes the pool, prints the report line.
   */
  readonly close: () => Promise<CloseResult>
}

/**
 * Builds the runtime. Options are checked before anything starts: a bad one throws
 * `InvalidOptionError` naming it; a pool's worker module that fails to load rejects with
 * `WorkerLoadError`.
 *
 * @example
 * ```ts
 * import * as Http from "node:http"
 * import * as Node from "effect-background/Node"
 *
 * const server = Http.createServer((req, res) => {
 *   background.after(req, async () => console.log("sent"), { name: "notify" })
 *   res.end("ok")
 * })
 * const background = await Node.make({ server })
 * ```
 *
 * @since 0.5.0
 * @category constructors
 */
export const make = (options?: Options): Promise<BackgroundRuntime> => {
  const settings = internalSettings.resolveSettings(options)
  return internal.NodeRuntime.make(settings)
}

/**
 * SIGINT and SIGTERM close the runtime and exit the process: 0, or 1 when something outlived its
 * bounds. As with `Server.launch`, a second signal, or the hard deadline (default: the phases'
 * bounds plus 5 seconds), exits at once with 1 naming what was still running. `close`, when given,
 * is called first: a framework that drains its own server and closes the runtime from its hooks
 * (`() => app.close()` with `Fastify.plugin`). Returns a function that removes the handlers.
 *
 * @example
 * ```ts
 * import * as Node from "effect-background/Node"
 *
 * const background = await Node.make()
 * const stopHandling = Node.handleSignals(background, { hardDeadline: "30 seconds" })
 * ```
 *
 * @since 0.5.0
 * @category lifecycle
 */
export const handleSignals = (
  runtime: BackgroundRuntime,
  options?: {
    readonly hardDeadline?: Duration.DurationInput | undefined
    readonly close?: (() => PromiseLike<unknown> | void) | undefined
  }
): () => void => internal.handleSignals(internal.NodeRuntime.from(runtime), options)
