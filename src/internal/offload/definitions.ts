/**
 * The values a worker module exports and the task definitions shared by both sides. Plain data
 * tagged with a registry symbol, so the worker's copy of this module recognises them.
 */
import type * as Effect from "effect/Effect"
import type * as Queue from "effect/Queue"
import * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

export const WorkerModuleTypeId: unique symbol = Symbol.for("effect-background/Offload/WorkerModule") as never

export interface TaskDefinition<I, IE, O, OE, F, FE> {
  readonly _tag: "TaskDefinition"
  readonly name: string
  readonly input: Schema.Schema<I, IE>
  readonly output: Schema.Schema<O, OE>
  readonly failure: Schema.Schema<F, FE>
}

/** Any task definition, whatever its types (the worker only needs its schemas' runtime values). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- existential: each definition has its own type parameters
export type AnyTaskDefinition = TaskDefinition<any, any, any, any, any, any>

export interface Implementation {
  readonly definition: AnyTaskDefinition
  readonly handler: (input: unknown) => unknown
}

export interface TasksModule {
  readonly [WorkerModuleTypeId]: typeof WorkerModuleTypeId
  readonly kind: "tasks"
  readonly implementations: ReadonlyMap<string, Implementation>
}

export interface IsolateModule {
  readonly [WorkerModuleTypeId]: typeof WorkerModuleTypeId
  readonly kind: "isolate"
  readonly message: Schema.Schema<unknown, unknown>
  readonly program: (mailbox: Queue.Dequeue<unknown>) => Effect.Effect<unknown, unknown>
}

export type WorkerModule = TasksModule | IsolateModule

export const isWorkerModule = (value: unknown): value is WorkerModule =>
  typeof value === "object" && value !== null && WorkerModuleTypeId in value

/**
 * Decoding on the receiving side, or nothing when the schema has no transformation: then the
 * sender's encode already checked exactly what a decode would check, and the value arrives as is.
 */
export const receiver = <A, I>(schema: Schema.Schema<A, I>): (u: unknown) => Either.Either<A, ParseResult.ParseError> =>
  SchemaAST.typeAST(schema.ast) === schema.ast
    ? (u) => Either.right(u as A)
    : Schema.decodeUnknownEither(schema)
