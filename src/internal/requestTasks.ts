/**
 * The per-request list behind `BackgroundTasks.add`: tasks are admitted into the supervisor as
 * soon as they are added (so shutdown accounts for them), and held at a gate that opens once the
 * response has been written and the handler's outcome is known.
 */
import { Deferred, Effect, Exit, FiberId, FiberRef, Option, type Scope } from "effect"
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
    return Effect.suspend(() => {
      if (this.sealed) {
        return Effect.dieMessage(
          "BackgroundTasks.add was called after the response was written; use Background.fork for work started later"
        )
      }
      const index = ++this.count
      const name = options.name ?? `${this.label} #${index}`
      const previous = options.concurrent === true ? undefined : this.lastSequential
      const always = options.always === true
      const gate = Effect.flatMap(Deferred.await(this.outcome), (succeeded) =>
        succeeded || always
          ? previous === undefined ? Effect.succeed(true) : Effect.as(previous.await, true)
          : Effect.succeed(false))
      return this.supervisor.submit({
        name,
        kind: "after-response",
        effect,
        gate,
        capped: true,
        enforceQueueBound: false
      }).pipe(
        Effect.tap((handle) =>
          Effect.sync(() => {
            if (options.concurrent !== true) this.lastSequential = handle
          })
        ),
        Effect.catchAll((error) => Effect.logError(error.message)),
        Effect.asVoid
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
