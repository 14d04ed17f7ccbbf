/**
 * The server-lifetime supervisor: admission (shutdown, keys, the concurrency cap and its bounded
 * queue), starting each task (a root fiber of its own, or a runner fiber for after-response
 * tasks), counting and reporting each task's end, idle tracking, snapshots and the shutdown
 * sequence. The parts with a life of their own are in their own modules: the task record
 * (task.ts), slots and queue (slots.ts), keyed replacement lines (keys.ts), the jobs' names and
 * start gate (jobs.ts), how a task's fiber is made (taskFiber.ts), and the runner fibers
 * (runners.ts).
 *
 * All bookkeeping is synchronous JavaScript on one thread: admission, registration and the fork
 * happen in a single step, so no other fiber can observe a half-registered task.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as causes from "../cause.js"
import { QueueFullError, ShuttingDownError } from "../../Errors.js"
import * as metrics from "../metrics.js"
import { Table } from "../table.js"
import { Jobs } from "./jobs.js"
import { KeyLines, stopReplaced } from "./keys.js"
import { Slots } from "./slots.js"
import {
  currentTaskId,
  Handle,
  type Origin,
  originOf,
  type TaskHandle,
  type TaskInfo,
  type TaskKind,
  TaskRecord,
  type RequestOrigin,
  requestOriginOf,
  type TaskState
} from "./task.js"
import { Runners, works as runnersWork } from "./runners.js"
import * as taskFiber from "./taskFiber.js"
import * as taskScope from "./taskScope.js"
import { Waiters } from "./waiters.js"

/**
 * What the supervisor counted so far.
 *
 * @example
 * ```ts
 * import type { Background } from "effect-background"
 *
 * const summary = (stats: Background.SupervisorStats) => `${stats.finished} finished, ${stats.failed} failed`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
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
  /**
   * Daemons and schedules that have ended: stopped at shutdown or through their handle, or a daemon
   * that returned or ran out of restarts (a schedule cut mid-run counts as interrupted instead).
   */
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
}

export class Supervisor {
  private nextId = 1
  private readonly records = new Table<TaskRecord>()
  private readonly slots: Slots
  private readonly keys = new KeyLines()
  readonly jobs: Jobs
  private readonly annotations = new taskFiber.Annotations()
  private readonly contexts = new taskFiber.Contexts(
    taskScope.sharedWorks ? new taskScope.SharedScope((id) => this.records.get(id)?.scope) : undefined
  )
  /** Runs after-response tasks without a fiber each (runners.ts), where Effect allows it. */
  private readonly runners: Runners | undefined = runnersWork
    ? new Runners({
      take: (fiber, record) => {
        const effect = record.effect
        if (record.exit !== undefined || record.scope === undefined || effect === undefined) return undefined
        record.fiber = fiber
        record.effect = undefined
        return effect
      },
      refs: (fiber, record, origin) =>
        taskFiber.refsOf(record, record.scope!, origin, this.contexts, this.annotations, fiber.id()),
      free: () => this.slots.free,
      seated: (record, effect, clock) => this.whenSeated(record, effect, clock),
      end: (record, exit, clock) => this.closeAndEnd(record, exit, clock)
    })
    : undefined
  private pendingCount = 0
  private readonly idle = new Waiters(() => this.pendingCount === 0)
  private readonly empty = new Waiters(() => this.records.size === 0)
  private closingFlag = false
  readonly stats: SupervisorStats = { finished: 0, failed: 0, interrupted: 0, rejected: 0, skipped: 0, jobsStopped: 0, jobFailures: 0 }

  /** `holdJobs`: daemons and schedules wait for `jobs.release()` before their first step. */
  constructor(readonly options: ResolvedOptions, holdJobs = false) {
    this.slots = new Slots(options.concurrency, options.maxQueued)
    this.jobs = new Jobs(holdJobs)
  }

  get closing(): boolean {
    return this.closingFlag
  }

  /** Admits and forks a task; fails without side effects when it is refused. */
  submit<A, E, R>(
    spec: SubmitSpec<A, E, R>
  ): Effect.Effect<TaskHandle, QueueFullError | ShuttingDownError, Exclude<R, Scope.Scope>> {
    return Effect.withFiberRuntime((parent) => this.submitFrom(parent, spec))
  }

  /** {@link submit}, from inside the calling fiber (`parent`) — one step fewer for `fork`. */
  submitFrom<A, E, R>(
    parent: Fiber.RuntimeFiber<unknown, unknown>,
    spec: SubmitSpec<A, E, R>
  ): Effect.Effect<TaskHandle, QueueFullError | ShuttingDownError, Exclude<R, Scope.Scope>> {
    if (this.closingFlag) return this.refuseClosing(spec.kind, spec.name)
    let replaced: TaskRecord | undefined
    if (spec.key !== undefined) {
      const existing = this.keys.holder(spec.key)
      if (existing !== undefined) {
        if ((spec.onConflict ?? "keep") === "keep") return Effect.succeed(new Handle(existing, false))
        replaced = existing
      }
    }
    // plain tasks are capped and refused past the queue bound (after-response tasks are only
    // capped, and never come through here; jobs are neither)
    if (spec.kind === "task" && replaced === undefined && this.slots.full) {
      this.stats.rejected++
      metrics.rejected(spec.kind, spec.name)
      const { concurrency, maxQueued } = this.options
      return metrics.withNotices(Effect.fail(new QueueFullError({ task: spec.name, concurrency, maxQueued })))
    }
    const now = Context.get(parent.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
    const record = this.admit(spec.name, spec.key, spec.kind, now, replaced, requestOriginOf(parent.currentContext))
    this.start(record, spec.effect, originOf(parent), true)
    return metrics.withNotices(Effect.succeed(new Handle(record, true)))
  }

  /** Counts a task refused because shutdown has begun, and fails with that refusal. */
  refuseClosing(kind: TaskKind, name: string): Effect.Effect<never, ShuttingDownError> {
    this.stats.rejected++
    metrics.rejected(kind, name)
    return metrics.withNotices(Effect.fail(new ShuttingDownError({ task: name })))
  }

  /**
   * Admits an after-response task without starting it: it counts as pending work (shutdown waits
   * for it) and shows in snapshots as waiting, but holds no fiber until {@link start} or
   * {@link skip}. Returns `undefined` once shutdown has begun (and counts the refusal).
   */
  reserve(name: string, now: number, request: RequestOrigin | undefined): TaskRecord | undefined {
    if (this.closingFlag) {
      this.stats.rejected++
      metrics.rejected("after-response", name)
      return undefined
    }
    return this.admit(name, undefined, "after-response", now, undefined, request)
  }

  private admit(
    name: string,
    key: string | undefined,
    kind: TaskKind,
    now: number,
    replaced: TaskRecord | undefined,
    request: RequestOrigin | undefined
  ): TaskRecord {
    const record = new TaskRecord(this.nextId++, name, key, kind, now, request)
    this.records.set(record.id, record)
    if (record.pending) this.pendingCount++
    this.keys.enter(record, replaced)
    // (daemons and schedules record their runs themselves: schedule.ts)
    if (kind === "task" || kind === "after-response") {
      record.metrics = metrics.series(kind, name)
      metrics.admitted(record.metrics)
    }
    return record
  }

  /** Ends a reserved task without running it: its handler failed. */
  skip(record: TaskRecord): void {
    if (!this.records.has(record.id) || record.fiber !== undefined) return
    record.skipped = true
    void this.end(record, Exit.interrupt(FiberId.none))
  }

  /**
   * Starts an admitted task with the origin's services and fiber refs, plus its own Scope, its log
   * annotations and its id: in a fiber of its own, where `immediate` runs its first steps now,
   * before this returns (otherwise they are scheduled); or, an after-response task, handed to the
   * runner fibers. Does nothing for a reserved task that shutdown has already ended.
   */
  start<A, E, R>(
    record: TaskRecord,
    effect: Effect.Effect<A, E, R>,
    origin: Origin,
    immediate: boolean
  ): void {
    // (ended, started, or handed to a runner already)
    if (record.exit !== undefined || record.fiber !== undefined || record.effect !== undefined) return
    try {
      this.unsafeStart(record, effect, origin, immediate)
    } catch (error) {
      // Something around the task threw before its fiber existed (a tracer's span, say): the task
      // ends as a defect, reported like any task's, rather than waiting forever or escaping.
      if (record.fiber === undefined && record.exit === undefined) {
        const ended = this.end(record, Exit.die(error))
        // (a job's end reports nothing: its loop reports its runs, and this one never ran)
        const report = record.kind === "daemon" || record.kind === "schedule"
          ? Effect.logError(`background ${record.kind} "${record.name}" could not start`, Cause.die(error))
          : ended
        // reported through the origin's loggers, as the task's own failure would have been
        Runtime.runFork(Runtime.make({ context: origin.context, fiberRefs: origin.fiberRefs, runtimeFlags: Runtime.defaultRuntimeFlags }))(report)
      }
    }
  }

  private unsafeStart<A, E, R>(
    record: TaskRecord,
    effect: Effect.Effect<A, E, R>,
    origin: Origin,
    immediate: boolean
  ): void {
    const scope = taskScope.make()
    record.scope = scope
    record.span = taskFiber.spanOf(record, origin)
    record.effect = effect as Effect.Effect<unknown, unknown, never>
    if (record.kind === "after-response" && this.runners !== undefined) this.runners.run(record, origin)
    else record.fiber = taskFiber.fork(record, this.program, scope, origin, this.contexts, this.annotations, immediate)
  }

  /**
   * What every task's fiber runs: the task's own effect, once the task it replaces (if any) has
   * stopped and, for capped kinds, once it has a slot; the outcome is counted by the handlers. One
   * program shared by every task (it finds its task by the fiber's task id), so a task costs no
   * effects of its own. The fiber is uninterruptible around an interruptible body, so the handlers
   * always run.
   */
  private readonly program: Effect.Effect<void> = Effect.matchCauseEffect(
    Effect.interruptible(Effect.withFiberRuntime<unknown, unknown>((fiber) => {
      const record = this.records.get(fiber.getFiberRef(currentTaskId))
      const effect = record?.effect
      if (record === undefined || effect === undefined) return Effect.void
      record.effect = undefined
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const replaced = record.replacing
      return replaced === undefined
        ? this.whenSeated(record, effect, clock)
        : Effect.zipRight(stopReplaced(replaced), Effect.suspend(() => this.whenSeated(record, effect, clock)))
    })),
    {
      onFailure: (cause: Cause.Cause<unknown>) => this.finish(Exit.failCause(cause)),
      onSuccess: (value: unknown) => this.finish(Exit.succeed(value))
    }
  )

  /**
   * The task's effect, once it may run: at once, or (capped kinds, every slot taken) after its
   * wait in the queue. A replacement may already hold the slot, or a place in the queue, of the
   * task it replaced.
   */
  private whenSeated(
    record: TaskRecord,
    effect: Effect.Effect<unknown, unknown>,
    clock: Clock.Clock
  ): Effect.Effect<unknown, unknown> {
    const capped = record.kind === "task" || record.kind === "after-response"
    const wait = capped ? this.slots.seat(record) : undefined
    if (wait === undefined) {
      this.begin(record, clock)
      return effect
    }
    return Effect.zipRight(
      Deferred.await(wait),
      Effect.suspend(() => {
        this.begin(record, clock)
        return effect
      })
    )
  }

  private begin(record: TaskRecord, clock: Clock.Clock): void {
    record.begin(clock)
    if (record.metrics !== undefined && record.startedAt !== undefined) {
      metrics.began(record.metrics, record.submittedAt, record.startedAt)
    }
  }

  /**
   * Closes the current task's scope, as Effect.scoped would, then counts its end. The program's
   * handlers call it from inside the task's fiber, which is then Effect's current fiber: it is read
   * at once rather than through one more step of that fiber (`withFiberRuntime`).
   */
  private finish(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const current = Fiber.getCurrentFiber()
    return current._tag === "Some" ? this.finishIn(current.value, exit) : Effect.withFiberRuntime((fiber) => this.finishIn(fiber, exit))
  }

  private finishIn(fiber: Fiber.RuntimeFiber<unknown, unknown>, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const record = this.records.get(fiber.getFiberRef(currentTaskId))
    if (record === undefined) return Effect.void
    return this.closeAndEnd(record, exit, Context.get(fiber.currentDefaultServices, Clock.Clock)) ?? Effect.void
  }

  /**
   * Closes the task's scope with `exit`, as Effect.scoped would, and counts its end: `undefined`
   * when all of it is done already, or what is left to run (finalizers, the failure report).
   */
  private closeAndEnd(
    record: TaskRecord,
    exit: Exit.Exit<unknown, unknown>,
    clock: Clock.Clock
  ): Effect.Effect<void> | undefined {
    const scope = record.scope
    if (scope === undefined) return undefined
    const closing = taskScope.close(scope, exit)
    if (closing === undefined) {
      const report = this.end(record, exit, clock)
      return report === Effect.void ? undefined : report
    }
    return Effect.flatMap(Effect.exit(closing), (closed) =>
      // As with Effect.scoped, a finalizer's defect makes the task fail.
      this.end(record, taskScope.closedWith(exit, closed), clock))
  }

  /**
   * Counts a task's end and forgets it; returns the failure report to log (or `Effect.void`). Runs
   * synchronously, so it may be called outside any fiber.
   */
  private end(record: TaskRecord, exit: Exit.Exit<unknown, unknown>, clock?: Clock.Clock): Effect.Effect<void> {
    if (record.exit !== undefined) return Effect.void
    record.exit = exit
    if (record.span !== undefined) {
      const { span, clock } = record.span
      span.end(clock === undefined ? BigInt(0) : clock.unsafeCurrentTimeNanos(), exit)
    }
    this.slots.release(record)
    this.keys.leave(record)
    this.records.delete(record.id)
    let report: Effect.Effect<void> = Effect.void
    const job = record.kind === "daemon" || record.kind === "schedule"
    if (job && !(record.pending && Exit.isFailure(exit) && causes.isInterruptedOnly(exit.cause))) {
      // A job's failures were counted run by run; its end is a stop, unless cut off mid-run.
      this.stats.jobsStopped++
    } else if (Exit.isSuccess(exit)) {
      this.stats.finished++
    } else if (record.skipped) {
      this.stats.skipped++
    } else if (causes.isInterruptedOnly(exit.cause)) {
      this.stats.interrupted++
    } else {
      this.stats.finished++
      this.stats.failed++
      report = Effect.logError(`background ${record.kind} "${record.name}" failed`, exit.cause).pipe(
        Effect.annotateLogs({ task: record.name, taskKind: record.kind })
      )
    }
    if (record.metrics !== undefined) metrics.ended(record.metrics, exit, record.skipped, record.startedAt, clock)
    if (record.pending) {
      record.pending = false
      this.pendingCount--
    }
    this.notify()
    const onEnd = record.onEnd
    // Nothing of the task's outlives it but its exit (a handle may still ask for it).
    record.onEnd = undefined
    record.scope = undefined
    record.span = undefined
    record.replacing = undefined
    record.successor = undefined
    // Once shutdown has begun no job is started again, so the names are freed all at once when it
    // is done (10,000 daemons freeing theirs one by one showed in its profile).
    if (job && !this.closingFlag) this.jobs.forget(record.name)
    onEnd?.()
    return report
  }

  private notify(): void {
    this.idle.check()
    this.empty.check()
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
  readonly awaitIdle: Effect.Effect<void> = this.idle.await

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

  /** The tasks the supervisor owns now, for the inspector to read (and never to change). */
  get owned(): Iterable<Readonly<TaskRecord>> {
    return this.records.values()
  }

  /** Number of tasks still owned by the supervisor. */
  get size(): number {
    return this.records.size
  }

  /** The name of the task whose fibers carry `id` as their `currentTaskId`, while it is owned. */
  nameOf(id: number): string | undefined {
    return this.records.get(id)?.name
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
    const interruptedNames: Array<string> = []
    for (const record of left) if (record.pending) interruptedNames.push(record.name)
    // Each runner fiber once: a runner holds several after-response tasks, and every interrupt a
    // fiber gets deepens the cause it ends them with. Every other task has a fiber of its own.
    const runnersInterrupted = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    for (const record of left) {
      const fiber = record.fiber
      // A reserved after-response task that never started has nothing to interrupt: it just ends.
      if (fiber !== undefined) {
        if (record.kind !== "after-response") fiber.unsafeInterruptAsFork(FiberId.none)
        else if (!runnersInterrupted.has(fiber)) {
          runnersInterrupted.add(fiber)
          fiber.unsafeInterruptAsFork(FiberId.none)
        }
      } else if (record.kind === "after-response") {
        record.onEnd = undefined // the tasks in line after it are in `left` too
        void this.end(record, Exit.interrupt(FiberId.none))
      }
    }
    yield* Effect.interruptible(this.empty.await).pipe(Effect.timeoutOption(this.options.interruptTimeout))
    this.jobs.forgetAll()
    this.runners?.close()
    const end = yield* Clock.currentTimeMillis
    return {
      graceMillis: interruptStart - graceStart,
      interruptMillis: end - interruptStart,
      interruptedNames,
      stillRunning: this.liveNames
    }
  })
}
