/**
 * Server glue: a Node HTTP server that shuts down gracefully, a readiness flag and health route,
 * one layer that wires server, supervisor and jobs, and `launch`, which runs it all with signal
 * handling, a hard deadline and a one-line shutdown report.
 *
 * @since 0.1.0
 */
import type * as Etag from "@effect/platform/Etag"
import * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpPlatform from "@effect/platform/HttpPlatform"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { createHash, timingSafeEqual } from "node:crypto"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Background from "./Background.js"
import * as service from "./internal/background/service.js"
import * as BackgroundTasks from "./BackgroundTasks.js"
import {
  DurablePayloadError,
  DurableStoreError,
  InvalidOptionError,
  QueueFullError,
  ShuttingDownError,
  TaskSchemaError,
  WorkerCrashError,
  WorkerLoadError,
  WorkerOutOfMemoryError
} from "./Errors.js"
import { DurableStore } from "./internal/durable/tag.js"
import * as validate from "./internal/options.js"
import { currentRecord, ShutdownRecord, ShutdownRecorder } from "./internal/report.js"
import { Waiters } from "./internal/background/waiters.js"

/**
 * Whether the server is taking traffic. It turns `false` the moment shutdown begins.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-background"
 *
 * const ready = Effect.flatMap(Server.Readiness, (readiness) => readiness.isReady)
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Readiness extends Context.Tag("effect-background/Readiness")<Readiness, {
  readonly isReady: Effect.Effect<boolean>
}>() {}

/** The HTTP server's shutdown state, shared by {@link layer} and {@link serve}. */
class Graceful {
  draining = false
  drained = 0
  interrupted = 0
  /**
   * Responses not yet closed, per connection, oldest first (pipelined requests share one); a
   * connection's entry goes with its last response.
   */
  private readonly bySocket = new Map<Net.Socket, Array<Http.ServerResponse>>()
  /** Connections whose close is watched for the responses still queued on them. */
  private readonly watched = new WeakSet<Net.Socket>()
  /** Request fibers still running, with the Node request each serves (when there is one). */
  readonly fibers = new Map<Fiber.RuntimeFiber<unknown, unknown>, Http.IncomingMessage | undefined>()
  private readonly idle = new Waiters(() => this.bySocket.size === 0 && this.fibers.size === 0)

  constructor(
    readonly server: Http.Server,
    readonly drainTimeout: Duration.Duration,
    readonly interruptTimeout: Duration.Duration
  ) {
    server.on("request", (request, response) => {
      const socket = request.socket
      const pending = this.bySocket.get(socket)
      if (pending === undefined) this.bySocket.set(socket, [response])
      else pending.push(response)
      if (!this.watched.has(socket)) {
        this.watched.add(socket)
        socket.once("close", () => this.orphaned(socket))
      }
      if (this.draining) this.closeAfterLast(socket)
      response.once("close", () => {
        const left = this.forget(socket, (other) => other === response)
        // A response whose headers went out before the drain could not say `Connection: close`:
        // end its own connection now that it is done, unless a pipelined request on it still
        // waits for its answer. (Closing *all* idle connections here would also cut connections
        // whose next request is on its way but not yet parsed.)
        if (this.draining && left === 0) socket.end()
        this.check()
      })
    })
  }

  /**
   * A connection closed with pipelined responses still queued behind the one Node was writing:
   * Node never writes them nor says they are gone (no `close`). Their requests are let go as a
   * client's hang-up: one still being handled is interrupted as a client abort; one already
   * answered is no longer waited for, as its fiber stays parked in the platform's write, which
   * waits for a `finish` that will not come.
   */
  private orphaned(socket: Net.Socket): void {
    const queued = this.bySocket.get(socket)?.filter((response) => response.socket === null) ?? []
    if (queued.length === 0) return
    this.forget(socket, (response) => response.socket === null)
    for (const response of queued) {
      for (const [fiber, request] of this.fibers) {
        if (request !== response.req) continue
        // Answered: its fiber is parked in the write for good, and is not waited for.
        if (response.writableEnded) this.fibers.delete(fiber)
        else fiber.unsafeInterruptAsFork(HttpServerError.clientAbortFiberId)
      }
    }
    this.check()
  }

  /** Drops a connection's pending responses that match; returns how many are left on it. */
  private forget(socket: Net.Socket, match: (response: Http.ServerResponse) => boolean): number {
    const pending = this.bySocket.get(socket)
    if (pending === undefined) return 0
    for (let index = pending.length - 1; index >= 0; index--) if (match(pending[index]!)) pending.splice(index, 1)
    if (pending.length === 0) this.bySocket.delete(socket)
    return pending.length
  }

  /**
   * During the drain, the last response pending on a connection says `Connection: close`, and
   * only that one: Node ends the connection after a response that says it, so an earlier one
   * saying it would drop the pipelined requests behind it.
   */
  private closeAfterLast(socket: Net.Socket): void {
    const pending = this.bySocket.get(socket)
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
      this.fibers.set(fiber, Option.getOrUndefined(Option.map(request, NodeHttpServerRequest.toIncomingMessage)))
      return Effect.onExit(app, (exit) =>
        Effect.sync(() => {
          this.fibers.delete(fiber)
          if (this.draining) {
            if (Exit.isInterrupted(exit)) this.interrupted++
            else this.drained++
          }
          this.check()
        }))
    })
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
      for (const socket of this.bySocket.keys()) this.closeAfterLast(socket)
      // A request a client sent just before the signal may still be in the socket's buffers; let
      // it arrive (it is served, with `Connection: close`) before idle connections are closed.
      const linger = Duration.min(IDLE_LINGER, this.drainTimeout)
      yield* Effect.sleep(linger)
      this.server.closeIdleConnections()
      // The linger counts in the drain's bound: requests get `drainTimeout` from the signal.
      const finished = yield* Effect.interruptible(this.awaitIdle).pipe(
        Effect.timeoutOption(Duration.subtract(this.drainTimeout, linger))
      )
      if (Option.isNone(finished)) {
        this.server.closeAllConnections()
        for (const fiber of this.fibers.keys()) fiber.unsafeInterruptAsFork(FiberId.none)
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

  /** What is still in flight, for the report and a hard exit's last words. */
  live(): ReadonlyArray<string> {
    const served = new Set(this.fibers.values())
    return [
      ...Array.from(this.fibers.values(), (request) =>
        request === undefined ? "request" : `request ${request.method} ${request.url}`),
      ...Array.from(this.bySocket.values()).flat()
        .filter((response) => !served.has(response.req))
        .map((response) => `response to ${response.req.method} ${response.req.url}`)
    ]
  }
}

/** How long idle keep-alive connections linger at the start of a drain (see `drain`). */
const IDLE_LINGER = Duration.millis(100)

class GracefulServer extends Context.Tag("effect-background/GracefulServer")<GracefulServer, Graceful>() {}

/**
 * Options of {@link layer}; each is validated when the layer is built.
 *
 * @example
 * ```ts
 * import type { Server } from "effect-background"
 *
 * const options: Server.Options = { port: 0, host: "127.0.0.1", drainTimeout: "10 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** TCP port; 0 picks a free one. Default 3000. */
  readonly port?: number | undefined
  /** Interface to listen on. Default `"127.0.0.1"`. */
  readonly host?: string | undefined
  /** How long in-flight requests may take to finish once shutdown begins. Default 10 seconds. */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** How long to wait for interrupted requests' finalizers past the drain timeout. Default 5 seconds. */
  readonly interruptTimeout?: Duration.DurationInput | undefined
}

/**
 * A Node HTTP server whose release drains gracefully (see {@link serve}), with `Readiness` and the
 * platform services (`HttpPlatform`, `Etag`, `NodeContext`). Logs `listening on http://host:port`.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Layer } from "effect"
 * import { Background, Server } from "effect-background"
 *
 * export const Live = Server.serve(HttpServerResponse.text("ok")).pipe(
 *   Layer.provide(Server.layer({ port: 0 })),
 *   Layer.provide(Background.layer())
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  given?: Options
): Layer.Layer<
  | HttpServer.HttpServer
  | Readiness
  | GracefulServer
  | HttpPlatform.HttpPlatform
  | Etag.Generator
  | NodeContext.NodeContext,
  InvalidOptionError | HttpServerError.ServeError
> => Layer.unwrapEffect(Effect.map(resolveOptions(given), layerFrom))

/** {@link Options}, checked. */
interface Settings {
  readonly port: number
  readonly host: string
  readonly drainTimeout: Duration.Duration
  readonly interruptTimeout: Duration.Duration
}

const resolveOptions = (given: Options | undefined): Effect.Effect<Settings, InvalidOptionError> =>
  Effect.flatMap(validate.record("options", given, "{ port: 3000 }"), (options) =>
    validate.all({
      port: validate.port("port", validate.orDefault(options.port, 3000)),
      host: validate.name("host", validate.orDefault(options.host, "127.0.0.1"), "127.0.0.1"),
      drainTimeout: validate.duration("drainTimeout", validate.orDefault(options.drainTimeout, "10 seconds"), "nonNegative"),
      interruptTimeout: validate.duration(
        "interruptTimeout",
        validate.orDefault(options.interruptTimeout, "5 seconds"),
        "nonNegative"
      )
    }))

const layerFrom = ({ drainTimeout, host, interruptTimeout, port }: Settings) =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const server = Http.createServer()
    const graceful = new Graceful(server, drainTimeout, interruptTimeout)
    const recorder = yield* currentRecord
    recorder.bound(Duration.toMillis(drainTimeout) + Duration.toMillis(interruptTimeout), () => graceful.live())
    const listening = Layer.effectDiscard(Effect.flatMap(HttpServer.addressFormattedWith(Effect.succeed), (address) =>
      Effect.log(`listening on ${address}`)))
    return Layer.mergeAll(
      Layer.succeed(GracefulServer, graceful),
      Layer.succeed(Readiness, { isReady: Effect.sync(() => !graceful.draining) })
    ).pipe(
      Layer.provideMerge(listening.pipe(Layer.provideMerge(NodeHttpServer.layer(() => server, { port, host }))))
    )
  }))

/**
 * Answers are written so that a client hanging up cannot park its request for good. The platform
 * writes a body with `end(body, callback)` and waits for the callback, uninterruptibly, before the
 * request ends; Node calls it back on `finish` only, which never comes once the connection has
 * closed. Such a request would stay in flight for good, holding shutdown to its deadlines. So an
 * answer to a client already gone loses its body (keeping its status, which after-response tasks
 * go by), and `end`'s callback also runs when the connection is (or becomes) closed first.
 */
const endOnClose: HttpApp.PreResponseHandler = (request, response) =>
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

/**
 * Serves `app` on the server from {@link layer}, with `BackgroundTasks.middleware` installed and
 * every request tracked. Releasing it runs shutdown phases 1 and 2: readiness turns false and the
 * listener closes; in-flight requests finish, answering with `Connection: close`, and idle
 * keep-alive sockets close (as does each connection once its response ends); past the drain
 * timeout the remaining sockets are cut and their request fibers interrupted, and a request still
 * running after `interruptTimeout` is reported as still running instead of holding shutdown.
 *
 * The app runs interruptibly — like an `HttpRouter` route by default, and unlike a bare `HttpApp`
 * under `HttpServer.serve` — so the drain timeout and a client disconnect can stop it. Wrap work
 * that must not be cut short in `Effect.uninterruptible` (a route's `uninterruptible` option only
 * keeps the region it is given, which here is interruptible).
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Server } from "effect-background"
 *
 * const router = HttpRouter.empty.pipe(HttpRouter.get("/", HttpServerResponse.text("hello")))
 * export const Serve = Server.serve(router)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const serve = <E, R>(
  app: HttpApp.Default<E, R>
): Layer.Layer<
  never,
  never,
  | HttpServer.HttpServer
  | GracefulServer
  | Background.Background
  | Exclude<Exclude<R, HttpServerRequest.HttpServerRequest>, Scope.Scope>
> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const graceful = yield* GracefulServer
    const recorder = yield* currentRecord
    // The platform runs a served app uninterruptibly (only HttpRouter routes opt back in), which
    // would let a stuck handler outlive the drain timeout and the layers it uses.
    yield* HttpServer.serveEffect(
      Effect.interruptible(app),
      (inner) => graceful.track(BackgroundTasks.middleware(HttpApp.withPreResponseHandler(inner, endOnClose)))
    )
    yield* Effect.addFinalizer(() => graceful.drain(recorder))
  }))

/**
 * The readiness route: 200 `{"status":"ok"}` while serving, 503 `{"status":"draining"}` once
 * shutdown has begun.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Server } from "effect-background"
 *
 * export const router = HttpRouter.empty.pipe(HttpRouter.get("/health", Server.health))
 * ```
 *
 * @since 0.1.0
 * @category routes
 */
export const health: Effect.Effect<HttpServerResponse.HttpServerResponse, never, Readiness> = Effect.flatMap(
  Readiness,
  (readiness) => readiness.isReady
).pipe(
  Effect.map((ready) =>
    ready
      ? HttpServerResponse.unsafeJson({ status: "ok" })
      : HttpServerResponse.unsafeJson({ status: "draining" }, { status: 503 })
  )
)

/**
 * Options of {@link snapshotRoute}.
 *
 * @example
 * ```ts
 * import type { Server } from "effect-background"
 *
 * const options: Server.SnapshotRouteOptions = { token: process.env.SNAPSHOT_TOKEN }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotRouteOptions {
  /**
   * When set, a request must carry `Authorization: Bearer <token>`; otherwise it is answered 401
   * and sees nothing. When `undefined`, the route is open: mount it only where that is safe.
   */
  readonly token?: string | undefined
}

/**
 * An opt-in route that answers the supervisor's snapshot as JSON (`{"tasks": [...]}`): each task's
 * name, key, id, kind, state and times — never its input. With a durable store (`Durable.sqlite`,
 * `Durable.postgres`) in context, `durable` adds the store's counts by task type and state, across
 * every process on it, and what this process's workers did (`done`, `retried`, `dead`, `released`). Nothing is mounted unless you mount this;
 * give it a bearer `token` to keep it private. An empty token is refused at once with
 * `InvalidOptionError`, since it would guard nothing.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Server } from "effect-background"
 *
 * export const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/internal/background", Server.snapshotRoute({ token: "s3cret-from-config" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category routes
 */
export const snapshotRoute = (
  options: SnapshotRouteOptions = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, Background.Background | HttpServerRequest.HttpServerRequest> => {
  const { token } = options
  if (token !== undefined && (typeof token !== "string" || token.length === 0)) {
    throw validate.invalidOption("token", token, "a non-empty string, or undefined for an open route (e.g. process.env.SNAPSHOT_TOKEN)")
  }
  const expected = token === undefined ? undefined : createHash("sha256").update(token).digest()
  const authorized = (header: string | undefined): boolean => {
    if (expected === undefined) return true
    const match = /^Bearer (.+)$/i.exec(header ?? "")
    if (match === null) return false
    // Compare digests so the comparison takes the same time whatever the length of the guess.
    return timingSafeEqual(createHash("sha256").update(match[1]!).digest(), expected)
  }
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    authorized(request.headers.authorization)
      ? Effect.flatMap(Background.snapshot, (tasks) =>
        Effect.map(durableSnapshot, (durable) => HttpServerResponse.unsafeJson(durable === undefined ? { tasks } : { tasks, durable })))
      : Effect.succeed(
        HttpServerResponse.unsafeJson({ error: "unauthorized" }, {
          status: 401,
          headers: { "www-authenticate": "Bearer" }
        })
      ))
}

/**
 * With a durable store in context: what it holds, by task type and state, across every process on
 * it (or why it could not say), and what this process's workers have done.
 */
const durableSnapshot = Effect.flatMap(Effect.serviceOption(DurableStore), (store) =>
  Option.isNone(store)
    ? Effect.succeed(undefined)
    : Effect.map(
      Effect.either(store.value.counts),
      (counts) => ({
        store: store.value.description,
        ...(counts._tag === "Right" ? { counts: counts.right } : { error: counts.left.message }),
        thisProcess: { ...store.value.stats }
      })
    ))

/**
 * Options of {@link app}: the server's and the supervisor's, plus the jobs to run.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background, type InvalidOptionError, type Server } from "effect-background"
 *
 * // The type parameters are the jobs' error and requirements.
 * const options: Server.AppOptions<InvalidOptionError, Background.Background> = {
 *   port: 3000,
 *   drainTimeout: "10 seconds",
 *   grace: "5 seconds",
 *   jobs: Background.every("tick", Effect.log("tick"), { spaced: "1 minute" })
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface AppOptions<EJ, RJ> extends Options, Background.Options {
  /**
   * Daemons and repeating jobs (`Background.daemon`, `every`, `cron`), merged into one layer. They
   * are given the supervisor; anything else they need is yours to provide to `app`'s layer.
   */
  readonly jobs?: Layer.Layer<never, EJ, RJ> | undefined
}

/**
 * What {@link app} provides to the app: the request, its scope, the supervisor, readiness and the
 * platform services. Its jobs get the supervisor only: no request runs them, so a job that needs
 * `HttpServerRequest` (one that calls `BackgroundTasks.add`, say) leaves it in the requirements
 * of `app`'s layer, and `launch` does not compile.
 *
 * @example
 * ```ts
 * import type { Server } from "effect-background"
 *
 * type Needs<R> = Exclude<R, Server.AppProvides>
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type AppProvides =
  | HttpServerRequest.HttpServerRequest
  | Scope.Scope
  | Background.Background
  | Readiness
  | HttpServer.HttpServer
  | HttpPlatform.HttpPlatform
  | Etag.Generator
  | NodeContext.NodeContext

/**
 * Everything wired in the order of the lifetimes: the server (drained first), then the
 * supervisor with the jobs, whose release gives background work its grace period; whatever
 * services you provide to the result are built first and released last. The server's and the
 * supervisor's options are checked together before anything starts, so one `InvalidOptionError`
 * lists every bad one.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 * import { Background, BackgroundTasks, Server } from "effect-background"
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/health", Server.health),
 *   HttpRouter.post("/notify", Effect.gen(function*() {
 *     yield* BackgroundTasks.add(Effect.log("notified"))
 *     return HttpServerResponse.text("queued")
 *   }))
 * )
 *
 * export const Main = Server.app(router, {
 *   port: 3000,
 *   jobs: Background.every("heartbeat", Effect.log("Hello"), { spaced: "5 seconds" })
 * })
 * // Server.launch(Main)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const app = <E, R, EJ = never, RJ = never>(
  httpApp: HttpApp.Default<E, R>,
  options: AppOptions<EJ, RJ> = {}
): Layer.Layer<
  never,
  InvalidOptionError | HttpServerError.ServeError | EJ,
  Exclude<R, AppProvides> | Exclude<RJ, Background.Background>
> =>
  Layer.unwrapEffect(Effect.map(resolveAppOptions(options), (resolved) =>
    releaseJobs.pipe(
      // Built after everything else: jobs start only once options are checked and the port is bound.
      Layer.provide(Layer.mergeAll(serve(httpApp).pipe(Layer.provide(layerFrom(resolved.server))), resolved.jobs)),
      Layer.provide(service.layer(Effect.succeed(resolved.background), true))
    ))
    // The composed requirement is exactly R and RJ minus what the layers provide to each;
    // TypeScript cannot see that through `Layer.provide` on the merged layer, hence this one cast.
  ) as Layer.Layer<
    never,
    InvalidOptionError | HttpServerError.ServeError | EJ,
    Exclude<R, AppProvides> | Exclude<RJ, Background.Background>
  >

/**
 * The server's and the supervisor's options of {@link app}, and its `jobs`, checked together so one
 * error lists every invalid one (an `interruptTimeout` both share, refused, is listed once).
 */
const resolveAppOptions = <EJ, RJ>(given: AppOptions<EJ, RJ>) =>
  Effect.flatMap(
    validate.record("options", given, "{ port: 3000, grace: \"5 seconds\" }"),
    (options) =>
      validate.all({
        server: resolveOptions(options),
        background: service.resolveOptions(options),
        jobs: jobsOption(options.jobs)
      })
  )

/**
 * The errors behind a failure's errors — `ServeError` says only "An error has occurred" and keeps
 * the `EADDRINUSE` that matters in its `cause`.
 */
const underlying = (cause: Cause.Cause<unknown>): string =>
  Chunk.toReadonlyArray(Cause.failures(cause))
    .flatMap((error) => {
      const inner = typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined
      return inner === undefined ? [] : [`\ncaused by: ${inner instanceof Error ? inner.message : String(inner)}`]
    })
    .join("")

/** This library's errors, whose messages say what happened and what to do: no stack trace adds to them. */
const ownErrors = [
  InvalidOptionError,
  ShuttingDownError,
  QueueFullError,
  WorkerCrashError,
  WorkerOutOfMemoryError,
  WorkerLoadError,
  TaskSchemaError,
  DurableStoreError,
  DurablePayloadError
] as const

/**
 * What a failed start prints: when it failed only with this library's errors (a bad option, a
 * worker module that does not load), each as `Name: message` — the stack frames under them are
 * Effect's own and say nothing to the user; anything else (a defect, another library's error) in
 * full, stack traces included. Either way followed by the errors behind them.
 */
const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const failures = Chunk.toReadonlyArray(Cause.failures(cause))
  const described = failures.length > 0 && Chunk.isEmpty(Cause.defects(cause)) && failures.every(isOwnError)
    ? Array.from(new Set(failures.map((error) => `${error.name}: ${error.message}`))).join("\n")
    : Cause.pretty(cause)
  return `${described}${underlying(cause)}`
}

const isOwnError = (error: unknown): error is InstanceType<(typeof ownErrors)[number]> =>
  ownErrors.some((own) => error instanceof own)

/** The `jobs` option: a layer, or nothing. */
const jobsOption = <EJ, RJ>(
  jobs: Layer.Layer<never, EJ, RJ> | undefined
): Effect.Effect<Layer.Layer<never, EJ, RJ>, InvalidOptionError> =>
  jobs === undefined
    ? Effect.succeed(Layer.empty)
    : Layer.isLayer(jobs)
    ? Effect.succeed(jobs)
    : validate.invalid(
      "jobs",
      jobs,
      "a Layer of jobs (e.g. Background.every(\"tick\", Effect.log(\"tick\"), { spaced: \"1 minute\" }), or several merged with Layer.mergeAll)"
    )

const releaseJobs = Layer.effectDiscard(service.releaseJobs)

/**
 * The signals that start a graceful shutdown: Ctrl-C and a process manager's stop. SIGHUP is left
 * alone, so a server started under `nohup` keeps ignoring it.
 */
const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM"] as const

/**
 * A repeat of the first signal within this long is the same signal delivered twice, not a second
 * request: Ctrl-C under `npm start` reaches the server from the terminal and again from npm, and
 * tsx's CLI relays it once more when its child has not answered within 30 ms. A deliberate second
 * Ctrl-C comes later than this, or is a different signal.
 */
const DUPLICATE_SIGNAL_WINDOW_MILLIS = 1000

/**
 * Options of {@link launch}.
 *
 * @example
 * ```ts
 * import type { Server } from "effect-background"
 *
 * const options: Server.LaunchOptions = { hardDeadline: "30 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface LaunchOptions {
  /**
   * After the first signal, exit with code 1 if shutdown has not finished by then, naming what
   * was still running. Default: the sum of the configured phase bounds plus 5 seconds.
   */
  readonly hardDeadline?: Duration.DurationInput | undefined
}

/**
 * Runs a layer (usually from {@link app}) as the process's main program. On SIGTERM or SIGINT it
 * releases the layer — walking the shutdown phases — prints one report line, and exits 0 if all
 * went to plan. A second signal, or the hard deadline, exits at once with code 1 and names what
 * was still running; the same signal again within a second is the first one delivered twice (Ctrl-C
 * under `npm start` reaches the server from the terminal and from npm), not a second one. A layer
 * that fails to build (bad options, a port in use) exits 1 with the error and what lies behind it
 * (such as `EADDRINUSE`); this library's own errors print as `Name: message` without stack frames,
 * since the message says it all — an `InvalidOptionError` lists every bad option at once.
 *
 * Any layer that provides nothing runs this way, HTTP or not: a worker process of durable tasks
 * (`Durable.layer` with a supervisor and a store) gets the same signals, grace and report line, its
 * drain phase shown as `-`.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer, Schema } from "effect"
 * import { Background, Durable, Server } from "effect-background"
 *
 * export const main = () => Server.launch(Server.app(HttpServerResponse.text("ok"), { port: 3000 }))
 *
 * // A process with no HTTP: durable workers only.
 * const Resize = Durable.task("resize", {
 *   payload: Schema.Struct({ image: Schema.String }),
 *   run: ({ image }) => Effect.log(`resizing ${image}`)
 * })
 * export const worker = () =>
 *   Server.launch(Durable.layer([Resize]).pipe(Layer.provide(Background.layer()), Layer.provide(Durable.sqlite())))
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const launch = <E>(self: Layer.Layer<never, E, never>, options: LaunchOptions = {}): void => {
  const record = new ShutdownRecord()
  const checked = Effect.runSync(Effect.either(
    options.hardDeadline === undefined
      ? Effect.succeed(undefined)
      : Effect.map(
        validate.duration("hardDeadline", options.hardDeadline, "positive", validate.NODE_TIMER_MAX_MILLIS),
        Duration.toMillis
      )
  ))
  if (checked._tag === "Left") {
    process.stderr.write(`${checked.left.name}: ${checked.left.message}\n`)
    return process.exit(1)
  }
  const deadline = checked.right
  const fiber = Effect.runFork(Layer.launch(self).pipe(Effect.provideService(ShutdownRecorder, record)))
  let timer: NodeJS.Timeout | undefined
  const exitNow = (reason: string) => {
    const live = record.live()
    process.stderr.write(
      `shutdown aborted (${reason}); still running: ${live.length > 0 ? live.join(", ") : "nothing"}\n`
    )
    process.exit(1)
  }
  let first: { readonly signal: NodeJS.Signals; readonly at: number } | undefined
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now()
    if (first !== undefined) {
      // One keypress reaches the server more than once: Ctrl-C signals the whole process group
      // (npm, a shell, tsx and the server), and npm and tsx relay it again.
      if (signal === first.signal && now - first.at < DUPLICATE_SIGNAL_WINDOW_MILLIS) return
      return exitNow(`second signal ${signal}`)
    }
    first = { signal, at: now }
    record.startedAt = now
    // The bounds may add up past what a Node timer can wait; a deadline that far off is no deadline.
    const limit = Math.min(deadline ?? record.budgetMillis + 5000, validate.NODE_TIMER_MAX_MILLIS)
    timer = setTimeout(() => exitNow(`hard deadline of ${limit}ms passed`), limit)
    fiber.unsafeInterruptAsFork(FiberId.none)
  }
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal)
  fiber.addObserver((exit) => {
    if (timer !== undefined) clearTimeout(timer)
    for (const signal of SHUTDOWN_SIGNALS) process.off(signal, onSignal)
    const end = Date.now()
    if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
      process.stderr.write(`${describeFailure(exit.cause)}\n`)
      process.exit(1)
    }
    process.stdout.write(`${record.format(end)}\n`)
    process.exit(record.stillRunning.length > 0 ? 1 : 0)
  })
}
