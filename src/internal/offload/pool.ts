/**
 * The worker pool, in plain event-driven code: slots (one worker thread each), a FIFO queue of
 * jobs, dispatch, replacement of crashed or cancelled workers, idle retirement and shutdown.
 *
 * Cancelling a running job terminates its worker — the only way to stop JavaScript running on
 * another thread — and the pool starts a replacement, so the next job never waits behind work
 * nobody wants.
 */
import type { MessagePort, Worker } from "node:worker_threads"
import { describeDefect, type FromWorker, type SerializedDefect, serializeDefect, type ToWorker } from "./protocol.js"
import { spawnWorker, stopWorker } from "./spawn.js"

export type JobResult =
  | Extract<FromWorker, { _tag: "Success" | "Failure" | "Defect" | "SchemaError" }>
  | { readonly _tag: "Crash"; readonly exitCode: number; readonly reason: string | undefined }
  | { readonly _tag: "OutOfMemory" }
  | { readonly _tag: "Interrupted" }

export interface Job {
  readonly label: string
  readonly message: ToWorker
  readonly transfer: ReadonlyArray<ArrayBuffer | MessagePort>
  readonly onResult: (result: JobResult) => void
}

export interface PoolOptions {
  readonly name: string
  readonly module: string | undefined
  readonly minThreads: number
  readonly maxThreads: number
  readonly maxQueued: number
  readonly idleTimeoutMillis: number
  readonly startupTimeoutMillis: number
  readonly maxHeapMb: number | undefined
}

interface Slot {
  readonly worker: Worker
  ready: boolean
  /** Bounds how long the worker may take to load its module. */
  startupTimer: NodeJS.Timeout | undefined
  job: Job | undefined
  /** Being terminated on purpose (cancelled job, idle, shutdown): its exit is not a crash. */
  retiring: boolean
  lastError: (Error & { code?: string }) | undefined
  idleTimer: NodeJS.Timeout | undefined
  onReady: ((error: SerializedDefect | undefined) => void) | undefined
}

export interface PoolStats {
  /** Worker threads alive or starting (not those being terminated). */
  readonly threads: number
  /** Threads running a task. */
  readonly busy: number
  /** Tasks waiting for a thread. */
  readonly queued: number
  /** Threads started since the pool was built, replacements included. */
  readonly spawned: number
  /** Threads lost while running a task (exit, crash, out of memory); cancellations are not counted. */
  readonly crashed: number
}

export class Pool {
  private readonly slots = new Set<Slot>()
  private readonly queue: Array<Job> = []
  private closing = false
  private spawned = 0
  private crashed = 0
  private idleWaiters: Array<() => void> = []

  constructor(readonly options: PoolOptions) {}

  get stats(): PoolStats {
    let busy = 0
    for (const slot of this.slots) if (slot.job !== undefined) busy++
    return { threads: this.liveSlots(), busy, queued: this.queue.length, spawned: this.spawned, crashed: this.crashed }
  }

  /** Starts the minimum number of workers (at least one, to prove the module loads). */
  start(): Promise<void> {
    const count = Math.max(1, this.options.minThreads)
    const starting = Array.from({ length: count }, () => this.waitReady(this.spawn()))
    return Promise.all(starting).then(
      () => {
        for (const slot of this.slots) this.settleIdle(slot)
      },
      (error: unknown) => {
        this.closing = true
        return Promise.all(Array.from(this.slots, (slot) => this.retire(slot))).then(() => {
          throw error
        })
      }
    )
  }

  private waitReady(slot: Slot): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      slot.onReady = (error) => {
        slot.onReady = undefined
        if (error === undefined) resolve()
        else reject(new Error(describeDefect(error), { cause: error }))
      }
    })
  }

  /** Queues a job, or says why it cannot be accepted. */
  submit(job: Job): "accepted" | "closing" | "full" {
    if (this.closing) return "closing"
    if (this.stats.busy + this.queue.length >= this.options.maxThreads + this.options.maxQueued) return "full"
    this.queue.push(job)
    this.dispatch()
    return "accepted"
  }

  /** Removes a queued job, or terminates the worker running it (a replacement starts at once). */
  cancel(job: Job): Promise<void> {
    const index = this.queue.indexOf(job)
    if (index >= 0) {
      this.queue.splice(index, 1)
      this.notifyIdle()
      return Promise.resolve()
    }
    for (const slot of this.slots) {
      if (slot.job === job) {
        slot.job = undefined
        const retired = this.retire(slot)
        // Replace it now rather than on its exit, which a call blocked in native code delays.
        if (!this.closing) while (this.liveSlots() < this.options.minThreads) this.spawn()
        this.dispatch()
        this.notifyIdle()
        return retired
      }
    }
    return Promise.resolve()
  }

  private liveSlots(): number {
    let count = 0
    for (const slot of this.slots) if (!slot.retiring) count++
    return count
  }

  private spawn(): Slot {
    const worker = spawnWorker({
      module: this.options.module,
      maxHeapMb: this.options.maxHeapMb,
      name: this.options.name,
      kind: "tasks"
    })
    this.spawned++
    const slot: Slot = {
      worker,
      ready: false,
      startupTimer: undefined,
      job: undefined,
      retiring: false,
      lastError: undefined,
      idleTimer: undefined,
      onReady: undefined
    }
    // Every worker, not only the first ones, must load in time: a replacement that hangs while
    // loading would otherwise hold queued jobs forever.
    slot.startupTimer = setTimeout(() => {
      slot.startupTimer = undefined
      this.loadFailed(slot, {
        name: "Error",
        message: `the worker did not become ready within ${this.options.startupTimeoutMillis}ms`,
        stack: undefined
      })
    }, this.options.startupTimeoutMillis)
    this.slots.add(slot)
    worker.on("message", (message: FromWorker) => this.onMessage(slot, message))
    worker.on("error", (error: Error) => {
      slot.lastError = error
    })
    worker.on("exit", (code) => this.onExit(slot, code))
    return slot
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    switch (message._tag) {
      case "Ready": {
        if (slot.startupTimer !== undefined) clearTimeout(slot.startupTimer)
        slot.startupTimer = undefined
        slot.ready = true
        slot.onReady?.(undefined)
        this.dispatch()
        this.settleIdle(slot)
        return
      }
      case "LoadError":
        return this.loadFailed(slot, message.error)
      case "Success":
      case "Failure":
      case "Defect":
      case "SchemaError": {
        const job = slot.job
        // A result always answers the slot's current job (one job per worker at a time); the id
        // check guards against a stray message all the same.
        if (job === undefined || !("id" in job.message) || job.message.id !== message.id) return
        slot.job = undefined
        job.onResult(message)
        this.dispatch()
        this.settleIdle(slot)
        this.notifyIdle()
        return
      }
      case "Stopped":
        return
    }
  }

  /** A worker that could not load its module (or not in time) is terminated; its exit settles the rest. */
  private loadFailed(slot: Slot, error: SerializedDefect): void {
    if (slot.ready || slot.retiring) return
    if (slot.startupTimer !== undefined) clearTimeout(slot.startupTimer)
    slot.startupTimer = undefined
    slot.lastError = Object.assign(new Error(error.message), { name: error.name })
    slot.onReady?.(error)
    void this.retire(slot)
  }

  private onExit(slot: Slot, exitCode: number): void {
    this.slots.delete(slot)
    if (slot.idleTimer !== undefined) clearTimeout(slot.idleTimer)
    if (slot.startupTimer !== undefined) clearTimeout(slot.startupTimer)
    if (!slot.ready) {
      slot.onReady?.({
        name: "Error",
        message: slot.lastError?.code === "ERR_WORKER_OUT_OF_MEMORY"
          ? `it ran out of memory while loading (maxHeapMb: ${this.options.maxHeapMb}); raise maxHeapMb`
          : slot.lastError?.message ?? `the worker exited with code ${exitCode} while starting`,
        stack: slot.lastError?.stack
      })
      // A worker that never loaded is not replaced eagerly — that would respawn a broken module
      // forever. Jobs waiting for it fail; the next job submitted tries a fresh worker.
      this.failQueuedIfNoWorker({
        _tag: "Crash",
        exitCode,
        reason: `the worker module failed to load: ${slot.lastError?.message ?? `exit code ${exitCode}`}`
      })
      this.notifyIdle()
      return
    }
    const job = slot.job
    slot.job = undefined
    if (job !== undefined) {
      this.crashed++
      job.onResult(
        slot.lastError?.code === "ERR_WORKER_OUT_OF_MEMORY"
          ? { _tag: "OutOfMemory" }
          : { _tag: "Crash", exitCode, reason: slot.lastError?.message }
      )
    }
    if (!this.closing) {
      while (this.liveSlots() < this.options.minThreads) this.spawn()
      this.dispatch()
    }
    this.notifyIdle()
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const free = this.freeSlot()
      if (free === undefined) break
      this.run(free, this.queue.shift()!)
    }
    if (this.closing) return
    let starting = 0
    for (const slot of this.slots) if (!slot.ready && !slot.retiring) starting++
    let needed = this.queue.length - starting
    while (needed > 0 && this.liveSlots() < this.options.maxThreads) {
      this.spawn()
      needed--
    }
  }

  private freeSlot(): Slot | undefined {
    for (const slot of this.slots) if (slot.ready && !slot.retiring && slot.job === undefined) return slot
    return undefined
  }

  private run(slot: Slot, job: Job): void {
    if (slot.idleTimer !== undefined) {
      clearTimeout(slot.idleTimer)
      slot.idleTimer = undefined
    }
    slot.job = job
    try {
      slot.worker.postMessage(job.message, job.transfer as Array<ArrayBuffer | MessagePort>)
    } catch (error) {
      // Not structured-clonable, or a transfer list naming a detached buffer: the job never left.
      slot.job = undefined
      job.onResult({ _tag: "Defect", id: "id" in job.message ? job.message.id : -1, defect: serializeDefect(error) })
      this.settleIdle(slot)
      this.notifyIdle()
    }
  }

  /** Retires an idle worker above the minimum after the idle timeout. */
  private settleIdle(slot: Slot): void {
    if (slot.job !== undefined || slot.retiring || !slot.ready || slot.idleTimer !== undefined) return
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = undefined
      if (slot.job === undefined && !slot.retiring && this.liveSlots() > this.options.minThreads) void this.retire(slot)
    }, this.options.idleTimeoutMillis)
    slot.idleTimer.unref()
  }

  private retire(slot: Slot): Promise<void> {
    slot.retiring = true
    if (slot.idleTimer !== undefined) clearTimeout(slot.idleTimer)
    slot.idleTimer = undefined
    return stopWorker(slot.worker)
  }

  private failQueuedIfNoWorker(result: JobResult): void {
    for (const slot of this.slots) if (!slot.retiring) return
    const jobs = this.queue.splice(0)
    for (const job of jobs) job.onResult(result)
  }

  private isIdle(): boolean {
    if (this.queue.length > 0) return false
    for (const slot of this.slots) if (slot.job !== undefined) return false
    return true
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const waiter of waiters) waiter()
  }

  /**
   * Refuses new jobs, lets queued and running ones finish for up to `graceMillis`, then terminates
   * every worker; jobs still running are reported as interrupted.
   */
  async shutdown(graceMillis: number): Promise<{ readonly interrupted: number }> {
    this.closing = true
    if (!this.isIdle()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMillis)
        this.idleWaiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    let interrupted = 0
    for (const job of this.queue.splice(0)) {
      interrupted++
      job.onResult({ _tag: "Interrupted" })
    }
    const retiring: Array<Promise<void>> = []
    for (const slot of this.slots) {
      const job = slot.job
      slot.job = undefined
      if (job !== undefined) {
        interrupted++
        job.onResult({ _tag: "Interrupted" })
      }
      retiring.push(this.retire(slot))
    }
    await Promise.all(retiring)
    return { interrupted }
  }
}
