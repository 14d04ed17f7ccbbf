/**
 * Connection tracking and drain for the HTTP server (shutdown phases 1 and 2): which requests
 * are in flight and on which connection, `Connection: close` on the last response of each during
 * the drain, idle keep-alive sockets closed, and past the drain timeout the rest cut and their
 * request fibers interrupted. Also the answer writer's guard against clients that hang up.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Http from "node:http"
import * as Net from "node:net"
import { Waiters } from "../background/waiters.js"
import * as RequestState from "../requestState.js"
import { Table } from "../table.js"
import type { ShutdownRecord } from "../report.js"

/** A connection with responses not yet closed, oldest first (pipelined requests share one). */
interface Connection {
  readonly id: number
  readonly socket: Net.Socket
  readonly pending: Array<Http.ServerResponse>
}

/** A request fiber still running, with the Node request it serves (when there is one). */
interface Served {
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  readonly request: Http.IncomingMessage | undefined
}

/** Each socket's entry, on the socket (a property, not a `Map`: see requestState.ts and table.ts). */
const connectionOf = RequestState.make<Connection>("effect-background/connection")

/** The HTTP server's shutdown state, shared by `Server.layer` and `Server.serve`. */
export class Graceful {
  draining = false
  drained = 0
  interrupted = 0
  /**
   * Connections with responses not yet closed, by a number of this server's; a connection's entry
   * leaves with its last response and is back with its next request. (Tables, not Maps, for
   * entries that come and go with each request: see table.ts.)
   */
  private readonly connections = new Table<Connection>()
  private nextConnection = 0
  /** Request fibers still running, by fiber id. */
  readonly fibers = new Table<Served>()
  /** Request fibers let go by {@link exempt}: not waited for, nor counted. */
  private readonly exempted = new WeakSet<Fiber.RuntimeFiber<unknown, unknown>>()
  private readonly idle = new Waiters(() => this.connections.size === 0 && this.fibers.size === 0)

  /**
   * `countResponses`: the drain counts responses (finished: drained; cut: interrupted) rather than
   * request fibers — for a server whose requests are not Effect fibers (`effect-background/Node`).
   * `listens`: whether it listens for the server's requests itself; when not, whoever does tells of
   * each one ({@link opened}, {@link closed}): the Node runtime, whose listener runs before a
   * framework sees the request (runtime.ts says why).
   */
  constructor(
    readonly server: Http.Server,
    readonly drainTimeout: Duration.Duration,
    readonly interruptTimeout: Duration.Duration,
    readonly countResponses = false,
    listens = true
  ) {
    if (listens) {
      server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
        const socket = request.socket
        this.opened(socket, response)
        response.on("close", () => this.closed(socket, response))
      })
    }
  }

  /** A request came in on `socket`: its response is pending there until it closes ({@link closed}). */
  opened(socket: Net.Socket, response: Http.ServerResponse): void {
    // A connection's entry stays on its socket from its first request to its close, and is in
    // `connections` while it has responses pending.
    let connection = connectionOf.get(socket)
    if (connection === undefined) {
      connection = { id: this.nextConnection++, socket, pending: [] }
      connectionOf.set(socket, connection)
      socket.once("close", () => this.orphaned(socket))
    }
    if (connection.pending.length === 0) this.connections.set(connection.id, connection)
    connection.pending.push(response)
    if (this.draining) this.closeAfterLast(socket)
  }

  /** A response {@link opened} on `socket` has closed: written, or cut. */
  closed(socket: Net.Socket, response: Http.ServerResponse): void {
    if (this.countResponses && this.draining) {
      if (response.writableFinished) this.drained++
      else this.interrupted++
    }
    const left = this.forgetOne(socket, response)
    // A response whose headers went out before the drain could not say `Connection: close`:
    // end its own connection now that it is done, unless a pipelined request on it still
    // waits for its answer. (Closing *all* idle connections here would also cut connections
    // whose next request is on its way but not yet parsed.)
    if (this.draining && left === 0) socket.end()
    this.check()
  }

  /**
   * A connection closed with pipelined responses still queued behind the one Node was writing:
   * Node never writes them nor says they are gone (no `close`). Their requests are let go as a
   * client's hang-up: one still being handled is interrupted as a client abort; one already
   * answered is no longer waited for, as its fiber stays parked in the platform's write, which
   * waits for a `finish` that will not come.
   */
  private orphaned(socket: Net.Socket): void {
    const queued = connectionOf.get(socket)?.pending.filter((response) => response.socket === null) ?? []
    if (queued.length === 0) return
    this.forget(socket, (response) => response.socket === null)
    for (const response of queued) {
      for (const { fiber, request } of this.fibers.values()) {
        if (request !== response.req) continue
        // Answered: its fiber is parked in the write for good, and is not waited for.
        if (response.writableEnded) this.fibers.delete(fiber.id().id)
        else fiber.unsafeInterruptAsFork(HttpServerError.clientAbortFiberId)
      }
    }
    this.check()
  }

  /** Drops a connection's pending responses that match; returns how many are left on it. */
  private forget(socket: Net.Socket, match: (response: Http.ServerResponse) => boolean): number {
    const connection = connectionOf.get(socket)
    if (connection === undefined) return 0
    const pending = connection.pending
    for (let index = pending.length - 1; index >= 0; index--) if (match(pending[index]!)) pending.splice(index, 1)
    if (pending.length === 0) this.connections.delete(connection.id)
    return pending.length
  }

  /** {@link forget} for one response (the common case: no predicate to make). */
  private forgetOne(socket: Net.Socket, response: Http.ServerResponse): number {
    const connection = connectionOf.get(socket)
    if (connection === undefined) return 0
    const pending = connection.pending
    const index = pending.indexOf(response)
    if (index === -1) return pending.length
    if (pending.length === 1) {
      pending.length = 0
      this.connections.delete(connection.id)
      return 0
    }
    pending.splice(index, 1)
    return pending.length
  }

  /**
   * During the drain, the last response pending on a connection says `Connection: close`, and
   * only that one: Node ends the connection after a response that says it, so an earlier one
   * saying it would drop the pipelined requests behind it.
   */
  private closeAfterLast(socket: Net.Socket): void {
    const pending = connectionOf.get(socket)?.pending
    if (pending === undefined) return
    pending.forEach((response, index) => {
      if (response.headersSent) return
      if (index === pending.length - 1) response.setHeader("connection", "close")
      else if (response.getHeader("connection") === "close") response.removeHeader("connection")
    })
  }

  check(): void {
    this.idle.check()
  }

  /** Completes once no request is in flight. */
  readonly awaitIdle: Effect.Effect<void> = this.idle.await

  /** Counts a request fiber so drain can wait for it and, past the timeout, interrupt it. */
  track<A, E, R>(app: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.withFiberRuntime((fiber) => {
      const request = Context.getOption(fiber.currentContext, HttpServerRequest.HttpServerRequest)
      const id = fiber.id().id
      this.fibers.set(id, { fiber, request: Option.getOrUndefined(Option.map(request, NodeHttpServerRequest.toIncomingMessage)) })
      return Effect.onExit(app, (exit) =>
        Effect.sync(() => {
          this.fibers.delete(id)
          if (this.draining && !this.exempted.has(fiber)) {
            if (Exit.isInterrupted(exit)) this.interrupted++
            else this.drained++
          }
          this.check()
        }))
    })
  }

  /**
   * Lets a request go on through the drain without holding it: the inspector's live stream, which
   * must keep showing the drain without making it wait. The request is no longer waited for, nor
   * counted, nor named as still running; its connection is cut with the last ones when the drain
   * ends.
   */
  exempt(request: Http.IncomingMessage): void {
    for (const served of this.fibers.values()) {
      if (served.request !== request) continue
      this.fibers.delete(served.fiber.id().id)
      this.exempted.add(served.fiber)
    }
    this.forget(request.socket, (response) => response.req === request)
    this.check()
  }

  /** Phases 1 and 2: stop taking traffic, let in-flight requests finish, then cut what is left. */
  drain(record: ShutdownRecord): Effect.Effect<void> {
    return Effect.gen(this, function*() {
      const start = Date.now()
      record.startedAt ??= start
      let stillRunning: ReadonlyArray<string> = []
      this.draining = true
      // Stop accepting connections only: `http.Server#close` would also drop idle keep-alive
      // connections at once, including ones whose next request is already on the wire.
      Net.Server.prototype.close.call(this.server)
      for (const connection of this.connections.values()) this.closeAfterLast(connection.socket)
      // A request a client sent just before the signal may still be in the socket's buffers; let
      // it arrive (it is served, with `Connection: close`) before idle connections are closed.
      // With no connection open there is nothing to wait for (the listener is closed: no new one
      // comes), so a shutdown with nothing to drain skips the linger.
      const open = yield* this.connectionCount
      const linger = open === 0 ? Duration.zero : Duration.min(IDLE_LINGER, this.drainTimeout)
      yield* Effect.sleep(linger)
      this.server.closeIdleConnections()
      // The linger counts in the drain's bound: requests get `drainTimeout` from the signal.
      const finished = yield* Effect.interruptible(this.awaitIdle).pipe(
        Effect.timeoutOption(Duration.subtract(this.drainTimeout, linger))
      )
      if (Option.isNone(finished)) {
        this.server.closeAllConnections()
        for (const { fiber } of this.fibers.values()) fiber.unsafeInterruptAsFork(FiberId.none)
        const stopped = yield* Effect.interruptible(this.awaitIdle).pipe(Effect.timeoutOption(this.interruptTimeout))
        if (Option.isNone(stopped)) {
          // Uninterruptible handlers: give up on them, and say so.
          const live = this.live()
          stillRunning = live
          yield* Effect.logError(`server: still running after the interrupt timeout: ${live.join(", ")}`)
        }
      }
      // The requests are done (or given up on): what is left are idle or half-sent connections.
      this.server.closeAllConnections()
      record.serverDone({
        millis: Date.now() - start,
        drained: this.drained,
        interrupted: this.interrupted,
        stillRunning
      })
    })
  }

  /** The connections the server has open (an error counts as one: then the linger is kept). */
  private readonly connectionCount: Effect.Effect<number> = Effect.async((resume) => {
    this.server.getConnections((error, count) => resume(Effect.succeed(error === null ? count : 1)))
  })

  /** What is still in flight, for the report and a hard exit's last words. */
  live(): ReadonlyArray<string> {
    const fibers = this.fibers.values()
    const served = new Set(fibers.map(({ request }) => request))
    return [
      ...fibers.map(({ request }) => request === undefined ? "request" : `request ${request.method} ${request.url}`),
      ...this.connections.values().flatMap((connection) => connection.pending)
        .filter((response) => !served.has(response.req))
        .map((response) => `response to ${response.req.method} ${response.req.url}`)
    ]
  }
}

/** How long idle keep-alive connections linger at the start of a drain (see `drain`). */
const IDLE_LINGER = Duration.millis(100)

export class GracefulServer extends Context.Tag("effect-background/GracefulServer")<GracefulServer, Graceful>() {}

/**
 * Answers are written so that a client hanging up cannot park its request for good. The platform
 * writes a body with `end(body, callback)` and waits for the callback, uninterruptibly, before the
 * request ends; Node calls it back on `finish` only, which never comes once the connection has
 * closed. Such a request would stay in flight for good, holding shutdown to its deadlines. So an
 * answer to a client already gone loses its body (keeping its status, which after-response tasks
 * go by), and `end`'s callback also runs when the connection is (or becomes) closed first.
 */
export const endOnClose: HttpApp.PreResponseHandler = (request, response) =>
  Effect.sync(() => {
    const node = NodeHttpServerRequest.toServerResponse(request) as unknown
    if (!(node instanceof Http.ServerResponse) || response.body._tag === "Empty" || node.writableEnded) return response
    if (node.destroyed) return HttpServerResponse.empty({ status: response.status })
    const end = node.end
    node.end = function(this: Http.ServerResponse, ...args: Array<unknown>) {
      const callback = args[args.length - 1]
      if (typeof callback !== "function") return end.apply(this, args as Parameters<typeof end>)
      let pending = true
      const done = () => {
        if (!pending) return
        pending = false
        this.off("close", done)
        callback()
      }
      if (this.destroyed) process.nextTick(done)
      else this.once("close", done)
      args[args.length - 1] = done
      return end.apply(this, args as Parameters<typeof end>)
    } as typeof end
    return response
  })
