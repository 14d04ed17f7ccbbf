/**
 * Durable tasks: regressions found while running the example as processes.
 *
 * - A task enqueued in a request's handler is held until the response is written: a real server
 *   (127.0.0.1, ephemeral port) on an in-memory SQLite store, with workers polling often, and a
 *   handler that does not answer until the test lets it. Sequenced with Deferreds and observed
 *   states, never with timing thresholds.
 * - Processes that start at once on a fresh PostgreSQL database (replicas of one deploy) all start:
 *   creating the table is a race one of them used to lose.
 * - A task the grace cuts off is handed back to a PostgreSQL store (whose queries are asynchronous)
 *   before the shutdown goes on to close the store.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Option, Schema, Scope } from "effect"
import * as SqlClient from "@effect/sql/SqlClient"
import { Background, Durable, Server } from "../src/index.js"
import { eventually, request } from "./support/http-client.js"
import { captureLogs, orHang, startApp } from "./support/http-server.js"
import { describePostgres, postgresUrl, uniqueTable } from "./support/postgres.js"

describe("Durable.enqueue in a request's handler", () => {
  it.live("holds the task until the response is written, then runs it", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      const enqueued = yield* Deferred.make<string>()
      const respond = yield* Deferred.make<void>()
      const Note = Durable.task("note", {
        payload: Schema.Struct({ text: Schema.String }),
        run: ({ text }) => Effect.sync(() => events.push(`ran ${text}`))
      })
      const router = HttpRouter.empty.pipe(HttpRouter.post("/note", Effect.gen(function*() {
        const id = yield* Durable.enqueue(Note, { text: "hello" })
        yield* Deferred.succeed(enqueued, id)
        yield* Deferred.await(respond)
        events.push("responding")
        return yield* HttpServerResponse.text(id, { status: 202 })
      })))
      const store = Durable.sqlite({ filename: ":memory:", pollInterval: "10 millis", lease: "30 seconds" })
      const app = yield* startApp(
        Server.app(router, { port: 0, jobs: Durable.layer([Note]) }).pipe(Layer.provide(store)),
        captureLogs()
      )

      const reply = yield* Effect.fork(request(app.port, "/note", { method: "POST" }))
      yield* Deferred.await(enqueued).pipe(orHang("the handler enqueued its task"))
      // Many poll intervals, across a second boundary of SQLite's clock (its timestamps are whole
      // seconds), while the response is not written yet: a worker that could take the task would
      // have done so by now. (Not a threshold: nothing is asserted about the time.)
      yield* Effect.sleep("1200 millis")
      expect(events).toEqual([])

      yield* Deferred.succeed(respond, undefined)
      expect((yield* reply.await.pipe(Effect.flatten)).status).toBe(202)
      yield* eventually(Effect.sync(() => events.length > 1)).pipe(orHang("the task ran"))
      expect(events).toEqual(["responding", "ran hello"])
    }).pipe(Effect.scoped))
})

describePostgres("Durable.postgres at start", () => {
  it.live("stores built at once on a fresh database all start (each creates the table if it is missing)", () =>
    Effect.gen(function*() {
      const table = uniqueTable("start")
      const store = () => Durable.postgres({ url: postgresUrl, table, maxConnections: 1 })
      yield* Effect.addFinalizer(() =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TABLE IF EXISTS ${sql(table)}`).pipe(
          Effect.provide(store()),
          Effect.orDie
        ))
      const started = yield* Effect.all(
        Array.from({ length: 4 }, () => Effect.either(Layer.build(store()))),
        { concurrency: "unbounded" }
      )
      expect(started.filter((result) => result._tag === "Left").map((result) => String(result.left))).toEqual([])
    }).pipe(Effect.scoped))
})

describePostgres("Durable workers at shutdown", () => {
  it.live("a task still running when the grace ends is handed back to the store before it closes", () =>
    Effect.gen(function*() {
      const table = uniqueTable("release")
      // A lease far longer than the test: only a release can make the task pending again.
      const store = () => Durable.postgres({ url: postgresUrl, table, lease: "10 minutes", pollInterval: "10 millis" })
      yield* Effect.addFinalizer(() =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TABLE IF EXISTS ${sql(table)}`).pipe(
          Effect.provide(store()),
          Effect.orDie
        ))
      const started = yield* Deferred.make<void>()
      const Forever = Durable.task("forever", {
        payload: Schema.Struct({}),
        run: () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
      })
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Durable.layer([Forever]).pipe(Layer.provideMerge(Background.layer({ grace: 0 })), Layer.provideMerge(store())),
        scope
      )
      const id = yield* Durable.enqueue(Forever, {}).pipe(Effect.provide(context))
      yield* Deferred.await(started).pipe(orHang("the task started"))

      yield* Scope.close(scope, Exit.void)
      const task = yield* Durable.status(id).pipe(Effect.provide(store()))
      expect(Option.map(task, (found) => found.state)).toEqual(Option.some("pending"))
    }).pipe(Effect.scoped))
})
