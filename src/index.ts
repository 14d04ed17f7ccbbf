/**
 * effect-background: server-scoped background work for Effect 3 HTTP servers.
 *
 * @since 0.1.0
 */

/**
 * The server-lifetime supervisor: forks, keyed forks, daemons, schedules, `awaitIdle`, `snapshot`.
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
 * @since 0.1.0
 */
export * as BackgroundTasks from "./BackgroundTasks.js"

/**
 * Server glue: graceful Node HTTP server, readiness, `app` wiring and `launch`.
 *
 * @since 0.1.0
 */
export * as Server from "./Server.js"

/**
 * Worker-thread offloading: typed tasks, true cancellation, blocking calls, isolated runtimes.
 *
 * @since 0.1.0
 */
export * as Offload from "./Offload.js"
