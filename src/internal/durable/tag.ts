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

/** A task leased to this process, as the store returned it. */
export interface Taken {
  readonly sequence: number
  readonly id: string
  /** The stored envelope, as JSON text. */
  readonly element: string
  /** Attempts made before this one. */
  readonly attempts: number
}

/** A task type's workers in this process, as `enqueue` sees them. */
export interface LocalWorker {
  /** Takes a held task whose response is written; false once the workers stop taking. */
  readonly handOff: (id: string) => boolean
  /** Tells the workers a task is ready in the store. */
  readonly wake: () => void
}

export interface Store {
  readonly description: string
  readonly dialect: "sqlite" | "pg"
  readonly lockExpiration: Duration.Duration
  readonly pollInterval: Duration.Duration
  readonly sql: SqlClient.SqlClient
  readonly factory: PersistedQueue.PersistedQueueFactory["Type"]
  readonly stats: WorkerStats
  /** This process's workers, by task name. */
  readonly locals: Map<string, LocalWorker>
  /** Leases up to `size` available tasks of one type to this process, oldest first. */
  readonly take: (name: string, maxAttempts: number, size: number) => Effect.Effect<Array<Taken>, DurableStoreError>
  /** Leases held tasks (by id) to this process; those no longer held are left out. */
  readonly claimHeld: (ids: ReadonlyArray<string>) => Effect.Effect<Array<Taken>, DurableStoreError>
  /** Lets held tasks be taken now. */
  readonly releaseHeld: (ids: ReadonlyArray<string>) => Effect.Effect<void, DurableStoreError>
  /**
   * Writes a task held until its response is written (for one lease at most), in a statement
   * shared with the other held tasks of the same turn of the event loop; outside a transaction.
   */
  readonly insertHeld: (id: string, name: string, element: string) => Effect.Effect<void, DurableStoreError>
  /** Lets a held task be taken, in a statement shared with others; false once the store is closing. */
  readonly releaseSoon: (id: string) => boolean
  /** Records runs that succeeded (one attempt each). */
  readonly complete: (sequences: ReadonlyArray<number>) => Effect.Effect<void, DurableStoreError>
  /** Hands leased tasks back to the store, no attempt counted. */
  readonly release: (sequences: ReadonlyArray<number>) => Effect.Effect<void, DurableStoreError>
  /** Hands back every task of one type this process still leases. */
  readonly releaseAll: (name: string) => Effect.Effect<void, DurableStoreError>
  /** Renews the lease of tasks this process runs or is about to run. */
  readonly renew: (sequences: ReadonlyArray<number>) => Effect.Effect<void, DurableStoreError>
  /** Writes a task that must not be taken for `delayMillis` (`held`: until its response is written). */
  readonly insertLater: (
    id: string,
    name: string,
    element: string,
    delayMillis: number,
    why: "held" | "scheduled"
  ) => Effect.Effect<void, DurableStoreError>
  /** Records a failed attempt and makes the task available again after `delayMillis`. */
  readonly reschedule: (id: string, attempts: number, failure: string, delayMillis: number) => Effect.Effect<void, DurableStoreError>
  /** Records the last failed attempt: the task is dead. */
  readonly markDead: (id: string, attempts: number, failure: string) => Effect.Effect<void, DurableStoreError>
  readonly find: (id: string) => Effect.Effect<Row | undefined, DurableStoreError>
  readonly listDead: (name: string | undefined, limit: number) => Effect.Effect<ReadonlyArray<Row>, DurableStoreError>
  readonly counts: Effect.Effect<ReadonlyArray<{ readonly name: string; readonly state: State; readonly count: number }>, DurableStoreError>
  /** Makes a dead task pending again with no attempts counted; false when no dead task has the id. */
  readonly retryDead: (id: string) => Effect.Effect<boolean, DurableStoreError>
  /** Deletes a dead task; false when no dead task has the id. */
  readonly discard: (id: string) => Effect.Effect<boolean, DurableStoreError>
}

export class DurableStore extends Context.Tag("effect-background/DurableStore")<DurableStore, Store>() {}

