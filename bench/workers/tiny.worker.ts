/** effect-background's worker module for the tiny-task benchmark. */
import * as Offload from "../../src/Offload.js"
import { Increment } from "./tiny.tasks.js"

export default Offload.worker(Offload.implement(Increment, (n) => n + 1))
