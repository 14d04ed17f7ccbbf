/** The tiny task every offload contender runs: add one to a number. */
import { Schema } from "effect"
import * as Offload from "../../src/Offload.js"

export const Increment = Offload.task("increment", { input: Schema.Number, output: Schema.Number })
