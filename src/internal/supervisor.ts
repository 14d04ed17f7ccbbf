/**
 * The server-lifetime supervisor: admission (shutdown, keys, concurrency cap, bounded queue), one
 * root fiber per task, failure reporting, idle tracking, snapshots and the shutdown sequence.
 *
 * All bookkeeping is synchronous JavaScript on one thread: admission, registration and the fork
 * happen in a single step, so no other fiber can observe a half-registered task.
 */
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberId,
  DefaultServices,
  FiberRef,
  FiberRefs,
  HashMap,
  Option,
  Runtime,
  Scope,
  Tracer
} from "effect"
import { QueueFullError, ShuttingDownError } from "../Errors.js"
import { currentRequestTasks } from "./requestTasks.js"

/**
 * The id of the supervised task the current fiber runs for (0 outside any). A task's body starts
 * running before `submit` returns its handle, so this is how a schedule's loop knows its own id
 * from its very first run.
 */
export const currentTaskId: FiberRef.FiberRef<number> = FiberRef.unsafeMake(0)

/** Effect's built-in tracer, which exports nothing. */
const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** What kind of work a supervised fiber does; daemons never count as pending work. */
export type TaskKind = "task" | "after-response" | "daemon" | "schedule"

/**
 * Where a task is in its life. `waiting` means admitted but held back (an after-response task
 * waiting for its response to be written, or a keyed task waiting for the one it replaces);
 * `idle` is a schedule sleeping until its next tick.
 */
export type TaskState = "waiting" | "queued" | "running" | "idle" | "restarting"

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

export interface SupervisorStats {
  /** Tasks that ran to the end, successfully or not. */
  finished: number
  /** Of those, the ones that failed (each was logged once). */
  failed: number
  /** Tasks interrupted before finishing, including those that never left the queue. */
  interrupted: number
  /** Forks refused because of shutdown or a full queue. */
  rejected: number
  /** After-response tasks skipped because their handler failed. */
  skipped: number
  /** Daemons and schedules stopped at shutdown while idle (a schedule cut mid-run counts as interrupted). */
  jobsStopped: number
  /** Failed schedule runs and daemon failures (each was logged once). */
  jobFailures: number
}

export interface ShutdownOutcome {
  readonly graceMillis: number
  readonly interruptMillis: number
  /** Tasks still pending when the grace ran out (they were then interrupted). */
  readonly interruptedNames: ReadonlyArray<string>
  /** Fibers that had not ended when the interrupt timeout ran out. */
  readonly stillRunning: ReadonlyArray<string>
}

export interface ResolvedOptions {
  readonly concurrency: number
  readonly maxQueued: number
  readonly grace: Duration.Duration
  readonly interruptTimeout: Duration.Duration
}

export interface SubmitSpec<A, E, R> {
  readonly name: string
  readonly kind: TaskKind
  readonly effect: Effect.Effect<A, E, R>
  readonly key?: string | undefined
  readonly onConflict?: "replace" | "keep" | undefined
  /** Subject to the concurrency cap (plain tasks and after-response tasks). */
  readonly capped: boolean
  /** Refuse with `QueueFullError` when the queue is full (plain tasks only). */
  readonly enforceQueueBound: boolean
  /** Runs before the task takes a slot; `false` skips the task (after-response gating). */
  readonly gate?: Effect.Effect<boolean> | undefined
  /** Report failures of the effect itself (schedules and daemons report their own runs). */
  readonly reportFailure?: boolean | undefined
}

interface TaskRecord {
  readonly id: number
  readonly name: string
  readonly key: string | undefined
  readonly kind: TaskKind
  state: TaskState
  readonly submittedAt: number
  startedAt: number | undefined
  fiber: Fiber.RuntimeFiber<unknown> | undefined
  holdsSlot: boolean
  /** An after-response task whose handler failed: ended without running. */
  skipped: boolean
  wake: Deferred.Deferred<void> | undefined
  /** Counted in `pending` (awaitIdle and the grace period wait for it). */
  pending: boolean
  readonly handle: TaskHandle
}

export class Supervisor {
  private nextId = 1
  private readonly records = new Map<number, TaskRecord>()
  private readonly queue: Array<TaskRecord> = []
  private readonly keys = new Map<string, TaskRecord>()
  private running = 0
  private pendingCount = 0
  private idleWaiters: Array<Deferred.Deferred<void>> = []
  private emptyWaiters: Array<Deferred.Deferred<void>> = []
  private closingFlag = false
  readonly stats: SupervisorStats = { finished: 0, failed: 0, interrupted: 0, rejected: 0, skipped: 0, jobsStopped: 0, jobFailures: 0 }

  /**
   * Daemons and schedules wait for this before their first step. Open from the start unless the
   * supervisor was made to hold them — by `Server.app`, until the whole app (options checked, port
   * bound) is up, so a failed start never runs a job's first iteration.
   */
  private readonly jobsReleased = Deferred.unsafeMake<void>(FiberId.none)
  private jobsHeld = true

  constructor(readonly options: ResolvedOptions, holdJobs = false) {
    if (!holdJobs) this.releaseJobs()
  }

  private readonly jobNames = new Set<string>()

  /** Reserves a daemon's or schedule's name; false when another job has it. */
  claimJobName(name: string): boolean {
    if (this.jobNames.has(name)) return false
    this.jobNames.add(name)
    return true
  }

  /** Lets held daemons and schedules start. */
  releaseJobs(): void {
    this.jobsHeld = false
    Deferred.unsafeDone(this.jobsReleased, Exit.void)
  }

  /** Waits until jobs may start (without yielding when they already may). */
  readonly awaitJobsReleased: Effect.Effect<void> = Effect.suspend(() =>
    this.jobsHeld ? Deferred.await(this.jobsReleased) : Effect.void
  )

  get closing(): boolean {
    return this.closingFlag
  }

  /** Admits and forks a task; fails without side effects when it is refused. */
  submit<A, E, R>(
    spec: SubmitSpec<A, E, R>
  ): Effect.Effect<TaskHandle, QueueFullError | ShuttingDownError, Exclude<R, Scope.Scope>> {
    return Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.withFiberRuntime((parent) => {
      if (this.closingFlag) {
        this.stats.rejected++
        return Effect.fail(new ShuttingDownError({ task: spec.name }))
      }
      let replaced: TaskRecord | undefined
      if (spec.key !== undefined) {
        const existing = this.keys.get(spec.key)
        if (existing !== undefined) {
          if ((spec.onConflict ?? "keep") === "keep") {
            return Effect.succeed({ ...existing.handle, started: false })
          }
          replaced = existing
        }
      }
      const { concurrency, maxQueued } = this.options
      if (
        spec.capped && spec.enforceQueueBound && replaced === undefined &&
        this.running >= concurrency && this.queue.length >= maxQueued
      ) {
        this.stats.rejected++
        return Effect.fail(new QueueFullError({ task: spec.name, concurrency, maxQueued }))
      }
      return Effect.map(Scope.make(), (scope) => this.register(spec, now, parent.currentContext, parent.getFiberRefs(), scope, replaced))
    }))
  }

  private register<A, E, R>(
    spec: SubmitSpec<A, E, R>,
    now: number,
    context: Context.Context<never>,
    fiberRefs: FiberRefs.FiberRefs,
    scope: Scope.CloseableScope,
    replaced: TaskRecord | undefined
  ): TaskHandle {
    const id = this.nextId++
    const record: TaskRecord = {
      id,
      name: spec.name,
      key: spec.key,
      kind: spec.kind,
      state: spec.kind === "daemon" ? "running" : spec.kind === "schedule" ? "idle" : "waiting",
      submittedAt: now,
      startedAt: undefined,
      fiber: undefined,
      holdsSlot: false,
      skipped: false,
      wake: undefined,
      pending: spec.kind === "task" || spec.kind === "after-response",
      handle: {
        id,
        name: spec.name,
        key: spec.key,
        started: true,
        // The fiber ends with the task's exit (see the end of `body`), after `settle` ran — or, when
        // the fiber itself was interrupted, with that interruption.
        await: Effect.suspend(() =>
          Effect.map(
            Fiber.await(record.fiber!),
            (outer) => (Exit.isSuccess(outer) ? outer.value as Exit.Exit<unknown, unknown> : outer)
          )
        ),
        interrupt: Effect.suspend(() =>
          record.fiber === undefined ? Effect.void : Effect.asVoid(Fiber.interrupt(record.fiber))
        )
      }
    }
    this.records.set(id, record)
    if (record.pending) this.pendingCount++
    if (spec.key !== undefined) this.keys.set(spec.key, record)

    // The span is made here and ended with the task, rather than by withSpan around it (whose
    // frames stay on the task's stack for its whole life); none for Effect's built-in tracer,
    // which exports nothing.
    const services = FiberRefs.getOrDefault(fiberRefs, DefaultServices.currentServices)
    const tracer = Context.get(services, Tracer.Tracer)
    const clock = Context.get(services, Clock.Clock)
    const timing = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerTimingEnabled)
    const parentSpan = Context.getOption(context, Tracer.ParentSpan)
    const span = tracer !== nativeTracer && FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerEnabled)
      ? tracer.span(
        `background ${spec.name}`,
        Option.none(),
        Context.empty(),
        Option.isSome(parentSpan)
          ? [{ _tag: "SpanLink", span: parentSpan.value, attributes: { "link.reason": "forked-by" } }]
          : [],
        timing ? clock.unsafeCurrentTimeNanos() : BigInt(0),
        "internal"
      )
      : undefined
    span?.attribute("background.task", spec.name)
    span?.attribute("background.kind", spec.kind)

    const run = record.kind === "schedule" ? spec.effect : Effect.flatMap(Clock.currentTimeMillis, (startedAt) => {
      record.state = "running"
      record.startedAt = startedAt
      return spec.effect
    })
    // A plain task goes straight to its effect; no generator frame stays under it.
    const body = replaced === undefined && spec.gate === undefined
      ? spec.capped ? Effect.zipRight(this.acquireSlot(record), run) : run
      : Effect.gen(this, function*() {
        if (replaced?.fiber !== undefined) yield* Fiber.interrupt(replaced.fiber)
        if (spec.gate !== undefined) {
          const go = yield* spec.gate
          if (!go) {
            record.skipped = true
            return yield* Effect.interrupt
          }
        }
        if (spec.capped) yield* this.acquireSlot(record)
        return yield* run
      })
    const program = body.pipe(
      // The task's scope is made by submit and closed here, as Effect.scoped would, without its
      // acquire/use/release frames.
      Effect.onExit((exit) =>
        Effect.flatMap(Effect.exit(Scope.close(scope, exit)), (closed) => {
          // As with Effect.scoped, a finalizer's defect makes the task fail.
          const final: Exit.Exit<unknown, unknown> = Exit.isSuccess(closed)
            ? exit
            : Exit.isSuccess(exit)
            ? closed
            : Exit.failCause(Cause.sequential(exit.cause, closed.cause))
          span?.end(timing ? clock.unsafeCurrentTimeNanos() : BigInt(0), final)
          return this.settle(record, final, spec.reportFailure ?? true)
        })
      ),
      // settle has reported the failure; a failing root fiber would be logged again by the runtime
      Effect.exit
    )

    // The task's own fiber refs, set once here rather than by an effect per ref in the task: its
    // log annotations, no per-request task list, and (for jobs) its id.
    let refs = fiberRefs
    const set = <V>(fiberRef: FiberRef.FiberRef<V>, value: V) => {
      refs = FiberRefs.updateAs(refs, { fiberId: FiberId.none, fiberRef, value })
    }
    set(
      FiberRef.currentLogAnnotations,
      HashMap.set(HashMap.set(FiberRefs.getOrDefault(refs, FiberRef.currentLogAnnotations), "task", spec.name), "taskKind", spec.kind)
    )
    if (Option.isSome(FiberRefs.getOrDefault(refs, currentRequestTasks))) set(currentRequestTasks, Option.none())
    if (spec.kind === "daemon" || spec.kind === "schedule") set(currentTaskId, id)
    const withScope = Context.add(context, Scope.Scope, scope)
    // defaultRuntimeFlags are interruptible, whatever region the caller forked from.
    const runtime = Runtime.make({
      context: (span === undefined
        ? Context.omit(Tracer.ParentSpan)(withScope)
        : Context.add(withScope, Tracer.ParentSpan, span)) as Context.Context<R>,
      fiberRefs: refs,
      runtimeFlags: Runtime.defaultRuntimeFlags
    })
    record.fiber = Runtime.runFork(runtime)(program)
    return record.handle
  }

  /** Takes a concurrency slot, queueing (FIFO) while none is free. */
  private acquireSlot(record: TaskRecord): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.running < this.options.concurrency) {
        this.running++
        record.holdsSlot = true
        return Effect.void
      }
      const wake = Deferred.unsafeMake<void>(FiberId.none)
      record.wake = wake
      record.state = "queued"
      this.queue.push(record)
      return Deferred.await(wake)
    })
  }

  private releaseSlot(record: TaskRecord): void {
    const index = this.queue.indexOf(record)
    if (index >= 0) this.queue.splice(index, 1)
    if (!record.holdsSlot) return
    record.holdsSlot = false
    this.running--
    while (this.running < this.options.concurrency && this.queue.length > 0) {
      const next = this.queue.shift()!
      this.running++
      next.holdsSlot = true
      Deferred.unsafeDone(next.wake!, Exit.void)
    }
  }

  private settle(
    record: TaskRecord,
    exit: Exit.Exit<unknown, unknown>,
    reportFailure: boolean
  ): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.releaseSlot(record)
      this.records.delete(record.id)
      if (record.key !== undefined && this.keys.get(record.key) === record) this.keys.delete(record.key)
      let report: Effect.Effect<void> = Effect.void
      const job = record.kind === "daemon" || record.kind === "schedule"
      if (job && !(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) && record.pending)) {
        // A job's failures were counted run by run; its end is a stop, unless cut off mid-run.
        this.stats.jobsStopped++
      } else if (Exit.isSuccess(exit)) {
        this.stats.finished++
      } else if (record.skipped) {
        this.stats.skipped++
      } else if (Cause.isInterruptedOnly(exit.cause)) {
        this.stats.interrupted++
      } else {
        this.stats.finished++
        this.stats.failed++
        if (reportFailure) {
          report = Effect.logError(`background ${record.kind} "${record.name}" failed`, exit.cause).pipe(
            Effect.annotateLogs({ task: record.name, taskKind: record.kind })
          )
        }
      }
      if (record.pending) {
        record.pending = false
        this.pendingCount--
      }
      this.notify()
      return report
    })
  }

  private notify(): void {
    if (this.pendingCount === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const waiter of waiters) Deferred.unsafeDone(waiter, Exit.void)
    }
    if (this.records.size === 0 && this.emptyWaiters.length > 0) {
      const waiters = this.emptyWaiters
      this.emptyWaiters = []
      for (const waiter of waiters) Deferred.unsafeDone(waiter, Exit.void)
    }
  }

  /** Marks a schedule's run as in progress (pending work) or finished. */
  setRunning(id: number, running: boolean, now: number): void {
    const record = this.records.get(id)
    if (record === undefined) return
    record.state = running ? "running" : "idle"
    if (running) record.startedAt = now
    if (running && !record.pending) {
      record.pending = true
      this.pendingCount++
    } else if (!running && record.pending) {
      record.pending = false
      this.pendingCount--
      this.notify()
    }
  }

  /** Marks a daemon as waiting to restart after a failure, or running again. */
  setState(id: number, state: TaskState, now?: number): void {
    const record = this.records.get(id)
    if (record === undefined) return
    record.state = state
    if (now !== undefined) record.startedAt = now
  }

  /** Completes once no task, after-response task or schedule run is pending. */
  readonly awaitIdle: Effect.Effect<void> = Effect.suspend(() => {
    if (this.pendingCount === 0) return Effect.void
    const waiter = Deferred.unsafeMake<void>(FiberId.none)
    this.idleWaiters.push(waiter)
    return Deferred.await(waiter)
  })

  private readonly awaitEmpty: Effect.Effect<void> = Effect.suspend(() => {
    if (this.records.size === 0) return Effect.void
    const waiter = Deferred.unsafeMake<void>(FiberId.none)
    this.emptyWaiters.push(waiter)
    return Deferred.await(waiter)
  })

  readonly snapshot: Effect.Effect<ReadonlyArray<TaskInfo>> = Effect.sync(() =>
    Array.from(this.records.values(), (record) => ({
      id: record.id,
      name: record.name,
      key: record.key,
      kind: record.kind,
      state: record.state,
      submittedAt: record.submittedAt,
      startedAt: record.startedAt
    }))
  )

  /** Number of tasks still owned by the supervisor. */
  get size(): number {
    return this.records.size
  }

  /** Names of every fiber still owned by the supervisor. */
  get liveNames(): ReadonlyArray<string> {
    return Array.from(this.records.values(), (record) => record.name)
  }

  /**
   * Phases 3 and 4: refuse new work, give pending work the grace period, then interrupt what is
   * left (daemons and schedules included) in parallel and wait, bounded, for their finalizers.
   */
  readonly shutdown: Effect.Effect<ShutdownOutcome> = Effect.gen(this, function*() {
    this.closingFlag = true
    const graceStart = yield* Clock.currentTimeMillis
    yield* Effect.interruptible(this.awaitIdle).pipe(Effect.timeoutOption(this.options.grace))
    const interruptStart = yield* Clock.currentTimeMillis
    const left = Array.from(this.records.values())
    const interruptedNames = left.filter((record) => record.pending).map((record) => record.name)
    for (const record of left) {
      if (record.fiber !== undefined) record.fiber.unsafeInterruptAsFork(FiberId.none)
    }
    yield* Effect.interruptible(this.awaitEmpty).pipe(Effect.timeoutOption(this.options.interruptTimeout))
    const end = yield* Clock.currentTimeMillis
    return {
      graceMillis: interruptStart - graceStart,
      interruptMillis: end - interruptStart,
      interruptedNames,
      stillRunning: this.liveNames
    }
  })
}
