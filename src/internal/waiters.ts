/**
 * Fibers waiting for a condition over some counts to hold (no request in flight, no pending task,
 * no task left), released together by the first `check` that finds it holding.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"

export class Waiters {
  private waiting: Array<Deferred.Deferred<void>> = []

  constructor(private readonly holds: () => boolean) {}

  /** Completes at once if the condition holds, or else at the `check` that finds it holding. */
  readonly await: Effect.Effect<void> = Effect.suspend(() => {
    if (this.holds()) return Effect.void
    const waiter = Deferred.unsafeMake<void>(FiberId.none)
    this.waiting.push(waiter)
    return Deferred.await(waiter)
  })

  /** Releases every waiter if the condition holds now; call it whenever a count it reads drops. */
  check(): void {
    if (this.waiting.length === 0 || !this.holds()) return
    const waiting = this.waiting
    this.waiting = []
    for (const waiter of waiting) Deferred.unsafeDone(waiter, Exit.void)
  }
}
