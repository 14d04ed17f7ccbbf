/**
 * Graceful shutdown of a real server (127.0.0.1, ephemeral port), driven in-process by closing the
 * layer's scope, with real HTTP clients. Phases are sequenced with Deferreds and observed states,
 * never with timing thresholds.
 */
import { HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Fiber, type Layer, Option, Schedule, Stream, TestClock } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import { Background, BackgroundTasks, Server, ShuttingDownError } from "../src/index.js"
import { ShutdownRecord, ShutdownRecorder } from "../src/internal/report.js"
import { connectionRefused, eventually, RawConnection, rawGet, type Reply, request } from "./support/http-client.js"
import { captureLogs, orHang, type Running, serving, startApp } from "./support/http-server.js"

const isReady = Effect.flatMap(Server.Readiness, (readiness) => readiness.isReady)
const draining = Effect.map(isReady, (ready) => !ready)

/** The server side of the current request's connection. */
const serverSocket = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request): Net.Socket => NodeHttpServerRequest.toIncomingMessage(request).socket
)

/** A route that says when it is running and answers 200 once the test completes `release`. */
const makeSlow = Effect.all({ running: Deferred.make<void>(), release: Deferred.make<void>() })
type Slow = Effect.Effect.Success<typeof makeSlow>
const slowRoute = (slow: Slow) =>
  Effect.gen(function*() {
    yield* Deferred.succeed(slow.running, undefined)
    yield* Deferred.await(slow.release)
    return HttpServerResponse.text("done")
  })

const keepAlive = () => new Http.Agent({ keepAlive: true })

/**
 * Turns off Node's own closing of idle keep-alive connections (after 5 s by default) on the
 * server a socket belongs to, so that only the drain can close them.
 */
const noKeepAliveTimeout = (socket: Net.Socket) => {
  ;(socket as Net.Socket & { readonly server: Http.Server }).server.keepAliveTimeout = 0
}

/** Begins the server's shutdown and waits until it is draining; returns the shutdown's fiber. */
const beginDrain = (server: Running<Server.Readiness>) =>
  Effect.tap(server.shutdown, () => eventually(server.use(draining)).pipe(orHang("the drain to begin")))

/** Lets the slow request answer, expects its 200, then waits for the shutdown to complete. */
const releaseSlowAndFinish = (
  slow: Slow,
  inFlight: Fiber.Fiber<Reply, unknown>,
  shutdown: Fiber.Fiber<void>
): Effect.Effect<void, unknown> =>
  Effect.gen(function*() {
    yield* Deferred.succeed(slow.release, undefined)
    expect((yield* Fiber.join(inFlight)).status).toBe(200)
    yield* Fiber.join(shutdown).pipe(orHang("shutdown to complete"))
  })

describe("Server: graceful shutdown on a real server", () => {
  it.live("an in-flight request completes with 200 and `Connection: close`, and shutdown waits for it", () =>
    Effect.gen(function*() {
      const slow = yield* makeSlow
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/fast", HttpServerResponse.text("fast")),
        HttpRouter.get("/slow", slowRoute(slow))
      )
      const record = new ShutdownRecord()
      const server = yield* serving(app).pipe(Effect.provideService(ShutdownRecorder, record))
      const agent = keepAlive()
      expect((yield* request(server.port, "/fast", { agent })).headers.connection).toBe("keep-alive")
      const idle = yield* RawConnection.connect(server.port)
      yield* idle.write(rawGet("/fast"))
      yield* idle.readResponse

      const inFlight = yield* Effect.fork(request(server.port, "/slow", { agent }))
      yield* Deferred.await(slow.running).pipe(orHang("the request to be running"))
      const shutdown = yield* beginDrain(server)
      // past the linger (idle connections are closed), shutdown still waits for the request
      yield* idle.awaitClosed.pipe(orHang("the idle connection to close"))
      expect(Option.isNone(yield* Fiber.poll(shutdown))).toBe(true)

      yield* Deferred.succeed(slow.release, undefined)
      const reply = yield* Fiber.join(inFlight).pipe(orHang("the in-flight response"))
      expect(reply.status).toBe(200)
      expect(reply.body).toBe("done")
      expect(reply.headers.connection).toBe("close")
      yield* Fiber.join(shutdown).pipe(orHang("shutdown to complete"))
      expect(record.server?.drained).toBe(1)
      expect(record.server?.interrupted).toBe(0)
      agent.destroy()
    }).pipe(Effect.scoped))

  it.live("once the drain begins, /health answers 503 on a kept-alive connection and new connections are refused", () =>
    Effect.gen(function*() {
      const slow = yield* makeSlow
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/health", Server.health),
        HttpRouter.get("/slow", slowRoute(slow))
      )
      const server = yield* serving(app)

      const connection = yield* RawConnection.connect(server.port)
      yield* connection.write(rawGet("/health"))
      const healthy = yield* connection.readResponse.pipe(orHang("the first health answer"))
      expect(healthy.status).toBe(200)
      expect(JSON.parse(healthy.body)).toEqual({ status: "ok" })
      expect(healthy.headers.connection).toBe("keep-alive")

      // The load balancer's next probe is half-sent when the drain begins, so its connection is busy.
      yield* connection.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
      // A slow request keeps the drain going while we look.
      const inFlight = yield* Effect.fork(request(server.port, "/slow"))
      yield* Deferred.await(slow.running).pipe(orHang("the slow request to be running"))
      const shutdown = yield* beginDrain(server)

      expect(yield* connectionRefused(server.port)).toBe(true)
      yield* connection.write("\r\n")
      const probe = yield* connection.readResponse.pipe(orHang("the health answer during the drain"))
      expect(probe.status).toBe(503)
      expect(JSON.parse(probe.body)).toEqual({ status: "draining" })
      expect(probe.headers.connection).toBe("close")
      yield* connection.awaitClosed.pipe(orHang("the probe's connection to close"))

      yield* releaseSlowAndFinish(slow, inFlight, shutdown)
    }).pipe(Effect.scoped))

  it.live("pipelined requests in flight at the drain are all answered; only the last answer on the connection says `Connection: close`", () =>
    Effect.gen(function*() {
      const [a, b] = [yield* makeSlow, yield* makeSlow]
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/a", slowRoute(a)),
        HttpRouter.get("/b", slowRoute(b)),
        HttpRouter.get("/fast", HttpServerResponse.text("fast"))
      )
      const record = new ShutdownRecord()
      const server = yield* serving(app).pipe(Effect.provideService(ShutdownRecorder, record))
      const connection = yield* RawConnection.connect(server.port)
      // two requests on one connection, the second sent before the first is answered
      yield* connection.write(rawGet("/a") + rawGet("/b"))
      yield* Deferred.await(a.running).pipe(orHang("the first request to be running"))
      yield* Deferred.await(b.running).pipe(orHang("the second request to be running"))
      // and a third, answered before the drain while the first still holds the connection
      const other = yield* RawConnection.connect(server.port)
      yield* other.write(rawGet("/a") + rawGet("/fast"))
      const shutdown = yield* beginDrain(server)
      yield* Deferred.succeed(a.release, undefined)
      const first = yield* connection.readResponse.pipe(orHang("the first answer"))
      expect([first.status, first.body, first.headers.connection]).toEqual([200, "done", "keep-alive"])
      yield* Deferred.succeed(b.release, undefined)
      const second = yield* connection.readResponse.pipe(orHang("the second answer"))
      expect([second.status, second.body, second.headers.connection]).toEqual([200, "done", "close"])
      yield* connection.awaitClosed.pipe(orHang("the connection to close"))
      // the other connection: both answered (the fast one's headers were out before the drain),
      // then closed by the server
      expect((yield* other.readResponse.pipe(orHang("the other's first answer"))).status).toBe(200)
      expect((yield* other.readResponse.pipe(orHang("the other's second answer"))).body).toBe("fast")
      yield* other.awaitClosed.pipe(orHang("the other connection to close"))
      yield* Fiber.join(shutdown).pipe(orHang("shutdown to complete"))
      expect(record.server).toMatchObject({ interrupted: 0, stillRunning: [] })
    }).pipe(Effect.scoped))

  it.live("a client that pipelines requests and hangs up leaves nothing in flight: the drain has nothing to wait for", () =>
    Effect.gen(function*() {
      const slow = yield* makeSlow
      const stillHandling = yield* Deferred.make<void>()
      const cutOff = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/slow", slowRoute(slow)),
        HttpRouter.get("/fast", HttpServerResponse.text("fast")),
        HttpRouter.get(
          "/never",
          Effect.zipRight(Deferred.succeed(stillHandling, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(cutOff, undefined))
          )
        )
      )
      const record = new ShutdownRecord()
      const server = yield* serving(app, { drainTimeout: "1 minute" }).pipe(Effect.provideService(ShutdownRecorder, record))
      const connection = yield* RawConnection.connect(server.port)
      // "/fast" is answered at once and "/never" never is; both answers wait behind "/slow"
      yield* connection.write(rawGet("/slow") + rawGet("/fast") + rawGet("/never"))
      yield* Deferred.await(slow.running).pipe(orHang("the slow request to be running"))
      yield* Deferred.await(stillHandling).pipe(orHang("the third request to be handled"))
      yield* connection.destroy
      yield* connection.awaitClosed
      // the request whose answer was still being made is cut off, as any hang-up cuts one off
      yield* Deferred.await(cutOff).pipe(orHang("the third request's handler to be interrupted"))
      const shutdown = yield* server.shutdown
      yield* Fiber.join(shutdown).pipe(orHang("shutdown to complete"))
      expect(record.server).toMatchObject({ drained: 0, interrupted: 0, stillRunning: [] })
    }).pipe(Effect.scoped))

  it.live("an answer written after its client hung up ends its request (Node never calls back a write to a closed connection): nothing is left in flight", () =>
    Effect.gen(function*() {
      const gone = yield* Deferred.make<void>()
      // A pre-response handler runs after the app, where nothing interrupts the request: this one
      // waits until the client is gone, so the body is written to a closed connection.
      const untilGone = (request: HttpServerRequest.HttpServerRequest, response: HttpServerResponse.HttpServerResponse) => {
        const node = NodeHttpServerRequest.toServerResponse(request)
        return Effect.sync(() => node.destroyed).pipe(
          Effect.repeat({ until: (destroyed) => destroyed, schedule: Schedule.spaced("5 millis") }),
          Effect.zipRight(Deferred.succeed(gone, undefined)),
          Effect.as(response)
        )
      }
      const route = Effect.zipRight(HttpApp.appendPreResponseHandler(untilGone), HttpServerResponse.text("late"))
      const record = new ShutdownRecord()
      const server = yield* serving(HttpRouter.empty.pipe(HttpRouter.get("/late", route)), {
        drainTimeout: "100 millis",
        interruptTimeout: "100 millis"
      }).pipe(Effect.provideService(ShutdownRecorder, record))
      const connection = yield* RawConnection.connect(server.port)
      yield* connection.write(rawGet("/late"))
      yield* connection.destroy
      yield* connection.awaitClosed
      yield* Deferred.await(gone).pipe(orHang("the server to see the client gone"))
      const shutdown = yield* server.shutdown
      yield* Fiber.join(shutdown).pipe(orHang("shutdown to complete"))
      // unhandled, the request stays parked in the platform's write: cut off at the drain's end,
      // then reported still running past the interrupt timeout
      expect(record.server).toMatchObject({ interrupted: 0, stillRunning: [] })
    }).pipe(Effect.scoped))

  it.live("the drain closes idle keep-alive connections (after a short linger), while in-flight requests go on", () =>
    Effect.gen(function*() {
      const slow = yield* makeSlow
      const sockets: Array<Net.Socket> = []
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/hello",
          Effect.map(serverSocket, (socket) => {
            sockets.push(socket)
            noKeepAliveTimeout(socket)
            return HttpServerResponse.text("hello")
          })
        ),
        HttpRouter.get("/slow", slowRoute(slow))
      )
      const server = yield* serving(app)

      const idle = yield* RawConnection.connect(server.port)
      yield* idle.write(rawGet("/hello"))
      expect((yield* idle.readResponse).headers.connection).toBe("keep-alive")
      const inFlight = yield* Effect.fork(request(server.port, "/slow"))
      yield* Deferred.await(slow.running).pipe(orHang("the slow request to be running"))
      expect(sockets[0]!.destroyed).toBe(false)

      const shutdown = yield* beginDrain(server)
      yield* idle.awaitClosed.pipe(orHang("the idle connection to close"))
      expect(sockets[0]!.destroyed).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(inFlight))).toBe(true)

      yield* releaseSlowAndFinish(slow, inFlight, shutdown)
    }).pipe(Effect.scoped))

  it.live("a connection whose response was already streaming when the drain began is closed as soon as that response ends", () =>
    Effect.gen(function*() {
      const slow = yield* makeSlow
      const lastChunk = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/feed",
          Effect.gen(function*() {
            noKeepAliveTimeout(yield* serverSocket)
            return HttpServerResponse.stream(
              Stream.concat(Stream.make("first;"), Stream.fromEffect(Effect.as(Deferred.await(lastChunk), "last")))
                .pipe(Stream.encodeText)
            )
          })
        ),
        HttpRouter.get("/hello", HttpServerResponse.text("hello")),
        HttpRouter.get("/slow", slowRoute(slow))
      )
      const server = yield* serving(app)

      const connection = yield* RawConnection.connect(server.port)
      yield* connection.write(rawGet("/feed"))
      yield* connection.received("first;").pipe(orHang("the first chunk"))
      const idle = yield* RawConnection.connect(server.port)
      yield* idle.write(rawGet("/hello"))
      expect((yield* idle.readResponse).headers.connection).toBe("keep-alive")
      // A slow request keeps the drain going while we look.
      const inFlight = yield* Effect.fork(request(server.port, "/slow"))
      yield* Deferred.await(slow.running).pipe(orHang("the slow request to be running"))
      const shutdown = yield* beginDrain(server)
      // Idle connections have been closed: from now on only its own end can close the feed's.
      yield* idle.awaitClosed.pipe(orHang("the idle connection to close"))

      // Its headers went out before the drain, so it could not say `Connection: close`.
      yield* Deferred.succeed(lastChunk, undefined)
      yield* connection.received("last").pipe(orHang("the last chunk"))
      // closed while the drain still waits for the slow request, not at its end
      yield* connection.awaitClosed.pipe(orHang("the client to see the close"))
      expect(Option.isNone(yield* Fiber.poll(shutdown))).toBe(true)

      yield* releaseSlowAndFinish(slow, inFlight, shutdown)
    }).pipe(Effect.scoped))

  it.effect("the drain's bound counts from the signal, its first 100 ms included: a request is cut off at drainTimeout", () =>
    Effect.gen(function*() {
      const running = yield* Deferred.make<void>()
      const finalized = yield* Deferred.make<void>()
      const stuck = Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Deferred.succeed(finalized, undefined))
        yield* Deferred.succeed(running, undefined)
        return yield* Effect.never
      }).pipe(Effect.scoped)
      const server = yield* serving(HttpRouter.empty.pipe(HttpRouter.get("/stuck", stuck)), { drainTimeout: "1 second" })
      const inFlight = yield* Effect.fork(Effect.exit(request(server.port, "/stuck")))
      yield* Deferred.await(running)
      const shutdown = yield* server.shutdown
      yield* TestClock.adjust("999 millis")
      expect(yield* Deferred.isDone(finalized)).toBe(false)
      yield* TestClock.adjust("1 millis")
      yield* Deferred.await(finalized)
      yield* Fiber.join(inFlight)
      yield* Fiber.join(shutdown)
    }).pipe(Effect.scoped))

  describe("a request still running at the drain timeout is interrupted, its finalizers run, and shutdown completes", () => {
    const stuck = (running: Deferred.Deferred<void>, finalized: Deferred.Deferred<void>) =>
      Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Deferred.succeed(finalized, undefined))
        yield* Deferred.succeed(running, undefined)
        return yield* Effect.never
      }).pipe(Effect.scoped)

    const cases: ReadonlyArray<{
      readonly title: string
      readonly app: (running: Deferred.Deferred<void>, finalized: Deferred.Deferred<void>) => HttpApp.Default<unknown>
    }> = [
      {
        title: "an HttpRouter route",
        app: (running, finalized) => HttpRouter.empty.pipe(HttpRouter.get("/stuck", stuck(running, finalized)))
      },
      {
        title: "a bare HttpApp",
        app: (running, finalized) => Effect.as(stuck(running, finalized), HttpServerResponse.text("unreachable"))
      }
    ]
    for (const { app, title } of cases) {
      it.live(title, () =>
        Effect.gen(function*() {
          const running = yield* Deferred.make<void>()
          const finalized = yield* Deferred.make<void>()
          const record = new ShutdownRecord()
          const server = yield* serving(app(running, finalized), {
            drainTimeout: "50 millis",
            interruptTimeout: "10 seconds"
          }).pipe(Effect.provideService(ShutdownRecorder, record))

          const client = yield* Effect.fork(Effect.either(request(server.port, "/stuck")))
          yield* Deferred.await(running).pipe(orHang("the request to be running"))
          const shutdown = yield* server.shutdown
          const exit = yield* Fiber.await(shutdown).pipe(orHang("shutdown to complete"))
          expect(Exit.isSuccess(exit)).toBe(true)
          expect(yield* Deferred.isDone(finalized)).toBe(true)
          expect(record.server?.interrupted).toBe(1)
          expect(record.stillRunning).toEqual([])
          // The client's socket was cut: it got no answer.
          expect(Either.isLeft(yield* Fiber.join(client).pipe(orHang("the client to see the cut")))).toBe(true)
        }).pipe(Effect.scoped))
    }
  })

  it.live("a request that cannot be interrupted holds shutdown no longer than interruptTimeout, and is reported as still running", () =>
    Effect.gen(function*() {
      const slow = yield* makeSlow
      const app = HttpRouter.empty.pipe(HttpRouter.get("/stuck", Effect.uninterruptible(slowRoute(slow))))
      const record = new ShutdownRecord()
      const server = yield* serving(app, { drainTimeout: "20 millis", interruptTimeout: "20 millis" }).pipe(
        Effect.provideService(ShutdownRecorder, record)
      )

      const client = yield* Effect.fork(Effect.either(request(server.port, "/stuck")))
      yield* Deferred.await(slow.running).pipe(orHang("the request to be running"))
      const shutdown = yield* server.shutdown
      yield* Fiber.join(shutdown).pipe(orHang("shutdown to complete"))
      expect(record.stillRunning).toEqual(["request GET /stuck"])
      expect(Either.isLeft(yield* Fiber.join(client).pipe(orHang("the client to see the cut")))).toBe(true)
      yield* Deferred.succeed(slow.release, undefined)
    }).pipe(Effect.scoped))

  it.live("after-response tasks added by in-flight requests during the drain still run: Server.app releases the supervisor after the server", () =>
    Effect.gen(function*() {
      const slow = yield* makeSlow
      const taskRan = yield* Deferred.make<boolean>()
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/order",
        Effect.gen(function*() {
          yield* Deferred.succeed(slow.running, undefined)
          yield* Deferred.await(slow.release)
          // Added while the server is draining.
          yield* BackgroundTasks.add(Deferred.succeed(taskRan, true), { name: "confirm-order" })
          return HttpServerResponse.text("ordered")
        })
      ))
      const logs = captureLogs()
      const server = yield* startApp(Server.app(app, { port: 0, drainTimeout: "10 seconds", grace: "10 seconds" }), logs)

      const inFlight = yield* Effect.fork(request(server.port, "/order", { method: "POST" }))
      yield* Deferred.await(slow.running).pipe(orHang("the request to be running"))
      const shutdown = yield* server.shutdown
      yield* eventually(connectionRefused(server.port)).pipe(orHang("the drain to begin"))

      yield* Deferred.succeed(slow.release, undefined)
      const reply = yield* Fiber.join(inFlight).pipe(orHang("the in-flight response"))
      expect(reply.status).toBe(200)
      expect(reply.headers.connection).toBe("close")
      yield* Fiber.join(shutdown).pipe(orHang("shutdown to complete"))
      expect(yield* Deferred.isDone(taskRan)).toBe(true)
      expect(logs.entries.filter((entry) => entry.level === "ERROR" || entry.level === "WARN")).toEqual([])
    }).pipe(Effect.scoped))

  it.live("a fork made after the supervisor's shutdown began is rejected with ShuttingDownError", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const attempt = yield* Deferred.make<Either.Either<unknown, unknown>>()
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/work",
        Effect.gen(function*() {
          yield* BackgroundTasks.add(
            Effect.gen(function*() {
              yield* Deferred.await(release)
              const late = yield* Effect.either(Background.fork(Effect.void, "late"))
              yield* Deferred.succeed(attempt, late)
            }),
            { name: "work" }
          )
          return HttpServerResponse.text("accepted")
        })
      ))
      const server = yield* serving(app, { grace: "10 seconds" })

      expect((yield* request(server.port, "/work", { method: "POST" })).status).toBe(200)
      const shutdown = yield* server.shutdown
      yield* eventually(server.use(Effect.flatMap(Background.Background, (b) => b.isShuttingDown))).pipe(
        orHang("the supervisor's shutdown to begin")
      )
      yield* Deferred.succeed(release, undefined)
      const late = yield* Deferred.await(attempt).pipe(orHang("the late fork"))
      yield* Fiber.join(shutdown).pipe(orHang("shutdown to complete"))

      expect(Either.isLeft(late)).toBe(true)
      const error = Either.isLeft(late) ? late.left : undefined
      expect(error).toBeInstanceOf(ShuttingDownError)
      expect((error as ShuttingDownError).task).toBe("late")
    }).pipe(Effect.scoped))
})

describe("Server.snapshotRoute", () => {
  it.scopedLive("answers the snapshot only to a request with the right bearer token, and never a task's input", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/internal/background", Server.snapshotRoute({ token: "s3cret" })),
        HttpRouter.post(
          "/work",
          Effect.gen(function*() {
            const secretInput = { card: "4242-4242" }
            yield* Background.fork(Effect.zipRight(Deferred.await(release), Effect.log(secretInput.card)), "charge")
            return HttpServerResponse.empty({ status: 202 })
          })
        )
      )
      const server = yield* serving(app)
      expect((yield* request(server.port, "/work", { method: "POST" })).status).toBe(202)

      const anonymous = yield* request(server.port, "/internal/background")
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers["www-authenticate"]).toBe("Bearer")
      expect(anonymous.body).not.toContain("charge")
      const wrong = yield* request(server.port, "/internal/background", { headers: { authorization: "Bearer guess" } })
      expect(wrong.status).toBe(401)

      const allowed = yield* request(server.port, "/internal/background", { headers: { authorization: "Bearer s3cret" } })
      expect(allowed.status).toBe(200)
      const { tasks } = JSON.parse(allowed.body) as { tasks: ReadonlyArray<Record<string, unknown>> }
      expect(tasks.map((task) => [task.name, task.kind, task.state])).toEqual([["charge", "task", "running"]])
      expect(allowed.body).not.toContain("4242")
      yield* Deferred.succeed(release, undefined)
    }))

  it("refuses an empty token when the route is made", () => {
    expect(() => Server.snapshotRoute({ token: "" })).toThrow(/Invalid option "token"/)
  })
})

describe("Server.app's requirements", () => {
  it("type level: the app is given the request, readiness and the platform services; its jobs only the supervisor", () => {
    // only type-checked (`npm run typecheck` covers test/): a job is built beside the server, not in it
    const readinessJob = Background.daemon(Effect.forever(isReady), "watch-readiness")
    const supervisorJob = Background.every(Effect.asVoid(Background.stats), { name: "count", spaced: "1 minute" })
    const app = Server.app(HttpRouter.empty.pipe(HttpRouter.get("/ready", Effect.as(isReady, HttpServerResponse.empty()))), {
      jobs: readinessJob
    })
    expectTypeOf<Layer.Layer.Context<typeof app>>().toEqualTypeOf<Server.Readiness>()
    const fine = Server.app(HttpServerResponse.text("ok"), { jobs: supervisorJob })
    expectTypeOf<Layer.Layer.Context<typeof fine>>().toEqualTypeOf<never>()
    expect(typeof app).toBe("object")
  })
})
