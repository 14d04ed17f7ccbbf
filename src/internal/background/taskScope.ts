/**
 * Each task's own Scope, made synchronously (before its fiber exists) and costing nothing until
 * something uses it: most tasks never add a finalizer, and an open Scope holds a Map.
 *
 * Effect 3 makes scopes only inside an effect. This reuses the prototype of the scopes it makes,
 * whose methods (and `Effect.forkIn`) keep their state in a `state` field; here that field is
 * created on first use. A self-check at load confirms the scopes behave (finalizers run in reverse
 * order on close; one added after close runs at once; `Effect.forkScoped` children are
 * interrupted); if it ever fails, tasks fall back to `Scope.make`.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { pipeArguments } from "effect/Pipeable"
import * as Scope from "effect/Scope"
import { currentTaskId } from "./task.js"

type ScopeState =
  | { readonly _tag: "Open"; readonly finalizers: Map<object, Scope.Scope.Finalizer> }
  | { readonly _tag: "Closed"; readonly exit: Exit.Exit<unknown, unknown> }

interface LazyFields {
  strategy: ExecutionStrategy.ExecutionStrategy
  lazyState: ScopeState | undefined
  /** The run {@link perRun} has open in this scope, until its end is recorded. */
  run: OpenRun | undefined
}

/** A job's run in progress: what its end is recorded with. */
interface OpenRun {
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  readonly observer: RunObserver
  readonly start: number
}

export type TaskScope = Scope.CloseableScope

const scopePrototype: object = Object.getPrototypeOf(Effect.runSync(Scope.make()))
const lazyPrototype: object = Object.create(scopePrototype, {
  state: {
    get(this: LazyFields): ScopeState {
      return this.lazyState ??= { _tag: "Open", finalizers: new Map() }
    },
    set(this: LazyFields, value: ScopeState) {
      this.lazyState = value
    }
  }
})

const makeLazy = (): TaskScope => {
  const scope: LazyFields = Object.create(lazyPrototype)
  scope.strategy = ExecutionStrategy.sequential
  scope.lazyState = undefined
  scope.run = undefined
  return scope as unknown as TaskScope
}

const untouched = (scope: TaskScope): scope is TaskScope & LazyFields =>
  Object.getPrototypeOf(scope) === lazyPrototype && (scope as unknown as LazyFields).lazyState === undefined

/** Whether lazily made scopes behave as Effect's own; checked once, at load. */
export const lazyWorks: boolean = (() => {
  try {
    return Effect.runSync(Effect.gen(function*() {
      const order: Array<number> = []
      const used = makeLazy()
      yield* Scope.addFinalizer(used, Effect.sync(() => order.push(1)))
      yield* Scope.addFinalizer(used, Effect.sync(() => order.push(2)))
      const child = yield* Effect.forkIn(Effect.never, used)
      yield* Scope.close(used, Exit.void)
      const childExit = yield* Fiber.await(child)
      const unused = makeLazy()
      const skipped = close(unused, Exit.void) === undefined
      yield* Scope.addFinalizer(unused, Effect.sync(() => order.push(3)))
      return skipped && order.join() === "2,1,3" && Exit.isInterrupted(childExit)
    }))
  } catch {
    return false
  }
})()

/** A new, open scope with the sequential strategy (as `Scope.make()` gives). */
export const make = (): TaskScope => lazyWorks ? makeLazy() : Effect.runSync(Scope.make())

/**
 * Closes `scope` with `exit`: returns the effect that runs its finalizers, or `undefined` when
 * nothing ever used it (it is then closed already, with nothing to run). A run {@link perRun} left
 * open in it (its job was interrupted mid-run) is recorded as ended, with `exit`, once the
 * finalizers have run.
 */
export function close(scope: TaskScope, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
  const run = Object.getPrototypeOf(scope) === lazyPrototype ? (scope as unknown as LazyFields).run : undefined
  if (untouched(scope)) {
    scope.lazyState = { _tag: "Closed", exit }
    if (run !== undefined) endRun(scope, run, exit)
    return undefined
  }
  const closing = Scope.close(scope, exit)
  return run === undefined
    ? closing
    : Effect.onExit(closing, (closed) => Effect.sync(() => endRun(scope, run, closedWith(exit, closed))))
}

const endRun = (scope: TaskScope, run: OpenRun, exit: Exit.Exit<unknown, unknown>): void => {
  ;(scope as unknown as LazyFields).run = undefined
  run.observer.ended(run.fiber, exit, run.start)
}

/**
 * What a job records of each of its runs, in the run's fiber: `started` when the run starts
 * (returning the start time), `ended` with the run's exit once its scope has closed (the exit a
 * failing finalizer makes it, as `Effect.scoped` would give).
 */
export interface RunObserver {
  readonly started: (fiber: Fiber.RuntimeFiber<unknown, unknown>) => number
  readonly ended: (fiber: Fiber.RuntimeFiber<unknown, unknown>, exit: Exit.Exit<unknown, unknown>, start: number) => void
}

/**
 * Runs `effect` in the current task's scope (the `Scope` every task has), then closes that scope
 * with the run's exit, opens it again and goes on with `then` and that exit (the exit a failing
 * finalizer makes it, as `Effect.scoped` would give): each run's finalizers run before the next
 * run starts, as with `Effect.scoped` around each run, without providing a new scope each time.
 * Daemons and repeating jobs run each iteration this way, observed by `observer`: `started` now,
 * `ended` in the step that closes the run's scope.
 *
 * A run cut by its fiber's interruption (shutdown, a handle) does not come back here: Effect skips
 * the handlers of an interrupted fiber, and the run stays open in the scope until the task's own
 * end closes that scope ({@link close}), which records it then. So an interrupted job unwinds
 * through one frame per run rather than an uninterruptible `onExit` of its own (10,000 daemons
 * stopped at once showed that cost). Where scopes are not lazy, it is `Effect.scoped`, observed
 * after it.
 */
export const perRun = <A, E, R, B, E2, R2>(
  effect: Effect.Effect<A, E, R>,
  observer: RunObserver,
  then: (exit: Exit.Exit<A, E>) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E2, R | R2 | Scope.Scope> =>
  Effect.flatMap(Scope.Scope, (given) =>
    Effect.withFiberRuntime((fiber) => {
      const scope = given instanceof SharedScope ? given.resolve(fiber) : given
      const start = observer.started(fiber)
      if (Object.getPrototypeOf(scope) !== lazyPrototype) {
        return Effect.flatMap(
          Effect.exit(Effect.onExit(Effect.scoped(effect), (exit) => Effect.sync(() => observer.ended(fiber, exit, start)))),
          then
        )
      }
      const run: OpenRun = { fiber, observer, start }
      ;(scope as unknown as LazyFields).run = run
      return Effect.matchCauseEffect(effect, {
        onFailure: (cause) => reopen(scope as TaskScope, run, Exit.failCause(cause), then),
        onSuccess: (value) => reopen(scope as TaskScope, run, Exit.succeed(value), then)
      })
    }))

/** Ends the run: closes its scope with `exit` and opens it again, records the end, then `then`. */
const reopen = <A, E, B, E2, R2>(
  scope: TaskScope,
  run: OpenRun,
  exit: Exit.Exit<A, E>,
  then: (exit: Exit.Exit<A, E>) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E2, R2> => {
  if (untouched(scope)) {
    endRun(scope, run, exit)
    return then(exit)
  }
  const fields = scope as unknown as LazyFields
  // The finalizers run uninterruptibly; until they start, the run is still open in the scope, and
  // an interruption now leaves its end to the task's (see `close`).
  return Effect.flatMap(
    Effect.uninterruptible(Effect.suspend(() => {
      fields.run = undefined
      return Effect.map(Effect.exit(Scope.close(scope, exit)), (closed) => {
        fields.lazyState = undefined
        // (a finalizer can only die or be interrupted, so the error type stays E)
        const after = closedWith(exit, closed) as Exit.Exit<A, E>
        run.observer.ended(run.fiber, after, run.start)
        return after
      })
    })),
    then
  )
}

/**
 * The exit of an effect whose scope then closed with `closed`, as `Effect.scoped` gives it: a
 * finalizer's failure makes a success fail, and follows a failure.
 */
export const closedWith = (
  exit: Exit.Exit<unknown, unknown>,
  closed: Exit.Exit<unknown, unknown>
): Exit.Exit<unknown, unknown> =>
  Exit.isSuccess(closed)
    ? exit
    : Exit.isSuccess(exit)
    ? closed
    : Exit.failCause(Cause.sequential(exit.cause, closed.cause))

/** A scope closed from the start: what a task that has ended leaves behind. */
const closedScope: TaskScope = (() => {
  const scope = Effect.runSync(Scope.make())
  Effect.runSync(Scope.close(scope, Exit.void))
  return scope
})()

/**
 * The `Scope` every task of a supervisor finds in its context: one object for all of them, each
 * call answered by the scope of the task the calling fiber runs for (its `currentTaskId`, which
 * the fibers a task forks inherit). A task's context is then its origin's plus this one entry,
 * shared by every task started from the same origin, rather than a copy of the origin's services
 * per task. Once a task has ended, its fibers see a closed scope: a finalizer added then runs at
 * once, and a fiber forked into it is interrupted, as with any closed scope.
 *
 * `Effect.forkIn` reads a scope's `state` directly, from inside the forking fiber (and, when the
 * child ends, from inside the child); `state` is answered for the fiber running at that moment. A
 * self-check at load ({@link sharedWorks}) confirms this Effect version behaves so; if it ever
 * fails, each task gets a context with its own scope instead.
 */
export class SharedScope implements Scope.Scope {
  readonly [Scope.ScopeTypeId]: Scope.ScopeTypeId = Scope.ScopeTypeId
  readonly strategy: ExecutionStrategy.ExecutionStrategy = ExecutionStrategy.sequential

  constructor(private readonly scopeOf: (taskId: number) => TaskScope | undefined) {}

  /** The scope of the task `fiber` runs for, or a closed one once that task has ended. */
  resolve(fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined): TaskScope {
    return (fiber === undefined ? undefined : this.scopeOf(fiber.getFiberRef(currentTaskId))) ?? closedScope
  }

  get state(): unknown {
    return (this.resolve(Option.getOrUndefined(Fiber.getCurrentFiber())) as unknown as { readonly state: unknown }).state
  }

  fork(strategy: ExecutionStrategy.ExecutionStrategy): Effect.Effect<Scope.CloseableScope> {
    return Effect.withFiberRuntime((fiber) => Scope.fork(this.resolve(fiber), strategy))
  }

  addFinalizer(finalizer: Scope.Scope.Finalizer): Effect.Effect<void> {
    return Effect.withFiberRuntime((fiber) => Scope.addFinalizerExit(this.resolve(fiber), finalizer))
  }

  pipe() {
    // eslint-disable-next-line prefer-rest-params -- Effect's own Pipeable implementations do the same
    return pipeArguments(this, arguments)
  }
}

/**
 * Whether a {@link SharedScope} behaves as each task's own scope would: finalizers added through
 * it (directly and by `acquireRelease`) run when the task's scope closes, in reverse order; a child
 * scope forked from it closes with it; fibers forked into it (`forkScoped`, `forkIn`) are
 * interrupted then; and one forked into it after the task's scope is gone is interrupted at once.
 */
export const sharedWorks: boolean = (() => {
  try {
    const scopes = new Map<number, TaskScope>()
    const shared = new SharedScope((id) => scopes.get(id))
    return Effect.runSync(Effect.gen(function*() {
      const order: Array<string> = []
      const own = make()
      scopes.set(7, own)
      const child = yield* Effect.gen(function*() {
        yield* Scope.addFinalizer(shared, Effect.sync(() => order.push("first")))
        yield* Effect.acquireRelease(Effect.void, () => Effect.sync(() => order.push("released")))
        const forked = yield* Scope.fork(shared, ExecutionStrategy.sequential)
        yield* Scope.addFinalizer(forked, Effect.sync(() => order.push("child scope")))
        return yield* Effect.forkScoped(Effect.never)
      }).pipe(Effect.provideService(Scope.Scope, shared), Effect.locally(currentTaskId, 7))
      const inner = yield* Effect.forkIn(Effect.never, shared).pipe(Effect.locally(currentTaskId, 7))
      yield* Scope.close(own, Exit.void)
      scopes.delete(7)
      const childExit = yield* Fiber.await(child)
      const innerExit = yield* Fiber.await(inner)
      const late = yield* Effect.forkIn(Effect.never, shared).pipe(Effect.locally(currentTaskId, 7))
      const lateExit = yield* Fiber.await(late)
      return order.join() === "child scope,released,first" && Exit.isInterrupted(childExit) &&
        Exit.isInterrupted(innerExit) && Exit.isInterrupted(lateExit)
    }))
  } catch {
    return false
  }
})()
