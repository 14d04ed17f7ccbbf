/**
 * Pattern: every kind of background work in one server (`npm start`) — after-response tasks
 * (FastAPI `BackgroundTasks`), fire-and-forget forks (`asyncio.create_task`), a daemon (a thread
 * or lifespan loop), a spaced job and a cron job (`sched`, APScheduler), CPU and blocking work on
 * worker threads (`asyncio.to_thread`), an isolated batcher on its own thread (a thread with its
 * own event loop) and durable tasks (Celery, RQ) in an embedded SQLite file — all owned by the
 * server, drained on Ctrl-C, and summed up in one report line.
 *
 * Run: `npm start` (or `npx tsx examples/server.ts`), try the routes it prints, then press Ctrl-C
 * while `curl '127.0.0.1:3000/slow?ms=3000'` is still waiting to watch the drain. Durable tasks
 * (examples/durable.ts) are mounted under /durable, beside the in-memory notification route:
 * `curl -X POST 127.0.0.1:3000/durable/send-notification/ada@example.com`, then
 * `curl 127.0.0.1:3000/durable/tasks/<id>`; they are kept in SQLITE_FILE (./data/tasks.sqlite).
 * The inspector page (Inspector.router) is at /inspector: open the URL printed at start, which
 * carries its token. `curl -X POST 127.0.0.1:3000/durable/webhook` a few times to see dead tasks
 * there (the webhook's receiver refuses the first WEBHOOK_FAILURES deliveries) and retry them.
 * The same token guards /metrics (Telemetry.prometheusRoute): every metric in Prometheus's text
 * format, `curl -H "authorization: Bearer <token>" 127.0.0.1:3000/metrics`.
 * Env: PORT, DRAIN_MS, GRACE_MS, TASK_DELAY_MS, LOG_FILE, INTERVAL_MS, CONCURRENCY, MAX_QUEUED,
 *      REFRESH_MS (default 30000), REFRESH_FAILURES (the first N cache refreshes fail, default 0),
 *      CRON_TZ (default Europe/Paris), OFFLOAD_THREADS, BATCH_SIZE, FLUSH_MS,
 *      SNAPSHOT_TOKEN (when set, /background requires it as a bearer token), SQLITE_FILE (default
 *      ./data/tasks.sqlite), LEASE_MS, WORKERS, WEBHOOK_FAILURES (default 3), INSPECTOR_TOKEN
 *      (the inspector's token; default a random one, printed at start).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import { appendFile } from "node:fs/promises"
import { Background, Durable, Inspector, Server } from "../src/index.js"
import * as Telemetry from "../src/Telemetry.js"
import { helloDaemon } from "./daemon.js"
import { durableRoutes, NotificationWorkers, SqliteStore } from "./durable.js"
import { env, launchOptions, serverOptions } from "./env.js"
import { supervisorOptions, track } from "./fire-and-forget.js"
import { AnalyticsLive, postEvent } from "./isolated-loop.js"
import { sendNotification } from "./notify.js"
import { OffloadLive, offloadRoutes } from "./offload.js"

const refreshMillis = env.number("REFRESH_MS", 30_000)
const cronTimeZone = process.env.CRON_TZ ?? "Europe/Paris"
/** The inspector's token: INSPECTOR_TOKEN, or one made up for this run (printed below). */
const inspectorToken = process.env.INSPECTOR_TOKEN || randomBytes(18).toString("base64url")

class CacheSourceError extends Data.TaggedError("CacheSourceError")<{ readonly message: string }> {}
class WebhookRefusedError extends Data.TaggedError("WebhookRefusedError")<{ readonly message: string }> {}

/** The cache refresh; the first REFRESH_FAILURES runs fail, to show a schedule's last failure. */
let refreshFailuresLeft = env.number("REFRESH_FAILURES", 0)
const refreshCache = Effect.suspend(() =>
  refreshFailuresLeft-- > 0
    ? Effect.fail(new CacheSourceError({ message: "cache source unavailable (503)" }))
    : Effect.log("cache refreshed")
)

/**
 * A durable webhook delivery whose receiver refuses the first WEBHOOK_FAILURES deliveries of this
 * process: with two attempts each, the first tasks end dead, for the inspector to retry or discard.
 */
let webhookFailuresLeft = env.number("WEBHOOK_FAILURES", 3)
const DeliverWebhook = Durable.task("deliver-webhook", {
  payload: Schema.Struct({ event: Schema.String }),
  run: ({ event }) =>
    Effect.suspend(() =>
      webhookFailuresLeft-- > 0
        ? Effect.fail(new WebhookRefusedError({ message: "the receiver answered 502 Bad Gateway" }))
        : Effect.promise(() => appendFile(env.logFile, `webhook ${event} delivered\n`))
    ),
  maxAttempts: 2,
  retry: Schedule.spaced("200 millis")
})

/** `POST /durable/webhook` — enqueues a delivery: 202 with its id. */
const webhook = Durable.enqueue(DeliverWebhook, { event: "order.paid" }).pipe(
  Effect.flatMap((id) => HttpServerResponse.json({ id, status: `/durable/tasks/${id}` }, { status: 202 })),
  Effect.catchTags({
    DurableStoreError: (error) => HttpServerResponse.json({ error: error.message }, { status: 503 }),
    DurablePayloadError: Effect.die,
    InvalidOptionError: Effect.die
  })
)

/** `GET /slow?ms=N` — answers after N milliseconds (default 1000), to watch a request drain. */
const slow = HttpServerRequest.schemaSearchParams(Schema.Struct({
  ms: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.between(0, 600_000)), { default: () => 1000 })
})).pipe(
  Effect.tap(({ ms }) => Effect.log(`slow request: answering in ${ms}ms`)),
  Effect.flatMap(({ ms }) => Effect.as(Effect.sleep(ms), ms)),
  Effect.flatMap((ms) => HttpServerResponse.json({ sleptMillis: ms })),
  Effect.catchTag("ParseError", () => HttpServerResponse.json({ error: "ms must be 0..600000" }, { status: 400 }))
)

/**
 * `GET /background` — what the supervisor owns right now. Opt-in, as every such route is; set
 * SNAPSHOT_TOKEN to require `Authorization: Bearer <token>`.
 */
const background = Server.snapshotRoute({ token: process.env.SNAPSHOT_TOKEN || undefined })

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/health", Server.health),
  HttpRouter.post("/send-notification/:email", sendNotification),
  HttpRouter.post("/track", track),
  HttpRouter.get("/slow", slow),
  HttpRouter.get("/background", background),
  HttpRouter.post("/event", postEvent),
  HttpRouter.concat(offloadRoutes),
  HttpRouter.post("/durable/webhook", webhook),
  HttpRouter.concat(durableRoutes("/durable")),
  HttpRouter.concat(Inspector.router({ path: "/inspector", token: inspectorToken })),
  HttpRouter.get("/metrics", Telemetry.prometheusRoute({ token: inspectorToken, serviceName: "effect-background-demo" }))
)

const jobs = Layer.mergeAll(
  helloDaemon,
  Background.every(refreshCache, { name: "refresh-cache", spaced: refreshMillis }),
  Background.cron(
    Effect.flatMap(Background.snapshot, (tasks) => Effect.log(`minute report: ${tasks.length} tasks owned`)),
    { name: "minute-report", cron: "* * * * *", timeZone: cronTimeZone }
  ),
  NotificationWorkers,
  Durable.layer([DeliverWebhook])
)

process.stdout.write(
  [
    "effect-background demo: every kind of background work, owned by the server",
    "  POST /send-notification/:email  after-response task (BackgroundTasks.add), appends to LOG_FILE",
    "  POST /track                     fire-and-forget fork (Background.fork); 503 + Retry-After when full",
    "  GET  /slow?ms=N                 answers after N ms; send one, then Ctrl-C to watch it drain",
    "  GET  /background                the supervisor's snapshot as JSON",
    "  GET  /health                    200 while serving, 503 while draining",
    "  GET  /cpu?n=N[&timeoutMs=T]     CPU-bound work on a worker thread (504 when the timeout cancels it)",
    "  GET  /cpu-inline?n=N            the same work on the event loop: watch /ping stall",
    "  GET  /io                        a blocking sync call (PBKDF2) through Offload.blocking",
    "  GET  /ping                      answers pong",
    "  POST /event                     sends an event to the analytics batcher on its own thread",
    "  POST /durable/send-notification/:email  durable task (Durable.enqueue) kept in SQLITE_FILE: 202 + its id;",
    "                                  it survives a crash and runs at least once",
    "  GET  /durable/tasks/:id         a durable task's state (pending, running, done...)",
    "  POST /durable/webhook           durable webhook delivery; the first WEBHOOK_FAILURES end dead",
    "  GET  /inspector                 the inspector page: tasks, jobs, durable tasks, threads, live",
    "  GET  /metrics                   every metric in Prometheus's text format (bearer: the inspector's token)",
    `  inspector: http://127.0.0.1:${env.port === 0 ? "<port>" : env.port}/inspector#token=${inspectorToken}`,
    `  jobs: daemon "hello" every ${env.intervalMillis}ms, "refresh-cache" spaced ${refreshMillis}ms,` +
    ` cron "minute-report" (* * * * *, ${cronTimeZone})`,
    `  Ctrl-C: drain requests (${env.drainMillis}ms), grace for background work (${env.graceMillis}ms),` +
    " interrupt the rest, print a report",
    ""
  ].join("\n")
)

Server.launch(
  Server.app(router, { ...serverOptions, ...supervisorOptions, jobs }).pipe(
    Layer.provide(Layer.mergeAll(OffloadLive, AnalyticsLive, SqliteStore))
  ),
  launchOptions
)
