/**
 * The program every offload worker thread runs: it imports the user's worker module, says it is
 * ready (or why it could not load), then serves task runs, blocking calls or an isolated program.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as buffer from "node:buffer"
import * as childProcess from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { parentPort, workerData } from "node:worker_threads"
import { type Implementation, type IsolateModule, isWorkerModule, receiver, type TasksModule } from "./definitions.js"
import { CellState, collectTransferables, type FromWorker, serializeDefect, type ToWorker } from "./protocol.js"

const port = parentPort!
const post = (message: FromWorker, transfer: ReadonlyArray<ArrayBuffer> = []) =>
  port.postMessage(message, transfer as Array<ArrayBuffer>)

/** Answers a job; a value that cannot be sent (not clonable, say) becomes the job's defect. */
const reply = (message: Extract<FromWorker, { readonly id: number }>, transfer: ReadonlyArray<ArrayBuffer> = []) => {
  try {
    post(message, transfer)
  } catch (error) {
    if (transfer.length > 0) return reply(message)
    post({ _tag: "Defect", id: message.id, defect: serializeDefect(error) })
  }
}

/** esbuild's helper (tsx keeps function names), which a blocking call's source may refer to. */
const __name = <T>(target: T, value: string): T => Object.defineProperty(target, "name", { value, configurable: true })

/** What a blocking call's function receives as its first argument. */
const modules = { buffer, childProcess, crypto, fs, os, path, zlib }

interface Codecs {
  readonly decodeInput: (u: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly encodeOutput: (a: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly encodeFailure: (a: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly isFailure: (u: unknown) => boolean
}

const formatSchemaError = (error: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(error)

const serveTasks = (module: TasksModule | undefined) => {
  // Compiled once per task: the hot path below does no schema compilation and, for plain and
  // promise-returning handlers, starts no fiber.
  const codecs = new Map<string, Codecs>()
  const codecsOf = (implementation: Implementation): Codecs => {
    const { definition } = implementation
    let found = codecs.get(definition.name)
    if (found === undefined) {
      found = {
        decodeInput: receiver(definition.input),
        encodeOutput: Schema.encodeEither(definition.output),
        encodeFailure: Schema.encodeEither(definition.failure),
        isFailure: Schema.is(definition.failure)
      }
      codecs.set(definition.name, found)
    }
    return found
  }

  /** Runs one task; returns a promise when the handler is asynchronous, nothing when it is done. */
  const run = (message: Extract<ToWorker, { _tag: "Run" }>): Promise<void> | void => {
    const { id } = message
    const implementation = module?.implementations.get(message.task)
    if (implementation === undefined) {
      return reply({
        _tag: "Defect",
        id,
        defect: { name: "Error", message: `this worker module implements no task named "${message.task}"`, stack: undefined }
      })
    }
    const { decodeInput, encodeFailure, encodeOutput, isFailure } = codecsOf(implementation)
    const succeed = (value: unknown) => {
      const encoded = encodeOutput(value)
      if (Either.isLeft(encoded)) return reply({ _tag: "SchemaError", id, phase: "output", message: formatSchemaError(encoded.left) })
      reply({ _tag: "Success", id, output: encoded.right }, collectTransferables(encoded.right))
    }
    const fail = (error: unknown) => {
      if (!isFailure(error)) return reply({ _tag: "Defect", id, defect: serializeDefect(error) })
      const encoded = encodeFailure(error)
      if (Either.isLeft(encoded)) return reply({ _tag: "SchemaError", id, phase: "failure", message: formatSchemaError(encoded.left) })
      reply({ _tag: "Failure", id, error: encoded.right })
    }
    const input = decodeInput(message.input)
    if (Either.isLeft(input)) return reply({ _tag: "SchemaError", id, phase: "input", message: formatSchemaError(input.left) })
    let result: unknown
    try {
      result = implementation.handler(input.right)
    } catch (error) {
      return fail(error)
    }
    if (Effect.isEffect(result)) {
      return Effect.runPromiseExit(result as Effect.Effect<unknown, unknown>).then((exit) => {
        if (Exit.isSuccess(exit)) return succeed(exit.value)
        const failure = Cause.failureOption(exit.cause)
        return fail(Option.isSome(failure) ? failure.value : Cause.squash(exit.cause))
      })
    }
    if (Predicate.isPromiseLike(result)) {
      return Promise.resolve(result).then(succeed, fail)
    }
    succeed(result)
  }

  const blocking = (message: Extract<ToWorker, { _tag: "Blocking" }>): Promise<void> | void => {
    const { id } = message
    const defect = (error: unknown) => reply({ _tag: "Defect", id, defect: serializeDefect(error) })
    const succeed = (output: unknown) => reply({ _tag: "Success", id, output }, collectTransferables(output))
    let output: unknown
    try {
      const fn = new Function("modules", "arg", "__name", `"use strict"; return (${message.source})(modules, arg)`) as (
        m: typeof modules,
        arg: unknown,
        name: typeof __name
      ) => unknown
      output = fn(modules, message.arg, __name)
    } catch (error) {
      return defect(error)
    }
    if (Predicate.isPromiseLike(output)) {
      return Promise.resolve(output).then(succeed, defect)
    }
    succeed(output)
  }

  // Jobs run one at a time, in arrival order. Before starting one, the worker claims its cell; if
  // the pool claimed it first (cancelled, or moved to an idle thread), the job is skipped.
  const cells = new Int32Array((workerData as { cells: SharedArrayBuffer }).cells)
  const waiting: Array<Extract<ToWorker, { _tag: "Run" | "Blocking" }>> = []
  let active = false
  const pump = (): void => {
    while (!active && waiting.length > 0) {
      const message = waiting.shift()!
      if (Atomics.compareExchange(cells, message.cell, CellState.PENDING, CellState.STARTED) !== CellState.PENDING) {
        post({ _tag: "Skipped", id: message.id })
        continue
      }
      const pending = message._tag === "Run" ? run(message) : blocking(message)
      if (pending !== undefined) {
        active = true
        void pending.then(() => {
          active = false
          pump()
        })
      }
    }
  }

  port.on("message", (message: ToWorker) => {
    if (message._tag === "Run" || message._tag === "Blocking") {
      waiting.push(message)
      pump()
    }
  })
  post({ _tag: "Ready" })
}

const serveIsolate = (module: IsolateModule) => {
  const mailbox = Effect.runSync(Queue.unbounded<unknown>())
  const decode = Schema.decodeUnknownEither(module.message)
  let stopping = false
  const fiber = Effect.runFork(Effect.suspend(() => module.program(mailbox)))
  fiber.addObserver((exit) => {
    if (stopping) return
    post({
      _tag: "Defect",
      id: -1,
      defect: Exit.isFailure(exit)
        ? serializeDefect(Cause.squash(exit.cause))
        : { name: "Error", message: "the isolated program returned", stack: undefined }
    })
  })
  port.on("message", (message: ToWorker) => {
    if (message._tag === "Message") {
      const decoded = decode(message.payload)
      if (decoded._tag === "Right") Queue.unsafeOffer(mailbox, decoded.right)
    } else if (message._tag === "Stop" && !stopping) {
      stopping = true
      // Messages sent before the stop belong to the program: let it take them, then interrupt it
      // so its finalizers flush. The main thread bounds the whole stop with its timeout.
      // Sleeping (a macrotask) before each look also lets a fiber just handed a message run on
      // to its next wait, so the interruption does not land between its take and its bookkeeping.
      const drained = Effect.gen(function*() {
        do yield* Effect.sleep("1 millis")
        while ((yield* Queue.size(mailbox)) > 0 && Option.isNone(yield* Fiber.poll(fiber)))
      })
      void Effect.runPromise(Effect.zipRight(drained, Fiber.interrupt(fiber))).then((exit) => {
        // A finalizer that failed (a flush that threw) is said, not swallowed.
        if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
          post({ _tag: "Defect", id: -1, defect: serializeDefect(Cause.squash(exit.cause)) })
        }
        post({ _tag: "Stopped" })
        port.close()
      })
    }
  })
  post({ _tag: "Ready" })
}

const wrongKind = {
  tasks: "its default export is made with Offload.isolated(...), which serves no tasks; start it with Offload.isolate(...)",
  isolate: "its default export is not made with Offload.isolated(...); a module made with Offload.worker(...) " +
    "serves tasks through Offload.layer(...)"
} as const

const main = async () => {
  const { module: url, kind } = workerData as { module: string | undefined; kind: "tasks" | "isolate" }
  if (url === undefined) return serveTasks(undefined)
  const loaded: { default?: unknown } = await import(url)
  const module = loaded.default
  if (!isWorkerModule(module)) {
    throw new Error(`${url} has no default export made with Offload.worker(...) or Offload.isolated(...)`)
  }
  // Checked before anything runs: an isolated program started by mistake would already be at work.
  if (module.kind !== kind) throw new Error(wrongKind[kind])
  return module.kind === "isolate" ? serveIsolate(module) : serveTasks(module)
}

main().catch((error: unknown) => post({ _tag: "LoadError", error: serializeDefect(error) }))
