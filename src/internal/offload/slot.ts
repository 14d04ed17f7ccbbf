/**
 * One worker thread of the pool as the pool sees it (its jobs in flight, its load state), and how
 * jobs reach threads: which thread a job goes to, a job handed from a busy thread to an idle one,
 * and the post itself. A job sent to a thread takes a cell in the thread's shared array; whoever
 * flips the cell first — the thread starting the job, or the pool taking it back — owns the job.
 */
import type { MessagePort, Worker } from "node:worker_threads"
import type { Job } from "./pool.js"
import { CellState, PIPELINE_DEPTH, type SerializedDefect } from "./protocol.js"

export interface Slot {
  readonly worker: Worker
  ready: boolean
  /** The spare thread (see `spareThread`), until it takes over: not one of the pool's threads. */
  spare: boolean
  /** Bounds how long the worker may take to load its module. */
  startupTimer: NodeJS.Timeout | undefined
  /**
   * Jobs sent to this worker, oldest first: at most {@link PIPELINE_DEPTH}, the first normally
   * running. A cancelled entry whose job never started stays until the worker says it skipped it,
   * because its cell is still in use.
   */
  entries: Array<Entry>
  readonly cells: Int32Array
  /** Being terminated on purpose (cancelled job, idle, shutdown): its exit is not a crash. */
  retiring: boolean
  lastError: (Error & { code?: string }) | undefined
  /** When the slot last became idle (performance.now), for the idle sweep. */
  idleSince: number | undefined
  /** Why it could not load, once known. */
  loadFailure: SerializedDefect | undefined
  /** Set while the pool's start waits on this thread: told whether it loaded. */
  onReady: ((error: SerializedDefect | undefined) => void) | undefined
}

export interface Entry {
  readonly job: Job
  readonly cell: number
  cancelled: boolean
}

export const live = (slot: Slot): number => {
  let count = 0
  for (const entry of slot.entries) if (!entry.cancelled) count++
  return count
}

/** Claims an entry's cell for the pool: true if the worker had not started it (it never will). */
export const claim = (slot: Slot, entry: Entry): boolean =>
  Atomics.compareExchange(slot.cells, entry.cell, CellState.PENDING, CellState.CANCELLED) === CellState.PENDING

/**
 * Where `job` goes: an idle thread; or, once the pool has all its threads (`allStarted`), behind
 * the job a busy thread is running, so the thread never waits for the main thread between jobs. A
 * job that transfers buffers goes only to an idle thread: once posted its buffers are gone from
 * this thread, so it could not be sent again to another (taken by a freed thread, or handed back
 * after a cancellation or a crash).
 */
export const targetFor = (slots: Iterable<Slot>, job: Job, allStarted: boolean): Slot | undefined => {
  let behind: Slot | undefined
  for (const slot of slots) {
    if (!slot.ready || slot.retiring || slot.entries.length >= PIPELINE_DEPTH) continue
    if (live(slot) === 0) return slot
    if (job.transfer.length === 0) behind ??= slot
  }
  return allStarted ? behind : undefined
}

/** An idle thread takes (through `send`) a job still waiting behind another thread's running one. */
export const steal = (slots: Iterable<Slot>, send: (idle: Slot, job: Job) => void): void => {
  for (const idle of slots) {
    if (!idle.ready || idle.retiring || live(idle) > 0 || idle.entries.length >= PIPELINE_DEPTH) continue
    for (const busy of slots) {
      if (busy === idle || live(busy) < 2) continue
      const last = busy.entries[busy.entries.length - 1]!
      if (last.cancelled || !claim(busy, last)) continue
      last.cancelled = true
      send(idle, last.job)
      break
    }
  }
}

/**
 * Posts `job` to the slot's worker in a free cell. When it cannot be posted (not structured-
 * clonable, a detached buffer in its transfer list), nothing of it is left on the slot and the
 * error is returned.
 */
export const post = (slot: Slot, job: Job): { readonly error: unknown } | undefined => {
  slot.idleSince = undefined
  const used = slot.entries.map((entry) => entry.cell)
  let cell = 0
  while (used.includes(cell)) cell++
  Atomics.store(slot.cells, cell, CellState.PENDING)
  const entry: Entry = { job, cell, cancelled: false }
  slot.entries.push(entry)
  try {
    slot.worker.postMessage({ ...job.message, cell }, job.transfer as Array<ArrayBuffer | MessagePort>)
    return undefined
  } catch (error) {
    slot.entries.splice(slot.entries.indexOf(entry), 1)
    return { error }
  }
}
