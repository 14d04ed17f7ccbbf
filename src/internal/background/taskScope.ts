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
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"

type ScopeState =
  | { readonly _tag: "Open"; readonly finalizers: Map<object, Scope.Scope.Finalizer> }
  | { readonly _tag: "Closed"; readonly exit: Exit.Exit<unknown, unknown> }

interface LazyFields {
  strategy: ExecutionStrategy.ExecutionStrategy
  lazyState: ScopeState | undefined
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
 * nothing ever used it (it is then closed already, with nothing to run).
 */
export function close(scope: TaskScope, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
  if (untouched(scope)) {
    scope.lazyState = { _tag: "Closed", exit }
    return undefined
  }
  return Scope.close(scope, exit)
}

/**
 * Runs `effect` in the current task's scope (the `Scope` every task has), then closes that scope
 * with the run's exit and opens it again: each run's finalizers run before the next run starts, as
 * with `Effect.scoped` around each run, without providing a new scope each time. Daemons and
 * repeating jobs run each iteration this way. Where scopes are not lazy, it is `Effect.scoped`.
 */
export const perRun = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.flatMap(Scope.Scope, (scope) =>
    Object.getPrototypeOf(scope) === lazyPrototype
      ? Effect.onExit(effect, (exit) => reopen(scope as TaskScope, exit))
      : Effect.scoped(effect))

const reopen = (scope: TaskScope, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
  const closing = close(scope, exit)
  const fields = scope as unknown as LazyFields
  if (closing === undefined) {
    fields.lazyState = undefined
    return Effect.void
  }
  return Effect.ensuring(closing, Effect.sync(() => (fields.lazyState = undefined)))
}
