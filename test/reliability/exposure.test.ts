/**
 * Exposure: the library mounts nothing a client can reach unless the app mounts it, its opt-in
 * snapshot route keeps its token's promise, and its own log lines carry task names and causes but
 * never the values a task captured.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schedule } from "effect"
import { Background, BackgroundTasks, Server } from "../../src/index.js"
import { eventually, request } from "../support/http-client.js"
import { captureLogs, orHang, serving, startApp } from "../support/http-server.js"

/** Paths where a library might mount health, status or introspection routes. */
const likelyPaths = [
  "/",
  "/health",
  "/healthz",
  "/ready",
  "/readiness",
  "/status",
  "/background",
  "/internal/background",
  "/snapshot",
  "/tasks",
  "/jobs",
  "/metrics",
  "/debug",
  "/debug/background",
  "/_background",
  "/.well-known/background"
]

const statuses = (port: number) =>
  Effect.forEach(
    likelyPaths.flatMap((path) => ["GET", "POST"].map((method) => ({ method, path }))),
    ({ method, path }) => Effect.map(request(port, path, { method }), (reply) => `${method} ${path} ${reply.status}`),
    { concurrency: 4 }
  )

const allNotFound = likelyPaths.flatMap((path) => [`GET ${path} 404`, `POST ${path} 404`])

describe("nothing is mounted by default", () => {
  it.scopedLive("Server.app with an empty router answers 404 everywhere, with jobs running", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const jobs = Layer.mergeAll(
        Background.daemon(Effect.never, "poller"),
        Background.every(Effect.void, { name: "refresh", spaced: "1 minute" })
      )
      const running = yield* startApp(Server.app(HttpRouter.empty, { port: 0, grace: 0, jobs }), logs)
      expect(yield* statuses(running.port)).toEqual(allNotFound)
    }))

  it.scopedLive("Server.serve with an empty router answers 404 everywhere, with a task running", () =>
    Effect.gen(function*() {
      const running = yield* serving(HttpRouter.empty, { grace: 0 })
      yield* running.use(Background.fork(Effect.never, "held"))
      expect(yield* statuses(running.port)).toEqual(allNotFound)
    }))
})

describe("Server.snapshotRoute with a token", () => {
  it.scopedLive("refuses the token anywhere but a Bearer authorization header", () =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(HttpRouter.get("/internal/background", Server.snapshotRoute({ token: "s3cret" })))
      const running = yield* serving(app, { grace: 0 })
      yield* running.use(Background.fork(Effect.never, "held"))
      const attempts: ReadonlyArray<readonly [string, Record<string, string>]> = [
        ["/internal/background?token=s3cret", {}],
        ["/internal/background?access_token=s3cret", {}],
        ["/internal/background", { authorization: "s3cret" }],
        ["/internal/background", { authorization: "Basic s3cret" }],
        ["/internal/background", { authorization: "Bearer s3cret2" }],
        ["/internal/background", { authorization: "Bearer  s3cret" }],
        ["/internal/background", { cookie: "token=s3cret" }],
        ["/internal/background", { "x-token": "s3cret" }]
      ]
      for (const [path, headers] of attempts) {
        const reply = yield* request(running.port, path, { headers })
        expect(reply.status, `${path} ${JSON.stringify(headers)}`).toBe(401)
        expect(reply.body).not.toContain("held")
      }
      const allowed = yield* request(running.port, "/internal/background", { headers: { authorization: "Bearer s3cret" } })
      expect(allowed.status).toBe(200)
      expect(allowed.body).toContain("held")
    }))
})

describe("task inputs are not logged", () => {
  it.live("failures, interruptions and job failures are logged with names and causes, never with the values the tasks captured", () =>
    Effect.gen(function*() {
      const secret = "4242-4242-4242-4242"
      const payment = { card: secret }
      // Tasks made from an input, as handlers make them; only `echo`'s own error carries the input.
      const failing = (message: string) => (input: typeof payment) =>
        Effect.suspend(() => (input.card === "" ? Effect.void : Effect.fail(new Error(message))))
      const charge = failing("charge declined")
      const receipt = failing("receipt failed")
      const poll = failing("poller down")
      const refresh = failing("refresh failed")
      const ledger = (input: typeof payment) => Effect.suspend(() => Effect.dieMessage(`ledger unavailable (${input.card.length} digits)`))
      const settle = (input: typeof payment) => Effect.suspend(() => (input.card === "" ? Effect.void : Effect.never))
      const echo = (input: typeof payment) => Effect.fail(new Error(`declined card ${input.card}`))
      const logs = captureLogs()
      const router = HttpRouter.empty.pipe(HttpRouter.post(
        "/charge",
        Effect.gen(function*() {
          yield* Background.fork(charge(payment), "charge")
          yield* Background.fork(ledger(payment), "ledger")
          yield* Background.fork(settle(payment), "settle")
          yield* Background.fork(echo(payment), "echo")
          yield* BackgroundTasks.add(receipt(payment), { name: "receipt" })
          return HttpServerResponse.empty({ status: 202 })
        })
      ))
      const jobs = Layer.mergeAll(
        Background.daemon(poll(payment), { name: "poller", restart: Schedule.recurs(1) }),
        Background.every(refresh(payment), { name: "refresh", spaced: "1 minute" })
      )
      yield* Effect.gen(function*() {
        const running = yield* startApp(Server.app(router, { port: 0, grace: 0, jobs }), logs)
        expect((yield* request(running.port, "/charge", { method: "POST" })).status).toBe(202)
        const logged = (text: string) => Effect.sync(() => logs.entries.some((entry) => entry.message.includes(text)))
        for (const name of ["charge", "ledger", "echo", "receipt", "poller", "refresh"]) {
          yield* eventually(logged(`"${name}"`)).pipe(orHang(`a failure of ${name} to be logged`))
        }
        yield* eventually(logged("restart policy is exhausted")).pipe(orHang("the poller to stop"))
        yield* Fiber.join(yield* running.shutdown).pipe(orHang("shutdown"))
      }).pipe(Effect.scoped)

      const errors = logs.entries.filter((entry) => entry.level === "ERROR")
      for (const [name, cause] of [
        ["charge", "charge declined"],
        ["ledger", "ledger unavailable"],
        ["receipt", "receipt failed"]
      ] as const) {
        const logged = errors.filter((entry) => entry.annotations.task === name)
        expect(logged, name).toHaveLength(1)
        expect(logged[0]!.message).toContain(`"${name}"`)
        expect(logged[0]!.cause).toContain(cause)
      }
      // Jobs: each failed run is logged with its cause (the poller fails twice, then stops).
      for (const [name, cause, runs] of [["poller", "poller down", 2], ["refresh", "refresh failed", 1]] as const) {
        const failed = errors.filter((entry) => entry.annotations.task === name && entry.message.includes("failed"))
        expect(failed, name).toHaveLength(runs)
        for (const entry of failed) expect(entry.cause, name).toContain(cause)
      }
      expect(logs.entries.some((entry) => entry.level === "WARN" && entry.message.includes("interrupted settle"))).toBe(true)

      // The secret shows only where the task's own error carries it: in the cause of echo's line.
      const showing = logs.entries.filter((entry) =>
        [entry.message, entry.cause, JSON.stringify(entry.annotations)].some((text) => text.includes(secret))
      )
      expect(showing.map((entry) => entry.annotations.task)).toEqual(["echo"])
      expect(showing[0]!.message).not.toContain(secret)
      expect(JSON.stringify(showing[0]!.annotations)).not.toContain(secret)
    }))
})
