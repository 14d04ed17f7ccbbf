/**
 * Per-request tasks that run after the response has been written — the counterpart of FastAPI's
 * `BackgroundTasks.add_task`. By default they run one after another in the order added, only when
 * the handler succeeded, and a failing task never skips the ones after it. They are owned by the
 * server's supervisor, so a client disconnect does not cancel them and shutdown drains them.
 *
 * @since 0.1.0
 * @module
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import { Background } from "./Background.js"
import * as requestTasks from "./internal/background/requestTasks.js"
import { currentTaskId } from "./internal/background/task.js"
import type { AddOptions } from "./internal/background/requestTasks.js"

/**
 * Options of {@link add}.
 *
 * @example
 * ```ts
 * import type { BackgroundTasks } from "effect-background"
 *
 * const cleanup: BackgroundTasks.Options = { name: "release-upload", always: true }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends AddOptions {
  /**
   * Shown in logs, snapshots and the shutdown report. Default: `after-response <METHOD> <route> #<n>`
   * with the route's pattern (`/users/:id`), never the URL, which may carry data.
   */
  readonly name?: string | undefined
  /** Run even when the handler failed or answered 4xx/5xx (for logging and cleanup). Default `false`. */
  readonly always?: boolean | undefined
  /** Start as soon as the response is written instead of after the previously added tasks. */
  readonly concurrent?: boolean | undefined
}

/**
 * Schedules `effect` to run after the current request's response has been written. Call it from a
 * handler served with {@link middleware} (which `Server.serve` installs). The task is admitted into
 * the supervisor at once; it runs when the response's last byte has been handed to the socket (at
 * the end of that turn of the event loop) and the handler succeeded (it completed and answered
 * below 400), unless `always` is set.
 *
 * It requires the `HttpServerRequest` a handler is given, so a `Background.every`, `daemon` or
 * `cron` job that calls it leaves the request in its layer's requirements, and the app does not
 * compile. Where the types cannot tell, a misplaced call dies naming the cause: with
 * `OutsideRequestError` in a `Background.fork` body (which sees the handler's request), or in a
 * fiber the handler left running past its response — use `Background.fork` for work not tied to a
 * request — and with `MissingMiddlewareError` in a request served without {@link middleware}.
 *
 * A client that disconnects once the handler has answered (even mid-body) cancels nothing: the
 * tasks run as if the response had been delivered, and so they do when a streamed body fails after
 * its headers are out. One that disconnects earlier interrupts the handler, which then counts as
 * failed, so only `always` tasks run.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 * import { BackgroundTasks } from "effect-background"
 *
 * const sendEmail = (to: string) => Effect.log(`email sent to ${to}`)
 *
 * export const router = HttpRouter.empty.pipe(
 *   HttpRouter.post(
 *     "/signup",
 *     Effect.gen(function*() {
 *       yield* BackgroundTasks.add(sendEmail("ada@example.com"), { name: "welcome-email" })
 *       return yield* HttpServerResponse.json({ ok: true })
 *     })
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category adding
 */
export const add = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: Options = {}
): Effect.Effect<void, never, HttpServerRequest.HttpServerRequest | Exclude<R, Scope.Scope>> =>
  requestTasks.add(effect, options)


/**
 * Calls `f` once the Node response has been written to the socket (or the socket has closed).
 * Requests that do not come from a Node server count as written when the app returns.
 */
const whenWritten = (request: HttpServerRequest.HttpServerRequest, f: () => void): void => {
  // An upgraded (WebSocket) request has no response to finish: the app returning is the end.
  const incoming = NodeHttpServerRequest.toIncomingMessage(request) as unknown
  if (incoming instanceof Http.IncomingMessage && incoming.headers.upgrade !== undefined) return f()
  const response = NodeHttpServerRequest.toServerResponse(request) as unknown
  if (!(response instanceof Http.ServerResponse) || response.writableFinished || response.destroyed) return f()
  // A Node response emits `close` on the tick after `finish` (its last byte handed to the socket),
  // and also when the connection drops first: one listener covers both.
  response.once("close", f)
}

/**
 * Whether the handler succeeded: it answered below 400. A body that fails once its headers are out
 * (a stream failing mid-way) leaves the answer standing, as a client hanging up mid-body does.
 */
const succeeded = (
  request: HttpServerRequest.HttpServerRequest,
  exit: Exit.Exit<HttpServerResponse.HttpServerResponse, unknown>
): boolean => {
  if (Exit.isSuccess(exit)) return exit.value.status < 400
  const response = NodeHttpServerRequest.toServerResponse(request) as unknown
  return response instanceof Http.ServerResponse && response.headersSent && response.statusCode < 400
}

/**
 * The middleware that gives handlers their per-request task list and releases it once the response
 * is written. `Server.serve` applies it; apply it yourself when serving with `HttpServer.serve` or
 * `HttpApiBuilder.serve`. It needs the `Background` supervisor.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { Layer } from "effect"
 * import { BackgroundTasks } from "effect-background"
 *
 * const router = HttpRouter.empty.pipe(HttpRouter.get("/", HttpServerResponse.text("ok")))
 * export const ServeLive = HttpServer.serve(router, BackgroundTasks.middleware)
 * export type Check = Layer.Layer.Context<typeof ServeLive>
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = HttpMiddleware.make(<E, R>(app: HttpApp.Default<E, R>) =>
  // One step per request: the supervisor is looked up only by a request that adds a task.
  Effect.withFiberRuntime<
    HttpServerResponse.HttpServerResponse,
    E,
    R | HttpServerRequest.HttpServerRequest | Background
  >((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    // Applied twice (around the server and inside a router), the outer one does the work.
    if (!requestTasks.open(request, fiber.getFiberRef(currentTaskId))) return app
    // onExit, not a continuation: it runs even when a client that hung up interrupts the app
    // (as it does when the middleware is applied inside a router, in an interruptible region).
    return Effect.onExit(app, (exit) =>
      Effect.sync(() => {
        const tasks = requestTasks.take(request)
        if (tasks !== undefined) whenWritten(request, () => tasks.settle(succeeded(request, exit)))
      }))
  })
)
