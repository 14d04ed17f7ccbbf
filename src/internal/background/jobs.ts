/**
 * What daemons and schedules share beyond what every task has: a name no other job has (jobs are
 * told apart by name in logs, snapshots and the report), and a gate they wait at before their
 * first step. The gate is open from the start unless the supervisor was made to hold them — by
 * `Server.app`, until the whole app (options checked, port bound) is up, so a failed start never
 * runs a job's first iteration. Also what the inspector shows of each job beyond its task record:
 * when a schedule runs next, and how many times and how last it failed.
 */
import type * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"

/** A job's runs as the inspector shows them (written by its loop, in schedule.ts). */
export interface JobStatus {
  /** Epoch milliseconds of a schedule's next run, while it waits for it. */
  nextRunAt: number | undefined
  /** Failed runs (a schedule) or failures (a daemon) so far. */
  failures: number
  /** The last failure's cause (kept as a cause; rendered only when shown), and when it came. */
  lastFailure: { readonly at: number; readonly cause: Cause.Cause<unknown> } | undefined
}

export class Jobs {
  private readonly names = new Set<string>()
  private readonly statuses = new Map<string, JobStatus>()
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
    this.statuses.delete(name)
  }

  /** Frees every name at once: the supervisor has stopped all its jobs (see `Supervisor.end`). */
  forgetAll(): void {
    this.names.clear()
    this.statuses.clear()
  }

  /** The job's runs so far, if it has a status yet. */
  status(name: string): Readonly<JobStatus> | undefined {
    return this.statuses.get(name)
  }

  /** A schedule waits for its next run at `at` (or runs now: `undefined`). */
  nextRun(name: string, at: number | undefined): void {
    this.statusOf(name).nextRunAt = at
  }

  /** A run failed (a schedule's) or the job did (a daemon). */
  failed(name: string, cause: Cause.Cause<unknown>, at: number): void {
    const status = this.statusOf(name)
    status.failures++
    status.lastFailure = { at, cause }
  }

  private statusOf(name: string): JobStatus {
    let status = this.statuses.get(name)
    if (status === undefined) {
      status = { nextRunAt: undefined, failures: 0, lastFailure: undefined }
      // (only for a job that holds its name: one that has ended leaves nothing behind)
      if (this.names.has(name)) this.statuses.set(name, status)
    }
    return status
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
