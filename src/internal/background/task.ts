/**
 * A supervised task as the supervisor keeps it: its id, name, kind and state, the fiber that runs
 * it once started, and what it holds meanwhile (a concurrency slot, its place in a key's line of
 * replacements, its scope and span). Also the handle its caller gets, and the fiber ref by which
 * a task's fibers know which task they run for.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import type * as Tracer from "effect/Tracer"
import type * as metrics from "../metrics.js"
import type * as taskScope from "./taskScope.js"

/**
 * The id of the supervised task the current fiber runs for (0 outside any). A task's body starts
 * running before `submit` returns its handle, so this is how a schedule's loop knows its own id
 * from its very first run.
 */
export const currentTaskId: FiberRef.FiberRef<number> = FiberRef.unsafeMake(0)

/** What kind of work a supervised fiber does; daemons never count as pending work. */
export type TaskKind = "task" | "after-response" | "daemon" | "schedule"

/**
 * Where a task is in its life. `waiting` means admitted but held back (an after-response task
 * waiting for its response to be written, or a keyed task waiting for the one it replaces);
 * `idle` is a schedule sleeping until its next tick.
 */
export type TaskState = "waiting" | "queued" | "running" | "idle" | "restarting"

/**
 * One entry of {@link Background.snapshot}: a task's name, key, id, kind, state and times.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Background } from "effect-background"
 *
 * const describe = (task: Background.TaskInfo) => `${task.kind} ${task.name}: ${task.state}`
 * const lines = Effect.map(Background.snapshot, (tasks) => tasks.map(describe))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskInfo {
  readonly id: number
  readonly name: string
  readonly key: string | undefined
  readonly kind: TaskKind
  readonly state: TaskState
  /** Epoch milliseconds when the task was admitted. */
  readonly submittedAt: number
  /** Epoch milliseconds when the task (or a schedule's current run) last started, if it has. */
  readonly startedAt: number | undefined
}

/**
 * A running or finished task, returned by {@link Background.fork}.
 *
 * @example
 * ```ts
 * import { Effect, Exit } from "effect"
 * import { Background } from "effect-background"
 *
 * const program = Effect.gen(function*() {
 *   const handle: Background.TaskHandle = yield* Background.fork(Effect.sleep("1 minute"), "slow")
 *   yield* handle.interrupt
 *   const exit = yield* handle.await
 *   yield* Effect.log(`${handle.name} interrupted: ${Exit.isInterrupted(exit)}`)
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskHandle {
  readonly id: number
  readonly name: string
  readonly key: string | undefined
  /** `false` when a task with the same key was already running and was kept instead. */
  readonly started: boolean
  /** Waits for the task to end and returns how it ended. */
  readonly await: Effect.Effect<Exit.Exit<unknown, unknown>>
  /** Interrupts the task (removing it from the queue if it has not started) and waits for it. */
  readonly interrupt: Effect.Effect<void>
}


/** Where a task's fiber takes its services and fiber refs from: the fiber that added it. */
export interface Origin {
  readonly context: Context.Context<never>
  readonly fiberRefs: FiberRefs.FiberRefs
  /**
   * What starting a task reads of `fiberRefs`, read at the first start and kept (`servicesOf` in
   * taskFiber.ts): the Promise API starts all its tasks from one origin.
   */
  services: OriginServices | undefined
}

/** The services a task's start reads of its origin. */
export interface OriginServices {
  readonly clock: Clock.Clock
  /** The tracer, when it exports and tracing is on: otherwise a task has no span of its own. */
  readonly tracer: Tracer.Tracer | undefined
  /** Whether spans are timed (`FiberRef.currentTracerTimingEnabled`). */
  readonly timing: boolean
}

/**
 * The request a task came from, as the inspector shows it: its method and its route's pattern —
 * never its URL, which can carry data (an email, an id).
 */
export interface RequestOrigin {
  readonly method: string
  /** The route's pattern (`/send-notification/:email`), when a router served the request. */
  readonly route: string | undefined
}

/** The request the fiber with this context serves, if any (read when a task is admitted). */
export const requestOriginOf = (context: Context.Context<never>): RequestOrigin | undefined => {
  const request = Context.getOption(context, HttpServerRequest.HttpServerRequest)
  if (request._tag === "None") return undefined
  const route = Context.getOption(context, HttpRouter.RouteContext)
  return { method: request.value.method, route: route._tag === "Some" ? route.value.route.path : undefined }
}

/** The fiber refs of a fiber, as a task it starts will inherit them. */
export const originOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Origin => ({
  context: fiber.currentContext,
  fiberRefs: refsHeldBy(fiber),
  services: undefined
})

/**
 * The fiber refs a fiber holds. `getFiberRefs()` first stores the fiber's runtime flags in them,
 * which copies the whole map; a task takes its fiber's flags from the supervisor, never from that
 * entry, so the map the fiber holds (where Effect's fibers keep it) serves as well, without the
 * copy. Where that is not found, `getFiberRefs()`.
 */
const refsHeldBy = (fiber: Fiber.RuntimeFiber<unknown, unknown>): FiberRefs.FiberRefs => {
  const held: unknown = (fiber as { readonly _fiberRefs?: unknown })._fiberRefs
  return typeof held === "object" && held !== null && FiberRefs.FiberRefsSym in held
    ? held as FiberRefs.FiberRefs
    : fiber.getFiberRefs()
}

export class TaskRecord {
  state: TaskState
  startedAt: number | undefined = undefined
  fiber: Fiber.RuntimeFiber<void> | undefined = undefined
  /** Holds one of the concurrency slots (capped kinds only; see slots.ts). */
  holdsSlot = false
  /** An after-response task whose handler failed: ended without running. */
  skipped = false
  /** Set once the task has waited in the queue for a slot: done when it is given one. */
  wake: Deferred.Deferred<void> | undefined = undefined
  /** Counted in `pending` (awaitIdle and the grace period wait for it). */
  pending: boolean
  /** How the task ended, once it has. */
  exit: Exit.Exit<unknown, unknown> | undefined = undefined
  /** Called once the task has ended and been counted (starts the next after-response task in line). */
  onEnd: (() => void) | undefined = undefined
  /** The task's effect, from when its fiber is started until that fiber takes it. */
  effect: Effect.Effect<unknown, unknown> | undefined = undefined
  /** Set when the task's fiber is started. */
  scope: taskScope.TaskScope | undefined = undefined
  /** The keyed task this one replaced, until this one ends. */
  replacing: TaskRecord | undefined = undefined
  /** The keyed task replacing this one: it inherits this one's slot or place in the queue. */
  successor: TaskRecord | undefined = undefined
  /** The task's span, with the clock that times it (none when timing is off), under a real tracer. */
  span: { readonly span: Tracer.Span; readonly clock: Clock.Clock | undefined } | undefined = undefined
  /** The task's metric labels (forks and after-response tasks; see internal/metrics.ts). */
  metrics: metrics.Series | undefined = undefined

  constructor(
    readonly id: number,
    readonly name: string,
    readonly key: string | undefined,
    readonly kind: TaskKind,
    readonly submittedAt: number,
    /** The request that added or forked it (none for jobs, or work started outside a request). */
    readonly request: RequestOrigin | undefined
  ) {
    this.state = kind === "daemon" ? "running" : kind === "schedule" ? "idle" : "waiting"
    this.pending = kind === "task" || kind === "after-response"
  }

  /** The task (not a schedule, which marks each run) starts running. */
  begin(clock: Clock.Clock): void {
    if (this.kind === "schedule") return
    this.state = "running"
    this.startedAt = clock.unsafeCurrentTimeMillis()
  }
}

/** Made on demand for the caller of `submit`; it holds nothing the record does not. */
export class Handle implements TaskHandle {
  constructor(private readonly record: TaskRecord, readonly started: boolean) {}
  get id(): number {
    return this.record.id
  }
  get name(): string {
    return this.record.name
  }
  get key(): string | undefined {
    return this.record.key
  }
  get await(): Effect.Effect<Exit.Exit<unknown, unknown>> {
    const record = this.record
    return Effect.suspend(() =>
      record.fiber === undefined
        ? Effect.succeed(record.exit ?? Exit.interrupt(FiberId.none))
        // The fiber ends once `end` has recorded the task's exit (a finalizer's defect included).
        : Effect.map(Fiber.await(record.fiber), (outer) => record.exit ?? outer)
    )
  }
  get interrupt(): Effect.Effect<void> {
    const record = this.record
    return Effect.suspend(() => record.fiber === undefined ? Effect.void : Effect.asVoid(Fiber.interrupt(record.fiber)))
  }
}
