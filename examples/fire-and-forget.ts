/**
 * Pattern: fire-and-forget — what FastAPI code does with a bare `asyncio.create_task(...)` for
 * analytics calls. The handler answers 202 at once and forks the work onto the server's
 * supervisor: the task is named, outlives the request but not the server, and is bounded — when
 * every slot and the queue are taken the client gets 503 with `Retry-After` instead of the work
 * piling up unseen.
 *
 * Run: `npx tsx examples/fire-and-forget.ts` then `curl -X POST 127.0.0.1:3000/track`.
 * Env: PORT, DRAIN_MS, GRACE_MS, TASK_DELAY_MS (default 50), LOG_FILE (default ./log.txt),
 *      CONCURRENCY (default 16), MAX_QUEUED (default 100).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { appendFile } from "node:fs/promises"
import { Background, Server } from "../src/index.js"
import { env, isMain, launchOptions, serverOptions } from "./env.js"

const taskDelay = env.taskDelayMillis(50)

/** Limits of the supervisor, small enough to see a 503 by hand. */
export const supervisorOptions = {
  concurrency: env.number("CONCURRENCY", 16),
  maxQueued: env.number("MAX_QUEUED", 100)
}

let received = 0
let recorded = 0

const recordEvent = Effect.gen(function*() {
  yield* Effect.sleep(taskDelay)
  // Stands in for a call to an analytics service; `n` counts the events recorded so far.
  const n = ++recorded
  yield* Effect.promise(() => appendFile(env.logFile, `tracked ${n}\n`))
})

const busy = (reason: string) =>
  HttpServerResponse.json({ error: reason }, { status: 503, headers: { "retry-after": "1" } })

/** `POST /track` — 202 at once, or 503 with `Retry-After` when the supervisor cannot take more. */
export const track = Effect.suspend(() => Background.fork(recordEvent, `analytics #${++received}`)).pipe(
  Effect.zipRight(HttpServerResponse.json({ status: "accepted" }, { status: 202 })),
  Effect.catchTags({
    QueueFullError: (error) => busy(error.message),
    ShuttingDownError: (error) => busy(error.message)
  })
)

if (isMain(import.meta.url)) {
  const router = HttpRouter.empty.pipe(
    HttpRouter.get("/health", Server.health),
    HttpRouter.post("/track", track)
  )
  Server.launch(Server.app(router, { ...serverOptions, ...supervisorOptions }), launchOptions)
}
