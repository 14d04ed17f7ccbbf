/**
 * Fibers waiting for a condition over some counts to hold (no request in flight, no pending task,
 * no task left), released together by the first `check` that finds it holding.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"

export class Waiters {
  private waiting = new Set<Deferred.Deferred<void>>()

  constructor(private readonly holds: () => boolean) {}

  /**
   * Completes at once if the condition holds, or else at the `check` that finds it holding. A wait
   * that is interrupted (a timeout, say) leaves nothing behind.
   */
  readonly await: Effect.Effect<void> = Effect.suspend(() => {
    if (this.holds()) return Effect.void
    const waiter = Deferred.unsafeMake<void>(FiberId.none)
    this.waiting.add(waiter)
    return Deferred.await(waiter).pipe(Effect.onInterrupt(() => Effect.sync(() => this.waiting.delete(waiter))))
  })

  /** How many fibers are waiting. */
  get size(): number {
    return this.waiting.size
  }

  /** Releases every waiter if the condition holds now; call it whenever a count it reads drops. */
  check(): void {
    if (this.waiting.size === 0 || !this.holds()) return
    const waiting = this.waiting
    this.waiting = new Set()
    for (const waiter of waiting) Deferred.unsafeDone(waiter, Exit.void)
  }
}
