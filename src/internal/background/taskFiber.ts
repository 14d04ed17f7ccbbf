/**
 * A task's fiber: a root fiber with the services and fiber refs of the fiber that added the task
 * (its origin), plus the task's own Scope, log annotations, id and — under a tracer that exports —
 * its span. It starts uninterruptible, so its end is always counted; its body is interruptible.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { currentTaskId, type Origin, type OriginServices, type TaskKind, type TaskRecord } from "./task.js"
import type * as taskScope from "./taskScope.js"

/**
 * A fiber ref's value in `refs` (`FiberRefs.getOrDefault`, without the `Option` it makes: this is
 * read several times per task).
 */
export const refValue = <A>(refs: FiberRefs.FiberRefs, ref: FiberRef.FiberRef<A>): A => {
  const stack = refs.locals.get(ref)
  return stack === undefined ? FiberRefs.getOrDefault(refs, ref) : stack[0][1] as A
}

/** Effect's built-in tracer, which exports nothing. */
export const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

const taskFlags = RuntimeFlags.disable(Runtime.defaultRuntimeFlags, RuntimeFlags.Interruption)

/** The services a task's start reads of `origin`, read once per origin (an origin's refs never change). */
export const servicesOf = (origin: Origin): OriginServices => {
  if (origin.services !== undefined) return origin.services
  const { fiberRefs } = origin
  const services = refValue(fiberRefs, DefaultServices.currentServices)
  const tracer = Context.get(services, Tracer.Tracer)
  const made: OriginServices = {
    clock: Context.get(services, Clock.Clock),
    tracer: tracer === nativeTracer || !refValue(fiberRefs, FiberRef.currentTracerEnabled) ? undefined : tracer,
    timing: refValue(fiberRefs, FiberRef.currentTracerTimingEnabled)
  }
  origin.services = made
  return made
}

/**
 * The task's span, made here and ended with the task (see `Supervisor.end`) rather than by
 * `withSpan` around it, whose frames would stay on the task's stack for its whole life. None for
 * Effect's built-in tracer, which exports nothing (the task then keeps its origin's span as
 * parent), nor when tracing is off.
 */
export const spanOf = (record: TaskRecord, origin: Origin): TaskRecord["span"] => {
  const { clock, timing, tracer } = servicesOf(origin)
  if (tracer === undefined) return undefined
  const parentSpan = Context.getOption(origin.context, Tracer.ParentSpan)
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
  return { span, clock: timing ? clock : undefined }
}

/**
 * The origin's log annotations plus the task's name and kind, as the fiber-ref stack a task's
 * fiber starts with. The last result is reused for the same origin annotations, kind and name
 * (tasks forked in a loop share one stack), and its kind step for the same origin and kind
 * (after-response tasks, named per request). Stacks are never changed in place (Effect copies a
 * stack to update it), so tasks can share one.
 */
export class Annotations {
  private last:
    | {
      readonly parent: HashMap.HashMap<string, unknown>
      readonly kind: TaskKind
      readonly withKind: HashMap.HashMap<string, unknown>
      name: string
      stack: FiberRefStack
    }
    | undefined = undefined

  of(parent: HashMap.HashMap<string, unknown>, record: TaskRecord): FiberRefStack {
    const last = this.last
    if (last !== undefined && last.parent === parent && last.kind === record.kind) {
      if (last.name !== record.name) {
        last.name = record.name
        last.stack = [[FiberId.none, HashMap.set(last.withKind, "task", record.name)]]
      }
      return last.stack
    }
    const withKind = HashMap.set(parent, "taskKind", record.kind)
    const stack: FiberRefStack = [[FiberId.none, HashMap.set(withKind, "task", record.name)]]
    this.last = { parent, kind: record.kind, withKind, name: record.name, stack }
    return stack
  }
}

/** A fiber ref's value as `FiberRefs` keeps it: a stack of (fiber, value), the current one first. */
type FiberRefStack = readonly [readonly [FiberId.Single, unknown], ...Array<readonly [FiberId.Single, unknown]>]

/**
 * The context a task's fiber gets: its origin's, with the task's scope as `Scope`. With a shared
 * scope (see `SharedScope` in taskScope.ts) that is one entry for every task, so an origin whose
 * context already has it (a task forking another) is used as it is, and the last origin's result
 * is reused (tasks forked in a loop); otherwise each task gets a copy with its own scope.
 */
export class Contexts {
  private lastOrigin: Context.Context<never> | undefined = undefined
  private lastResult: Context.Context<never> | undefined = undefined

  constructor(private readonly shared: taskScope.SharedScope | undefined) {}

  of(origin: Context.Context<never>, own: Scope.Scope): Context.Context<never> {
    const shared = this.shared
    if (shared === undefined) return Context.add(origin, Scope.Scope, own)
    if (origin === this.lastOrigin) return this.lastResult!
    const given = Context.getOption(origin, Scope.Scope)
    const result = Option.isSome(given) && given.value === shared ? origin : Context.add(origin, Scope.Scope, shared)
    this.lastOrigin = origin
    this.lastResult = result
    return result
  }
}

/**
 * The context a task runs with: its origin's, with the task's scope and, under a tracer that
 * exports, its span as parent.
 */
const contextOf = (record: TaskRecord, origin: Origin, scope: Scope.Scope, contexts: Contexts): Context.Context<never> => {
  const withScope = contexts.of(origin.context, scope)
  return record.span === undefined ? withScope : Context.add(withScope, Tracer.ParentSpan, record.span.span)
}

/**
 * Sets the task's own fiber refs — its log annotations and its id — in `refs`, a copy made for
 * the fiber that runs it (no one else holds that map). Each is set as a single value, not pushed
 * on the origin's history: a task's fiber refs are never joined back.
 */
const setOwnRefs = (
  refs: FiberRefs.FiberRefs,
  record: TaskRecord,
  origin: Origin,
  annotations: Annotations
): FiberRefs.FiberRefs => {
  const logAnnotations = annotations.of(refValue(origin.fiberRefs, FiberRef.currentLogAnnotations), record)
  refs.locals.set(FiberRef.currentLogAnnotations, logAnnotations)
  refs.locals.set(currentTaskId, [[FiberId.none, record.id]])
  return refs
}

/**
 * Forks `program` as the task's root fiber. `immediate` runs its first steps now, before this
 * returns; otherwise it is scheduled.
 */
export const fork = <R>(
  record: TaskRecord,
  program: Effect.Effect<void, never, R>,
  scope: Scope.Scope,
  origin: Origin,
  contexts: Contexts,
  annotations: Annotations,
  immediate: boolean
): Fiber.RuntimeFiber<void> => {
  const runtime = Runtime.make({
    context: contextOf(record, origin, scope, contexts) as Context.Context<R>,
    fiberRefs: origin.fiberRefs,
    runtimeFlags: taskFlags
  })
  return Runtime.runFork(runtime)(program, {
    immediate,
    updateRefs: (refs) => setOwnRefs(refs, record, origin, annotations)
  })
}

/**
 * The fiber refs a task's own fiber would start with (as {@link fork} makes them), for a runner
 * fiber (`fiberId`) to run the task with instead (runners.ts).
 */
export const refsOf = (
  record: TaskRecord,
  scope: Scope.Scope,
  origin: Origin,
  contexts: Contexts,
  annotations: Annotations,
  fiberId: FiberId.Runtime
): FiberRefs.FiberRefs => {
  const refs = FiberRefs.forkAs(origin.fiberRefs, fiberId)
  refs.locals.set(FiberRef.currentContext, [[fiberId, contextOf(record, origin, scope, contexts)]])
  return setOwnRefs(refs, record, origin, annotations)
}
