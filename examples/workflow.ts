/**
 * Pattern: a multi-step durable flow — reserve stock, charge, ship — with `@effect/workflow` on
 * `@effect/cluster`'s single-node engine, over the same embedded SQLite a durable task uses. Each
 * step (an `Activity`) records its result in the store, so a flow cut off by a crash resumes, when
 * the process starts again, after its last completed step: a restart does not charge twice.
 * Compare with a durable task (examples/durable.ts), which is one step run at least once.
 *
 * Run: `npx tsx examples/workflow.ts`, then `curl -X POST 127.0.0.1:3000/orders/o-1` (202 with the
 * flow's id) and `curl 127.0.0.1:3000/orders/o-1` (its state).
 * Env: PORT, LOG_FILE (each step appends `<step> <order>`), SQLITE_FILE (default
 * ./data/workflows.sqlite), CRASH_AFTER=<step> (the process exits with code 9 right after that
 * step: a crash, to restart from).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Activity from "@effect/workflow/Activity"
import * as Workflow from "@effect/workflow/Workflow"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { mkdirSync } from "node:fs"
import { appendFile } from "node:fs/promises"
import { dirname } from "node:path"
import { Server } from "../src/index.js"
import { env, isMain, launchOptions, serverOptions } from "./env.js"

const sqliteFile = process.env.SQLITE_FILE ?? "./data/workflows.sqlite"
const crashAfter = process.env.CRASH_AFTER

export const PlaceOrder = Workflow.make({
  name: "place-order",
  payload: { orderId: Schema.String },
  // One flow per order, however often it is started.
  idempotencyKey: ({ orderId }) => orderId
})

/** One step: its side effect (a line in LOG_FILE), then, for the crash demo, maybe a crash. */
const step = (name: string, orderId: string) =>
  Activity.make({
    name,
    execute: Effect.promise(() => appendFile(env.logFile, `${name} ${orderId}\n`))
  }).pipe(
    Effect.zipRight(Effect.sync(() => {
      if (crashAfter === name) process.exit(9)
    }))
  )

export const PlaceOrderLive = PlaceOrder.toLayer(({ orderId }) =>
  Effect.gen(function*() {
    yield* step("reserve", orderId)
    yield* step("charge", orderId)
    yield* step("ship", orderId)
  })
)

/** The workflow engine on one node, its messages and results in SQLite. */
export const WorkflowEngineLive = ClusterWorkflowEngine.layer.pipe(
  Layer.provideMerge(SingleRunner.layer({ runnerStorage: "memory" })),
  Layer.provide(Layer.suspend(() => {
    mkdirSync(dirname(sqliteFile), { recursive: true })
    return SqliteClient.layer({ filename: sqliteFile })
  }))
)

const executionId = (orderId: string) => PlaceOrder.executionId({ orderId })

export const workflowRoutes = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/orders/:id",
    Effect.gen(function*() {
      const { id = "" } = yield* HttpRouter.params
      // Recorded before the 202; `discard` returns without waiting for the flow to finish.
      const execution = yield* PlaceOrder.execute({ orderId: id }, { discard: true })
      return yield* HttpServerResponse.json({ execution }, { status: 202 })
    })
  ),
  HttpRouter.get(
    "/orders/:id",
    Effect.gen(function*() {
      const { id = "" } = yield* HttpRouter.params
      const result = yield* PlaceOrder.poll(yield* executionId(id))
      // undefined until the engine has started it; then Complete, or Suspended while it waits
      return yield* HttpServerResponse.json({
        state: result === undefined ? "pending" : result._tag === "Complete" ? "done" : "running"
      })
    })
  )
)

if (isMain(import.meta.url)) {
  Server.launch(
    Server.app(workflowRoutes, serverOptions).pipe(
      Layer.provide(PlaceOrderLive),
      Layer.provide(WorkflowEngineLive)
    ),
    launchOptions
  )
}
