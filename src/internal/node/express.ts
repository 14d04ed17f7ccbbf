/**
 * The Express adapter: `after` with the route's pattern (Express sets `req.route` once a route
 * matched) as the task's request origin, for a request of a server attached to a runtime (found
 * through its exchange: runtime.ts) or one that went through the middleware, which keeps the
 * runtime on the request.
 */
import * as Http from "node:http"
import type { Callback } from "../../Node.js"
import * as validate from "../options.js"
import * as RequestState from "../requestState.js"
import { exchanges, NodeRuntime } from "./runtime.js"

/**
 * The runtime, kept by the middleware on each request that has no exchange (its server is not
 * attached to a runtime): a property, not a WeakMap (see requestState.ts). On a request that has
 * one, the runtime goes on the exchange, a plain object Express does not touch (see `Exchange` in
 * runtime.ts).
 */
const runtimes = RequestState.make<NodeRuntime>("effect-background/express")

export const middleware = (background: unknown) => {
  const runtime = NodeRuntime.from(background)
  return (request: Http.IncomingMessage, _response: Http.ServerResponse, next: (error?: unknown) => void): void => {
    // A request of an attached server: its tasks go to this runtime (the attached one, usually).
    const exchange = exchanges.get(request)
    if (exchange !== undefined && exchange.request === request) exchange.served = runtime
    else runtimes.set(request, runtime)
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
  const exchange = request instanceof Http.IncomingMessage ? exchanges.get(request) : undefined
  if (exchange !== undefined && exchange.request === request) {
    return exchange.served.addTo(exchange, callback, { name: options.name, route: routeOf(request) })
  }
  const runtime = request instanceof Http.IncomingMessage ? runtimes.get(request) : undefined
  if (runtime === undefined) {
    throw validate.invalidOption(
      "request",
      request instanceof Http.IncomingMessage ? `${request.method} ${request.url}` : request,
      "a request of a server attached to a runtime (background.attach(server), or Node.make({ server })), or one that went through Express.middleware(background)"
    )
  }
  runtime.after(request, callback, { name: options.name, route: routeOf(request) })
}
