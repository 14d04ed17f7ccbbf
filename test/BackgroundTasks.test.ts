/**
 * After-response tasks on a real server (127.0.0.1, ephemeral port) with real HTTP clients. Tasks
 * are sequenced with Deferreds the test completes, never with timing thresholds.
 */
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiError,
  HttpApiGroup,
  HttpMiddleware,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, FiberRef, Layer, Option, Ref, Schema, Stream, Tracer } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import { Background, BackgroundTasks, MissingMiddlewareError, OutsideRequestError, Server } from "../src/index.js"
import { open, RawConnection, rawGet, request } from "./support/http-client.js"
import { captureLogs, orHang, serving, start } from "./support/http-server.js"
import { freePort } from "./support/process-example.js"
import { makeLogCapture, makeRecordingTracer, startSupervisor } from "./support/unit-harness.js"
import { fromCallback } from "../src/internal/background/callback.js"

/** The Node response behind the current request. */
const nodeResponse = Effect.map(HttpServerRequest.HttpServerRequest, NodeHttpServerRequest.toServerResponse)

/**
 * A task the test can watch: `started` tells whether the response had been fully written when it
 * started, then it blocks until the test completes `release`.
 */
const makeProbe = Effect.all({
  started: Deferred.make<boolean>(),
  release: Deferred.make<void>(),
  finished: Deferred.make<void>(),
  interrupted: Deferred.make<void>()
})
type Probe = Effect.Effect.Success<typeof makeProbe>

const probeTask = (probe: Probe, response: Http.ServerResponse) =>
  Effect.gen(function*() {
    yield* Deferred.succeed(probe.started, response.writableFinished)
    yield* Deferred.await(probe.release)
    yield* Deferred.succeed(probe.finished, undefined)
  }).pipe(Effect.onInterrupt(() => Deferred.succeed(probe.interrupted, undefined)))

const addProbe = (probe: Probe) =>
  Effect.flatMap(nodeResponse, (response) => BackgroundTasks.add(probeTask(probe, response), { name: "probe" }))

/** The defect an exit died with, if it did. */
const defectOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.dieOption(exit.cause)) : undefined

const messageOf = (defect: unknown): string => (defect instanceof Error ? defect.message : String(defect))

/** Adds two tasks that record their names in `ran` when they run: "default", then "always" (`always: true`). */
const addDefaultAndAlways = (ran: Array<string>) =>
  Effect.zipRight(
    BackgroundTasks.add(Effect.sync(() => ran.push("default")), { name: "default" }),
    BackgroundTasks.add(Effect.sync(() => ran.push("always")), { name: "always", always: true })
  )

describe("BackgroundTasks on a real server", () => {
  describe("a task starts only after the last byte of its response is written", () => {
    it.live("JSON body: the task starts once the whole response is written", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const app = HttpRouter.empty.pipe(
          HttpRouter.post("/json", Effect.zipRight(addProbe(probe), HttpServerResponse.json({ ok: true })))
        )
        const server = yield* serving(app)

        const reply = yield* request(server.port, "/json", { method: "POST" }).pipe(orHang("the JSON response"))
        expect(reply.status).toBe(200)
        expect(JSON.parse(reply.body)).toEqual({ ok: true })
        // the task saw its response wholly written when it started
        expect(yield* Deferred.await(probe.started).pipe(orHang("the task start"))).toBe(true)
        yield* Deferred.succeed(probe.release, undefined)
        yield* Deferred.await(probe.finished).pipe(orHang("the task end"))
      }).pipe(Effect.scoped))

    it.live("Empty body (204): the task starts after the response is finished", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const app = HttpRouter.empty.pipe(
          HttpRouter.del("/item", Effect.as(addProbe(probe), HttpServerResponse.empty({ status: 204 })))
        )
        const server = yield* serving(app)

        const reply = yield* request(server.port, "/item", { method: "DELETE" }).pipe(orHang("the 204 response"))
        expect(reply.status).toBe(204)
        expect(reply.body).toBe("")
        // the task saw its response wholly written when it started
        expect(yield* Deferred.await(probe.started).pipe(orHang("the task start"))).toBe(true)
        yield* Deferred.succeed(probe.release, undefined)
        yield* Deferred.await(probe.finished).pipe(orHang("the task end"))
      }).pipe(Effect.scoped))

    it.live("Stream body: the task waits while the body is still streaming, and starts once it ends", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const lastChunk = yield* Deferred.make<void>()
        const body = Stream.concat(
          Stream.make("first;"),
          Stream.fromEffect(Effect.as(Deferred.await(lastChunk), "last"))
        ).pipe(Stream.encodeText)
        const app = HttpRouter.empty.pipe(
          HttpRouter.get("/stream", Effect.as(addProbe(probe), HttpServerResponse.stream(body)))
        )
        const server = yield* serving(app)

        const response = yield* open(server.port, "/stream").pipe(orHang("the response head"))
        yield* response.received("first;").pipe(orHang("the first chunk"))
        expect(yield* Deferred.isDone(probe.started)).toBe(false)

        yield* Deferred.succeed(lastChunk, undefined)
        expect(yield* response.rest.pipe(orHang("the end of the body"))).toBe("first;last")
        expect(yield* Deferred.await(probe.started).pipe(orHang("the task start"))).toBe(true)
        yield* Deferred.succeed(probe.release, undefined)
        yield* Deferred.await(probe.finished).pipe(orHang("the task end"))
      }).pipe(Effect.scoped))
  })

  it.live("a body that fails mid-stream leaves the handler's answer (200) standing: every task runs", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      const body = Stream.concat(Stream.make("first;"), Stream.fail("the feed broke")).pipe(Stream.encodeText)
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/feed", Effect.zipRight(addDefaultAndAlways(ran), HttpServerResponse.stream(body)))
      )
      const server = yield* serving(app)
      const response = yield* open(server.port, "/feed").pipe(orHang("the response head"))
      expect(response.status).toBe(200)
      yield* Effect.exit(response.rest)
      yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to settle"))
      expect(ran).toEqual(["default", "always"])
      expect(yield* server.use(Background.stats)).toMatchObject({ finished: 2, skipped: 0 })
    }).pipe(Effect.scoped))

  describe("a task waits for its own response to be written, even when the platform has already let go of it", () => {
    // With HTTP pipelining, Node queues a response behind the one before it on the connection: the
    // handler has answered and its request scope has closed, yet no byte of it is written until
    // the earlier response ends. Its task must wait for that.
    const bodies = [
      { title: "Empty body (204)", answer: HttpServerResponse.empty({ status: 204 }) },
      { title: "Stream body", answer: HttpServerResponse.stream(Stream.make("a;", "b").pipe(Stream.encodeText)) }
    ]
    for (const { answer, title } of bodies) {
      it.live(`${title}: queued behind an unfinished response on the same connection`, () =>
        Effect.gen(function*() {
          const probe = yield* makeProbe
          const unblock = yield* Deferred.make<void>()
          const requestDone = yield* Deferred.make<void>()
          const app = HttpRouter.empty.pipe(
            HttpRouter.get(
              "/blocker",
              HttpServerResponse.stream(
                Stream.concat(Stream.make("head;"), Stream.fromEffect(Effect.as(Deferred.await(unblock), "tail")))
                  .pipe(Stream.encodeText)
              )
            ),
            HttpRouter.get(
              "/queued",
              Effect.gen(function*() {
                yield* Effect.addFinalizer(() => Deferred.succeed(requestDone, undefined))
                yield* addProbe(probe)
                return answer
              })
            )
          )
          const server = yield* serving(app)

          const connection = yield* RawConnection.connect(server.port)
          yield* connection.write(rawGet("/blocker") + rawGet("/queued"))
          yield* connection.received("head;").pipe(orHang("the blocker's first chunk"))
          yield* Deferred.await(requestDone).pipe(orHang("the queued request to be handled"))
          expect(yield* Deferred.isDone(probe.started)).toBe(false)

          yield* Deferred.succeed(unblock, undefined)
          yield* connection.received("tail").pipe(orHang("the blocker's end"))
          expect(yield* Deferred.await(probe.started).pipe(orHang("the task start"))).toBe(true)
          yield* Deferred.succeed(probe.release, undefined)
          yield* Deferred.await(probe.finished).pipe(orHang("the task end"))
        }).pipe(Effect.scoped))
    }
  })

  it.live("tasks run one after another in the order added; a failing or dying task does not skip the next, and is logged once with its name", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const step = (name: string, outcome: Effect.Effect<void, string>) =>
        Effect.gen(function*() {
          events.push(`start ${name}`)
          yield* outcome
          events.push(`end ${name}`)
        })
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/signup",
        Effect.gen(function*() {
          // "a" is slow: if tasks ran at once, the others would start before it ends.
          yield* BackgroundTasks.add(step("a", Effect.sleep("30 millis")), { name: "task-a" })
          yield* BackgroundTasks.add(step("b", Effect.fail("b failed")), { name: "task-b" })
          yield* BackgroundTasks.add(step("c", Effect.dieMessage("c died")), { name: "task-c" })
          yield* BackgroundTasks.add(step("d", Effect.void), { name: "task-d" })
          return HttpServerResponse.text("welcome")
        })
      ))
      const logs = captureLogs()
      const server = yield* serving(app, {}, logs)

      expect((yield* request(server.port, "/signup", { method: "POST" })).status).toBe(200)
      yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to finish"))

      expect(events).toEqual(["start a", "end a", "start b", "start c", "start d", "end d"])
      const errors = logs.entries.filter((entry) => entry.level === "ERROR")
      expect(errors.map((entry) => entry.annotations.task)).toEqual(["task-b", "task-c"])
      expect(errors[0]!.message).toContain("task-b")
      expect(errors[0]!.cause).toContain("b failed")
      expect(errors[1]!.message).toContain("task-c")
      expect(errors[1]!.cause).toContain("c died")
    }).pipe(Effect.scoped))

  it.live("add refuses, with a defect that names the cause and the fix, a call from a fork of the handler and one made after the response was written", () =>
    Effect.gen(function*() {
      const fromTask = yield* Deferred.make<Exit.Exit<unknown, unknown>>()
      const afterResponse = yield* Deferred.make<Exit.Exit<void>>()
      const written = yield* Deferred.make<void>()
      let ran = 0
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/late",
        Effect.gen(function*() {
          // the fork sees the request (it inherits the handler's context) but is no part of it
          const handle = yield* Background.fork(BackgroundTasks.add(Effect.sync(() => ran++)), "adds-from-a-task")
          yield* Deferred.succeed(fromTask, yield* handle.await)
          // a daemon fiber of the handler's own, still holding the request, adds once it is answered
          yield* Effect.forkDaemon(
            Deferred.await(written).pipe(
              Effect.zipRight(BackgroundTasks.add(Effect.sync(() => ran++))),
              Effect.exit,
              Effect.flatMap((exit) => Deferred.succeed(afterResponse, exit))
            )
          )
          return HttpServerResponse.text("ok")
        })
      ))
      const server = yield* serving(app)

      expect((yield* request(server.port, "/late", { method: "POST" })).status).toBe(200)
      yield* Deferred.succeed(written, undefined)
      const fromTaskDefect = defectOf(yield* Deferred.await(fromTask).pipe(orHang("the task's add")))
      expect(fromTaskDefect).toBeInstanceOf(OutsideRequestError)
      expect(fromTaskDefect).toMatchObject({ reason: "background-task", task: "adds-from-a-task" })
      expect(messageOf(fromTaskDefect)).toBe(
        "BackgroundTasks.add was called outside a request's handler (in the background task \"adds-from-a-task\", which runs apart from any request): use Background.fork for work not tied to a request"
      )
      const lateDefect = defectOf(yield* Deferred.await(afterResponse).pipe(orHang("the late add")))
      expect(lateDefect).toBeInstanceOf(OutsideRequestError)
      expect(lateDefect).toMatchObject({ reason: "after-response", task: undefined })
      expect(messageOf(lateDefect)).toBe(
        "BackgroundTasks.add was called outside a request's handler (after its response was written, from a fiber the handler left running): use Background.fork for work not tied to a request"
      )
      yield* server.use(Background.awaitIdle)
      expect(ran).toBe(0)
    }).pipe(Effect.scoped))

  describe("only a handler that succeeded runs its tasks; `always` tasks run regardless", () => {
    const outcomes: ReadonlyArray<{
      readonly title: string
      readonly answer: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>
      readonly status: number
      readonly ran: ReadonlyArray<string>
    }> = [
      {
        title: "a handler that answers 200 runs both",
        answer: HttpServerResponse.json({ ok: true }),
        status: 200,
        ran: ["default", "always"]
      },
      {
        title: "a handler that fails (500) runs only the `always` task",
        answer: Effect.fail(new Error("handler failed")),
        status: 500,
        ran: ["always"]
      },
      {
        title: "a handler that dies (500) runs only the `always` task",
        answer: Effect.dieMessage("handler died"),
        status: 500,
        ran: ["always"]
      },
      {
        title: "a handler that answers 404 runs only the `always` task",
        answer: Effect.succeed(HttpServerResponse.empty({ status: 404 })),
        status: 404,
        ran: ["always"]
      },
      {
        title: "a handler that answers 422 with a body runs only the `always` task",
        answer: HttpServerResponse.json({ error: "invalid" }, { status: 422 }),
        status: 422,
        ran: ["always"]
      }
    ]
    for (const outcome of outcomes) {
      it.live(outcome.title, () =>
        Effect.gen(function*() {
          const ran: Array<string> = []
          const app = HttpRouter.empty.pipe(HttpRouter.post(
            "/order",
            Effect.gen(function*() {
              yield* addDefaultAndAlways(ran)
              return yield* outcome.answer
            })
          ))
          const server = yield* serving(app)

          expect((yield* request(server.port, "/order", { method: "POST" })).status).toBe(outcome.status)
          yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to settle"))
          expect(ran).toEqual(outcome.ran)
        }).pipe(Effect.scoped))
    }
  })

  it.live("a `concurrent` task starts without waiting for earlier ones; later sequential tasks still wait for theirs", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const release = yield* Deferred.make<void>()
      const concurrentRan = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/report",
        Effect.gen(function*() {
          yield* BackgroundTasks.add(
            Effect.gen(function*() {
              events.push("start slow")
              yield* Deferred.await(release)
              events.push("end slow")
            }),
            { name: "slow" }
          )
          yield* BackgroundTasks.add(
            Effect.zipRight(Effect.sync(() => events.push("concurrent")), Deferred.succeed(concurrentRan, undefined)),
            { name: "concurrent", concurrent: true }
          )
          yield* BackgroundTasks.add(Effect.sync(() => events.push("after slow")), { name: "after slow" })
          return HttpServerResponse.text("ok")
        })
      ))
      const server = yield* serving(app)

      expect((yield* request(server.port, "/report", { method: "POST" })).status).toBe(200)
      // "slow" is blocked until `release`: the concurrent task can only run if it did not wait.
      yield* Deferred.await(concurrentRan).pipe(orHang("the concurrent task"))
      expect(events).not.toContain("end slow")
      expect(events).not.toContain("after slow")

      yield* Deferred.succeed(release, undefined)
      yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to finish"))
      expect(events.indexOf("after slow")).toBeGreaterThan(events.indexOf("end slow"))
    }).pipe(Effect.scoped))

  describe("a client disconnect does not cancel tasks", () => {
    /** A handler that adds a probe task and reports when its connection closes. */
    const probed = (probe: Probe, connectionClosed: Deferred.Deferred<void>) =>
      Effect.gen(function*() {
        const incoming = NodeHttpServerRequest.toIncomingMessage(yield* HttpServerRequest.HttpServerRequest)
        incoming.socket.once("close", () => Deferred.unsafeDone(connectionClosed, Effect.void))
        yield* addProbe(probe)
        return yield* HttpServerResponse.json({ queued: true })
      })

    it.live("a task that is running when its client hangs up runs to the end", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const connectionClosed = yield* Deferred.make<void>()
        const app = HttpRouter.empty.pipe(HttpRouter.get("/work", probed(probe, connectionClosed)))
        const server = yield* serving(app)

        const connection = yield* RawConnection.connect(server.port)
        yield* connection.write(rawGet("/work"))
        expect((yield* connection.readResponse.pipe(orHang("the response"))).status).toBe(200)
        yield* Deferred.await(probe.started).pipe(orHang("the task start"))
        yield* connection.destroy
        yield* Deferred.await(connectionClosed).pipe(orHang("the server to see the disconnect"))

        yield* Deferred.succeed(probe.release, undefined)
        yield* Deferred.await(probe.finished).pipe(orHang("the task end"))
        expect(yield* Deferred.isDone(probe.interrupted)).toBe(false)
      }).pipe(Effect.scoped))

    it.live("hanging up mid-stream cancels no task: a running task finishes, and the cut-off response's tasks still run (its handler had answered)", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const connectionClosed = yield* Deferred.make<void>()
        const ran: Array<string> = []
        const app = HttpRouter.empty.pipe(
          HttpRouter.get("/work", probed(probe, connectionClosed)),
          HttpRouter.get(
            "/feed",
            Effect.gen(function*() {
              yield* addDefaultAndAlways(ran)
              return HttpServerResponse.stream(Stream.concat(Stream.make("first;"), Stream.never).pipe(Stream.encodeText))
            })
          )
        )
        const server = yield* serving(app)

        // One kept-alive connection: a finished request whose task is running, then a stream.
        const connection = yield* RawConnection.connect(server.port)
        yield* connection.write(rawGet("/work"))
        expect((yield* connection.readResponse.pipe(orHang("the first response"))).status).toBe(200)
        yield* Deferred.await(probe.started).pipe(orHang("the task start"))
        yield* connection.write(rawGet("/feed"))
        yield* connection.received("first;").pipe(orHang("the first chunk"))
        yield* connection.destroy
        yield* Deferred.await(connectionClosed).pipe(orHang("the server to see the disconnect"))

        yield* Deferred.succeed(probe.release, undefined)
        yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to finish"))
        expect(yield* Deferred.isDone(probe.finished)).toBe(true)
        expect(yield* Deferred.isDone(probe.interrupted)).toBe(false)
        expect(ran).toEqual(["default", "always"])
      }).pipe(Effect.scoped))

    it.live("hanging up before the handler answers interrupts the handler, which counts as failed: only `always` tasks run", () =>
      Effect.gen(function*() {
        const ran: Array<string> = []
        const waiting = yield* Deferred.make<void>()
        const handlerInterrupted = yield* Deferred.make<void>()
        const app = HttpRouter.empty.pipe(HttpRouter.get(
          "/slow",
          Effect.gen(function*() {
            yield* addDefaultAndAlways(ran)
            yield* Deferred.succeed(waiting, undefined)
            return yield* Effect.never
          }).pipe(Effect.onInterrupt(() => Deferred.succeed(handlerInterrupted, undefined)))
        ))
        const server = yield* serving(app)

        const connection = yield* RawConnection.connect(server.port)
        yield* connection.write(rawGet("/slow"))
        yield* Deferred.await(waiting).pipe(orHang("the handler to run"))
        yield* connection.destroy

        yield* Deferred.await(handlerInterrupted).pipe(orHang("the handler to be interrupted"))
        yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to settle"))
        expect(ran).toEqual(["always"])
      }).pipe(Effect.scoped))
  })

  it.live("with the middleware applied inside a router (HttpRouter.use), a client that hangs up early still gets its `always` task run, and nothing is left waiting", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      const waiting = yield* Deferred.make<void>()
      const router = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/slow",
          Effect.gen(function*() {
            yield* addDefaultAndAlways(ran)
            yield* Deferred.succeed(waiting, undefined)
            return yield* Effect.never
          })
        ),
        HttpRouter.use(BackgroundTasks.middleware)
      )
      const server = yield* start(
        HttpServer.serve(router).pipe(
          Layer.provideMerge(NodeHttpServer.layer(Http.createServer, { port: 0, host: "127.0.0.1" })),
          Layer.provideMerge(Background.layer())
        )
      )
      const connection = yield* RawConnection.connect(server.port)
      yield* connection.write(rawGet("/slow"))
      yield* Deferred.await(waiting).pipe(orHang("the handler to run"))
      yield* connection.destroy
      yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to settle"))
      expect(ran).toEqual(["always"])
      expect(yield* server.use(Background.snapshot)).toEqual([])
    }).pipe(Effect.scoped))

  it.live("with the middleware applied both around the server and inside a router, every task runs once, in order", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      // A router middleware that adds a task of its own before the handler runs.
      const audit = HttpMiddleware.make((app) =>
        Effect.zipRight(BackgroundTasks.add(Effect.sync(() => ran.push("audit")), { name: "audit" }), app)
      )
      const router = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/order",
          Effect.zipRight(
            BackgroundTasks.add(Effect.sync(() => ran.push("handler")), { name: "handler" }),
            HttpServerResponse.text("ok")
          )
        ),
        HttpRouter.use(BackgroundTasks.middleware),
        // outside the router's own BackgroundTasks.middleware, inside the server's
        HttpRouter.use(audit)
      )
      const server = yield* start(
        HttpServer.serve(router, BackgroundTasks.middleware).pipe(
          Layer.provideMerge(NodeHttpServer.layer(Http.createServer, { port: 0, host: "127.0.0.1" })),
          Layer.provideMerge(Background.layer())
        )
      )
      expect((yield* request(server.port, "/order", { method: "POST" })).status).toBe(200)
      yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to settle"))
      expect(ran).toEqual(["audit", "handler"])
      expect(yield* server.use(Background.snapshot)).toEqual([])
    }).pipe(Effect.scoped))

  it.live("a server run inside a background job serves requests whose tasks run as usual", () =>
    Effect.gen(function*() {
      const ran = yield* Deferred.make<string>()
      const port = yield* Effect.promise(() => freePort())
      const router = HttpRouter.empty.pipe(HttpRouter.get(
        "/",
        Effect.gen(function*() {
          yield* BackgroundTasks.add(Deferred.succeed(ran, "task ran"), { name: "t" })
          return HttpServerResponse.text("ok")
        })
      ))
      const admin = HttpServer.serve(router, BackgroundTasks.middleware).pipe(
        Layer.provide(NodeHttpServer.layer(Http.createServer, { port, host: "127.0.0.1" }))
      )
      const bg = yield* Layer.build(Background.layer())
      const listening = yield* Deferred.make<void>()
      yield* Background.startDaemon(
        Layer.launch(Layer.tap(admin, () => Deferred.succeed(listening, undefined))),
        "admin-server"
      ).pipe(Effect.provide(bg))
      // a start, bounded by the test's timeout only (how long it takes depends on the machine's load)
      yield* Deferred.await(listening)
      expect((yield* request(port, "/")).status).toBe(200)
      expect(yield* Deferred.await(ran).pipe(orHang("the task"))).toBe("task ran")
    }).pipe(Effect.scoped))

  it.live("callback tasks handed over together (one runner calls them all) are cut off past the grace with one interrupt, each ended as interrupted", () =>
    Effect.gen(function*() {
      const count = 2_000
      let aborted = 0
      // what the Promise API's `after` hands over: a callback that stops when its signal fires
      const waitForAbort = fromCallback((signal) =>
        new Promise<void>((_resolve, reject) =>
          signal.addEventListener("abort", () => {
            aborted++
            reject(signal.reason)
          })
        )
      )
      const recording = makeRecordingTracer()
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/many",
        Effect.gen(function*() {
          for (let index = 0; index < count; index++) {
            yield* BackgroundTasks.add(waitForAbort, { name: "waits", concurrent: true })
          }
          return HttpServerResponse.text("ok")
        }).pipe(Effect.withTracer(recording.tracer))
      ))
      const server = yield* serving(app, { grace: 0, interruptTimeout: "5 seconds" })
      expect((yield* request(server.port, "/many", { method: "POST" })).status).toBe(200)
      yield* Effect.gen(function*() {
        while ((yield* server.use(Background.snapshot)).filter((task) => task.state === "running").length < count) {
          yield* Effect.sleep("10 millis")
        }
      }).pipe(orHang("all the tasks running"))
      yield* Fiber.join(yield* server.shutdown).pipe(orHang("the shutdown"))
      expect(aborted).toBe(count)
      expect(yield* server.use(Background.stats)).toMatchObject({ finished: 0, failed: 0, interrupted: count })
      // Every task names the same runner fiber. Interrupted once per task, the fiber's cause grew
      // by one interruption each time, every task ended with all of them, and counting those ends
      // took time quadratic in their number (the event loop blocked for seconds at a few thousand).
      const spans = recording.named("background waits")
      expect(spans).toHaveLength(count)
      const interruptions = spans.map((span) => {
        const status = span.status
        return status._tag === "Ended" && Exit.isFailure(status.exit)
          ? Cause.reduce(status.exit.cause, 0, (n, cause) => cause._tag === "Interrupt" ? Option.some(n + 1) : Option.none())
          : -1
      })
      expect(Math.max(...interruptions)).toBe(1)
      expect(Math.min(...interruptions)).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a task whose start throws (a tracer that fails to make its span) ends as a reported defect; the other tasks of the batch run", () =>
    Effect.gen(function*() {
      const ran: Array<string> = []
      const recording = makeRecordingTracer()
      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind) => {
          if (name === "background broken") throw new Error("tracer down")
          return recording.tracer.span(name, parent, context, links, startTime, kind)
        },
        context: (f) => f()
      })
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/order",
        Effect.gen(function*() {
          yield* BackgroundTasks.add(Effect.sync(() => ran.push("before")), { name: "before", concurrent: true })
          yield* BackgroundTasks.add(Effect.sync(() => ran.push("broken")), { name: "broken", concurrent: true })
          yield* BackgroundTasks.add(Effect.sync(() => ran.push("after")), { name: "after", concurrent: true })
          return HttpServerResponse.text("ok")
        }).pipe(Effect.withTracer(tracer))
      ))
      const logs = captureLogs()
      const server = yield* serving(app, {}, logs)
      expect((yield* request(server.port, "/order", { method: "POST" })).status).toBe(200)
      yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to settle"))
      expect([...ran].sort()).toEqual(["after", "before"])
      const errors = logs.entries.filter((entry) => entry.level === "ERROR")
      expect(errors.map((entry) => entry.message)).toEqual([expect.stringContaining('"broken" failed')])
      expect(errors[0]!.cause).toContain("tracer down")
      expect(yield* server.use(Background.stats)).toMatchObject({ finished: 3, failed: 1 })
    }).pipe(Effect.scoped))

  describe("HttpApiBuilder handlers", () => {
    class Items extends HttpApiGroup.make("items")
      .add(HttpApiEndpoint.post("create", "/items").addSuccess(Schema.Struct({ id: Schema.Number })))
      .add(HttpApiEndpoint.get("find", "/items/missing").addError(HttpApiError.NotFound))
    {}
    class Api extends HttpApi.make("api").add(Items) {}

    const handlers = (probe: Probe, ran: Array<string>) =>
      HttpApiBuilder.api(Api).pipe(Layer.provide(HttpApiBuilder.group(Api, "items", (group) =>
        group
          .handle("create", () => Effect.as(addProbe(probe), { id: 1 }))
          .handle("find", () =>
            Effect.gen(function*() {
              yield* addDefaultAndAlways(ran)
              return yield* new HttpApiError.NotFound()
            }))
      )))

    const exercise = (port: number, probe: Probe) =>
      Effect.gen(function*() {
        const created = yield* request(port, "/items", { method: "POST" }).pipe(orHang("the create response"))
        expect(created.status).toBe(200)
        expect(JSON.parse(created.body)).toEqual({ id: 1 })
        expect(yield* Deferred.await(probe.started).pipe(orHang("the task start"))).toBe(true)
        yield* Deferred.succeed(probe.release, undefined)
        yield* Deferred.await(probe.finished).pipe(orHang("the task end"))

        expect((yield* request(port, "/items/missing")).status).toBe(404)
      })

    it.live("with HttpApiBuilder.serve(BackgroundTasks.middleware): tasks run after the response, and an API error (404) skips all but `always`", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const ran: Array<string> = []
        const server = yield* start(
          HttpApiBuilder.serve(BackgroundTasks.middleware).pipe(
            Layer.provide(handlers(probe, ran)),
            Layer.provideMerge(NodeHttpServer.layer(Http.createServer, { port: 0, host: "127.0.0.1" })),
            Layer.provideMerge(Background.layer())
          )
        )
        yield* exercise(server.port, probe)
        yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to settle"))
        expect(ran).toEqual(["always"])
      }).pipe(Effect.scoped))

    it.live("through Server.serve(HttpApiBuilder.httpApp): the same", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const ran: Array<string> = []
        const serveApi = Layer.unwrapEffect(Effect.map(HttpApiBuilder.httpApp, Server.serve)).pipe(
          Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer, handlers(probe, ran)])
        )
        const server = yield* start(
          serveApi.pipe(
            Layer.provideMerge(Server.layer({ port: 0 })),
            Layer.provideMerge(Background.layer())
          )
        ).pipe(Effect.provide(captureLogs().layer))
        yield* exercise(server.port, probe)
        yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to settle"))
        expect(ran).toEqual(["always"])
      }).pipe(Effect.scoped))
  })

  it.live("with concurrency 1 and maxQueued 0, a handler that maps QueueFullError to 503 + Retry-After answers 503 while the slot is busy", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/track",
        Background.fork(Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(release)), "analytics").pipe(
          Effect.as(HttpServerResponse.empty({ status: 202 })),
          Effect.catchTag("QueueFullError", () =>
            Effect.succeed(HttpServerResponse.empty({ status: 503, headers: { "retry-after": "1" } })))
        )
      ))
      const server = yield* serving(app, { concurrency: 1, maxQueued: 0 })

      expect((yield* request(server.port, "/track", { method: "POST" })).status).toBe(202)
      yield* Deferred.await(started).pipe(orHang("the first task"))
      const rejected = yield* request(server.port, "/track", { method: "POST" })
      expect(rejected.status).toBe(503)
      expect(rejected.headers["retry-after"]).toBe("1")

      yield* Deferred.succeed(release, undefined)
      yield* server.use(Background.awaitIdle).pipe(orHang("the slot to free up"))
      expect((yield* request(server.port, "/track", { method: "POST" })).status).toBe(202)
    }).pipe(Effect.scoped))
})

describe("each after-response task runs as in a fiber of its own", () => {
  const handlerRef = FiberRef.unsafeMake("unset")

  /**
   * A server whose `POST /wait` adds a task that waits until `count` such tasks have started (one
   * fiber short, and none ends), and `count` requests to it, all at once: their statuses.
   */
  const waitingTasks = (count: number) =>
    Effect.gen(function*() {
      const started = yield* Ref.make(0)
      const allStarted = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/wait",
        Effect.zipRight(
          BackgroundTasks.add(
            Effect.gen(function*() {
              if ((yield* Ref.updateAndGet(started, (n) => n + 1)) === count) yield* Deferred.succeed(allStarted, undefined)
              yield* Deferred.await(allStarted)
            }),
            { name: "wait" }
          ),
          HttpServerResponse.text("ok")
        )
      ))
      const server = yield* serving(app)
      const statuses = yield* Effect.forEach(
        Array.from({ length: count }),
        () => Effect.map(request(server.port, "/wait", { method: "POST" }), (response) => response.status),
        { concurrency: "unbounded" }
      )
      return { server, statuses, allStarted }
    })

  it.live("many tasks waiting at once all run concurrently, each request's in its own line", () =>
    Effect.gen(function*() {
      const count = 24
      const { allStarted, server, statuses } = yield* waitingTasks(count)
      expect(statuses).toEqual(Array.from({ length: count }, () => 200))
      yield* Deferred.await(allStarted).pipe(orHang("every task to be running at once"))
      yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to finish"))
      expect((yield* server.use(Background.stats)).finished).toBe(count)
    }).pipe(Effect.scoped))

  it.live("the runner fibers end with the supervisor: no fiber started by the server outlives its shutdown", () =>
    Effect.gen(function*() {
      const before = new Set(yield* Fiber.roots)
      const count = 24
      const { server } = yield* waitingTasks(count)
      yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to finish"))
      // the runners that ran them wait, idle, for more work
      expect((yield* Fiber.roots).filter((fiber) => !before.has(fiber)).length).toBeGreaterThanOrEqual(count)
      yield* Fiber.join(yield* server.shutdown)
      const left = (yield* Fiber.roots).filter((fiber) => !before.has(fiber))
      expect(left.length).toBe(0)
    }).pipe(Effect.scoped))

  it.live("a fiber a task forks and leaves running is interrupted when the task ends; a daemon fiber is not", () =>
    Effect.gen(function*() {
      const childInterrupted = yield* Deferred.make<void>()
      const daemonStarted = yield* Deferred.make<void>()
      const daemonInterrupted = yield* Deferred.make<void>()
      const stopDaemon = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/fork",
        Effect.zipRight(
          BackgroundTasks.add(
            Effect.gen(function*() {
              yield* Effect.fork(Effect.onInterrupt(Effect.never, () => Deferred.succeed(childInterrupted, undefined)))
              yield* Effect.forkDaemon(
                Effect.zipRight(
                  Deferred.succeed(daemonStarted, undefined),
                  Effect.onInterrupt(Deferred.await(stopDaemon), () => Deferred.succeed(daemonInterrupted, undefined))
                )
              )
              yield* Deferred.await(daemonStarted)
            }),
            { name: "forks" }
          ),
          HttpServerResponse.text("ok")
        )
      ))
      const server = yield* serving(app)
      expect((yield* request(server.port, "/fork", { method: "POST" })).status).toBe(200)
      yield* Deferred.await(childInterrupted).pipe(orHang("the task's child to be interrupted when the task ended"))
      yield* server.use(Background.awaitIdle).pipe(orHang("the task to end"))
      expect(yield* Deferred.isDone(daemonInterrupted)).toBe(false)
      yield* Deferred.succeed(stopDaemon, undefined)
    }).pipe(Effect.scoped))

  it.live("each task sees its handler's fiber refs and its own log annotations, never what an earlier task set", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const logs = captureLogs()
      const task = (label: string) =>
        Effect.gen(function*() {
          seen.push(`${label}: ${yield* FiberRef.get(handlerRef)}`)
          yield* FiberRef.set(handlerRef, `set by ${label}`)
          yield* Effect.log(`ran ${label}`)
        })
      const app = HttpRouter.empty.pipe(HttpRouter.post(
        "/refs/:label",
        Effect.gen(function*() {
          const { label = "" } = yield* HttpRouter.params
          yield* FiberRef.set(handlerRef, `handler ${label}`)
          yield* BackgroundTasks.add(task(`${label} first`), { name: `${label} first` })
          yield* BackgroundTasks.add(task(`${label} second`), { name: `${label} second` })
          return HttpServerResponse.text("ok")
        })
      ))
      const server = yield* serving(app, {}, logs)
      for (const label of ["a", "b"]) {
        expect((yield* request(server.port, `/refs/${label}`, { method: "POST" })).status).toBe(200)
        yield* server.use(Background.awaitIdle).pipe(orHang("the tasks to finish"))
      }
      expect(seen).toEqual([
        "a first: handler a",
        "a second: handler a",
        "b first: handler b",
        "b second: handler b"
      ])
      const annotated = logs.entries.filter((entry) => entry.message.startsWith("ran "))
      expect(annotated.map((entry) => [entry.message, entry.annotations.task, entry.annotations.taskKind])).toEqual([
        ["ran a first", "a first", "after-response"],
        ["ran a second", "a second", "after-response"],
        ["ran b first", "b first", "after-response"],
        ["ran b second", "b second", "after-response"]
      ])
    }).pipe(Effect.scoped))
})

describe("BackgroundTasks with an upgraded (WebSocket) request", () => {
  it.scopedLive("a task added before the upgrade runs once the handler returns, not at shutdown", () =>
    Effect.gen(function*() {
      const ran = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/ws",
          Effect.gen(function*() {
            yield* BackgroundTasks.add(Deferred.succeed(ran, undefined), { name: "after-upgrade" })
            const socket = yield* HttpServerRequest.upgrade
            // serves the connection until the client goes away
            yield* socket.runRaw(() => Effect.void).pipe(Effect.ignore)
            return HttpServerResponse.empty()
          })
        )
      )
      const server = yield* serving(app)
      const handshake = yield* Effect.async<string>((resume) => {
        const socket = Net.connect(server.port, "127.0.0.1", () => {
          socket.write(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
          )
        })
        socket.once("data", (chunk) => {
          resume(Effect.succeed(chunk.toString("latin1")))
          socket.destroy()
        })
      }).pipe(orHang("the upgrade handshake"))
      expect(handshake).toMatch(/^HTTP\/1\.1 101 /)
      // the server is still up: had the task waited for a `finish` that never comes, this would hang
      yield* Deferred.await(ran).pipe(orHang("the after-upgrade task"))
    }))
})

describe("a misplaced BackgroundTasks.add is caught by the type checker where it can be, and otherwise dies naming the cause", () => {
  it("type level: add needs the request, so a job that calls it leaves HttpServerRequest unprovided and Server.app's layer cannot be launched", () => {
    // only type-checked (`npm run typecheck` covers test/): each line below fails to compile
    // if `add` stops asking for the request, or if `Server.app` hands its jobs services they never get
    const job = Background.every(BackgroundTasks.add(Effect.log("report")), { name: "nightly-report", spaced: "1 hour" })
    expectTypeOf<Layer.Layer.Context<typeof job>>().toEqualTypeOf<
      Background.Background | HttpServerRequest.HttpServerRequest
    >()
    const app = Server.app(HttpServerResponse.text("ok"), { jobs: job })
    expectTypeOf<Layer.Layer.Context<typeof app>>().toEqualTypeOf<HttpServerRequest.HttpServerRequest>()
    // @ts-expect-error: Type 'HttpServerRequest' is not assignable to type 'never' (no request runs a job)
    const launchWithTheJob = () => Server.launch(app)

    // in a handler the router provides the request: the app needs nothing more
    const handled = Server.app(HttpRouter.empty.pipe(HttpRouter.post(
      "/signup",
      Effect.as(BackgroundTasks.add(Effect.log("welcome")), HttpServerResponse.text("ok"))
    )))
    expectTypeOf<Layer.Layer.Context<typeof handled>>().toEqualTypeOf<never>()
    const launchTheHandler = () => Server.launch(handled)
    expect([typeof launchWithTheJob, typeof launchTheHandler]).toEqual(["function", "function"])
  })

  // The type asks for a request; untyped code, or a cast as here, can still run `add` without one.
  const addWithoutRequest = BackgroundTasks.add(Effect.log("report")) as Effect.Effect<void>

  it.effect("with no request in its context (a program of its own): OutsideRequestError, reason no-request", () =>
    Effect.gen(function*() {
      const defect = defectOf(yield* Effect.exit(addWithoutRequest))
      expect(defect).toBeInstanceOf(OutsideRequestError)
      expect(defect).toMatchObject({ _tag: "OutsideRequestError", reason: "no-request", task: undefined })
      expect(messageOf(defect)).toBe(
        "BackgroundTasks.add was called outside a request's handler (there is no HttpServerRequest in its context): use Background.fork for work not tied to a request"
      )
    }))

  it.effect("in a Background.every job: the run dies with OutsideRequestError naming the job (not a missing middleware), and is logged", () => {
    const logs = makeLogCapture()
    return Effect.gen(function*() {
      const bg = yield* startSupervisor(
        Background.every(addWithoutRequest, { name: "nightly-report", spaced: "1 hour" }).pipe(
          Layer.provideMerge(Background.layer({ grace: 0 }))
        )
      )
      yield* bg.use(Background.awaitIdle)
      const errors = logs.errors()
      expect(errors.map((entry) => entry.message)).toEqual(['schedule "nightly-report" run failed; the schedule goes on'])
      const defect = Option.getOrUndefined(Cause.dieOption(errors[0]!.cause))
      expect(defect).toBeInstanceOf(OutsideRequestError)
      expect(defect).toMatchObject({ reason: "background-task", task: "nightly-report" })
      expect(messageOf(defect)).toContain('(in the background task "nightly-report", which runs apart from any request)')
      yield* bg.shutdown
    }).pipe(Effect.provide(logs.layer))
  })

  it.live("in a handler served by a bare HttpServer.serve (no BackgroundTasks.middleware): MissingMiddlewareError, reason middleware", () =>
    Effect.gen(function*() {
      const added = yield* Deferred.make<Exit.Exit<void>>()
      const router = HttpRouter.empty.pipe(HttpRouter.post(
        "/signup",
        Effect.gen(function*() {
          yield* Deferred.succeed(added, yield* Effect.exit(BackgroundTasks.add(Effect.log("welcome"))))
          return HttpServerResponse.text("ok")
        })
      ))
      const server = yield* start(
        HttpServer.serve(router).pipe(
          Layer.provideMerge(NodeHttpServer.layer(Http.createServer, { port: 0, host: "127.0.0.1" })),
          Layer.provideMerge(Background.layer())
        )
      )
      expect((yield* request(server.port, "/signup", { method: "POST" })).status).toBe(200)
      const defect = defectOf(yield* Deferred.await(added).pipe(orHang("the handler's add")))
      expect(defect).toBeInstanceOf(MissingMiddlewareError)
      expect(defect).toMatchObject({ _tag: "MissingMiddlewareError", missing: "middleware" })
      expect(messageOf(defect)).toBe(
        "BackgroundTasks.add needs BackgroundTasks.middleware around the app, and this request was served without it: Server.serve installs it; with HttpServer.serve or HttpApiBuilder.serve, pass BackgroundTasks.middleware"
      )
    }).pipe(Effect.scoped))

  describe("a handler run on a made-up request, without a server", () => {
    // a new one per test: an add outside the middleware, on a request it has already answered,
    // counts as made after the response
    const madeUp = () => HttpServerRequest.fromWeb(new Request("http://localhost/signup", { method: "POST" }))
    const handler = (ran: Array<string>) =>
      Effect.as(BackgroundTasks.add(Effect.sync(() => ran.push("welcome"))), HttpServerResponse.text("ok"))

    it.effect("wrapped in BackgroundTasks.middleware: the task runs once the handler has returned", () =>
      Effect.gen(function*() {
        const ran: Array<string> = []
        const response = yield* BackgroundTasks.middleware(handler(ran)).pipe(
          Effect.provideService(HttpServerRequest.HttpServerRequest, madeUp())
        )
        expect(response.status).toBe(200)
        yield* Background.awaitIdle
        expect(ran).toEqual(["welcome"])
      }).pipe(Effect.provide(Background.layer())))

    it.effect("not wrapped: MissingMiddlewareError, reason middleware", () =>
      Effect.gen(function*() {
        const ran: Array<string> = []
        const exit = yield* Effect.exit(handler(ran).pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, madeUp())))
        expect(defectOf(exit)).toMatchObject({ _tag: "MissingMiddlewareError", missing: "middleware" })
        expect(ran).toEqual([])
      }))

    it.effect("wrapped, but with no Background supervisor: MissingMiddlewareError, reason supervisor", () =>
      Effect.gen(function*() {
        // the type asks for the supervisor too; a cast leaves it out
        const unsupervised = BackgroundTasks.middleware(handler([])) as Effect.Effect<
          HttpServerResponse.HttpServerResponse,
          unknown,
          HttpServerRequest.HttpServerRequest
        >
        const exit = yield* Effect.exit(unsupervised.pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, madeUp())))
        const defect = defectOf(exit)
        expect(defect).toBeInstanceOf(MissingMiddlewareError)
        expect(defect).toMatchObject({ missing: "supervisor" })
        expect(messageOf(defect)).toBe(
          "BackgroundTasks.add needs the Background supervisor, and BackgroundTasks.middleware runs without it: provide Background.layer to the server (Server.app does)"
        )
      }))
  })
})
