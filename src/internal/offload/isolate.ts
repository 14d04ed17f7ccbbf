/**
 * The main-thread side of an isolated runtime: one worker running a long-lived Effect program,
 * fed messages, and asked to stop (its program interrupted, finalizers run) at shutdown.
 */
import type { Worker } from "node:worker_threads"
import { describeDefect, type FromWorker, type SerializedDefect } from "./protocol.js"
import { spawnWorker, startupExited, startupTimedOut, stopWorker } from "./spawn.js"

export interface IsolateOptions {
  readonly name: string
  readonly module: string
  readonly maxHeapMb: number | undefined
  readonly startupTimeoutMillis: number
  /** Called once if the worker stops on its own (crash, program ended). */
  readonly onUnexpectedExit: (reason: string) => void
}

export class IsolateWorker {
  private worker: Worker | undefined
  private stopping = false
  private stoppedWaiters: Array<() => void> = []
  /** Why the worker is gone, once it is. */
  deadReason: string | undefined = undefined
  /** What went wrong while it stopped: a finalizer that failed, or the thread exiting mid-stop. */
  stopProblem: string | undefined = undefined
  exitCode = 0

  constructor(readonly options: IsolateOptions) {}

  start(): Promise<void> {
    const worker = spawnWorker({
      module: this.options.module,
      maxHeapMb: this.options.maxHeapMb,
      name: this.options.name,
      kind: "isolate"
    })
    this.worker = worker
    let lastError: (Error & { code?: string }) | undefined
    return new Promise<void>((resolve, reject) => {
      let ready = false
      let failed = false
      // The build fails only once the thread is gone, so a failed start leaves nothing behind.
      const fail = (defect: SerializedDefect) => {
        if (ready || failed) return
        failed = true
        clearTimeout(timer)
        void stopWorker(worker).then(() => reject(new Error(describeDefect(defect))))
      }
      const timer = setTimeout(() => fail(startupTimedOut(this.options.startupTimeoutMillis)), this.options.startupTimeoutMillis)
      worker.on("message", (message: FromWorker) => {
        if (message._tag === "Ready") {
          ready = true
          clearTimeout(timer)
          resolve()
        } else if (message._tag === "LoadError") {
          fail(message.error)
        } else if (message._tag === "Defect" && !this.stopping) {
          this.markDead(`the isolated program stopped: ${message.defect.message}`)
        } else if (message._tag === "Defect") {
          this.stopProblem ??= `its finalizers failed: ${describeDefect(message.defect)}`
        } else if (message._tag === "Stopped") {
          this.resolveStopped()
        }
      })
      worker.on("error", (error) => {
        lastError = error
      })
      worker.on("exit", (code) => {
        this.exitCode = code
        clearTimeout(timer)
        if (!ready) {
          if (!failed) reject(new Error(describeDefect(startupExited(code, lastError, this.options.maxHeapMb))))
        } else if (!this.stopping) {
          this.markDead(lastError?.message ?? `the worker exited with code ${code}`)
        } else if (!this.stopped) {
          // Gone before it said it had stopped: its finalizers did not all run.
          this.stopProblem ??= `its thread exited with code ${code} while stopping${lastError === undefined ? "" : `: ${lastError.message}`}`
        }
        this.resolveStopped()
      })
    })
  }

  private markDead(reason: string): void {
    if (this.deadReason !== undefined) return
    this.deadReason = reason
    this.options.onUnexpectedExit(reason)
  }

  private stopped = false

  private resolveStopped(): void {
    this.stopped = true
    const waiters = this.stoppedWaiters
    this.stoppedWaiters = []
    for (const waiter of waiters) waiter()
  }

  /** Posts an already-encoded message; false when the worker is gone. */
  post(payload: unknown): boolean {
    if (this.worker === undefined || this.deadReason !== undefined || this.stopping) return false
    this.worker.postMessage({ _tag: "Message", payload })
    return true
  }

  /**
   * Asks the program to stop (its fiber is interrupted, so its finalizers flush), waits up to
   * `timeoutMillis`, then terminates the thread. Returns whether it was done in time (see
   * `stopProblem` for what went wrong if it was done but not cleanly).
   */
  async stop(timeoutMillis: number): Promise<boolean> {
    const worker = this.worker
    if (worker === undefined) return true
    if (this.deadReason !== undefined) {
      // Already reported when it died; there is nothing left to flush.
      await stopWorker(worker)
      return true
    }
    this.stopping = true
    const stopped = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMillis)
      this.stoppedWaiters.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
      worker.postMessage({ _tag: "Stop" })
    })
    await stopWorker(worker)
    return stopped
  }
}
