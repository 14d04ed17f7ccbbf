/**
 * Pattern: a long-running loop that lives as long as the server — what FastAPI code does with a
 * thread started before `uvicorn.run`, an `asyncio.create_task` loop in the lifespan, or a `sched`
 * scheduler that re-enters itself every few seconds. Here it is a daemon owned by the server: it
 * starts with the server, is restarted with backoff if it fails, and at shutdown is interrupted
 * with its finalizer run.
 *
 * Run: `npx tsx examples/daemon.ts`, watch `Hello` every 5 s, then press Ctrl-C.
 * Env: PORT, DRAIN_MS, GRACE_MS, INTERVAL_MS (default 5000).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { Background, Server } from "../src/index.js"
import { env, isMain, launchOptions, serverOptions } from "./env.js"

const hello = Effect.gen(function*() {
  // A daemon runs in its own scope, so this finalizer runs when the server interrupts it.
  yield* Effect.addFinalizer(() => Effect.log("daemon stopped"))
  let count = 0
  yield* Effect.suspend(() => Effect.log(`Hello from the background (#${++count})`)).pipe(
    Effect.repeat(Schedule.spaced(env.intervalMillis))
  )
})

/** The `hello` daemon as a layer, ready to pass as `jobs`. */
export const helloDaemon = Background.daemon(hello, { name: "hello", restart: Schedule.exponential("200 millis") })

if (isMain(import.meta.url)) {
  const router = HttpRouter.empty.pipe(HttpRouter.get("/health", Server.health))
  Server.launch(Server.app(router, { ...serverOptions, jobs: helloDaemon }), launchOptions)
}
