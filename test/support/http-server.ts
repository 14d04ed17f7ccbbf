/**
 * Real servers for integration tests: build a layer on an ephemeral port in a scope the test can
 * close (to watch shutdown), and capture what was logged.
 */
import { type HttpApp, HttpServer } from "@effect/platform"
import { Cause, Context, Effect, Exit, type Fiber, Layer, Logger, Scope } from "effect"
import { Background, Server } from "../../src/index.js"

export interface Running<ROut> {
  readonly port: number
  readonly context: Context.Context<ROut>
  /** Runs `effect` with the layer's services. */
  readonly use: <A, E>(effect: Effect.Effect<A, E, ROut>) => Effect.Effect<A, E>
  /** Closes the layer's scope in the background (shutdown begins); join the fiber to wait for it. */
  readonly shutdown: Effect.Effect<Fiber.RuntimeFiber<void>>
}

/**
 * Builds `layer` in a scope of its own; closing the test's scope closes it too if the test did not.
 * The port is read from the `HttpServer` the layer provides.
 */
export const start = <ROut, E>(
  layer: Layer.Layer<ROut | HttpServer.HttpServer, E>
): Effect.Effect<Running<ROut | HttpServer.HttpServer>, E, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const context = yield* Layer.buildWithScope(layer, scope)
    const address = Context.get(context as Context.Context<HttpServer.HttpServer>, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return {
      port: address.port,
      context,
      use: (effect) => Effect.provide(effect, context),
      shutdown: Effect.forkDaemon(Scope.close(scope, Exit.void))
    }
  })

/**
 * Serves `app` with `Server.serve` on an ephemeral port, with the supervisor; readiness and the
 * supervisor stay reachable through `use`. Logs go to `logs` (captured, so the output stays quiet).
 */
export const serving = (
  app: HttpApp.Default<unknown, Background.Background | Server.Readiness>,
  options: Server.Options & Background.Options = {},
  logs: Logs = captureLogs()
) =>
  start(
    Server.serve(app).pipe(
      Layer.provideMerge(Server.layer({ ...options, port: 0 })),
      Layer.provideMerge(Background.layer(options))
    )
  ).pipe(Effect.provide(logs.layer))

/** Fails instead of hanging when something the test waits for never happens. */
export const orHang = (what: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(self, { duration: "10 seconds", onTimeout: () => new Error(`never happened: ${what}`) })

/**
 * Builds a layer that provides nothing (like `Server.app`) and reads its port from the
 * `listening on http://…:<port>` line it logs.
 */
export const startApp = <E>(
  layer: Layer.Layer<never, E>,
  logs: Logs
): Effect.Effect<Omit<Running<never>, "context" | "use">, E, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    yield* Layer.buildWithScope(layer, scope).pipe(Effect.provide(logs.layer))
    const line = logs.entries.find((entry) => entry.message.includes("listening on"))
    const port = Number(line?.message.match(/:(\d+)$/)?.[1])
    if (!Number.isInteger(port)) return yield* Effect.dieMessage("no 'listening on' line was logged")
    return { port, shutdown: Effect.forkDaemon(Scope.close(scope, Exit.void)) }
  })

export interface LogEntry {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
  readonly cause: string
}

/** A logger that records every entry, to provide to the layer under test. */
export interface Logs {
  readonly entries: Array<LogEntry>
  readonly layer: Layer.Layer<never>
}

export const captureLogs = (): Logs => {
  const entries: Array<LogEntry> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    const parts = Array.isArray(message) ? message : [message]
    entries.push({
      level: logLevel.label,
      message: parts.map((part) => (typeof part === "string" ? part : String(part))).join(" "),
      annotations: Object.fromEntries(annotations),
      cause: Cause.isEmpty(cause) ? "" : Cause.pretty(cause)
    })
  })
  return { entries, layer: Logger.replace(Logger.defaultLogger, logger) }
}
