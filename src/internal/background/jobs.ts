/**
 * What daemons and schedules share beyond what every task has: a name no other job has (jobs are
 * told apart by name in logs, snapshots and the report), and a gate they wait at before their
 * first step. The gate is open from the start unless the supervisor was made to hold them — by
 * `Server.app`, until the whole app (options checked, port bound) is up, so a failed start never
 * runs a job's first iteration.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"

export class Jobs {
  private readonly names = new Set<string>()
  private readonly released = Deferred.unsafeMake<void>(FiberId.none)
  private held = true

  constructor(hold: boolean) {
    if (!hold) this.release()
  }

  /** Reserves a job's name; false when another job has it. */
  claim(name: string): boolean {
    if (this.names.has(name)) return false
    this.names.add(name)
    return true
  }

  /** Frees a name: its job has ended, or was not started after all. */
  forget(name: string): void {
    this.names.delete(name)
  }

  /** Lets held jobs start. */
  release(): void {
    this.held = false
    Deferred.unsafeDone(this.released, Exit.void)
  }

  /** Waits until jobs may start (without yielding when they already may). */
  readonly awaitRelease: Effect.Effect<void> = Effect.suspend(() =>
    this.held ? Deferred.await(this.released) : Effect.void
  )
}
