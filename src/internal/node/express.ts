/**
 * The Express adapter: the runtime kept per request by the middleware, and `after` with the
 * route's pattern (Express sets `req.route` once a route matched) as the task's request origin.
 */
import * as Http from "node:http"
import type { Callback } from "../../Node.js"
import * as validate from "../options.js"
import * as RequestState from "../requestState.js"
import { NodeRuntime } from "./runtime.js"

/**
 * Kept on each request (a property, not a WeakMap: see requestState.ts), prepared before Express
 * changes the request's prototype.
 */
const runtimes = RequestState.make<NodeRuntime>("effect-background/express", "request")

export const middleware = (background: unknown) => {
  const runtime = NodeRuntime.from(background)
  return (request: Http.IncomingMessage, _response: Http.ServerResponse, next: (error?: unknown) => void): void => {
    runtimes.set(request, runtime)
    next()
  }
}

/** The matched route's pattern (`/send-notification/:email`), when Express has one. */
const routeOf = (request: Http.IncomingMessage): string | undefined => {
  const route = (request as { readonly route?: { readonly path?: unknown } }).route
  return typeof route?.path === "string" ? route.path : undefined
}

export const after = (
  request: Http.IncomingMessage,
  callback: Callback,
  options: { readonly name?: string | undefined } = {}
): void => {
  const runtime = request instanceof Http.IncomingMessage ? runtimes.get(request) : undefined
  if (runtime === undefined) {
    throw validate.invalidOption(
      "request",
      request instanceof Http.IncomingMessage ? `${request.method} ${request.url}` : request,
      "a request that went through Express.middleware(background) (app.use it before the routes)"
    )
  }
  runtime.after(request, callback, { name: options.name, route: routeOf(request) })
}
