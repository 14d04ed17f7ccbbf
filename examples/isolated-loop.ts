/**
 * Pattern: "a new thread running its own event loop" — a long-lived program (an analytics batcher
 * with its own queue) on its own worker thread and Effect runtime, fed typed messages from
 * handlers, and flushed and stopped at shutdown like everything else.
 *
 * Run: `npx tsx examples/isolated-loop.ts`, then `curl -X POST 127.0.0.1:3000/event -d '{"name":"signup"}'`
 * a few times; batches appear in LOG_FILE. Ctrl-C flushes what the batcher still holds.
 * Env: PORT, DRAIN_MS, GRACE_MS, LOG_FILE (default ./log.txt), BATCH_SIZE (default 10),
 *      FLUSH_MS (default 1000).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { Offload, Server } from "../src/index.js"
import { isMain, launchOptions, serverOptions } from "./env.js"
import { AnalyticsEvent } from "./workers/analytics.events.js"

/** The batcher's mailbox, as a service handlers can use. */
export class Analytics extends Context.Tag("examples/Analytics")<Analytics, Offload.Isolate<AnalyticsEvent>>() {}

export const AnalyticsLive = Layer.scoped(
  Analytics,
  Offload.isolate({
    name: "analytics",
    module: new URL("./workers/analytics.isolate.ts", import.meta.url),
    message: AnalyticsEvent
  })
)

let received = 0

/** `POST /event` with an optional JSON body `{"name": "..."}` — 202 once the batcher has it. */
export const postEvent = Effect.gen(function*() {
  const body = yield* HttpServerRequest.schemaBodyJson(Schema.Struct({ name: Schema.optional(Schema.String) })).pipe(
    Effect.orElseSucceed(() => ({ name: undefined }))
  )
  const analytics = yield* Analytics
  const id = ++received
  yield* analytics.send({ id, name: body.name ?? "event" })
  return HttpServerResponse.unsafeJson({ accepted: id }, { status: 202 })
}).pipe(
  Effect.catchTags({
    WorkerCrashError: () => Effect.succeed(HttpServerResponse.unsafeJson({ error: "analytics is down" }, { status: 503 })),
    ShuttingDownError: () => Effect.succeed(HttpServerResponse.unsafeJson({ error: "shutting down" }, { status: 503 }))
  })
)

if (isMain(import.meta.url)) {
  const router = HttpRouter.empty.pipe(
    HttpRouter.get("/health", Server.health),
    HttpRouter.post("/event", postEvent)
  )
  Server.launch(Server.app(router, serverOptions).pipe(Layer.provide(AnalyticsLive)), launchOptions)
}
