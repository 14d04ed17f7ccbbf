/**
 * Keyed tasks: at most one task per key runs at a time. A fork with a key either keeps the task
 * that has it or replaces it; replacements form a line (each knows the one it replaced and the one
 * replacing it) until each ends, and the key belongs to the newest live one.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type { TaskRecord } from "./task.js"

export class KeyLines {
  private readonly keys = new Map<string, TaskRecord>()

  /** The live task holding `key`, if any. */
  holder(key: string): TaskRecord | undefined {
    return this.keys.get(key)
  }

  /** The task takes its key, and its place after the task it replaces (if it replaces one). */
  enter(record: TaskRecord, replaced: TaskRecord | undefined): void {
    if (record.key !== undefined) this.keys.set(record.key, record)
    record.replacing = replaced
    if (replaced !== undefined) replaced.successor = record
  }

  /** The task has ended: out of its line, so walks along the line step over it. */
  leave(record: TaskRecord): void {
    if (record.replacing?.successor === record) record.replacing.successor = record.successor
    if (record.successor?.replacing === record) record.successor.replacing = record.replacing
    if (record.key !== undefined && this.keys.get(record.key) === record) {
      // A replacement that ends before the task it replaces (interrupted while that one's
      // finalizers run) hands the key back to it: one task per key, until the last one ends.
      if (record.replacing === undefined) this.keys.delete(record.key)
      else this.keys.set(record.key, record.replacing)
    }
  }
}

/**
 * Interrupts the task a keyed fork replaces and waits for it — and for the one it was itself
 * replacing, if that one has not ended yet: one task per key at a time, however fast replacements
 * come.
 */
export const stopReplaced = (replaced: TaskRecord): Effect.Effect<void> =>
  Effect.suspend(() => {
    const line: Array<Fiber.RuntimeFiber<void>> = []
    for (let record: TaskRecord | undefined = replaced; record !== undefined; record = record.replacing) {
      if (record.exit === undefined && record.fiber !== undefined) line.push(record.fiber)
    }
    return Effect.forEach(line, Fiber.interrupt, { discard: true })
  })
