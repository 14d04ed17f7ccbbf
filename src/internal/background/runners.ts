/**
 * Runner fibers: long-lived fibers that run after-response tasks, one at a time each, so that a
 * task costs no fiber of its own. A runner takes the next task off a queue, puts on the fiber refs
 * the task's own fiber would have started with (its origin's, with its context, log annotations
 * and id: see `taskFiber.refsOf`), runs it, counts its end, interrupts any fiber the task forked
 * and left running (as the end of the task's own fiber would), and takes the next.
 *
 * Tasks still run concurrently: whenever a task is waiting and no runner is on its way to the
 * queue, one is woken or started (see {@link Runners}). Callback tasks (the Promise API's) need no
 * fiber state of their own, so a runner that calls one also calls the callback tasks waiting
 * behind it, back to back — the I/O they start goes out together, as from a loop of bare calls —
 * and counts each one's end when its own promise settles. While it waits for them it is the pool's
 * *caller*: a callback task handed over then (a slot free, nothing queued before it, the same
 * origin) is called by it at once, from where it was handed over, with no queue and no fiber
 * woken, and it keeps waiting as the caller when all have settled (measured on the Express
 * benchmark route: Effect's share of a request's CPU profile went from about 15 µs to 5 µs).
 * Runners wait, idle, for more work (at most {@link MAX_IDLE} of them; the others end), and all of
 * them end when the supervisor has shut down. A runner is interrupted only through the task it
 * runs, or the callbacks it waits for (shutdown past the grace period), and then ends with it.
 *
 * This leans on two methods Effect's fibers have but its `RuntimeFiber` type does not list:
 * `setFiberRefs` (what `Effect.setFiberRefs` calls) and `interruptAllChildren` (what a fiber runs
 * as it ends). A self-check at load ({@link works}) confirms they behave so; if it fails, each
 * task gets a fiber of its own instead.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as MutableQueue from "effect/MutableQueue"
import * as Runtime from "effect/Runtime"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Scheduler from "effect/Scheduler"
import * as causes from "../cause.js"
import { Table } from "../table.js"
import { Call, type Callback, callbackOf } from "./callback.js"
import type { Origin, TaskRecord } from "./task.js"

/** A runner's fiber, with the two methods of Effect's fibers this module uses. */
export interface RunnerFiber extends Fiber.RuntimeFiber<void> {
  setFiberRefs(fiberRefs: FiberRefs.FiberRefs): void
  interruptAllChildren(): Effect.Effect<unknown> | null
}

/** Every fiber is an Effect `FiberRuntime`, which has both methods (checked by {@link works}). */
const asRunner = (fiber: object): RunnerFiber => fiber as RunnerFiber

/** Runners kept waiting for work; past this, a runner with nothing to do ends. */
export const MAX_IDLE = 256

interface Job {
  readonly record: TaskRecord
  readonly origin: Origin
}

/** What the supervisor gives the runners: how a task starts on a runner, and how it ends. */
export interface TaskRunner {
  /**
   * Takes the task for `fiber` to run: its effect, or `undefined` when the task has ended already
   * (shutdown ended it while it waited).
   */
  readonly take: (fiber: RunnerFiber, record: TaskRecord) => Effect.Effect<unknown, unknown> | undefined
  /** The fiber refs the task's own fiber would have started with, for `fiber` to run it with. */
  readonly refs: (fiber: RunnerFiber, record: TaskRecord, origin: Origin) => FiberRefs.FiberRefs
  /** Whether a task would be seated at once (a slot is free), so `seated` would return its effect. */
  readonly free: () => boolean
  /** What to run: the task's effect once it may (at once, or after its wait for a slot), begun. */
  readonly seated: (
    record: TaskRecord,
    effect: Effect.Effect<unknown, unknown>,
    clock: Clock.Clock
  ) => Effect.Effect<unknown, unknown>
  /** Closes the task's scope and counts its end: `undefined` once done, or what is left to run. */
  readonly end: (
    record: TaskRecord,
    exit: Exit.Exit<unknown, unknown>,
    clock: Clock.Clock
  ) => Effect.Effect<void> | undefined
}

const runnerRuntime = Runtime.make({
  context: Runtime.defaultRuntime.context,
  fiberRefs: FiberRefs.empty(),
  // interruptible only inside a task's body: a runner's own steps always complete
  runtimeFlags: RuntimeFlags.disable(Runtime.defaultRuntimeFlags, RuntimeFlags.Interruption)
})

/**
 * The scheduler of an idle runner: a runner is woken only from a microtask of its own (see
 * `Runners`) or at the supervisor's end, outside any fiber's work, so it resumes at once rather
 * than at the scheduler's next turn, and its task starts where the tasks were handed over (after
 * the loop turn's I/O). The task it takes brings its own scheduler (its origin's).
 *
 * It extends Effect's default scheduler for one reason: every fiber's run loop calls its
 * scheduler's `shouldYield` at each step, and with the inherited method that call keeps a single
 * target, which V8 inlines. A scheduler with a `shouldYield` of its own (as this one had) made the
 * call polymorphic in every fiber of the process, request fibers included.
 */
class WakeAtOnce extends Scheduler.MixedScheduler {
  override scheduleTask(task: Scheduler.Task): void {
    task()
  }
}

// (2048: the default scheduler's setting, unused here, as `scheduleTask` runs a task at once)
const wakeAtOnce: Scheduler.Scheduler = new WakeAtOnce(2048)

/** An idle runner's fiber refs: nothing of its last task's, and {@link wakeAtOnce} as scheduler. */
const blankRefs = FiberRefs.updateAs(FiberRefs.empty(), {
  fiberId: FiberId.none,
  fiberRef: FiberRef.currentScheduler,
  value: wakeAtOnce
})

const isInterrupted = (fiber: RunnerFiber): boolean => !causes.isEmpty(fiber.getFiberRef(FiberRef.interruptedCause))

/**
 * The runners and their queue. A task handed over is taken by a runner already running, if one
 * gets to the queue first; otherwise, once the current stretch of synchronous work is over (a
 * microtask), one runner is woken or started for it — and each runner that takes a task while
 * others wait makes sure of the same for them, so when its task suspends the next runner takes
 * the next task. Tasks that complete without suspending run back to back on one runner.
 */
export class Runners {
  private readonly queue = MutableQueue.unbounded<Job>()
  /** The job at the queue's head, once {@link peek} has looked at it. */
  private head: Job | undefined = undefined
  readonly idle: Array<(resume: Effect.Effect<void>) => void> = []
  /** Runners woken or started that have not yet looked at the queue. */
  private coming = 0
  private checkScheduled = false
  closed = false
  /**
   * The runner waiting on callback tasks it has called, which calls more of them as they are
   * handed over (see {@link run}); it keeps waiting when they have all settled. None while it
   * runs anything else.
   */
  caller: Runner | undefined = undefined
  /** Whether a callback task is being called from {@link run} now (one handed over meanwhile is queued). */
  private calling = false

  constructor(readonly task: TaskRunner) {}

  /**
   * Hands a task over. A callback task, with nothing queued before it and a slot free, is called
   * at once by the {@link caller} if there is one waiting with its origin's fiber refs: no queue,
   * no fiber woken. Otherwise it is queued for a runner.
   */
  run(record: TaskRecord, origin: Origin): void {
    const caller = this.caller
    const effect = record.effect
    if (caller !== undefined && !this.calling && !this.closed && effect !== undefined && !this.waiting) {
      const callback = callbackOf(effect)
      if (callback !== undefined && this.task.free() && caller.takes(origin)) {
        // (a callback that settles at once ends here, and the next task of its request is handed
        // over from within: that one is queued, so a long line of them never nests calls)
        this.calling = true
        try {
          caller.callNow(record, callback)
        } finally {
          this.calling = false
        }
        return
      }
    }
    MutableQueue.offer(this.queue, { record, origin })
    this.ensureTaker()
  }

  /** Lets the idle runners end, and every runner end once its task has: the supervisor is done. */
  close(): void {
    this.closed = true
    for (const wake of this.idle.splice(0)) wake(Effect.void)
    const caller = this.caller
    this.caller = undefined
    caller?.wakeUp()
  }

  /** Whether tasks wait in the queue. */
  get waiting(): boolean {
    return this.head !== undefined || !MutableQueue.isEmpty(this.queue)
  }

  /** Makes sure a runner will look at the queue: checked in a microtask (see the class). */
  ensureTaker(): void {
    if (this.coming > 0 || this.checkScheduled) return
    this.checkScheduled = true
    queueMicrotask(this.check)
  }

  private readonly check = (): void => {
    this.checkScheduled = false
    if (!this.waiting || this.coming > 0 || this.closed) return
    this.coming++
    const wake = this.idle.pop()
    if (wake !== undefined) wake(Effect.void)
    else new Runner(this).spawn()
  }

  /** A runner woken or started is here. */
  arrived(): void {
    this.coming--
  }

  /** The next job, left in the queue. */
  peek(): Job | undefined {
    return this.head ??= MutableQueue.poll(this.queue, undefined)
  }

  take(): Job | undefined {
    const job = this.peek()
    this.head = undefined
    return job
  }
}

/**
 * Runs one task's failure report on its own: a report that fails (a logger that throws on the
 * value) is itself logged, if that can be, and neither stops the reports after it nor the runner.
 */
const reportAlone = (report: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.catchAllCause(report, (cause) =>
    Effect.catchAllCause(Effect.logError("background: a task's failure report failed", cause), () => Effect.void))

/**
 * One runner fiber: its task now, and the handlers its task's exit goes to — or the callback tasks
 * it has called and not yet seen settle.
 */
class Runner {
  private fiber!: RunnerFiber
  private record: TaskRecord | undefined = undefined
  /**
   * The origin whose fiber refs the runner holds as they are, for callback tasks (which read none
   * of their own, so tasks from one origin share them): none after anything else was put on.
   */
  private base: FiberRefs.FiberRefs | undefined = undefined
  /** Callback tasks called and not yet settled, by a number of the runner's (a Table: see table.ts). */
  private readonly calls = new Table<Call>()
  private nextCall = 0
  /** What is left to run of callback tasks that have ended (their failure reports). */
  private rests: Array<Effect.Effect<void>> = []
  /** The runner's wait for its callbacks, while it waits. */
  private wake: ((resume: Effect.Effect<void>) => void) | undefined = undefined
  /** Why the runner's callbacks were cut off (shutdown past the grace), once they were. */
  private interruption: Cause.Cause<never> | undefined = undefined
  private clock!: Clock.Clock

  constructor(private readonly pool: Runners) {}

  spawn(): void {
    Runtime.runFork(runnerRuntime)(
      Effect.withFiberRuntime((fiber) => {
        this.fiber = asRunner(fiber)
        this.pool.arrived()
        return this.next()
      }),
      { immediate: true }
    )
  }

  /** Waits, idle, until woken. */
  private readonly park: Effect.Effect<void> = Effect.zipRight(
    Effect.async<void>((resume) => void this.pool.idle.push(resume)),
    Effect.suspend(() => {
      this.pool.arrived()
      return this.next()
    })
  )

  private readonly continue: Effect.Effect<void> = Effect.suspend(() => this.next())

  /** The next task to run, or waiting for one; the runner ends once the supervisor is done. */
  private next(): Effect.Effect<void> {
    const pool = this.pool
    const fiber = this.fiber
    for (;;) {
      if (pool.closed || isInterrupted(fiber)) return Effect.void
      const job = pool.take()
      if (job === undefined) {
        fiber.setFiberRefs(blankRefs) // an idle runner keeps nothing of its last task alive
        this.base = undefined
        return pool.idle.length >= MAX_IDLE ? Effect.void : this.park
      }
      // if this task suspends, the ones after it need another runner
      if (pool.waiting) pool.ensureTaker()
      const record = job.record
      const effect = pool.task.take(fiber, record)
      if (effect === undefined) continue
      const callback = callbackOf(effect)
      if (callback === undefined) {
        fiber.setFiberRefs(pool.task.refs(fiber, record, job.origin))
        this.base = undefined
      } else if (this.base !== job.origin.fiberRefs) {
        fiber.setFiberRefs(FiberRefs.forkAs(job.origin.fiberRefs, fiber.id()))
        this.base = job.origin.fiberRefs
      }
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const seated = pool.task.seated(record, effect, clock)
      if (callback === undefined || seated !== effect) {
        this.record = record
        return Effect.matchCauseEffect(Effect.interruptible(seated), this)
      }
      this.clock = clock
      this.call(record, callback)
      this.callFollowing()
      // (callbacks that settled at once have ended here: the loop takes the next task, so a long
      // queue of them never nests calls)
      if (this.calls.size > 0 || this.rests.length > 0) return this.awaitCalls
    }
  }

  /**
   * Calls the callback tasks waiting behind the one just called, from the same origin, while slots
   * are free: back to back, so the I/O they start is issued together, as a loop of bare calls
   * would issue it. Each still ends on its own, when its callback settles.
   */
  private callFollowing(): void {
    const pool = this.pool
    for (;;) {
      const job = pool.peek()
      const effect = job?.record.effect
      if (job === undefined || effect === undefined || job.origin.fiberRefs !== this.base) return
      const callback = callbackOf(effect)
      if (callback === undefined || !pool.task.free()) return
      pool.take()
      if (pool.task.take(this.fiber, job.record) === undefined) continue
      pool.task.seated(job.record, effect, this.clock) // (a slot is free: seated at once)
      this.call(job.record, callback)
    }
  }

  /** Whether, as the pool's caller, it calls a callback task from `origin` now. */
  takes(origin: Origin): boolean {
    return this.base === origin.fiberRefs && this.interruption === undefined && !isInterrupted(this.fiber)
  }

  /** Calls a callback task handed over to the pool while it waits as the caller (a slot is free). */
  callNow(record: TaskRecord, callback: Callback): void {
    const effect = this.pool.task.take(this.fiber, record)
    if (effect === undefined) return
    this.pool.task.seated(record, effect, this.clock) // (a slot is free: seated at once)
    this.call(record, callback)
  }

  /** Calls a callback task; its end is counted when it settles (now, if it settles at once). */
  private call(record: TaskRecord, callback: Callback): void {
    const call = new Call(callback)
    if (call.exit !== undefined) return this.settled(record, call.exit)
    const id = this.nextCall++
    this.calls.set(id, call)
    call.onSettled((exit) => {
      this.calls.delete(id)
      try {
        this.settled(record, exit)
      } catch (error) {
        // (called from a promise's reaction: a throw here would be an unhandled rejection)
        this.rests.push(Effect.logError(`background: counting the end of "${record.name}" failed`, Cause.die(error)))
        this.wakeUp()
      }
    })
  }

  /**
   * Counts a callback task's end — as interrupted, when it settled after the runner's callbacks
   * were cut off — and wakes the runner if it has something to run or nothing left to wait for.
   */
  private settled(record: TaskRecord, exit: Exit.Exit<unknown, unknown>): void {
    const rest = this.pool.task.end(record, this.interruption === undefined ? exit : Exit.failCause(this.interruption), this.clock)
    if (rest !== undefined) this.rests.push(rest)
    this.wakeUp()
  }

  /**
   * Whether the runner has something to do: failure reports to run, or no callback left to wait
   * for — unless it is the pool's caller, which waits on for the next ones.
   */
  private get ready(): boolean {
    return this.rests.length > 0 || (this.calls.size === 0 && this.pool.caller !== this)
  }

  /** Resumes the runner's wait if it is {@link ready}; it is then no longer the pool's caller. */
  wakeUp(): void {
    const wake = this.wake
    if (wake !== undefined && this.ready) {
      this.wake = undefined
      if (this.pool.caller === this) this.pool.caller = undefined
      wake(Effect.void)
    }
  }

  /**
   * Waits until the runner is {@link ready} (at once if it is). A runner waiting on callbacks it
   * called becomes the pool's caller, unless another one is, or its callbacks were cut off.
   */
  private readonly untilReady: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.ready) return resume(Effect.void)
    this.wake = resume
    if (this.interruption === undefined && !this.pool.closed) this.pool.caller ??= this
  })

  /** Waits for the callbacks called: runs the failure reports as they come, and goes on once all have settled. */
  private readonly awaitCalls: Effect.Effect<void> = Effect.matchCauseEffect(
    Effect.interruptible(this.untilReady),
    {
      onSuccess: () => this.afterCalls(),
      onFailure: (cause: Cause.Cause<never>) => {
        // Interrupted while callbacks run: abort their signals, and count each one's end once it
        // has settled (the runner's own steps are not interruptible: the supervisor's interrupt
        // timeout bounds this wait, and names the tasks that outlive it).
        this.wake = undefined
        if (this.pool.caller === this) this.pool.caller = undefined
        this.interruption = cause
        for (const call of this.calls.values()) call.abort()
        return this.afterCalls()
      }
    }
  )

  /** Runs the failure reports that came, then waits for the callbacks left, or takes the next task. */
  private afterCalls(): Effect.Effect<void> {
    const rests = this.rests
    this.rests = []
    const then = this.calls.size > 0
      ? this.interruption === undefined ? this.awaitCalls : this.awaitAborted
      : this.continue
    return rests.length === 0 ? then : Effect.zipRight(Effect.forEach(rests, reportAlone, { discard: true }), then)
  }

  /** The wait for callbacks whose signals were aborted (not interruptible again). */
  private readonly awaitAborted: Effect.Effect<void> = Effect.flatMap(this.untilReady, () => this.afterCalls())

  readonly onSuccess = (value: unknown): Effect.Effect<void> => this.ended(Exit.succeed(value))
  readonly onFailure = (cause: Cause.Cause<unknown>): Effect.Effect<void> => this.ended(Exit.failCause(cause))

  /**
   * The task has ended: count it, interrupt the fibers it forked and left running (as the end of a
   * fiber of its own would), and go on to the next task — at once when nothing is left to run.
   */
  private ended(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return this.finish(exit) ?? this.next()
  }

  /** Counts the task's end: `undefined` when all of it is done, or what is left to run before the next. */
  private finish(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
    const record = this.record!
    this.record = undefined
    const fiber = this.fiber
    const rest = this.pool.task.end(record, exit, Context.get(fiber.currentDefaultServices, Clock.Clock))
    if (rest !== undefined) return Effect.zipRight(rest, this.interruptChildren)
    const children = fiber.interruptAllChildren()
    return children === null ? undefined : Effect.zipRight(children, this.continue)
  }

  private readonly interruptChildren: Effect.Effect<void> = Effect.withFiberRuntime((fiber) => {
    const children = asRunner(fiber).interruptAllChildren()
    return children === null ? this.next() : Effect.zipRight(children, this.continue)
  })
}

/**
 * Whether Effect's fibers have the two methods, behaving as used here: refs set on a fiber are the
 * ones it reads, and the children it forked are interrupted on demand.
 */
export const works: boolean = (() => {
  try {
    const ref = FiberRef.unsafeMake(0)
    return Effect.runSync(Effect.gen(function*() {
      const fiber = asRunner(yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>(Effect.succeed))
      if (typeof fiber.setFiberRefs !== "function" || typeof fiber.interruptAllChildren !== "function") return false
      const before = fiber.getFiberRefs()
      fiber.setFiberRefs(FiberRefs.updateAs(before, { fiberId: fiber.id(), fiberRef: ref, value: 7 }))
      const seen = yield* FiberRef.get(ref)
      fiber.setFiberRefs(before)
      const child = yield* Effect.fork(Effect.never)
      const interrupting = fiber.interruptAllChildren()
      if (interrupting === null) return false
      yield* interrupting
      const childExit = yield* Fiber.await(child)
      return seen === 7 && (yield* FiberRef.get(ref)) === 0 && Exit.isInterrupted(childExit) &&
        fiber.interruptAllChildren() === null
    }))
  } catch {
    return false
  }
})()
