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
 * Env: PORT, DRAIN_MS, GRACE_MS, TASK_DELAY_MS, LOG_FILE, INTERVAL_MS, CONCURRENCY, MAX_QUEUED,
 *      REFRESH_MS (default 30000), CRON_TZ (default Europe/Paris), OFFLOAD_THREADS, BATCH_SIZE, FLUSH_MS,
 *      SNAPSHOT_TOKEN (when set, /background requires it as a bearer token), SQLITE_FILE (default
 *      ./data/tasks.sqlite), LEASE_MS, WORKERS.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { Background, Server } from "../src/index.js"
import { helloDaemon } from "./daemon.js"
import { durableRoutes, NotificationWorkers, SqliteStore } from "./durable.js"
import { env, launchOptions, serverOptions } from "./env.js"
import { supervisorOptions, track } from "./fire-and-forget.js"
import { AnalyticsLive, postEvent } from "./isolated-loop.js"
import { sendNotification } from "./notify.js"
import { OffloadLive, offloadRoutes } from "./offload.js"

const refreshMillis = env.number("REFRESH_MS", 30_000)
const cronTimeZone = process.env.CRON_TZ ?? "Europe/Paris"

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
  HttpRouter.concat(durableRoutes("/durable"))
)

const jobs = Layer.mergeAll(
  helloDaemon,
  Background.every(
    Effect.log("cache refreshed"),
    { name: "refresh-cache", spaced: refreshMillis }
  ),
  Background.cron(
    Effect.flatMap(Background.snapshot, (tasks) => Effect.log(`minute report: ${tasks.length} tasks owned`)),
    { name: "minute-report", cron: "* * * * *", timeZone: cronTimeZone }
  ),
  NotificationWorkers
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
