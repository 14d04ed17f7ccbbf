/**
 * The inspector: an opt-in page, served by your own server, that shows the background work live.
 *
 * It shows tasks running and queued with their age, kind and the request they came from; daemons
 * and schedules with their state, next run and last failure; durable tasks by state, with retry
 * and discard for dead ones; the offload pool's threads; and, while the server drains, the phase
 * and what is still running. The page is plain HTML, JavaScript and CSS shipped in the package
 * (its `inspector/` folder): nothing to build.
 *
 * @since 0.4.0
 * @module
 */
import type * as HttpRouter from "@effect/platform/HttpRouter"
import type { Background } from "./Background.js"
import * as internal from "./internal/inspector/router.js"
import * as validate from "./internal/options.js"

/**
 * Options of {@link router}.
 *
 * @example
 * ```ts
 * import type { Inspector } from "effect-background"
 *
 * const options: Inspector.Options = { path: "/inspector", token: process.env.INSPECTOR_TOKEN }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** Where the page is mounted: a path such as `/inspector` (no trailing slash). Default `/inspector`. */
  readonly path?: `/${string}` | undefined
  /**
   * When set, the page's data (and its actions) require `Authorization: Bearer <token>`: a caller
   * without it gets 401 and sees nothing. The page asks for the token, or reads it from its URL's
   * fragment (`/inspector#token=...`), and keeps it in the tab's session storage. When
   * `undefined`, the page is open and read-only (no retry or discard): mount it only where that is
   * safe.
   */
  readonly token?: string | undefined
}

/**
 * The inspector's routes, to concat into your router: the page at `path`, and under it its files,
 * its data as JSON (`<path>/api/state`), a live stream of it as server-sent events, one view a
 * second (`<path>/api/stream`), and, with a token, `POST <path>/api/durable/:id/retry` and
 * `.../discard` for dead durable tasks. It shows names, states, times, counts and failures'
 * causes (`Cause.pretty`) — never a task's input, a durable task's payload, or a request's URL
 * (a task shows its request's method and route pattern). The durable part appears with a durable
 * store in context, the offload part with an `Offload` pool.
 *
 * Under {@link Server.layer} (and so {@link Server.app}) the page's stream goes on while the
 * server drains, without holding the drain, and ends with it. A bad path, or an empty token
 * (which would guard nothing), is refused at once with `InvalidOptionError`.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Inspector, Server } from "effect-background"
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/", HttpServerResponse.text("hello")),
 *   HttpRouter.concat(Inspector.router({ path: "/inspector", token: "s3cret-from-config" }))
 * )
 * export const Main = Server.app(router, { port: 3000 })
 * // open http://127.0.0.1:3000/inspector#token=s3cret-from-config
 * ```
 *
 * @since 0.4.0
 * @category routes
 */
export const router = (options: Options = {}): HttpRouter.HttpRouter<never, Background> => {
  const path = options.path ?? "/inspector"
  const { token } = options
  const badPath = typeof path !== "string" || !/^(\/[A-Za-z0-9._~-]+)+$/.test(path)
  const badToken = token !== undefined && (typeof token !== "string" || token.length === 0)
  if (badPath || badToken) {
    throw validate.invalidOptions([
      ...(badPath ? [{ option: "path", value: path, expected: "a path such as \"/inspector\" or \"/admin/background\", without a trailing slash" }] : []),
      ...(badToken ? [{ option: "token", value: token, expected: "a non-empty string, or undefined for an open page (e.g. process.env.INSPECTOR_TOKEN)" }] : [])
    ])
  }
  return internal.router(path, token)
}
