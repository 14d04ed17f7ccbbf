/**
 * The per-request list behind `BackgroundTasks.add`. A task is admitted into the supervisor when it
 * is added (so shutdown accounts for it and snapshots show it waiting) but holds no fiber until
 * the response has been written: then the tasks that should run are started — sequential ones one
 * after another, each when the one before it has ended — and the others are counted as skipped.
 *
 * The list is found through the request itself (its underlying Node or web request, which stays
 * the same when a router rewrites the URL), so a request that adds nothing costs a small slot kept
 * on that object and no fiber ref.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { MissingMiddlewareError, OutsideRequestError } from "../../Errors.js"
import * as metrics from "../metrics.js"
import * as validate from "../options.js"
import * as RequestState from "../requestState.js"
import { supervisorIn } from "./service.js"
import { servicesOf } from "./taskFiber.js"
import type { Supervisor } from "./supervisor.js"
import { currentTaskId, type Origin, originOf, type RequestOrigin, requestOriginOf, type TaskRecord } from "./task.js"

export interface AddOptions {
  readonly name?: string | undefined
  readonly always?: boolean | undefined
  readonly concurrent?: boolean | undefined
}

interface Entry {
  readonly record: TaskRecord
  readonly effect: Effect.Effect<unknown, unknown, never>
  readonly origin: Origin
  readonly always: boolean
  readonly concurrent: boolean
}

export class RequestTasks {
  private entries: Array<Entry> = []
  /**
   * Plain callbacks, for the library's own use: run when the response is written, whatever it was.
   * Made at the first one (most requests have none).
   */
  private hooks: Array<() => void> | undefined = undefined
  private count = 0

  /**
   * `request`: the request the tasks come from, when it is known outside Effect's HTTP stack (the
   * Promise API's adapters); otherwise it is read from the first adding fiber's context (every
   * add of the list serves the same request).
   */
  constructor(readonly supervisor: Supervisor, private request?: RequestOrigin | undefined) {}

  /**
   * Validates and admits a task added from `origin` (the adding fiber, as a task takes it: the
   * Promise API keeps one for every task it adds).
   */
  add(
    origin: Origin,
    effect: Effect.Effect<unknown, unknown, never>,
    options: AddOptions
  ): Effect.Effect<void> {
    // (a late add — after the response was written — is refused by the request's slot, sealed
    // before this list is settled)
    // `add` has no error channel (a handler should not have to handle it): a bad option is a
    // defect, with the same typed error every other option check gives.
    const badName = options.name !== undefined && !validate.isName(options.name)
    const badAlways = options.always !== undefined && typeof options.always !== "boolean"
    const badConcurrent = options.concurrent !== undefined && typeof options.concurrent !== "boolean"
    if (badName || badAlways || badConcurrent) {
      return Effect.die(validate.invalidOptions([
        ...(badName ? [{ option: "name", value: options.name, expected: validate.nameExpected("send-email") }] : []),
        ...(badAlways ? [{ option: "always", value: options.always, expected: validate.BOOLEAN_EXPECTED }] : []),
        ...(badConcurrent ? [{ option: "concurrent", value: options.concurrent, expected: validate.BOOLEAN_EXPECTED }] : [])
      ]))
    }
    const index = ++this.count
    // The route's pattern, not the URL: a path can carry data (an email, an id) that has no
    // business in logs and reports unless the handler names the task so itself.
    const request = this.request ??= requestOriginOf(origin.context)
    const name = options.name ?? defaultName(request, index)
    const now = servicesOf(origin).clock.unsafeCurrentTimeMillis()
    const record = this.supervisor.reserve(name, now, request)
    if (record === undefined) {
      return Effect.logError(`background after-response "${name}" refused: the server is shutting down`)
    }
    this.entries.push({
      record,
      effect,
      origin,
      always: options.always ?? false,
      concurrent: options.concurrent ?? false
    })
    return metrics.withNotices(Effect.void)
  }

  /**
   * Seals the list once the response is written: starts what should run (everything when the
   * handler succeeded, `always` tasks otherwise) and skips the rest.
   */
  settle(succeeded: boolean): void {
    const hooks = this.hooks
    const entries = this.entries
    // (let go of both at once: a list is settled once)
    this.hooks = undefined
    this.entries = []
    if (hooks !== undefined) for (const hook of hooks) hook()
    let previous: Entry | undefined
    for (const entry of entries) {
      if (!succeeded && !entry.always) {
        this.supervisor.skip(entry.record)
      } else if (entry.concurrent) {
        startSoon(this, entry)
      } else {
        if (previous === undefined) startSoon(this, entry)
        // started from the previous task's fiber: scheduled, so a long line never nests run loops
        else previous.record.onEnd = () => this.start(entry, false)
        previous = entry
      }
    }
  }

  /** Adds a plain callback, run when the response is written ({@link settle}). */
  onSettled(hook: () => void): void {
    if (this.hooks === undefined) this.hooks = [hook]
    else this.hooks.push(hook)
  }

  start(entry: Entry, immediate: boolean): void {
    this.supervisor.start(entry.record, entry.effect, entry.origin, immediate)
  }
}

/**
 * Tasks whose responses were written during this turn of the event loop, started together once
 * the turn's I/O has been handled (`setImmediate`): a busy server answers the requests it has
 * read before its tasks compete with it, and the tasks' own I/O is issued in one batch. The delay
 * is one loop turn.
 */
let due: Array<readonly [RequestTasks, Entry]> = []
const startSoon = (tasks: RequestTasks, entry: Entry): void => {
  if (due.length === 0) setImmediate(startDue)
  due.push([tasks, entry])
}
const startDue = (): void => {
  const batch = due
  due = []
  // (`Supervisor.start` ends a task that fails to start as a defect, so one cannot strand the others)
  for (const [tasks, entry] of batch) tasks.start(entry, true)
}

const defaultName = (origin: RequestOrigin | undefined, index: number) =>
  `after-response${origin === undefined ? "" : ` ${origin.method}`}${origin?.route === undefined ? "" : ` ${origin.route}`} #${index}`

/** What the middleware keeps per request: its task list, once one is added, and its seal. */
interface Slot {
  /** The `currentTaskId` of the fiber serving the request (not 0 when a job runs the server). */
  readonly servedBy: number
  tasks: RequestTasks | undefined
  sealed: boolean
}

/**
 * Slots by request, kept on the request's source, which a router's URL rewrite keeps (a property,
 * not a WeakMap: see requestState.ts); a slot goes when its request is collected.
 */
const slots = RequestState.make<Slot>("effect-background/slot")

const keyOf = (request: HttpServerRequest.HttpServerRequest): object => request.source as object

/**
 * Opens the request's slot (no task list until the first add). Returns false, and leaves the
 * slot alone, when the request already has an open one: the middleware is applied twice (around
 * the server and inside a router), and the outer one takes and settles the tasks.
 */
export const open = (request: HttpServerRequest.HttpServerRequest, servedBy: number): boolean => {
  const key = keyOf(request)
  const existing = slots.get(key)
  if (existing !== undefined && !existing.sealed) return false
  slots.set(key, { servedBy, tasks: undefined, sealed: false })
  return true
}

/**
 * Seals the request's slot (a later add is refused) and returns its list, if anything was added.
 * The slot then lets go of the list: a request object can outlive its response for a while, and
 * its tasks (with their fibers and the handler's services) should not live as long.
 */
export const take = (request: HttpServerRequest.HttpServerRequest): RequestTasks | undefined => {
  const slot = slots.get(keyOf(request))
  if (slot === undefined) return undefined
  const tasks = slot.tasks
  slot.tasks = undefined
  slot.sealed = true
  return tasks
}

/** `BackgroundTasks.add`. Its misuses are defects (it has no error channel) naming the cause. */
export const add = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: AddOptions): Effect.Effect<void, never, HttpServerRequest.HttpServerRequest | Exclude<R, Scope.Scope>> =>
  Effect.withFiberRuntime((fiber) => {
    const context = fiber.currentContext
    // A fiber of a background task carries that task's id; the request's own fibers carry the id
    // the request was served with (0, unless a job runs the server).
    const taskId = fiber.getFiberRef(currentTaskId)
    const request = Context.getOption(context, HttpServerRequest.HttpServerRequest)
    if (Option.isNone(request)) {
      // the type asks for a request: none here means a job (or a fork of one) or a program of its
      // own, reached through a cast or untyped code
      return taskId === 0
        ? Effect.die(new OutsideRequestError({ reason: "no-request", task: undefined }))
        : calledFromTask(supervisorIn(context), taskId)
    }
    const slot = slots.get(keyOf(request.value))
    if (slot === undefined) return Effect.die(new MissingMiddlewareError({ missing: "middleware" }))
    if (taskId !== slot.servedBy) return calledFromTask(supervisorIn(context), taskId)
    if (slot.sealed) return Effect.die(new OutsideRequestError({ reason: "after-response", task: undefined }))
    if (slot.tasks === undefined) {
      const supervisor = supervisorIn(context)
      if (supervisor === undefined) return Effect.die(new MissingMiddlewareError({ missing: "supervisor" }))
      slot.tasks = new RequestTasks(supervisor)
    }
    // The task's context is the handler's; Scope comes from the task's own scope.
    return slot.tasks.add(originOf(fiber), effect as Effect.Effect<unknown, unknown, never>, options)
  })

/** The defect of an add made in a background task's fiber, naming the task if it is known. */
const calledFromTask = (supervisor: Supervisor | undefined, taskId: number) =>
  Effect.die(new OutsideRequestError({ reason: "background-task", task: supervisor?.nameOf(taskId) }))

/**
 * Whether an add from this fiber would be accepted: it serves a request whose slot is open, with a
 * supervisor. Durable enqueues ask, to hold a task until the response is written only where a
 * response is coming.
 */
export const canAdd = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean => openSlot(fiber) !== undefined

const openSlot = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>): readonly [Slot, Supervisor] | undefined => {
  const context = fiber.currentContext
  const request = Context.getOption(context, HttpServerRequest.HttpServerRequest)
  if (Option.isNone(request)) return undefined
  const slot = slots.get(keyOf(request.value))
  if (slot === undefined || slot.sealed || fiber.getFiberRef(currentTaskId) !== slot.servedBy) return undefined
  const supervisor = supervisorIn(context)
  return supervisor === undefined ? undefined : [slot, supervisor]
}

/**
 * Calls `hook` once the response to the request this fiber serves is written (whatever it was):
 * a plain callback, with no task, fiber or span of its own. False, with nothing registered, where
 * `add` would be refused (no request through the middleware, or its response is on its way).
 */
export const onWritten = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  hook: () => void
): boolean => {
  const open = openSlot(fiber)
  if (open === undefined) return false
  const [slot, supervisor] = open
  if (slot.tasks === undefined) slot.tasks = new RequestTasks(supervisor)
  slot.tasks.onSettled(hook)
  return true
}

/** {@link canAdd}, for the calling fiber. */
export const canAddHere: Effect.Effect<boolean> = Effect.withFiberRuntime((fiber) => Effect.succeed(canAdd(fiber)))

/** {@link onWritten}, for the calling fiber. */
export const onWrittenHere = (hook: () => void): Effect.Effect<boolean> =>
  Effect.withFiberRuntime((fiber) => Effect.succeed(onWritten(fiber, hook)))
