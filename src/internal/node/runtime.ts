/**
 * The Promise-facing runtime behind `effect-background/Node`: the supervisor (and, when asked, the
 * offload pool) built once in a `ManagedRuntime`, plain `async (signal) => ...` callbacks turned
 * into tasks, each request's after-response list on its exchange (one plain object per request,
 * kept on the request: see `Exchange`), and a `close` that walks the same shutdown as
 * `Server.launch` — the HTTP drain (reusing the Effect side's `Graceful`), the supervisor's grace
 * and interrupt, the pool — and prints the same report line.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import * as Http from "node:http"
import * as Durable from "../../Durable.js"
import * as Offload from "../../Offload.js"
import * as BackgroundApi from "../../Background.js"
import type { Callback, Outcome } from "../../Node.js"
import { fromCallback } from "../background/callback.js"
import { RequestTasks } from "../background/requestTasks.js"
import * as service from "../background/service.js"
import type { Supervisor } from "../background/supervisor.js"
import { type Origin, originOf, type TaskHandle } from "../background/task.js"
import * as validate from "../options.js"
import * as RequestState from "../requestState.js"
import * as durableEnqueue from "../durable/enqueue.js"
import type * as durableStore from "../durable/store.js"
import { watchSignals } from "../process/launch.js"
import { ShutdownRecord, ShutdownRecorder } from "../report.js"
import { Graceful } from "../server/graceful.js"
import { checkCallback, checkOffloadOptions, DURABLE_EXAMPLE, type EnqueueOptions, isObject, type OffloadOptions, type Settings } from "./settings.js"

export interface Task {
  readonly id: number
  readonly name: string
  /** Resolves with how the task ended; never rejects (a failure was already reported by name). */
  readonly done: () => Promise<Outcome>
  /** Interrupts the task (aborting its signal) and waits for it to end. */
  readonly interrupt: () => Promise<void>
}

export interface CloseResult {
  /** The report line, as printed. */
  readonly report: string
  /** What outlived its interrupt timeout (a callback that ignored its signal, a stuck request). */
  readonly stillRunning: ReadonlyArray<string>
  /** 0, or 1 when something was still running: what `handleSignals` exits with. */
  readonly exitCode: 0 | 1
}

/** Throws an Effect failure's own error (an `InvalidOptionError`, not a `FiberFailure` around it). */
const orThrow = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

/** A callback as an effect (internal/background/callback.ts). */
export { fromCallback } from "../background/callback.js"

/**
 * Calls `hook` once `response` is written — its last byte handed to the OS, or the response closed
 * first (a client gone): false, with nothing registered, when it already was.
 */
const onWritten = (response: Http.ServerResponse, hook: () => void): boolean => {
  if (response.writableFinished || response.destroyed) return false
  const written = () => {
    response.off("finish", written)
    response.off("close", written)
    hook()
  }
  response.on("finish", written)
  response.on("close", written)
  return true
}

/**
 * What the attached server's listener keeps for each of its requests, made before any framework
 * sees the request. Express gives every request and response its app's prototypes, after which
 * V8 gives each of them a hidden class of its own (checked on Node 20: no two Express requests
 * share one): every property read or write on them then misses V8's caches and takes the slow
 * path (in a CPU profile of the Express benchmark route, one `response.writableFinished` read
 * took about 3.7 µs). So what `after` and the drain need of a request is read once, here, while
 * the request and response still have Node's own shared classes, and kept on one plain object:
 * a later `after` reads one property of the request (this exchange) and nothing else of it.
 */
export class Exchange {
  /** The after-response tasks added, until the response closes. */
  tasks: RequestTasks | undefined = undefined
  /** Whether the response has closed (written, or cut): then nothing more is added. */
  closed = false
  /**
   * The runtime that runs the request's tasks: the attached one, unless the request went through
   * another runtime's `Express.middleware`.
   */
  served: NodeRuntime

  constructor(
    readonly runtime: NodeRuntime,
    readonly request: Http.IncomingMessage,
    readonly response: Http.ServerResponse,
    readonly method: string
  ) {
    this.served = runtime
  }
}

/** Each request's exchange, on the request (a property, not a WeakMap: see requestState.ts). */
export const exchanges = RequestState.make<Exchange>("effect-background/exchange")

/**
 * Closes an exchange and settles its list, if it has one: its tasks start — once the response has
 * closed, its last byte handed to the OS (`finish` comes just before `close`) or the connection
 * gone first (a client gone does not cancel them, as on the Effect side, `BackgroundTasks`) — if
 * the handler succeeded (a status under 400, as `BackgroundTasks` decides); they are skipped
 * (counted) otherwise. Called from whatever watches the response's close: the attached server's
 * listener, Fastify's plugin, or {@link NodeRuntime.after} for a server the runtime is not
 * attached to.
 */
export const settleExchange = (exchange: Exchange): void => {
  exchange.closed = true
  const tasks = exchange.tasks
  if (tasks === undefined) return
  exchange.tasks = undefined
  tasks.settle(exchange.response.statusCode < 400)
}

const written = (method: string | undefined, url: string | undefined) =>
  validate.invalidOption(
    "request",
    `${method} ${url}`,
    "a request whose response is not yet written: call after() in the handler, before or just after res.end()"
  )

const RESPONSE_EXPECTED = "a node:http ServerResponse, or a request carrying one as `res` (Express), or a Fastify request of an app with Fastify.plugin"

/** The response `target` is or carries (a request with `res`, as Express's), without an exchange. */
const carriedResponse = (target: unknown): Http.ServerResponse => {
  if (target instanceof Http.ServerResponse) return target
  if (target instanceof Http.IncomingMessage) {
    const response = (target as { res?: unknown }).res
    if (response instanceof Http.ServerResponse) return response
  } else if (isObject(target) && target.res instanceof Http.ServerResponse) {
    return target.res
  }
  throw validate.invalidOption("request", target, RESPONSE_EXPECTED)
}

type Services = BackgroundApi.Background | Offload.Offload | durableStore.DurableStore

export class NodeRuntime {
  private graceful: Graceful | undefined
  private closing: Promise<CloseResult> | undefined

  private constructor(
    private readonly settings: Settings,
    private readonly managed: ManagedRuntime.ManagedRuntime<Services, unknown>,
    private readonly runtime: Runtime.Runtime<Services>,
    private readonly record: ShutdownRecord
  ) {
    this.supervisor = this.run(service.currentSupervisor)
    this.origin = originOf(this.run(Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((fiber) => Effect.succeed(fiber))))
    // Handed out as plain functions (`const { after } = background`): bound once here.
    this.after = this.after.bind(this)
    this.waitUntil = this.waitUntil.bind(this)
    this.fork = this.fork.bind(this)
    this.daemon = this.daemon.bind(this)
    this.every = this.every.bind(this)
    this.cron = this.cron.bind(this)
    this.offload = this.offload.bind(this)
    this.enqueue = this.enqueue.bind(this)
    this.snapshot = this.snapshot.bind(this)
    this.stats = this.stats.bind(this)
    this.attach = this.attach.bind(this)
    this.isReady = this.isReady.bind(this)
    this.close = this.close.bind(this)
  }

  /** The runtime behind a value `make` returned (anything else is refused). */
  static from(value: unknown): NodeRuntime {
    if (value instanceof NodeRuntime) return value
    throw validate.invalidOption("runtime", value, "the runtime Node.make() returned (e.g. await Node.make({ server }))")
  }

  static async make(settings: Settings): Promise<NodeRuntime> {
    const record = new ShutdownRecord()
    const supervisor = service.layer(Effect.succeed(settings.background), false)
    // The pool is built first and released last: tasks may still use it during their grace.
    const base = settings.offload === undefined
      ? supervisor
      : Layer.provideMerge(supervisor, Offload.layer(settings.offload))
    // The store is built before the supervisor and released after it, as with `Server.app`: the
    // tasks its grace cuts off are handed back to the store; the workers are jobs of the supervisor.
    const durable = settings.durable
    const layer = durable === undefined
      ? base
      : Layer.provideMerge(Layer.provideMerge(Durable.layer(durable.tasks), base), durable.store)
    // Only `offload` and `enqueue` reach the Offload and store services, and they check first that
    // they were asked for.
    const managed = ManagedRuntime.make(
      Layer.provide(layer as Layer.Layer<Services, unknown>, Layer.succeed(ShutdownRecorder, record))
    )
    const exit = await Effect.runPromiseExit(managed.runtimeEffect)
    if (Exit.isFailure(exit)) {
      await managed.dispose()
      throw Cause.squash(exit.cause)
    }
    const made = new NodeRuntime(settings, managed, exit.value, record)
    if (settings.server !== undefined) made.attach(settings.server)
    return made
  }

  private run<A, E>(effect: Effect.Effect<A, E, Services>): A {
    return orThrow(Runtime.runSyncExit(this.runtime)(effect))
  }

  /** The supervisor, read once. */
  private readonly supervisor: Supervisor

  /**
   * A fiber of this runtime, done, as every after-response task takes it for what it would take
   * from the fiber that adds it (services, fiber refs, clock): `after` then runs no fiber of its
   * own, and the origin's services are read once, at the first task.
   */
  private readonly origin: Origin

  /** Drains `server` at `close`: from now on its responses are tracked. */
  attach(server: Http.Server): void {
    if (!(server instanceof Http.Server)) {
      throw validate.invalidOption("server", server, "a node:http Server (e.g. http.createServer(handler))")
    }
    if (this.graceful !== undefined) {
      if (this.graceful.server === server) return
      throw validate.invalidOption("server", server, "one server per runtime: make one runtime per server")
    }
    // The runtime tells `graceful` of each request itself, from a listener that runs before the
    // application's own handler (`Http.createServer(handler)` registered it first): while the
    // request and response still have Node's classes (see `Exchange`), and so that a handler given
    // only the request (`after(req, ...)`, `enqueue(..., { request: req })`) finds its response.
    const graceful = new Graceful(server, this.settings.drainTimeout, this.settings.interruptTimeout, true, false)
    this.graceful = graceful
    server.prependListener("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      const exchange = this.exchange(request, response)
      const socket = request.socket
      graceful.opened(socket, response)
      // (a response closes once: `on` spares `once`'s wrapper)
      response.on("close", () => {
        settleExchange(exchange)
        graceful.closed(socket, response)
      })
    })
    this.record.bound(
      Duration.toMillis(this.settings.drainTimeout) + Duration.toMillis(this.settings.interruptTimeout),
      () => graceful.live()
    )
  }

  /** False once `close` (or a framework's own drain) has begun: a health route answers 503 then. */
  isReady(): boolean {
    return this.closing === undefined && this.drainStart === undefined
  }

  private drainStart: number | undefined

  /**
   * A framework that drains its own server (Fastify's `close`) says when it starts and, with the
   * requests it saw finish and those it cut off, when it is done: the report's drain phase, as
   * `Graceful` gives it.
   */
  frameworkDrain(): (drained: number, interrupted: number) => void {
    const start = Date.now()
    this.drainStart ??= start
    this.record.startedAt ??= start
    return (drained, interrupted) => this.record.serverDone({ millis: Date.now() - start, drained, interrupted, stillRunning: [] })
  }

  /**
   * The exchange of `target` (a request, its response, or Fastify's request around the raw one) if
   * this runtime made one for it.
   */
  private exchangeOf(target: unknown): Exchange | undefined {
    const request = target instanceof Http.IncomingMessage
      ? target
      : target instanceof Http.ServerResponse
      ? target.req
      : isObject(target) && target.raw instanceof Http.IncomingMessage
      ? target.raw
      : undefined
    const exchange = exchanges.get(request)
    return exchange?.runtime === this && exchange.request === request &&
        (!(target instanceof Http.ServerResponse) || exchange.response === target)
      ? exchange
      : undefined
  }

  private responseOf(target: unknown): Http.ServerResponse {
    return this.exchangeOf(target)?.response ?? carriedResponse(target)
  }

  /**
   * Makes the exchange of a request served by a framework that watches its responses itself
   * (Fastify's plugin, at onRequest), which calls {@link settleExchange} when the response closes;
   * the attached server's listener makes its requests' exchanges here too.
   */
  exchange(request: Http.IncomingMessage, response: Http.ServerResponse): Exchange {
    const exchange = new Exchange(this, request, response, request.method ?? "GET")
    exchanges.set(request, exchange)
    return exchange
  }

  after(
    target: unknown,
    callback: Callback,
    options: { readonly name?: string | undefined; readonly route?: string | undefined } = {}
  ): void {
    checkCallback("callback", callback)
    this.addChecked(this.exchangeOf(target) ?? this.lateExchange(target), callback, options)
  }

  /**
   * The exchange of a request of a server this runtime is not attached to (node:http without
   * `attach`, Express through its middleware, Hono unattached), made at its first `after`, whose
   * response's close then settles it. A response written already takes no tasks; one whose
   * connection is gone (destroyed, its close perhaps seen already) is settled at the next
   * microtask, with the tasks added in this tick.
   */
  private lateExchange(target: unknown): Exchange {
    const response = carriedResponse(target)
    const request = response.req
    if (response.writableFinished) throw written(request.method, request.url)
    const exchange = this.exchange(request, response)
    if (response.destroyed) queueMicrotask(() => settleExchange(exchange))
    else response.on("close", () => settleExchange(exchange))
    return exchange
  }

  /**
   * {@link after}, for a request of the attached server: everything it needs is on the exchange
   * (see `Exchange`). A response that has closed takes no more tasks; one written but not yet
   * closed (its `close` comes a tick after its `finish`) still does, and they start with the rest.
   */
  addTo(
    exchange: Exchange,
    callback: Callback,
    options: { readonly name?: string | undefined; readonly route?: string | undefined }
  ): void {
    checkCallback("callback", callback)
    this.addChecked(exchange, callback, options)
  }

  private addChecked(
    exchange: Exchange,
    callback: Callback,
    options: { readonly name?: string | undefined; readonly route?: string | undefined }
  ): void {
    if (exchange.closed) throw written(exchange.method, exchange.request.url)
    const tasks = exchange.tasks ??= new RequestTasks(this.supervisor, { method: exchange.method, route: options.route })
    const added = tasks.add(this.origin, fromCallback(callback), { name: options.name })
    // Nothing to run in the common case; a refusal's log line, a bad name's defect otherwise.
    if (added !== Effect.void) this.run(added)
  }

  private handle(handle: TaskHandle): Task {
    const runtime = this.runtime
    return {
      id: handle.id,
      name: handle.name,
      done: () =>
        Runtime.runPromise(runtime)(Effect.map(handle.await, (exit): Outcome =>
          Exit.isSuccess(exit) ? "finished" : Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "failed"
        )),
      interrupt: () => Runtime.runPromise(runtime)(handle.interrupt)
    }
  }

  fork(callback: Callback, options: BackgroundApi.ForkOptions): Task {
    checkCallback("callback", callback)
    return this.handle(this.run(BackgroundApi.fork(fromCallback(callback), options)))
  }

  waitUntil(promise: PromiseLike<unknown>, options: { readonly name?: string | undefined } = {}): Task {
    if (typeof (promise as { then?: unknown } | null)?.then !== "function") {
      throw validate.invalidOption("promise", promise, "a promise (e.g. sendEmail(to))")
    }
    return this.handle(this.run(BackgroundApi.fork(fromCallback(() => promise), options.name ?? "waitUntil")))
  }

  daemon(callback: Callback, options: string | BackgroundApi.DaemonOptions): Task {
    checkCallback("callback", callback)
    return this.handle(this.run(BackgroundApi.startDaemon(fromCallback(callback), options)))
  }

  every(callback: Callback, options: BackgroundApi.EveryOptions): Task {
    checkCallback("callback", callback)
    return this.handle(this.run(BackgroundApi.startEvery(fromCallback(callback), options)))
  }

  cron(callback: Callback, options: BackgroundApi.CronOptions): Task {
    checkCallback("callback", callback)
    return this.handle(this.run(BackgroundApi.startCron(fromCallback(callback), options)))
  }

  offload<I, IE, O, OE, F, FE>(
    task: Offload.Task<I, IE, O, OE, F, FE>,
    input: I,
    options: OffloadOptions = {}
  ): Promise<O> {
    if (this.settings.offload === undefined) {
      return Promise.reject(validate.invalidOption(
        "offload",
        undefined,
        "a worker pool configured when the runtime was made (e.g. make({ offload: { module: new URL(\"./tasks.js\", import.meta.url) } }))"
      ))
    }
    const checked = Effect.runSyncExit(checkOffloadOptions(options))
    if (Exit.isFailure(checked)) return Promise.reject(Cause.squash(checked.cause))
    const { signal, timeout } = checked.value
    if (signal?.aborted === true) return Promise.reject(signal.reason)
    const run = Offload.run(task, input, { transfer: options.transfer })
    // Interrupting the run (the timeout, the signal) terminates the thread running it: the pool
    // replaces it, and the next task is answered.
    const bounded = timeout === undefined ? run : Effect.timeoutFail(run, {
      duration: timeout,
      onTimeout: () =>
        new Cause.TimeoutException(`offload "${task.name}" timed out after ${Duration.format(timeout)}: its worker thread was stopped`)
    })
    return Runtime.runPromiseExit(this.runtime)(bounded, signal === undefined ? undefined : { signal }).then((exit) => {
      // cancelled by the caller's signal: rejected with its reason, as fetch does
      if (Exit.isFailure(exit) && signal?.aborted === true && Cause.isInterruptedOnly(exit.cause)) throw signal.reason
      return orThrow(exit)
    })
  }

  enqueue<A, I, E, R>(task: Durable.Task<A, I, E, R>, payload: A, options: EnqueueOptions = {}): Promise<string> {
    if (this.settings.durable === undefined) {
      return Promise.reject(validate.invalidOption(
        "durable",
        undefined,
        `a durable store and its task types configured when the runtime was made (e.g. make({ durable: ${DURABLE_EXAMPLE} }))`
      ))
    }
    if (typeof options !== "object" || options === null) return Promise.reject(validate.invalidOption("options", options, "{ key, runIn, runAt, request }"))
    let response: Http.ServerResponse | undefined
    try {
      response = options.request === undefined ? undefined : this.responseOf(options.request)
    } catch (error) {
      return Promise.reject(error)
    }
    const held = response
    const hold: durableEnqueue.Hold = Effect.succeed(
      held === undefined ? undefined : (handOff) => Effect.sync(() => onWritten(held, handOff))
    )
    const enqueueOptions: Durable.EnqueueOptions = { key: options.key, runIn: options.runIn, runAt: options.runAt }
    return Runtime.runPromiseExit(this.runtime)(durableEnqueue.enqueue(task, payload, enqueueOptions, hold)).then(orThrow)
  }

  snapshot(): ReadonlyArray<BackgroundApi.TaskInfo> {
    return this.run(BackgroundApi.snapshot)
  }

  stats(): BackgroundApi.SupervisorStats {
    return this.run(BackgroundApi.stats)
  }

  /** The work still held, by name (a hard exit's last words). */
  live(): ReadonlyArray<string> {
    return this.record.live()
  }

  /** The sum of the shutdown phases' bounds. */
  get budgetMillis(): number {
    return this.record.budgetMillis
  }

  close(): Promise<CloseResult> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<CloseResult> {
    const record = this.record
    record.startedAt ??= Date.now()
    if (this.graceful !== undefined) await Effect.runPromise(this.graceful.drain(record))
    await this.managed.dispose()
    const end = Date.now()
    record.ended(end)
    const report = record.format(end)
    if (this.settings.printReport) process.stdout.write(`${report}\n`)
    const stillRunning = record.stillRunning
    return { report, stillRunning, exitCode: stillRunning.length > 0 ? 1 : 0 }
  }
}

/**
 * SIGINT and SIGTERM close the runtime and exit (0, or 1 when something outlived its bounds), as
 * `Server.launch` does: a hard deadline past the phases' bounds, and a second signal (not the same
 * one relayed twice) exit at once with 1, naming what was still running. Returns a function that
 * removes the handlers.
 */
export const handleSignals = (
  runtime: NodeRuntime,
  options: {
    readonly hardDeadline?: Duration.DurationInput | undefined
    readonly close?: (() => PromiseLike<unknown> | void) | undefined
  } = {}
): () => void => {
  const given = options.hardDeadline
  const deadline = given === undefined ? undefined : Duration.toMillis(orThrow(Effect.runSyncExit(
    validate.duration("hardDeadline", given, "positive", validate.NODE_TIMER_MAX_MILLIS)
  )))
  const closeServer = options.close
  if (closeServer !== undefined && typeof closeServer !== "function") {
    throw validate.invalidOption("close", closeServer, "a function that closes the framework, which closes the runtime (e.g. () => app.close())")
  }
  const signals = watchSignals({
    deadline,
    budgetMillis: () => runtime.budgetMillis,
    live: () => runtime.live(),
    begin: () => {
      // A framework that drains its own server (Fastify) is closed first; it closes the runtime.
      const closed = closeServer === undefined
        ? runtime.close()
        : Promise.resolve().then(closeServer).then(() => runtime.close())
      void closed.then(
        (result) => {
          signals.done()
          process.exit(result.exitCode)
        },
        (error: unknown) => {
          process.stderr.write(`shutdown failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
          process.exit(1)
        }
      )
    }
  })
  return signals.done
}
