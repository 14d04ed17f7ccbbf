/**
 * Runner fibers: long-lived fibers that run after-response tasks, one at a time each, so that a
 * task costs no fiber of its own. A runner takes the next task off a queue, puts on the fiber refs
 * the task's own fiber would have started with (its origin's, with its context, log annotations
 * and id: see `taskFiber.refsOf`), runs the supervisor's task program, interrupts any fiber the
 * task forked and left running (as the end of the task's own fiber would), and takes the next.
 *
 * Every task still runs concurrently with the others: each task handed over wakes an idle runner
 * or starts a new one, unless a runner already on its way to the queue will take it. Runners wait,
 * idle, for more work (at most {@link MAX_IDLE} of them; the others end), and all of them end when
 * the supervisor has shut down. A runner is interrupted only through the task it runs (shutdown
 * past the grace period), and then ends with it.
 *
 * This leans on two methods Effect's fibers have but its `RuntimeFiber` type does not list:
 * `setFiberRefs` (what `Effect.setFiberRefs` calls) and `interruptAllChildren` (what a fiber runs
 * as it ends). A self-check at load ({@link works}) confirms they behave so; if it fails, each
 * task gets a fiber of its own instead.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as Runtime from "effect/Runtime"
import * as RuntimeFlags from "effect/RuntimeFlags"
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

/** What the supervisor gives the runners: how to put a task on a runner, and the task's program. */
export interface TaskRunner {
  /** Puts the task's fiber refs on `fiber`; false (nothing done) when the task has already ended. */
  readonly install: (fiber: RunnerFiber, record: TaskRecord, origin: Origin) => boolean
  /** The task's body, interruptible, as the supervisor runs it. */
  readonly body: Effect.Effect<unknown, unknown>
  /** Closes the task's scope and counts its end. */
  readonly finish: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
}

const runnerRuntime = Runtime.make({
  context: Runtime.defaultRuntime.context,
  fiberRefs: FiberRefs.empty(),
  // interruptible only inside a task's body: the loop's bookkeeping always completes
  runtimeFlags: RuntimeFlags.disable(Runtime.defaultRuntimeFlags, RuntimeFlags.Interruption)
})

const blankRefs = FiberRefs.empty()

const isInterrupted = (fiber: RunnerFiber): boolean => !Cause.isEmpty(fiber.getFiberRef(FiberRef.interruptedCause))

export class Runners {
  private readonly queue: Array<Job> = []
  private head = 0
  private readonly idle: Array<(resume: Effect.Effect<void>) => void> = []
  /** Runners awake and about to look at the queue (woken, started, or done with a task). */
  private looking = 0
  private closed = false

  constructor(private readonly task: TaskRunner) {}

  /** Hands a task over; `immediate` starts a new runner's first steps now, when one is needed. */
  run(record: TaskRecord, origin: Origin, immediate: boolean): void {
    this.queue.push({ record, origin })
    if (this.queue.length - this.head <= this.looking) return
    this.looking++
    const wake = this.idle.pop()
    if (wake !== undefined) wake(Effect.void)
    else Runtime.runFork(runnerRuntime)(this.loop, { immediate })
  }

  /** Lets the idle runners end, and any runner end once its task has: the supervisor is done. */
  close(): void {
    this.closed = true
    for (const wake of this.idle.splice(0)) wake(Effect.void)
  }

  private take(): Job | undefined {
    if (this.head === this.queue.length) return undefined
    const job = this.queue[this.head]!
    this.queue[this.head++] = undefined as unknown as Job
    if (this.head === this.queue.length) {
      this.queue.length = 0
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    return job
  }

  private readonly loop: Effect.Effect<void> = Effect.withFiberRuntime((fiber) => {
    const runner = asRunner(fiber)
    if (this.closed || isInterrupted(runner)) {
      this.looking--
      return Effect.void
    }
    const job = this.take()
    if (job === undefined) {
      this.looking--
      runner.setFiberRefs(blankRefs) // nothing of the last task's is kept alive by an idle runner
      if (this.idle.length >= MAX_IDLE) return Effect.void
      return Effect.zipRight(Effect.async<void>((resume) => void this.idle.push(resume)), this.loop)
    }
    this.looking--
    if (!this.task.install(runner, job.record, job.origin)) {
      this.looking++
      return this.loop
    }
    return Effect.zipRight(this.runTask, this.loop)
  })

  private readonly runTask: Effect.Effect<void> = Effect.matchCauseEffect(
    Effect.suspend(() => this.task.body),
    {
      onFailure: (cause) => this.done(Exit.failCause(cause)),
      onSuccess: (value) => this.done(Exit.succeed(value))
    }
  )

  private done(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.zipRight(
      this.task.finish(exit),
      Effect.withFiberRuntime((fiber) => {
        // Counted as looking only now: a task handed over while this one's finalizers ran (its
        // successor in its request's line among them) woke another runner rather than wait.
        const children = asRunner(fiber).interruptAllChildren()
        if (children === null) {
          this.looking++
          return Effect.void
        }
        return Effect.zipRight(children, Effect.sync(() => void this.looking++))
      })
    )
  }
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
