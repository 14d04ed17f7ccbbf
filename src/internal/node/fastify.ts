/**
 * The Fastify adapter: a plugin (not encapsulated, so its hooks see every route) whose `onRequest`
 * hook makes each request's exchange (its response, method and tasks: runtime.ts), and whose
 * `onClose` hook closes the runtime — after Fastify has stopped listening and finished its
 * in-flight requests, so their after-response tasks are already admitted and get the grace.
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from "fastify"
import type * as Http from "node:http"
import type { Callback } from "../../Node.js"
import * as validate from "../options.js"
import { Table } from "../table.js"
import { exchanges, NodeRuntime, settleExchange } from "./runtime.js"

export const plugin = (background: unknown): FastifyPluginCallback => {
  const runtime = NodeRuntime.from(background)
  const register: FastifyPluginCallback = (instance: FastifyInstance, _options, done) => {
    // Fastify drains its own server; the report's drain phase counts the requests it finished, and
    // those its close cut off (`forceCloseConnections: true` destroys their connections): a
    // response closed before its last byte was written. A cut response may say so only after
    // Fastify's onClose (its socket's close comes later): those still open then are counted there.
    let drain: { readonly done: (drained: number, interrupted: number) => void; drained: number; interrupted: number } | undefined
    // (a Table, not a Set: see table.ts)
    const open = new Table<Http.ServerResponse>()
    let nextId = 0
    const count = (id: number, response: Http.ServerResponse) => {
      if (!open.delete(id) || drain === undefined) return
      if (response.writableFinished) drain.drained++
      else drain.interrupted++
    }
    instance.addHook("onRequest", (request, reply, next) => {
      // The request's exchange (runtime.ts), kept on its raw request; its after-response tasks are
      // settled when the response closes, here.
      const response = reply.raw
      const exchange = runtime.exchange(request.raw, response)
      const id = nextId++
      open.set(id, response)
      // (a response closes once: `on` spares `once`'s wrapper)
      response.on("close", () => {
        settleExchange(exchange)
        count(id, response)
      })
      next()
    })
    instance.addHook("preClose", (next) => {
      drain = { done: runtime.frameworkDrain(), drained: 0, interrupted: 0 }
      next()
    })
    instance.addHook("onClose", (_instance, next) => {
      // the server is closed: nothing still open will be written now
      for (const [id, response] of open.entries()) count(id, response)
      drain?.done(drain.drained, drain.interrupted)
      runtime.close().then(() => next(), next)
    })
    done()
  }
  // What fastify-plugin does: the hooks apply to the whole app, not only to this plugin's scope.
  Object.assign(register, { [Symbol.for("skip-override")]: true })
  return register
}

export const after = (
  request: FastifyRequest,
  callback: Callback,
  options: { readonly name?: string | undefined } = {}
): void => {
  const exchange = typeof request === "object" && request !== null ? exchanges.get(request.raw) : undefined
  if (exchange === undefined || exchange.request !== request.raw) {
    throw validate.invalidOption(
      "request",
      typeof request === "object" && request !== null ? `${request.method} ${request.url}` : request,
      "a request of an app that registered Fastify.plugin(background) (register it before the routes)"
    )
  }
  exchange.served.addTo(exchange, callback, { name: options.name, route: request.routeOptions.url })
}
