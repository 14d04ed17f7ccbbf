/**
 * The durable store: `@effect/sql`'s `SqlPersistedQueue` table (`effect_queue` by default), with
 * `@effect/experimental`'s `PersistedQueue` on top for offers (idempotent: a repeated id is
 * ignored), and statements of our own on the same table, in the queue's protocol (a lease in
 * `acquired_by`, `acquired_at`, which expires when its worker dies so that the task is taken again):
 *
 * - the workers take in batches: one statement leases as many available tasks as a task type has
 *   free slots (the queue's own take statement, with a size), one records every success that ends
 *   at the same moment, and one renews the leases of every running task (the queue's own take
 *   serves one task per taker, records each outcome alone, and its lease renewal does not run in
 *   this version of `@effect/sql`);
 * - a task that must not run yet — held until its response is written, scheduled for later, or
 *   waiting out a retry's backoff — is written as leased by a placeholder worker, with the lease
 *   dated so that it expires exactly when the task may run: any worker then takes it; a held task
 *   whose response is written is claimed by its process's workers in one statement (or released);
 * - a task that failed its last attempt (or whose payload no longer decodes) is leased to a
 *   "dead" placeholder until the end of time, with its attempts and last failure: queryable, never
 *   taken, and retried or discarded on request.
 */
import * as PersistedQueue from "@effect/experimental/PersistedQueue"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlPersistedQueue from "@effect/sql/SqlPersistedQueue"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import { DurableStoreError } from "../../Errors.js"
import * as Group from "./group.js"

/** Placeholder workers (UUIDs, as PostgreSQL's `acquired_by` column is typed). */
export const SCHEDULED = "00000000-0000-4000-8000-000000000001"
export const HELD = "00000000-0000-4000-8000-000000000002"
export const DEAD = "00000000-0000-4000-8000-000000000003"
/** A dead task's lease: it never expires. */
const NEVER = "9999-12-31 00:00:00"

export interface StoreSettings {
  /** The store as it is shown in errors and logs, with any password redacted. */
  readonly description: string
  readonly table: string
  readonly pollInterval: Duration.Duration
  readonly lockExpiration: Duration.Duration
}

export { DurableStore, type LocalWorker, type Row, type State, type Store, type Taken, type WorkerStats } from "./tag.js"
import type { Row, State, Store, Taken } from "./tag.js"

/** The driver's own words for a failure, without stack frames. */
export const reasonOf = (cause: unknown): string => {
  const seen: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    const message = current instanceof Error ? current.message : typeof current === "string" ? current : undefined
    if (message !== undefined && message.length > 0 && !seen.includes(message)) seen.push(message)
    current = typeof current === "object" && "cause" in current ? (current as { cause?: unknown }).cause : undefined
  }
  return seen.length > 0 ? seen.join(": ") : String(cause)
}

/** Builds the store on the `SqlClient` in context: creates the table if it is missing. */
export const make = (settings: StoreSettings): Effect.Effect<Store, DurableStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const fail = (operation: string) => (cause: unknown) =>
      new DurableStoreError({ store: settings.description, operation, reason: reasonOf(cause) })
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const dialect = sql.onDialectOrElse({ pg: () => "pg" as const, sqlite: () => "sqlite" as const, orElse: () => undefined })
    if (dialect === undefined) {
      return yield* fail("connect")("only SQLite and PostgreSQL clients are supported")
    }
    // Creating the table and its indexes "if not exists" is a race between processes that start at
    // once on a fresh PostgreSQL database (a deploy's replicas): the loser's statement fails on a
    // catalog constraint. Another attempt finds them made. (Nothing is started before they are.)
    const queueStore = yield* SqlPersistedQueue.make({
      tableName: settings.table,
      pollInterval: settings.pollInterval,
      lockExpiration: settings.lockExpiration
    }).pipe(
      Effect.retry(Schedule.intersect(Schedule.recurs(4), Schedule.spaced("50 millis"))),
      Effect.mapError(fail("connect"))
    )
    // On SQLite, an index in the take's order: its planner would otherwise read every pending task
    // of the type and sort them for each take, a cost that grows with the backlog (measured here:
    // about 600 µs a take over 3,000 pending tasks, against about 200 µs through this index).
    const orderIndex = `idx_${settings.table}_order`
    if (dialect === "sqlite") {
      yield* sql`CREATE INDEX IF NOT EXISTS ${sql(orderIndex)} ON ${sql(settings.table)} (queue_name, completed, updated_at, sequence)`
        .pipe(Effect.mapError(fail("connect")))
    }
    const factory = yield* PersistedQueue.makeFactory.pipe(
      Effect.provideService(PersistedQueue.PersistedQueueStore, queueStore)
    )

    const table = sql(settings.table)
    // The queue's lease, in whole seconds, as the queue computes it.
    const leaseSeconds = Math.ceil(Duration.toSeconds(settings.lockExpiration))
    const literal = (value: string) => sql.literal(`'${value}'`)
    const scheduled = literal(SCHEDULED)
    const held = literal(HELD)
    const dead = literal(DEAD)
    const never = literal(NEVER)
    const isTrue = dialect === "pg" ? sql.literal("TRUE") : sql.literal("1")
    const isFalse = dialect === "pg" ? sql.literal("FALSE") : sql.literal("0")
    const now = dialect === "pg" ? sql.literal("NOW()") : sql.literal("CURRENT_TIMESTAMP")
    /** The database's clock, shifted by `millis` (its own clock: one for every process and machine). */
    const shifted = (millis: number) => {
      const rounded = Math.round(millis)
      return dialect === "pg"
        ? sql.literal(`NOW() + INTERVAL '${rounded} milliseconds'`)
        : sql.literal(`datetime(CURRENT_TIMESTAMP, '${rounded >= 0 ? "+" : ""}${rounded / 1000} seconds')`)
    }
    /** A lease dated so that it expires `delayMillis` from now. */
    const availableIn = (delayMillis: number) => shifted(delayMillis - leaseSeconds * 1000)
    const leaseLive = sql`acquired_at >= ${shifted(-leaseSeconds * 1000)}`
    const state = sql`CASE
      WHEN completed = ${isTrue} THEN 'done'
      WHEN acquired_by = ${dead} THEN 'dead'
      WHEN acquired_by = ${scheduled} AND ${leaseLive} THEN (CASE WHEN attempts > 0 THEN 'retrying' ELSE 'scheduled' END)
      WHEN acquired_by = ${held} AND ${leaseLive} THEN 'pending'
      WHEN acquired_by IS NOT NULL AND ${leaseLive} THEN 'running'
      WHEN attempts > 0 THEN 'retrying'
      ELSE 'pending' END`
    const columns = sql`id, queue_name AS name, ${state} AS state, attempts, last_failure AS "lastFailure", element`
    const toRow = (row: Record<string, unknown>): Row => ({
      id: String(row.id),
      name: String(row.name),
      state: row.state as State,
      attempts: Number(row.attempts),
      lastFailure: row.lastFailure === null || row.lastFailure === undefined ? null : String(row.lastFailure),
      element: String(row.element)
    })
    const insertIgnoring = dialect === "pg" ? sql.literal("INSERT INTO") : sql.literal("INSERT OR IGNORE INTO")
    const onConflict = dialect === "pg" ? sql.literal("ON CONFLICT (id) DO NOTHING") : sql.literal("")

    // The workers' own bookkeeping (a take every poll interval, a lease renewal, a group of
    // successes) is not traced: a span per poll would flood a user's traces with no meaning to them.
    const untraced = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.withTracerEnabled(effect, false)
    // This process's own lease holder, for the tasks its workers take (the queue's own worker id is
    // private to it).
    const workerId = randomUUID()
    const worker = literal(workerId)
    const expired = sql`(acquired_at IS NULL OR acquired_at < ${shifted(-leaseSeconds * 1000)})`
    const sequences = (seqs: ReadonlyArray<number>) => sql.literal(seqs.map((seq) => String(Math.trunc(seq))).join(","))
    const toTaken = (rows: ReadonlyArray<Record<string, unknown>>): Array<Taken> =>
      rows.map((row) => ({
        sequence: Number(row.sequence),
        id: String(row.id),
        element: String(row.element),
        attempts: Number(row.attempts)
      }))
    // The queue's own take, on its columns and in its order: up to `size` available tasks of one
    // type (never leased, or whose lease has expired), leased to this process in one statement.
    const take = dialect === "pg"
      ? (name: string, maxAttempts: number, size: number) =>
        sql`WITH cte AS (
            UPDATE ${table} SET acquired_at = ${now}, acquired_by = ${worker}
            WHERE sequence IN (
              SELECT sequence FROM ${table}
              WHERE queue_name = ${name} AND completed = FALSE AND attempts < ${maxAttempts} AND ${expired}
              ORDER BY updated_at ASC, sequence ASC
              FOR UPDATE SKIP LOCKED
              LIMIT ${sql.literal(String(size))}
            )
            RETURNING sequence, id, element, attempts, updated_at
          )
          SELECT sequence, id, element, attempts FROM cte ORDER BY updated_at ASC, sequence ASC`
      : (name: string, maxAttempts: number, size: number) =>
        sql`UPDATE ${table} SET acquired_at = ${now}, acquired_by = ${worker}
          WHERE sequence IN (
            SELECT sequence FROM ${table} INDEXED BY ${sql(orderIndex)}
            WHERE queue_name = ${name} AND completed = 0 AND attempts < ${maxAttempts} AND ${expired}
            ORDER BY updated_at ASC, sequence ASC
            LIMIT ${sql.literal(String(size))}
          )
          RETURNING sequence, id, element, attempts`

    /** A new task's row: not taken until its lease, dated `acquiredAt` and held by `by`, expires. */
    const values = (id: string, name: string, element: string, acquiredAt: ReturnType<typeof literal>, by: ReturnType<typeof literal>) =>
      sql`(${id}, ${name}, ${element}, ${isFalse}, 0, ${acquiredAt}, ${by}, ${now}, ${now})`
    const releaseHeld = (ids: ReadonlyArray<string>) =>
      ids.length === 0 ? Effect.void : sql`UPDATE ${table} SET acquired_at = NULL, acquired_by = NULL
          WHERE id IN ${sql.in(ids)} AND acquired_by = ${held}`.pipe(Effect.asVoid, Effect.mapError(fail("release")), untraced)
    // Held tasks (the common enqueue, from a request) are written in groups: those a burst of
    // requests enqueues in one turn of the event loop share one statement and one commit.
    const heldFor = availableIn(Duration.toMillis(settings.lockExpiration))
    const inserts = yield* Group.make(
      (rows: ReadonlyArray<readonly [id: string, name: string, element: string]>) =>
        sql`${insertIgnoring} ${table}
          (id, queue_name, element, completed, attempts, acquired_at, acquired_by, created_at, updated_at)
          VALUES ${sql.join(", ", false)(rows.map(([id, name, element]) => values(id, name, element, heldFor, held)))}
          ${onConflict}`.pipe(Effect.asVoid, Effect.mapError(fail("enqueue")), untraced),
      () => new DurableStoreError({ store: settings.description, operation: "enqueue", reason: "the store is closed" })
    )
    // Held tasks whose response is written and that no worker here takes: let go in groups too.
    const releases = yield* Group.make(
      (ids: ReadonlyArray<string>) =>
        releaseHeld(ids).pipe(
          Effect.catchAll((error) =>
            Effect.logWarning(`${error.message}; those tasks run once their hold expires (${Duration.format(settings.lockExpiration)})`)
          )
        ),
      () => new DurableStoreError({ store: settings.description, operation: "release", reason: "the store is closed" })
    )

    return {
      description: settings.description,
      dialect,
      lockExpiration: settings.lockExpiration,
      pollInterval: settings.pollInterval,
      sql,
      factory,
      stats: { done: 0, retried: 0, dead: 0, released: 0 },
      locals: new Map(),
      take: (name, maxAttempts, size) =>
        take(name, maxAttempts, size).pipe(Effect.map(toTaken), Effect.mapError(fail("take")), untraced),
      claimHeld: (ids) =>
        ids.length === 0 ? Effect.succeed([]) : sql`UPDATE ${table} SET acquired_at = ${now}, acquired_by = ${worker}
          WHERE id IN ${sql.in(ids)} AND acquired_by = ${held} AND completed = ${isFalse}
          RETURNING sequence, id, element, attempts`.pipe(Effect.map(toTaken), Effect.mapError(fail("take")), untraced),
      releaseHeld,
      insertHeld: (id, name, element) => inserts.submit([id, name, element]),
      releaseSoon: (id) => releases.post(id),
      complete: (seqs) =>
        seqs.length === 0 ? Effect.void : sql`UPDATE ${table}
          SET acquired_at = NULL, acquired_by = NULL, updated_at = ${now}, completed = ${isTrue}, attempts = attempts + 1
          WHERE sequence IN (${sequences(seqs)}) AND acquired_by = ${worker}`.pipe(Effect.asVoid, Effect.mapError(fail("complete")), untraced),
      releaseAll: (name) =>
        sql`UPDATE ${table} SET acquired_at = NULL, acquired_by = NULL
          WHERE queue_name = ${name} AND acquired_by = ${worker} AND completed = ${isFalse}`.pipe(
          Effect.asVoid,
          Effect.mapError(fail("release")),
          untraced
        ),
      release: (seqs) =>
        seqs.length === 0 ? Effect.void : sql`UPDATE ${table} SET acquired_at = NULL, acquired_by = NULL
          WHERE sequence IN (${sequences(seqs)}) AND acquired_by = ${worker}`.pipe(Effect.asVoid, Effect.mapError(fail("release")), untraced),
      renew: (seqs) =>
        seqs.length === 0 ? Effect.void : sql`UPDATE ${table} SET acquired_at = ${now}
          WHERE sequence IN (${sequences(seqs)}) AND acquired_by = ${worker}`.pipe(Effect.asVoid, Effect.mapError(fail("lease renewal")), untraced),
      insertLater: (id, name, element, delayMillis, why) =>
        sql`${insertIgnoring} ${table}
          (id, queue_name, element, completed, attempts, acquired_at, acquired_by, created_at, updated_at)
          VALUES ${values(id, name, element, availableIn(delayMillis), why === "held" ? held : scheduled)}
          ${onConflict}`.pipe(Effect.asVoid, Effect.mapError(fail("enqueue"))),
      reschedule: (id, attempts, failure, delayMillis) =>
        sql`UPDATE ${table}
          SET attempts = ${attempts}, last_failure = ${failure}, updated_at = ${now},
            acquired_by = ${scheduled}, acquired_at = ${availableIn(delayMillis)}
          WHERE id = ${id} AND completed = ${isFalse}`.pipe(Effect.asVoid, Effect.mapError(fail("retry"))),
      markDead: (id, attempts, failure) =>
        sql`UPDATE ${table}
          SET attempts = ${attempts}, last_failure = ${failure}, updated_at = ${now},
            acquired_by = ${dead}, acquired_at = ${never}
          WHERE id = ${id} AND completed = ${isFalse}`.pipe(Effect.asVoid, Effect.mapError(fail("dead-letter"))),
      find: (id) =>
        sql`SELECT ${columns} FROM ${table} WHERE id = ${id}`.pipe(
          Effect.map((rows) => (rows.length === 0 ? undefined : toRow(rows[0]!))),
          Effect.mapError(fail("status"))
        ),
      listDead: (name, limit) =>
        sql`SELECT ${columns} FROM ${table} WHERE acquired_by = ${dead}
          ${name === undefined ? sql.literal("") : sql`AND queue_name = ${name}`}
          ORDER BY updated_at DESC, sequence DESC LIMIT ${sql.literal(String(limit))}`.pipe(
          Effect.map((rows) => rows.map(toRow)),
          Effect.mapError(fail("list dead"))
        ),
      counts: sql`SELECT name, state, COUNT(*) AS count FROM (
          SELECT queue_name AS name, ${state} AS state FROM ${table} WHERE completed = ${isFalse}
        ) tasks GROUP BY name, state ORDER BY name, state`.pipe(
        Effect.map((rows) => rows.map((row) => ({ name: String(row.name), state: row.state as State, count: Number(row.count) }))),
        Effect.mapError(fail("counts"))
      ),
      retryDead: (id) =>
        sql`UPDATE ${table} SET attempts = 0, acquired_at = NULL, acquired_by = NULL, updated_at = ${now}
          WHERE id = ${id} AND acquired_by = ${dead} RETURNING id`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(fail("retry"))
        ),
      discard: (id) =>
        sql`DELETE FROM ${table} WHERE id = ${id} AND acquired_by = ${dead} RETURNING id`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.mapError(fail("discard"))
        )
    } satisfies Store
  })
