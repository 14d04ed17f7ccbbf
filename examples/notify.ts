/**
 * Pattern: FastAPI `BackgroundTasks.add_task` — answer at once, send the notification after the
 * response has been written. Unlike a task left on the event loop, it is owned by the server: at
 * shutdown it gets GRACE_MS to finish, and past that it is interrupted and says so.
 *
 * Run: `npx tsx examples/notify.ts` then `curl -X POST 127.0.0.1:3000/send-notification/ada@example.com`.
 * Env: PORT, DRAIN_MS, GRACE_MS, TASK_DELAY_MS (default 0), LOG_FILE (default ./log.txt).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { appendFile } from "node:fs/promises"
import { BackgroundTasks, Server } from "../src/index.js"
import { env, isMain, launchOptions, serverOptions } from "./env.js"

const taskDelay = env.taskDelayMillis(0)

/**
 * How the address shows in task names, logs and the shutdown report: enough to tell which
 * notification was lost, not the whole address (`ada@example.com` → `a***@example.com`).
 */
export const masked = (email: string): string => email.replace(/^(.)[^@]*(@.*)?$/, (_, first: string, domain = "") => `${first}***${domain}`)

const writeNotification = (email: string, message: string) =>
  Effect.gen(function*() {
    yield* Effect.sleep(taskDelay)
    yield* Effect.promise(() => appendFile(env.logFile, `notification for ${email}: ${message}\n`))
  }).pipe(Effect.onInterrupt(() => Effect.logWarning(`notification for ${masked(email)} was not sent: interrupted`)))

/** `POST /send-notification/:email` — 200 at once; the notification is written after the response. */
export const sendNotification = Effect.gen(function*() {
  const { email = "" } = yield* HttpRouter.params
  yield* BackgroundTasks.add(writeNotification(email, "some notification"), { name: `notify ${masked(email)}` })
  return yield* HttpServerResponse.json({ message: "Notification sent in the background" })
})

if (isMain(import.meta.url)) {
  const router = HttpRouter.empty.pipe(
    HttpRouter.get("/health", Server.health),
    HttpRouter.post("/send-notification/:email", sendNotification)
  )
  Server.launch(Server.app(router, serverOptions), launchOptions)
}
