/**
 * Pattern: a durable task queue (Celery, RQ, arq) — work that must not be lost. The handler
 * commits the task to a store and answers 202 with its id only once it is on disk; workers in the
 * server's scope (or in worker-only processes) run it. Accepted work survives a crash: after a
 * `kill -9`, the next process on the same store runs what was pending, and what was running once
 * its lease (LEASE_MS) expires. Delivery is at least once — a task cut off by a crash runs again —
 * so make the handler idempotent: pass the task's id to the mail provider as its idempotency key,
 * or check before writing. (This one appends a line, so a crash can leave the same line twice.)
 * Compare examples/notify.ts, whose in-memory task is gone with its process.
 *
 * Run: `npx tsx examples/durable.ts` then `curl -X POST 127.0.0.1:3000/send-notification/ada@example.com`
 * and `curl 127.0.0.1:3000/tasks/<id>`. Add workers on the same store with `ROLE=worker`.
 * Env: PORT, DRAIN_MS, GRACE_MS, TASK_DELAY_MS (default 0), LOG_FILE (default ./log.txt),
 *      SQLITE_FILE (default ./data/tasks.sqlite), DATABASE_URL (a postgres:// URL: PostgreSQL
 *      instead, shared by processes on many machines), DURABLE_TABLE (default effect_queue),
 *      LEASE_MS (default 30000), WORKERS (tasks run at once per process, default 2),
 *      ROLE=worker (no HTTP: runs tasks only, prints `worker ready`, stops on SIGTERM/SIGINT).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { appendFile } from "node:fs/promises"
import { Background, Durable, Server } from "../src/index.js"
import { env, isMain, launchOptions, serverOptions } from "./env.js"

const taskDelay = env.taskDelayMillis(0)
const storeOptions = {
  table: process.env.DURABLE_TABLE || undefined,
  lease: env.number("LEASE_MS", 30_000)
}

/** The task type: its payload is stored as JSON; the handler may run more than once per task. */
export const SendNotification = Durable.task("send-notification", {
  payload: Schema.Struct({ email: Schema.String }),
  run: ({ email }) =>
    Effect.sleep(taskDelay).pipe(
      Effect.zipRight(Effect.promise(() => appendFile(env.logFile, `notification for ${email}\n`)))
    ),
  concurrency: env.number("WORKERS", 2)
})

/** The embedded store: one SQLite file (what the demo uses). */
export const SqliteStore = Durable.sqlite({ filename: process.env.SQLITE_FILE || "./data/tasks.sqlite", ...storeOptions })

/** DATABASE_URL, when set, selects PostgreSQL; otherwise SQLITE_FILE. */
export const DurableStoreLive = process.env.DATABASE_URL
  ? Durable.postgres({ url: process.env.DATABASE_URL, ...storeOptions })
  : SqliteStore

/** This process's workers for the task type: a job of the server's supervisor. */
export const NotificationWorkers = Durable.layer([SendNotification])

const unavailable = (error: { readonly message: string }) =>
  Effect.logWarning(error.message).pipe(
    Effect.zipRight(HttpServerResponse.json({ error: "the task store is unavailable; try again" }, {
      status: 503,
      headers: { "retry-after": "1" }
    }))
  )

/**
 * `POST <prefix>/send-notification/:email` — 202 with the task's id once it is committed (503 when
 * the store cannot take it); `GET <prefix>/tasks/:id` — its state, 404 when the store has none.
 */
export const durableRoutes = (prefix: "" | `/${string}` = "") =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      `${prefix}/send-notification/:email`,
      Effect.gen(function*() {
        const { email = "" } = yield* HttpRouter.params
        const id = yield* Durable.enqueue(SendNotification, { email })
        return yield* HttpServerResponse.json({ id, status: `${prefix}/tasks/${id}` }, { status: 202 })
      }).pipe(
        Effect.catchTags({
          DurableStoreError: unavailable,
          DurablePayloadError: (error) => HttpServerResponse.json({ error: error.message }, { status: 400 }),
          InvalidOptionError: Effect.die
        })
      )
    ),
    HttpRouter.get(
      `${prefix}/tasks/:id`,
      Effect.gen(function*() {
        const { id = "" } = yield* HttpRouter.params
        const found = yield* Durable.status(id)
        // The payload (an address) stays in the store.
        return yield* Option.match(found, {
          onNone: () => HttpServerResponse.json({ error: "no such task" }, { status: 404 }),
          onSome: (task) =>
            HttpServerResponse.json({ id: task.id, name: task.name, state: task.state, attempts: task.attempts })
        })
      }).pipe(Effect.catchTag("DurableStoreError", unavailable))
    )
  )

/**
 * `ROLE=worker`: no HTTP, only the workers and their supervisor, on the same store. The store is
 * built first and released last, so tasks the grace cuts off are handed back to it.
 */
export const WorkerProcess = Layer.effectDiscard(Effect.log("worker ready")).pipe(
  Layer.provide(NotificationWorkers),
  Layer.provide(Background.layer({ grace: env.graceMillis })),
  Layer.provide(DurableStoreLive)
)

if (isMain(import.meta.url)) {
  if (process.env.ROLE === "worker") {
    Server.launch(WorkerProcess, launchOptions)
  } else {
    const router = HttpRouter.empty.pipe(
      HttpRouter.get("/health", Server.health),
      HttpRouter.concat(durableRoutes())
    )
    Server.launch(
      Server.app(router, { ...serverOptions, jobs: NotificationWorkers }).pipe(Layer.provide(DurableStoreLive)),
      launchOptions
    )
  }
}
