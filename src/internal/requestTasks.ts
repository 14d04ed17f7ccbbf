/**
 * The per-request list behind `BackgroundTasks.add`: tasks are admitted into the supervisor as
 * soon as they are added (so shutdown accounts for them), and held at a gate that opens once the
 * response has been written and the handler's outcome is known.
 */
import { HttpRouter } from "@effect/platform"
import { Deferred, Effect, Exit, FiberId, FiberRef, Option, type Scope } from "effect"
import * as validate from "./options.js"
import type { Supervisor, TaskHandle } from "./supervisor.js"

export interface AddOptions {
  readonly name?: string | undefined
  readonly always?: boolean | undefined
  readonly concurrent?: boolean | undefined
}

export class RequestTasks {
  /** Opens with `true` when the handler succeeded, `false` otherwise, once the response is written. */
  private readonly outcome = Deferred.unsafeMake<boolean>(FiberId.none)
  private lastSequential: TaskHandle | undefined = undefined
  private count = 0
  sealed = false

  constructor(readonly supervisor: Supervisor, readonly label: string) {}

  add<A, E, R>(effect: Effect.Effect<A, E, R>, options: AddOptions): Effect.Effect<void, never, Exclude<R, Scope.Scope>> {
    return Effect.gen(this, function*() {
      if (this.sealed) {
        return yield* Effect.dieMessage(
          "BackgroundTasks.add was called after the response was written; use Background.fork for work started later"
        )
      }
      // `add` has no error channel (a handler should not have to handle it): a bad option is a
      // defect, with the same typed error every other option check gives.
      const given = yield* Effect.orDie(Effect.all({
        name: options.name === undefined ? Effect.succeed(undefined) : validate.name("name", options.name),
        always: validate.boolean("always", options.always, false),
        concurrent: validate.boolean("concurrent", options.concurrent, false)
      }))
      const index = ++this.count
      // The route's pattern, not the URL: a path can carry data (an email, an id) that has no
      // business in logs and reports unless the handler names the task so itself.
      const route = yield* Effect.serviceOption(HttpRouter.RouteContext)
      const name = given.name ?? `${this.label}${Option.isSome(route) ? ` ${route.value.route.path}` : ""} #${index}`
      const previous = given.concurrent ? undefined : this.lastSequential
      const gate = Effect.flatMap(Deferred.await(this.outcome), (succeeded) =>
        succeeded || given.always
          ? previous === undefined ? Effect.succeed(true) : Effect.as(previous.await, true)
          : Effect.succeed(false))
      yield* this.supervisor.submit({
        name,
        kind: "after-response",
        effect,
        gate,
        capped: true,
        enforceQueueBound: false
      }).pipe(
        Effect.tap((handle) =>
          Effect.sync(() => {
            if (!given.concurrent) this.lastSequential = handle
          })
        ),
        Effect.catchAll((error) => Effect.logError(error.message))
      )
    })
  }

  /** Seals the list and opens the gate with the handler's outcome. */
  settle(succeeded: boolean): void {
    this.sealed = true
    Deferred.unsafeDone(this.outcome, Exit.succeed(succeeded))
  }
}

export const currentRequestTasks = FiberRef.unsafeMake<Option.Option<RequestTasks>>(Option.none())
