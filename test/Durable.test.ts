/**
 * Durable tasks on both stores: an SQLite file per test, and a table per test on a real PostgreSQL
 * (skipped, saying so, where there is none). Time is the database's own clock (SQLite's to the
 * second), so tests wait for outcomes by polling a task's status, bounded, and never assert how
 * long anything took. Work is sequenced with Deferreds and queues; where a test shows that
 * something does not happen, it leaves a window of many poll intervals for it to happen wrongly.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  type Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  Redacted,
  Schedule,
  Schema,
  Scope
} from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  Background,
  Durable,
  DurablePayloadError,
  DurableStoreError,
  InvalidOptionError,
  Server
} from "../src/index.js"
import { retryDelay } from "../src/internal/durable/worker.js"
import { ShutdownRecord, ShutdownRecorder } from "../src/internal/report.js"
import { request } from "./support/http-client.js"
import { captureLogs, type Logs, startApp } from "./support/http-server.js"
import { describePostgres, postgresUrl, uniqueTable } from "./support/postgres.js"
import { makeRecordingTracer } from "./support/unit-harness.js"

// ---------------------------------------------------------------------------------------------
// Stores

/** The store's service, as a requirement (`Durable.DurableStore` the type names the service's shape). */
type StoreService = Context.Tag.Identifier<typeof Durable.DurableStore>

type StoreLayer = Layer.Layer<StoreService | SqlClient.SqlClient, DurableStoreError | InvalidOptionError>

interface StoreTuning {
  readonly lease?: Duration.DurationInput
  readonly pollInterval?: Duration.DurationInput
}

/** This test's own store (a file, or a table no other test uses); each `layer()` is a new client on it. */
interface Fixture {
  readonly kind: "sqlite" | "postgres"
  readonly layer: (tuning?: StoreTuning) => StoreLayer
  /** A client of the application's own on the same database, for `Durable.layerStore`. */
  readonly client: Layer.Layer<SqlClient.SqlClient, unknown>
  /** The store's table, for `Durable.layerStore`. */
  readonly table: string
  /** A table name for the application's own rows, dropped at the end. */
  readonly appTable: string
}

const LEASE = "2 seconds"
const POLL = "20 millis"

const sqliteFixture: Effect.Effect<Fixture, never, Scope.Scope> = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "durable-test-"))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )
  const filename = join(dir, "tasks.sqlite")
  return {
    kind: "sqlite",
    layer: (tuning = {}) => Durable.sqlite({ filename, lease: LEASE, pollInterval: POLL, ...tuning }),
    client: SqliteClient.layer({ filename }),
    table: "effect_queue",
    appTable: "signups"
  }
})

/** Runs `f` with a client of its own on `url` (for the tests' own tables and databases). */
const withPg = <A, E>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(url), maxConnections: 1 }), f)).pipe(
    Effect.provide(Reactivity.layer)
  )

const postgresFixture: Effect.Effect<Fixture, never, Scope.Scope> = Effect.gen(function*() {
  const table = uniqueTable("durable")
  const appTable = uniqueTable("app")
  yield* Effect.addFinalizer(() =>
    withPg(postgresUrl, (sql) =>
      Effect.zipRight(sql`DROP TABLE IF EXISTS ${sql(table)}`, sql`DROP TABLE IF EXISTS ${sql(appTable)}`)).pipe(
        Effect.ignore
      )
  )
  return {
    kind: "postgres",
    layer: (tuning = {}) => Durable.postgres({ url: postgresUrl, table, lease: LEASE, pollInterval: POLL, ...tuning }),
    client: PgClient.layer({ url: Redacted.make(postgresUrl), maxConnections: 4 }),
    table,
    appTable
  }
})

// ---------------------------------------------------------------------------------------------
// Workers

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any: the tests' task types differ in payload, and none needs a service
type TestTask = Durable.Task<any, any, any, never>

type Services = StoreService | SqlClient.SqlClient | Background.Background

interface Workers {
  readonly context: Context.Context<Services>
  readonly record: ShutdownRecord
  readonly use: <A, E>(effect: Effect.Effect<A, E, Services>) => Effect.Effect<A, E>
  /** Closes the workers' scope: the supervisor's shutdown, then the store's release. */
  readonly shutdown: Effect.Effect<void>
}

/**
 * Builds the store, a supervisor and the workers of `tasks` in a scope the test may close itself
 * (closed with the test's scope otherwise). The store is built first and so released last, after
 * the supervisor's shutdown, as in a process that runs `Server.app(…, { jobs: Durable.layer(…) })`
 * on a store it provides.
 */
const startWorkers = (store: StoreLayer, tasks: ReadonlyArray<TestTask>, options: Background.Options = {}) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const record = new ShutdownRecord()
    const layer = Durable.layer(tasks).pipe(
      Layer.provideMerge(Background.layer({ grace: "5 seconds", ...options })),
      Layer.provideMerge(store),
      Layer.provide(Layer.succeed(ShutdownRecorder, record))
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    const workers: Workers = {
      context,
      record,
      use: (effect) => Effect.provide(effect, context),
      shutdown: Scope.close(scope, Exit.void)
    }
    return workers
  })

/** Builds a store alone, with no workers, in a scope the test may close itself. */
const openStore = (store: StoreLayer) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const context = yield* Layer.buildWithScope(store, scope)
    return {
      context,
      use: <A, E>(effect: Effect.Effect<A, E, StoreService | SqlClient.SqlClient>) => Effect.provide(effect, context),
      close: Scope.close(scope, Exit.void)
    }
  })

// ---------------------------------------------------------------------------------------------
// Waiting

const WAIT_MILLIS = 30_000

/** Repeats `check` until it yields a value, for at most 30 s; then dies saying what never happened. */
const waitUntil = <A, E, R>(what: string, check: Effect.Effect<Option.Option<A>, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + WAIT_MILLIS
    while (Date.now() < deadline) {
      const found = yield* check
      if (Option.isSome(found)) return found.value
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.dieMessage(`never happened within ${WAIT_MILLIS / 1000} s: ${what}`)
  })

/** Waits, bounded, until an effect completes. */
const bounded = (what: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(self, { duration: WAIT_MILLIS, onTimeout: () => new Error(`never happened: ${what}`) })

/** Waits until the task is in one of `states` (bounded), and returns its status. */
const awaitState = (id: string, ...states: ReadonlyArray<Durable.State>) =>
  waitUntil(
    `task ${id} ${states.join(" or ")}`,
    Effect.map(Durable.status(id), Option.filter((task) => states.includes(task.state)))
  )

const stateOf = (id: string) => Effect.map(Durable.status(id), Option.map((task) => task.state))

/**
 * Room for something that must not happen to happen if it were going to: many poll intervals, and
 * more than one tick of SQLite's one-second clock.
 */
const WINDOW = "1200 millis"

/** A task type whose runs are recorded; `behave` decides each run's outcome. */
const recorded = <A, I>(
  name: string,
  payload: Schema.Schema<A, I>,
  behave: (payload: A, info: Durable.RunInfo) => Effect.Effect<unknown, unknown> = () => Effect.void,
  options: Omit<Durable.TaskOptions<A, I, unknown, never>, "payload" | "run"> = {}
) => {
  const runs: Array<{ readonly payload: A; readonly info: Durable.RunInfo }> = []
  const task = Durable.task(name, {
    ...options,
    payload,
    run: (value: A, info: Durable.RunInfo) =>
      Effect.suspend(() => {
        runs.push({ payload: value, info })
        return behave(value, info)
      })
  })
  return { task, runs }
}

const N = Schema.Struct({ n: Schema.Number })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

// ---------------------------------------------------------------------------------------------
// The cases, once for each store

const cases = (makeFixture: Effect.Effect<Fixture, never, Scope.Scope>) => {
  /** A live test with its own store, its logs captured (and printed if it fails). */
  const test = (name: string, body: (fixture: Fixture, logs: Logs) => Effect.Effect<void, unknown, Scope.Scope>) =>
    it.live(name, () => {
      const logs = captureLogs()
      return Effect.scoped(Effect.flatMap(makeFixture, (fixture) => body(fixture, logs))).pipe(
        Effect.provide(logs.layer),
        Effect.tapErrorCause(() =>
          Effect.sync(() => console.log(logs.entries.map((entry) => `${entry.level} ${entry.message} ${entry.cause}`).join("\n")))
        )
      )
    })

  test("a task runs once: its payload decoded, attempt 1, then done; the report counts it", (fixture) =>
    Effect.gen(function*() {
      const Greet = recorded("greet", Schema.Struct({ name: Schema.String, at: Schema.Date }))
      const workers = yield* startWorkers(fixture.layer(), [Greet.task])
      const at = new Date("2030-01-02T03:04:05.000Z")
      const id = yield* workers.use(Durable.enqueue(Greet.task, { name: "ada", at }))
      const done = yield* workers.use(awaitState(id, "done"))
      expect(done).toEqual({
        id,
        name: "greet",
        state: "done",
        attempts: 1,
        lastFailure: null,
        payload: { name: "ada", at: "2030-01-02T03:04:05.000Z" } // stored encoded
      })
      expect(Greet.runs).toEqual([{ payload: { name: "ada", at }, info: { id, name: "greet", attempt: 1 } }])
      // the queue moves on (a later task runs) and the first is not run again
      const later = yield* workers.use(Durable.enqueue(Greet.task, { name: "bob", at }))
      yield* workers.use(awaitState(later, "done"))
      expect(Greet.runs.map((run) => run.payload.name)).toEqual(["ada", "bob"])
      yield* workers.shutdown
      expect(workers.record.durable).toEqual({ done: 2, retried: 0, dead: 0, released: 0 })
      expect(workers.record.format(Date.now())).toContain("durable done=2 retried=0 dead=0 released=0")
    }))

  test("an idempotency key: the same key gives the same id, keeps the first payload and runs once", (fixture) =>
    Effect.gen(function*() {
      const Once = recorded("once", N)
      const Other = recorded("once-other", N)
      const workers = yield* startWorkers(fixture.layer(), [Once.task, Other.task])
      const first = yield* workers.use(Durable.enqueue(Once.task, { n: 1 }, { key: "signup:ada" }))
      const again = yield* workers.use(Durable.enqueue(Once.task, { n: 2 }, { key: "signup:ada" }))
      expect(again).toBe(first)
      yield* workers.use(awaitState(first, "done"))
      // still the same id once it is done, and nothing new is stored or run
      const afterDone = yield* workers.use(Durable.enqueue(Once.task, { n: 3 }, { key: "signup:ada" }))
      expect(afterDone).toBe(first)
      expect(Option.map(yield* workers.use(Durable.status(first)), (task) => task.payload)).toEqual(Option.some({ n: 1 }))
      // another task type's key is its own
      const other = yield* workers.use(Durable.enqueue(Other.task, { n: 4 }, { key: "signup:ada" }))
      expect(other).not.toBe(first)
      // a later unkeyed task runs after anything stored before it (one worker, oldest first)
      const sentinel = yield* workers.use(Durable.enqueue(Once.task, { n: 5 }))
      yield* workers.use(awaitState(sentinel, "done"))
      yield* workers.use(awaitState(other, "done"))
      expect(Once.runs.map((run) => run.payload.n)).toEqual([1, 5])
      expect(Other.runs.map((run) => run.payload.n)).toEqual([4])
      // a scheduled task's key too
      const later = yield* workers.use(Durable.enqueue(Once.task, { n: 6 }, { key: "reminder", runIn: "1 hour" }))
      const laterAgain = yield* workers.use(Durable.enqueue(Once.task, { n: 7 }, { key: "reminder", runIn: "1 minute" }))
      expect(laterAgain).toBe(later)
      expect(yield* workers.use(Durable.status(later))).toEqual(
        Option.some({ id: later, name: "once", state: "scheduled", attempts: 0, lastFailure: null, payload: { n: 6 } })
      )
    }))

  test("runIn and runAt: scheduled until their time, then run and done", (fixture) =>
    Effect.gen(function*() {
      const startedAt = new Map<string, number>()
      const Later = recorded("later", Schema.Struct({ label: Schema.String }), ({ label }) =>
        Effect.sync(() => startedAt.set(label, Date.now())))
      const workers = yield* startWorkers(fixture.layer(), [Later.task])
      const before = Date.now()
      const runIn = yield* workers.use(Durable.enqueue(Later.task, { label: "in" }, { runIn: "2 seconds" }))
      const runAt = new Date(Date.now() + 2_000)
      const at = yield* workers.use(Durable.enqueue(Later.task, { label: "at" }, { runAt }))
      const far = yield* workers.use(Durable.enqueue(Later.task, { label: "far" }, { runIn: "1 hour" }))
      const past = yield* workers.use(Durable.enqueue(Later.task, { label: "past" }, { runAt: new Date(Date.now() - 60_000) }))
      expect(yield* workers.use(stateOf(runIn))).toEqual(Option.some("scheduled"))
      expect(yield* workers.use(stateOf(at))).toEqual(Option.some("scheduled"))
      yield* workers.use(awaitState(past, "done"))
      yield* workers.use(awaitState(runIn, "done"))
      yield* workers.use(awaitState(at, "done"))
      expect(yield* workers.use(stateOf(far))).toEqual(Option.some("scheduled"))
      expect([...startedAt.keys()].sort()).toEqual(["at", "in", "past"])
      // not before their time, to the store clock's resolution (SQLite's is one second)
      expect(startedAt.get("in")!).toBeGreaterThanOrEqual(before + 2_000 - 1_000)
      expect(startedAt.get("at")!).toBeGreaterThanOrEqual(runAt.getTime() - 1_000)
    }))

  test("a failing task is retried by its schedule, seeing attempts 1, 2, 3, and ends done", (fixture) =>
    Effect.gen(function*() {
      const failedAt: Array<number> = []
      const Flaky = recorded("flaky", N, (_, { attempt }) =>
        attempt < 3
          ? Effect.suspend(() => {
            failedAt.push(Date.now())
            return Effect.fail(`failure ${attempt}`)
          })
          : Effect.void, { maxAttempts: 5, retry: Schedule.spaced("1 second") })
      const workers = yield* startWorkers(fixture.layer(), [Flaky.task])
      const id = yield* workers.use(Durable.enqueue(Flaky.task, { n: 1 }))
      const backingOff = yield* workers.use(awaitState(id, "retrying"))
      expect(backingOff).toMatchObject({ state: "retrying", attempts: 1 })
      expect(backingOff.lastFailure).toContain("failure 1")
      const done = yield* workers.use(awaitState(id, "done"))
      expect(done).toMatchObject({ state: "done", attempts: 3 })
      expect(Flaky.runs.map((run) => run.info.attempt)).toEqual([1, 2, 3])
      expect(Flaky.runs.every((run) => run.info.id === id)).toBe(true)
      // each retry waited out its backoff (1 second, to the store clock's resolution)
      const startedAt = failedAt.slice(1)
      startedAt.forEach((at, index) => expect(at).toBeGreaterThanOrEqual(failedAt[index]! + 1_000 - 1_000))
      yield* workers.shutdown
      expect(workers.record.durable).toEqual({ done: 1, retried: 2, dead: 0, released: 0 })
    }))

  test("after its last attempt a task is dead: listDead lists it, retry runs it again, discard deletes it", (fixture) =>
    Effect.gen(function*() {
      let healthy = false
      const Fragile = recorded("fragile", N, ({ n }, { attempt }) =>
        healthy ? Effect.void : Effect.fail(`broken ${n} on attempt ${attempt}`), {
        maxAttempts: 2,
        retry: Schedule.spaced("10 millis")
      })
      // a schedule that ends ends the attempts too, whatever maxAttempts says
      const Short = recorded("short-schedule", N, () => Effect.fail("still broken"), {
        maxAttempts: 10,
        retry: Schedule.recurs(1)
      })
      const workers = yield* startWorkers(fixture.layer(), [Fragile.task, Short.task])
      const a = yield* workers.use(Durable.enqueue(Fragile.task, { n: 1 }))
      const b = yield* workers.use(Durable.enqueue(Fragile.task, { n: 2 }))
      const c = yield* workers.use(Durable.enqueue(Short.task, { n: 3 }))
      const deadA = yield* workers.use(awaitState(a, "dead"))
      expect(deadA).toMatchObject({ state: "dead", attempts: 2, payload: { n: 1 } })
      expect(deadA.lastFailure).toContain("broken 1 on attempt 2")
      yield* workers.use(awaitState(b, "dead"))
      expect(yield* workers.use(awaitState(c, "dead"))).toMatchObject({ attempts: 2 })
      expect(Short.runs.map((run) => run.info.attempt)).toEqual([1, 2])

      const dead = yield* workers.use(Durable.listDead())
      expect(dead.map((task) => task.id).sort()).toEqual([a, b, c].sort())
      // newest first (b failed its last attempt after a: one worker, oldest first)
      expect((yield* workers.use(Durable.listDead({ name: "fragile" }))).map((task) => task.id)).toEqual([b, a])
      expect(yield* workers.use(Durable.listDead({ name: "nobody" }))).toEqual([])
      expect(yield* workers.use(Durable.listDead({ limit: 1 }))).toHaveLength(1)

      healthy = true
      expect(yield* workers.use(Durable.retry(a))).toBe(true)
      expect(yield* workers.use(awaitState(a, "done"))).toMatchObject({ state: "done", attempts: 1 })
      expect(Fragile.runs.filter((run) => run.payload.n === 1).map((run) => run.info.attempt)).toEqual([1, 2, 1])
      expect(yield* workers.use(Durable.retry(a))).toBe(false) // not dead any more

      expect(yield* workers.use(Durable.discard(b))).toBe(true)
      expect(yield* workers.use(Durable.status(b))).toEqual(Option.none())
      expect(yield* workers.use(Durable.discard(b))).toBe(false)
      expect(yield* workers.use(Durable.retry(b))).toBe(false)
      expect(yield* workers.use(Durable.discard(a))).toBe(false) // done, not dead: kept
      expect((yield* workers.use(Durable.listDead())).map((task) => task.id)).toEqual([c])
      // the discarded task never runs again
      const sentinel = yield* workers.use(Durable.enqueue(Fragile.task, { n: 4 }))
      yield* workers.use(awaitState(sentinel, "done"))
      expect(Fragile.runs.filter((run) => run.payload.n === 2)).toHaveLength(2)
      yield* workers.shutdown
      expect(workers.record.durable).toEqual({ done: 2, retried: 3, dead: 3, released: 0 })
    }))

  test("a payload that no longer decodes is dead after one attempt, with the decode error, and the handler never runs", (fixture) =>
    Effect.gen(function*() {
      const Lax = Durable.task("import", { payload: N, run: () => Effect.void })
      const Strict = recorded("import", Schema.Struct({ n: Schema.Int.pipe(Schema.positive()) }), () => Effect.void, {
        maxAttempts: 5,
        retry: Schedule.spaced("10 millis")
      })
      const workers = yield* startWorkers(fixture.layer(), [Strict.task])
      const poison = yield* workers.use(Durable.enqueue(Lax, { n: -1.5 }))
      const dead = yield* workers.use(awaitState(poison, "dead"))
      expect(dead).toMatchObject({ state: "dead", attempts: 1, payload: { n: -1.5 } })
      expect(dead.lastFailure).toContain("does not decode")
      expect(dead.lastFailure).toContain("-1.5")
      expect(Strict.runs).toEqual([])
      // the worker carries on
      const fine = yield* workers.use(Durable.enqueue(Strict.task, { n: 2 }))
      yield* workers.use(awaitState(fine, "done"))
      expect(Strict.runs.map((run) => run.payload)).toEqual([{ n: 2 }])
      expect(yield* workers.use(stateOf(poison))).toEqual(Option.some("dead"))
      yield* workers.shutdown
      expect(workers.record.durable).toEqual({ done: 1, retried: 0, dead: 1, released: 0 })
    }))

  test("a defect (Effect.die or a throw) is retried like a failure and never stops the worker", (fixture, logs) =>
    Effect.gen(function*() {
      const Crashy = recorded("crashy", Schema.Struct({ crashes: Schema.Number }), ({ crashes }, { attempt }) =>
        attempt > crashes
          ? Effect.void
          : attempt % 2 === 1
          ? Effect.die(new Error(`kaput on attempt ${attempt}`))
          : Effect.sync(() => {
            throw new Error(`thrown on attempt ${attempt}`)
          }), { maxAttempts: 3, retry: Schedule.spaced("10 millis") })
      const workers = yield* startWorkers(fixture.layer(), [Crashy.task])
      const id = yield* workers.use(Durable.enqueue(Crashy.task, { crashes: 2 }))
      const done = yield* workers.use(awaitState(id, "done"))
      expect(done.attempts).toBe(3)
      expect(done.lastFailure).toContain("thrown on attempt 2")
      expect(Crashy.runs.map((run) => run.info.attempt)).toEqual([1, 2, 3])
      expect(logs.entries.some((entry) => entry.cause.includes("kaput on attempt 1"))).toBe(true)
      // dead after crashing on every attempt, and still the worker runs what comes next
      const doomed = yield* workers.use(Durable.enqueue(Crashy.task, { crashes: 3 }))
      expect((yield* workers.use(awaitState(doomed, "dead"))).lastFailure).toContain("kaput on attempt 3")
      const next = yield* workers.use(Durable.enqueue(Crashy.task, { crashes: 0 }))
      yield* workers.use(awaitState(next, "done"))
      const jobs = yield* workers.use(Effect.flatMap(Background.Background, (background) => background.snapshot))
      expect(jobs.map((job) => job.name)).toContain("durable crashy")
      yield* workers.shutdown
      expect(workers.record.durable).toEqual({ done: 2, retried: 4, dead: 1, released: 0 })
    }))

  test("timeout: an attempt past it is interrupted and fails, and the next attempt runs", (fixture) =>
    Effect.gen(function*() {
      let interrupted = 0
      const Slow = recorded("slow", N, (_, { attempt }) =>
        attempt === 1 ? Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted++))) : Effect.void, {
        timeout: "500 millis",
        maxAttempts: 2,
        retry: Schedule.spaced("10 millis")
      })
      const workers = yield* startWorkers(fixture.layer(), [Slow.task])
      const id = yield* workers.use(Durable.enqueue(Slow.task, { n: 1 }))
      const done = yield* workers.use(awaitState(id, "done"))
      expect(done.attempts).toBe(2)
      expect(done.lastFailure).toContain("attempt 1 timed out")
      expect(interrupted).toBe(1)
      expect(Slow.runs.map((run) => run.info.attempt)).toEqual([1, 2])
    }))

  test("concurrency N: N tasks run at once, and no more", (fixture) =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const started = yield* Queue.unbounded<number>()
      let running = 0
      let peak = 0
      const Par = recorded("par", N, ({ n }) =>
        Effect.gen(function*() {
          running++
          peak = Math.max(peak, running)
          yield* Queue.offer(started, n)
          yield* Deferred.await(gate)
        }).pipe(Effect.ensuring(Effect.sync(() => running--))), { concurrency: 2 })
      const workers = yield* startWorkers(fixture.layer(), [Par.task])
      const ids = yield* workers.use(Effect.forEach([1, 2, 3, 4], (n) => Durable.enqueue(Par.task, { n })))
      // two run at once: both started while neither can finish
      yield* Queue.take(started).pipe(Effect.zipRight(Queue.take(started)), bounded("two tasks to start"))
      expect(running).toBe(2)
      yield* Effect.sleep(WINDOW)
      expect(yield* Queue.size(started)).toBe(0)
      expect(running).toBe(2)
      const states = yield* workers.use(Effect.forEach(ids, stateOf))
      expect(states.filter((state) => Option.getOrUndefined(state) === "running")).toHaveLength(2)
      expect(states.filter((state) => Option.getOrUndefined(state) === "pending")).toHaveLength(2)
      yield* Deferred.succeed(gate, undefined)
      yield* workers.use(Effect.forEach(ids, (id) => awaitState(id, "done")))
      expect(peak).toBe(2)
      expect(Par.runs.map((run) => run.payload.n).sort()).toEqual([1, 2, 3, 4])
    }))

  test("enqueue inside sql.withTransaction: a rollback leaves no task and nothing runs; a commit runs it once", (fixture) =>
    Effect.gen(function*() {
      const Tx = recorded("tx", N)
      const workers = yield* startWorkers(fixture.layer(), [Tx.task])
      const sql = Effect.flatMap(SqlClient.SqlClient, (client) => Effect.succeed(client))
      const client = yield* workers.use(sql)
      const rolledBack: Array<string> = []
      const rollback = yield* workers.use(
        client.withTransaction(Effect.gen(function*() {
          rolledBack.push(yield* Durable.enqueue(Tx.task, { n: 1 }))
          rolledBack.push(yield* Durable.enqueue(Tx.task, { n: 2 }, { runIn: "1 second" }))
          rolledBack.push(yield* Durable.enqueue(Tx.task, { n: 3 }, { key: "tx-key" }))
          // visible inside the transaction: it joined it
          expect(Option.isSome(yield* Durable.status(rolledBack[0]!))).toBe(true)
          return yield* Effect.fail("rolled back")
        })).pipe(Effect.exit)
      )
      expect(failureOf(rollback)).toBe("rolled back")
      for (const id of rolledBack) expect(yield* workers.use(Durable.status(id))).toEqual(Option.none())

      const committed = yield* workers.use(client.withTransaction(Durable.enqueue(Tx.task, { n: 4 })))
      yield* workers.use(awaitState(committed, "done"))
      // a keyed enqueue after the rollback is a first one
      const keyed = yield* workers.use(Durable.enqueue(Tx.task, { n: 5 }, { key: "tx-key" }))
      expect(keyed).toBe(rolledBack[2])
      yield* workers.use(awaitState(keyed, "done"))
      // the rolled-back tasks would have come first (one worker, oldest first), and were never run
      yield* Effect.sleep(WINDOW)
      expect(Tx.runs.map((run) => run.payload.n)).toEqual([4, 5])
      for (const id of rolledBack.slice(0, 2)) expect(yield* workers.use(Durable.status(id))).toEqual(Option.none())
    }))

  test("layerStore on the application's own SqlClient: its writes and the enqueue commit or roll back together", (fixture) =>
    Effect.gen(function*() {
      const Welcome = recorded("welcome", Schema.Struct({ email: Schema.String }))
      const store = Durable.layerStore({ table: fixture.table, lease: LEASE, pollInterval: POLL, description: "app database" }).pipe(
        Layer.provideMerge(fixture.client)
      ) as StoreLayer
      const workers = yield* startWorkers(store, [Welcome.task])
      const sql = yield* workers.use(SqlClient.SqlClient)
      const table = sql(fixture.appTable)
      yield* workers.use(sql`CREATE TABLE ${table} (email TEXT NOT NULL)`)
      const signup = (email: string, fail: boolean) =>
        workers.use(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO ${table} (email) VALUES (${email})`
          const id = yield* Durable.enqueue(Welcome.task, { email })
          return fail ? yield* Effect.fail(id) : id
        })))
      const lost = yield* Effect.flip(signup("lost@example.com", true))
      if (typeof lost !== "string") return yield* Effect.dieMessage(`the signup failed: ${lost.message}`)
      const kept = yield* signup("kept@example.com", false)
      yield* workers.use(awaitState(kept, "done"))
      expect(yield* workers.use(Durable.status(lost))).toEqual(Option.none())
      const rows = yield* workers.use(sql<{ readonly email: string }>`SELECT email FROM ${table}`)
      expect(rows.map((row) => row.email)).toEqual(["kept@example.com"])
      expect(Welcome.runs.map((run) => run.payload.email)).toEqual(["kept@example.com"])
      expect((yield* workers.use(Durable.DurableStore)).description).toBe("app database")
    }))

  test("counts: tasks of each type in each state, done ones not counted", (fixture) =>
    Effect.gen(function*() {
      const Ok = recorded("count-ok", N)
      const Bad = recorded("count-bad", N, () => Effect.fail("no"), { maxAttempts: 1 })
      const Waiting = Durable.task("count-waiting", { payload: N, run: () => Effect.void }) // no worker here
      const workers = yield* startWorkers(fixture.layer(), [Ok.task, Bad.task])
      expect(yield* workers.use(Durable.counts)).toEqual([])
      const ok = yield* workers.use(Durable.enqueue(Ok.task, { n: 1 }))
      const bad = yield* workers.use(Durable.enqueue(Bad.task, { n: 2 }))
      yield* workers.use(Effect.forEach([1, 2], (n) => Durable.enqueue(Waiting, { n })))
      yield* workers.use(Durable.enqueue(Waiting, { n: 3 }, { runIn: "1 hour" }))
      yield* workers.use(awaitState(ok, "done"))
      yield* workers.use(awaitState(bad, "dead"))
      expect(yield* workers.use(Durable.counts)).toEqual([
        { name: "count-bad", state: "dead", count: 1 },
        { name: "count-waiting", state: "pending", count: 2 },
        { name: "count-waiting", state: "scheduled", count: 1 }
      ])
      expect(yield* workers.use(Durable.discard(bad))).toBe(true)
      expect((yield* workers.use(Durable.counts)).map((entry) => entry.name)).not.toContain("count-bad")
    }))

  test("in a request's handler the task is stored before the response and runs after it; outside one, at once", (fixture) =>
    Effect.gen(function*() {
      let handlerReturned = false
      const Mail = recorded("mail", Schema.Struct({ label: Schema.String }), () => Effect.succeed(handlerReturned))
      const seenAfter: Array<{ readonly label: string; readonly afterHandler: boolean }> = []
      const MailTask = Durable.task("mail", {
        payload: Schema.Struct({ label: Schema.String }),
        run: ({ label }, info) =>
          Effect.flatMap(Mail.task.options.run({ label }, info), () =>
            Effect.sync(() => {
              seenAfter.push({ label, afterHandler: handlerReturned })
            }))
      })
      // the hold lasts at most one lease (the backstop when the response never completes): longer than the handler dwells
      const store = yield* openStore(fixture.layer({ lease: "10 seconds" }))
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/held",
          Effect.gen(function*() {
            const id = yield* Durable.enqueue(MailTask, { label: "held" })
            expect(Option.map(yield* Durable.status(id), (task) => task.state)).toEqual(Option.some("pending"))
            yield* Effect.sleep(WINDOW) // room for a worker to take it too early
            handlerReturned = true
            return HttpServerResponse.text(id)
          })
        ),
        HttpRouter.get(
          "/now",
          Effect.gen(function*() {
            const id = yield* Durable.enqueue(MailTask, { label: "now" }, { afterResponse: false })
            yield* awaitState(id, "done") // it runs while the handler waits
            return HttpServerResponse.text(id)
          })
        )
      )
      const logs = captureLogs()
      const server = yield* startApp(
        Server.app(app, { port: 0, jobs: Durable.layer([MailTask]) }).pipe(Layer.provide(Layer.succeedContext(store.context))),
        logs
      )
      const held = yield* request(server.port, "/held")
      expect(held.status).toBe(200)
      expect(Option.isSome(yield* store.use(Durable.status(held.body)))).toBe(true)
      yield* store.use(awaitState(held.body, "done"))
      expect(seenAfter).toEqual([{ label: "held", afterHandler: true }])

      const now = yield* request(server.port, "/now")
      expect(now.status).toBe(200)
      expect(yield* store.use(stateOf(now.body))).toEqual(Option.some("done"))

      const outside = yield* store.use(Durable.enqueue(MailTask, { label: "outside" }))
      yield* store.use(awaitState(outside, "done"))
      expect(seenAfter.map((entry) => entry.label)).toEqual(["held", "now", "outside"])
      yield* Fiber.join(yield* server.shutdown)
    }))

  test("in handlers: a burst of held tasks is each stored before its response and runs once; a handler's transaction still decides; a server without the type's workers lets its tasks go at once", (fixture) =>
    Effect.gen(function*() {
      const Burst = recorded("burst", N)
      // the server has no workers for the type, and its hold (one lease, the same in both
      // processes) outlasts the test's patience: a held task reaches the other process's workers
      // only if the server lets it go once answered
      const serverStore = yield* openStore(fixture.layer({ lease: "2 minutes" }))
      const workers = yield* startWorkers(fixture.layer({ lease: "2 minutes" }), [Burst.task])
      const sql = yield* serverStore.use(SqlClient.SqlClient)
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/burst/:n",
          Effect.gen(function*() {
            const { n = "" } = yield* HttpRouter.params
            return HttpServerResponse.text(yield* Durable.enqueue(Burst.task, { n: Number(n) }))
          })
        ),
        HttpRouter.get(
          "/tx/:n",
          Effect.gen(function*() {
            const { n = "" } = yield* HttpRouter.params
            const id = yield* Durable.enqueue(Burst.task, { n: Number(n) })
            // visible inside the transaction: the held write joined it
            expect(Option.isSome(yield* Durable.status(id))).toBe(true)
            return yield* n === "1000" ? Effect.fail(id) : Effect.succeed(HttpServerResponse.text(id))
          }).pipe(
            sql.withTransaction,
            Effect.catchAll((error) =>
              typeof error === "string" ? Effect.succeed(HttpServerResponse.text(error, { status: 409 })) : Effect.fail(error)
            )
          )
        )
      )
      const server = yield* startApp(
        Server.app(app, { port: 0 }).pipe(Layer.provide(Layer.succeedContext(serverStore.context))),
        captureLogs()
      )
      const replies = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, n) => n),
        (n) =>
          Effect.flatMap(request(server.port, `/burst/${n}`), (reply) =>
            // stored by the time its response arrives
            Effect.map(serverStore.use(Durable.status(reply.body)), (status) => ({ reply, stored: Option.isSome(status) }))),
        { concurrency: 40 }
      )
      expect(replies.map(({ reply }) => reply.status)).toEqual(replies.map(() => 200))
      expect(replies.filter(({ stored }) => !stored)).toEqual([])
      yield* workers.use(Effect.forEach(replies, ({ reply }) => awaitState(reply.body, "done")))
      expect(Burst.runs.map((run) => run.payload.n).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, n) => n))

      const rolledBack = yield* request(server.port, "/tx/1000")
      expect(rolledBack.status).toBe(409)
      const committed = yield* request(server.port, "/tx/1001")
      expect(committed.status).toBe(200)
      yield* workers.use(awaitState(committed.body, "done"))
      expect(yield* workers.use(Durable.status(rolledBack.body))).toEqual(Option.none())
      yield* Effect.sleep(WINDOW)
      expect(Burst.runs.map((run) => run.payload.n).filter((n) => n >= 1000)).toEqual([1001])
      yield* Fiber.join(yield* server.shutdown)
    }))

  test("trace: the run's span links to the span that enqueued the task", (fixture) =>
    Effect.gen(function*() {
      const recording = makeRecordingTracer()
      const Traced = recorded("traced", N)
      const workers = yield* startWorkers(fixture.layer(), [Traced.task]).pipe(Effect.withTracer(recording.tracer))
      const id = yield* workers.use(Durable.enqueue(Traced.task, { n: 1 })).pipe(
        Effect.withSpan("signup"),
        Effect.withTracer(recording.tracer)
      )
      yield* workers.use(awaitState(id, "done"))
      const [enqueuer] = recording.named("signup")
      const [run] = recording.named("durable traced")
      expect(enqueuer).toBeDefined()
      expect(run).toBeDefined()
      expect(run!.kind).toBe("consumer")
      expect(run!.attributes.get("durable.id")).toBe(id)
      expect(run!.attributes.get("durable.attempt")).toBe(1)
      expect(run!.links.map((link) => ({ traceId: link.span.traceId, spanId: link.span.spanId }))).toEqual([
        { traceId: enqueuer!.traceId, spanId: enqueuer!.spanId }
      ])
      // enqueued outside any span: no link
      const untraced = yield* workers.use(Durable.enqueue(Traced.task, { n: 2 }))
      yield* workers.use(awaitState(untraced, "done"))
      const second = recording.named("durable traced").find((span) => span.attributes.get("durable.id") === untraced)
      expect(second?.links).toEqual([])
    }))

  test("two processes on one store: each task runs once, and a run longer than the lease is not taken again", (fixture) =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const Shared = recorded("shared", N, ({ n }) => (n === 0 ? Deferred.await(release) : Effect.void), { concurrency: 2 })
      const one = yield* startWorkers(fixture.layer({ lease: "1 second" }), [Shared.task])
      const two = yield* startWorkers(fixture.layer({ lease: "1 second" }), [Shared.task])
      const long = yield* one.use(Durable.enqueue(Shared.task, { n: 0 }))
      yield* one.use(awaitState(long, "running"))
      const ids = yield* two.use(Effect.forEach(Array.from({ length: 20 }, (_, i) => i + 1), (n) => Durable.enqueue(Shared.task, { n })))
      yield* one.use(Effect.forEach(ids, (id) => awaitState(id, "done")))
      // past two leases: were the running task's lease not renewed, the free slots would take it again
      yield* Effect.sleep("2500 millis")
      expect(yield* two.use(stateOf(long))).toEqual(Option.some("running"))
      yield* Deferred.succeed(release, undefined)
      yield* two.use(awaitState(long, "done"))
      expect(Shared.runs.map((run) => run.payload.n).sort((x, y) => x - y)).toEqual(Array.from({ length: 21 }, (_, i) => i))
    }))

  test("shutdown: a run the grace cuts off is interrupted and released to the store, and the next process runs it", (fixture) =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      let interrupted = 0
      const Block = recorded("block", N, () =>
        Effect.gen(function*() {
          if (Block.runs.length === 1) {
            yield* Deferred.succeed(started, undefined)
            yield* Effect.never
          }
        }).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted++))))
      const first = yield* startWorkers(fixture.layer(), [Block.task], { grace: "200 millis" })
      const id = yield* first.use(Durable.enqueue(Block.task, { n: 1 }))
      yield* Deferred.await(started).pipe(bounded("the task to start"))
      expect(yield* first.use(stateOf(id))).toEqual(Option.some("running"))
      const stats = (yield* first.use(Durable.DurableStore)).stats
      yield* first.shutdown
      expect(interrupted).toBe(1)
      expect(first.record.durable).toEqual({ done: 0, retried: 0, dead: 0, released: 1 })
      expect(stats).toEqual({ done: 0, retried: 0, dead: 0, released: 1 })
      expect(first.record.format(Date.now())).toContain("durable done=0 retried=0 dead=0 released=1")

      // back in the store, not counted as an attempt
      const store = yield* openStore(fixture.layer())
      expect(yield* store.use(Durable.status(id))).toEqual(
        Option.some({ id, name: "block", state: "pending", attempts: 0, lastFailure: null, payload: { n: 1 } })
      )
      yield* store.close

      const second = yield* startWorkers(fixture.layer(), [Block.task])
      expect(yield* second.use(awaitState(id, "done"))).toMatchObject({ attempts: 1 })
      expect(Block.runs.map((run) => run.info)).toEqual([{ id, name: "block", attempt: 1 }, { id, name: "block", attempt: 1 }])
      yield* second.shutdown
      expect(second.record.durable).toEqual({ done: 1, retried: 0, dead: 0, released: 0 })
    }))

  test("shutdown: no task starts once it has begun; waiting tasks stay pending for the next process", (fixture) =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const Busy = recorded("busy", N, ({ n }) =>
        n === 1 ? Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(release)) : Effect.void)
      const Idle = recorded("idle", N)
      const first = yield* startWorkers(fixture.layer(), [Busy.task, Idle.task], { grace: "30 seconds" })
      const running = yield* first.use(Durable.enqueue(Busy.task, { n: 1 }))
      yield* Deferred.await(started).pipe(bounded("the busy task to start"))
      const queued = yield* first.use(Durable.enqueue(Busy.task, { n: 2 }))

      const shutdown = yield* Effect.fork(first.shutdown)
      yield* waitUntil(
        "shutdown to begin",
        first.use(Effect.map(Effect.flatMap(Background.Background, (background) => background.isShuttingDown), (closing) =>
          closing ? Option.some(true) : Option.none()))
      )
      // the store still takes tasks during the grace; this process no longer takes them
      const late = yield* first.use(Durable.enqueue(Idle.task, { n: 3 }))
      yield* Effect.sleep(WINDOW)
      expect(Busy.runs.map((run) => run.payload.n)).toEqual([1])
      expect(Idle.runs).toEqual([])
      expect(yield* first.use(stateOf(queued))).toEqual(Option.some("pending"))
      expect(yield* first.use(stateOf(late))).toEqual(Option.some("pending"))
      expect(Option.isNone(yield* Fiber.poll(shutdown))).toBe(true) // the grace waits for the running task

      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(shutdown).pipe(bounded("shutdown to complete"))
      expect(first.record.durable).toEqual({ done: 1, retried: 0, dead: 0, released: 0 })
      expect(Busy.runs.map((run) => run.payload.n)).toEqual([1])
      expect(Idle.runs).toEqual([])

      const second = yield* startWorkers(fixture.layer(), [Busy.task, Idle.task])
      expect(yield* second.use(stateOf(running))).toEqual(Option.some("done"))
      yield* second.use(awaitState(queued, "done"))
      yield* second.use(awaitState(late, "done"))
      expect(Busy.runs.map((run) => run.payload.n)).toEqual([1, 2])
      expect(Idle.runs.map((run) => run.payload.n)).toEqual([3])
    }))

  test("bad enqueue options fail with InvalidOptionError, a refused payload with DurablePayloadError, and nothing is stored", (fixture) =>
    Effect.gen(function*() {
      const Email = Durable.task("email", {
        payload: Schema.Struct({ to: Schema.String.pipe(Schema.pattern(/@/)) }),
        run: () => Effect.void
      })
      const store = yield* openStore(fixture.layer())
      const options = yield* store.use(Effect.flip(
        Durable.enqueue(Email, { to: "ada@example.com" }, { key: "", runIn: -1, runAt: new Date("not a date") })
      ))
      expect(options).toBeInstanceOf(InvalidOptionError)
      expect((options as InvalidOptionError).issues.map((issue) => issue.option)).toEqual(["key", "runIn", "runAt"])
      const payload = yield* store.use(Effect.flip(Durable.enqueue(Email, { to: "nobody" })))
      expect(payload).toBeInstanceOf(DurablePayloadError)
      expect(payload).toMatchObject({ task: "email" })
      expect(payload.message).toContain("nobody")
      // an encoded payload JSON cannot hold is refused too, whether it runs now or later
      const Big = Durable.task("big", { payload: Schema.Struct({ n: Schema.BigIntFromSelf }), run: () => Effect.void })
      for (const options of [{}, { runIn: "1 minute" }, { key: "big" }] as const) {
        const refused = yield* store.use(Effect.flip(Durable.enqueue(Big, { n: 1n }, options)))
        expect(refused).toBeInstanceOf(DurablePayloadError)
        expect(refused.message).toContain("BigInt")
      }
      // as is one that JSON would give back changed: said at enqueue, not as a dead task later
      const Dated = Durable.task("dated", { payload: Schema.Struct({ at: Schema.DateFromSelf }), run: () => Effect.void })
      const dated = yield* store.use(Effect.flip(Durable.enqueue(Dated, { at: new Date(0) })))
      expect(dated).toBeInstanceOf(DurablePayloadError)
      expect(dated.message).toContain("payload.at is a Date")
      const Loose = Durable.task("loose", {
        payload: Schema.Struct({ note: Schema.UndefinedOr(Schema.String), n: Schema.Number, list: Schema.Array(Schema.Number) }),
        run: () => Effect.void
      })
      for (const [value, where] of [
        [{ note: undefined, n: 1, list: [] }, "payload.note is undefined"],
        [{ note: "x", n: Number.POSITIVE_INFINITY, list: [] }, "payload.n is Infinity"],
        [{ note: "x", n: 1, list: [1, Number.NaN] }, "payload.list[1] is NaN"]
      ] as const) {
        const refused = yield* store.use(Effect.flip(Durable.enqueue(Loose, value)))
        expect(refused).toBeInstanceOf(DurablePayloadError)
        expect(refused.message).toContain(where)
      }
      const limit = yield* store.use(Effect.flip(Durable.listDead({ limit: 0 })))
      expect(limit).toMatchObject({ _tag: "InvalidOptionError", option: "limit" })
      expect(yield* store.use(Durable.counts)).toEqual([])
    }))
}

describe("Durable on SQLite", () => cases(sqliteFixture))

describePostgres("Durable on PostgreSQL", () => cases(postgresFixture))

// ---------------------------------------------------------------------------------------------
// Options and faults that do not depend on the store

describe("Durable: options, checked when the layer is built", () => {
  const buildFails = <A, E>(layer: Layer.Layer<A, E>) => Effect.flip(Effect.scoped(Layer.build(layer)))

  it.live("every invalid task option is listed, by its task's index", () =>
    Effect.gen(function*() {
      const fixture = yield* sqliteFixture
      const run = () => Effect.void
      const bad: ReadonlyArray<TestTask> = [
        Durable.task("a", { payload: N, run, maxAttempts: 0 }),
        Durable.task("b", { payload: N, run, maxAttempts: 1.5 }),
        Durable.task("c", { payload: N, run, concurrency: 0 }),
        Durable.task("d", { payload: N, run, timeout: -1 }),
        // @ts-expect-error a retry that is not a Schedule
        Durable.task("e", { payload: N, run, retry: "1 second" }),
        // @ts-expect-error a payload that is not a Schema
        Durable.task("f", { payload: { n: "number" }, run }),
        Durable.task(" g", { payload: N, run })
      ]
      const error = yield* buildFails(
        Durable.layer(bad).pipe(Layer.provide(Background.layer()), Layer.provide(fixture.layer()))
      )
      expect(error).toBeInstanceOf(InvalidOptionError)
      expect((error as InvalidOptionError).issues.map((issue) => issue.option)).toEqual([
        "tasks[0].maxAttempts",
        "tasks[1].maxAttempts",
        "tasks[2].concurrency",
        "tasks[3].timeout",
        "tasks[4].retry",
        "tasks[5].payload",
        "tasks[6].name"
      ])
      const twice = yield* buildFails(
        Durable.layer([Durable.task("same", { payload: N, run }), Durable.task("same", { payload: N, run })]).pipe(
          Layer.provide(Background.layer()),
          Layer.provide(fixture.layer())
        )
      )
      expect(twice).toMatchObject({ _tag: "InvalidOptionError", option: "tasks", value: "same" })
    }).pipe(Effect.scoped))

  it.live("every invalid store option is listed; a postgres URL that is not one is refused without its password", () =>
    Effect.gen(function*() {
      const sqlite = yield* buildFails(Durable.sqlite({
        filename: join(tmpdir(), "never-created", "x.sqlite"),
        lease: 0,
        // @ts-expect-error not a duration
        pollInterval: "x",
        table: "bad name;"
      }))
      expect(sqlite).toBeInstanceOf(InvalidOptionError)
      expect((sqlite as InvalidOptionError).issues.map((issue) => issue.option).sort()).toEqual(["lease", "pollInterval", "table"])
      const postgres = yield* buildFails(Durable.postgres({ url: "mysql://app:secret@db.example.com/app", lease: "-1 second" }))
      expect(postgres).toBeInstanceOf(InvalidOptionError)
      expect((postgres as InvalidOptionError).issues.map((issue) => issue.option).sort()).toEqual(["lease", "url"])
      expect(postgres.message).not.toContain("secret")
      const notUrl = yield* buildFails(Durable.postgres({ url: "not a url" }))
      expect(notUrl).toMatchObject({ _tag: "InvalidOptionError", option: "url" })
      const store = yield* buildFails(
        Durable.layerStore({ table: "x y" }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
      )
      expect(store).toMatchObject({ _tag: "InvalidOptionError", option: "table" })
      // its indexes are named after it, and PostgreSQL cuts names at 63 characters
      const long = yield* buildFails(
        Durable.layerStore({ table: `t${"x".repeat(52)}` }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
      )
      expect(long).toMatchObject({ _tag: "InvalidOptionError", option: "table" })
      expect(long.message).toContain("at most 52 characters")
    }))
})

describe("Durable: the retry schedule", () => {
  const delay = (schedule: Schedule.Schedule<unknown, unknown>, attempt: number) =>
    Effect.map(retryDelay(schedule, attempt, 0), Option.map(Duration.toMillis))

  it.effect("each failed attempt waits its step's delay, and there is no retry once the schedule has ended", () =>
    Effect.gen(function*() {
      const exponential = Schedule.exponential("1 second")
      expect(yield* delay(exponential, 1)).toEqual(Option.some(1_000))
      expect(yield* delay(exponential, 2)).toEqual(Option.some(2_000))
      expect(yield* delay(exponential, 3)).toEqual(Option.some(4_000))
      expect(yield* delay(Schedule.recurs(0), 1)).toEqual(Option.none())
      expect(yield* delay(Schedule.recurs(1), 1)).toEqual(Option.some(0))
      expect(yield* delay(Schedule.recurs(1), 2)).toEqual(Option.none())
      const twice = Schedule.spaced("3 seconds").pipe(Schedule.intersect(Schedule.recurs(2)))
      expect(yield* delay(twice, 2)).toEqual(Option.some(3_000))
      expect(yield* delay(twice, 3)).toEqual(Option.none())
    }))
})

describe("Durable: a store that cannot be reached", () => {
  it.live("PostgreSQL unreachable at start: the layer fails with DurableStoreError naming the server, password redacted", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(
        Durable.postgres({ url: "postgres://user:secret@127.0.0.1:1/db", connectTimeout: "5 seconds" })
      )))
      const error = failureOf(exit)
      expect(error).toBeInstanceOf(DurableStoreError)
      expect(error).toMatchObject({ operation: "connect", store: "postgres://user:***@127.0.0.1:1/db" })
      expect(error!.message).toContain("127.0.0.1:1")
      expect(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").not.toContain("secret")
      expect(JSON.stringify(error)).not.toContain("secret")
    }))

  it.live("SQLite at a path that cannot be created: the layer fails with DurableStoreError naming the file", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "durable-test-"))),
        (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
      )
      const file = join(dir, "a-file")
      yield* Effect.promise(() => writeFile(file, "not a directory"))
      const filename = join(file, "tasks.sqlite")
      const error = yield* Effect.flip(Effect.scoped(Layer.build(Durable.sqlite({ filename }))))
      expect(error).toBeInstanceOf(DurableStoreError)
      expect(error).toMatchObject({ operation: "connect", store: `sqlite:${filename}` })
    }).pipe(Effect.scoped))
})

describePostgres("Durable on PostgreSQL: the store lost mid-run", () => {
  it.live("enqueue fails typed while the database is unreachable; workers carry on, and nothing enqueued before is lost", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      // a database of its own, made unreachable: no new connections, and every open one ended
      const database = uniqueTable("durable_lost")
      const url = new URL(postgresUrl)
      url.pathname = `/${database}`
      yield* withPg(postgresUrl, (sql) => sql`CREATE DATABASE ${sql(database)}`)
      yield* Effect.addFinalizer(() =>
        withPg(postgresUrl, (sql) => sql`DROP DATABASE IF EXISTS ${sql(database)} WITH (FORCE)`).pipe(Effect.ignore)
      )
      const setReachable = (reachable: boolean) =>
        withPg(postgresUrl, (sql) =>
          Effect.zipRight(
            sql`ALTER DATABASE ${sql(database)} ALLOW_CONNECTIONS ${sql.literal(reachable ? "true" : "false")}`,
            reachable
              ? Effect.void
              : sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${database}`
          ))

      const running = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const Job = recorded("job", N, ({ n }) =>
        n === 0 ? Effect.zipRight(Deferred.succeed(running, undefined), Deferred.await(release)) : Effect.void)
      const workers = yield* startWorkers(
        Durable.postgres({ url: url.toString(), lease: LEASE, pollInterval: POLL, connectTimeout: "2 seconds" }),
        [Job.task]
      )
      const first = yield* workers.use(Durable.enqueue(Job.task, { n: 1 }))
      yield* workers.use(awaitState(first, "done"))
      // before the outage: one task running through it, two due during it
      const through = yield* workers.use(Durable.enqueue(Job.task, { n: 0 }))
      yield* Deferred.await(running).pipe(bounded("the task to start"))
      const due = yield* workers.use(Effect.forEach([2, 3], (n) => Durable.enqueue(Job.task, { n }, { runIn: "1 second" })))

      yield* setReachable(false)
      const refused = yield* workers.use(Effect.flip(Durable.enqueue(Job.task, { n: 99 })))
      expect(refused).toBeInstanceOf(DurableStoreError)
      expect(refused).toMatchObject({ operation: "enqueue" })
      expect((refused as DurableStoreError).store).toContain(database)
      const unknown = yield* workers.use(Effect.flip(Durable.status(first)))
      expect(unknown).toMatchObject({ _tag: "DurableStoreError", operation: "status" })
      // the running task ends, and its outcome cannot be recorded: the worker says so and carries on
      yield* Deferred.succeed(release, undefined)
      yield* waitUntil(
        "the worker to report the store's failure",
        Effect.sync(() => Option.fromNullable(logs.entries.find((entry) => entry.message.includes("the store failed"))))
      )
      const jobs = yield* workers.use(Effect.flatMap(Background.Background, (background) => background.snapshot))
      expect(jobs.map((job) => job.name)).toContain("durable job")

      yield* setReachable(true)
      const after = yield* waitUntil(
        "an enqueue to succeed again",
        workers.use(Effect.option(Durable.enqueue(Job.task, { n: 4 }, { key: "after the outage" })))
      )
      yield* workers.use(Effect.forEach([through, ...due, after], (id) => awaitState(id, "done")))
      const ran = Job.runs.map((run) => run.payload.n)
      expect([...new Set(ran)].sort()).toEqual([0, 1, 2, 3, 4])
      // at least once: the task whose outcome was lost ran again once its lease expired
      expect(ran.filter((n) => n === 0)).toHaveLength(2)
      expect(ran).not.toContain(99)
      // nothing half-written: the refused task left no row
      expect(yield* workers.use(Durable.counts)).toEqual([])
      const rows = yield* workers.use(Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ readonly count: string }>`SELECT COUNT(*) AS count FROM effect_queue`))
      expect(Number(rows[0]!.count)).toBe(5) // the five enqueued: 0, 1, 2, 3 and 4
      yield* workers.shutdown
    }).pipe(
      Effect.scoped,
      Effect.provide(logs.layer),
      Effect.tapErrorCause(() =>
        Effect.sync(() => console.log(logs.entries.map((entry) => `${entry.level} ${entry.message} ${entry.cause}`).join("\n")))
      )
    )
  })
})
