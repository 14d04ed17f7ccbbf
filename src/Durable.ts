/**
 * Durable tasks: work that survives a crash, a deploy or a `kill -9`, and that many processes
 * share. A task is a name, a payload `Schema` and a handler; `enqueue` commits the payload to a
 * store (an embedded SQLite file, or PostgreSQL for many processes and machines) before it returns
 * the task's id, and workers — supervised jobs in the server's scope — take it, run it, retry it by
 * its schedule, and keep it as dead after its last attempt. Delivery is at least once: a process
 * that dies mid-task leaves its task to be taken again once its lease expires.
 *
 * Built on Effect's own persisted queue (`@effect/experimental`'s `PersistedQueue` with
 * `@effect/sql`'s SQL store).
 *
 * @since 0.3.0
 * @module
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import type { Background } from "./Background.js"
import * as requestTasks from "./internal/background/requestTasks.js"
import * as service from "./internal/background/service.js"
import { DurablePayloadError, DurableStoreError, type InvalidOptionError } from "./Errors.js"
import * as validate from "./internal/options.js"
import { currentRecord } from "./internal/report.js"
import * as enqueueInternal from "./internal/durable/enqueue.js"
import * as store from "./internal/durable/store.js"
import * as worker from "./internal/durable/worker.js"

/**
 * The store service, provided by {@link sqlite}, {@link postgres} or {@link layerStore}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * const where = Effect.map(Durable.DurableStore, (store) => store.description)
 * ```
 *
 * @since 0.3.0
 * @category tags
 */
export const DurableStore: typeof store.DurableStore = store.DurableStore

/**
 * The store service's type.
 *
 * @example
 * ```ts
 * import type * as Durable from "effect-background/Durable"
 *
 * const describe = (store: Durable.DurableStore) => `${store.dialect}: ${store.description}`
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type DurableStore = store.Store

/**
 * Where a durable task is: `pending` (waiting for a worker, or for its response to be written),
 * `scheduled` (not due yet), `running`, `retrying` (a failed attempt, waiting out its backoff or a
 * free worker), `done`, or `dead` (failed its last attempt, or its payload no longer decodes).
 *
 * @example
 * ```ts
 * import type * as Durable from "effect-background/Durable"
 *
 * const finished = (state: Durable.State) => state === "done" || state === "dead"
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type State = store.State

/**
 * A durable task's record in the store, as {@link status} and {@link listDead} return it.
 *
 * @example
 * ```ts
 * import type * as Durable from "effect-background/Durable"
 *
 * const line = (task: Durable.TaskStatus) =>
 *   `${task.name} ${task.id}: ${task.state} after ${task.attempts} attempts${task.lastFailure ? ` (${task.lastFailure})` : ""}`
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface TaskStatus {
  readonly id: string
  readonly name: string
  readonly state: State
  /** Attempts that have ended (a run cut off by its process dying is not counted). */
  readonly attempts: number
  /** The last failed attempt's cause, as text. */
  readonly lastFailure: string | null
  /** The payload as stored (encoded by the task's schema). */
  readonly payload: unknown
}

/**
 * What a run knows of its task: its id, its name and the attempt (1 for the first).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as Durable from "effect-background/Durable"
 *
 * const note = (info: Durable.RunInfo) => Effect.log(`${info.name} ${info.id}, attempt ${info.attempt}`)
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type RunInfo = worker.RunInfo

/**
 * Options of {@link task}; checked when {@link layer} is built.
 *
 * @example
 * ```ts
 * import { Effect, Schedule, Schema } from "effect"
 * import type * as Durable from "effect-background/Durable"
 *
 * const options: Durable.TaskOptions<{ readonly email: string }, { readonly email: string }, never, never> = {
 *   payload: Schema.Struct({ email: Schema.String }),
 *   run: ({ email }) => Effect.log(`sending to ${email}`),
 *   maxAttempts: 5,
 *   retry: Schedule.exponential("1 second"),
 *   concurrency: 4,
 *   timeout: "30 seconds"
 * }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface TaskOptions<A, I, E, R> {
  /** The payload's schema: only the encoded payload is stored, never a closure. */
  readonly payload: Schema.Schema<A, I, never>
  /** The handler. It may run more than once for one task (at least once): make it idempotent. */
  readonly run: (payload: A, info: RunInfo) => Effect.Effect<unknown, E, R>
  /** Attempts before the task is kept as dead. Default 5. */
  readonly maxAttempts?: number | undefined
  /**
   * The delay before each retry (its input is the attempt's index); when the schedule ends, the task
   * is dead. Default: exponential from 1 second, doubling, at most 5 minutes apart.
   */
  readonly retry?: Schedule.Schedule<unknown, number> | undefined
  /** How many tasks of this type one process runs at once. Default 1. */
  readonly concurrency?: number | undefined
  /** The longest one attempt may take; a run past it fails (and is retried). Default none. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * A durable task type: a name, a payload schema and a handler. Define it once, give it to
 * {@link layer} in the processes that run it, and {@link enqueue} it anywhere.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * declare const SendEmail: Durable.Task<{ readonly to: string }, { readonly to: string }, never, never>
 * const payloadOf: Schema.Schema<{ readonly to: string }> = SendEmail.options.payload
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Task<A, I, E, R> {
  readonly _tag: "DurableTask"
  readonly name: string
  readonly options: TaskOptions<A, I, E, R>
}

/**
 * Any task type, whatever its payload, errors and requirements.
 *
 * @example
 * ```ts
 * import type * as Durable from "effect-background/Durable"
 *
 * const names = (tasks: ReadonlyArray<Durable.AnyTask>) => tasks.map((task) => task.name)
 * ```
 *
 * @since 0.3.0
 * @category models
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any: the payload type is invariant (run takes it, the schema gives it), so no one type covers every task
export type AnyTask = Task<any, any, any, any>

/**
 * Defines a durable task type. Nothing is checked or started here: {@link layer} checks the options
 * when it is built.
 *
 * @example
 * ```ts
 * import { Effect, Schedule, Schema } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * export const SendWelcome = Durable.task("send-welcome", {
 *   payload: Schema.Struct({ email: Schema.String }),
 *   run: ({ email }, { attempt }) => Effect.log(`welcome mail to ${email} (attempt ${attempt})`),
 *   maxAttempts: 8,
 *   retry: Schedule.exponential("2 seconds")
 * })
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const task = <A, I, E = never, R = never>(name: string, options: TaskOptions<A, I, E, R>): Task<A, I, E, R> => ({
  _tag: "DurableTask",
  name,
  options
})

/** The default retry: exponential from 1 second, doubling, capped at 5 minutes apart. */
const defaultRetry: Schedule.Schedule<unknown, number> = Schedule.exponential("1 second", 2).pipe(
  Schedule.union(Schedule.spaced("5 minutes")),
  Schedule.map(([, n]) => n)
)

const TASK_EXAMPLE = "send-welcome"

const checkTask = (given: AnyTask, index: number): Effect.Effect<worker.WorkerSpec<unknown, unknown>, InvalidOptionError> => {
  const at = (option: string) => `tasks[${index}].${option}`
  const options: Partial<TaskOptions<unknown, unknown, unknown, unknown>> =
    typeof given === "object" && given !== null && typeof given.options === "object" && given.options !== null
      ? given.options
      : {}
  const retry = validate.orDefault(options.retry, defaultRetry)
  return Effect.map(
    validate.all({
      name: validate.name(at("name"), given?.name, TASK_EXAMPLE),
      payload: Schema.isSchema(options.payload)
        ? Effect.succeed(options.payload)
        : validate.invalid(at("payload"), options.payload, "a Schema (e.g. Schema.Struct({ email: Schema.String }))"),
      run: typeof options.run === "function"
        ? Effect.succeed(options.run)
        : validate.invalid(at("run"), options.run, "a function from the payload to an Effect"),
      maxAttempts: validate.count(at("maxAttempts"), validate.orDefault(options.maxAttempts, 5), 1, 5),
      retry: Schedule.isSchedule(retry)
        ? Effect.succeed(retry as Schedule.Schedule<unknown, unknown>)
        : validate.invalid(at("retry"), retry, "a Schedule (e.g. Schedule.exponential(\"1 second\"))"),
      concurrency: validate.count(at("concurrency"), validate.orDefault(options.concurrency, 1), 1, 4),
      timeout: options.timeout === undefined
        ? Effect.succeed(undefined)
        : validate.duration(at("timeout"), options.timeout, "positive", validate.NODE_TIMER_MAX_MILLIS)
    }),
    (checked) => ({
      name: checked.name,
      decode: Schema.decodeUnknown(checked.payload),
      run: checked.run,
      maxAttempts: checked.maxAttempts,
      retry: checked.retry,
      concurrency: checked.concurrency,
      timeout: checked.timeout
    })
  )
}

/** The requirements of a task type's handler. */
type Requirements<T> = T extends Task<infer _A, infer _I, infer _E, infer R> ? R : never

/**
 * Runs the given task types in this process: for each, `concurrency` workers, as one job of the
 * `Background` supervisor (named `durable <name>`). At shutdown, workers stop taking tasks; running
 * ones get the grace period, and those still running then are released to the store for the next
 * process (counted as released in the shutdown report, not failed). Options are checked when the
 * layer is built. A process that only runs tasks (no HTTP) builds this layer with a store and a
 * supervisor, and nothing else, and runs it with `Server.launch`. Provide the store last, as
 * below (with `Server.app`, to its result): it is then built first and released after the
 * supervisor, so the tasks the grace cuts off can still be handed back to it.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { Background, Server } from "effect-background"
 * import * as Durable from "effect-background/Durable"
 *
 * const Resize = Durable.task("resize", {
 *   payload: Schema.Struct({ image: Schema.String }),
 *   run: ({ image }) => Effect.log(`resizing ${image}`),
 *   concurrency: 2
 * })
 *
 * export const Workers = Durable.layer([Resize]).pipe(
 *   Layer.provide(Background.layer()),
 *   Layer.provide(Durable.sqlite({ filename: "./data/tasks.sqlite" }))
 * )
 * // Server.launch(Workers): SIGTERM stops taking, gives running tasks the grace, prints the report
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = <const Tasks extends ReadonlyArray<AnyTask>>(
  tasks: Tasks
): Layer.Layer<never, InvalidOptionError, Background | store.DurableStore | Exclude<Requirements<Tasks[number]>, Scope.Scope>> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      if (!Array.isArray(tasks)) {
        return yield* validate.invalid("tasks", tasks, "an array of tasks made with Durable.task")
      }
      const specs = yield* validate.all(Object.fromEntries(tasks.map((given, index) => [String(index), checkTask(given, index)])))
      const list = Object.values(specs) as Array<worker.WorkerSpec<unknown, unknown>>
      const duplicate = list.find((spec, index) => list.findIndex((other) => other.name === spec.name) !== index)
      if (duplicate !== undefined) {
        return yield* validate.invalid("tasks", duplicate.name, "task types with different names (each name once)")
      }
      const durable = yield* store.DurableStore
      const record = yield* currentRecord
      record.durableWorkers(() => durable.stats)
      for (const spec of list) {
        yield* service.startJob(`durable ${spec.name}`, "daemon", (supervisor) => worker.loop(supervisor, durable, spec)).pipe(
          Effect.catchTag("ShuttingDownError", Effect.die)
        )
      }
      // the metrics' count of the store by name and state, until the layer is released
      yield* Effect.forkScoped(worker.countLoop(durable))
    })
  ) as Layer.Layer<never, InvalidOptionError, Background | store.DurableStore | Exclude<Requirements<Tasks[number]>, Scope.Scope>>

/**
 * Options of {@link enqueue}.
 *
 * @example
 * ```ts
 * import type * as Durable from "effect-background/Durable"
 *
 * const once: Durable.EnqueueOptions = { key: "welcome:ada@example.com" }
 * const later: Durable.EnqueueOptions = { runIn: "10 minutes" }
 * const now: Durable.EnqueueOptions = { afterResponse: false }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface EnqueueOptions {
  /**
   * An idempotency key: a second enqueue of the same task type with the same key stores nothing
   * and returns the first one's id (for as long as the first one is in the store, done or not).
   */
  readonly key?: string | undefined
  /** Runs the task no sooner than this long from now (by the store's clock). */
  readonly runIn?: Duration.DurationInput | undefined
  /** Runs the task no sooner than this date. */
  readonly runAt?: Date | undefined
  /**
   * In a request's handler (served by `Server.serve` or with `BackgroundTasks.middleware`), a task
   * is committed at once but held until the response has been written, as `BackgroundTasks.add`
   * does: the default there. `false` makes it available at once; outside a handler it always is.
   */
  readonly afterResponse?: boolean | undefined
}

/**
 * Commits a task to the store and returns its id. A handler that answers 2xx after it has its task
 * on disk. Inside `sql.withTransaction` on the store's own `SqlClient`, the task joins the
 * transaction: it exists if and only if the handler's writes commit. In a request's handler the
 * task runs after the response is written (see {@link EnqueueOptions}); with `runIn`/`runAt`, at
 * that time. Fails with `DurableStoreError` when the store cannot commit it (nothing is
 * half-written: answer 503), `DurablePayloadError` for a payload its schema refuses, and
 * `InvalidOptionError` for a bad option.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect, Schema } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * const SendWelcome = Durable.task("send-welcome", {
 *   payload: Schema.Struct({ email: Schema.String }),
 *   run: ({ email }) => Effect.log(`welcome mail to ${email}`)
 * })
 *
 * export const signup = (email: string) =>
 *   Durable.enqueue(SendWelcome, { email }, { key: `welcome:${email}` }).pipe(
 *     Effect.flatMap((id) => HttpServerResponse.json({ id }, { status: 202 })),
 *     Effect.catchTag("DurableStoreError", () => HttpServerResponse.text("try again later", { status: 503 }))
 *   )
 * ```
 *
 * @since 0.3.0
 * @category enqueueing
 */
export const enqueue = <A, I, E, R>(
  task: Task<A, I, E, R>,
  payload: A,
  options: EnqueueOptions = {}
): Effect.Effect<string, DurableStoreError | DurablePayloadError | InvalidOptionError, store.DurableStore> =>
  enqueueInternal.enqueue(task, payload, options, heldByRequest)

/**
 * Where an enqueue in a request's handler is held until its response is written: a request served
 * through the middleware whose response is still to come (`BackgroundTasks.add` would accept).
 */
const heldByRequest: enqueueInternal.Hold = Effect.gen(function*() {
  const request = yield* Effect.serviceOption(HttpServerRequest.HttpServerRequest)
  return Option.isSome(request) && (yield* requestTasks.canAddHere) ? requestTasks.onWrittenHere : undefined
})

/**
 * A task's record, by the id {@link enqueue} returned: `Option.none()` when the store has none
 * (never enqueued, rolled back, or discarded). The "202 + status URL" pattern.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect, Option } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * export const taskRoute = (id: string) =>
 *   Durable.status(id).pipe(
 *     Effect.flatMap(Option.match({
 *       onNone: () => HttpServerResponse.text("no such task", { status: 404 }),
 *       onSome: (task) => HttpServerResponse.json({ id: task.id, state: task.state, attempts: task.attempts })
 *     }))
 *   )
 * ```
 *
 * @since 0.3.0
 * @category observing
 */
export const status = (id: string): Effect.Effect<Option.Option<TaskStatus>, DurableStoreError, store.DurableStore> =>
  Effect.flatMap(store.DurableStore, (durable) =>
    Effect.map(durable.find(id), (row) => Option.map(Option.fromNullable(row), toStatus)))

const toStatus = (row: store.Row): TaskStatus => {
  let payload: unknown = undefined
  try {
    payload = (JSON.parse(row.element) as { payload?: unknown }).payload
  } catch {
    payload = row.element
  }
  return { id: row.id, name: row.name, state: row.state, attempts: row.attempts, lastFailure: row.lastFailure, payload }
}

/**
 * Dead tasks, newest first: all of them, or one task type's (at most `limit`, default 100).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * export const deadLetters = Durable.listDead({ name: "send-welcome", limit: 20 }).pipe(
 *   Effect.tap((dead) => Effect.forEach(dead, (task) => Effect.log(`${task.id}: ${task.lastFailure}`)))
 * )
 * ```
 *
 * @since 0.3.0
 * @category observing
 */
export const listDead = (
  options: { readonly name?: string | undefined; readonly limit?: number | undefined } = {}
): Effect.Effect<ReadonlyArray<TaskStatus>, DurableStoreError | InvalidOptionError, store.DurableStore> =>
  Effect.gen(function*() {
    const limit = yield* validate.count("limit", validate.orDefault(options.limit, 100), 1, 100)
    const durable = yield* store.DurableStore
    return (yield* durable.listDead(options.name, limit)).map(toStatus)
  })

/**
 * How many tasks of each type the store holds in each state (done ones not counted), across every
 * process that shares it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * export const backlog = Effect.map(Durable.counts, (counts) =>
 *   counts.filter((entry) => entry.state === "pending").reduce((sum, entry) => sum + entry.count, 0))
 * ```
 *
 * @since 0.3.0
 * @category observing
 */
export const counts: Effect.Effect<
  ReadonlyArray<{ readonly name: string; readonly state: State; readonly count: number }>,
  DurableStoreError,
  store.DurableStore
> = Effect.flatMap(store.DurableStore, (durable) => durable.counts)

/**
 * Makes a dead task pending again, with its attempts reset: it runs as soon as a worker is free.
 * Returns `false` when no dead task has that id.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * export const retryAllDead = Durable.listDead().pipe(
 *   Effect.flatMap((dead) => Effect.forEach(dead, (task) => Durable.retry(task.id)))
 * )
 * ```
 *
 * @since 0.3.0
 * @category dead tasks
 */
export const retry = (id: string): Effect.Effect<boolean, DurableStoreError, store.DurableStore> =>
  Effect.flatMap(store.DurableStore, (durable) => durable.retryDead(id))

/**
 * Deletes a dead task from the store. Returns `false` when no dead task has that id.
 *
 * @example
 * ```ts
 * import * as Durable from "effect-background/Durable"
 *
 * export const dropPoison = (id: string) => Durable.discard(id)
 * ```
 *
 * @since 0.3.0
 * @category dead tasks
 */
export const discard = (id: string): Effect.Effect<boolean, DurableStoreError, store.DurableStore> =>
  Effect.flatMap(store.DurableStore, (durable) => durable.discard(id))

/**
 * Options shared by every store.
 *
 * @example
 * ```ts
 * import type * as Durable from "effect-background/Durable"
 *
 * const options: Durable.StoreOptions = { lease: "30 seconds", pollInterval: "200 millis" }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface StoreOptions {
  /** The table (created if missing): a plain SQL name of at most 52 characters. Default `"effect_queue"`. */
  readonly table?: string | undefined
  /** How often idle workers look for new tasks: the longest pickup delay. Default 250 ms. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * How long a worker's hold on a task lasts without being renewed (running tasks renew it): after
   * a crash, its tasks run again this long after their last renewal. Default 30 seconds.
   */
  readonly lease?: Duration.DurationInput | undefined
}

/**
 * At most 52 characters: the store names its indexes after the table (`idx_<table>_update`, the
 * longest), and PostgreSQL cuts names at 63, so two longer tables could share an index name.
 */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,51}$/

const checkStoreOptions = (options: StoreOptions | undefined, example: string) =>
  Effect.flatMap(validate.record("options", options, example), (given) => {
    const table = validate.orDefault(given.table, "effect_queue")
    return validate.all({
      table: typeof table === "string" && TABLE_NAME.test(table)
        ? Effect.succeed(table)
        : validate.invalid("table", given.table, "a plain SQL table name of at most 52 characters (e.g. \"effect_queue\")"),
      pollInterval: validate.duration("pollInterval", validate.orDefault(given.pollInterval, "250 millis"), "positive", validate.NODE_TIMER_MAX_MILLIS),
      lockExpiration: validate.duration("lease", validate.orDefault(given.lease, "30 seconds"), "positive", validate.NODE_TIMER_MAX_MILLIS)
    })
  })

/** What the store layers share once their client is made: the store on it, and both in context. */
const withStore = (
  client: SqlClient.SqlClient,
  settings: store.StoreSettings
): Effect.Effect<Context.Context<store.DurableStore | SqlClient.SqlClient>, DurableStoreError, Scope.Scope> =>
  Effect.map(
    store.make(settings).pipe(Effect.provideService(SqlClient.SqlClient, client)),
    (durable) => Context.make(store.DurableStore, durable).pipe(Context.add(SqlClient.SqlClient, client))
  )

/**
 * The store on a `SqlClient` you provide (SQLite or PostgreSQL): for an app that already has one,
 * so that its writes and its enqueues share transactions. `description` names the store in errors.
 *
 * @example
 * ```ts
 * import { SqlClient } from "@effect/sql"
 * import { Layer } from "effect"
 * import * as Durable from "effect-background/Durable"
 *
 * declare const AppSql: Layer.Layer<SqlClient.SqlClient>
 * export const Store = Durable.layerStore({ description: "app database" }).pipe(Layer.provide(AppSql))
 * ```
 *
 * @since 0.3.0
 * @category stores
 */
export const layerStore = (
  options: StoreOptions & { readonly description?: string | undefined } = {}
): Layer.Layer<store.DurableStore, DurableStoreError | InvalidOptionError, SqlClient.SqlClient> =>
  Layer.unwrapEffect(
    Effect.map(checkStoreOptions(options, "{ lease: \"30 seconds\" }"), (checked) =>
      Layer.scoped(store.DurableStore, store.make({ ...checked, description: options.description ?? "sql" })))
  )

/**
 * Options of {@link sqlite}.
 *
 * @example
 * ```ts
 * import type * as Durable from "effect-background/Durable"
 *
 * const options: Durable.SqliteOptions = { filename: "./data/tasks.sqlite", lease: "1 minute" }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface SqliteOptions extends StoreOptions {
  /** The database file (its folder is created). Default `"./data/tasks.sqlite"`. */
  readonly filename?: string | undefined
}

/** The driver's module could not be loaded: it is an optional peer, installed by those who use it. */
const missingDriver = (store: string, install: string) => (cause: unknown) =>
  new DurableStoreError({
    store,
    operation: "connect",
    reason: `could not load its driver: install ${install} (${cause instanceof Error ? cause.message : String(cause)})`
  })

/**
 * The embedded store: one SQLite file, no set-up (what `npm start` uses). It also provides the
 * `SqlClient` on that file, for the app's own tables and transactional enqueues. One process (or
 * several on one machine) at a time; for many machines, use {@link postgres}. Needs
 * `@effect/sql-sqlite-node` 0.53 (with better-sqlite3 12).
 *
 * @example
 * ```ts
 * import * as Durable from "effect-background/Durable"
 *
 * export const Store = Durable.sqlite({ filename: process.env.SQLITE_FILE ?? "./data/tasks.sqlite" })
 * ```
 *
 * @since 0.3.0
 * @category stores
 */
export const sqlite = (
  options: SqliteOptions = {}
): Layer.Layer<store.DurableStore | SqlClient.SqlClient, DurableStoreError | InvalidOptionError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const { checked, filename } = yield* validate.all({
        checked: checkStoreOptions(options, "{ filename: \"./data/tasks.sqlite\" }"),
        filename: validate.name("filename", validate.orDefault(options?.filename, "./data/tasks.sqlite"), "./data/tasks.sqlite")
      })
      const description = `sqlite:${filename}`
      const driver = yield* Effect.tryPromise({
        try: () => import("@effect/sql-sqlite-node/SqliteClient"),
        catch: missingDriver(description, "@effect/sql-sqlite-node@0.53 and better-sqlite3@12")
      })
      const client = yield* Effect.gen(function*() {
        if (filename !== ":memory:") mkdirSync(dirname(filename), { recursive: true })
        return yield* driver.make({ filename })
      }).pipe(
        Effect.provide(Reactivity.layer),
        Effect.catchAllDefect((defect) =>
          Effect.fail(new DurableStoreError({ store: description, operation: "connect", reason: store.reasonOf(defect) }))
        )
      )
      return yield* withStore(client, { ...checked, description })
    })
  )

/**
 * Options of {@link postgres}.
 *
 * @example
 * ```ts
 * import type * as Durable from "effect-background/Durable"
 *
 * const options: Durable.PostgresOptions = { url: "postgres://app@127.0.0.1:5432/app", maxConnections: 10 }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface PostgresOptions extends StoreOptions {
  /** A `postgres://` URL. */
  readonly url: string
  /** The pool's size. Default 10. */
  readonly maxConnections?: number | undefined
  /** How long to wait for a connection. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/** The URL as shown in errors and logs: its password replaced with `***`. */
const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@")
  }
}

/**
 * The PostgreSQL store: many processes on many machines share one queue (workers take tasks with
 * `FOR UPDATE SKIP LOCKED`). It also provides the `SqlClient` on that database, for the app's own
 * tables and transactional enqueues. Fails to build, with a `DurableStoreError` naming the server
 * (password redacted), when the database cannot be reached. Needs `@effect/sql-pg` 0.53.
 *
 * @example
 * ```ts
 * import * as Durable from "effect-background/Durable"
 *
 * export const Store = Durable.postgres({ url: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test" })
 * ```
 *
 * @since 0.3.0
 * @category stores
 */
export const postgres = (
  options: PostgresOptions
): Layer.Layer<store.DurableStore | SqlClient.SqlClient, DurableStoreError | InvalidOptionError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const given = yield* validate.record("options", options, "{ url: \"postgres://app@127.0.0.1:5432/app\" }")
      const { checked, connectTimeout, maxConnections, url } = yield* validate.all({
        checked: checkStoreOptions(options, "{ url: \"postgres://app@127.0.0.1:5432/app\" }"),
        url: typeof given.url === "string" && /^postgres(ql)?:\/\//.test(given.url)
          ? Effect.succeed(given.url)
          : validate.invalid("url", typeof given.url === "string" ? redactUrl(given.url) : given.url, "a postgres:// URL (e.g. \"postgres://app@127.0.0.1:5432/app\")"),
        maxConnections: validate.count("maxConnections", validate.orDefault(given.maxConnections, 10), 1, 10),
        connectTimeout: validate.duration("connectTimeout", validate.orDefault(given.connectTimeout, "5 seconds"), "positive", validate.NODE_TIMER_MAX_MILLIS)
      })
      const description = redactUrl(url)
      const driver = yield* Effect.tryPromise({
        try: () => import("@effect/sql-pg/PgClient"),
        catch: missingDriver(description, "@effect/sql-pg@0.53")
      })
      const client = yield* driver.make({ url: Redacted.make(url), maxConnections, connectTimeout }).pipe(
        Effect.provide(Reactivity.layer),
        Effect.catchAllCause((cause) =>
          Effect.fail(new DurableStoreError({ store: description, operation: "connect", reason: store.reasonOf(Cause.squash(cause)) }))
        )
      )
      return yield* withStore(client, { ...checked, description })
    })
  )
