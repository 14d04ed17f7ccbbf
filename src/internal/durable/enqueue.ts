/**
 * `Durable.enqueue`'s work, shared by the Effect API (held until the response of the request its
 * fiber serves is written) and the Promise API (held until the response it is given is written):
 * each says where a task is held with a {@link Hold}.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { createHash, randomUUID } from "node:crypto"
import type { EnqueueOptions, Task } from "../../Durable.js"
import { DurablePayloadError, DurableStoreError, type InvalidOptionError } from "../../Errors.js"
import * as validate from "../options.js"
import * as store from "./store.js"
import type * as worker from "./worker.js"

/**
 * Where the enqueue is made: `undefined` when nothing is to hold the task (it is available at
 * once); otherwise registers a callback for when the response is written, returning false, with
 * nothing registered, when the response is already on its way.
 */
export type Hold = Effect.Effect<((handOff: () => void) => Effect.Effect<boolean>) | undefined>

/** The id a key maps to: the same for the same task type and key, in every process. */
const idOfKey = (name: string, key: string): string => {
  const hex = createHash("sha256").update(`${name}\u0000${key}`).digest("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}


export const enqueue = <A, I, E, R>(
  task: Task<A, I, E, R>,
  payload: A,
  options: EnqueueOptions,
  holdHere: Hold
): Effect.Effect<string, DurableStoreError | DurablePayloadError | InvalidOptionError, store.DurableStore> =>
  Effect.gen(function*() {
    // (the common call, with no options or only `afterResponse`, skips the checks' effects)
    const plain = options.key === undefined && options.runIn === undefined && options.runAt === undefined &&
      (options.afterResponse === undefined || typeof options.afterResponse === "boolean")
    const checked = plain ? { key: undefined, runIn: undefined, runAt: undefined, afterResponse: options.afterResponse } : yield* validate.all({
      key: options.key === undefined
        ? Effect.succeed(undefined)
        : typeof options.key === "string" && options.key.length > 0
        ? Effect.succeed(options.key)
        : validate.invalid("key", options.key, "a non-empty string (e.g. \"welcome:ada@example.com\")"),
      runIn: options.runIn === undefined
        ? Effect.succeed(undefined)
        : validate.duration("runIn", options.runIn, "nonNegative"),
      runAt: options.runAt === undefined
        ? Effect.succeed(undefined)
        : options.runAt instanceof Date && Number.isFinite(options.runAt.getTime())
        ? Effect.succeed(options.runAt)
        : validate.invalid("runAt", options.runAt, "a valid Date (e.g. new Date(\"2030-01-01T09:00:00Z\"))"),
      afterResponse: validate.boolean("afterResponse", options.afterResponse)
    })
    const durable = yield* store.DurableStore
    const encoded = yield* Schema.encode(task.options.payload)(payload).pipe(
      Effect.mapError((error) =>
        new DurablePayloadError({ task: task.name, details: ParseResult.TreeFormatter.formatErrorSync(error) })
      )
    )
    const span = yield* Effect.currentSpan.pipe(Effect.option)
    const envelope: worker.Envelope = Option.isSome(span)
      ? { payload: encoded, trace: { traceId: span.value.traceId, spanId: span.value.spanId } }
      : { payload: encoded }
    // Stored as JSON: an encoded payload that JSON cannot hold (a bigint, say), or would give back
    // changed (a Date, an undefined field, NaN), is the payload's fault, said now rather than as a
    // dead task when it runs.
    const loss = jsonLoss(encoded, "payload")
    if (loss !== undefined) {
      return yield* new DurablePayloadError({ task: task.name, details: `its encoded form cannot be stored as JSON as it is: ${loss}` })
    }
    const element = yield* Effect.try({
      try: () => JSON.stringify(envelope),
      catch: (cause) =>
        new DurablePayloadError({
          task: task.name,
          details: `its encoded form cannot be stored as JSON (${cause instanceof Error ? cause.message : String(cause)})`
        })
    })
    const id = checked.key === undefined ? randomUUID() : idOfKey(task.name, checked.key)
    const now = yield* Clock.currentTimeMillis
    const delay = checked.runAt !== undefined
      ? Math.max(0, checked.runAt.getTime() - now)
      : checked.runIn !== undefined
      ? Duration.toMillis(checked.runIn)
      : undefined
    if (delay !== undefined) {
      yield* durable.insertLater(id, task.name, element, delay, "scheduled")
      return id
    }
    const onWritten = (checked.afterResponse ?? true) ? yield* holdHere : undefined
    if (onWritten !== undefined) {
      // Held for one lease at most: once the response is written, handed to this process's workers
      // for the type (or released for any worker, in a group), or taken when the hold expires if
      // this process never gets there. The write and the hand-off's registration are one step: a
      // request cut off (its client gone) while the write is under way still hands off what it
      // wrote. Inside the handler's transaction the write joins it; otherwise it shares a
      // statement with the other held tasks of the same turn of the event loop.
      const handOff = () => {
        // (a store already closing lets go of nothing: the task runs once its hold expires)
        if (durable.locals.get(task.name)?.handOff(id) !== true) durable.releaseSoon(id)
      }
      const inTransaction = Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))
      yield* Effect.uninterruptible(
        (inTransaction
          ? durable.insertLater(id, task.name, element, Duration.toMillis(durable.lockExpiration), "held")
          : durable.insertHeld(id, task.name, element)).pipe(
            Effect.zipRight(onWritten(handOff)),
            // the response is already on its way (its handler was cut off meanwhile)
            Effect.map((registered) => {
              if (!registered) handOff()
            })
          )
      )
      return id
    }
    const queue = yield* durable.factory.make({ name: task.name, schema: Schema.Unknown })
    yield* queue.offer(envelope, { id }).pipe(
      Effect.mapError((error) => new DurableStoreError({ store: durable.description, operation: "enqueue", reason: store.reasonOf(error.cause ?? error) }))
    )
    durable.locals.get(task.name)?.wake()
    return id
  })


/**
 * Where JSON would not give `value` back as it is, and why: the first such place, or `undefined`.
 * (A bigint, which JSON refuses outright, is left to `JSON.stringify`'s own error.)
 */
const jsonLoss = (value: unknown, path: string): string | undefined => {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "bigint":
      return undefined
    case "number":
      return Number.isFinite(value) ? undefined : `${path} is ${value} (JSON stores it as null)`
    case "undefined":
      return `${path} is undefined (JSON drops it, or stores null in an array)`
    case "function":
    case "symbol":
      return `${path} is a ${typeof value} (JSON drops it)`
  }
  if (value === null) return undefined
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const loss = jsonLoss(value[index], `${path}[${index}]`)
      if (loss !== undefined) return loss
    }
    return undefined
  }
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) {
    const kind = (value as object).constructor?.name ?? "an object with a prototype"
    return `${path} is a ${kind} (JSON gives back a string or a plain object; encode it with a schema such as Schema.Date)`
  }
  for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
    const loss = jsonLoss(field, `${path}.${key}`)
    if (loss !== undefined) return loss
  }
  return undefined
}

