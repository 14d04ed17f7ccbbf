/**
 * The snapshot route with a durable store in context: the store's counts by task type and state,
 * and what this process's workers did.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Schema } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Background, Server } from "../src/index.js"
import * as Durable from "../src/Durable.js"
import { request } from "./support/http-client.js"
import { captureLogs, start } from "./support/http-server.js"

describe("Server.snapshotRoute with a durable store", () => {
  it.scopedLive("adds the store's counts and this process's worker figures", () =>
    Effect.gen(function*() {
      const folder = mkdtempSync(join(tmpdir(), "durable-snapshot-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(folder, { recursive: true, force: true })))
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const Blocking = Durable.task("blocking", {
        payload: Schema.Struct({ n: Schema.Number }),
        run: () => Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(release))
      })
      const Quick = Durable.task("quick", { payload: Schema.Struct({ n: Schema.Number }), run: () => Effect.void })
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/internal/background", Server.snapshotRoute()),
        HttpRouter.post(
          "/enqueue",
          Effect.gen(function*() {
            yield* Durable.enqueue(Blocking, { n: 1 }, { afterResponse: false })
            yield* Durable.enqueue(Blocking, { n: 2 }, { afterResponse: false })
            yield* Durable.enqueue(Quick, { n: 3 }, { runIn: "1 hour" })
            return HttpServerResponse.empty({ status: 202 })
          })
        )
      )
      const logs = captureLogs()
      const server = yield* start(
        Layer.mergeAll(Server.serve(app), Durable.layer([Blocking, Quick])).pipe(
          Layer.provideMerge(Server.layer({ port: 0 })),
          Layer.provideMerge(Durable.sqlite({ filename: join(folder, "tasks.sqlite"), pollInterval: "20 millis" })),
          Layer.provideMerge(Background.layer())
        )
      ).pipe(Effect.provide(logs.layer))
      expect((yield* request(server.port, "/enqueue", { method: "POST" })).status).toBe(202)
      yield* Deferred.await(started)

      const reply = yield* request(server.port, "/internal/background")
      expect(reply.status).toBe(200)
      const body = JSON.parse(reply.body) as {
        durable: {
          store: string
          counts: ReadonlyArray<{ name: string; state: string; count: number }>
          thisProcess: Record<string, number>
        }
      }
      expect(body.durable.store).toBe(`sqlite:${join(folder, "tasks.sqlite")}`)
      // one blocking task running (concurrency 1), the other waiting; the quick one scheduled
      expect(body.durable.counts).toEqual([
        { name: "blocking", state: "pending", count: 1 },
        { name: "blocking", state: "running", count: 1 },
        { name: "quick", state: "scheduled", count: 1 }
      ])
      expect(body.durable.thisProcess).toEqual({ done: 0, retried: 0, dead: 0, released: 0 })
      yield* Deferred.succeed(release, undefined)
    }))

  it.scopedLive("leaves the answer as it was without a store", () =>
    Effect.gen(function*() {
      const server = yield* start(
        Server.serve(HttpRouter.empty.pipe(HttpRouter.get("/s", Server.snapshotRoute()))).pipe(
          Layer.provideMerge(Server.layer({ port: 0 })),
          Layer.provideMerge(Background.layer())
        )
      ).pipe(Effect.provide(captureLogs().layer))
      expect(JSON.parse((yield* request(server.port, "/s")).body)).toEqual({ tasks: [] })
    }))
})
