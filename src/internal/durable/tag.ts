/**
 * The durable store's service type and tag, in a module of their own: the server glue looks the
 * store up (for the snapshot route) without loading the store's dependencies.
 */
import type * as PersistedQueue from "@effect/experimental/PersistedQueue"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { DurableStoreError } from "../../Errors.js"

/** Where a durable task is in its life. */
export type State = "pending" | "scheduled" | "running" | "retrying" | "done" | "dead"

export interface Row {
  readonly id: string
  readonly name: string
  readonly state: State
  readonly attempts: number
  readonly lastFailure: string | null
  readonly element: string
}

/** What this process's workers did, for the shutdown report. */
export interface WorkerStats {
  /** Runs that succeeded. */
  done: number
  /** Runs that failed and were rescheduled by their retry schedule. */
  retried: number
  /** Tasks that failed their last attempt or no longer decode, now kept as dead. */
  dead: number
  /** Runs interrupted at shutdown and handed back to the store for the next process. */
  released: number
}

export interface Store {
  readonly description: string
  readonly dialect: "sqlite" | "pg"
  readonly lockExpiration: Duration.Duration
  readonly sql: SqlClient.SqlClient
  readonly factory: PersistedQueue.PersistedQueueFactory["Type"]
  readonly stats: WorkerStats
  /** Writes a task that must not be taken for `delayMillis` (`held`: until its response is written). */
  readonly insertLater: (
    id: string,
    name: string,
    element: string,
    delayMillis: number,
    why: "held" | "scheduled"
  ) => Effect.Effect<void, DurableStoreError>
  /** Lets a held task be taken now. */
  readonly releaseHeld: (id: string) => Effect.Effect<void, DurableStoreError>
  /** Records a failed attempt and makes the task available again after `delayMillis`. */
  readonly reschedule: (id: string, attempts: number, failure: string, delayMillis: number) => Effect.Effect<void, DurableStoreError>
  /** Records the last failed attempt: the task is dead. */
  readonly markDead: (id: string, attempts: number, failure: string) => Effect.Effect<void, DurableStoreError>
  /** Renews a running task's lease. */
  readonly heartbeat: (id: string) => Effect.Effect<void, DurableStoreError>
  readonly find: (id: string) => Effect.Effect<Row | undefined, DurableStoreError>
  readonly listDead: (name: string | undefined, limit: number) => Effect.Effect<ReadonlyArray<Row>, DurableStoreError>
  readonly counts: Effect.Effect<ReadonlyArray<{ readonly name: string; readonly state: State; readonly count: number }>, DurableStoreError>
  /** Makes a dead task pending again with no attempts counted; false when no dead task has the id. */
  readonly retryDead: (id: string) => Effect.Effect<boolean, DurableStoreError>
  /** Deletes a dead task; false when no dead task has the id. */
  readonly discard: (id: string) => Effect.Effect<boolean, DurableStoreError>
}

export class DurableStore extends Context.Tag("effect-background/DurableStore")<DurableStore, Store>() {}

