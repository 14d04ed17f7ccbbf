/**
 * The worker pool, in plain event-driven code: slots (one worker thread each), a FIFO queue of
 * jobs, dispatch, replacement of crashed or cancelled workers, idle retirement and shutdown.
 *
 * Cancelling a running job terminates its worker — the only way to stop JavaScript running on
 * another thread — and the pool starts a replacement, so the next job never waits behind work
 * nobody wants.
 */
import type { MessagePort } from "node:worker_threads"
import {
  describeDefect,
  type FromWorker,
  type JobMessage,
  PIPELINE_DEPTH,
  type SerializedDefect,
  serializeDefect
} from "./protocol.js"
import * as metrics from "../metrics.js"
import { claim, live, post, type Slot, steal, targetFor } from "./slot.js"
import { spawnWorker, startupExited, startupTimedOut, stopWorker } from "./spawn.js"

export type JobResult =
  | Extract<FromWorker, { _tag: "Success" | "Failure" | "Defect" | "SchemaError" }>
  | { readonly _tag: "Crash"; readonly exitCode: number; readonly reason: string | undefined }
  | { readonly _tag: "OutOfMemory" }
  | { readonly _tag: "Interrupted" }

export interface Job {
  readonly label: string
  readonly message: JobMessage
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
  /**
   * Keep one more thread loaded and idle, not counted in `maxThreads`, to take over at once from a
   * thread that is lost (terminated to cancel its job, crashed) instead of one starting cold.
   */
  readonly spareThread: boolean
  /**
   * Told why a thread could not load once the pool has started (a thread still loading in the
   * background, a replacement, one started on demand); before that, the start itself fails.
   */
  readonly onLoadFailure: (reason: string, threadsLeft: number) => void
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
  /** The spare thread kept with `spareThread`: loaded, loading, or none (not asked for, or lost). */
  readonly spare: "ready" | "loading" | "none"
}

export class Pool {
  private readonly slots = new Set<Slot>()
  private readonly queue: Array<Job> = []
  private closing = false
  private spawned = 0
  private crashed = 0
  private idleWaiters: Array<() => void> = []
  private sweeper: NodeJS.Timeout | undefined = undefined
  /** The thread kept aside with `spareThread`, loaded or loading; not in `slots`. */
  private spare: Slot | undefined = undefined
  /** This pool's share of the offload gauges (threads busy and idle, queue depth). */
  private readonly gauges = new metrics.PoolGauges()

  constructor(readonly options: PoolOptions) {}

  /** Brings the gauges up to date: after anything that may change the threads or the queue. */
  private publish(): void {
    const { busy, queued, threads } = this.stats
    this.gauges.publish(threads, busy, queued)
  }

  private busyCount(): number {
    let busy = 0
    for (const slot of this.slots) if (live(slot) > 0) busy++
    return busy
  }

  get stats(): PoolStats {
    const busy = this.busyCount()
    // Jobs waiting behind a thread's running one are waiting for a thread as much as queued ones.
    let queued = this.queue.length
    for (const slot of this.slots) queued += Math.max(0, live(slot) - 1)
    const spare = this.spare === undefined ? "none" : this.spare.ready ? "ready" : "loading"
    return { threads: this.liveSlots(), busy, queued, spawned: this.spawned, crashed: this.crashed, spare }
  }

  /**
   * Starts the minimum number of workers (at least one) and settles as soon as one has loaded the
   * module — proof that it loads — or as soon as one fails to load before any did, in which case
   * every thread is stopped first. The others go on loading in the background; one of them that
   * fails later is reported through `onLoadFailure` and the pool carries on without it.
   */
  start(): Promise<void> {
    const count = Math.max(1, this.options.minThreads)
    const starting = Array.from({ length: count }, () => this.spawn())
    this.publish()
    return new Promise<void>((resolve, reject) => {
      const settle = (error: SerializedDefect | undefined) => {
        for (const slot of starting) slot.onReady = undefined
        if (error === undefined) {
          // The spare starts once the module is known to load, so a broken one fails the start
          // without a thread more to stop.
          this.prepareSpare()
          return resolve()
        }
        this.closing = true
        const stopped = Array.from(this.slots, (slot) => this.retire(slot))
        void Promise.all(stopped).then(() => reject(new Error(describeDefect(error), { cause: error })))
      }
      for (const slot of starting) slot.onReady = settle
    })
  }

  private outstanding(): number {
    let count = this.queue.length
    for (const slot of this.slots) count += live(slot)
    return count
  }

  /** Queues a job, or says why it cannot be accepted. */
  submit(job: Job): "accepted" | "closing" | "full" {
    if (this.closing) return "closing"
    if (this.outstanding() >= this.options.maxThreads + this.options.maxQueued) return "full"
    this.queue.push(job)
    this.dispatch()
    return "accepted"
  }

  /**
   * Removes a queued job; takes back a job sent to a worker that has not started it; or terminates
   * the worker running it (a replacement starts at once), handing back to the queue the job that
   * was waiting behind it there.
   */
  cancel(job: Job): Promise<void> {
    const index = this.queue.indexOf(job)
    if (index >= 0) {
      this.queue.splice(index, 1)
      this.notifyIdle()
      return Promise.resolve()
    }
    for (const slot of this.slots) {
      const entry = slot.entries.find((candidate) => candidate.job === job && !candidate.cancelled)
      if (entry === undefined) continue
      entry.cancelled = true
      if (claim(slot, entry)) {
        this.notifyIdle()
        return Promise.resolve()
      }
      // It started. Take back what waits behind it; if one of those had started already, the
      // cancelled job is done (its result is on the way) and the thread can stay.
      const reclaimed: Array<Job> = []
      let finished = false
      for (const other of slot.entries) {
        if (other.cancelled) continue
        if (claim(slot, other)) {
          other.cancelled = true
          reclaimed.push(other.job)
        } else {
          finished = true
        }
      }
      this.queue.unshift(...reclaimed)
      if (finished) {
        this.dispatch()
        return Promise.resolve()
      }
      slot.entries = []
      metrics.cancelTerminated()
      const retired = this.retire(slot)
      // Replace it now rather than on its exit, which a call blocked in native code delays.
      this.replenish()
      this.dispatch()
      this.notifyIdle()
      return retired
    }
    return Promise.resolve()
  }

  /** Brings the pool back up to `minThreads` after a thread was lost (not while closing). */
  private replenish(): void {
    if (this.closing) return
    while (this.liveSlots() < this.options.minThreads) {
      this.addThread()
      metrics.threadReplaced()
    }
  }

  /** A thread more for the pool: the spare, if there is one (and a new spare starts), or a new one. */
  private addThread(): void {
    const spare = this.spare
    if (spare === undefined) {
      this.spawn()
      return
    }
    this.spare = undefined
    spare.spare = false
    this.slots.add(spare)
    this.prepareSpare()
    this.settleIdle(spare)
  }

  /** Starts the spare thread, with `spareThread`, when there is none (not while closing). */
  private prepareSpare(): void {
    if (this.options.spareThread && this.spare === undefined && !this.closing) this.spare = this.spawn(true)
  }

  private liveSlots(): number {
    let count = 0
    for (const slot of this.slots) if (!slot.retiring) count++
    return count
  }

  private spawn(spare = false): Slot {
    const cells = new SharedArrayBuffer(PIPELINE_DEPTH * Int32Array.BYTES_PER_ELEMENT)
    const worker = spawnWorker({
      module: this.options.module,
      maxHeapMb: this.options.maxHeapMb,
      name: this.options.name,
      kind: "tasks",
      cells
    })
    this.spawned++
    const slot: Slot = {
      worker,
      ready: false,
      spare,
      startupTimer: undefined,
      entries: [],
      cells: new Int32Array(cells),
      retiring: false,
      lastError: undefined,
      idleSince: undefined,
      loadFailure: undefined,
      onReady: undefined
    }
    // Every worker, not only the first ones, must load in time: a replacement that hangs while
    // loading would otherwise hold queued jobs forever.
    slot.startupTimer = setTimeout(() => {
      slot.startupTimer = undefined
      this.loadFailed(slot, startupTimedOut(this.options.startupTimeoutMillis))
    }, this.options.startupTimeoutMillis)
    if (!spare) this.slots.add(slot)
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
        if (slot.spare) return
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
      case "SchemaError":
      case "Skipped": {
        const index = slot.entries.findIndex((entry) => entry.job.message.id === message.id)
        if (index < 0) return
        const [entry] = slot.entries.splice(index, 1)
        if (message._tag !== "Skipped" && !entry!.cancelled) entry!.job.onResult(message)
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
    this.reportLoadFailure(slot, error)
    void this.retire(slot)
  }

  /** Says why a thread did not load: to the start waiting on it, or, once started, to `onLoadFailure`. */
  private reportLoadFailure(slot: Slot, error: SerializedDefect): void {
    if (slot.loadFailure !== undefined) return
    slot.loadFailure = error
    if (slot.onReady !== undefined) slot.onReady(error)
    else if (!this.closing) {
      // The threads left besides this one (still counted while it is being stopped, not once it exited).
      const counted = this.slots.has(slot) && !slot.retiring
      this.options.onLoadFailure(describeDefect(error), this.liveSlots() - (counted ? 1 : 0))
    }
  }

  private onExit(slot: Slot, exitCode: number): void {
    if (slot.spare) {
      // A spare that failed to load was reported; no other spare is started, so a broken module
      // is not loaded again and again. (One stopped on purpose, at shutdown, just goes.)
      if (slot.startupTimer !== undefined) clearTimeout(slot.startupTimer)
      if (!slot.ready && !slot.retiring) this.reportLoadFailure(slot, startupExited(exitCode, slot.lastError, this.options.maxHeapMb))
      if (this.spare === slot) this.spare = undefined
      return
    }
    this.slots.delete(slot)
    slot.idleSince = undefined
    if (slot.startupTimer !== undefined) clearTimeout(slot.startupTimer)
    if (!slot.ready) {
      // A thread stopped on purpose while loading (shutdown, a failed start) did not fail to load.
      if (!slot.retiring) this.reportLoadFailure(slot, startupExited(exitCode, slot.lastError, this.options.maxHeapMb))
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
    const entries = slot.entries
    slot.entries = []
    const unstarted: Array<Job> = []
    for (const entry of entries) {
      if (entry.cancelled) continue
      if (claim(slot, entry)) {
        // Sent, never started: it goes back to the queue for another thread.
        unstarted.push(entry.job)
        continue
      }
      this.crashed++
      entry.job.onResult(
        slot.lastError?.code === "ERR_WORKER_OUT_OF_MEMORY"
          ? { _tag: "OutOfMemory" }
          : { _tag: "Crash", exitCode, reason: slot.lastError?.message }
      )
    }
    this.queue.unshift(...unstarted)
    this.replenish()
    // Even while closing: jobs accepted before shutdown and still queued need a thread to run on
    // within the grace.
    this.dispatch()
    this.notifyIdle()
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const target = targetFor(this.slots, this.queue[0]!, this.liveSlots() >= this.options.maxThreads)
      if (target === undefined) break
      this.send(target, this.queue.shift()!)
    }
    if (this.queue.length === 0) steal(this.slots, (idle, job) => this.send(idle, job))
    // (while closing too: the queued jobs were accepted before shutdown and are owed their grace)
    let starting = 0
    for (const slot of this.slots) if (!slot.ready && !slot.retiring) starting++
    let needed = this.queue.length - starting
    while (needed > 0 && this.liveSlots() < this.options.maxThreads) {
      this.addThread()
      needed--
    }
    this.publish()
  }

  private send(slot: Slot, job: Job): void {
    const failure = post(slot, job)
    if (failure === undefined) return
    // Not structured-clonable, or a transfer list naming a detached buffer: the job never left.
    job.onResult({ _tag: "Defect", id: job.message.id, defect: serializeDefect(failure.error) })
    this.settleIdle(slot)
    this.notifyIdle()
  }

  /** Marks a slot idle; the sweep retires it if it stays idle past the idle timeout. */
  private settleIdle(slot: Slot): void {
    if (live(slot) > 0 || slot.retiring || !slot.ready || slot.idleSince !== undefined) return
    slot.idleSince = performance.now()
    if (this.sweeper === undefined && this.liveSlots() > this.options.minThreads) {
      // One timer for the pool rather than one per idle period: no timer work per task.
      const every = Math.max(10, Math.floor(this.options.idleTimeoutMillis / 4))
      this.sweeper = setInterval(() => this.sweep(), every)
      this.sweeper.unref()
    }
  }

  private sweep(): void {
    const now = performance.now()
    for (const slot of this.slots) {
      if (this.liveSlots() <= this.options.minThreads) break
      if (live(slot) === 0 && !slot.retiring && slot.idleSince !== undefined && now - slot.idleSince >= this.options.idleTimeoutMillis) {
        void this.retire(slot)
      }
    }
    if (this.liveSlots() <= this.options.minThreads && this.sweeper !== undefined) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  private retire(slot: Slot): Promise<void> {
    slot.retiring = true
    slot.idleSince = undefined
    this.publish()
    return stopWorker(slot.worker)
  }

  private failQueuedIfNoWorker(result: JobResult): void {
    if (this.liveSlots() > 0) return
    const jobs = this.queue.splice(0)
    for (const job of jobs) job.onResult(result)
  }

  private isIdle(): boolean {
    return this.outstanding() === 0
  }

  private notifyIdle(): void {
    this.publish()
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
    if (this.sweeper !== undefined) clearInterval(this.sweeper)
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
    if (this.spare !== undefined) retiring.push(this.retire(this.spare))
    this.spare = undefined
    for (const slot of this.slots) {
      const entries = slot.entries
      slot.entries = []
      for (const entry of entries) {
        if (entry.cancelled) continue
        interrupted++
        entry.job.onResult({ _tag: "Interrupted" })
      }
      retiring.push(this.retire(slot))
    }
    await Promise.all(retiring)
    this.publish()
    return { interrupted }
  }
}
