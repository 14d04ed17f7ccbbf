/**
 * The concurrency cap on plain and after-response tasks: how many hold a slot, and the queue of
 * those waiting for one. A keyed replacement takes over the slot, or the place in the queue, of
 * the task it replaces, so nothing can slip in between while it waits for that task to stop.
 */
import * as Deferred from "effect/Deferred"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { TaskRecord } from "./task.js"

export class Slots {
  private running = 0
  private readonly queue: Array<TaskRecord> = []

  constructor(readonly concurrency: number, readonly maxQueued: number) {}

  /** Whether a task asking for a slot now would get one at once. */
  get free(): boolean {
    return this.running < this.concurrency
  }

  /** Whether a new task would find every slot taken and the queue at its bound. */
  get full(): boolean {
    return this.running >= this.concurrency && this.queue.length >= this.maxQueued
  }

  /**
   * Gives the task a slot if it holds none and one is free; otherwise queues it (once) and returns
   * what to wait for. `undefined` means it may run now.
   */
  seat(record: TaskRecord): Deferred.Deferred<void> | undefined {
    if (record.holdsSlot) return undefined
    if (record.wake === undefined && this.running < this.concurrency) {
      this.running++
      record.holdsSlot = true
      return undefined
    }
    if (record.wake === undefined) {
      record.wake = Deferred.unsafeMake<void>(FiberId.none)
      record.state = "queued"
      this.queue.push(record)
    }
    return record.wake
  }

  /** Frees the task's slot or place in the queue — to its replacement, if one waits for it. */
  release(record: TaskRecord): void {
    // A replacement still waiting for this task to stop takes its place, so no other task can
    // slip in between (past the queue bound) while the replacement waits. (Tasks that end leave
    // their key's line, so `successor` and `replacing` always name live tasks.)
    const heir = record.successor
    const inherits = heir !== undefined && heir.wake === undefined && !heir.holdsSlot
    if (record.wake !== undefined && !record.holdsSlot) {
      // still queued (never woken): out of the queue, or its place to the replacement
      const index = this.queue.indexOf(record)
      if (index >= 0 && inherits) {
        heir!.wake = Deferred.unsafeMake<void>(FiberId.none)
        heir!.state = "queued"
        this.queue[index] = heir!
      } else if (index >= 0) {
        this.queue.splice(index, 1)
      }
    }
    if (!record.holdsSlot) return
    record.holdsSlot = false
    if (inherits) {
      heir!.holdsSlot = true
      return
    }
    this.running--
    while (this.running < this.concurrency && this.queue.length > 0) {
      const next = this.queue.shift()!
      this.running++
      next.holdsSlot = true
      Deferred.unsafeDone(next.wake!, Exit.void)
    }
  }
}
