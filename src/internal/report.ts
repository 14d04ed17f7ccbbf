/**
 * The shutdown report: each part of the server (the HTTP drain, the supervisor, the offload pool,
 * durable workers) hands over its own summary when its phase is done, and the launcher prints them
 * as one line. While they run, parts also register the bound they put on shutdown (so a launcher
 * can set a hard deadline past the sum) and a probe naming the work they still hold (a hard
 * exit's last words).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as metrics from "./metrics.js"

/** Phases 1–2: what the server's drain did. */
export interface ServerSummary {
  readonly millis: number
  readonly drained: number
  readonly interrupted: number
  /** Requests that outlived the interrupt timeout. */
  readonly stillRunning: ReadonlyArray<string>
}

/** Phases 3–4: what the supervisor did. */
export interface BackgroundSummary {
  readonly graceMillis: number
  readonly interruptMillis: number
  readonly finished: number
  readonly failed: number
  readonly interrupted: number
  readonly rejected: number
  readonly skipped: number
  readonly jobsStopped: number
  readonly jobFailures: number
  /** Tasks interrupted when the grace period ended. */
  readonly interruptedNames: ReadonlyArray<string>
  /** Tasks that outlived the interrupt timeout. */
  readonly stillRunning: ReadonlyArray<string>
  /** Epoch milliseconds. */
  readonly doneAt: number
}

/** The offload pool's stop. */
export interface OffloadSummary {
  readonly millis: number
  readonly interrupted: number
  /** Epoch milliseconds. */
  readonly doneAt: number
}

/** What this process's durable workers did (read when the line is printed: they count to the end). */
export interface DurableSummary {
  readonly done: number
  readonly retried: number
  readonly dead: number
  readonly released: number
}

export class ShutdownRecord {
  /** Epoch milliseconds when shutdown began (a signal, or the first drain). */
  startedAt: number | undefined = undefined
  private bounds = 0
  private readonly probes: Array<() => ReadonlyArray<string>> = []
  private serverSummary: ServerSummary | undefined = undefined
  private backgroundSummary: BackgroundSummary | undefined = undefined
  private readonly offloadSummaries: Array<OffloadSummary> = []
  private durableSummary: (() => DurableSummary) | undefined = undefined

  /** A part's bound on shutdown and, optionally, a probe naming what it still holds. */
  bound(millis: number, live?: () => ReadonlyArray<string>): void {
    this.bounds += millis
    if (live !== undefined) this.probes.push(live)
  }

  /** Sum of the registered bounds. */
  get budgetMillis(): number {
    return this.bounds
  }

  /** Everything still held by any part. */
  live(): ReadonlyArray<string> {
    return this.probes.flatMap((probe) => probe())
  }

  serverDone(summary: ServerSummary): void {
    this.serverSummary = summary
    metrics.shutdownPhase("drain", summary.millis)
  }

  backgroundDone(summary: BackgroundSummary): void {
    this.backgroundSummary = summary
    metrics.shutdownPhase("grace", summary.graceMillis)
    metrics.shutdownPhase("interrupt", summary.interruptMillis)
  }

  offloadDone(summary: OffloadSummary): void {
    this.offloadSummaries.push(summary)
    metrics.shutdownPhase("offload", this.offloadSummaries.reduce((sum, part) => sum + part.millis, 0))
  }

  /**
   * Records the last phase in the metrics, once every layer is released at `end`: the services
   * released after the supervisor and the pool (as {@link format} counts it).
   */
  ended(end: number): void {
    const lastPhaseEnd = this.offloadSummaries.length > 0
      ? Math.max(...this.offloadSummaries.map((part) => part.doneAt))
      : this.backgroundSummary?.doneAt
    if (lastPhaseEnd !== undefined) metrics.shutdownPhase("services", end - lastPhaseEnd)
  }

  durableWorkers(summary: () => DurableSummary): void {
    this.durableSummary = summary
  }

  get server(): ServerSummary | undefined {
    return this.serverSummary
  }

  get background(): BackgroundSummary | undefined {
    return this.backgroundSummary
  }

  /** The durable workers' counts so far, when this process runs any. */
  get durable(): DurableSummary | undefined {
    return this.durableSummary?.()
  }

  /** What outlived its interrupt timeout, in any part: the launcher then exits with 1. */
  get stillRunning(): ReadonlyArray<string> {
    return [...(this.serverSummary?.stillRunning ?? []), ...(this.backgroundSummary?.stillRunning ?? [])]
  }

  /**
   * One line: what was drained, finished and interrupted, and how long each phase took. `end` is
   * when the last layer was released (services are released after the supervisor and the pool).
   */
  format(end: number): string {
    const ms = (value: number | undefined) => (value === undefined ? "-" : `${Math.round(value)}ms`)
    const server = this.serverSummary
    const background = this.backgroundSummary
    const offload = this.offloadSummaries.length === 0 ? undefined : {
      millis: this.offloadSummaries.reduce((sum, part) => sum + part.millis, 0),
      interrupted: this.offloadSummaries.reduce((sum, part) => sum + part.interrupted, 0),
      doneAt: Math.max(...this.offloadSummaries.map((part) => part.doneAt))
    }
    const lastPhaseEnd = offload?.doneAt ?? background?.doneAt
    const services = lastPhaseEnd === undefined ? undefined : end - lastPhaseEnd
    const total = this.startedAt === undefined ? undefined : end - this.startedAt
    const parts = [
      `requests drained=${server?.drained ?? 0} interrupted=${server?.interrupted ?? 0}`,
      `tasks finished=${background?.finished ?? 0} failed=${background?.failed ?? 0}` +
      ` interrupted=${background?.interrupted ?? 0} rejected=${background?.rejected ?? 0} skipped=${background?.skipped ?? 0}`,
      `jobs stopped=${background?.jobsStopped ?? 0} failures=${background?.jobFailures ?? 0}`,
      `phases drain=${ms(server?.millis)} grace=${ms(background?.graceMillis)} interrupt=${ms(background?.interruptMillis)}` +
      (offload === undefined ? "" : ` offload=${ms(offload.millis)}`) +
      ` services=${ms(services)} total=${ms(total)}`
    ]
    if (offload !== undefined) parts.push(`offload tasks interrupted=${offload.interrupted}`)
    if (this.durableSummary !== undefined) {
      const { dead, done, released, retried } = this.durableSummary()
      parts.push(`durable done=${done} retried=${retried} dead=${dead} released=${released}`)
    }
    const interrupted = background?.interruptedNames ?? []
    if (interrupted.length > 0) parts.push(`interrupted: ${interrupted.join(", ")}`)
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
