/**
 * The server-lifetime supervisor: admission (shutdown, keys, concurrency cap, bounded queue), one
 * root fiber per task, failure reporting, idle tracking, snapshots and the shutdown sequence.
 *
 * All bookkeeping is synchronous JavaScript on one thread: admission, registration and the fork
 * happen in a single step, so no other fiber can observe a half-registered task.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as DefaultServices from "effect/DefaultServices"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { QueueFullError, ShuttingDownError } from "../../Errors.js"
import * as taskScope from "./taskScope.js"
import { Waiters } from "./waiters.js"

/**
 * The id of the supervised task the current fiber runs for (0 outside any). A task's body starts
 * running before `submit` returns its handle, so this is how a schedule's loop knows its own id
 * from its very first run.
 */
export const currentTaskId: FiberRef.FiberRef<number> = FiberRef.unsafeMake(0)

/** Effect's built-in tracer, which exports nothing. */
export const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

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

/** Where a task's fiber takes its services and fiber refs from: the fiber that added it. */
export interface Origin {
  readonly context: Context.Context<never>
  readonly fiberRefs: FiberRefs.FiberRefs
}

/** The fiber refs of a fiber, as a task it starts will inherit them. */
export const originOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Origin => ({
  context: fiber.currentContext,
  fiberRefs: fiber.getFiberRefs()
})

/** A task's fiber starts uninterruptible, so its end is always counted; its body is interruptible. */
const taskFlags = RuntimeFlags.disable(Runtime.defaultRuntimeFlags, RuntimeFlags.Interruption)

export class TaskRecord {
  state: TaskState
  startedAt: number | undefined = undefined
  fiber: Fiber.RuntimeFiber<void> | undefined = undefined
  holdsSlot = false
  /** An after-response task whose handler failed: ended without running. */
  skipped = false
  wake: Deferred.Deferred<void> | undefined = undefined
  /** Counted in `pending` (awaitIdle and the grace period wait for it). */
  pending: boolean
  /** How the task ended, once it has. */
  exit: Exit.Exit<unknown, unknown> | undefined = undefined
  /** Called once the task has ended and been counted (starts the next after-response task in line). */
  onEnd: (() => void) | undefined = undefined
  /** Set when the task's fiber is launched. */
  scope: taskScope.TaskScope | undefined = undefined
  /** The keyed task this one replaced, until this one ends. */
  replacing: TaskRecord | undefined = undefined
  /** The keyed task replacing this one: it inherits this one's slot or place in the queue. */
  successor: TaskRecord | undefined = undefined
  /** The task's span, with the clock that times it (none when timing is off), under a real tracer. */
  span: { readonly span: Tracer.Span; readonly clock: Clock.Clock | undefined } | undefined = undefined

  constructor(
    readonly id: number,
    readonly name: string,
    readonly key: string | undefined,
    readonly kind: TaskKind,
    readonly submittedAt: number
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

/**
 * Interrupts the task a keyed fork replaces and waits for it — and for the one it was itself
 * replacing, if that one has not ended yet: one task per key at a time, however fast replacements
 * come.
 */
const stopReplaced = (replaced: TaskRecord): Effect.Effect<void> =>
  Effect.suspend(() => {
    const line: Array<Fiber.RuntimeFiber<void>> = []
    for (let record: TaskRecord | undefined = replaced; record !== undefined; record = record.replacing) {
      if (record.exit === undefined && record.fiber !== undefined) line.push(record.fiber)
    }
    return Effect.forEach(line, Fiber.interrupt, { discard: true })
  })

/** Made on demand for the caller of `submit`; it holds nothing the record does not. */
class Handle implements TaskHandle {
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

export class Supervisor {
  private nextId = 1
  private readonly records = new Map<number, TaskRecord>()
  private readonly queue: Array<TaskRecord> = []
  private readonly keys = new Map<string, TaskRecord>()
  private running = 0
  private pendingCount = 0
  private readonly idle = new Waiters(() => this.pendingCount === 0)
  private readonly empty = new Waiters(() => this.records.size === 0)
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

  /** Reserves a daemon's or schedule's name; false when another job has it. Freed when the job ends. */
  claimJobName(name: string): boolean {
    if (this.jobNames.has(name)) return false
    this.jobNames.add(name)
    return true
  }

  /** Frees a name claimed for a job that was then not started. */
  releaseJobName(name: string): void {
    this.jobNames.delete(name)
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
    return Effect.withFiberRuntime((parent) => this.submitFrom(parent, spec))
  }

  /** {@link submit}, from inside the calling fiber (`parent`) — one step fewer for `fork`. */
  submitFrom<A, E, R>(
    parent: Fiber.RuntimeFiber<unknown, unknown>,
    spec: SubmitSpec<A, E, R>
  ): Effect.Effect<TaskHandle, QueueFullError | ShuttingDownError, Exclude<R, Scope.Scope>> {
    if (this.closingFlag) {
      this.stats.rejected++
      return Effect.fail(new ShuttingDownError({ task: spec.name }))
    }
    let replaced: TaskRecord | undefined
    if (spec.key !== undefined) {
      const existing = this.keys.get(spec.key)
      if (existing !== undefined) {
        if ((spec.onConflict ?? "keep") === "keep") return Effect.succeed(new Handle(existing, false))
        replaced = existing
      }
    }
    const { concurrency, maxQueued } = this.options
    if (
      // plain tasks are capped and refused past the queue bound (after-response tasks are only
      // capped, and never come through here; jobs are neither)
      spec.kind === "task" && replaced === undefined &&
      this.running >= concurrency && this.queue.length >= maxQueued
    ) {
      this.stats.rejected++
      return Effect.fail(new QueueFullError({ task: spec.name, concurrency, maxQueued }))
    }
    const now = Context.get(parent.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
    const record = this.admit(spec.name, spec.key, spec.kind, now)
    this.launch(record, spec.effect, originOf(parent), true, replaced)
    return Effect.succeed(new Handle(record, true))
  }

  /**
   * Admits an after-response task without starting it: it counts as pending work (shutdown waits
   * for it) and shows in snapshots as waiting, but holds no fiber until {@link launch} or
   * {@link skip}. Returns `undefined` once shutdown has begun (and counts the refusal).
   */
  reserve(name: string, now: number): TaskRecord | undefined {
    if (this.closingFlag) {
      this.stats.rejected++
      return undefined
    }
    return this.admit(name, undefined, "after-response", now)
  }

  private admit(name: string, key: string | undefined, kind: TaskKind, now: number): TaskRecord {
    const record = new TaskRecord(this.nextId++, name, key, kind, now)
    this.records.set(record.id, record)
    if (record.pending) this.pendingCount++
    if (key !== undefined) this.keys.set(key, record)
    return record
  }

  /** Ends a reserved task without running it: its handler failed. */
  skip(record: TaskRecord): void {
    if (!this.records.has(record.id) || record.fiber !== undefined) return
    record.skipped = true
    void this.end(record, Exit.interrupt(FiberId.none))
  }

  /**
   * Starts an admitted task's fiber with the origin's services and fiber refs, plus its own Scope,
   * its log annotations and its id. `immediate` runs its first steps now, before this returns;
   * otherwise it is scheduled. Does nothing for a reserved task that shutdown has already ended.
   */
  launch<A, E, R>(
    record: TaskRecord,
    effect: Effect.Effect<A, E, R>,
    origin: Origin,
    immediate: boolean,
    replaced?: TaskRecord | undefined
  ): void {
    if (record.exit !== undefined || record.fiber !== undefined) return
    try {
      this.unsafeLaunch(record, effect, origin, immediate, replaced)
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

  private unsafeLaunch<A, E, R>(
    record: TaskRecord,
    effect: Effect.Effect<A, E, R>,
    origin: Origin,
    immediate: boolean,
    replaced: TaskRecord | undefined
  ): void {
    const { context, fiberRefs } = origin
    const services = FiberRefs.getOrDefault(fiberRefs, DefaultServices.currentServices)
    const clock = Context.get(services, Clock.Clock)
    record.scope = taskScope.make()
    // The span is made here and ended with the task, rather than by withSpan around it (whose
    // frames stay on the task's stack for its whole life); none for Effect's built-in tracer,
    // which exports nothing (the task then keeps its origin's span as parent).
    const tracer = Context.get(services, Tracer.Tracer)
    if (tracer !== nativeTracer && FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerEnabled)) {
      const timing = FiberRefs.getOrDefault(fiberRefs, FiberRef.currentTracerTimingEnabled)
      const parentSpan = Context.getOption(context, Tracer.ParentSpan)
      const span = tracer.span(
        `background ${record.name}`,
        Option.none(),
        Context.empty(),
        Option.isSome(parentSpan)
          ? [{ _tag: "SpanLink", span: parentSpan.value, attributes: { "link.reason": "forked-by" } }]
          : [],
        timing ? clock.unsafeCurrentTimeNanos() : BigInt(0),
        "internal"
      )
      span.attribute("background.task", record.name)
      span.attribute("background.kind", record.kind)
      record.span = { span, clock: timing ? clock : undefined }
    }

    const capped = record.kind === "task" || record.kind === "after-response"
    const start = Effect.suspend((): Effect.Effect<A, E, R> => {
      // A replacement may already hold the slot, or a place in the queue, of the task it replaced.
      if (!capped || record.holdsSlot || (record.wake === undefined && this.running < this.options.concurrency)) {
        if (capped && !record.holdsSlot) {
          this.running++
          record.holdsSlot = true
        }
        record.begin(clock)
        return effect
      }
      if (record.wake === undefined) {
        record.wake = Deferred.unsafeMake<void>(FiberId.none)
        record.state = "queued"
        this.queue.push(record)
      }
      return Effect.zipRight(
        Deferred.await(record.wake),
        Effect.suspend(() => {
          record.begin(clock)
          return effect
        })
      )
    })
    record.replacing = replaced
    if (replaced !== undefined) replaced.successor = record
    const body = replaced === undefined ? start : Effect.zipRight(stopReplaced(replaced), start)
    // The fiber is uninterruptible (taskFlags) around an interruptible body, so the handlers
    // always run; they are the supervisor's, shared by every task, and find the task by its id.
    const program = Effect.matchCauseEffect(Effect.interruptible(body), this.finishers)

    const annotations = this.annotations(FiberRefs.getOrDefault(fiberRefs, FiberRef.currentLogAnnotations), record)
    const withScope = Context.add(context, Scope.Scope, record.scope)
    const runtime = Runtime.make({
      context: (record.span === undefined
        ? withScope
        : Context.add(withScope, Tracer.ParentSpan, record.span.span)) as Context.Context<R>,
      fiberRefs,
      runtimeFlags: taskFlags
    })
    record.fiber = Runtime.runFork(runtime)(program, {
      immediate,
      // The task's own fiber refs: its log annotations and its id, set in the copy runFork has
      // just made for the new fiber (no one else holds it). Each is set as a single value, not
      // pushed on the origin's history: a root fiber is never joined back.
      updateRefs: (refs) => {
        refs.locals.set(FiberRef.currentLogAnnotations, [[FiberId.none, annotations]])
        refs.locals.set(currentTaskId, [[FiberId.none, record.id]])
        return refs
      }
    })
  }

  private readonly finishers = {
    onFailure: (cause: Cause.Cause<unknown>) => this.finish(Exit.failCause(cause)),
    onSuccess: (value: unknown) => this.finish(Exit.succeed(value))
  }

  /** Closes the current task's scope, as Effect.scoped would, then counts its end. */
  private finish(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.withFiberRuntime((fiber) => {
      const record = this.records.get(fiber.getFiberRef(currentTaskId))
      const scope = record?.scope
      if (record === undefined || scope === undefined) return Effect.void
      const closing = taskScope.close(scope, exit)
      if (closing === undefined) return this.end(record, exit)
      return Effect.flatMap(Effect.exit(closing), (closed) =>
        // As with Effect.scoped, a finalizer's defect makes the task fail.
        this.end(
          record,
          Exit.isSuccess(closed)
            ? exit
            : Exit.isSuccess(exit)
            ? closed
            : Exit.failCause(Cause.sequential(exit.cause, closed.cause))
        ))
    })
  }

  private lastAnnotations:
    | {
      readonly parent: HashMap.HashMap<string, unknown>
      readonly kind: TaskKind
      readonly withKind: HashMap.HashMap<string, unknown>
      name: string
      value: HashMap.HashMap<string, unknown>
    }
    | undefined = undefined

  /**
   * The origin's log annotations plus the task's name and kind. The last result is reused for the
   * same origin annotations, kind and name (tasks forked in a loop), and its kind step for the same
   * origin and kind (after-response tasks, named per request).
   */
  private annotations(parent: HashMap.HashMap<string, unknown>, record: TaskRecord): HashMap.HashMap<string, unknown> {
    const last = this.lastAnnotations
    if (last !== undefined && last.parent === parent && last.kind === record.kind) {
      if (last.name !== record.name) {
        last.name = record.name
        last.value = HashMap.set(last.withKind, "task", record.name)
      }
      return last.value
    }
    const withKind = HashMap.set(parent, "taskKind", record.kind)
    const value = HashMap.set(withKind, "task", record.name)
    this.lastAnnotations = { parent, kind: record.kind, withKind, name: record.name, value }
    return value
  }

  private releaseSlot(record: TaskRecord): void {
    // A replacement still waiting for this task to stop takes its place, so no other task can
    // slip in between (past the queue bound) while the replacement waits. (Tasks that end leave
    // their key's line, so `successor` and `replacing` always name live tasks.)
    const heir = record.successor
    const inherits = heir !== undefined && heir.wake === undefined && !heir.holdsSlot
    if (record.wake !== undefined && !record.holdsSlot) {
      // still queued (never woken): out of the queue, or its place to the replacement
      const index = this.queue.indexOf(record)
      if (index >= 0 && inherits) {
        heir!.wake = Deferred.unsafeMake<void>(FiberId.none)
        heir!.state = "queued"
        this.queue[index] = heir!
      } else if (index >= 0) {
        this.queue.splice(index, 1)
      }
    }
    if (!record.holdsSlot) return
    record.holdsSlot = false
    if (inherits) {
      heir!.holdsSlot = true
      return
    }
    this.running--
    while (this.running < this.options.concurrency && this.queue.length > 0) {
      const next = this.queue.shift()!
      this.running++
      next.holdsSlot = true
      Deferred.unsafeDone(next.wake!, Exit.void)
    }
  }

  /**
   * Counts a task's end and forgets it; returns the failure report to log (or `Effect.void`). Runs
   * synchronously, so it may be called outside any fiber.
   */
  private end(record: TaskRecord, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    if (record.exit !== undefined) return Effect.void
    record.exit = exit
    if (record.span !== undefined) {
      const { span, clock } = record.span
      span.end(clock === undefined ? BigInt(0) : clock.unsafeCurrentTimeNanos(), exit)
    }
    this.releaseSlot(record)
    // Out of its key's line of replacements, so that walks along the line step over it.
    if (record.replacing?.successor === record) record.replacing.successor = record.successor
    if (record.successor?.replacing === record) record.successor.replacing = record.replacing
    this.records.delete(record.id)
    if (record.key !== undefined && this.keys.get(record.key) === record) {
      // A replacement that ends before the task it replaces (interrupted while that one's
      // finalizers run) hands the key back to it: one task per key, until the last one ends.
      if (record.replacing === undefined) this.keys.delete(record.key)
      else this.keys.set(record.key, record.replacing)
    }
    let report: Effect.Effect<void> = Effect.void
    const job = record.kind === "daemon" || record.kind === "schedule"
    if (job && !(record.pending && Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause))) {
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
      report = Effect.logError(`background ${record.kind} "${record.name}" failed`, exit.cause).pipe(
        Effect.annotateLogs({ task: record.name, taskKind: record.kind })
      )
    }
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
    if (job) this.jobNames.delete(record.name)
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
    const interruptedNames = left.filter((record) => record.pending).map((record) => record.name)
    for (const record of left) {
      // A reserved after-response task that never started has nothing to interrupt: it just ends.
      if (record.fiber !== undefined) record.fiber.unsafeInterruptAsFork(FiberId.none)
      else if (record.kind === "after-response") {
        record.onEnd = undefined // the tasks in line after it are in `left` too
        void this.end(record, Exit.interrupt(FiberId.none))
      }
    }
    yield* Effect.interruptible(this.empty.await).pipe(Effect.timeoutOption(this.options.interruptTimeout))
    const end = yield* Clock.currentTimeMillis
    return {
      graceMillis: interruptStart - graceStart,
      interruptMillis: end - interruptStart,
      interruptedNames,
      stillRunning: this.liveNames
    }
  })
}
