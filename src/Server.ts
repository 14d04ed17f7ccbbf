/**
 * Server glue: a Node HTTP server that shuts down gracefully, a readiness flag and health route,
 * one layer that wires server, supervisor and jobs, and `launch`, which runs it all with signal
 * handling, a hard deadline and a one-line shutdown report.
 *
 * @since 0.1.0
 * @module
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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import * as Background from "./Background.js"
import * as service from "./internal/background/service.js"
import * as launcher from "./internal/process/launch.js"
import * as routes from "./internal/server/routes.js"
import { endOnClose, Graceful, GracefulServer } from "./internal/server/graceful.js"
import * as BackgroundTasks from "./BackgroundTasks.js"
import type { InvalidOptionError } from "./Errors.js"
import * as validate from "./internal/options.js"
import { currentRecord } from "./internal/report.js"

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
  const authorized = routes.bearer(token)
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    authorized(request.headers.authorization)
      ? Effect.flatMap(Background.snapshot, (tasks) =>
        Effect.map(routes.durableSnapshot, (durable) => HttpServerResponse.unsafeJson(durable === undefined ? { tasks } : { tasks, durable })))
      : Effect.succeed(
        HttpServerResponse.unsafeJson({ error: "unauthorized" }, {
          status: 401,
          headers: { "www-authenticate": "Bearer" }
        })
      ))
}

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
 *   jobs: Background.every(Effect.log("tick"), { name: "tick", spaced: "1 minute" })
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
 *   jobs: Background.every(Effect.log("Hello"), { name: "heartbeat", spaced: "5 seconds" })
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
      "a Layer of jobs (e.g. Background.every(Effect.log(\"tick\"), { name: \"tick\", spaced: \"1 minute\" }), or several merged with Layer.mergeAll)"
    )

const releaseJobs = Layer.effectDiscard(service.releaseJobs)


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
export const launch = <E>(self: Layer.Layer<never, E, never>, options: LaunchOptions = {}): void =>
  launcher.launch(self, options)
