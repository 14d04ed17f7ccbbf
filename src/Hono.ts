/**
 * Hono on Node (`@hono/node-server`): `fetch(app, background)` is the fetch callback to serve, and
 * gives every request a working `c.executionCtx.waitUntil(promise)` — the promise is supervised by
 * the runtime `Node.make` built: shutdown waits for it within the grace, a rejection is reported.
 * `after(c, callback)` runs a task once the response's last byte is written, and
 * `waitUntil(c, promise)` supervises a promise already started, both named by default after the
 * method and route pattern (never the URL).
 *
 * @example
 * ```ts
 * import { type HttpBindings, serve } from "@hono/node-server"
 * import { Hono } from "hono"
 * import type * as Http from "node:http"
 * import * as HonoAdapter from "effect-background/Hono"
 * import * as Node from "effect-background/Node"
 *
 * const background = await Node.make()
 * const app = new Hono<{ Bindings: HttpBindings }>()
 * app.post("/send-notification/:email", (c) => {
 *   HonoAdapter.after(c, async () => console.log(`notify ${c.req.param("email")}`), { name: "notify" })
 *   return c.json({ message: "Notification sent in the background" })
 * })
 * const server = serve({ fetch: HonoAdapter.fetch(app, background), port: 3000, hostname: "127.0.0.1" })
 * background.attach(server as Http.Server) // serve() returns an http.Server unless told to use http2
 * Node.handleSignals(background)
 * ```
 *
 * @since 0.5.0
 * @module
 */
import type { Http2Bindings, HttpBindings } from "@hono/node-server"
import type { Context, Env } from "hono"
import * as internal from "./internal/node/hono.js"
import type * as Node from "./Node.js"

/**
 * What {@link fetch} needs of a Hono app: its `fetch`, called with Node's bindings and an
 * execution context.
 *
 * @example
 * ```ts
 * import { Hono } from "hono"
 * import type * as HonoAdapter from "effect-background/Hono"
 *
 * const app: HonoAdapter.FetchApp = new Hono()
 * ```
 *
 * @since 0.5.0
 * @category models
 */
export interface FetchApp extends internal.FetchApp {}

/**
 * The fetch callback for `@hono/node-server`'s `serve`: the app's own, with an execution context
 * whose `waitUntil(promise)` hands the promise to the runtime (named `waitUntil <METHOD>`: the
 * route is not known yet when the context is made; {@link waitUntil} names it by route, or as
 * asked), and the request's Node response kept for {@link after}.
 *
 * @example
 * ```ts
 * import { serve } from "@hono/node-server"
 * import { Hono } from "hono"
 * import * as HonoAdapter from "effect-background/Hono"
 * import * as Node from "effect-background/Node"
 *
 * const background = await Node.make()
 * const app = new Hono()
 * app.post("/events", (c) => {
 *   c.executionCtx.waitUntil(fetch("https://example.com/analytics", { method: "POST" }))
 *   return c.text("ok")
 * })
 * serve({ fetch: HonoAdapter.fetch(app, background), port: 3000, hostname: "127.0.0.1" })
 * ```
 *
 * @since 0.5.0
 * @category serving
 */
export const fetch = (
  app: FetchApp,
  background: Node.BackgroundRuntime
): (request: Request, env: HttpBindings | Http2Bindings) => Response | Promise<Response> => internal.fetch(app, background)

/**
 * Runs `callback` after the response to the request of `context` is written
 * (`Node.BackgroundRuntime.after`'s rules: in order, each failure reported and the next still run,
 * skipped when the answer is an error status; a client hanging up first cancels nothing). Throws `InvalidOptionError`
 * for a request not served through {@link fetch}.
 *
 * @example
 * ```ts
 * import type { Http2Bindings, HttpBindings } from "@hono/node-server"
 * import type { Context, Env } from "hono"
 * import * as HonoAdapter from "effect-background/Hono"
 *
 * export const signup = (c: Context<{ Bindings: HttpBindings }>) => {
 *   HonoAdapter.after(c, async (signal) => {
 *     await fetch("https://example.com/welcome", { method: "POST", signal })
 *   }, { name: "welcome-email" })
 *   return c.json({ ok: true }, 201)
 * }
 * ```
 *
 * @since 0.5.0
 * @category tasks
 */
export const after = <E extends Env>(
  context: Context<E>,
  callback: Node.Callback,
  options?: { readonly name?: string | undefined }
): void => internal.after(context, callback, options)

/**
 * `c.executionCtx.waitUntil(promise)` with a name: the promise is supervised by the runtime
 * (shutdown waits for it within the grace, a rejection is reported once by name), named
 * `waitUntil <METHOD> <route pattern>` by default, or `options.name`. Returns the runtime's
 * {@link Node.Task}. Throws `InvalidOptionError` for a request not served through {@link fetch}.
 *
 * @example
 * ```ts
 * import type { HttpBindings } from "@hono/node-server"
 * import type { Context } from "hono"
 * import * as HonoAdapter from "effect-background/Hono"
 *
 * export const track = (c: Context<{ Bindings: HttpBindings }>) => {
 *   // named "waitUntil POST /events/:kind" unless a name is given
 *   HonoAdapter.waitUntil(c, fetch("https://example.com/analytics", { method: "POST" }))
 *   HonoAdapter.waitUntil(c, fetch("https://example.com/audit", { method: "POST" }), { name: "audit" })
 *   return c.text("ok")
 * }
 * ```
 *
 * @since 0.5.0
 * @category tasks
 */
export const waitUntil = <E extends Env>(
  context: Context<E>,
  promise: PromiseLike<unknown>,
  options?: { readonly name?: string | undefined }
): Node.Task => internal.waitUntil(context, promise, options)
