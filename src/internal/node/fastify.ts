/**
 * The Fastify adapter: a plugin (not encapsulated, so its hooks see every route) whose `onRequest`
 * hook keeps each request's Node response and the runtime, and whose `onClose` hook closes the
 * runtime — after Fastify has stopped listening and finished its in-flight requests, so their
 * after-response tasks are already admitted and get the grace.
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from "fastify"
import type * as Http from "node:http"
import type { Callback } from "../../Node.js"
import * as validate from "../options.js"
import * as RequestState from "../requestState.js"
import { Table } from "../table.js"
import { NodeRuntime, settleList } from "./runtime.js"

interface Entry {
  readonly runtime: NodeRuntime
  readonly response: Http.ServerResponse
}

/** Kept on each raw request (a property, not a WeakMap: see requestState.ts). */
const entries = RequestState.make<Entry>("effect-background/fastify")

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
      entries.set(request.raw, { runtime, response: reply.raw })
      runtime.track(request.raw, reply.raw)
      const response = reply.raw
      const id = nextId++
      open.set(id, response)
      // (a response closes once: `on` spares `once`'s wrapper) Its after-response tasks are
      // settled here too: `track` tells the runtime that this listener does it.
      response.on("close", () => {
        count(id, response)
        settleList(response)
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
  const entry = typeof request === "object" && request !== null ? entries.get(request.raw) : undefined
  if (entry === undefined) {
    throw validate.invalidOption(
      "request",
      typeof request === "object" && request !== null ? `${request.method} ${request.url}` : request,
      "a request of an app that registered Fastify.plugin(background) (register it before the routes)"
    )
  }
  entry.runtime.after(entry.response, callback, { name: options.name, route: request.routeOptions.url })
}
