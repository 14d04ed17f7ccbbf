/**
 * Pattern: FastAPI `BackgroundTasks.add_task` — answer at once, send the notification after the
 * response has been written.
 *
 * Run: `npx tsx examples/notify.ts` then `curl -X POST 127.0.0.1:3000/send-notification/ada@example.com`.
 * Env: PORT, DRAIN_MS, GRACE_MS, TASK_DELAY_MS (default 0), LOG_FILE (default ./log.txt).
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { appendFile } from "node:fs/promises"
import { BackgroundTasks, Server } from "../src/index.js"
import { env, serverOptions } from "./env.js"

const taskDelay = env.taskDelayMillis(0)

const writeNotification = (email: string, message: string) =>
  Effect.gen(function*() {
    yield* Effect.sleep(taskDelay)
    yield* Effect.promise(() => appendFile(env.logFile, `notification for ${email}: ${message}\n`))
  })

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/health", Server.health),
  HttpRouter.post(
    "/send-notification/:email",
    Effect.gen(function*() {
      const { email } = yield* HttpRouter.params
      yield* BackgroundTasks.add(writeNotification(email ?? "", "some notification"), {
        name: `notify ${email}`
      })
      return yield* HttpServerResponse.json({ message: "Notification sent in the background" })
    })
  )
)

Server.launch(Server.app(router, serverOptions))
