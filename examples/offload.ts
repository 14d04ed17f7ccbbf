/**
 * Pattern: `asyncio.to_thread` / greenletio — move CPU-heavy and blocking calls off the event loop
 * so every other request keeps flowing, with timeouts that really stop the work.
 *
 * Run: `npx tsx examples/offload.ts`, then
 *   curl 127.0.0.1:3000/cpu?n=1000000              (offloaded, the server stays responsive)
 *   curl 127.0.0.1:3000/cpu-inline?n=1000000       (same work on the event loop: /ping stalls)
 *   curl "127.0.0.1:3000/cpu?n=500000000&timeoutMs=100"   (504, and the thread is freed at once)
 *   curl 127.0.0.1:3000/io                          (a blocking sync call through Offload.blocking)
 * Env: PORT, DRAIN_MS, GRACE_MS, OFFLOAD_THREADS (default: cores - 1, at least 1), OFFLOAD_SPARE
 * (1, the default: a spare thread takes over at once from one terminated by a timeout; 0: none).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as os from "node:os"
import { threadId } from "node:worker_threads"
import { Offload, Server } from "../src/index.js"
import { env, isMain, launchOptions, serverOptions } from "./env.js"
import { Crunch } from "./workers/cpu.tasks.js"
import { crunch } from "./workers/crunch.js"

const threads = env.number("OFFLOAD_THREADS", Math.max(1, os.availableParallelism() - 1))

const Query = Schema.Struct({
  n: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 1_000_000_000)), {
    default: () => 1_000_000
  }),
  timeoutMs: Schema.optional(Schema.NumberFromString.pipe(Schema.positive()))
})

const badRequest = (error: { readonly message: string }) =>
  HttpServerResponse.unsafeJson({ error: error.message }, { status: 400 })

const cpu = Effect.gen(function*() {
  const { n, timeoutMs } = yield* HttpServerRequest.schemaSearchParams(Query)
  yield* Effect.log(`crunching n=${n} on a worker thread`)
  const work = Offload.run(Crunch, { n })
  const output = yield* timeoutMs === undefined ? work : Effect.timeout(work, timeoutMs)
  return HttpServerResponse.unsafeJson(output)
}).pipe(
  Effect.catchTags({
    ParseError: (error) => Effect.succeed(badRequest(error)),
    TimeoutException: () => Effect.succeed(HttpServerResponse.unsafeJson({ error: "timed out; the task was cancelled" }, { status: 504 })),
    QueueFullError: () =>
      Effect.succeed(HttpServerResponse.unsafeJson({ error: "busy" }, { status: 503, headers: { "retry-after": "1" } }))
  })
)

const cpuInline = Effect.gen(function*() {
  const { n } = yield* HttpServerRequest.schemaSearchParams(Query)
  return HttpServerResponse.unsafeJson({ n, result: crunch(n), thread: threadId })
}).pipe(Effect.catchTag("ParseError", (error) => Effect.succeed(badRequest(error))))

// A key derivation is a typical blocking call: 100k rounds of PBKDF2, synchronously.
const io = Offload.blocking(
  ({ crypto }, password: string) => crypto.pbkdf2Sync(password, "salt", 100_000, 32, "sha256").toString("hex"),
  "correct horse battery staple",
  { name: "pbkdf2" }
).pipe(Effect.map((key) => HttpServerResponse.unsafeJson({ key })))

export const offloadRoutes = HttpRouter.empty.pipe(
  HttpRouter.get("/ping", HttpServerResponse.text("pong")),
  HttpRouter.get("/cpu", cpu),
  HttpRouter.get("/cpu-inline", cpuInline),
  HttpRouter.get("/io", io)
)

export const OffloadLive = Offload.layer({
  module: new URL("./workers/cpu.worker.ts", import.meta.url),
  minThreads: threads,
  maxThreads: threads,
  maxQueued: 256,
  // After a timeout terminates a thread, the next task runs on the spare instead of waiting
  // for a new thread to load this module.
  spareThread: env.number("OFFLOAD_SPARE", 1) !== 0
})

// Launch only when run directly (examples/server.ts imports the routes and the pool).
if (isMain(import.meta.url)) {
  const router = offloadRoutes.pipe(HttpRouter.get("/health", Server.health))
  Server.launch(Server.app(router, serverOptions).pipe(Layer.provide(OffloadLive)), launchOptions)
}
