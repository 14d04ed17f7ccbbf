/** The offload example's task definitions, imported by the server and by the worker module. */
import * as Schema from "effect/Schema"
import * as Offload from "../../src/Offload.js"

/** Runs `crunch(n)` on a worker thread, and says which thread (`threadId`, 0 for the main one). */
export const Crunch = Offload.task("crunch", {
  input: Schema.Struct({ n: Schema.Int.pipe(Schema.between(0, 1_000_000_000)) }),
  output: Schema.Struct({ n: Schema.Number, result: Schema.Number, thread: Schema.Number })
})
