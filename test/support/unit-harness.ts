/**
 * Test doubles for the supervisor's unit tests: a logger that records every entry, a tracer that
 * records every span, and a handle on a supervisor whose shutdown the test triggers itself.
 */
import { type Cause, type Context, Effect, Exit, HashMap, Layer, Logger, Option, Scope, Tracer } from "effect"
import { Background } from "../../src/index.js"
import { ShutdownRecord, ShutdownRecorder } from "../../src/internal/report.js"

export interface LogEntry {
  readonly level: string
  readonly message: string
  readonly cause: Cause.Cause<unknown>
  readonly annotations: Readonly<Record<string, unknown>>
}

/** Records every log entry; `layer` replaces the default logger with it. */
export const makeLogCapture = () => {
  const entries: Array<LogEntry> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    const parts: ReadonlyArray<unknown> = Array.isArray(message) ? message : [message]
    entries.push({
      level: logLevel.label,
      message: parts.map(String).join(" "),
      cause,
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return {
    entries,
    errors: () => entries.filter((entry) => entry.level === "ERROR"),
    layer: Logger.replace(Logger.defaultLogger, logger)
  }
}

export class RecordedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId: string
  readonly traceId: string
  readonly sampled = true
  status: Tracer.SpanStatus
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink>

  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind,
    id: number
  ) {
    this.spanId = `span-${id}`
    this.traceId = Option.isSome(parent) ? parent.value.traceId : `trace-${id}`
    this.links = [...links]
    this.status = { _tag: "Started", startTime }
  }

  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(): void {}
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
}

/** A tracer that keeps every span it creates, in creation order. */
export const makeRecordingTracer = () => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const span = new RecordedSpan(name, parent, context, links, startTime, kind, spans.length + 1)
      spans.push(span)
      return span
    },
    context: (f) => f()
  })
  return { spans, tracer, named: (name: string) => spans.filter((span) => span.name === name) }
}

/**
 * Builds `layer` (which must provide the supervisor) in a scope the test closes itself, so a test
 * can act while shutdown is under way. `record` receives what the shutdown reports.
 */
export const startSupervisor = <E>(layer: Layer.Layer<Background.Background, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const record = new ShutdownRecord()
    const context = yield* Layer.buildWithScope(
      layer.pipe(Layer.provide(Layer.succeed(ShutdownRecorder, record))),
      scope
    )
    return {
      context,
      record,
      /** Runs `effect` with the supervisor provided. */
      use: <A, E2, R>(effect: Effect.Effect<A, E2, R>) => Effect.provide(effect, context),
      /** Closes the supervisor's scope: the shutdown sequence. */
      shutdown: Scope.close(scope, Exit.void)
    }
  })
