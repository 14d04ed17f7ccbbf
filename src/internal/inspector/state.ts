/**
 * What the inspector page shows, read at one moment: the supervisor's tasks (with the request each
 * came from) and jobs (with their next run and last failure), the durable store's counts and dead
 * tasks, the offload pool's threads, and where shutdown is. Only names, states, times, counts and
 * failures' causes: never a task's input, a durable task's payload or a request's URL.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Background } from "../../Background.js"
import type { Offload, OffloadService, Stats as OffloadStats } from "../../Offload.js"
import { currentSupervisor } from "../background/service.js"
import type { SupervisorStats } from "../background/supervisor.js"
import type { RequestOrigin, TaskKind, TaskState } from "../background/task.js"
import { DurableStore, type State as DurableState, type WorkerStats } from "../durable/tag.js"
import { currentRecord } from "../report.js"
import { GracefulServer } from "../server/graceful.js"

/**
 * `Offload.Offload`, by its key (as service.ts reaches `Background`): the inspector reads the
 * pool's stats when a pool is in context, without importing the public module.
 */
const OffloadTag = Context.GenericTag<Offload, OffloadService>("effect-background/Offload")

/** Where the server is in its life: serving, draining its requests, or past them. */
export type Phase = "serving" | "draining" | "stopping"

export interface TaskView {
  readonly id: number
  readonly name: string
  readonly kind: TaskKind
  readonly state: TaskState
  readonly submittedAt: number
  readonly startedAt: number | null
  readonly request: RequestOrigin | null
}

export interface JobView {
  readonly id: number
  readonly name: string
  readonly kind: TaskKind
  readonly state: TaskState
  readonly startedAt: number | null
  readonly nextRunAt: number | null
  readonly failures: number
  /** The last failure's cause, rendered by `Cause.pretty`. */
  readonly lastFailure: { readonly at: number; readonly cause: string } | null
}

export interface DurableView {
  readonly store: string
  readonly counts?: ReadonlyArray<{ readonly name: string; readonly state: DurableState; readonly count: number }>
  readonly dead?: ReadonlyArray<{
    readonly id: string
    readonly name: string
    readonly attempts: number
    readonly lastFailure: string | null
  }>
  /** Why the store could not say (it is unreachable, say). */
  readonly error?: string
  readonly thisProcess: WorkerStats
}

export interface View {
  /** The server's clock, epoch milliseconds: ages and next runs are shown against it. */
  readonly now: number
  readonly phase: {
    readonly name: Phase
    /** When shutdown began (epoch milliseconds), once it has. */
    readonly since: number | null
    /** Requests in flight (the page's own stream aside), when the server is `Server.layer`'s. */
    readonly requestsInFlight: number | null
  }
  readonly stats: SupervisorStats
  readonly tasks: ReadonlyArray<TaskView>
  readonly jobs: ReadonlyArray<JobView>
  readonly durable: DurableView | null
  readonly offload: OffloadStats | null
  /** Whether this caller may retry and discard dead durable tasks. */
  readonly actions: boolean
}

/** Dead tasks listed at most (newest first); the counts give the total. */
const DEAD_LISTED = 50

const durableView: Effect.Effect<DurableView | null> = Effect.flatMap(
  Effect.serviceOption(DurableStore),
  (found) => {
    if (Option.isNone(found)) return Effect.succeed(null)
    const store = found.value
    return Effect.map(
      Effect.either(Effect.all([store.counts, store.listDead(undefined, DEAD_LISTED)])),
      (read): DurableView => ({
        store: store.description,
        ...(read._tag === "Right"
          ? {
            counts: read.right[0],
            // The payload (`element`) stays in the store.
            dead: read.right[1].map(({ attempts, id, lastFailure, name }) => ({ id, name, attempts, lastFailure }))
          }
          : { error: read.left.message }),
        thisProcess: { ...store.stats }
      })
    )
  }
)

const offloadView: Effect.Effect<OffloadStats | null> = Effect.flatMap(
  Effect.serviceOption(OffloadTag),
  (pool) => (Option.isNone(pool) ? Effect.succeed(null) : pool.value.stats)
)

/** The page's view now; `actions` says whether the caller may act on dead durable tasks. */
export const view = (actions: boolean): Effect.Effect<View, never, Background> =>
  Effect.gen(function*() {
    const supervisor = yield* currentSupervisor
    const graceful = Option.getOrUndefined(yield* Effect.serviceOption(GracefulServer))
    const record = yield* currentRecord
    const now = yield* Clock.currentTimeMillis
    const tasks: Array<TaskView> = []
    const jobs: Array<JobView> = []
    for (const task of supervisor.owned) {
      if (task.kind === "daemon" || task.kind === "schedule") {
        const status = supervisor.jobs.status(task.name)
        const failure = status?.lastFailure
        jobs.push({
          id: task.id,
          name: task.name,
          kind: task.kind,
          state: task.state,
          startedAt: task.startedAt ?? null,
          nextRunAt: status?.nextRunAt ?? null,
          failures: status?.failures ?? 0,
          lastFailure: failure === undefined ? null : { at: failure.at, cause: Cause.pretty(failure.cause) }
        })
      } else {
        tasks.push({
          id: task.id,
          name: task.name,
          kind: task.kind,
          state: task.state,
          submittedAt: task.submittedAt,
          startedAt: task.startedAt ?? null,
          request: task.request ?? null
        })
      }
    }
    const draining = graceful?.draining === true
    return {
      now,
      phase: {
        name: draining ? "draining" : supervisor.closing ? "stopping" : "serving",
        since: draining || supervisor.closing ? record.startedAt ?? null : null,
        requestsInFlight: graceful === undefined ? null : graceful.fibers.size
      },
      stats: { ...supervisor.stats },
      tasks,
      jobs,
      durable: yield* durableView,
      offload: yield* offloadView,
      actions
    }
  })
