/**
 * What one shutdown did, filled in phase by phase by the server glue and the supervisor, and
 * printed as one line by the launcher.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

export class ShutdownRecord {
  /** Epoch milliseconds when shutdown began (signal or scope close). */
  startedAt: number | undefined = undefined
  drainMillis: number | undefined = undefined
  requestsDrained = 0
  requestsInterrupted = 0
  graceMillis: number | undefined = undefined
  interruptMillis: number | undefined = undefined
  tasksFinished = 0
  tasksFailed = 0
  tasksInterrupted = 0
  tasksRejected = 0
  tasksSkipped = 0
  jobsStopped = 0
  jobFailures = 0
  interruptedNames: ReadonlyArray<string> = []
  stillRunning: Array<string> = []
  offloadMillis: number | undefined = undefined
  offloadInterrupted = 0
  /** What this process's durable workers did (the store's own counters), when it runs any. */
  durable: { readonly done: number; readonly retried: number; readonly dead: number; readonly released: number } | undefined =
    undefined
  /** Epoch milliseconds when the offload pool finished its shutdown, if there is one. */
  offloadDoneAt: number | undefined = undefined
  /** Epoch milliseconds when the supervisor finished its shutdown. */
  backgroundDoneAt: number | undefined = undefined
  /** Sum of the configured phase bounds, so a launcher can set a hard deadline past them. */
  budgetMillis = 0
  /** Each returns the names of the work a layer still holds, for a hard exit's last words. */
  readonly probes: Array<() => ReadonlyArray<string>> = []

  /** Everything still held by any layer. */
  live(): ReadonlyArray<string> {
    return this.probes.flatMap((probe) => probe())
  }

  /** One line: what was drained, finished and interrupted, and how long each phase took. */
  format(servicesMillis: number | undefined, totalMillis: number | undefined): string {
    const ms = (value: number | undefined) => (value === undefined ? "-" : `${Math.round(value)}ms`)
    const parts = [
      `requests drained=${this.requestsDrained} interrupted=${this.requestsInterrupted}`,
      `tasks finished=${this.tasksFinished} failed=${this.tasksFailed} interrupted=${this.tasksInterrupted}` +
      ` rejected=${this.tasksRejected} skipped=${this.tasksSkipped}`,
      `jobs stopped=${this.jobsStopped} failures=${this.jobFailures}`,
      `phases drain=${ms(this.drainMillis)} grace=${ms(this.graceMillis)} interrupt=${ms(this.interruptMillis)}` +
      (this.offloadMillis === undefined ? "" : ` offload=${ms(this.offloadMillis)}`) +
      ` services=${ms(servicesMillis)} total=${ms(totalMillis)}`
    ]
    if (this.offloadMillis !== undefined) parts.push(`offload tasks interrupted=${this.offloadInterrupted}`)
    if (this.durable !== undefined) {
      const { dead, done, released, retried } = this.durable
      parts.push(`durable done=${done} retried=${retried} dead=${dead} released=${released}`)
    }
    if (this.interruptedNames.length > 0) parts.push(`interrupted: ${this.interruptedNames.join(", ")}`)
    if (this.stillRunning.length > 0) parts.push(`still running: ${this.stillRunning.join(", ")}`)
    return `shutdown report: ${parts.join("; ")}`
  }
}

/** The record of the current shutdown, provided by a launcher (`Server.launch`) or a test. */
export class ShutdownRecorder extends Context.Tag("effect-background/ShutdownRecorder")<ShutdownRecorder, ShutdownRecord>() {}

/**
 * The launcher's record, or a fresh one for a layer used without a launcher — never a shared
 * process-wide default, which would keep every layer ever built reachable through its probes.
 */
export const currentRecord: Effect.Effect<ShutdownRecord> = Effect.map(
  Effect.serviceOption(ShutdownRecorder),
  Option.getOrElse(() => new ShutdownRecord())
)
