/**
 * effect-background: server-scoped background work for Effect 3 HTTP servers.
 *
 * @since 0.1.0
 * @module
 * @mergeModuleWith <project>
 */

/**
 * The server-lifetime supervisor: forks, keyed forks, daemons, schedules, `awaitIdle`, `snapshot`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * export const BackgroundLive = Background.layer({ grace: "5 seconds" })
 * export const track = Background.fork(Effect.log("signup"), "analytics")
 * ```
 *
 * @since 0.1.0
 */
export * as Background from "./Background.js"

/**
 * The typed errors of the library.
 *
 * @since 0.1.0
 */
export * from "./Errors.js"

/**
 * Per-request tasks that run after the response is written (`BackgroundTasks.add`).
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 * import { BackgroundTasks } from "effect-background"
 *
 * // a handler served by Server.serve (or with BackgroundTasks.middleware)
 * export const handler = BackgroundTasks.add(Effect.log("after the response")).pipe(
 *   Effect.as(HttpServerResponse.text("queued"))
 * )
 * ```
 *
 * @since 0.1.0
 */
export * as BackgroundTasks from "./BackgroundTasks.js"

/**
 * Server glue: graceful Node HTTP server, readiness, `app` wiring and `launch`.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Server } from "effect-background"
 *
 * Server.launch(Server.app(HttpServerResponse.text("ok"), { port: 3000 }))
 * ```
 *
 * @since 0.1.0
 */
export * as Server from "./Server.js"

/**
 * Worker-thread offloading: typed tasks, true cancellation, blocking calls, isolated runtimes.
 *
 * @example
 * ```ts
 * // A worker module imports the Offload module alone, so the thread loads little.
 * import { Schema } from "effect"
 * import * as Offload from "effect-background/Offload"
 *
 * const Double = Offload.task("double", { input: Schema.Number, output: Schema.Number })
 *
 * export default Offload.worker(Offload.implement(Double, (n) => n * 2))
 * ```
 *
 * @since 0.1.0
 */
export * as Offload from "./Offload.js"

/**
 * Durable tasks: committed to a store (an embedded SQLite file, or PostgreSQL for many processes)
 * before `enqueue` returns, run at least once by supervised workers, retried, kept as dead after
 * their last attempt; they survive a crash and are shared by every process on the store.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * export const SendWelcome = Durable.task("send-welcome", {
 *   payload: Schema.Struct({ email: Schema.String }),
 *   run: ({ email }) => Effect.log(`welcome mail to ${email}`)
 * })
 * ```
 *
 * @since 0.3.0
 */
export * as Durable from "./Durable.js"

/**
 * The library's metrics as Effect `Metric`s — tasks started, finished, failed, interrupted,
 * rejected and skipped by kind and name, running and queued, durations and lags; schedules,
 * daemons, durable tasks, the offload pool and shutdown — for any Effect metrics exporter.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-background"
 *
 * export const runningForks = Metric.value(Metrics.tasksRunning.pipe(Metric.tagged("kind", "task"))).pipe(
 *   Effect.map((state) => state.value)
 * )
 * ```
 *
 * @since 0.4.0
 */
export * as Metrics from "./Metrics.js"

/**
 * The inspector page: an opt-in route showing the background work live — tasks, jobs, durable
 * tasks (retry and discard dead ones, with the token), offload threads and the shutdown phase.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Inspector } from "effect-background"
 *
 * export const router = HttpRouter.empty.pipe(
 *   HttpRouter.concat(Inspector.router({ path: "/inspector", token: process.env.INSPECTOR_TOKEN || "change-me" }))
 * )
 * ```
 *
 * @since 0.4.0
 */
export * as Inspector from "./Inspector.js"
