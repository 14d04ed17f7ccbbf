/**
 * Fastify 5: `plugin(background)` ties each request to the runtime `Node.make` built and closes
 * the runtime from Fastify's `onClose` hook — once Fastify has stopped listening and finished its
 * in-flight requests, background work gets its grace, what is left is interrupted, and the report
 * line is printed. `after(request, callback)` runs a task once the response's last byte is
 * written, named by default after the method and route pattern, never the URL.
 *
 * @example
 * ```ts
 * import Fastify from "fastify"
 * import * as FastifyAdapter from "effect-background/Fastify"
 * import * as Node from "effect-background/Node"
 *
 * const background = await Node.make()
 * const app = Fastify()
 * await app.register(FastifyAdapter.plugin(background))
 * app.post<{ Params: { email: string } }>("/send-notification/:email", async (request) => {
 *   FastifyAdapter.after(request, async () => console.log(`notify ${request.params.email}`), { name: "notify" })
 *   return { message: "Notification sent in the background" }
 * })
 * await app.listen({ port: 3000, host: "127.0.0.1" })
 * Node.handleSignals(background, { close: () => app.close() })
 * ```
 *
 * @since 0.5.0
 * @module
 */
import type { FastifyPluginCallback, FastifyRequest } from "fastify"
import * as internal from "./internal/node/fastify.js"
import type * as Node from "./Node.js"

/**
 * A Fastify plugin (`await app.register(plugin(background))`, before the routes): its `onRequest`
 * hook lets {@link after} find the request's response and runtime, and its `onClose` hook closes
 * the runtime when `app.close()` has drained the server. It is not encapsulated: its hooks apply
 * to every route of the app.
 *
 * @example
 * ```ts
 * import Fastify from "fastify"
 * import * as FastifyAdapter from "effect-background/Fastify"
 * import * as Node from "effect-background/Node"
 *
 * const app = Fastify()
 * await app.register(FastifyAdapter.plugin(await Node.make()))
 * ```
 *
 * @since 0.5.0
 * @category plugin
 */
export const plugin = (background: Node.BackgroundRuntime): FastifyPluginCallback => internal.plugin(background)

/**
 * Runs `callback` after the response to `request` is written (`Node.BackgroundRuntime.after`'s
 * rules: in order, each failure reported and the next still run, skipped when the answer is an
 * error status; a client hanging up first cancels nothing). Throws `InvalidOptionError` for a request of an app
 * without {@link plugin}.
 *
 * @example
 * ```ts
 * import type { FastifyReply, FastifyRequest } from "fastify"
 * import * as FastifyAdapter from "effect-background/Fastify"
 *
 * export const signup = async (request: FastifyRequest, reply: FastifyReply) => {
 *   FastifyAdapter.after(request, async (signal) => {
 *     await fetch("https://example.com/welcome", { method: "POST", signal })
 *   }, { name: "welcome-email" })
 *   return reply.code(201).send({ ok: true })
 * }
 * ```
 *
 * @since 0.5.0
 * @category tasks
 */
export const after = (
  request: FastifyRequest,
  callback: Node.Callback,
  options?: { readonly name?: string | undefined }
): void => internal.after(request, callback, options)
