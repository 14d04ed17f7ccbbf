/**
 * Express 5 (and Connect-style servers): `after(req, callback)` runs a task once the response's
 * last byte is written — named by default after the method and route pattern (`after-response
 * POST /send-notification/:email #1`), never the URL — for a request of the server the runtime is
 * attached to (`background.attach(server)`, or `Node.make({ server })`). An app served by a server
 * the runtime is not attached to ties its requests to the runtime with `middleware(background)`.
 * Everything else (`fork`, `every`, `close`...) is the runtime's own. The module uses no Express
 * types: any `(req, res, next)` server works.
 *
 * @example
 * ```ts
 * import express from "express"
 * import * as Express from "effect-background/Express"
 * import * as Node from "effect-background/Node"
 *
 * const background = await Node.make()
 * const app = express()
 * app.post("/send-notification/:email", (req, res) => {
 *   Express.after(req, async () => console.log(`notify ${req.params.email}`), { name: "notify" })
 *   res.json({ message: "Notification sent in the background" })
 * })
 * background.attach(app.listen(3000, "127.0.0.1"))
 * Node.handleSignals(background)
 * ```
 *
 * @since 0.5.0
 * @module
 */
import type * as Http from "node:http"
import * as internal from "./internal/node/express.js"
import type * as Node from "./Node.js"

/**
 * Express middleware (`app.use` it before the routes) that lets {@link after} find the runtime
 * from the request, for an app whose server the runtime is not attached to (a request of the
 * attached server needs none; through this middleware, its tasks go to this middleware's
 * runtime). It answers nothing itself and calls `next()` at once. Each middleware costs Express
 * some work per request: leave it out when the runtime is attached.
 *
 * @example
 * ```ts
 * import express from "express"
 * import * as Express from "effect-background/Express"
 * import * as Node from "effect-background/Node"
 *
 * const app = express()
 * app.use(Express.middleware(await Node.make()))
 * ```
 *
 * @since 0.5.0
 * @category middleware
 */
export const middleware = (
  background: Node.BackgroundRuntime
): (request: Http.IncomingMessage, response: Http.ServerResponse, next: (error?: unknown) => void) => void =>
  internal.middleware(background)

/**
 * Runs `callback` after the response to `request` is written (`Node.BackgroundRuntime.after`'s
 * rules: in order, each failure reported and the next still run, skipped when the answer is an
 * error status; a client hanging up first cancels nothing). Throws `InvalidOptionError` for a
 * request of a server no runtime is attached to that did not go through {@link middleware}.
 *
 * @example
 * ```ts
 * import type { Request, Response } from "express"
 * import * as Express from "effect-background/Express"
 *
 * export const signup = (req: Request, res: Response) => {
 *   Express.after(req, async (signal) => {
 *     await fetch("https://example.com/welcome", { method: "POST", signal })
 *   }, { name: "welcome-email" })
 *   res.status(201).json({ ok: true })
 * }
 * ```
 *
 * @since 0.5.0
 * @category tasks
 */
export const after = (
  request: Http.IncomingMessage,
  callback: Node.Callback,
  options?: { readonly name?: string | undefined }
): void => internal.after(request, callback, options)
