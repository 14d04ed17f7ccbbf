/**
 * Messages between the main thread and a worker. Everything crossing the boundary is structured
 * clone data; typed values cross in their Schema-encoded form.
 */

/**
 * A job's claim cell, shared between the threads: whichever side moves it away from `PENDING`
 * first decides whether the job runs (the worker, to `STARTED`) or not (the pool, to `CANCELLED`).
 * A worker is sent at most {@link PIPELINE_DEPTH} jobs at a time, each with a cell of its own.
 */
export const CellState = { PENDING: 0, STARTED: 1, CANCELLED: 2 } as const

/** Jobs sent to one worker at a time: the one running and one waiting behind it. */
export const PIPELINE_DEPTH = 2

export type JobMessage =
  | { readonly _tag: "Run"; readonly id: number; readonly task: string; readonly input: unknown }
  | { readonly _tag: "Blocking"; readonly id: number; readonly source: string; readonly arg: unknown }

export type ToWorker =
  | (JobMessage & { readonly cell: number })
  | { readonly _tag: "Message"; readonly payload: unknown }
  | { readonly _tag: "Stop" }

export interface SerializedDefect {
  readonly name: string
  readonly message: string
  readonly stack: string | undefined
}

export type FromWorker =
  | { readonly _tag: "Ready" }
  | { readonly _tag: "LoadError"; readonly error: SerializedDefect }
  | { readonly _tag: "Success"; readonly id: number; readonly output: unknown }
  | { readonly _tag: "Failure"; readonly id: number; readonly error: unknown }
  | { readonly _tag: "Defect"; readonly id: number; readonly defect: SerializedDefect }
  | { readonly _tag: "SchemaError"; readonly id: number; readonly phase: "input" | "output" | "failure"; readonly message: string }
  | { readonly _tag: "Skipped"; readonly id: number }
  | { readonly _tag: "Stopped" }

export const serializeDefect = (error: unknown): SerializedDefect =>
  error instanceof Error
    ? { name: error.name, message: error.message, stack: error.stack }
    : { name: "Error", message: String(error), stack: undefined }

/** One line for a load failure: the error's name when it says something, and its message. */
export const describeDefect = (defect: SerializedDefect): string =>
  defect.name === "Error" || defect.message.startsWith(`${defect.name}:`) ? defect.message : `${defect.name}: ${defect.message}`

/** Rebuilds a defect as an `Error` whose stack still points into the worker. */
export const deserializeDefect = (defect: SerializedDefect): Error => {
  const error = new Error(defect.message)
  error.name = defect.name
  if (defect.stack !== undefined) error.stack = defect.stack
  return error
}

/** ArrayBuffers reachable from `value`, so a result can be transferred instead of copied. */
export const collectTransferables = (value: unknown, found: Set<ArrayBuffer> = new Set(), depth = 0): Array<ArrayBuffer> => {
  if (depth > 8 || value === null || typeof value !== "object") return Array.from(found)
  if (value instanceof ArrayBuffer) {
    found.add(value)
  } else if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) {
      found.add(value.buffer)
    }
  } else if (Array.isArray(value)) {
    for (const item of value) collectTransferables(item, found, depth + 1)
  } else {
    for (const item of Object.values(value)) collectTransferables(item, found, depth + 1)
  }
  return Array.from(found)
}
